"""S3 event notifications read through small typed classes, and the per-record loop over them,
shared by the Lambda functions.

An S3 notification (``Records`` of eventVersion 2.x) is checked field by field here, so a
handler never indexes ``record["s3"]["object"]["key"]`` itself and a malformed record is an
``InvalidS3Event``, not a ``KeyError`` that looks like a bug. Standard library (and
``errors``) only: both Lambda zips ship it as is.

See https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-content-structure.html
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

from errors import DicomMetaError, scrubbed_traceback

# What S3 sends once when a notification is configured; it carries no records.
TEST_EVENT = "s3:TestEvent"


class InvalidS3Event(ValueError):
    """Raised when an event or one of its records lacks a field S3 always sends, or has one of
    the wrong type. The message names the field, never its value (keys hold patient data)."""


def is_test_event(event: Mapping[str, Any]) -> bool:
    """Tell whether ``event`` is S3's ``s3:TestEvent`` message (skip it)."""
    return event.get("Event") == TEST_EVENT


def event_records(event: Mapping[str, Any]) -> list[Any]:
    """Return the raw records of ``event``, to be read one by one with ``S3EventRecord.parse``.

    Raises
    ------
    InvalidS3Event
        When ``Records`` is present but not a list.
    """
    records = event.get("Records", [])
    if not isinstance(records, list):
        raise InvalidS3Event("Records must be a list")
    return records


def _field(data: Any, path: str, kind: type, required: bool = True) -> Any:
    """Return the value at the dotted ``path`` of ``data``, checking it is a ``kind``."""
    value = data
    for name in path.split("."):
        if not isinstance(value, Mapping):
            raise InvalidS3Event(f"{path} is missing")
        value = value.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, kind) or isinstance(value, bool):
        raise InvalidS3Event(f"{path} must be a {kind.__name__}" if value is not None else f"{path} is missing")
    return value


@dataclass(frozen=True)
class S3EventRecord:
    """One record of an S3 event notification, its key already URL-decoded.

    ``sequencer`` orders events of one key (absent from moto's events); ``size`` and ``etag``
    are absent from removal events; ``event_name`` (``ObjectCreated:Put``…) is empty when absent.
    """

    bucket: str
    key: str
    event_name: str = ""
    sequencer: str | None = None
    size: int | None = None
    etag: str | None = None

    @classmethod
    def parse(cls, record: Any) -> S3EventRecord:
        """Read one raw record.

        Raises
        ------
        InvalidS3Event
            When a required field (s3.bucket.name, s3.object.key) is missing or any field
            has the wrong type.
        """
        if not isinstance(record, Mapping):
            raise InvalidS3Event("a record must be an object")
        return cls(
            event_name=_field(record, "eventName", str, required=False) or "",
            bucket=_field(record, "s3.bucket.name", str),
            # S3 URL-encodes keys in events: '+' for a space, '%2B' for a plus.
            key=unquote_plus(_field(record, "s3.object.key", str)),
            sequencer=_field(record, "s3.object.sequencer", str, required=False),
            size=_field(record, "s3.object.size", int, required=False),
            etag=_field(record, "s3.object.eTag", str, required=False),
        )

    @property
    def is_removal(self) -> bool:
        """Tell whether the object was deleted (``ObjectRemoved:*``) rather than created."""
        return self.event_name.startswith("ObjectRemoved")


def level_handler_logger(log: logging.Logger) -> None:
    """Give a handler's own logger INFO for its per-record lines, unless already levelled.

    Called by each handler on invocation, never at import: the embedded AWS imports the
    handlers into the API's process, whose logging is its own. The Lambda runtime's root
    handler writes the lines.
    """
    if log.level == logging.NOTSET:
        log.setLevel(logging.INFO)


@dataclass(frozen=True)
class Failure:
    """A handler's verdict on a record that raised: what its log line says, and whether the
    event must be retried for it."""

    detail: str
    retry: bool


@dataclass
class EventResult:
    """What handling an event's records did: outcomes counted, and the failures to retry for."""

    counts: dict[str, int]
    retried: list[str] = field(default_factory=list)


def handle_records(
    event: Mapping[str, Any],
    context: Any,
    process: Callable[[S3EventRecord], str],
    judge: Callable[[Exception], Failure],
    log: logging.Logger,
    *,
    line_event: str,
    detail_key: str,
    outcomes: tuple[str, ...] = (),
    codes: Mapping[str, str] | None = None,
) -> EventResult:
    """Apply ``process`` to each record of an S3 event, one record's failure hiding no other.

    The per-record loop of both Lambda functions, in the manner of Powertools' batch utility
    (which itself serves SQS, Kinesis and DynamoDB streams: an S3 invocation has no partial
    batch response to report, so the whole event is retried, and the runtime lacks the
    package). Each record gets one JSON log line: ``line_event``, its index, its outcome, the
    request id and, for a failure, ``detail_key``: ``judge``'s detail. Outcomes, codes and
    details only: keys and values may hold patient data. An exception that is neither bad
    input nor a domain error is a bug: logged with its scrubbed traceback, and judged too.

    Parameters
    ----------
    outcomes
        Outcomes counted even when no record has them (the ingest answers all four).
    codes
        A code to log with an outcome that is no failure (the indexer's ``not_dicom``).

    Raises
    ------
    InvalidS3Event
        When ``Records`` is not a list (there is no record to judge).
    """
    result = EventResult(counts=dict.fromkeys(outcomes, 0))
    for index, raw in enumerate(event_records(event)):
        line: dict[str, Any] = {"event": line_event, "index": index}
        try:
            outcome = process(S3EventRecord.parse(raw))
        except Exception as exc:  # noqa: BLE001 - one record's failure must not hide the others
            if not isinstance(exc, InvalidS3Event | DicomMetaError):
                log.error("unexpected failure on record %d\n%s", index, scrubbed_traceback(exc))
            failure = judge(exc)
            outcome, line[detail_key] = "failed", failure.detail
            if failure.retry:
                result.retried.append(f"record {index}: {failure.detail}")
        if codes and outcome in codes:
            line[detail_key] = codes[outcome]
        result.counts[outcome] = result.counts.get(outcome, 0) + 1
        line.update(outcome=outcome, request_id=getattr(context, "aws_request_id", None))
        log.info(json.dumps(line))
    return result
