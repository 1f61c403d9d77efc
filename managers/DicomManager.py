"""DicomManager: the five fields of a DICOM file in S3, read with pydicom from its header only."""

from __future__ import annotations

import base64
import logging
import math
import re
import struct
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from pydicom import config as pydicom_config
from pydicom.datadict import DicomDictionary, dictionary_VR, tag_for_keyword
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.filereader import read_dataset, read_partial, read_preamble
from pydicom.multival import MultiValue
from pydicom.tag import BaseTag, Tag
from pydicom.uid import DeflatedExplicitVRLittleEndian
from pydicom.valuerep import VR

from errors import DicomMetaError, InvalidArgument, NotDicom
from managers.bounded import BoundedStream, HeaderTooLarge, InflatingReader, Stream
from managers.ranged import FIRST_REQUEST, RangedReader
from metadata import FIELDS

if TYPE_CHECKING:  # only a type here: the indexer function imports this module without requests
    from managers.S3Manager import S3Manager

log = logging.getLogger(__name__)

# pydicom's value validation warns with the value itself in the message (to the warnings
# module and its logger): a hostile file would write patient data to stderr. Set here, where
# pydicom is first used, so that every reader of headers (the API, the indexer) has it.
pydicom_config.settings.reading_validation_mode = pydicom_config.IGNORE

# Groups a bare dataset (no preamble, no file meta) can start with: File Meta (0002) when the
# preamble alone was dropped, Identifying (0008) otherwise. Anything else is not DICOM.
_BARE_DATASET_GROUPS = frozenset({0x0002, 0x0008})

# Binary values larger than this are bulk data, left out of the JSON model (PS3.18 F.2.7
# would give them a BulkDataURI; we serve no bulk data, so they are omitted).
BULK_DATA_THRESHOLD = 1024
_BULK_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})
# Any other value (a text such as UT, LT, UC: bulk text) longer than this is left out too, so
# one answer never carries a value of megabytes, and such a value is never even fetched.
MAX_JSON_VALUE_BYTES = 64 * 1024
_PN_GROUPS = ("Alphabetic", "Ideographic", "Phonetic")
_CHARSET_TAG = "00080005"
_HEX_TAG = re.compile(r"[0-9A-Fa-f]{8}")

# What converting one element's value can raise: that element is left out of the JSON model.
_CONVERSION_ERRORS = (
    ValueError,
    TypeError,
    KeyError,
    OverflowError,
    struct.error,
    AttributeError,
    LookupError,
    UnicodeError,
)


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


class DicomManager:
    """Reads DICOM headers from S3 and extracts the five fields of docs/API.md."""

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
        return {keyword: _text(_field(dataset, keyword)) for keyword in FIELDS}
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
    """Return ``dataset`` (or only ``tags`` of it) as a DICOM JSON object (PS3.18 Annex F).

    Written as dcmtk's ``dcm2json`` writes it: group lengths left out, an empty value inside a
    multi-valued element ``null`` (F.2.5), person names without empty trailing components,
    text decoded with the file's Specific Character Set and so labelled UTF-8. Bulk data is
    left out (we serve no BulkDataURI), and so is an element whose value cannot be converted
    (a malformed IS, a NaN): one bad element does not cost the rest of the header.
    """
    try:
        # Bounded before the recursive conversion below walks it.
        check_depth(dataset, convert=True)
        return _labelled_utf8(_json_object(dataset, None if tags is None else set(tags)))
    except DicomMetaError:
        raise
    except Exception as exc:  # whatever malformed structure makes pydicom raise is not DICOM we can serve
        raise NotDicom(f"the DICOM header cannot be converted ({type(exc).__name__})") from exc


def _json_object(dataset: Dataset, wanted: set[BaseTag] | None) -> dict[str, Any]:
    """Return the elements of a dataset or sequence item (those ``wanted``, or all)."""
    model: dict[str, Any] = {}
    for tag in dataset.keys():  # noqa: SIM118 - iterating a Dataset converts every element; keys() does not
        # Group lengths (gggg,0000) are retired (PS3.5 7.2) and dcm2json omits them.
        if (wanted is not None and tag not in wanted) or tag.element == 0:
            continue
        # Checked on the raw element, so a deferred large value is never read.
        if _is_bulk(dataset.get_item(tag, keep_deferred=True)):
            continue
        try:
            element = _json_element(dataset[tag])  # converted, hence decoded with the character set
        except _CONVERSION_ERRORS as exc:
            # Neither the tag nor the value is logged: both come from the file.
            log.debug("left an element that cannot be converted out of the JSON model (%s)", type(exc).__name__)
            continue
        model[f"{tag:08X}"] = element
    return model


