"""The metadata document: its five fields, s3 paths and the rules an upload must follow.

Pure functions with no AWS or pydicom imports, so the Lambda package can carry this module.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from config import S3_BUCKET_NAME
from errors import ForbiddenBucket, InvalidArgument, InvalidPayload, InvalidS3Path, MissingParameter

# DICOM keywords, in the order every answer lists them (docs/API.md, "Common to every route").
FIELDS: tuple[str, ...] = ("PatientID", "StudyDate", "Modality", "InstitutionName", "StudyDescription")

# The longest VR among the five (LO) holds 64 characters (PS3.5 6.2); a value far beyond it
# is a client bug, and it must not grow a DynamoDB item towards its 400 KB ceiling.
MAX_FIELD_LENGTH = 1024

# Matched whole (fullmatch): `$` would let a trailing newline through, and a key with control
# characters is no file anyone meant. The key part is checked again by json_key_for.
_S3_PATH = re.compile(r"s3://(?P<bucket>[^/\x00-\x1f\x7f]+)/(?P<key>[^\x00-\x1f\x7f]+)")


def parse_s3_path(s3_path: str | None) -> tuple[str, str]:
    """Split ``s3://bucket/key`` into bucket and key, allowing only ``S3_BUCKET_NAME``.

    Raises
    ------
    MissingParameter
        When the path is ``None`` or empty.
    InvalidS3Path
        When it is not of the form ``s3://bucket/key``.
    ForbiddenBucket
        When the bucket is not ``S3_BUCKET_NAME``.
    """
    if not s3_path:
        raise MissingParameter("s3_path is required")
    match = _S3_PATH.fullmatch(s3_path)
    if not match:
        raise InvalidS3Path("s3_path must look like s3://bucket/key")
    bucket, key = match["bucket"], match["key"]
    if bucket != S3_BUCKET_NAME:
        raise ForbiddenBucket(f"only the bucket {S3_BUCKET_NAME!r} may be read")
    return bucket, key


def checked_s3_path(s3_path: str | None) -> str:
    """Return ``s3_path`` once ``parse_s3_path`` has accepted it (same errors)."""
    return s3_path_of(*parse_s3_path(s3_path))


def s3_path_of(bucket: str, key: str) -> str:
    """Return the ``s3://bucket/key`` form of an object."""
    return f"s3://{bucket}/{key}"


# json/ keys under this folder hold the documents of keys outside the common case (below).
OTHER_KEYS_FOLDER = "_/"


def json_key_for(dicom_key: str) -> str:
    """Return the ``json/`` key that holds the metadata of ``dicom_key``; never the same for two keys.

    The common case, ``dicom/<rest>.dcm`` (lower-case ``.dcm``), becomes ``json/<rest>.json``:
    ``dicom/a/anon-1.dcm`` gives ``json/a/anon-1.json``. Any other key K (outside ``dicom/``,
    without ``.dcm``, with ``.DCM``) becomes ``json/_/K.json`` whole, so ``c/b.dcm``,
    ``dicom/c/b`` and ``dicom/c/b.DCM`` no longer share ``json/c/b.json``. A common-case
    key whose image would fall under ``json/_/`` (``dicom/_/x.dcm``) is refused.

    Raises
    ------
    InvalidPayload
        For ``dicom/_/….dcm``: its document would take the place of another key's.
    """
    rest = dicom_key.removeprefix("dicom/")
    if rest == dicom_key or not rest.endswith(".dcm"):
        return f"json/{OTHER_KEYS_FOLDER}{dicom_key}.json"
    if rest.startswith(OTHER_KEYS_FOLDER):
        raise InvalidPayload(
            f"s3_path may not lie under dicom/{OTHER_KEYS_FOLDER}: json/{OTHER_KEYS_FOLDER} holds "
            "the documents of keys outside dicom/ or without .dcm"
        )
    return f"json/{rest.removesuffix('.dcm')}.json"


