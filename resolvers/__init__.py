"""One function per operation. GraphQL and REST both call these; neither talks to AWS itself."""

from resolvers.batch import MAX_BATCH_PATHS, ExtractionFailure, extract_metadata_batch
from resolvers.metadata import dicom_json, extract_metadata, fetch_stored_metadata, upload_json
from resolvers.search import Page, StoredObject, list_dicom_files, search_filter, search_metadata

__all__ = [
    "MAX_BATCH_PATHS",
    "ExtractionFailure",
    "Page",
    "StoredObject",
    "dicom_json",
    "extract_metadata",
    "extract_metadata_batch",
    "fetch_stored_metadata",
    "list_dicom_files",
    "search_filter",
    "search_metadata",
    "upload_json",
]
