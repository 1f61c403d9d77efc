"""One function per operation. GraphQL and REST both call these; neither talks to AWS itself."""

from resolvers.metadata import extract_metadata, fetch_stored_metadata, upload_json

__all__ = ["extract_metadata", "fetch_stored_metadata", "upload_json"]
