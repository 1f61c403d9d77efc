"""DICOMweb (PS3.18): QIDO-RS searches and WADO-RS metadata over the study index.

A search is parsed into a ``QidoQuery`` (``parse_query``), then walked through ``StudyIndex``:
studies (``search_studies``), their series (``series_of``), the series' instances
(``instances``), in the order of the index: newest StudyDate first then StudyInstanceUID;
series by SeriesNumber; instances by InstanceNumber. ``offset`` skips along that walk.

Bounds, per request:

- ``limit``: default ``DEFAULT_LIMIT``; above ``MAX_LIMIT`` it is capped, with a warning.
- ``offset``: at most ``MAX_OFFSET`` (else ``InvalidArgument``): a skip reads what it skips.
- ``MAX_EXAMINED`` records (studies, series and instances together) read by one search; a
  walk that reaches it stops and answers what it found, with a warning.
- ``MAX_LIST_VALUES`` values in one UID or modality list, and ``MAX_VARIANTS`` study searches
  (their product) merged for one request.
- WADO-RS metadata reads at most ``MAX_METADATA_INSTANCES`` headers (else ``InvalidArgument``),
  ``HEADER_WINDOW`` at a time on the app's pool.

Matching: PatientName as ``managers.studies`` describes (``*text*`` matches a name component
by prefix); PatientID and AccessionNumber ``*text*`` by prefix of the value, StudyDescription
by prefix of any word; ModalitiesInStudy and Modality exactly, case-insensitively, a list
matching any of its values; UIDs exactly, a list (``\\`` or ``,``, or the key repeated)
matching any; StudyDate and SeriesDate ``YYYYMMDD``, ``A-B``, ``-B`` or ``A-``.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, Literal

from pydicom.datadict import keyword_for_tag, tag_for_keyword

from errors import DicomMetaError, InvalidArgument, NotFound, UpstreamUnavailable, scrubbed_traceback
from managers.aggregates import study_sort_key
from managers.bundle import Managers
from managers.studies import InstanceRecord, Position, SeriesRecord, StudyCriteria, StudyIndex, StudyRecord
from metadata import normalize_date
from resolvers.studies import checked_uid, study_criteria

log = logging.getLogger(__name__)

Level = Literal["study", "series", "instance"]

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
# An offset is walked, not jumped to: 10,000 keeps the deepest page a bounded read.
MAX_OFFSET = 10_000
# Records one search may read: the deepest offset plus a full page, and room for the
# series and instances a series or instance search reads on the way.
MAX_EXAMINED = 20_000
MAX_LIST_VALUES = 100
MAX_VARIANTS = 100
# Headers one WADO-RS metadata answer holds: a large CT study (2,000 slices) with room to spare.
MAX_METADATA_INSTANCES = 5_000
# Headers read at once per request (the pool bounds the app's total); a window's answers are
# all that is held besides the JSON already written.
HEADER_WINDOW = 64
# Page sizes of the walk: studies per search_studies call, instances per instances call.
STUDY_PAGE = 200
WALK_STUDY_PAGE = 25
INSTANCE_PAGE = 500

# The query keys of each level; a search takes its own level's and those above (PS3.18 10.6.1.2.1).
STUDY_KEYS = (
    "StudyInstanceUID",
    "PatientID",
    "PatientName",
    "StudyDate",
    "AccessionNumber",
    "StudyDescription",
    "ModalitiesInStudy",
)
SERIES_KEYS = ("SeriesInstanceUID", "Modality", "SeriesDate")
INSTANCE_KEYS = ("SOPInstanceUID",)
_LEVEL_KEYS: dict[Level, frozenset[str]] = {
    "study": frozenset(STUDY_KEYS),
    "series": frozenset(STUDY_KEYS + SERIES_KEYS),
    "instance": frozenset(STUDY_KEYS + SERIES_KEYS + INSTANCE_KEYS),
}
# Keys whose value may be a list (PS3.18 8.3.4.1 uid-list-match; a modality list as OHIF sends).
LIST_KEYS = frozenset({"StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "ModalitiesInStudy", "Modality"})
CONTROL_KEYS = frozenset({"limit", "offset", "includefield", "fuzzymatching"})

# The attributes each level answers whatever includefield says (DESIGN.md).
STUDY_ATTRIBUTES = (
    "StudyInstanceUID",
    "StudyDate",
    "StudyTime",
    "AccessionNumber",
    "ModalitiesInStudy",
    "ReferringPhysicianName",
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyID",
    "StudyDescription",
    "NumberOfStudyRelatedSeries",
    "NumberOfStudyRelatedInstances",
)
SERIES_ATTRIBUTES = (
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "Modality",
    "SeriesNumber",
    "SeriesDescription",
    "BodyPartExamined",
    "NumberOfSeriesRelatedInstances",
)
INSTANCE_ATTRIBUTES = (
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "SOPInstanceUID",
    "SOPClassUID",
    "InstanceNumber",
    "Rows",
    "Columns",
    "NumberOfFrames",
)
LEVEL_ATTRIBUTES: dict[Level, tuple[str, ...]] = {
    "study": STUDY_ATTRIBUTES,
    "series": SERIES_ATTRIBUTES,
    "instance": INSTANCE_ATTRIBUTES,
}

# Warning texts (PS3.18 8.3.4.2 for fuzzy matching); the HTTP layer prefixes "299 <service>: ".
FUZZY_WARNING = "The fuzzymatching parameter is not supported. Only literal matching has been performed."
LIMIT_WARNING = (
    f"The number of results exceeded the maximum supported by the server ({MAX_LIMIT}). "
    "Additional results can be requested."
)
EXAMINED_WARNING = (
    f"The search stopped after examining {MAX_EXAMINED} records; the results may be incomplete. "
    "Narrow the search or use a smaller offset."
)

_HEX_TAG = re.compile(r"[0-9A-Fa-f]{8}")
_NUMBER = re.compile(r"[0-9]{1,9}")
_LIST_SEPARATORS = re.compile(r"[\\,]")
# A modality code (CS, PS3.5 6.2: upper-case letters, digits, underscore); any case accepted.
_MODALITY = re.compile(r"[A-Za-z0-9_]{1,16}")
_DATE_FORMS = "YYYYMMDD, YYYYMMDD-YYYYMMDD, -YYYYMMDD or YYYYMMDD-"


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
    low, high = _date_range(single.get("StudyDate", ""), "StudyDate")
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
        series_date=_date_range(single.get("SeriesDate", ""), "SeriesDate"),
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
    limit = _whole_number(value, "limit")
    if limit < 1:
        raise InvalidArgument("limit must be at least 1")
    if limit > MAX_LIMIT:
        warnings.append(LIMIT_WARNING)
        return MAX_LIMIT
    return limit


def _offset(value: str | None) -> int:
    offset = 0 if value is None else _whole_number(value, "offset")
    if offset > MAX_OFFSET:
        raise InvalidArgument(f"offset must be at most {MAX_OFFSET}; narrow the search instead")
    return offset


def _whole_number(value: str, name: str) -> int:
    # ASCII digits only: str.isdigit() accepts '²' and '١'. A leading '-' is refused here too.
    if not _NUMBER.fullmatch(value):
        raise InvalidArgument(f"{name} must be a whole number")
    return int(value)


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


def _date_range(value: str, name: str) -> tuple[str | None, str | None]:
    """Return the bounds of a QIDO date range (PS3.4 C.2.2.2.5): ``A``, ``A-B``, ``-B`` or ``A-``."""
    if not value:
        return None, None
    if value.count("-") > 1:
        raise InvalidArgument(f"{name} must be {_DATE_FORMS}")
    if "-" not in value:
        day = normalize_date(value, name)
        return day, day
    low, _, high = value.partition("-")
    if not low and not high:
        raise InvalidArgument(f"{name} must be {_DATE_FORMS}")
    first = normalize_date(low, name) if low else None
    last = normalize_date(high, name) if high else None
    if first and last and first > last:
        raise InvalidArgument(f"{name} starts after it ends")
    return first, last


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
    for modality in listed:
        if not _MODALITY.fullmatch(modality):
            raise InvalidArgument(f"{name} takes DICOM modality codes such as CT, at most 16 characters each")
    return frozenset(modality.upper() for modality in listed)


class _Budget:
    """Counts the records a search reads; stops the walk at ``MAX_EXAMINED``."""

    def __init__(self, limit: int | None = None) -> None:
        self.left = MAX_EXAMINED if limit is None else limit
        self.exhausted = False

    def take(self, count: int = 1) -> bool:
        """Count ``count`` records read; ``False`` once the budget is spent."""
        if self.left < count:
            self.exhausted = True
            return False
        self.left -= count
        return True


def search(managers: Managers, query: QidoQuery) -> SearchAnswer:
    """Return one page of a QIDO-RS search: ``query.limit`` results after ``query.offset``."""
    budget = _Budget()
    walks: dict[Level, Callable[[Managers, QidoQuery, _Budget], Iterator[dict[str, Any]]]] = {
        "study": _study_results,
        "series": _series_results,
        "instance": _instance_results,
    }
    walk = walks[query.level](managers, query, budget)
    results = list(itertools.islice(walk, query.offset, query.offset + query.limit))
    warnings = query.warnings + ((EXAMINED_WARNING,) if budget.exhausted else ())
    return SearchAnswer(results, warnings)


def _study_results(managers: Managers, query: QidoQuery, budget: _Budget) -> Iterator[dict[str, Any]]:
    for study in _studies(managers, query, budget, min(query.offset + query.limit, STUDY_PAGE)):
        yield study.keywords()


def _series_results(managers: Managers, query: QidoQuery, budget: _Budget) -> Iterator[dict[str, Any]]:
    for study, series in _series_walk(managers, query, budget):
        yield {**study.keywords(), **series.keywords()}


def _instance_results(managers: Managers, query: QidoQuery, budget: _Budget) -> Iterator[dict[str, Any]]:
    found = _instances_by_sop(managers, query)
    if found is not None:
        query = _narrowed(query, {i.study_instance_uid for i in found}, {i.series_instance_uid for i in found})
    for study, series in _series_walk(managers, query, budget):
        study_values, series_values = study.keywords(), series.keywords()
        if found is not None:
            instances: Iterable[InstanceRecord] = sorted(
                (i for i in found if i.series_instance_uid == series.series_instance_uid), key=_instance_order
            )
        else:
            page = min(query.offset + query.limit, INSTANCE_PAGE)
            instances = _instances_of(managers.studies, series.series_instance_uid, budget, page)
        for instance in instances:
            if query.sop_uids is None or instance.sop_instance_uid in query.sop_uids:
                yield {**study_values, **series_values, **instance.keywords()}


def _instances_by_sop(managers: Managers, query: QidoQuery) -> list[InstanceRecord] | None:
    """Return the instances of the query's SOPInstanceUIDs (read in parallel), ``None`` if it has none."""
    if query.sop_uids is None:
        return None
    found = managers.pool.map(managers.studies.instances_by_sop, sorted(query.sop_uids))
    return [instance for instances in found for instance in instances]


