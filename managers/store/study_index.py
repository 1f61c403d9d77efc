"""StudyIndex: the archive as studies, series and instances, read from the metadata table.

What the items of studies and series hold is in ``managers/store/study_items.py``, how they are
kept exact in ``managers/store/aggregates.py``; this module reads them into the records of
``managers/store/study_records.py``. Every method is a Query on an index or a batch of key
reads: none reads the whole table, and a page reads a small multiple of its size.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Literal

from managers.dicom.attributes import NUMBER_ATTRIBUTES, TEXT_ATTRIBUTES, keyword_of
from managers.store import records
from managers.store.study_items import (
    MODALITY_COUNTER,
    SERIES_COUNTER,
    SERIES_INSTANCES,
    STUDY_INSTANCES,
    counters,
    query_token,
    series_key,
    study_key,
    study_sort_key,
)
from managers.store.study_records import (
    InstanceRecord,
    Position,
    SeriesRecord,
    StudyCriteria,
    StudyRecord,
    TextMatch,
)
from managers.store.table import (
    INSTANCE_SERIES,
    INSTANCE_SORT,
    PARTITION_KEY,
    SHARDS,
    STUDY_SORT,
)
from metadata import FIELDS, valid_date

if TYPE_CHECKING:
    from managers.DynamoDBManager import DynamoDBManager

# Studies whose series are read at once (one Query each): a page of studies, side by side.
SERIES_WORKERS = 16
# Series one study lists at most (a study of more is not a real study; the rest are left out).
MAX_SERIES_PER_STUDY = 1000


class StudyIndex:
    """Reads studies, series and instances; built once per app over its ``DynamoDBManager``.

    A study search reads one search key per study from the ``StudyToken-StudySort`` index
    (the shards of the most selective key of the criteria, in parallel, merged in order) and
    then the study items of those keys in one BatchGetItem, and keeps the studies whose values
    match every criterion: a page reads its study items and ``shard_chunk`` keys a shard,
    whatever the table holds.
    """

    def __init__(self, dynamodb: DynamoDBManager) -> None:
        self.dynamodb = dynamodb
        # Its own threads, not the manager's shard pool: a series_of task runs Queries whose
        # shards the manager's pool serves, and one pool waiting on itself has deadlocked.
        self._pool = ThreadPoolExecutor(max_workers=SERIES_WORKERS, thread_name_prefix="dicom-meta-series")

    def search_studies(
        self, criteria: StudyCriteria, limit: int, after: Position | None = None
    ) -> tuple[list[StudyRecord], Position | None]:
        """Return up to ``limit`` studies matching ``criteria``, newest StudyDate first, then by UID.

        Returns the studies and the position after the last one (``None`` when no more).
        """
        if criteria.study_instance_uid:
            found = self._study_items([criteria.study_instance_uid])
            item = found.get(criteria.study_instance_uid)
            if item is None or not _matches(item, criteria) or after is not None:
                return [], None
            return [_study(item)], None
        bounds = _date_bounds(criteria, after["sort"] if after else None)
        if bounds is None:
            return [], None
        token = _token(criteria)
        partitions = [f"{token}#{shard}" for shard in range(SHARDS)]
        keys = self.dynamodb.merged_query("StudyToken-StudySort", partitions, bounds, shard_chunk(limit))
        page: list[tuple[str, dict[str, Any]]] = []
        for batch in _batches(keys, after["sort"] if after else None, limit):
            studies = self._study_items([key["StudyInstanceUID"]["S"] for key in batch])
            for key in batch:
                item = studies.get(key["StudyInstanceUID"]["S"])
                sort = key[STUDY_SORT]["S"]
                if item is not None and _sort_of(item) == sort and _matches(item, criteria):
                    page.append((sort, item))
                if len(page) > limit:
                    return [_study(item) for _, item in page[:limit]], {"sort": page[limit - 1][0]}
        return [_study(item) for _, item in page], None

    def get_studies(self, study_uids: list[str]) -> dict[str, StudyRecord]:
        """Return the studies of these UIDs that exist (at least one instance), by UID."""
        return {uid: _study(item) for uid, item in self._study_items(study_uids).items()}

    def _study_items(self, study_uids: list[str]) -> dict[str, dict[str, Any]]:
        found = self.dynamodb.get_items([study_key(uid) for uid in dict.fromkeys(study_uids)])
        return {
            item["StudyInstanceUID"]["S"]: item
            for item in found.values()
            if _count(item, STUDY_INSTANCES) > 0 and "StudyInstanceUID" in item
        }

    def series_of(self, study_uids: list[str]) -> dict[str, list[SeriesRecord]]:
        """Return each study's series by SeriesNumber then UID (``[]`` for an unknown study).

        At most ``MAX_SERIES_PER_STUDY`` per study; the studies' Queries run in parallel.
        """
        unique = list(dict.fromkeys(study_uids))
        lists = list(self._pool.map(self._series_of_one, unique))
        return dict(zip(unique, lists, strict=True))

    def _series_of_one(self, study_uid: str) -> list[SeriesRecord]:
        items = self.dynamodb.query_partition("SeriesStudy-SeriesSort", study_uid, None, MAX_SERIES_PER_STUDY)
        return [_series(item) for item in items if _count(item, SERIES_INSTANCES) > 0]

    def get_series(self, series_uids: list[str]) -> dict[str, SeriesRecord]:
        """Return the series of these UIDs that exist (at least one instance), by UID."""
        found = self.dynamodb.get_items([series_key(uid) for uid in dict.fromkeys(series_uids)])
        series = [_series(item) for item in found.values() if _count(item, SERIES_INSTANCES) > 0]
        return {record.series_instance_uid: record for record in series}

    def instances(
        self, series_uid: str, limit: int, after: Position | None = None
    ) -> tuple[list[InstanceRecord], Position | None]:
        """Return up to ``limit`` instances of a series by InstanceNumber then path, and the next position."""
        position = after["sort"] if after else None
        items = self.dynamodb.query_partition("InstanceSeries-InstanceSort", series_uid, position, limit + 1)
        page = [_instance(item) for item in items[:limit]]
        more = len(items) > limit
        return page, ({"sort": items[limit - 1][INSTANCE_SORT]["S"]} if more else None)

    def instances_by_sop(self, sop_instance_uid: str) -> list[InstanceRecord]:
        """Return the instances with this SOPInstanceUID (more than one when copies were stored)."""
        items = self.dynamodb.query_partition("SOPInstanceUID", sop_instance_uid, None, 100)
        return [_instance(item) for item in items if INSTANCE_SERIES in item]


def shard_chunk(limit: int) -> int:
    """Return the search keys a study page asks each shard for in its first Query.

    A page takes ``limit + 1`` keys, spread over the ``SHARDS`` by hash; the merge asks a shard
    for more (one Query after the others) as soon as it has used up the shard's chunk. This is
    the keys' mean per shard plus 3.5 standard deviations: a page of 25 reads 10 a shard and
    needs a Query more about once in 200 pages, where 5 a shard needed one in 9 pages of 10.
    A search key is under 400 bytes and DynamoDB charges a Query by the 4 KB it reads: ten
    keys are one read unit, as five were.
    """
    wanted = limit + 1
    mean = wanted / SHARDS
    deviation = math.sqrt(wanted * (1 / SHARDS) * (1 - 1 / SHARDS))
    return math.ceil(mean + 3.5 * deviation)


def _token(criteria: StudyCriteria) -> str:
    """Return the search key of the most selective criterion (``*``: every study)."""
    for kind, match in (
        ("pid", criteria.patient_id),
        ("acc", criteria.accession_number),
        ("pn", criteria.patient_name),
        ("desc", criteria.study_description),
    ):
        if match is not None:
            return query_token(kind, match.text)
    if criteria.modality:
        return query_token("mod", criteria.modality)
    return "*"


def _date_bounds(criteria: StudyCriteria, after: str | None) -> tuple[str | None, str | None] | None:
    """Return the (low exclusive-or-inclusive, high inclusive) StudySortKey bounds of a page.

    Newest first: the sort key holds ``99999999 - StudyDate``, so the range's end gives the low
    bound. ``None`` when nothing can follow ``after``.
    """
    low: str | None = None
    high: str | None = None
    if criteria.study_date_from or criteria.study_date_to:
        low = f"{99999999 - int(criteria.study_date_to or '99991231'):08d}#"
        high = f"{99999999 - int(criteria.study_date_from or '00010101'):08d}$"
    if after is not None:
        if high is not None and after > high:
            return None
        low = max(low or "", after)
    return low, high


def _batches(keys: Iterator[dict[str, Any]], after: str | None, limit: int) -> Iterator[list[dict[str, Any]]]:
    """Yield the search keys past ``after`` in batches of one page and one more (at most 100)."""
    size = min(limit + 1, 100)
    batch: list[dict[str, Any]] = []
    seen: set[str] = set()
    for key in keys:
        sort = key[STUDY_SORT]["S"]
        if sort == after or sort in seen:
            continue  # the last study served, or a second key of one study (one per sort key)
        seen.add(sort)
        batch.append(key)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _count(item: dict[str, Any], counter: str) -> int:
    try:
        return int(item.get(counter, {}).get("N", "0"))
    except ValueError:
        return 0


def _text(item: dict[str, Any], name: str) -> str | None:
    value: str | None = item.get(name, {}).get("S")
    return value or None


def _integer(item: dict[str, Any], name: str) -> int | None:
    value = item.get(name, {}).get("N")
    return int(value) if value is not None else None


def _sort_of(item: dict[str, Any]) -> str:
    return study_sort_key(_text(item, "StudyDate"), item["StudyInstanceUID"]["S"])


def _matches(item: dict[str, Any], criteria: StudyCriteria) -> bool:
    """Tell whether a study item matches every criterion (its search keys are only candidates)."""
    texts: list[tuple[TextMatch | None, str, Literal["pn", "id", "text"]]] = [
        (criteria.patient_id, "PatientID", "id"),
        (criteria.accession_number, "AccessionNumber", "id"),
        (criteria.patient_name, "PatientName", "pn"),
        (criteria.study_description, "StudyDescription", "text"),
    ]
    for match, name, kind in texts:
        if match is not None and not match.matches(_text(item, name), kind):
            return False
    if criteria.modality and criteria.modality.upper() not in counters(item, MODALITY_COUNTER):
        return False
    day = valid_date(_text(item, "StudyDate"))
    if criteria.study_date_from and (day is None or day < criteria.study_date_from):
        return False
    if criteria.study_date_to and (day is None or day > criteria.study_date_to):
        return False
    return not criteria.study_instance_uid or item["StudyInstanceUID"]["S"] == criteria.study_instance_uid


def _attributes(record_type: type, item: dict[str, Any]) -> dict[str, Any]:
    """Return the text and number fields of a record type, read from an item by their keywords.

    The counts and lists a record derives from counters are the caller's to add.
    """
    found: dict[str, Any] = {}
    for name, keyword, is_text in _item_fields(record_type):
        found[name] = _text(item, keyword) if is_text else _integer(item, keyword)
    return found


@functools.cache  # one entry per record type
def _item_fields(record_type: type) -> tuple[tuple[str, str, bool], ...]:
    """A record type's text and number fields: (field name, DICOM keyword, whether text)."""
    return tuple(
        (item_field.name, keyword_of(item_field.name), item_field.type in ("str", "str | None"))
        for item_field in dataclasses.fields(record_type)
        if item_field.type in ("str", "str | None", "int | None")
    )


