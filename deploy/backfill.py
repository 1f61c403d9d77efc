"""Give every existing record the index attributes of ``managers/table.py``, once, on upgrade.

Usage: python deploy/backfill.py TABLE

A new index holds only the items that carry its key attributes, and records written by an
earlier version lack the new ones (``ListShard``, ``ModalityShard``, ...). Deploy runs this
when it added an index, once the function runs the new code; it can be re-run any time. It
reads the table once (a Scan: a migration, not a search) and sets the attributes
``derived_attributes`` gives each record where they differ. An update is
conditional on the five fields being what was read, so a record rewritten meanwhile (which
got its attributes from its writer) is left alone. Prints one JSON line:
``{"read": n, "updated": n, "changed_meanwhile": n}``. Needs boto3 (the project's .venv).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from config import AWS_REGION
from managers.table import PARTITION_KEY, derived_attributes
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


def backfill(client: Any, table: str) -> dict[str, int]:
    """Update every item of ``table`` whose index attributes are missing or stale; count them."""
    counts = {"read": 0, "updated": 0, "changed_meanwhile": 0}
    for page in client.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
        for item in page["Items"]:
            counts["read"] += 1
            request = update_request(table, item)
            if request is None:
                continue
            try:
                client.update_item(**request)
            except client.exceptions.ConditionalCheckFailedException:
                counts["changed_meanwhile"] += 1
                continue
            counts["updated"] += 1
    return counts


def main(argv: list[str]) -> None:
    import boto3  # only this command needs it; deploy/table.py stays standard library only

    client = boto3.client("dynamodb", region_name=AWS_REGION, endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None)
    print(json.dumps(backfill(client, argv[1])))


if __name__ == "__main__":
    main(sys.argv)
