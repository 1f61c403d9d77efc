"""One function per operation. GraphQL and REST both call these; neither talks to AWS itself."""

from resolvers.metadata import dicom_json, extract_metadata, fetch_stored_metadata, upload_json
from resolvers.search import Page, list_dicom_files, search_filter, search_metadata

__all__ = [
    "Page",
    "dicom_json",
    "extract_metadata",
    "fetch_stored_metadata",
    "list_dicom_files",
    "search_filter",
    "search_metadata",
    "upload_json",
]
