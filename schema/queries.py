"""Query fields."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

import resolvers
from resolvers import MAX_BATCH_PATHS, ExtractionFailure
from schema.types import Context, DicomMetadata, DicomMetadataResult, ExtractionError


@strawberry.type
class Query:
    @strawberry.field(description="The five fields read live from the DICOM file in S3.")
    def dicom_metadata(self, info: Info[Context, None], s3_path: str) -> DicomMetadata:
        return DicomMetadata.from_record(resolvers.extract_metadata(info.context.managers, s3_path))

    @strawberry.field(description="The record the ingest stored in DynamoDB; null when there is none.")
    def stored_metadata(self, info: Info[Context, None], s3_path: str) -> DicomMetadata | None:
        record = resolvers.fetch_stored_metadata(info.context.managers, s3_path)
        return None if record is None else DicomMetadata.from_record(record)

    @strawberry.field(
        description=f"The five fields of up to {MAX_BATCH_PATHS} files read live and concurrently, in the "
        "order asked; a file that cannot be read gives an ExtractionError in its place."
    )
    def dicom_metadata_batch(self, info: Info[Context, None], s3_paths: list[str]) -> list[DicomMetadataResult]:
        results = resolvers.extract_metadata_batch(
            info.context.managers, s3_paths, request_id=info.context.request_id
        )
        return [
            ExtractionError.from_failure(result) if isinstance(result, ExtractionFailure)
            else DicomMetadata.from_record(result)
            for result in results
        ]
