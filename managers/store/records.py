"""The indexed record's DynamoDB item, and which five fields it answers (standard library only).

An item written by the indexer holds, beside ``FilePath``:

- the five fields *answered* for the file, top level, with the index attributes
  ``managers.store.table.derived_attributes`` gives them (so searches and reads are unchanged);
- ``HeaderFields``: the five values of the file's header, always;
- the header attributes of ``managers.dicom.header_record`` under their DICOM keywords (IS/US as numbers);
- ``ObjectETag``, ``ObjectSize``, ``ObjectLastModified``, ``IndexedAt`` and, from S3 events,
  ``ObjectSequencer`` (padded, so the newest event per key wins).

An upload through ``/upload-json-to-s3`` adds ``UploadedFields`` (its five values),
``UploadETag`` (the ETag of the file it was made for, ``""`` when the file was not indexed
yet), ``UploadVersion``, ``JsonS3Path`` and ``Sequencer``. The answered fields are the
uploaded ones while ``UploadETag`` is ``""`` or the file's ETag, and the header's once the
file changes; neither set of values is ever dropped.

A deleted file leaves a tombstone: ``FilePath``, ``Deleted``, ``ObjectSequencer`` and
``ExpiresAt`` (the table's TTL attribute), without any indexed attribute, so it appears in no
index and no answer, and a late create event of the deleted object loses to it.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from managers.store.table import (
    INSTANCE_SERIES,
    INSTANCE_SORT,
    PARTITION_KEY,
    TTL_ATTRIBUTE,
    derived_attributes,
    number_key,
)
from metadata import FIELDS, valid_uid

HEADER_FIELDS = "HeaderFields"
UPLOADED_FIELDS = "UploadedFields"
UPLOAD_ETAG = "UploadETag"
UPLOAD_VERSION = "UploadVersion"
OBJECT_ETAG = "ObjectETag"
OBJECT_SIZE = "ObjectSize"
OBJECT_LAST_MODIFIED = "ObjectLastModified"
OBJECT_SEQUENCER = "ObjectSequencer"
INDEXED_AT = "IndexedAt"
DELETED = "Deleted"
EXPIRES_AT = TTL_ATTRIBUTE
# A tombstone must outlive any retry of the events it answers (S3 and Lambda retry for hours,
# a dead-letter redrive for days).
TOMBSTONE_SECONDS = 14 * 24 * 3600
# What an upload writes, copied over when the indexer rewrites the item.
UPLOAD_ATTRIBUTES = ("JsonS3Path", "Sequencer", "IngestedAt", UPLOADED_FIELDS, UPLOAD_ETAG, UPLOAD_VERSION)


def fields_map(fields: dict[str, str | None]) -> dict[str, Any]:
    """Return the five fields as a DynamoDB map (``NULL`` for absent values)."""
    return {"M": {name: {"S": fields[name]} if fields.get(name) else {"NULL": True} for name in FIELDS}}


def fields_of_map(value: dict[str, Any]) -> dict[str, str | None]:
    """Return the five fields of a DynamoDB map written by ``fields_map``."""
    stored = value.get("M", {})
    return {name: stored.get(name, {}).get("S") for name in FIELDS}


def is_tombstone(item: dict[str, Any] | None) -> bool:
    """Tell whether a stored item marks a deleted file."""
    return bool(item) and DELETED in (item or {})


def etag_of(item: dict[str, Any]) -> str | None:
    """Return the ETag of the object version a stored item was indexed from."""
    value: str | None = item.get(OBJECT_ETAG, {}).get("S")
    return value


def upload_applies(existing: dict[str, Any] | None, etag: str) -> bool:
    """Tell whether an uploaded document still answers for the file version ``etag``.

    It does when it was made for that version, or before the file was first indexed.
    A record uploaded before this rule existed has ``JsonS3Path`` and no ``UploadETag``.
    """
    if not existing or is_tombstone(existing):
        return False
    if UPLOADED_FIELDS not in existing and "JsonS3Path" not in existing:
        return False
    made_for = existing.get(UPLOAD_ETAG, {}).get("S", "")
    return made_for in ("", etag)


def answered_fields(existing: dict[str, Any] | None, etag: str, header: dict[str, str | None]) -> dict[str, str | None]:
    """Return the five fields to answer: the uploaded ones while they apply, else the header's."""
    if existing is not None and upload_applies(existing, etag):
        if UPLOADED_FIELDS in existing:
            return fields_of_map(existing[UPLOADED_FIELDS])
        return {name: existing.get(name, {}).get("S") for name in FIELDS}
    return dict(header)


