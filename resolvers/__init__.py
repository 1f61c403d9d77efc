"""One function per operation. GraphQL and REST both call these; neither talks to AWS itself."""

from resolvers.batch import MAX_BATCH_PATHS, ExtractionFailure, extract_metadata_batch
from resolvers.metadata import extract_metadata, fetch_stored_metadata, upload_json

__all__ = [
    "MAX_BATCH_PATHS",
    "ExtractionFailure",
    "extract_metadata",
    "extract_metadata_batch",
    "fetch_stored_metadata",
    "upload_json",
]
