"""The indexer: each DICOM object under ``dicom/`` read header-only and its record stored.

Two event shapes reach ``lambda_handler``:

- S3 event notifications for ``dicom/`` (``ObjectCreated:*`` indexes, ``ObjectRemoved:*``
  leaves a tombstone). The newest event per key wins by its ``sequencer``. Events without
  one (the embedded AWS's moto sends none) follow the object's current state instead: it is
  read, and found absent it is removed.
  An event of many records (the embedded AWS hands a queue's batch as one) is indexed
  together first (``index_together``): one BatchGetItem, transactions shared per study.
- A Step Functions Distributed Map batch (``Items`` from an S3 listing, ``BatchInput``): each
  item is indexed unless its record holds its ETag; the answer counts what happened.

A non-DICOM object gets no record (a record indexed from it before is removed), is logged
with its code only and is acknowledged, not retried. Transient failures (S3 or DynamoDB
unreachable or throttling) make the handler raise after the other records, so the platform
retries. Deployed with pydicom; imports neither Flask nor requests.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from config import S3_BUCKET_NAME
from errors import DicomMetaError, NotDicom, NotFound, UpstreamUnavailable, scrubbed_traceback
from managers.aws.clients import make_client
from managers.aws.s3_events import (
    Failure,
    InvalidS3Event,
    S3EventRecord,
    event_records,
    handle_records,
    is_test_event,
    level_handler_logger,
)
from managers.DynamoDBManager import DynamoDBManager, normalize_sequencer
from managers.indexing import Indexer, Listed

# Our own logger, levelled in the handler, never at import: the embedded AWS imports this
# module into the API's process, whose logging is its own.
log = logging.getLogger("dicom_meta.indexer")

DICOM_PREFIX = "dicom/"
# Header reads of a Step Functions batch in parallel: the function waits on S3, not the CPU.
BATCH_WORKERS = 8

# Built on the first invocation and kept for the container's life, not at import time.
_state: dict[str, Any] = {}


class IndexingFailed(Exception):
    """Raised at the end of an invocation in which a record failed for a transient reason."""


def _indexer() -> Indexer:
    if "indexer" not in _state:
        _state["indexer"] = Indexer(make_client("s3"), DynamoDBManager())
    indexer: Indexer = _state["indexer"]
    return indexer


def use_indexer(indexer: Indexer) -> None:
    """Inject the indexer to use (the embedded AWS builds its own, tests too)."""
    _state["indexer"] = indexer


def process_record(record: S3EventRecord) -> str:
    """Apply one S3 event record; return its outcome (``indexed``, ``removed``, ``stale``, ...)."""
    if record.bucket != S3_BUCKET_NAME or not record.key.startswith(DICOM_PREFIX):
        return "skipped"
    indexer = _indexer()
    sequencer = normalize_sequencer(record.sequencer)
    if record.is_removal and sequencer:
        return indexer.remove(record.key, sequencer)
    try:
        return indexer.index_object(record.key, sequencer)
    except NotFound:
        # Gone since the event: with a sequencer its own delete event removes the record;
        # without one (moto) the current state is what counts, and it is absent.
        return "gone" if sequencer else indexer.remove(record.key)
    except NotDicom:
        indexer.remove(record.key, sequencer, only_indexed=True)
        return "not_dicom"


def judge(exc: Exception) -> Failure:
    """Retry the event for what may pass (S3 or DynamoDB failing, a bug), not for bad input."""
    if isinstance(exc, UpstreamUnavailable):
        return Failure(exc.code, retry=True)
    if isinstance(exc, DicomMetaError):
        return Failure(exc.code, retry=False)
    if isinstance(exc, InvalidS3Event):
        return Failure("INVALID_EVENT", retry=False)  # S3 never sends it: it would fail the same way
    return Failure("INTERNAL", retry=True)  # a bug: retried, then dead-lettered rather than dropped


def index_together(event: dict[str, Any]) -> dict[tuple[str, str | None], str]:
    """Index the creations of a many-record event in one go; return the outcome by (key, sequencer).

    The embedded AWS hands a queue's batch of notifications to the handler as one event, as
    Lambda hands an SQS batch: ``Indexer.index_objects`` writes its files' records at a
    fraction of the calls one by one takes. Only keys named once in the event go together
    (the records of one key keep their order, one by one); whatever it leaves undecided, or
    the whole event when it fails, ``process_record`` decides as if it had not run.
    """
    try:
        parsed = [S3EventRecord.parse(raw) for raw in event_records(event)]
    except InvalidS3Event:
        return {}  # handle_records judges each record
    named = Counter(record.key for record in parsed)
    creations = [
        (record.key, normalize_sequencer(record.sequencer))
        for record in parsed
        if record.bucket == S3_BUCKET_NAME
        and record.key.startswith(DICOM_PREFIX)
        and not record.is_removal
        and named[record.key] == 1
    ]
    if len(creations) < 2:
        return {}
    try:
        outcomes = _indexer().index_objects(creations)
    except Exception as exc:  # noqa: BLE001 - the records are decided one by one instead
        if not isinstance(exc, DicomMetaError):
            log.error("indexing records together failed\n%s", scrubbed_traceback(exc))
        return {}
    return {(key, sequencer): outcomes[key] for key, sequencer in creations if key in outcomes}


def handle_s3_event(event: dict[str, Any], context: Any) -> dict[str, int]:
    """Apply every record of an S3 event; raise at the end if one failed transiently."""
    decided = index_together(event)

    def process(record: S3EventRecord) -> str:
        return decided.get((record.key, normalize_sequencer(record.sequencer))) or process_record(record)

    result = handle_records(
        event,
        context,
        process,
        judge,
        log,
        line_event="index_record",
        detail_key="code",
        codes={"not_dicom": NotDicom.code},
    )
    if result.retried:
        raise IndexingFailed(
            f"{len(result.retried)} record(s) failed transiently or unexpectedly; the event is retried"
        )
    return result.counts


def handle_batch(event: dict[str, Any]) -> dict[str, Any]:
    """Index a Step Functions Distributed Map batch and return its counts.

    Raises ``UpstreamUnavailable`` on a transient failure so the map's retry policy re-runs
    the batch (records already written are skipped by their ETag then).
    """
    bucket = event.get("BatchInput", {}).get("bucket", S3_BUCKET_NAME)
    if bucket != S3_BUCKET_NAME:
        raise ValueError("the batch names another bucket")
    listed = [Listed(item["Key"], item.get("Etag") or item.get("ETag") or "") for item in event.get("Items", [])]
    with ThreadPoolExecutor(BATCH_WORKERS) as pool:
        result = _indexer().index_page(listed, pool, retry_transient=False)
    transient = [key for key, code in result.failures if code == UpstreamUnavailable.code]
    if transient:
        raise UpstreamUnavailable(f"{len(transient)} record(s) could not be written; retry the batch")
    log.info(json.dumps({"event": "index_batch", "indexed": result.indexed, "failed": result.failed}))
    return {
        "indexed": result.indexed,
        "unchanged": result.unchanged,
        "failed": result.failed,
        "failures": [{"key": key, "code": code} for key, code in result.failures],
    }


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Index the objects of an S3 event or of a Step Functions batch."""
    level_handler_logger(log)
    if is_test_event(event):
        log.info(json.dumps({"event": "s3_test_event", "outcome": "skipped"}))
        return {}
    if "Items" in event:
        return handle_batch(event)
    return handle_s3_event(event, context)