def validate_payload(payload: Any) -> dict[str, str | None]:
    """Check an uploaded metadata document and return its normal form.

    The normal form has ``s3_path`` and the five fields, absent ones as ``None``: the shape
    ``/dicom-metadata`` answers, so a round trip gives back the same body.

    Raises
    ------
    InvalidPayload
        When the payload is not an object, lacks a valid ``s3_path``, has keys other than
        the six, or a field that is neither a string nor null.
    ForbiddenBucket
        When ``s3_path`` names another bucket.
    """
    if not isinstance(payload, dict):
        raise InvalidPayload("the body must be a JSON object")
    s3_path = payload.get("s3_path")
    if not isinstance(s3_path, str):
        raise InvalidPayload("the body needs s3_path, a string s3://bucket/key")
    try:
        parse_s3_path(s3_path)
    except (MissingParameter, InvalidS3Path) as exc:
        raise InvalidPayload(f"s3_path is not valid: {exc.message}") from exc
    # Unknown keys are refused rather than dropped: a client sending "patientId" would
    # otherwise store a null without noticing. They are counted, not quoted: the ingest logs
    # this message, and a key is the client's text (it may hold a newline or patient data).
    unknown = set(payload) - {"s3_path", *FIELDS}
    if unknown:
        raise InvalidPayload(f"{len(unknown)} unknown key(s); allowed: s3_path, {', '.join(FIELDS)}")
    document: dict[str, str | None] = {"s3_path": s3_path}
    for field in FIELDS:
        value = payload.get(field)
        if value is not None and not isinstance(value, str):
            raise InvalidPayload(f"{field} must be a string or null")
        if value is not None and len(value) > MAX_FIELD_LENGTH:
            raise InvalidPayload(f"{field} is longer than {MAX_FIELD_LENGTH} characters")
        document[field] = value or None
    return document


# A UID: digits and dots, at most 64 characters (PS3.5 9.1).
UID_PATTERN = re.compile(r"[0-9]+(\.[0-9]+)*")
# A modality code (CS, PS3.5 6.2: upper-case letters, digits, space, underscore; 16 at most).
MODALITY_PATTERN = re.compile(r"[A-Z0-9_ ]{1,16}")
_DASHED_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def valid_uid(value: str | None) -> str | None:
    """Return ``value`` when it is a DICOM UID, else ``None``."""
    return value if value and len(value) <= 64 and UID_PATTERN.fullmatch(value) else None


def modality_code(value: str | None) -> str | None:
    """Return a modality as its code (upper case, padding spaces dropped), or ``None`` when it is none.

    The one rule for modalities, stored (from a header) or asked for (a study search, QIDO-RS).
    """
    code = (value or "").strip(" ").upper()
    return code if MODALITY_PATTERN.fullmatch(code) else None


def valid_date(value: str | None) -> str | None:
    """Return ``value`` when it is a DA (``YYYYMMDD``, a calendar date, PS3.5 6.2), else ``None``."""
    if not value or not re.fullmatch(r"\d{8}", value):
        return None
    try:
        date(int(value[:4]), int(value[4:6]), int(value[6:]))
    except ValueError:
        return None
    return value


def normalize_date(value: str, name: str = "date") -> str:
    """Return a ``YYYYMMDD`` or ``YYYY-MM-DD`` date as ``YYYYMMDD`` (the DA form, PS3.5 6.2).

    The one reader of a date a client sends, in every API (docs/API.md, "Dates").

    Raises
    ------
    InvalidArgument
        When ``value`` is neither form or not a calendar date. The message names the
        argument, not the value.
    """
    compact = value.replace("-", "") if _DASHED_DATE.fullmatch(value) else value
    day = valid_date(compact)
    if day is None:
        raise InvalidArgument(f"{name} must be a calendar date as YYYYMMDD or YYYY-MM-DD")
    return day
