"""The metadata table's shape: key, derived attributes and indexes (no AWS calls).

One definition for the embedded AWS, the deploy script and ``DynamoDBManager``. A record
carries, besides ``FilePath`` and the five fields, derived attributes the indexes key on,
all computed by ``derived_attributes`` (every writer calls it):

- ``StudyDateKey``: ``<StudyDate>#<FilePath>`` (``#<FilePath>`` when the StudyDate is absent or
  not a valid DA). The sort key of every index: results come by StudyDate then path, undated
  first, every position is unique (a cursor resumes from it) and a date range is a
  ``BETWEEN`` on it.
- ``ModalityShard``, ``InstitutionShard``, ``ListShard``: ``<value>#<k>`` with ``k`` in
  ``0..SHARDS-1`` chosen by a stable hash of ``FilePath`` (``ListShard``'s value is the
  constant ``all``). A key with few values would pour every write of a bulk import into one
  partition, which AWS throttles at 1,000 WCU/s (GSIs included); ``SHARDS`` partitions per
  value spread them. A search queries the value's shards in parallel and merges them.

``PatientID`` is a partition key as it is: it has as many values as patients, so writes
spread by themselves, and one patient's burst is one study's worth of writes.
"""

from __future__ import annotations

import hashlib
from typing import Any

from metadata import FIELDS, valid_date

PARTITION_KEY = "FilePath"
SORT_ATTRIBUTE = "StudyDateKey"
MODALITY_SHARD = "ModalityShard"
INSTITUTION_SHARD = "InstitutionShard"
LIST_SHARD = "ListShard"
# The value of every record's ListShard, before its shard suffix.
LIST_VALUE = "all"

# Every attribute derived_attributes may set: a writer that updates a record's fields sets the
# new ones and removes the rest.
INDEX_ATTRIBUTES: tuple[str, ...] = (SORT_ATTRIBUTE, LIST_SHARD, MODALITY_SHARD, INSTITUTION_SHARD)

# Partitions per sharded key value: 8 partitions take 8,000 WCU/s of one modality, one
# institution or the whole archive. Changing it means rewriting every record's shard keys.
SHARDS = 8

# The study view's key attributes (``managers/store/aggregates.py`` writes them): search keys of
# studies, series by study, instances by series, instances by SOPInstanceUID.
STUDY_TOKEN = "StudyToken"
STUDY_SORT = "StudySortKey"
SERIES_STUDY = "SeriesStudy"
SERIES_SORT = "SeriesSortKey"
INSTANCE_SERIES = "InstanceSeries"
INSTANCE_SORT = "InstanceSortKey"
SOP_INSTANCE = "SOPInstanceUID"

# Index name → its partition key and sort key. Each projects every attribute, so a page is
# read from the index alone.
INDEXES: dict[str, tuple[str, str | None]] = {
    "PatientID-StudyDate": ("PatientID", SORT_ATTRIBUTE),
    "ModalityShard-StudyDate": (MODALITY_SHARD, SORT_ATTRIBUTE),
    "InstitutionShard-StudyDate": (INSTITUTION_SHARD, SORT_ATTRIBUTE),
    "ListShard-StudyDate": (LIST_SHARD, SORT_ATTRIBUTE),
    "StudyToken-StudySort": (STUDY_TOKEN, STUDY_SORT),
    "SeriesStudy-SeriesSort": (SERIES_STUDY, SERIES_SORT),
    "InstanceSeries-InstanceSort": (INSTANCE_SERIES, INSTANCE_SORT),
    "SOPInstanceUID": (SOP_INSTANCE, None),
}

# Indexes earlier versions created and nothing queries any more. Deploy drops them (kept, the
# unsharded modality index would keep its hot partitions); docs/ARCHITECTURE.md says when.
RETIRED_INDEXES: tuple[str, ...] = ("Modality-StudyDate", "StudyMonth-StudyDate")


# The tombstone's expiry (managers/store/records.py), the table's TTL attribute: DynamoDB deletes a
# deleted file's marker once no retry of its events can arrive any more.
TTL_ATTRIBUTE = "ExpiresAt"


def shard_of(key: str) -> int:
    """Return the shard (``0..SHARDS-1``) of a key (a record's FilePath, a study's UID).

    Stable across processes and versions: Python's hash() is salted per process, and the
    shard must be the same for every writer.
    """
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % SHARDS


def shard_values(value: str) -> list[str]:
    """Return every partition key value of ``value``'s shards, in shard order."""
    return [f"{value}#{shard}" for shard in range(SHARDS)]


def sort_key(study_date: str | None, file_path: str) -> str:
    """Return the ``StudyDateKey`` of a record."""
    return f"{valid_date(study_date) or ''}#{file_path}"


def derived_attributes(file_path: str, fields: dict[str, Any]) -> dict[str, str]:
    """Return the index attributes of a record with these fields (``{}`` when it has none).

    A record none of whose five fields has a value (a deleted file's marker, say) is in no
    index: searches list records by what they hold.
    """
    if not any(fields.get(field) for field in FIELDS):
        return {}
    shard = shard_of(file_path)
    derived = {SORT_ATTRIBUTE: sort_key(fields.get("StudyDate"), file_path), LIST_SHARD: f"{LIST_VALUE}#{shard}"}
    for attribute, field in ((MODALITY_SHARD, "Modality"), (INSTITUTION_SHARD, "InstitutionName")):
        if fields.get(field):
            derived[attribute] = f"{fields[field]}#{shard}"
    return derived


def index_keys(index: str) -> list[str]:
    """Return the key attributes of one index: its partition key, then its sort key if any."""
    hash_key, range_key = INDEXES[index]
    return [hash_key] if range_key is None else [hash_key, range_key]


def index_definition(index: str) -> dict[str, Any]:
    """Return one global secondary index as ``create_table`` and ``update_table`` take it."""
    return {
        "IndexName": index,
        "KeySchema": [
            {"AttributeName": name, "KeyType": key_type}
            for name, key_type in zip(index_keys(index), ("HASH", "RANGE"), strict=False)
        ],
        "Projection": {"ProjectionType": "ALL"},
    }


def attribute_definitions(indexes: tuple[str, ...] | None = None) -> list[dict[str, str]]:
    """Return the definitions of the table's key and of the key attributes of ``indexes`` (all)."""
    names = [PARTITION_KEY]
    for index in INDEXES if indexes is None else indexes:
        names += [name for name in index_keys(index) if name not in names]
    return [{"AttributeName": name, "AttributeType": "S"} for name in names]


def table_definition(table_name: str) -> dict[str, Any]:
    """Return the ``create_table`` arguments of the metadata table."""
    return {
        "TableName": table_name,
        "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": [{"AttributeName": PARTITION_KEY, "KeyType": "HASH"}],
        "AttributeDefinitions": attribute_definitions(),
        "GlobalSecondaryIndexes": [index_definition(index) for index in INDEXES],
    }


def number_key(number: int | None, tail: str) -> str:
    """Return a sort key ordering by ``number`` (any 32-bit integer), absent numbers last."""
    if number is None or not -(2**31) <= number < 2**31:
        return f"~#{tail}"
    return f"{number + 2**31:010d}#{tail}"