def indexed_item(
    header: Any, existing: dict[str, Any] | None, sequencer: str | None = None, now: datetime | None = None
) -> dict[str, Any]:
    """Return the whole item for a file whose header was read (a ``HeaderRecord``).

    ``existing`` is the stored item (or ``None``): its upload is kept, and still answers when
    it applies to this version of the file. ``sequencer`` is the padded S3 event sequencer;
    without one (a bulk run, or moto's events) the stored one is kept.
    """
    item: dict[str, Any] = {PARTITION_KEY: {"S": header.s3_path}}
    answered = answered_fields(existing, header.etag, header.fields)
    for name in FIELDS:
        if answered.get(name):
            item[name] = {"S": answered[name]}
    item.update({name: {"S": value} for name, value in derived_attributes(header.s3_path, answered).items()})
    item[HEADER_FIELDS] = fields_map(header.fields)
    item.update({name: {"S": value} for name, value in header.texts.items()})
    item.update({name: {"N": str(value)} for name, value in header.numbers.items()})
    item.update(instance_attributes(header))
    item[OBJECT_ETAG] = {"S": header.etag}
    item[OBJECT_SIZE] = {"N": str(header.size)}
    if header.last_modified:
        item[OBJECT_LAST_MODIFIED] = {"S": header.last_modified}
    item[INDEXED_AT] = {"S": (now or datetime.now(UTC)).isoformat(timespec="milliseconds")}
    if existing and not is_tombstone(existing):
        item.update({name: existing[name] for name in UPLOAD_ATTRIBUTES if name in existing})
        if upload_applies(existing, header.etag):
            # The upload now belongs to this version: a later change of the file supersedes it.
            item[UPLOAD_ETAG] = {"S": header.etag}
    stored_sequencer = (existing or {}).get(OBJECT_SEQUENCER)
    if sequencer:
        item[OBJECT_SEQUENCER] = {"S": sequencer}
    elif stored_sequencer:
        item[OBJECT_SEQUENCER] = stored_sequencer
    return item


def tombstone_item(file_path: str, sequencer: str | None, now: float | None = None) -> dict[str, Any]:
    """Return the item that replaces a deleted file's record."""
    item: dict[str, Any] = {
        PARTITION_KEY: {"S": file_path},
        DELETED: {"BOOL": True},
        EXPIRES_AT: {"N": str(int((now or time.time()) + TOMBSTONE_SECONDS))},
    }
    if sequencer:
        item[OBJECT_SEQUENCER] = {"S": sequencer}
    return item


def instance_attributes(header: Any) -> dict[str, dict[str, str]]:
    """Return the index attributes putting an instance (a ``HeaderRecord``) under its series.

    None when the header lacks a valid StudyInstanceUID or SeriesInstanceUID: such a file has
    a record but belongs to no study.
    """
    return instance_keys(
        header.texts.get("StudyInstanceUID"),
        header.texts.get("SeriesInstanceUID"),
        header.numbers.get("InstanceNumber"),
        header.s3_path,
    )


def instance_keys(
    study: str | None, series: str | None, number: int | None, file_path: str
) -> dict[str, dict[str, str]]:
    """Return ``InstanceSeries`` and ``InstanceSortKey`` of an instance, ``{}`` without valid UIDs."""
    if not (valid_uid(study) and valid_uid(series)):
        return {}
    return {INSTANCE_SERIES: {"S": str(series)}, INSTANCE_SORT: {"S": number_key(number, file_path)}}
