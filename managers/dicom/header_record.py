"""Header-only reads for the indexer: the attributes a record keeps, and the object's version.

The header is parsed by ``read_header`` over a ``RangedReader``, the same code as
``/dicom-metadata``. The ranged GETs go through a plain boto3 S3 client (not ``S3Manager``,
which needs ``requests``), so the indexer function's package carries only pydicom and boto3.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import IO, Any, cast

from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from errors import NotDicom
from managers.aws.objects import VersionedFetch
from managers.dicom.attributes import NUMBER_ATTRIBUTES, TEXT_ATTRIBUTES, UID_ATTRIBUTES
from managers.dicom.header import fields_of, read_header, text_of
from managers.dicom.ranged import FIRST_REQUEST, RangedReader
from metadata import valid_uid

# What converting a raw element of a malformed header can raise.
_DECODE_ERRORS = (ValueError, KeyError, TypeError, OverflowError, UnicodeError)


@dataclass
class HeaderRecord:
    """What the indexer learned from one object: its version and its header's attributes."""

    s3_path: str
    etag: str
    size: int
    last_modified: str
    fields: dict[str, str | None]
    texts: dict[str, str] = field(default_factory=dict)
    numbers: dict[str, int] = field(default_factory=dict)


def read_header_record(client: Any, bucket: str, key: str, s3_path: str) -> HeaderRecord:
    """Read the header of ``bucket``/``key`` (ranged GETs only) and return what a record keeps.

    Raises
    ------
    NotFound
        When the object is absent (deleted since it was listed or notified).
    NotDicom
        When it is not a readable DICOM file (empty, text, truncated header).
    ObjectChanged
        When it was overwritten mid-read; reading again gets the new version.
    UpstreamUnavailable
        When S3 cannot be reached or throttles.
    """
    fetch = VersionedFetch(client, bucket, key)
    with RangedReader(fetch, FIRST_REQUEST) as reader:
        if reader.size == 0:
            raise NotDicom("the object is empty")
        dataset = read_header(cast(IO[bytes], reader))
        record = HeaderRecord(
            s3_path=s3_path,
            etag=fetch.etag or "",
            size=reader.size,
            last_modified=fetch.last_modified,
            fields=fields_of(dataset),
        )
        try:
            record.texts, record.numbers = header_attributes(dataset)
        except _DECODE_ERRORS as exc:
            raise NotDicom(f"the DICOM header cannot be decoded ({type(exc).__name__})") from exc
    return record


def header_attributes(dataset: Dataset) -> tuple[dict[str, str], dict[str, int]]:
    """Return the text attributes (PN as its string form) and the valid integer ones."""
    texts = {}
    for keyword in TEXT_ATTRIBUTES:
        value = text_of(dataset.get(keyword))
        if keyword in UID_ATTRIBUTES:
            value = valid_uid(value)
        if value is not None:
            texts[keyword] = value
    numbers = {}
    for keyword in NUMBER_ATTRIBUTES:
        number = _integer(dataset.get(keyword))
        if number is not None:
            numbers[keyword] = number
    return texts, numbers


def _integer(value: Any) -> int | None:
    """Return one integer value (IS or US), or ``None`` when absent, multiple or malformed."""
    if value is None or value == "" or isinstance(value, MultiValue):
        return None
    try:
        return int(str(value).strip())
    except ValueError:
        return None