def _narrowed(query: QidoQuery, study_uids: set[str], series_uids: set[str]) -> QidoQuery:
    """Return ``query`` allowed only these studies and series (intersected with its own)."""
    studies = frozenset(study_uids) if query.study_uids is None else query.study_uids & study_uids
    series = frozenset(series_uids) if query.series_uids is None else query.series_uids & series_uids
    return replace(query, study_uids=studies, series_uids=series)


def _series_walk(managers: Managers, query: QidoQuery, budget: _Budget) -> Iterator[tuple[StudyRecord, SeriesRecord]]:
    """Yield the matching series of the matching studies, in study order then series order."""
    if query.series_uids is not None and query.study_uids is None:
        # Known series: only their studies are walked.
        known = managers.studies.get_series(sorted(query.series_uids))
        query = replace(query, study_uids=frozenset(series.study_instance_uid for series in known.values()))
    if query.modalities is not None and query.modalities_in_study is None and query.study_uids is None:
        # A series of that modality is in a study with it among ModalitiesInStudy: only those
        # studies are walked (listed studies are read by UID, which is cheaper still).
        query = replace(query, modalities_in_study=query.modalities)
    # Pages no larger than the answer needs: a one-result search reads one study's series.
    page = min(query.offset + query.limit, WALK_STUDY_PAGE)
    studies = _studies(managers, query, budget, page)
    while batch := list(itertools.islice(studies, page)):
        by_study = managers.studies.series_of([study.study_instance_uid for study in batch])
        for study in batch:
            for series in by_study.get(study.study_instance_uid, []):
                if not budget.take():
                    return
                if _series_matches(series, query):
                    yield study, series


