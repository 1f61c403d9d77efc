"""The metadata table's shape: key, derived attributes and indexes (standard library only).

One definition for the embedded AWS, the deploy script and ``DynamoDBManager``. An item
carries, besides ``FilePath`` and the five fields, two derived attributes the indexes use:

- ``StudyDateKey``: ``<StudyDate>#<FilePath>`` (``#<FilePath>`` without a date). As a sort key
  it orders results by StudyDate, then path, and makes every position in an index unique;
  a date range is a ``BETWEEN`` on it.
- ``StudyMonth``: ``YYYYMM`` of a valid StudyDate, the partition key of the date index, so a
  date search spreads over one partition per month instead of one hot partition.
"""

from __future__ import annotations

from typing import Any

PARTITION_KEY = "FilePath"
SORT_ATTRIBUTE = "StudyDateKey"
MONTH_ATTRIBUTE = "StudyMonth"

# Index name → its partition key. Each sorts on StudyDateKey and projects every attribute,
# so a page is read from the index alone.
INDEXES: dict[str, str] = {
    "PatientID-StudyDate": "PatientID",
    "Modality-StudyDate": "Modality",
    "StudyMonth-StudyDate": MONTH_ATTRIBUTE,
}


def index_definition(index: str) -> dict[str, Any]:
    """Return one global secondary index as ``create_table`` and ``update_table`` take it."""
    return {
        "IndexName": index,
        "KeySchema": [
            {"AttributeName": INDEXES[index], "KeyType": "HASH"},
            {"AttributeName": SORT_ATTRIBUTE, "KeyType": "RANGE"},
        ],
        "Projection": {"ProjectionType": "ALL"},
    }


def attribute_definitions() -> list[dict[str, str]]:
    """Return the definitions of every key attribute of the table and its indexes."""
    return [
        {"AttributeName": name, "AttributeType": "S"} for name in (PARTITION_KEY, SORT_ATTRIBUTE, *INDEXES.values())
    ]


def table_definition(table_name: str) -> dict[str, Any]:
    """Return the ``create_table`` arguments of the metadata table."""
    return {
        "TableName": table_name,
        "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": [{"AttributeName": PARTITION_KEY, "KeyType": "HASH"}],
        "AttributeDefinitions": attribute_definitions(),
        "GlobalSecondaryIndexes": [index_definition(index) for index in INDEXES],
    }
