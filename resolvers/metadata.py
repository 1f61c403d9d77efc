"""Resolvers of the metadata operations: live extraction, stored records, JSON upload."""

from __future__ import annotations

from typing import Any

from managers.bundle import Managers
from metadata import checked_s3_path, json_key_for, parse_s3_path, validate_payload

# A metadata record as both APIs answer it: ``s3_path`` and the five fields.
Record = dict[str, str | None]


def extract_metadata(managers: Managers, s3_path: str | None) -> Record:
    """Read the five fields of the DICOM file at ``s3_path`` live from S3."""
    path = checked_s3_path(s3_path)
    return {"s3_path": path, **managers.dicom.extract_metadata(path)}


def fetch_stored_metadata(managers: Managers, s3_path: str | None) -> Record | None:
    """Return the record stored in DynamoDB for ``s3_path``, or ``None`` when there is none."""
    path = checked_s3_path(s3_path)
    fields = managers.dynamodb.get_record(path)
    return None if fields is None else {"s3_path": path, **fields}


def upload_json(managers: Managers, payload: Any) -> str:
    """Validate a metadata document, upload it through a presigned URL; return its s3 path."""
    document = validate_payload(payload)
    _, dicom_key = parse_s3_path(document["s3_path"])
    return managers.s3.upload_json(json_key_for(dicom_key), document)


def dicom_json(managers: Managers, s3_path: str, keywords: list[str] | None = None) -> dict[str, Any]:
    """Return the header of the DICOM file at ``s3_path`` in the DICOM JSON model."""
    return managers.dicom.dicom_json(checked_s3_path(s3_path), keywords)
