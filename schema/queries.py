"""Query fields."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

import resolvers
from schema.types import Context, DicomMetadata


@strawberry.type
class Query:
    @strawberry.field(description="The five fields read live from the DICOM file in S3.")
    def dicom_metadata(self, info: Info[Context, None], s3_path: str) -> DicomMetadata:
        return DicomMetadata.from_record(resolvers.extract_metadata(info.context.managers, s3_path))

    @strawberry.field(description="The record the ingest stored in DynamoDB; null when there is none.")
    def stored_metadata(self, info: Info[Context, None], s3_path: str) -> DicomMetadata | None:
        record = resolvers.fetch_stored_metadata(info.context.managers, s3_path)
        return None if record is None else DicomMetadata.from_record(record)
