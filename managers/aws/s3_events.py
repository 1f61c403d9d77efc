"""S3 event notifications read through small typed classes, shared by the Lambda functions.

An S3 notification (``Records`` of eventVersion 2.x) is checked field by field here, so a
handler never indexes ``record["s3"]["object"]["key"]`` itself and a malformed record is an
``InvalidS3Event``, not a ``KeyError`` that looks like a bug. Standard library only: the
Lambda zip ships it as is.

See https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-content-structure.html
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

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
