"""DicomManager: the five fields of a DICOM file in S3, read with pydicom from its header only."""

from __future__ import annotations

import base64
import logging
import math
import re
import struct
from collections.abc import Callable
from functools import partial
from io import RawIOBase
from typing import IO, Any

from pydicom import config as pydicom_config
from pydicom import dcmread
from pydicom.datadict import DicomDictionary, dictionary_VR, tag_for_keyword
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue
from pydicom.tag import BaseTag, Tag

from errors import InvalidArgument, NotDicom
from managers.ranged import FIRST_REQUEST, RangedReader
from managers.S3Manager import S3Manager
from metadata import FIELDS

log = logging.getLogger(__name__)

# Groups a bare dataset (no preamble, no file meta) can start with: File Meta (0002) when the
# preamble alone was dropped, Identifying (0008) otherwise. Anything else is not DICOM.
_BARE_DATASET_GROUPS = frozenset({0x0002, 0x0008})

# Binary values larger than this are bulk data, left out of the JSON model (PS3.18 F.2.7
# would give them a BulkDataURI; we serve no bulk data, so they are omitted).
BULK_DATA_THRESHOLD = 1024
_BULK_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})
_PN_GROUPS = ("Alphabetic", "Ideographic", "Phonetic")
_CHARSET_TAG = "00080005"
_HEX_TAG = re.compile(r"[0-9A-Fa-f]{8}")

# What pydicom raises on bytes that are not a dataset it can walk.
_PARSE_ERRORS = (InvalidDicomError, EOFError, ValueError, KeyError, struct.error, OverflowError, TypeError)

# What converting one element's value can raise: it is left out of the JSON model.
_CONVERSION_ERRORS = (*_PARSE_ERRORS, AttributeError, LookupError, UnicodeError)

# Values longer than this are skipped while parsing and read only if asked for. None of the
# five fields comes near it (the longest, LO, holds 64 characters, PS3.5 6.2); skipping a large
# private blob or icon that runs past the fetched bytes spares fetching it.
DEFER_SIZE = 4096


class DicomManager:
    """Reads DICOM headers from S3 and extracts the five fields of docs/API.md."""

    def __init__(self, s3: S3Manager, first_request: int = FIRST_REQUEST) -> None:
        self.s3 = s3
        self.first_request = first_request
        # pydicom's value validation logs and warns with the offending value quoted ("Invalid
        # value for VR IS: '1A'"), and no file content may reach a log. We only read: a value
        # that cannot be converted is left out of the JSON model instead. The setting is
        # process-wide; set here because the managers are built once per app.
        pydicom_config.settings.reading_validation_mode = pydicom_config.IGNORE

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


def read_header(fp: IO[bytes] | RawIOBase) -> Dataset:
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
    """Return ``dataset`` (or only ``tags`` of it) as a DICOM JSON object (PS3.18 Annex F).

    Written as dcmtk's ``dcm2json`` writes it: group lengths left out, an empty value inside a
    multi-valued element ``null`` (F.2.5), person names without empty trailing components,
    text decoded with the file's Specific Character Set and so labelled UTF-8. Bulk data is
    left out (we serve no BulkDataURI), and so is an element whose value cannot be converted
    (a malformed IS, a NaN): one bad element does not cost the rest of the header.
    """
    return _labelled_utf8(_json_object(dataset, None if tags is None else set(tags)))


def _json_object(dataset: Dataset, wanted: set[BaseTag] | None) -> dict[str, Any]:
    """Return the elements of a dataset or sequence item (those ``wanted``, or all)."""
    model: dict[str, Any] = {}
    for tag in dataset.keys():  # noqa: SIM118 - iterating a Dataset converts every element; keys() does not
        # Group lengths (gggg,0000) are retired (PS3.5 7.2) and dcm2json omits them.
        if (wanted is not None and tag not in wanted) or tag.element == 0:
            continue
        # Checked on the raw element, so a deferred large value is never read.
        if _is_bulk(dataset.get_item(tag)):
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
        names = [_person_name(str(value)) for value in values]
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


def _person_name(text: str) -> dict[str, str] | None:
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
    """Tell whether an element (raw or converted) is a binary value above the threshold."""
    vr = element.VR
    if vr is None and element.tag in DicomDictionary:  # implicit VR: the dictionary knows it
        vr = dictionary_VR(element.tag)
    length = getattr(element, "length", None)
    if length is None:
        length = len(element.value) if isinstance(element.value, (bytes, bytearray)) else 0
    return vr in _BULK_VRS and length > BULK_DATA_THRESHOLD


def _text(value: Any) -> str | None:
    """Render an element value as the file holds it: multi-values joined by a backslash."""
    if value is None or value == "":
        return None
    if isinstance(value, MultiValue):
        return "\\".join(str(item) for item in value) or None
    return str(value) or None
