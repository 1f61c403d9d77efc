"""QIDO-RS search: a ``QidoQuery`` walked through the study index, studies, then series, then instances."""

from __future__ import annotations

import heapq
import itertools
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from functools import partial
from typing import Any

from errors import InvalidArgument
from managers.bundle import Managers
from managers.dicom.json_model import attributes_json
from managers.store.study_index import StudyIndex
from managers.store.study_items import study_sort_key
from managers.store.study_records import InstanceRecord, Position, SeriesRecord, StudyCriteria, StudyRecord
from resolvers.dicomweb.query import LEVEL_ATTRIBUTES, Level, QidoQuery, SearchAnswer

log = logging.getLogger(__name__)

# Records one search may read: the deepest offset plus a full page, and room for the
# series and instances a series or instance search reads on the way.
MAX_EXAMINED = 20_000
MAX_VARIANTS = 100
# Page sizes of the walk: studies per search_studies call, instances per instances call.
STUDY_PAGE = 200
WALK_STUDY_PAGE = 25
INSTANCE_PAGE = 500
EXAMINED_WARNING = (
    f"The search stopped after examining {MAX_EXAMINED} records; the results may be incomplete. "
    "Narrow the search or use a smaller offset."
)


class Budget:
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


def search_models(managers: Managers, query: QidoQuery) -> tuple[list[dict[str, Any]], tuple[str, ...]]:
    """Return one page of a QIDO-RS search in the DICOM JSON model, and the warnings to send."""
    answer = search(managers, query)
    required = LEVEL_ATTRIBUTES[query.level]
    return [attributes_json(values, query.attributes(values), required) for values in answer.results], answer.warnings


def search(managers: Managers, query: QidoQuery) -> SearchAnswer:
    """Return one page of a QIDO-RS search: ``query.limit`` results after ``query.offset``."""
    budget = Budget()
    walks: dict[Level, Callable[[Managers, QidoQuery, Budget], Iterator[dict[str, Any]]]] = {
        "study": _study_results,
        "series": _series_results,
        "instance": _instance_results,
    }
    walk = walks[query.level](managers, query, budget)
    results = list(itertools.islice(walk, query.offset, query.offset + query.limit))
    warnings = query.warnings + ((EXAMINED_WARNING,) if budget.exhausted else ())
    return SearchAnswer(results, warnings)


def _study_results(managers: Managers, query: QidoQuery, budget: Budget) -> Iterator[dict[str, Any]]:
    for study in _studies(managers, query, budget, min(query.offset + query.limit, STUDY_PAGE)):
        yield study.keywords()


def _series_results(managers: Managers, query: QidoQuery, budget: Budget) -> Iterator[dict[str, Any]]:
    for study, series in _series_walk(managers, query, budget):
        yield {**study.keywords(), **series.keywords()}


def _instance_results(managers: Managers, query: QidoQuery, budget: Budget) -> Iterator[dict[str, Any]]:
    found = _instances_by_sop(managers, query)
    if found is not None:
        query = _narrowed(query, {i.study_instance_uid for i in found}, {i.series_instance_uid for i in found})
    for study, series in _series_walk(managers, query, budget):
        study_values, series_values = study.keywords(), series.keywords()
        if found is not None:
            instances: Iterable[InstanceRecord] = sorted(
                (i for i in found if i.series_instance_uid == series.series_instance_uid), key=instance_order
            )
        else:
            page = min(query.offset + query.limit, INSTANCE_PAGE)
            instances = instances_of(managers.studies, series.series_instance_uid, budget, page)
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


def _series_walk(managers: Managers, query: QidoQuery, budget: Budget) -> Iterator[tuple[StudyRecord, SeriesRecord]]:
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


def instances_of(
    index: StudyIndex, series_uid: str, budget: Budget, page: int = INSTANCE_PAGE
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


def instance_order(instance: InstanceRecord) -> tuple[bool, int, str]:
    # The index's order: InstanceNumber, then path; an instance without a number last.
    return (instance.instance_number is None, instance.instance_number or 0, instance.s3_path)


def _studies(managers: Managers, query: QidoQuery, budget: Budget, page: int) -> Iterator[StudyRecord]:
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