def _series_matches(series: SeriesRecord, query: QidoQuery) -> bool:
    if query.series_uids is not None and series.series_instance_uid not in query.series_uids:
        return False
    if query.modalities is not None and (series.modality or "").upper() not in query.modalities:
        return False
    low, high = query.series_date
    if low is None and high is None:
        return True
    date = series.series_date
    return date is not None and (low is None or date >= low) and (high is None or date <= high)


def _instances_of(
    index: StudyIndex, series_uid: str, budget: _Budget, page: int = INSTANCE_PAGE
) -> Iterator[InstanceRecord]:
    """Yield a series' instances in order, ``page`` at a time, while the budget lasts."""
    after: Position | None = None
    while True:
        found, after = index.instances(series_uid, page, after)
        for instance in found:
            if not budget.take():
                return
            yield instance
        if after is None:
            return


def _instance_order(instance: InstanceRecord) -> tuple[bool, int, str]:
    # The index's order: InstanceNumber, then path; an instance without a number last.
    return (instance.instance_number is None, instance.instance_number or 0, instance.s3_path)


def _studies(managers: Managers, query: QidoQuery, budget: _Budget, page: int) -> Iterator[StudyRecord]:
    """Yield the matching studies in the index's order, merging the searches a list key needs."""
    variants = _variants(query)
    if not variants:
        return
    firsts = list(managers.pool.map(partial(managers.studies.search_studies, limit=page), variants))
    streams = [
        _study_stream(managers.studies, criteria, page, first) for criteria, first in zip(variants, firsts, strict=True)
    ]
    merged = streams[0] if len(streams) == 1 else heapq.merge(*streams, key=_study_order)
    seen: set[str] = set()
    for study in merged:
        if study.study_instance_uid in seen:
            continue  # a study of two listed modalities comes from both searches
        if not budget.take():
            return
        seen.add(study.study_instance_uid)
        yield study


