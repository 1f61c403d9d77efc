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
from errors import DicomMetaError, InvalidPayload, UpstreamUnavailable, scrubbed_traceback
from managers.aws.objects import ObjectReader
from managers.aws.s3_events import InvalidS3Event, S3EventRecord, event_records, is_test_event
from managers.DynamoDBManager import DynamoDBManager
from metadata import FIELDS, s3_path_of, validate_payload

# Our own logger, levelled in the handler (``_configure_logging``), never at import: the
# embedded AWS imports this module into the API's process, whose logging is its own.
log = logging.getLogger("dicom_meta.ingest")

# Built on the first invocation and kept for the container's life, not at import time, so
# tests can point the environment at a moto server first.
_clients: dict[str, Any] = {}


class IngestError(Exception):
    """Raised at the end of an invocation in which at least one record failed.

    Raising makes the platform retry the event (and, after the retries, hand it to the
    dead-letter destination) instead of dropping the failed records.
    """


def _configure_logging() -> None:
    # INFO for the per-record lines; the Lambda runtime's root handler writes them.
    if log.level == logging.NOTSET:
        log.setLevel(logging.INFO)


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


def _outcome(index: int, raw: Any) -> tuple[str, str | None]:
    """Process one raw record; return its outcome and, when it failed, why."""
    try:
        return process_record(S3EventRecord.parse(raw)), None
    except (InvalidS3Event, DicomMetaError) as exc:
        return "failed", failure_reason(exc)
    except Exception as exc:  # noqa: BLE001 - one record's bug must not hide the others; logged scrubbed
        # A bug, not bad input: logged with its traceback; the record is retried like the others.
        log.error("unexpected failure on record %d\n%s", index, scrubbed_traceback(exc))
        return "failed", failure_reason(exc)


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Store every metadata record of an S3 event; raise if any record failed."""
    _configure_logging()
    counts = {"stored": 0, "stale": 0, "skipped": 0, "failed": 0}
    if is_test_event(event):
        log.info(json.dumps({"event": "s3_test_event", "outcome": "skipped"}))
        return counts
    failures: list[str] = []
    for index, raw in enumerate(event_records(event)):
        outcome, reason = _outcome(index, raw)
        counts[outcome] += 1
        # Outcome and reason only: the document holds patient data that must not reach logs.
        line: dict[str, Any] = {
            "event": "record",
            "index": index,
            "outcome": outcome,
            "request_id": getattr(context, "aws_request_id", None),
        }
        if reason is not None:
            line["reason"] = reason
            failures.append(f"record {index}: {reason}")
        log.info(json.dumps(line))
    if failures:
        raise IngestError(f"{len(failures)} of {sum(counts.values())} records failed: " + "; ".join(failures))
    return counts
