"""Indexing: a DICOM object's header read and its record written, one by one or a page at a time.

Used by the indexer function (S3 events, Step Functions batches) and by ``python -m indexer``.
Item shapes and the rule of which five fields answer are in ``managers/store/records.py``.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from typing import Any

from config import S3_BUCKET_NAME
from errors import DicomMetaError, NotFound, UpstreamUnavailable
from managers.aws.clients import upstream
from managers.aws.objects import ObjectChanged
from managers.dicom.header_record import HeaderRecord, read_header_record
from managers.DynamoDBManager import DynamoDBManager
from managers.store import records
from managers.store.aggregates import Aggregates, Write
from metadata import s3_path_of

log = logging.getLogger(__name__)

# Tries of one file's read when S3 is unreachable or throttles (botocore has already retried
# each request 3 times), and of a conditional write that lost a race with an upload.
READ_ATTEMPTS = 3
WRITE_ATTEMPTS = 5
RETRY_BASE = 0.5
# Records written per BatchWriteItem call of a page, and read per BatchGetItem call.
WRITE_CHUNK = 25
GET_CHUNK = 100
# The report's code of an object listed, then deleted before its header was read.
DELETED_CODE = "DELETED"


@dataclass(frozen=True)
class Listed:
    """One listed object: its key and the ETag the listing gave (quoted, as S3 gives it)."""

    key: str
    etag: str


@dataclass
class PageResult:
    """What indexing a page of listed objects did."""

    indexed: int = 0
    unchanged: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)

    @property
    def failed(self) -> int:
        """Failures that count as such: a file deleted mid-run is reported, not failed."""
        return sum(1 for _, code in self.failures if code != DELETED_CODE)


class Indexer:
    """Reads headers from the bucket and writes the records; clients built once by the caller."""

    def __init__(self, s3_client: Any, dynamodb: DynamoDBManager, bucket: str = S3_BUCKET_NAME) -> None:
        self.s3 = s3_client
        self.dynamodb = dynamodb
        self.aggregates = Aggregates(dynamodb)
        self.bucket = bucket

    def path_of(self, key: str) -> str:
        return s3_path_of(self.bucket, key)

    def ping(self) -> None:
        """Check that S3 and DynamoDB answer and the bucket and table are there; raise if not."""
        with upstream("S3"):
            self.s3.head_bucket(Bucket=self.bucket)
        self.dynamodb.ping()

    def list_pages(self, prefix: str, page_size: int = 1000) -> Iterator[list[Listed]]:
        """Yield the objects under ``prefix`` a listing page at a time (keys and ETags)."""
        paginator = self.s3.get_paginator("list_objects_v2")
        pages = iter(paginator.paginate(Bucket=self.bucket, Prefix=prefix, PaginationConfig={"PageSize": page_size}))
        while True:
            with upstream("S3"):
                page = next(pages, None)
            if page is None:
                return
            yield [Listed(item["Key"], item.get("ETag", "")) for item in page.get("Contents", [])]

    def read(self, key: str) -> HeaderRecord:
        """Read the header of ``key``, again when it was overwritten mid-read.

        Raises ``NotFound``, ``NotDicom`` or ``UpstreamUnavailable``.
        """
        for _ in range(READ_ATTEMPTS - 1):
            try:
                return read_header_record(self.s3, self.bucket, key, self.path_of(key))
            except ObjectChanged:
                continue
        try:
            return read_header_record(self.s3, self.bucket, key, self.path_of(key))
        except ObjectChanged as exc:
            raise UpstreamUnavailable("the object keeps changing while it is read") from exc

    def index_object(self, key: str, sequencer: str | None = None) -> str:
        """Index one object (an S3 event); return ``indexed`` or ``stale``.

        ``stale``: a newer event of this key already wrote its record (or its tombstone).
        Raises what ``read`` raises.
        """
        header = self.read(key)
        path = self.path_of(key)
        for _ in range(WRITE_ATTEMPTS):
            existing = self.dynamodb.get_item(path)
            if _newer(existing, sequencer):
                return "stale"
            item = records.indexed_item(header, existing, sequencer)
            if self.aggregates.write(item, existing, sequencer):
                return "indexed"
        raise UpstreamUnavailable("the record kept changing while it was written")

    def index_objects(self, events: list[tuple[str, str | None]]) -> dict[str, str]:
        """Index the objects of several creation events at once (``(key, sequencer)``, distinct keys).

        What ``index_object`` does for each, at a fraction of the calls: the stored records
        read in one BatchGetItem, the new ones written in transactions shared by their study,
        each study's search keys settled once. Returns the outcome (``indexed`` or ``stale``)
        of each key decided here; a key whose header could not be read or whose record
        changed meanwhile is left out, for ``index_object`` to decide with its own handling.
        Raises ``UpstreamUnavailable`` when DynamoDB fails.
        """
        headers: dict[str, tuple[HeaderRecord, str | None]] = {}
        for key, sequencer in events:
            try:
                headers[key] = (self.read(key), sequencer)
            except DicomMetaError:
                continue  # not found, not DICOM, or S3 failing: decided one by one
        stored = self.dynamodb.get_items([header.s3_path for header, _ in headers.values()])
        outcomes: dict[str, str] = {}
        writes: list[Write] = []
        for key, (header, sequencer) in headers.items():
            existing = stored.get(header.s3_path)
            if _newer(existing, sequencer):
                outcomes[key] = "stale"
            else:
                writes.append((records.indexed_item(header, existing, sequencer), existing, sequencer))
        lost = set(self.aggregates.write_events(writes))
        for key, (header, _) in headers.items():
            if key not in outcomes and header.s3_path not in lost:
                outcomes[key] = "indexed"
        return outcomes

    def remove(self, key: str, sequencer: str | None = None, *, only_indexed: bool = False) -> str:
        """Replace the record of ``key`` by a tombstone; return ``removed``, ``stale`` or ``none``.

        ``only_indexed``: leave a record that holds only an upload (nothing read from the
        file), as for an object found not to be DICOM.
        """
        path = self.path_of(key)
        for _ in range(WRITE_ATTEMPTS):
            existing = self.dynamodb.get_item(path)
            if _newer(existing, sequencer):
                return "stale"
            if only_indexed and (existing is None or records.OBJECT_ETAG not in existing):
                return "none"
            if self.aggregates.write(records.tombstone_item(path, sequencer), existing, sequencer):
                return "removed"
        raise UpstreamUnavailable("the record kept changing while it was removed")

    def index_page(
        self,
        listed: list[Listed],
        pool: Executor,
        *,
        on_done: Callable[[int], None] | None = None,
        retry_transient: bool = True,
        result: PageResult | None = None,
    ) -> PageResult:
        """Index a page of listed objects: skip those whose record holds their ETag, read the others.

        Records are read in one BatchGetItem per 100 keys and written 25 per BatchWriteItem as
        reads complete. ``on_done(n)`` reports progress. A file whose read still fails after
        the retries is reported with its error code (``retry_transient=False`` raises
        ``UpstreamUnavailable`` instead, for a caller that retries the whole page). Counts go
        into ``result`` when given, so a caller interrupted mid-page still knows them.
        """
        result = result if result is not None else PageResult()
        # The ETags first (small items, the calls in parallel), whole records only for files to read.
        paths = [self.path_of(entry.key) for entry in listed]
        # A tombstone has no ObjectETag, so it never matches; projecting one attribute keeps the
        # look-up small (moto converts the whole item once per projected attribute).
        versions = self._get_items(pool, paths, (records.OBJECT_ETAG,))
        to_read = []
        for entry, path in zip(listed, paths, strict=True):
            stored = versions.get(path)
            if stored and records.etag_of(stored) == entry.etag:
                result.unchanged += 1
            else:
                to_read.append(entry)
        if on_done and result.unchanged:
            on_done(result.unchanged)
        existing = self._get_items(
            pool, [path for path in map(self.path_of, (e.key for e in to_read)) if path in versions]
        )
        futures: list[Future[HeaderRecord | str]] = [
            pool.submit(self._read_or_code, entry.key, retry_transient) for entry in to_read
        ]
        pending: list[tuple[HeaderRecord, dict[str, Any] | None]] = []
        try:
            for entry, future in zip(to_read, futures, strict=True):
                outcome = future.result()
                if isinstance(outcome, str):
                    result.failures.append((entry.key, outcome))
                else:
                    pending.append((outcome, existing.get(outcome.s3_path)))
                if len(pending) >= WRITE_CHUNK:
                    self._write(pending, result)
                    pending = []
                if on_done:
                    on_done(1)
        finally:
            for future in futures:
                future.cancel()
            # What was read is written even when interrupted, so a re-run does not read it again.
            self._write(pending, result)
        return result

    def _get_items(
        self, pool: Executor, paths: list[str], attributes: tuple[str, ...] = ()
    ) -> dict[str, dict[str, Any]]:
        """BatchGetItem the paths, 100 keys a call, the calls in parallel on ``pool``."""
        chunks = [paths[start : start + GET_CHUNK] for start in range(0, len(paths), GET_CHUNK)]
        found: dict[str, dict[str, Any]] = {}
        for part in pool.map(lambda chunk: self.dynamodb.get_items(chunk, attributes), chunks):
            found.update(part)
        return found

    def _write(self, read: list[tuple[HeaderRecord, dict[str, Any] | None]], result: PageResult) -> None:
        """Write the records of headers read in bulk, with their studies' counters.

        A record that changed since it was read (an event or an upload got there first) is
        decided again on its own, from the stored record.
        """
        if not read:
            return
        pairs = [(records.indexed_item(header, existing), existing) for header, existing in read]
        unwritten = set(self.aggregates.write_many(pairs))
        for header, _ in read:
            if header.s3_path in unwritten and self._rewrite(header) is not None:
                unwritten.discard(header.s3_path)
        result.indexed += len(read) - len(unwritten)
        result.failures += [(_key_of(path), UpstreamUnavailable.code) for path in sorted(unwritten)]

    def _rewrite(self, header: HeaderRecord) -> str | None:
        """Write one record read in bulk against the stored one; ``None`` when it kept changing."""
        for _ in range(WRITE_ATTEMPTS):
            existing = self.dynamodb.get_item(header.s3_path)
            if records.is_tombstone(existing):
                return "stale"  # deleted since it was listed: the delete stands
            if self.aggregates.write(records.indexed_item(header, existing), existing, None):
                return "indexed"
        return None

    def _read_or_code(self, key: str, retry_transient: bool) -> HeaderRecord | str:
        """Read one header; return the error code instead of raising (except when told to)."""
        for attempt in range(READ_ATTEMPTS):
            try:
                return self.read(key)
            except NotFound:
                return DELETED_CODE
            except UpstreamUnavailable:
                if not retry_transient:
                    raise
                if attempt == READ_ATTEMPTS - 1:
                    return UpstreamUnavailable.code
                time.sleep(random.uniform(0, RETRY_BASE * 2**attempt))
            except DicomMetaError as exc:
                return exc.code
        return UpstreamUnavailable.code


def _newer(existing: dict[str, Any] | None, sequencer: str | None) -> bool:
    """Tell whether the stored item was written by a later event than ``sequencer``."""
    stored = (existing or {}).get(records.OBJECT_SEQUENCER, {}).get("S")
    return bool(sequencer and stored and stored > sequencer)


def _key_of(s3_path: str) -> str:
    return s3_path.split("/", 3)[3]
