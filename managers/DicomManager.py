"""DicomManager: the five fields of a DICOM file in S3, read with pydicom from its header only."""

from __future__ import annotations

import logging
import struct
from functools import partial
from typing import IO, Any

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue

from errors import NotDicom
from managers.ranged import FIRST_REQUEST, RangedReader
from managers.S3Manager import S3Manager
from metadata import FIELDS

log = logging.getLogger(__name__)

# Groups a bare dataset (no preamble, no file meta) can start with: File Meta (0002) when the
# preamble alone was dropped, Identifying (0008) otherwise. Anything else is not DICOM.
_BARE_DATASET_GROUPS = frozenset({0x0002, 0x0008})

# What pydicom raises on bytes that are not a dataset it can walk.
_PARSE_ERRORS = (InvalidDicomError, EOFError, ValueError, KeyError, struct.error, OverflowError, TypeError)

# Values longer than this are skipped while parsing and read only if asked for. None of the
# five fields comes near it (the longest, LO, holds 64 characters, PS3.5 6.2); skipping a large
# private blob or icon that runs past the fetched bytes spares fetching it.
DEFER_SIZE = 4096


class DicomManager:
    """Reads DICOM headers from S3 and extracts the five fields of DESIGN.md."""

    def __init__(self, s3: S3Manager, first_request: int = FIRST_REQUEST) -> None:
        self.s3 = s3
        self.first_request = first_request

    def extract_metadata(self, file_path: str) -> dict[str, str | None]:
        """Return the five fields of the DICOM file at ``file_path``.

        Only the header is read, through ranged GETs: ``first_request`` bytes first, then
        doubling requests while parsing needs more. A header within the first request costs
        one GET whatever the file's size.

        Parameters
        ----------
        file_path
            The s3 path, ``s3://bucket/key``.

        Returns
        -------
        dict
            ``PatientID``, ``StudyDate``, ``Modality``, ``InstitutionName`` and
            ``StudyDescription``: strings as the file holds them, decoded with its Specific
            Character Set, or ``None`` when absent or empty.

        Raises
        ------
        NotFound, InvalidS3Path, ForbiddenBucket, UpstreamUnavailable
            From ``S3Manager``.
        NotDicom
            When the object is not a readable DICOM file.
        """
        with RangedReader(partial(self.s3.read_range, file_path), self.first_request) as reader:
            # Deferred values are read through the reader, so it stays open until the fields are out.
            return fields_of(read_header(reader))


def read_header(fp: IO[bytes]) -> Dataset:
    """Parse the header of a DICOM stream, stopping before the pixel data.

    A Part 10 file (preamble and ``DICM``, PS3.10 7.1) is read as is; a bare dataset without
    them is read with ``force=True`` only when its first tag is plausible, so plain text
    still fails.

    Raises
    ------
    NotDicom
        When the stream is neither.
    """
    try:
        return dcmread(fp, stop_before_pixels=True, defer_size=DEFER_SIZE)
    except InvalidDicomError:
        pass
    except _PARSE_ERRORS as exc:
        raise NotDicom(f"the object is not a readable DICOM file ({type(exc).__name__})") from exc
    fp.seek(0)
    if not _starts_like_dataset(fp.read(8)):
        raise NotDicom("the object is not a DICOM file")
    fp.seek(0)
    try:
        dataset = dcmread(fp, force=True, stop_before_pixels=True, defer_size=DEFER_SIZE)
    except _PARSE_ERRORS as exc:
        raise NotDicom(f"the object is not a readable DICOM file ({type(exc).__name__})") from exc
    if len(dataset) == 0:
        raise NotDicom("the object holds no DICOM elements")
    return dataset


def _starts_like_dataset(head: bytes) -> bool:
    """Tell whether ``head`` begins with a tag of a group a bare dataset starts with."""
    if len(head) < 8:
        return False
    little = struct.unpack("<HH", head[:4])
    big = struct.unpack(">HH", head[:4])
    return any(group in _BARE_DATASET_GROUPS and element < 0x1000 for group, element in (little, big))


def fields_of(dataset: Dataset) -> dict[str, str | None]:
    """Return the five fields of a parsed dataset (``None`` for absent or empty ones)."""
    try:
        return {keyword: _text(dataset.get(keyword)) for keyword in FIELDS}
    except _PARSE_ERRORS as exc:
        raise NotDicom(f"the DICOM header cannot be decoded ({type(exc).__name__})") from exc


def _text(value: Any) -> str | None:
    """Render an element value as the file holds it: multi-values joined by a backslash."""
    if value is None or value == "":
        return None
    if isinstance(value, MultiValue):
        return "\\".join(str(item) for item in value) or None
    return str(value) or None