def _study(item: dict[str, Any]) -> StudyRecord:
    return StudyRecord(
        **_attributes(StudyRecord, item),
        modalities_in_study=sorted(counters(item, MODALITY_COUNTER)),
        number_of_series=len(counters(item, SERIES_COUNTER)),
        number_of_instances=_count(item, STUDY_INSTANCES),
    )


def _series(item: dict[str, Any]) -> SeriesRecord:
    return SeriesRecord(**_attributes(SeriesRecord, item), number_of_instances=_count(item, SERIES_INSTANCES))


def _instance(item: dict[str, Any]) -> InstanceRecord:
    attributes: dict[str, Any] = {name: _text(item, name) for name in TEXT_ATTRIBUTES if _text(item, name)}
    attributes.update({name: _integer(item, name) for name in NUMBER_ATTRIBUTES if name in item})
    fields = {name: _text(item, name) for name in FIELDS}
    attributes.update(
        {name: value for name, value in records.fields_of_map(item.get(records.HEADER_FIELDS, {})).items() if value}
    )
    return InstanceRecord(
        s3_path=item[PARTITION_KEY]["S"],
        study_instance_uid=attributes.get("StudyInstanceUID", ""),
        series_instance_uid=item[INSTANCE_SERIES]["S"],
        sop_instance_uid=attributes.get("SOPInstanceUID", ""),
        sop_class_uid=attributes.get("SOPClassUID"),
        instance_number=attributes.get("InstanceNumber"),
        rows=attributes.get("Rows"),
        columns=attributes.get("Columns"),
        number_of_frames=attributes.get("NumberOfFrames"),
        etag=records.etag_of(item),
        attributes=attributes,
        fields=fields,
    )
