"""The metadata table as the deploy script creates and converges it.

Subcommands print JSON for the AWS CLI, from the one definition in ``managers/store/table.py``:

  create TABLE            the ``create-table --cli-input-json`` document
  missing DESCRIBE_JSON   for each index the described table lacks, a line with its name
                          and its ``update-table --cli-input-json`` document (DynamoDB adds
                          one index per update)
  retired DESCRIBE_JSON   the name of each index of an earlier version the table still has
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from managers.store.table import (
    INDEXES,
    RETIRED_INDEXES,
    TTL_ATTRIBUTE,
    attribute_definitions,
    index_definition,
    table_definition,
)


def _present(described: dict) -> set[str]:
    table = described.get("Table", described)
    return {index["IndexName"] for index in table.get("GlobalSecondaryIndexes", [])}


def missing_updates(described: dict) -> list[dict]:
    """Return an update-table input for each index of ours that the table does not have."""
    table = described.get("Table", described)
    present = _present(described)
    return [
        {
            "TableName": table["TableName"],
            # The new index's key attributes (UpdateTable needs those and no others).
            "AttributeDefinitions": attribute_definitions((index,)),
            "GlobalSecondaryIndexUpdates": [{"Create": index_definition(index)}],
        }
        for index in INDEXES
        if index not in present
    ]


def retired_present(described: dict) -> list[str]:
    """Return the indexes of earlier versions that the table still has."""
    present = _present(described)
    return [index for index in RETIRED_INDEXES if index in present]


def main(argv: list[str]) -> None:
    command, argument = argv[1], (argv[2] if len(argv) > 2 else "")
    if command == "create":
        print(json.dumps(table_definition(argument)))
    elif command == "ttl-attribute":
        print(TTL_ATTRIBUTE)
    elif command == "missing":
        for update in missing_updates(json.loads(Path(argument).read_text())):
            name = update["GlobalSecondaryIndexUpdates"][0]["Create"]["IndexName"]
            print(name, json.dumps(update, separators=(",", ":")))
    elif command == "retired":
        for name in retired_present(json.loads(Path(argument).read_text())):
            print(name)
    else:
        raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    main(sys.argv)
