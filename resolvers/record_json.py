"""Study, series and instance records in the DICOM JSON model (PS3.18 F.2), for QIDO-RS answers.

Records hold values by keyword (``StudyRecord.keywords()`` and its kin); this writes them as
the model has them: ``{"0020000D": {"vr": "UI", "Value": ["1.2.3"]}}``, with the VR from
pydicom's data dictionary, a PN as ``{"Alphabetic": …}`` (F.2.2), IS, DS and the binary
numbers as JSON numbers (F.2.3), a multi-valued value (a list, or a text with ``\\``) as
several values. An attribute listed but without a value is written with its VR alone, as
QIDO-RS asks for a requested attribute that is empty. The whole header of a file (WADO-RS
metadata) is written by ``managers.DicomManager.json_model``, not here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from pydicom.datadict import dictionary_VR, tag_for_keyword

from managers.dicom.json_model import person_name

_INTEGER_VRS = frozenset({"IS", "SL", "SS", "SV", "UL", "US", "UV"})
_DECIMAL_VRS = frozenset({"DS", "FD", "FL"})
# Text VRs whose values may hold a backslash as text (PS3.5 6.2: VM is always 1).
_SINGLE_TEXT_VRS = frozenset({"LT", "ST", "UT", "UR"})
# What a record never holds and the model writes differently (bulk data, sequences, tags).
_UNWRITTEN_VRS = frozenset({"SQ", "AT", "OB", "OD", "OF", "OL", "OV", "OW", "UN"})


def tag_of_keyword(keyword: str) -> str | None:
    """Return the 8-hex tag of a dictionary keyword (``None`` when pydicom does not know it)."""
    tag = tag_for_keyword(keyword)
    return None if tag is None else f"{tag:08X}"


def vr_of(keyword: str) -> str | None:
    """Return the keyword's VR; the first one of an ambiguous one (``US or SS``)."""
    tag = tag_for_keyword(keyword)
    if tag is None:
        return None
    return str(dictionary_VR(tag)).split(" or ")[0]


def render(values: Mapping[str, Any], keywords: Iterable[str], required: Iterable[str] = ()) -> dict[str, Any]:
    """Return the attributes ``keywords`` of ``values`` as a DICOM JSON object, sorted by tag.

    Parameters
    ----------
    values
        A record's values by keyword (absent ones left out).
    keywords
        The attributes to write: those without a value are left out, unless ``required``.
    required
        Attributes written even without a value (``{"vr": …}`` alone), as QIDO-RS answers
        the attributes of its level.
    """
    wanted = set(keywords) | set(required)
    always = set(required)
    model: dict[str, Any] = {}
    for keyword in wanted:
        tag, vr = tag_of_keyword(keyword), vr_of(keyword)
        if tag is None or vr is None or vr in _UNWRITTEN_VRS:
            continue
        element = _element(vr, values.get(keyword))
        if "Value" in element or keyword in always:
            model[tag] = element
    return dict(sorted(model.items()))


def _element(vr: str, value: Any) -> dict[str, Any]:
    """Return one element: its VR and, when it has any, its values."""
    converted = [_converted(vr, item) for item in _values(vr, value)]
    if not converted or all(item is None for item in converted):
        return {"vr": vr}
    return {"vr": vr, "Value": converted}


def _values(vr: str, value: Any) -> list[Any]:
    """Return a value as the list of its values (a text split at ``\\`` unless VM is 1)."""
    if value is None or value == "":
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, str) and vr not in _SINGLE_TEXT_VRS:
        return value.split("\\")
    return [value]


def _converted(vr: str, value: Any) -> Any:
    """Return one value as PS3.18 F.2.3 writes it, or ``None`` for an empty or unusable one."""
    if value is None or (isinstance(value, str) and not value.strip(" ")):
        return None
    try:
        if vr == "PN":
            return person_name(str(value))
        if vr in _INTEGER_VRS:
            return int(value.strip(" ") if isinstance(value, str) else value)
        if vr in _DECIMAL_VRS:
            number = float(value.strip(" ") if isinstance(value, str) else value)
            return number if math.isfinite(number) else None
    except (TypeError, ValueError):
        # A value the record holds that is no number (a malformed IS): written as empty.
        return None
    return str(value).rstrip(" ")
