"""S3-triggered ingest: each new ``json/*.json`` metadata object becomes a DynamoDB item.

Deployed as a zip holding this file, ``config.py`` and the few modules it imports (no Flask,
no pydicom, no requests). In the repository it runs with the project root on ``sys.path``.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_plus

from config import S3_BUCKET_NAME
from errors import DicomMetaError, scrubbed_traceback
from managers.aws import make_client, upstream
from managers.DynamoDBManager import DynamoDBManager
from metadata import FIELDS, s3_path_of, validate_payload

log = logging.getLogger()
log.setLevel(logging.INFO)

# Built on the first invocation and kept for the container's life, not at import time, so
# tests can point the environment at a moto server first.
_clients: dict[str, Any] = {}


class IngestError(Exception):
    """Raised at the end of an invocation in which at least one record failed.

    Raising makes the platform retry the event (and, after the retries, hand it to the
    dead-letter destination) instead of dropping the failed records.
    """


def _s3() -> Any:
    if "s3" not in _clients:
        _clients["s3"] = make_client("s3")
    return _clients["s3"]


def _dynamodb() -> DynamoDBManager:
    if "dynamodb" not in _clients:
        _clients["dynamodb"] = DynamoDBManager()
    return _clients["dynamodb"]


def use_clients(s3: Any, dynamodb: DynamoDBManager) -> None:
    """Inject the clients to use (the embedded AWS builds its own, tests too)."""
    _clients["s3"], _clients["dynamodb"] = s3, dynamodb


def is_metadata_key(key: str) -> bool:
    """Tell whether ``key`` is a metadata document this function ingests."""
    return key.startswith("json/") and key.endswith(".json")


def read_document(bucket: str, key: str) -> dict[str, str | None]:
    """Read and validate the metadata JSON at ``bucket``/``key``."""
    with upstream("S3"):
        body = _s3().get_object(Bucket=bucket, Key=key)["Body"].read()
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not JSON: {exc}") from exc
    except RecursionError as exc:  # json.loads recurses once per level of nesting
        raise ValueError("not JSON: nested too deeply") from exc
    return validate_payload(payload)


def process_record(record: dict[str, Any]) -> str:
    """Ingest one S3 event record; return what happened: ``stored``, ``stale`` or ``skipped``.

    ``stale``: a later event of the same object already stored its record, which is kept.
    """
    bucket = record["s3"]["bucket"]["name"]
    key = unquote_plus(record["s3"]["object"]["key"])
    if bucket != S3_BUCKET_NAME or not is_metadata_key(key):
        return "skipped"
    document = read_document(bucket, key)
    attributes = {field: document[field] for field in FIELDS}
    attributes["IngestedAt"] = datetime.now(UTC).isoformat(timespec="milliseconds")
    stored = _dynamodb().put_record(
        document["s3_path"],
        attributes,
        source=s3_path_of(bucket, key),
        sequencer=record["s3"]["object"].get("sequencer"),
    )
    return "stored" if stored else "stale"


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Store every metadata record of an S3 event; raise if any record failed."""
    counts = {"stored": 0, "stale": 0, "skipped": 0, "failed": 0}
    if event.get("Event") == "s3:TestEvent":
        log.info(json.dumps({"event": "s3_test_event", "outcome": "skipped"}))
        return counts
    failures: list[str] = []
    for index, record in enumerate(event.get("Records", [])):
        try:
            outcome = process_record(record)
        except (DicomMetaError, ValueError, KeyError, TypeError) as exc:
            outcome = "failed"
            reason = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
            failures.append(f"record {index}: {reason}")
        except Exception as exc:  # noqa: BLE001 - one failed record must not hide the others; logged scrubbed
            outcome = "failed"
            failures.append(f"record {index}: unexpected {type(exc).__name__}")
            log.error("unexpected failure on record %d\n%s", index, scrubbed_traceback(exc))
        counts[outcome] += 1
        # Outcome and reason only: the document holds patient data that must not reach logs,
        # and reasons name fields, never their values.
        line = {
            "event": "record",
            "index": index,
            "outcome": outcome,
            "request_id": getattr(context, "aws_request_id", None),
        }
        if outcome == "failed":
            line["reason"] = failures[-1]
        log.info(json.dumps(line))
    if failures:
        raise IngestError(f"{len(failures)} of {sum(counts.values())} records failed: " + "; ".join(failures))
    return counts