def _variants(query: QidoQuery) -> list[StudyCriteria]:
    """Return one study search per listed UID and modality (their product), or the one search."""
    uids: Sequence[str | None] = [None] if query.study_uids is None else sorted(query.study_uids)
    modalities: Sequence[str | None] = (
        [None] if query.modalities_in_study is None else sorted(query.modalities_in_study)
    )
    if len(uids) * len(modalities) > MAX_VARIANTS:
        raise InvalidArgument(
            f"too many UID and modality values together: at most {MAX_VARIANTS} combinations per search"
        )
    return [
        replace(query.criteria, study_instance_uid=uid, modality=modality) for uid in uids for modality in modalities
    ]


def _study_stream(
    index: StudyIndex, criteria: StudyCriteria, page: int, first: tuple[list[StudyRecord], Position | None]
) -> Iterator[StudyRecord]:
    """Yield a study search's results page after page, starting from its first page."""
    studies, after = first
    yield from studies
    while after is not None:
        studies, after = index.search_studies(criteria, page, after)
        yield from studies


def _study_order(study: StudyRecord) -> str:
    # The index's own order: newest StudyDate first, then StudyInstanceUID; no date last.
    return study_sort_key(study.study_date, study.study_instance_uid)


def metadata_instances(
    managers: Managers, study_uid: str, series_uid: str | None = None, sop_uid: str | None = None
) -> list[InstanceRecord]:
    """Return the instances of a study, a series of it, or one instance of that series, in order.

    Raises
    ------
    InvalidArgument
        For a malformed UID, or more than ``MAX_METADATA_INSTANCES`` instances.
    NotFound
        For an unknown study, a series not of that study, an instance not of that series.
    """
    study = checked_uid(study_uid, "StudyInstanceUID")
    series = None if series_uid is None else checked_uid(series_uid, "SeriesInstanceUID")
    sop = None if sop_uid is None else checked_uid(sop_uid, "SOPInstanceUID")
    index = managers.studies
    if sop is not None:
        found = [
            i for i in index.instances_by_sop(sop) if (i.study_instance_uid, i.series_instance_uid) == (study, series)
        ]
        if not found:
            raise NotFound("no such instance in that series and study")
        return sorted(found, key=_instance_order)[:1]
    if series is not None:
        record = index.get_series([series]).get(series)
        if record is None or record.study_instance_uid != study:
            raise NotFound("no such series in that study")
        _check_size(record.number_of_instances)
        return _all_instances(index, [series])
    study_record = index.get_studies([study]).get(study)
    if study_record is None:
        raise NotFound("no such study")
    _check_size(study_record.number_of_instances)
    series_uids = [record.series_instance_uid for record in index.series_of([study]).get(study, [])]
    return _all_instances(index, series_uids)


