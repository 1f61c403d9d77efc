"""The metadata table as the deploy script creates and converges it.

Subcommands print JSON for the AWS CLI, from the one definition in ``managers/table.py``:

  create TABLE            the ``create-table --cli-input-json`` document
  missing DESCRIBE_JSON   for each index the described table lacks, a line with its name
                          and its ``update-table --cli-input-json`` document (DynamoDB adds
                          one index per update)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from managers.table import INDEXES, attribute_definitions, index_definition, table_definition


def missing_updates(described: dict) -> list[dict]:
    """Return an update-table input for each index of ours that the table does not have."""
    table = described.get("Table", described)
    present = {index["IndexName"] for index in table.get("GlobalSecondaryIndexes", [])}
    return [
        {
            "TableName": table["TableName"],
            "AttributeDefinitions": attribute_definitions(),
            "GlobalSecondaryIndexUpdates": [{"Create": index_definition(index)}],
        }
        for index in INDEXES
        if index not in present
    ]


def main(argv: list[str]) -> None:
    command, argument = argv[1], argv[2]
    if command == "create":
        print(json.dumps(table_definition(argument)))
    elif command == "missing":
        for update in missing_updates(json.loads(Path(argument).read_text())):
            name = update["GlobalSecondaryIndexUpdates"][0]["Create"]["IndexName"]
            print(name, json.dumps(update, separators=(",", ":")))
    else:
        raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    main(sys.argv)
