"""DicomManager: the five fields of a DICOM file in S3, read with pydicom from its header only."""

from __future__ import annotations

import logging
import re
import struct
from functools import partial
from typing import IO, TYPE_CHECKING, Any

from pydicom import dcmread
from pydicom.datadict import DicomDictionary, dictionary_VR, tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue
from pydicom.tag import BaseTag, Tag

from errors import InvalidArgument, NotDicom
from managers.ranged import FIRST_REQUEST, RangedReader
from metadata import FIELDS

if TYPE_CHECKING:  # only a type here: the indexer function imports this module without requests
    from managers.S3Manager import S3Manager

log = logging.getLogger(__name__)

# Groups a bare dataset (no preamble, no file meta) can start with: File Meta (0002) when the
# preamble alone was dropped, Identifying (0008) otherwise. Anything else is not DICOM.
_BARE_DATASET_GROUPS = frozenset({0x0002, 0x0008})

# Binary values larger than this are bulk data, left out of the JSON model (PS3.18 F.2.7
# would give them a BulkDataURI; we serve no bulk data, so they are omitted).
BULK_DATA_THRESHOLD = 1024
_BULK_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})
_HEX_TAG = re.compile(r"[0-9A-Fa-f]{8}")

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
        # Deferred values are read through the reader, so it stays open until the fields are out.
        with self._open(file_path) as reader:
            return fields_of(read_header(reader))

    def dicom_json(self, file_path: str, keywords: list[str] | None = None) -> dict[str, Any]:
        """Return the header in the DICOM JSON model (PS3.18 Annex F), without bulk data.

        Parameters
        ----------
        file_path
            The s3 path of the DICOM file.
        keywords
            Attribute keywords (``"Rows"``) or 8-hex tags (``"00280010"``) to keep; all
            attributes when ``None``.

        Raises
        ------
        InvalidArgument
            When a keyword is neither a known keyword nor an 8-hex tag (checked before S3 is read).
        """
        tags = None if keywords is None else [tag_of(keyword) for keyword in keywords]
        with self._open(file_path) as reader:
            return json_model(read_header(reader), tags)

    def _open(self, file_path: str) -> RangedReader:
        """Return a header-only reader over the object at ``file_path``."""
        return RangedReader(partial(self.s3.read_range, file_path), self.first_request)


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


def tag_of(keyword: str) -> BaseTag:
    """Return the tag named by a keyword or an 8-hex tag, else raise ``InvalidArgument``."""
    if _HEX_TAG.fullmatch(keyword):
        return Tag(int(keyword, 16))
    tag = tag_for_keyword(keyword)
    if tag is None:
        raise InvalidArgument(
            f"unknown DICOM keyword {keyword!r}; use a keyword such as 'Rows' or a tag such as '00280010'"
        )
    return Tag(tag)


def json_model(dataset: Dataset, tags: list[BaseTag] | None = None) -> dict[str, Any]:
    """Return ``dataset`` (or only ``tags`` of it) as a DICOM JSON object, bulk data left out."""
    wanted = set(tags) if tags is not None else None
    kept = Dataset()
    try:
        for tag in dataset.keys():
            # Checked on the raw element, so a deferred large value is never read.
            if (wanted is None or tag in wanted) and not _is_bulk(dataset.get_item(tag)):
                kept.add(dataset[tag])  # converted, hence decoded with the file's character set
        model = kept.to_json_dict(bulk_data_threshold=BULK_DATA_THRESHOLD, bulk_data_element_handler=lambda _: "")
    except _PARSE_ERRORS as exc:
        raise NotDicom(f"the DICOM header cannot be converted ({type(exc).__name__})") from exc
    return _without_bulk(model)


def _is_bulk(element: Any) -> bool:
    """Tell whether an element (raw or converted) is a binary value above the threshold."""
    vr = element.VR
    if vr is None and element.tag in DicomDictionary:  # implicit VR: the dictionary knows it
        vr = dictionary_VR(element.tag)
    length = getattr(element, "length", None)
    if length is None:
        length = len(element.value) if isinstance(element.value, (bytes, bytearray)) else 0
    return vr in _BULK_VRS and length > BULK_DATA_THRESHOLD


def _without_bulk(model: dict[str, Any]) -> dict[str, Any]:
    """Drop elements that came out as BulkDataURI (large binaries inside sequences)."""
    cleaned: dict[str, Any] = {}
    for tag, element in model.items():
        if "BulkDataURI" in element:
            continue
        if element.get("vr") == "SQ" and "Value" in element:
            element = {**element, "Value": [_without_bulk(item) for item in element["Value"]]}
        cleaned[tag] = element
    return cleaned


def _text(value: Any) -> str | None:
    """Render an element value as the file holds it: multi-values joined by a backslash."""
    if value is None or value == "":
        return None
    if isinstance(value, MultiValue):
        return "\\".join(str(item) for item in value) or None
    return str(value) or None
