"""The DICOM JSON model (PS3.18 Annex F): the one writer, for whole headers and for records.

``json_model`` writes a parsed header as dcmtk's dcm2json writes it (WADO-RS metadata,
``dicomJson``); ``attributes_json`` writes values a record holds by keyword (QIDO-RS
answers). Both turn a value into JSON through the same converters, one per VR (F.2.3).
"""

from __future__ import annotations

import base64
import functools
import logging
import math
import re
import struct
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pydicom.datadict import DicomDictionary, dictionary_VR, tag_for_keyword
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.tag import BaseTag, Tag

from errors import DicomMetaError, InvalidArgument, NotDicom
from managers.dicom.header import check_depth

log = logging.getLogger(__name__)

# Binary values larger than this are bulk data: left out of the JSON model, or, in WADO-RS
# metadata, written as a BulkDataURI the service answers (PS3.18 F.2.6).
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


def json_model(dataset: Dataset, tags: list[BaseTag] | None = None, bulk_data_uri: str | None = None) -> dict[str, Any]:
    """Return ``dataset`` (or only ``tags`` of it) as a DICOM JSON object (PS3.18 Annex F).

    Written as dcmtk's ``dcm2json`` writes it: group lengths left out, an empty value inside a
    multi-valued element ``null`` (F.2.5), person names without empty trailing components,
    text decoded with the file's Specific Character Set and so labelled UTF-8. Bulk data is
    left out, or, given ``bulk_data_uri`` (the instance's ``…/bulkdata``), written as a
    ``BulkDataURI`` of ``bulk_data_uri/<path>`` (``managers.dicom.bulk.path_text``). An
    element whose value cannot be converted (a malformed IS, a NaN) is left out: one bad
    element does not cost the rest of the header.
    """
    try:
        # Bounded before the recursive conversion below walks it.
        check_depth(dataset, convert=True)
        wanted = None if tags is None else set(tags)
        return _labelled_utf8(_json_object(dataset, wanted, _BulkURIs(bulk_data_uri)))
    except DicomMetaError:
        raise
    except Exception as exc:  # whatever malformed structure makes pydicom raise is not DICOM we can serve
        raise NotDicom(f"the DICOM header cannot be converted ({type(exc).__name__})") from exc


class _BulkURIs:
    """Where the bulk values of one instance are served; ``None``: bulk data is left out."""

    def __init__(self, base: str | None, path: tuple[int, ...] = ()) -> None:
        self.base, self.path = base, path

    def uri(self, tag: int) -> str | None:
        return None if self.base is None else f"{self.base}/{path_text((*self.path, tag))}"

    def inside(self, tag: int, index: int) -> _BulkURIs:
        return _BulkURIs(self.base, (*self.path, tag, index))


def path_text(path: tuple[int, ...]) -> str:
    """Return a bulk value's path as the bulkdata route takes it: tags and item indexes
    alternating, ``00880200/0/7FE00010`` for the pixel data of an icon's first item."""
    return "/".join(f"{part:08X}" if n % 2 == 0 else str(part) for n, part in enumerate(path))


def _json_object(dataset: Dataset, wanted: set[BaseTag] | None, bulk: _BulkURIs) -> dict[str, Any]:
    """Return the elements of a dataset or sequence item (those ``wanted``, or all)."""
    model: dict[str, Any] = {}
    for tag in dataset.keys():  # noqa: SIM118 - iterating a Dataset converts every element; keys() does not
        # Group lengths (gggg,0000) are retired (PS3.5 7.2) and dcm2json omits them.
        if (wanted is not None and tag not in wanted) or tag.element == 0:
            continue
        # Checked on the raw element, so a deferred large value is never read.
        raw = dataset.get_item(tag, keep_deferred=True)
        if _is_bulk(raw):
            uri = bulk.uri(tag)
            if uri is not None:
                model[f"{tag:08X}"] = {"vr": _vr(raw), "BulkDataURI": uri}
            continue
        try:
            element = _json_element(dataset[tag], bulk)  # converted, hence decoded with the character set
        except _CONVERSION_ERRORS as exc:
            # Neither the tag nor the value is logged: both come from the file.
            log.debug("left an element that cannot be converted out of the JSON model (%s)", type(exc).__name__)
            continue
        model[f"{tag:08X}"] = element
    return model


def _json_element(element: DataElement, bulk: _BulkURIs) -> dict[str, Any]:
    """Return one element in the JSON model, or raise one of ``_CONVERSION_ERRORS``."""
    vr = str(element.VR)
    if vr == "SQ":
        items = [_json_object(item, None, bulk.inside(element.tag, n)) for n, item in enumerate(element.value or [])]
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


def _vr(element: Any) -> str:
    """An element's VR; for implicit VR, the dictionary's (the first of an ambiguous one), else UN."""
    vr = element.VR
    if vr is None and element.tag in DicomDictionary:
        vr = dictionary_VR(element.tag)
    return str(vr or "UN").split(" or ")[0]


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


# Text VRs whose values may hold a backslash as text (PS3.5 6.2: VM is always 1).
_SINGLE_TEXT_VRS = frozenset({"LT", "ST", "UT", "UR"})
# What a record never holds and the model writes differently (bulk data, sequences, tags).
_UNWRITTEN_VRS = frozenset({"SQ", "AT", *_BULK_VRS})


def attributes_json(values: Mapping[str, Any], keywords: Iterable[str], required: Iterable[str] = ()) -> dict[str, Any]:
    """Return the attributes ``keywords`` of ``values`` as a DICOM JSON object, sorted by tag.

    ``values`` are a record's, by keyword (``StudyRecord.keywords()`` and its kin), with the
    VR of pydicom's data dictionary (the first of an ambiguous one). A text holding ``\\``
    is several values unless its VR has VM 1. A value that cannot be written (a malformed IS)
    is written empty. Attributes without a value are left out unless ``required``: those are
    written with their VR alone, as QIDO-RS answers the attributes of its level.
    """
    always = set(required)
    model: dict[str, Any] = {}
    for keyword in set(keywords) | always:
        written = _written_as(keyword)
        if written is None:
            continue
        tag, vr = written
        converted = [_lenient_value(vr, value) for value in _record_values(vr, values.get(keyword))]
        if any(value is not None for value in converted):
            model[tag] = {"vr": vr, "Value": converted}
        elif keyword in always:
            model[tag] = {"vr": vr}
    return dict(sorted(model.items()))


@functools.lru_cache(maxsize=4096)  # keywords of records and of includefield: the dictionary's, at most
def _written_as(keyword: str) -> tuple[str, str] | None:
    """Return a keyword's tag (8 hex digits) and VR as the model writes it, ``None`` if it is not written."""
    tag = tag_for_keyword(keyword)
    if tag is None:
        return None
    vr = str(dictionary_VR(tag)).split(" or ")[0]
    if vr in _UNWRITTEN_VRS or (vr not in _VALUE_OF and vr != "PN"):
        return None
    return f"{tag:08X}", vr


def _record_values(vr: str, value: Any) -> list[Any]:
    """Return a record's value as the list of its values (a text split at ``\\`` unless VM is 1)."""
    if value is None or value == "":
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, str) and vr not in _SINGLE_TEXT_VRS:
        return value.split("\\")
    return [value]


def _lenient_value(vr: str, value: Any) -> Any:
    """Return one value as F.2.3 writes it, ``None`` for an empty or malformed one."""
    if _is_empty(value):
        return None
    try:
        return person_name(str(value)) if vr == "PN" else _VALUE_OF[vr](value)
    except _CONVERSION_ERRORS:
        return None
