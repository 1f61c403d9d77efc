"""S3-triggered ingest: each new ``json/*.json`` metadata object becomes a DynamoDB item.

Deployed as a zip holding this file, ``config.py`` and the few modules it imports (no Flask,
no pydicom, no requests). In the repository it runs with the project root on ``sys.path``.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from config import S3_BUCKET_NAME
from errors import DicomMetaError, InvalidPayload, UpstreamUnavailable
from managers.aws.objects import ObjectReader
from managers.aws.s3_events import (
    Failure,
    InvalidS3Event,
    S3EventRecord,
    handle_records,
    is_test_event,
    level_handler_logger,
)
from managers.DynamoDBManager import DynamoDBManager
from metadata import FIELDS, s3_path_of, validate_payload

# Our own logger, levelled in the handler (``level_handler_logger``), never at import: the
# embedded AWS imports this module into the API's process, whose logging is its own.
log = logging.getLogger("dicom_meta.ingest")

# Built on the first invocation and kept for the container's life, not at import time, so
# tests can point the environment at a moto server first.
_clients: dict[str, Any] = {}
# What a record can come to; the answer counts each, zeros included.
OUTCOMES = ("stored", "stale", "skipped", "failed")


class IngestError(Exception):
    """Raised at the end of an invocation in which at least one record failed.

    Raising makes the platform retry the event (and, after the retries, hand it to the
    dead-letter destination) instead of dropping the failed records.
    """


def _objects() -> ObjectReader:
    if "objects" not in _clients:
        _clients["objects"] = ObjectReader.create()
    reader: ObjectReader = _clients["objects"]
    return reader


def _dynamodb() -> DynamoDBManager:
    if "dynamodb" not in _clients:
        _clients["dynamodb"] = DynamoDBManager()
    manager: DynamoDBManager = _clients["dynamodb"]
    return manager


def use_clients(s3: Any, dynamodb: DynamoDBManager) -> None:
    """Inject the S3 client and the DynamoDB manager to use (the embedded AWS, tests)."""
    _clients["objects"], _clients["dynamodb"] = ObjectReader(s3), dynamodb


def is_metadata_key(key: str) -> bool:
    """Tell whether ``key`` is a metadata document this function ingests."""
    return key.startswith("json/") and key.endswith(".json")


def read_document(bucket: str, key: str) -> dict[str, str | None]:
    """Read and validate the metadata JSON at ``bucket``/``key``.

    Raises
    ------
    InvalidPayload
        When the object is not JSON or not a valid metadata document.
    NotFound, UpstreamUnavailable
        When the object cannot be read.
    """
    body = _objects().read(bucket, key)
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        # The position only: the decoder's message would quote the document.
        raise InvalidPayload(f"not JSON (at byte {getattr(exc, 'pos', getattr(exc, 'start', 0))})") from exc
    except RecursionError as exc:  # json.loads recurses once per level of nesting
        raise InvalidPayload("not JSON: nested too deeply") from exc
    return validate_payload(payload)


def process_record(record: S3EventRecord) -> str:
    """Ingest one S3 event record; return what happened: ``stored``, ``stale`` or ``skipped``.

    ``stale``: a later event of the same object already stored its record, which is kept.
    """
    if record.bucket != S3_BUCKET_NAME or not is_metadata_key(record.key):
        return "skipped"
    document = read_document(record.bucket, record.key)
    file_path = document["s3_path"]
    if file_path is None:  # validate_payload requires one; this tells the type checker
        raise InvalidPayload("the document has no s3_path")
    attributes = {field: document[field] for field in FIELDS}
    attributes["IngestedAt"] = datetime.now(UTC).isoformat(timespec="milliseconds")
    stored = _dynamodb().put_record(
        file_path, attributes, source=s3_path_of(record.bucket, record.key), sequencer=record.sequencer
    )
    return "stored" if stored else "stale"


def failure_reason(exc: Exception) -> str:
    """Say why a record failed without any value of it: field names and error codes only.

    Invalid documents and events name the offending field, an unavailable service names the
    service; other domain errors give their code only (a NOT_FOUND message holds the key).
    """
    if isinstance(exc, InvalidPayload | UpstreamUnavailable):
        return f"{exc.code}: {exc.message}"
    if isinstance(exc, InvalidS3Event):
        return f"INVALID_EVENT: {exc}"
    if isinstance(exc, DicomMetaError):
        return exc.code
    return f"unexpected {type(exc).__name__}"


def judge(exc: Exception) -> Failure:
    """Every failed record makes the event retry: a document fixed in S3 is ingested then."""
    return Failure(failure_reason(exc), retry=True)


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Store every metadata record of an S3 event; raise if any record failed."""
    level_handler_logger(log)
    if is_test_event(event):
        log.info(json.dumps({"event": "s3_test_event", "outcome": "skipped"}))
        return dict.fromkeys(OUTCOMES, 0)
    result = handle_records(
        event, context, process_record, judge, log, line_event="record", detail_key="reason", outcomes=OUTCOMES
    )
    if result.retried:
        total = sum(result.counts.values())
        raise IngestError(f"{len(result.retried)} of {total} records failed: " + "; ".join(result.retried))
    return result.counts
