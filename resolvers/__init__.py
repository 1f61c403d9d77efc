"""One function per operation. GraphQL and REST both call these; neither talks to AWS itself."""

from resolvers.batch import MAX_BATCH_PATHS, ExtractionFailure, extract_metadata_batch
from resolvers.metadata import dicom_json, extract_metadata, fetch_stored_metadata, upload_json
from resolvers.search import Page, StoredObject, list_dicom_files, search_filter, search_metadata
from resolvers.studies import (
    MAX_INSTANCES_PAGE,
    MAX_STUDIES_PAGE,
    get_series,
    get_study,
    search_studies,
    series_instances,
    series_of_studies,
    study_criteria,
)

__all__ = [
    "MAX_BATCH_PATHS",
    "MAX_INSTANCES_PAGE",
    "MAX_STUDIES_PAGE",
    "ExtractionFailure",
    "Page",
    "StoredObject",
    "dicom_json",
    "extract_metadata",
    "extract_metadata_batch",
    "fetch_stored_metadata",
    "get_series",
    "get_study",
    "list_dicom_files",
    "search_filter",
    "search_metadata",
    "search_studies",
    "series_instances",
    "series_of_studies",
    "study_criteria",
    "upload_json",
]