def _json_element(element: DataElement) -> dict[str, Any]:
    """Return one element in the JSON model, or raise one of ``_CONVERSION_ERRORS``."""
    vr = str(element.VR)
    if vr == "SQ":
        items = [_json_object(item, None) for item in element.value or []]
        return {"vr": vr, "Value": items} if items else {"vr": vr}
    if vr in _BULK_VRS:
        data = element.value or b""
        return {"vr": vr, "InlineBinary": base64.b64encode(data).decode("ascii")} if data else {"vr": vr}
    if vr not in _VALUE_OF:
        # A VR still ambiguous after pydicom's resolution ("US or SS"): its own converter.
        return dict(element.to_json_dict(bulk_data_element_handler=None, bulk_data_threshold=BULK_DATA_THRESHOLD))
    values = _values(element)
    if vr == "PN":
        # dcm2json writes an element holding only separators ("^^^^") with no Value, but
        # several empty names ("^\\^") as nulls.
        names = [person_name(str(value)) for value in values]
        return {"vr": vr, "Value": names} if names and names != [None] else {"vr": vr}
    converted = [None if _is_empty(value) else _VALUE_OF[vr](value) for value in values]
    # Nothing but empty values is no Value at all (dcm2json); an empty one among others is null (F.2.5).
    if all(value is None for value in converted):
        return {"vr": vr}
    return {"vr": vr, "Value": converted}


def _values(element: DataElement) -> list[Any]:
    """Return an element's values as a list (none for an empty element)."""
    if element.VM == 0:
        return []
    if isinstance(element.value, (MultiValue, list, tuple)):
        return list(element.value)
    return [element.value]


def _is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip(" ") == "")


def person_name(text: str) -> dict[str, str] | None:
    """Return one PN value as its component groups (PS3.18 F.2.2), or ``None`` when empty.

    As dcm2json writes it: spaces around a component and empty trailing components dropped
    (PS3.5 6.2 makes them insignificant), empty interior ones kept as ``^``, an empty group
    left out, a group beyond the third ignored.
    """
    name: dict[str, str] = {}
    for group_name, group in zip(_PN_GROUPS, text.split("="), strict=False):
        components = [component.strip(" ") for component in group.split("^")]
        while components and not components[-1]:
            components.pop()
        if components:
            name[group_name] = "^".join(components)
    return name or None


def _text_value(value: Any) -> str:
    # Trailing spaces pad a value; leading ones are text in DA, DT, LT, ST, TM, UC, UR, UT.
    return str(value).rstrip(" ")


def _trimmed_value(value: Any) -> str:
    # AE, CS, LO and SH: leading spaces are insignificant too (PS3.5 6.2); pydicom keeps them.
    return str(value).strip(" ")


def _int_value(value: Any) -> int:
    # int() of an IS read as text ("12") or of a number; "1A" raises ValueError.
    return int(value) if not isinstance(value, str) else int(value.strip(" "))


def _float_value(value: Any) -> float:
    number = float(value.strip(" ") if isinstance(value, str) else value)
    if not math.isfinite(number):
        raise ValueError("JSON numbers have no NaN or infinity")
    return number


def _tag_value(value: Any) -> str:
    return f"{int(value):08X}"


# How each VR's values become JSON values (PS3.18 F.2.3): IS, DS and the binary numbers as
# numbers, AT as "ggggeeee", the rest as strings. PN and SQ have their own shapes.
_VALUE_OF: dict[str, Callable[[Any], Any]] = {
    **dict.fromkeys(("AS", "DA", "DT", "LT", "ST", "TM", "UC", "UI", "UR", "UT"), _text_value),
    **dict.fromkeys(("AE", "CS", "LO", "SH"), _trimmed_value),
    **dict.fromkeys(("IS", "SL", "SS", "SV", "UL", "US", "UV"), _int_value),
    # FL as the double pydicom widens it to: the float32's exact value (dcm2json rounds it to 9 digits).
    **dict.fromkeys(("DS", "FD", "FL"), _float_value),
    "AT": _tag_value,
    "PN": str,
}


def _labelled_utf8(model: dict[str, Any]) -> dict[str, Any]:
    """Label the model's text UTF-8, as it is once decoded (dcm2json does the same).

    A Specific Character Set other than the default repertoire says how the file's bytes
    were encoded; the JSON text is Unicode, so the value becomes ``ISO_IR 192`` (PS3.3
    C.12.1.1.2). ``ISO_IR 6`` and ``ISO_IR 192`` already hold for the decoded text.
    """
    charset = model.get(_CHARSET_TAG)
    if charset is None or charset.get("Value") in (["ISO_IR 6"], ["ISO_IR 192"]):
        return model
    return {**model, _CHARSET_TAG: {"vr": "CS", "Value": ["ISO_IR 192"]}}


def _is_bulk(element: Any) -> bool:
    """Tell whether an element (raw or converted) is a binary value above the threshold, or
    any non-sequence value above ``MAX_JSON_VALUE_BYTES``."""
    vr = element.VR
    if vr is None and element.tag in DicomDictionary:  # implicit VR: the dictionary knows it
        vr = dictionary_VR(element.tag)
    length = getattr(element, "length", None)
    if length is None:
        length = len(element.value) if isinstance(element.value, (bytes, bytearray)) else 0
    return (vr in _BULK_VRS and length > BULK_DATA_THRESHOLD) or (vr != "SQ" and length > MAX_JSON_VALUE_BYTES)


def _text(value: Any) -> str | None:
    """Render an element value as the file holds it: multi-values joined by a backslash."""
    if value is None or value == "":
        return None
    if isinstance(value, MultiValue):
        return "\\".join(str(item) for item in value) or None
    return str(value) or None
