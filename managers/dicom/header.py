"""A DICOM header parsed with pydicom within fixed bounds, stopping before the pixel data.

``read_header`` reads any stream (a ``RangedReader`` over S3, a local file); ``fields_of``
takes the five fields out of what it parsed. The API (``DicomManager``) and the indexer
(``managers.dicom.header_record``) both read headers here.
"""

from __future__ import annotations

import struct
from typing import Any, BinaryIO, cast

from pydicom import config as pydicom_config
from pydicom.datadict import DicomDictionary, dictionary_VR
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.filereader import read_dataset, read_partial, read_preamble
from pydicom.multival import MultiValue
from pydicom.tag import BaseTag, Tag
from pydicom.uid import DeflatedExplicitVRLittleEndian
from pydicom.valuerep import VR

from errors import DicomMetaError, NotDicom
from managers.dicom.bounded import BoundedStream, HeaderTooLarge, InflatingReader, Stream
from metadata import FIELDS

# pydicom's value validation warns with the value itself in the message (to the warnings
# module and its logger): a hostile file would write patient data to stderr. Set here, where
# pydicom is first used, so that every reader of headers (the API, the indexer) has it.
pydicom_config.settings.reading_validation_mode = pydicom_config.IGNORE

# Groups a bare dataset (no preamble, no file meta) can start with: File Meta (0002) when the
# preamble alone was dropped, Identifying (0008) otherwise. Anything else is not DICOM.
_BARE_DATASET_GROUPS = frozenset({0x0002, 0x0008})

# Values longer than this are skipped while parsing and read only if asked for. None of the
# five fields comes near it (the longest, LO, holds 64 characters, PS3.5 6.2); skipping a large
# private blob or icon that runs past the fetched bytes spares fetching it.
DEFER_SIZE = 4096

# The five fields are short strings (LO: 64 characters, PS3.5 6.2); this leaves room for
# four bytes a character and ISO 2022 escapes. A longer one, or one of a binary VR (a
# PatientID as FD), is a malformed header: it is refused, and never fetched.
MAX_FIELD_BYTES = 1024
_TEXT_VRS = frozenset(
    {"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI", "UR", "UT", "UN"}
)
_TRANSFER_SYNTAX = 0x00020010
_PIXEL_TAGS = frozenset({0x7FE00008, 0x7FE00009, 0x7FE00010})
_UNDEFINED_LENGTH = 0xFFFFFFFF
_KNOWN_VRS = frozenset(vr.value for vr in VR)
# Sequences nested deeper than this make a header NOT_DICOM. Real ones nest a few levels (a
# structured report's content tree a dozen or two); pydicom recurses per level, and so do the
# JSON writers after it, so the bound is set well below Python's recursion limit.
MAX_SEQUENCE_DEPTH = 64


def read_header(fp: Stream) -> Dataset:
    """Parse the header of a DICOM stream, stopping before the pixel data, within fixed bounds.

    A Part 10 file (preamble and ``DICM``, PS3.10 7.1) is read as is; a bare dataset without
    them is read only when its first tag is plausible, so plain text still fails. Whatever the
    file declares, the parse reads at most ``MAX_HEADER_BYTES`` in ``MAX_HEADER_READS`` reads,
    inflates a Deflated dataset (PS3.5 A.5) to at most ``MAX_INFLATED_BYTES``, and never
    reads a value longer than ``DEFER_SIZE`` until asked for it.

    Raises
    ------
    NotDicom
        When the stream is not a parseable header: not DICOM, truncated, an element running
        past the end, no file meta after DICM, no element, or over a bound.
        The message names the reason, never a value of the file.
    """
    stream = BoundedStream(fp)
    try:
        dataset = _parse(stream)
    except HeaderTooLarge as exc:
        raise NotDicom(f"the object is not a readable DICOM header ({exc})") from exc
    except DicomMetaError:
        raise  # S3's answers (NotFound, UpstreamUnavailable) while reading, and our own NotDicom
    except Exception as exc:
        raise NotDicom(f"the object is not a readable DICOM file ({type(exc).__name__})") from exc
    if len(dataset) == 0:
        raise NotDicom("the object holds no DICOM elements")
    check_depth(dataset)
    return dataset


def check_depth(dataset: Dataset, convert: bool = False) -> None:
    """Refuse sequences nested deeper than ``MAX_SEQUENCE_DEPTH``.

    Walks one level at a time, without recursing. Without ``convert`` only sequences already
    parsed are followed (undefined-length ones, which pydicom parses while reading); with it,
    a sequence still raw (defined length) is converted, one level, before being followed, as
    ``json_model`` would convert it anyway.
    """
    pending = [(dataset, 0)]
    while pending:
        current, depth = pending.pop()
        if depth > MAX_SEQUENCE_DEPTH:
            raise NotDicom(f"the header nests sequences more than {MAX_SEQUENCE_DEPTH} deep")
        for tag in sorted(current.keys()):
            element = current.get_item(tag, keep_deferred=True)
            if convert and isinstance(element, RawDataElement) and _vr_of(element) == "SQ":
                element = current[tag]
            if isinstance(element, DataElement) and element.VR == "SQ":
                pending.extend((item, depth + 1) for item in element.value)


