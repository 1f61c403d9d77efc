"""DynamoDBManager: the metadata records, one item per DICOM file, keyed by ``FilePath``.

The table's key, derived attributes and indexes are described in ``managers/store/table.py``.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import math
import random
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from botocore.config import Config
from botocore.exceptions import ClientError

from config import DYNAMODB_TABLE_NAME
from errors import UpstreamUnavailable
from managers.aws.clients import error_code, make_client, upstream
from managers.store import records
from managers.store.search import (
    Bounds,
    Plan,
    SearchFilter,
    add_filter,
    continue_query,
    page_of,
    plan_for,
    record_of,
    sort_bounds,
)
from managers.store.table import (
    INDEX_ATTRIBUTES,
    PARTITION_KEY,
    SHARDS,
    SORT_ATTRIBUTE,
    derived_attributes,
    index_keys,
)
from metadata import FIELDS

SOURCE_ATTRIBUTE = "JsonS3Path"
SEQUENCER_ATTRIBUTE = "Sequencer"
# Sequencers are hexadecimal strings of varying length; AWS says to compare them after
# left-padding the shorter with zeros. Stored padded, they compare as DynamoDB strings.
SEQUENCER_WIDTH = 64
# Threads querying shards: one search's shards at once, a second search's beside it.
SHARD_WORKERS = 2 * SHARDS
# DynamoDB's limits per BatchGetItem and BatchWriteItem call.
BATCH_GET_SIZE = 100
BATCH_WRITE_SIZE = 25
# Tries of a batch's unprocessed items, and the backoff between them (seconds): about 12 s
# in all, enough for a throttled on-demand table to add capacity.
BATCH_ATTEMPTS = 8
BACKOFF_BASE = 0.05
BACKOFF_CAP = 4.0


def normalize_sequencer(sequencer: str | None) -> str | None:
    """Return an S3 event sequencer padded to a fixed width, upper-case (``None`` stays)."""
    return sequencer.upper().rjust(SEQUENCER_WIDTH, "0") if sequencer else None


def _version_of(file_path: str, fields: dict[str, str | None], source: str | None, sequencer: str | None) -> str:
    """Return a digest of one upload, so the indexer can tell whether the record changed under it."""
    content = json.dumps([file_path, fields, source, sequencer], sort_keys=True)
    return hashlib.sha256(content.encode()).hexdigest()[:32]


def _backoff(attempt: int) -> None:
    """Sleep before another try of unprocessed batch items: exponential, with full jitter."""
    time.sleep(random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt)))


class DynamoDBManager:
    """Reads, writes and searches metadata records in ``DYNAMODB_TABLE_NAME``.

    The constructor is the original skeleton's: explicit credentials when given (the API on a
    laptop, from secrets.json), otherwise boto3's default chain (the Lambda's IAM role). The
    same class serves both places. ``endpoint_url`` points it at the embedded AWS.
    """

    def __init__(
        self,
        aws_access_key_id: str | None = None,
        aws_secret_access_key: str | None = None,
        aws_session_token: str | None = None,
        *,
        endpoint_url: str | None = None,
        config: Config | None = None,
        table_name: str = DYNAMODB_TABLE_NAME,
    ) -> None:
        self.table_name = table_name
        self.client = make_client(
            "dynamodb",
            aws_access_key_id,
            aws_secret_access_key,
            aws_session_token,
            endpoint_url=endpoint_url,
            config=config,
        )
        # Built once per manager; threads start on the first search, so the Lambda (which
        # never searches) starts none.
        self._pool = ThreadPoolExecutor(max_workers=SHARD_WORKERS, thread_name_prefix="dicom-meta-shards")

    def put_record(
        self,
        file_path: str,
        attributes: dict[str, str | None],
        *,
        source: str | None = None,
        sequencer: str | None = None,
    ) -> bool:
        """Store an uploaded document's fields for ``file_path``, unless a newer event already did.

        The five fields become the answered ones (and ``UploadedFields``); other attributes
        are set as given. What the indexer stored from the file's header is kept: this is an
        update, not a replacement. The upload is tied to the file version the record holds
        (``UploadETag``, see ``managers/store/records.py``). Attributes whose value is ``None`` are
        removed: DynamoDB index keys cannot be empty, and an absent attribute reads back as
        ``None`` anyway.

        Parameters
        ----------
        source, sequencer
            The JSON object's s3 path and its S3 event ``sequencer``. S3 delivers events at
            least once and in no fixed order; a record written from the same object by a
            later event (a greater sequencer) is kept. Sequencers of different objects do
            not compare, so another source simply replaces the fields.

        Returns
        -------
        bool
            ``False`` when the write was refused because the stored record is newer.
        """
        fields = {name: attributes.get(name) for name in FIELDS}
        derived = derived_attributes(file_path, fields)
        values: dict[str, str | None] = {
            **attributes,
            **fields,
            # Every index attribute, None (removed) where the new fields give it no value.
            **{name: derived.get(name) for name in INDEX_ATTRIBUTES},
            SOURCE_ATTRIBUTE: source,
            SEQUENCER_ATTRIBUTE: normalize_sequencer(sequencer),
            # Deterministic, so a duplicate event writes the very same item.
            records.UPLOAD_VERSION: _version_of(file_path, fields, source, sequencer),
        }
        names: dict[str, str] = {}
        expression_values: dict[str, Any] = {
            ":uploaded": records.fields_map(fields),
            ":unindexed": {"S": ""},
        }
        sets = [
            f"#{records.UPLOADED_FIELDS} = :uploaded",
            f"#{records.UPLOAD_ETAG} = if_not_exists(#{records.OBJECT_ETAG}, :unindexed)",
        ]
        removes = [f"#{records.DELETED}", f"#{records.EXPIRES_AT}"]
        for name in (
            records.UPLOADED_FIELDS,
            records.UPLOAD_ETAG,
            records.OBJECT_ETAG,
            records.DELETED,
            records.EXPIRES_AT,
        ):
            names[f"#{name}"] = name
        for position, (name, value) in enumerate(values.items()):
            names[f"#a{position}"] = name
            if value is None:
                removes.append(f"#a{position}")
            else:
                sets.append(f"#a{position} = :a{position}")
                expression_values[f":a{position}"] = {"S": value}
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "Key": {PARTITION_KEY: {"S": file_path}},
            "UpdateExpression": f"SET {', '.join(sets)} REMOVE {', '.join(removes)}",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": expression_values,
        }
        if source and sequencer:
            names.update({"#seq": SEQUENCER_ATTRIBUTE, "#src": SOURCE_ATTRIBUTE})
            expression_values.update({":src": {"S": source}, ":seq": {"S": normalize_sequencer(sequencer) or ""}})
            request["ConditionExpression"] = "attribute_not_exists(#seq) OR #src <> :src OR #seq <= :seq"
        try:
            with upstream("DynamoDB"):
                self.client.update_item(**request)
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def get_item(self, file_path: str) -> dict[str, Any] | None:
        """Return the raw stored item of ``file_path`` (a tombstone included), or ``None``."""
        with upstream("DynamoDB"):
            response = self.client.get_item(
                TableName=self.table_name, Key={PARTITION_KEY: {"S": file_path}}, ConsistentRead=True
            )
        item: dict[str, Any] | None = response.get("Item")
        return item

    def get_items(self, file_paths: list[str], attributes: tuple[str, ...] = ()) -> dict[str, dict[str, Any]]:
        """Return the stored items of ``file_paths`` by path (BatchGetItem, 100 keys a call).

        ``attributes``: only these (and ``FilePath``), when given. Keys DynamoDB leaves
        unprocessed (throttling) are asked again with backoff.
        """
        projection: dict[str, Any] = {}
        if attributes:
            names = {f"#p{position}": name for position, name in enumerate((PARTITION_KEY, *attributes))}
            projection = {"ProjectionExpression": ", ".join(names), "ExpressionAttributeNames": names}
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(file_paths), BATCH_GET_SIZE):
            keys = [{PARTITION_KEY: {"S": path}} for path in dict.fromkeys(file_paths[start : start + BATCH_GET_SIZE])]
            pending: dict[str, Any] = {self.table_name: {"Keys": keys, "ConsistentRead": True, **projection}}
            for attempt in range(BATCH_ATTEMPTS):
                with upstream("DynamoDB"):
                    response = self.client.batch_get_item(RequestItems=pending)
                for item in response.get("Responses", {}).get(self.table_name, []):
                    found[item[PARTITION_KEY]["S"]] = item
                pending = response.get("UnprocessedKeys") or {}
                if not pending:
                    break
                _backoff(attempt)
            else:
                raise UpstreamUnavailable("DynamoDB left reads unprocessed; try again shortly")
        return found

    def write_items(self, items: list[dict[str, Any]]) -> list[str]:
        """Write whole items (BatchWriteItem, 25 a call); return the paths that could not be written.

        Unprocessed items are sent again with exponential backoff; what is still unprocessed
        after ``BATCH_ATTEMPTS`` tries is returned for the caller to report.
        """
        failed: list[str] = []
        for start in range(0, len(items), BATCH_WRITE_SIZE):
            chunk = items[start : start + BATCH_WRITE_SIZE]
            pending: dict[str, Any] = {self.table_name: [{"PutRequest": {"Item": item}} for item in chunk]}
            for attempt in range(BATCH_ATTEMPTS):
                try:
                    with upstream("DynamoDB"):
                        response = self.client.batch_write_item(RequestItems=pending)
                except UpstreamUnavailable:
                    response = {"UnprocessedItems": pending}
                pending = response.get("UnprocessedItems") or {}
                if not pending:
                    break
                _backoff(attempt)
            failed += [
                request["PutRequest"]["Item"][PARTITION_KEY]["S"] for request in pending.get(self.table_name, [])
            ]
        return failed

    def conditional_put(
        self, item: dict[str, Any], expected: dict[str, Any] | None, sequencer: str | None
    ) -> dict[str, Any]:
        """Return the ``Put`` of ``item`` conditional on the stored item still being ``expected``.

        ``expected`` is the item read before ``item`` was built from it (``None``: there was
        none). The put is refused when an upload changed it since (``UploadVersion``) or when
        the stored ``ObjectSequencer`` is greater than ``sequencer``. As a ``TransactWriteItems``
        action (``managers/store/aggregates.py``) or, unwrapped, a ``PutItem`` request.
        """
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        version = (expected or {}).get(records.UPLOAD_VERSION)
        if expected is None:
            names["#key"] = PARTITION_KEY
            conditions = ["attribute_not_exists(#key)"]
        else:
            names["#up"] = records.UPLOAD_VERSION
            conditions = ["#up = :up" if version else "attribute_not_exists(#up)"]
            if version:
                values[":up"] = version
        if sequencer:
            names["#seq"] = records.OBJECT_SEQUENCER
            values[":seq"] = {"S": sequencer}
            conditions.append("(attribute_not_exists(#seq) OR #seq <= :seq)")
        put: dict[str, Any] = {
            "TableName": self.table_name,
            "Item": item,
            "ConditionExpression": " AND ".join(conditions),
            "ExpressionAttributeNames": names,
        }
        if values:
            put["ExpressionAttributeValues"] = values
        return {"Put": put}

    def write_item(self, item: dict[str, Any], expected: dict[str, Any] | None, sequencer: str | None) -> bool:
        """Replace one item if the stored one is still ``expected`` and no newer event wrote it.

        Returns
        -------
        bool
            ``False`` when refused (see ``conditional_put``); the caller reads again and decides again.
        """
        try:
            with upstream("DynamoDB"):
                self.client.put_item(**self.conditional_put(item, expected, sequencer)["Put"])
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def delete_items(self, file_paths: list[str]) -> None:
        """Delete items by key (BatchWriteItem, 25 a call), retrying unprocessed ones with backoff."""
        for start in range(0, len(file_paths), BATCH_WRITE_SIZE):
            requests = [
                {"DeleteRequest": {"Key": {PARTITION_KEY: {"S": path}}}}
                for path in file_paths[start : start + BATCH_WRITE_SIZE]
            ]
            pending: dict[str, Any] = {self.table_name: requests}
            for attempt in range(BATCH_ATTEMPTS):
                with upstream("DynamoDB"):
                    response = self.client.batch_write_item(RequestItems=pending)
                pending = response.get("UnprocessedItems") or {}
                if not pending:
                    break
                _backoff(attempt)

    def get_record(self, file_path: str) -> dict[str, str | None] | None:
        """Return the five fields stored for ``file_path``, or ``None`` when there is no record."""
        with upstream("DynamoDB"):
            response = self.client.get_item(
                TableName=self.table_name, Key={PARTITION_KEY: {"S": file_path}}, ConsistentRead=True
            )
        item: dict[str, Any] | None = response.get("Item")
        return None if item is None or records.is_tombstone(item) else record_of(item)

    def ping(self) -> None:
        """Check that DynamoDB answers and the table is there (DescribeTable); raise if not."""
        with upstream("DynamoDB"):
            self.client.describe_table(TableName=self.table_name)

    def search(
        self, criteria: SearchFilter, limit: int, after: dict[str, str] | None = None
    ) -> tuple[list[dict[str, str | None]], dict[str, str] | None]:
        """Return up to ``limit`` records matching ``criteria``, ordered by StudyDate then path.

        Every filter is a Query on one index (``plan_for``); a sharded key's shards are queried
        side by side, ``ceil(limit / shards) + 1`` items at a time each, and merged in order,
        so a page reads about ``limit`` items plus one chunk per shard, whatever the table
        holds. ``after`` is the position returned with the previous page.

        Returns
        -------
        tuple
            The records (``s3_path`` plus the five fields) and the position after the last
            one, or ``None`` when there are no more.
        """
        plan = plan_for(criteria)
        bounds = sort_bounds(criteria, after["sort"] if after else None)
        if bounds is None:
            return [], None
        chunk = math.ceil(limit / len(plan.partitions)) + 1
        shards = [self._shard_items(plan, value, bounds, chunk) for value in plan.partitions]
        merged = heapq.merge(*shards, key=lambda item: item[SORT_ATTRIBUTE]["S"])
        if after:
            # A BETWEEN includes its low end: the item served last may come back once.
            merged = (item for item in merged if item[SORT_ATTRIBUTE]["S"] != after["sort"])
        return page_of(merged, limit)

    def _shard_items(
        self, plan: Plan, value: str, bounds: Bounds, chunk: int, sort_name: str = SORT_ATTRIBUTE
    ) -> Iterator[dict[str, Any]]:
        """Start the first Query of one partition in the pool; return its items, lazily, in order."""
        names = {"#h": plan.hash_name}
        values: dict[str, Any] = {":h": {"S": value}}
        condition = "#h = :h"
        if bounds.low is not None or bounds.high is not None:
            names["#s"] = sort_name
            if bounds.high is None:
                condition += " AND #s > :low"
            else:
                condition += " AND #s BETWEEN :low AND :high"
                values[":high"] = {"S": bounds.high}
            values[":low"] = {"S": bounds.low}
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": plan.index,
            "KeyConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
            "Limit": chunk,
        }
        add_filter(request, plan.filters)
        return continue_query(self._pool.submit(self._query, request), self._query, request)

    def merged_query(
        self, index: str, partitions: list[str], bounds: tuple[str | None, str | None], chunk: int
    ) -> Iterator[dict[str, Any]]:
        """Return the items of ``partitions`` of ``index`` merged in sort key order, lazily.

        ``bounds``: ``(low, None)`` reads keys above ``low``; ``(low, high)`` keys between both,
        inclusive; ``None`` leaves a side open. Each partition is read ``chunk`` items a Query,
        the first Queries side by side.
        """
        hash_name, sort_name = index_keys(index)
        plan = Plan(index, hash_name, partitions, {})
        shards = [self._shard_items(plan, value, Bounds(*bounds), chunk, sort_name) for value in partitions]
        return heapq.merge(*shards, key=lambda item: item[sort_name]["S"])

    def query_partition(self, index: str, value: str, after: str | None, limit: int) -> list[dict[str, Any]]:
        """Return up to ``limit`` items of one partition of ``index``, in sort key order, past ``after``."""
        keys = index_keys(index)
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": index,
            "KeyConditionExpression": "#h = :h",
            "ExpressionAttributeNames": {"#h": keys[0]},
            "ExpressionAttributeValues": {":h": {"S": value}},
            "Limit": limit,
        }
        if after is not None and len(keys) > 1:
            request["KeyConditionExpression"] += " AND #s > :after"
            request["ExpressionAttributeNames"]["#s"] = keys[1]
            request["ExpressionAttributeValues"][":after"] = {"S": after}
        items: list[dict[str, Any]] = []
        # On the caller's thread: it may itself run on a pool (the study index's), and a
        # task waiting for another task of the same pool deadlocks once every worker waits.
        first: Future[dict[str, Any]] = Future()
        first.set_result(self._query(request))
        for item in continue_query(first, self._query, request):
            items.append(item)
            if len(items) == limit:
                break
        return items

    def _query(self, request: dict[str, Any]) -> dict[str, Any]:
        with upstream("DynamoDB"):
            response: dict[str, Any] = self.client.query(**request)
        return response
