"""DynamoDBManager: the metadata records, one item per DICOM file, keyed by ``FilePath``."""

from __future__ import annotations

from typing import Any

from botocore.config import Config

from config import DYNAMODB_TABLE_NAME
from managers.aws import make_client, upstream
from metadata import FIELDS

PARTITION_KEY = "FilePath"


class DynamoDBManager:
    """Reads and writes metadata records in ``DYNAMODB_TABLE_NAME``.

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

    def put_record(self, file_path: str, attributes: dict[str, str | None]) -> None:
        """Write the record of ``file_path``, replacing any earlier one.

        Attributes whose value is ``None`` are left out of the item: DynamoDB index keys
        cannot be empty, and an absent attribute reads back as ``None`` anyway.
        """
        item = {PARTITION_KEY: {"S": file_path}}
        item.update({name: {"S": value} for name, value in attributes.items() if value is not None})
        with upstream("DynamoDB"):
            self.client.put_item(TableName=self.table_name, Item=item)

    def get_record(self, file_path: str) -> dict[str, str | None] | None:
        """Return the five fields stored for ``file_path``, or ``None`` when there is no record."""
        with upstream("DynamoDB"):
            response = self.client.get_item(
                TableName=self.table_name, Key={PARTITION_KEY: {"S": file_path}}, ConsistentRead=True
            )
        item: dict[str, Any] | None = response.get("Item")
        if item is None:
            return None
        return {field: item[field]["S"] if field in item else None for field in FIELDS}
