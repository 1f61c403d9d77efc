"""Give every existing record the index attributes of ``managers/store/table.py``, once, on upgrade.

Usage: python deploy/backfill.py TABLE

A new index holds only the items that carry its key attributes, and records written by an
earlier version lack the new ones (``ListShard``, ``ModalityShard``, ...). Deploy runs this
when it added an index, once the function runs the new code; it can be re-run any time. It
reads the table once (a Scan: a migration, not a search) and sets the attributes
``derived_attributes`` gives each record where they differ. An update is
conditional on the five fields being what was read, so a record rewritten meanwhile (which
got its attributes from its writer) is left alone. Prints one JSON line:
``{"read": n, "updated": n, "changed_meanwhile": n, "counted": n}``. Needs boto3 (the
project's .venv).

Records indexed from a file's header before studies existed hold its StudyInstanceUID and
SeriesInstanceUID but not ``InstanceSeries``: each gets it in a write that also counts it in its
study and series (``managers/store/aggregates.py``), conditional on the record read: ``counted``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from managers.DynamoDBManager import DynamoDBManager
from managers.store import records
from managers.store.aggregates import Aggregates
from managers.store.table import INSTANCE_SERIES, PARTITION_KEY, derived_attributes
from metadata import FIELDS


def update_request(table: str, item: dict[str, Any]) -> dict[str, Any] | None:
    """Return the UpdateItem arguments that bring one item's index attributes up to date."""
    fields = {field: item[field]["S"] for field in FIELDS if field in item}
    wanted = derived_attributes(item[PARTITION_KEY]["S"], fields)
    stale = {name: value for name, value in wanted.items() if item.get(name, {}).get("S") != value}
    if not stale:
        return None
    names = {f"#d{n}": name for n, name in enumerate(stale)}
    values: dict[str, Any] = {f":d{n}": {"S": value} for n, value in enumerate(stale.values())}
    conditions = []
    for n, field in enumerate(FIELDS):
        names[f"#f{n}"] = field
        if field in fields:
            values[f":f{n}"] = {"S": fields[field]}
            conditions.append(f"#f{n} = :f{n}")
        else:
            conditions.append(f"attribute_not_exists(#f{n})")
    return {
        "TableName": table,
        "Key": {PARTITION_KEY: item[PARTITION_KEY]},
        "UpdateExpression": "SET " + ", ".join(f"#d{n} = :d{n}" for n in range(len(stale))),
        "ConditionExpression": " AND ".join(conditions),
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
    }


def backfill(manager: DynamoDBManager) -> dict[str, int]:
    """Update every record of the manager's table whose index attributes are missing or stale; count them."""
    client, table = manager.client, manager.table_name
    aggregates = Aggregates(manager)
    counts = {"read": 0, "updated": 0, "changed_meanwhile": 0, "counted": 0}
    for page in client.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
        for item in page["Items"]:
            if item[PARTITION_KEY]["S"].startswith("#"):
                continue  # a study's or series' own item
            counts["read"] += 1
            request = update_request(table, item)
            if request is not None:
                try:
                    client.update_item(**request)
                except client.exceptions.ConditionalCheckFailedException:
                    counts["changed_meanwhile"] += 1
                    continue
                counts["updated"] += 1
            counts["counted"] += count_in_study(manager, aggregates, item[PARTITION_KEY]["S"])
    return counts


def count_in_study(manager: DynamoDBManager, aggregates: Aggregates, file_path: str) -> int:
    """Give a record of an earlier version its series keys and count it in its study; 1 if done."""
    item = manager.get_item(file_path)
    if not item or records.is_tombstone(item) or INSTANCE_SERIES in item:
        return 0
    number = item.get("InstanceNumber", {}).get("N")
    keys = records.instance_keys(
        item.get("StudyInstanceUID", {}).get("S"),
        item.get("SeriesInstanceUID", {}).get("S"),
        int(number) if number else None,
        file_path,
    )
    if not keys or records.HEADER_FIELDS not in item:
        return 0
    return 1 if aggregates.write({**item, **keys}, item, None) else 0


def main(argv: list[str]) -> None:
    manager = DynamoDBManager(endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None, table_name=argv[1])
    print(json.dumps(backfill(manager)))


if __name__ == "__main__":
    main(sys.argv)
