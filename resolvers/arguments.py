"""The arguments clients send, checked once for every API: dates and date ranges, page sizes
and other whole numbers, UIDs, modality codes.

GraphQL resolvers, the REST routes and DICOMweb all read their arguments through these, so
one argument means one thing wherever it is sent (docs/API.md, "Arguments").
"""

from __future__ import annotations

import re

from errors import InvalidArgument
from metadata import modality_code, normalize_date, valid_uid

# ASCII digits only: str.isdigit() accepts '²' and '١', which int() rejects or reads. Nine
# digits at most, so no number of a thousand digits is ever converted.
_WHOLE_NUMBER = re.compile(r"[0-9]{1,9}")
# One date: YYYYMMDD or YYYY-MM-DD (the first is DICOM's DA, the second ISO 8601's).
_DATE = r"(?:\d{8}|\d{4}-\d{2}-\d{2})"
_RANGE = re.compile(rf"(?P<single>{_DATE})|(?P<low>{_DATE})?-(?P<high>{_DATE})?")
DATE_RANGE_FORMS = "A, A-B, -B or A- (each date YYYYMMDD or YYYY-MM-DD)"


def whole_number(value: str, name: str) -> int:
    """Return a whole number sent as text (ASCII digits, at most nine), else raise ``InvalidArgument``."""
    if not _WHOLE_NUMBER.fullmatch(value):
        raise InvalidArgument(f"{name} must be a whole number")
    return int(value)


def date_bounds(low: str | None, high: str | None, names: tuple[str, str]) -> tuple[str | None, str | None]:
    """Return inclusive bounds as ``YYYYMMDD`` (``None``: open), refusing a start after the end."""
    first = normalize_date(low, names[0]) if low else None
    last = normalize_date(high, names[1]) if high else None
    if first and last and first > last:
        raise InvalidArgument(f"{names[0]} is after {names[1]}")
    return first, last


def date_range(value: str, name: str) -> tuple[str | None, str | None]:
    """Return the bounds of a date range (PS3.4 C.2.2.2.5): ``A``, ``A-B``, ``-B`` or ``A-``.

    ``""`` is no range: ``(None, None)``.
    """
    if not value:
        return None, None
    match = _RANGE.fullmatch(value)
    if match is None or (match["single"] is None and not (match["low"] or match["high"])):
        raise InvalidArgument(f"{name} must be {DATE_RANGE_FORMS}")
    if match["single"]:
        day = normalize_date(match["single"], name)
        return day, day
    return date_bounds(match["low"], match["high"], (f"{name}'s start", f"{name}'s end"))


def checked_uid(value: str, name: str) -> str:
    """Return ``value`` when it is a DICOM UID (digits and dots, at most 64), else raise ``InvalidArgument``."""
    if valid_uid(value) is None:
        raise InvalidArgument(f"{name} must be a DICOM UID: digits and dots, at most 64 characters")
    return value


def checked_modality(value: str, name: str) -> str:
    """Return a modality code (upper-cased) or raise ``InvalidArgument``; any case is accepted."""
    code = modality_code(value)
    if code is None:
        raise InvalidArgument(f"{name} must be a DICOM modality code such as CT, at most 16 characters")
    return code
