"""PLACEHOLDER, to be replaced by branch issue-12a's indexer at merge: just enough to deploy and test.

It gives the deploy (branch issue-12b) a handler of the agreed shape: ``lambda_handler(event,
context)`` for a Step Functions Distributed Map batch (``{"Items": [...], "BatchInput":
{"bucket": ...}}``), returning ``{"indexed", "unchanged", "failed", "failures"}``. It imports
pydicom, so the zip must vendor it, and it stores only ``FilePath``, the five fields and the
ETag. It does not handle S3 notifications, sequencers or uploaded documents. It imports
pydicom itself rather than ``managers.DicomManager``: on this branch that module imports
``managers.S3Manager``, which imports requests, and the zip builder rightly refuses requests.
"""

from __future__ import annotations

import io
from typing import Any

from pydicom import dcmread
from pydicom.errors import InvalidDicomError

from config import DYNAMODB_TABLE_NAME
from managers.aws import make_client
from metadata import FIELDS, s3_path_of

# Enough for the small headers the deploy test indexes; the real indexer reads ranges as needed.
HEADER_BYTES = 64 * 1024


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Index each item of a Distributed Map batch; report the ones that are not DICOM."""
    s3, dynamodb = make_client("s3"), make_client("dynamodb")
    bucket = event["BatchInput"]["bucket"]
    counts: dict[str, Any] = {"indexed": 0, "unchanged": 0, "failed": 0, "failures": []}
    for item in event.get("Items", []):
        head = s3.get_object(Bucket=bucket, Key=item["Key"], Range=f"bytes=0-{HEADER_BYTES - 1}")["Body"].read()
        try:
            dataset = dcmread(io.BytesIO(head), stop_before_pixels=True)
        except (InvalidDicomError, EOFError, ValueError):
            counts["failed"] += 1
            counts["failures"].append({"key": item["Key"], "code": "NOT_DICOM"})
            continue
        record = {"FilePath": {"S": s3_path_of(bucket, item["Key"])}, "ETag": {"S": item["Etag"]}}
        for name in FIELDS:
            value = dataset.get(name)
            if value not in (None, ""):
                record[name] = {"S": str(value)}
        dynamodb.put_item(TableName=DYNAMODB_TABLE_NAME, Item=record)
        counts["indexed"] += 1
    return counts