def _check_size(count: int) -> None:
    if count > MAX_METADATA_INSTANCES:
        raise InvalidArgument(
            f"the metadata of at most {MAX_METADATA_INSTANCES} instances is answered at once; "
            "ask for each series' metadata instead"
        )


def _all_instances(index: StudyIndex, series_uids: list[str]) -> list[InstanceRecord]:
    """Return every instance of these series, series after series, within the metadata bound."""
    budget = _Budget(MAX_METADATA_INSTANCES + 1)
    instances = [instance for uid in series_uids for instance in _instances_of(index, uid, budget)]
    if budget.exhausted:
        _check_size(MAX_METADATA_INSTANCES + 1)
    return instances


def read_headers(managers: Managers, instances: Sequence[InstanceRecord], request_id: str = "") -> Iterator[Any]:
    """Yield each instance's header in the DICOM JSON model, or ``None`` for one that cannot be read.

    Headers are read header-only, ``HEADER_WINDOW`` at a time on the app's pool, and yielded
    in order. A file gone since it was indexed, or no longer readable DICOM, is ``None``:
    the rest of the study is still answered.

    Raises
    ------
    UpstreamUnavailable
        When S3 does not answer: no header could be read, so the request fails.
    """
    read = partial(_header, managers, request_id=request_id)
    for start in range(0, len(instances), HEADER_WINDOW):
        yield from managers.pool.map(read, instances[start : start + HEADER_WINDOW])


def _header(managers: Managers, instance: InstanceRecord, request_id: str) -> dict[str, Any] | None:
    try:
        return managers.dicom.dicom_json(instance.s3_path)
    except UpstreamUnavailable:
        raise
    except DicomMetaError:
        return None
    except Exception as exc:  # noqa: BLE001 - one bad file must not fail the study; logged scrubbed
        log.error(
            "unexpected error reading a header for metadata (request %s)\n%s", request_id, scrubbed_traceback(exc)
        )
        return None
