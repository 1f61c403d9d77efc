"""QIDO-RS query parsing (PS3.18 8.3.4, 10.6): a request's query string checked into a ``QidoQuery``."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydicom.datadict import keyword_for_tag, tag_for_keyword

from errors import InvalidArgument
from managers.dicom.attributes import (
    INSTANCE_ANSWER,
    INSTANCE_KEYS,
    SERIES_ANSWER,
    SERIES_KEYS,
    STUDY_ANSWER,
    STUDY_KEYS,
)
from managers.store.study_records import StudyCriteria
from resolvers.arguments import checked_modality, checked_uid, date_range, whole_number
from resolvers.studies import study_criteria

log = logging.getLogger(__name__)

Level = Literal["study", "series", "instance"]

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
# An offset is walked, not jumped to: 10,000 keeps the deepest page a bounded read.
MAX_OFFSET = 10_000
MAX_LIST_VALUES = 100

_LEVEL_KEYS: dict[Level, frozenset[str]] = {
    "study": frozenset(STUDY_KEYS),
    "series": frozenset(STUDY_KEYS + SERIES_KEYS),
    "instance": frozenset(STUDY_KEYS + SERIES_KEYS + INSTANCE_KEYS),
}
# Keys whose value may be a list (PS3.18 8.3.4.1 uid-list-match; a modality list as OHIF sends).
LIST_KEYS = frozenset({"StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "ModalitiesInStudy", "Modality"})
CONTROL_KEYS = frozenset({"limit", "offset", "includefield", "fuzzymatching"})

# The attributes each level answers whatever includefield says.
LEVEL_ATTRIBUTES: dict[Level, tuple[str, ...]] = {
    "study": STUDY_ANSWER,
    "series": SERIES_ANSWER,
    "instance": INSTANCE_ANSWER,
}

# Warning texts (PS3.18 8.3.4.2 for fuzzy matching); the HTTP layer prefixes "299 <service>: ".
FUZZY_WARNING = "The fuzzymatching parameter is not supported. Only literal matching has been performed."
LIMIT_WARNING = (
    f"The number of results exceeded the maximum supported by the server ({MAX_LIMIT}). "
    "Additional results can be requested."
)

_HEX_TAG = re.compile(r"[0-9A-Fa-f]{8}")
_LIST_SEPARATORS = re.compile(r"[\\,]")


@dataclass(frozen=True)
class QidoQuery:
    """A checked QIDO-RS search: what to match, the page, the attributes to answer.

    ``None`` for a UID or modality set means any; an empty set matches nothing (a UID in the
    path that the query's list does not hold).
    """

    level: Level
    criteria: StudyCriteria = field(default_factory=StudyCriteria)
    study_uids: frozenset[str] | None = None
    modalities_in_study: frozenset[str] | None = None
    series_uids: frozenset[str] | None = None
    modalities: frozenset[str] | None = None
    series_date: tuple[str | None, str | None] = (None, None)
    sop_uids: frozenset[str] | None = None
    limit: int = DEFAULT_LIMIT
    offset: int = 0
    # The attributes to add to the level's own; ``all``: every one a record holds.
    include: frozenset[str] = frozenset()
    include_all: bool = False
    warnings: tuple[str, ...] = ()

    def attributes(self, values: dict[str, Any]) -> list[str]:
        """Return the keywords to answer for one result's ``values``."""
        if self.include_all:
            return [*LEVEL_ATTRIBUTES[self.level], *values]
        return [*LEVEL_ATTRIBUTES[self.level], *self.include]


@dataclass(frozen=True)
class SearchAnswer:
    """A search's results, each a record's values by keyword, and the warnings to send."""

    results: list[dict[str, Any]]
    warnings: tuple[str, ...]


def parse_query(
    level: Level,
    arguments: Iterable[tuple[str, str]],
    study_uid: str | None = None,
    series_uid: str | None = None,
) -> QidoQuery:
    """Return the checked search of a request's query string (``arguments``, repeats kept).

    Parameters
    ----------
    level
        What the route searches for.
    arguments
        The query string's pairs, in order, a repeated key once per value.
    study_uid, series_uid
        The UIDs of the route's path, if any.

    Raises
    ------
    InvalidArgument
        For an unknown key, a key of a lower level, a repeated key that takes one value, or
        a malformed value (a date, a UID, a number, a pattern).
    """
    values: dict[str, list[str]] = {}
    for key, value in arguments:
        values.setdefault(_keyword(key), []).append(value)
    allowed = _LEVEL_KEYS[level] | CONTROL_KEYS
    unknown = sorted(set(values) - allowed)
    if unknown:
        # Ignoring a misspelt key would silently widen the results.
        raise InvalidArgument(
            f"unknown or unsupported query keys for this search: {', '.join(unknown)}; "
            f"allowed: {', '.join(sorted(allowed))}"
        )
    for key, given in values.items():
        if len(given) > 1 and key not in LIST_KEYS and key != "includefield":
            raise InvalidArgument(f"{key} may be given once")
    single = {key: given[0] for key, given in values.items() if key not in LIST_KEYS and key != "includefield"}
    warnings: list[str] = []
    limit = _limit(single.get("limit"), warnings)
    if _flag(single.get("fuzzymatching"), "fuzzymatching"):
        warnings.append(FUZZY_WARNING)
    include, include_all = _includefield(values.get("includefield", []))
    low, high = date_range(single.get("StudyDate", ""), "StudyDate")
    return QidoQuery(
        level=level,
        criteria=study_criteria(
            patient_id=_pattern(single.get("PatientID")),
            patient_name=_pattern(single.get("PatientName")),
            accession_number=_pattern(single.get("AccessionNumber")),
            study_description=_pattern(single.get("StudyDescription")),
            study_date_from=low,
            study_date_to=high,
        ),
        study_uids=_uids(values.get("StudyInstanceUID"), study_uid, "StudyInstanceUID"),
        modalities_in_study=_modalities(values.get("ModalitiesInStudy"), "ModalitiesInStudy"),
        series_uids=_uids(values.get("SeriesInstanceUID"), series_uid, "SeriesInstanceUID"),
        modalities=_modalities(values.get("Modality"), "Modality"),
        series_date=date_range(single.get("SeriesDate", ""), "SeriesDate"),
        sop_uids=_uids(values.get("SOPInstanceUID"), None, "SOPInstanceUID"),
        limit=limit,
        offset=_offset(single.get("offset")),
        include=include,
        include_all=include_all,
        warnings=tuple(warnings),
    )


def _keyword(key: str) -> str:
    """Return the keyword a query key names: itself, or the keyword of an 8-hex tag."""
    if _HEX_TAG.fullmatch(key):
        return keyword_for_tag(int(key, 16)) or key.upper()
    return key


def _limit(value: str | None, warnings: list[str]) -> int:
    if value is None:
        return DEFAULT_LIMIT
    limit = whole_number(value, "limit")
    if limit < 1:
        raise InvalidArgument("limit must be at least 1")
    if limit > MAX_LIMIT:
        warnings.append(LIMIT_WARNING)
        return MAX_LIMIT
    return limit


def _offset(value: str | None) -> int:
    offset = 0 if value is None else whole_number(value, "offset")
    if offset > MAX_OFFSET:
        raise InvalidArgument(f"offset must be at most {MAX_OFFSET}; narrow the search instead")
    return offset


def _flag(value: str | None, name: str) -> bool:
    if value is None or value.lower() == "false":
        return False
    if value.lower() == "true":
        return True
    raise InvalidArgument(f"{name} must be true or false")


def _includefield(given: list[str]) -> tuple[frozenset[str], bool]:
    """Return the keywords ``includefield`` asks for (repeated or comma-separated), and whether ``all``."""
    names = [name.strip() for value in given for name in value.split(",") if name.strip()]
    if "all" in names:
        return frozenset(), True
    keywords = set()
    for name in names:
        if _HEX_TAG.fullmatch(name):
            # A tag the dictionary does not know (a private one) is valid, but no record holds it.
            keyword = keyword_for_tag(int(name, 16))
            if keyword:
                keywords.add(keyword)
        elif tag_for_keyword(name) is not None:
            keywords.add(name)
        else:
            raise InvalidArgument("includefield takes DICOM keywords such as 'Rows', tags such as '00280010', or 'all'")
    return frozenset(keywords), False


def _pattern(value: str | None) -> str | None:
    """Return a text criterion, ``None`` for universal matching (empty, or only ``*``)."""
    if value is None or not value.strip("*"):
        return None
    return value


def _list(given: list[str] | None, name: str) -> list[str] | None:
    """Return the values of a list key: repeated, and each separated by ``\\`` or ``,``.

    ``None`` when no value is given (universal matching); an empty item (``1.2,,1.3``) is
    malformed.
    """
    if given is None or given == [""]:
        return None
    items = [item for value in given for item in _LIST_SEPARATORS.split(value)]
    if not all(items):
        raise InvalidArgument(f"{name} has an empty value in its list")
    if len(items) > MAX_LIST_VALUES:
        raise InvalidArgument(f"{name} takes at most {MAX_LIST_VALUES} values")
    return items


def _uids(given: list[str] | None, in_path: str | None, name: str) -> frozenset[str] | None:
    """Return the UIDs a key and the path allow (both: those in both), ``None`` for any."""
    listed = _list(given, name)
    allowed = None if listed is None else frozenset(checked_uid(uid, name) for uid in listed)
    if in_path is None:
        return allowed
    path_uid = checked_uid(in_path, name)
    return frozenset({path_uid}) if allowed is None else allowed & {path_uid}


def _modalities(given: list[str] | None, name: str) -> frozenset[str] | None:
    listed = _list(given, name)
    if listed is None:
        return None
    return frozenset(checked_modality(modality, name) for modality in listed)
