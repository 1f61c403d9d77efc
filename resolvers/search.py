"""Resolvers of the query operations: search stored records, list DICOM files."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Generic, TypeVar

from managers.bundle import Managers
from managers.store.search import SearchFilter
from resolvers.arguments import date_bounds
from resolvers.paging import Cursors, check_page_size, fingerprint

MAX_SEARCH_PAGE = 500
MAX_FILES_PAGE = 1000


T = TypeVar("T")

# An object of the bucket as listings give it: s3 path, size in bytes, last modified. The
# GraphQL type of it (schema.types.DicomFile) is its one named definition.
StoredObject = tuple[str, int, datetime]


@dataclass
class Page(Generic[T]):
    """One page of results and the cursor of the next (``None`` on the last page)."""

    items: list[T]
    next_cursor: str | None


def search_filter(
    patient_id: str | None = None,
    modality: str | None = None,
    institution_name: str | None = None,
    study_date_from: str | None = None,
    study_date_to: str | None = None,
) -> SearchFilter:
    """Return normalized criteria: empty strings dropped, dates as ``YYYYMMDD``, bounds ordered."""
    low, high = date_bounds(study_date_from, study_date_to, ("studyDateFrom", "studyDateTo"))
    return SearchFilter(
        patient_id=patient_id or None,
        modality=modality or None,
        institution_name=institution_name or None,
        study_date_from=low,
        study_date_to=high,
    )


def search_metadata(
    managers: Managers, cursors: Cursors, criteria: SearchFilter, first: int = 50, after: str | None = None
) -> Page[dict[str, str | None]]:
    """Return one page of stored records matching ``criteria``, by StudyDate then path."""
    check_page_size(first, MAX_SEARCH_PAGE)
    query = fingerprint("searchMetadata", asdict(criteria))
    after_position = cursors.decode(query, after, fields=("sort",))
    items, position = managers.dynamodb.search(criteria, first, after_position)
    return Page(items=items, next_cursor=cursors.encode(query, position))


def list_dicom_files(
    managers: Managers, cursors: Cursors, prefix: str = "dicom/", first: int = 100, after: str | None = None
) -> Page[StoredObject]:
    """Return one page of the objects under ``prefix``, in key order."""
    check_page_size(first, MAX_FILES_PAGE)
    query = fingerprint("dicomFiles", {"prefix": prefix})
    position = cursors.decode(query, after, fields=("token",))
    objects, token = managers.s3.list_objects(prefix, first, position["token"] if position else None)
    return Page(items=objects, next_cursor=cursors.encode(query, {"token": token} if token else None))
