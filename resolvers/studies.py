"""Resolvers of the study view: criteria checked for GraphQL and DICOMweb alike, studies, series
and instances read in pages bound to their query."""

from __future__ import annotations

from dataclasses import asdict

from managers.bundle import Managers
from managers.store.study_records import InstanceRecord, SeriesRecord, StudyCriteria, StudyRecord, TextMatch
from resolvers.arguments import checked_modality, checked_uid, date_bounds
from resolvers.paging import Cursors, check_page_size, fingerprint
from resolvers.search import Page

# Studies one page holds at most: each carries its counts and, when asked, its series.
MAX_STUDIES_PAGE = 200
# Instances of one series one page holds at most (a CT series is often 500 to 2,000 slices).
MAX_INSTANCES_PAGE = 1000


def study_criteria(
    *,
    patient_id: str | None = None,
    patient_name: str | None = None,
    accession_number: str | None = None,
    study_description: str | None = None,
    modality: str | None = None,
    study_date_from: str | None = None,
    study_date_to: str | None = None,
    study_instance_uid: str | None = None,
) -> StudyCriteria:
    """Return checked study criteria; empty strings count as not given.

    Raises
    ------
    InvalidArgument
        For a malformed date or UID, a date range whose start is after its end, or a text
        pattern ``TextMatch.parse`` refuses.
    """
    low, high = date_bounds(study_date_from, study_date_to, ("studyDateFrom", "studyDateTo"))
    return StudyCriteria(
        patient_id=TextMatch.parse(patient_id, "patientId") if patient_id else None,
        patient_name=TextMatch.parse(patient_name, "patientName") if patient_name else None,
        accession_number=TextMatch.parse(accession_number, "accessionNumber") if accession_number else None,
        study_description=TextMatch.parse(study_description, "studyDescription") if study_description else None,
        modality=checked_modality(modality, "modality") if modality else None,
        study_date_from=low,
        study_date_to=high,
        study_instance_uid=checked_uid(study_instance_uid, "studyInstanceUid") if study_instance_uid else None,
    )


def search_studies(
    managers: Managers, cursors: Cursors, criteria: StudyCriteria, first: int = 50, after: str | None = None
) -> Page[StudyRecord]:
    """Return one page of the studies matching ``criteria``, newest StudyDate first, then by UID.

    Raises
    ------
    InvalidArgument
        When ``first`` is not between 1 and ``MAX_STUDIES_PAGE``.
    InvalidCursor
        When ``after`` was altered or belongs to another search.
    """
    check_page_size(first, MAX_STUDIES_PAGE)
    query = fingerprint("studies", asdict(criteria))
    position = cursors.decode(query, after, fields=("sort",))
    studies, next_position = managers.studies.search_studies(criteria, first, position)
    return Page(items=studies, next_cursor=cursors.encode(query, next_position))


def get_study(managers: Managers, study_instance_uid: str) -> StudyRecord | None:
    """Return the study of this UID, or ``None`` when no instance of it is stored."""
    uid = checked_uid(study_instance_uid, "studyInstanceUid")
    return managers.studies.get_studies([uid]).get(uid)


def get_series(managers: Managers, series_instance_uid: str) -> SeriesRecord | None:
    """Return the series of this UID, or ``None`` when no instance of it is stored."""
    uid = checked_uid(series_instance_uid, "seriesInstanceUid")
    return managers.studies.get_series([uid]).get(uid)


def series_of_studies(managers: Managers, study_uids: list[str]) -> dict[str, list[SeriesRecord]]:
    """Return the series of each of these studies, by SeriesNumber then UID, in one batched read.

    The UIDs come from stored studies, not from a client, so they are not checked again.
    """
    return managers.studies.series_of(study_uids)


def series_instances(
    managers: Managers, cursors: Cursors, series_instance_uid: str, first: int = 100, after: str | None = None
) -> Page[InstanceRecord]:
    """Return one page of a series' instances, by InstanceNumber then path.

    The cursor is bound to the series alone: one made under ``study { series { instances } }``
    pages ``series(seriesInstanceUid) { instances }`` too, and no other series.

    Raises
    ------
    InvalidArgument
        When ``first`` is not between 1 and ``MAX_INSTANCES_PAGE`` or the UID is malformed.
    InvalidCursor
        When ``after`` was altered or belongs to another series or query.
    """
    uid = checked_uid(series_instance_uid, "seriesInstanceUid")
    check_page_size(first, MAX_INSTANCES_PAGE)
    query = fingerprint("instances", {"seriesInstanceUid": uid})
    position = cursors.decode(query, after, fields=("sort",))
    instances, next_position = managers.studies.instances(uid, first, position)
    return Page(items=instances, next_cursor=cursors.encode(query, next_position))