def _vr_of(element: RawDataElement) -> str | None:
    """The VR of a raw element: its own, or the dictionary's when implicit (``None`` if unknown)."""
    if element.VR is not None:
        return str(element.VR)
    return dictionary_VR(element.tag) if element.tag in DicomDictionary else None


def _parse(stream: BoundedStream) -> Dataset:
    """Read the preamble, the file meta and the dataset of ``stream``; see ``read_header``."""
    # pydicom asks for a BinaryIO; it calls only read, seek and tell, which a BoundedStream has.
    binary = cast(BinaryIO, stream)
    preamble = read_preamble(binary, force=True)  # rewinds to 0 when there is no DICM
    if preamble is None:
        if not _starts_like_dataset(stream.read(8)):
            raise NotDicom("the object is not a DICOM file")
        stream.seek(0)
    # The meta is read here first to see whether the dataset is deflated: pydicom would
    # inflate it whole, in one call, however large.
    meta = FileMetaDataset(read_dataset(binary, False, True, stop_when=_past_file_meta))
    syntax = _raw_text(meta.get_item(_TRANSFER_SYNTAX, keep_deferred=True))
    if preamble is not None and len(meta) == 0:
        # A preamble and DICM followed by nothing, or by bytes that are no file meta group.
        raise NotDicom("the file has no file meta information")
    if syntax == DeflatedExplicitVRLittleEndian:
        inflated = cast(BinaryIO, BoundedStream(InflatingReader(stream)))
        dataset: Dataset = read_dataset(inflated, False, True, stop_when=_at_pixel_data, defer_size=DEFER_SIZE)
        return FileDataset(inflated, dataset, preamble, meta, is_implicit_VR=False, is_little_endian=True)
    stream.seek(0)
    dataset = read_partial(binary, stop_when=_at_pixel_data, defer_size=DEFER_SIZE, force=True)
    _check_elements(dataset, stream.size())
    return dataset


def _past_file_meta(tag: BaseTag, vr: str | None, length: int) -> bool:
    return tag >> 16 != 0x0002


def _at_pixel_data(tag: BaseTag, vr: str | None, length: int) -> bool:
    # Pixel Data and its float and double float forms (PS3.6 6: group 7FE0).
    return tag in _PIXEL_TAGS


def _raw_text(element: Any) -> str:
    """The text of a raw or converted element as pydicom would give it, or ``""``."""
    if element is None:
        return ""
    value = element.value
    if isinstance(value, bytes):
        return value.decode("ascii", "replace").strip("\x00 ")
    return str(value or "").strip("\x00 ")


def _check_elements(dataset: Dataset, size: int) -> None:
    """Refuse a dataset with a top-level element of an unknown VR or longer than the object.

    pydicom skips a long value by seeking past it, so a declared length past the end (a
    truncated file, or garbage read as elements) would otherwise pass unnoticed; an unknown
    VR (PS3.5 6.2 lists them all) is garbage too, or a value no one can convert.
    """
    for tag in sorted(dataset.keys()):
        element = dataset.get_item(tag, keep_deferred=True)  # raw: a deferred value stays unread
        if not isinstance(element, RawDataElement):
            continue
        if element.VR is not None and element.VR not in _KNOWN_VRS:
            raise NotDicom("an element of the header has an unknown value representation")
        if element.length != _UNDEFINED_LENGTH and element.value_tell + element.length > size:
            raise NotDicom("an element of the header runs past the end of the object")


def _starts_like_dataset(head: bytes) -> bool:
    """Tell whether ``head`` begins with a tag of a group a bare dataset starts with."""
    if len(head) < 8:
        return False
    little = struct.unpack("<HH", head[:4])
    big = struct.unpack(">HH", head[:4])
    return any(group in _BARE_DATASET_GROUPS and element < 0x1000 for group, element in (little, big))


def fields_of(dataset: Dataset) -> dict[str, str | None]:
    """Return the five fields of a parsed dataset (``None`` for absent or empty ones).

    Raises
    ------
    NotDicom
        When a field is not text or longer than ``MAX_FIELD_BYTES``, or cannot be decoded.
    """
    try:
        return {keyword: text_of(_field(dataset, keyword)) for keyword in FIELDS}
    except DicomMetaError:
        raise
    except Exception as exc:
        raise NotDicom(f"the DICOM header cannot be decoded ({type(exc).__name__})") from exc


def _field(dataset: Dataset, keyword: str) -> Any:
    """Return the value of ``keyword`` after checking its raw VR and length (not read if wrong)."""
    tag = Tag(keyword)
    if tag not in dataset:
        return None
    raw = dataset.get_item(tag, keep_deferred=True)
    vr = raw.VR if raw.VR is not None else dictionary_VR(tag)
    length = raw.length if isinstance(raw, RawDataElement) else len(str(raw.value))
    if vr not in _TEXT_VRS or length > MAX_FIELD_BYTES:
        raise NotDicom(f"the header's {keyword} is not a short text value")
    return dataset[tag].value


def text_of(value: Any) -> str | None:
    """Render an element value as the file holds it: multi-values joined by a backslash."""
    if value is None or value == "":
        return None
    if isinstance(value, MultiValue):
        return "\\".join(str(item) for item in value) or None
    return str(value) or None
