"""Query fields."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

import resolvers
from resolvers import MAX_BATCH_PATHS, ExtractionFailure
from schema.studies import Series, Study, StudyFilter, StudyPage
from schema.types import (
    Context,
    DicomFile,
    DicomFilePage,
    DicomMetadata,
    DicomMetadataResult,
    ExtractionError,
    MetadataFilter,
    MetadataPage,
)


@strawberry.type
class Query:
    @strawberry.field(description="The five fields read live from the DICOM file in S3.")
    def dicom_metadata(self, info: Info[Context, None], s3_path: str) -> DicomMetadata:
        return DicomMetadata.from_record(resolvers.extract_metadata(info.context.managers, s3_path))

    @strawberry.field(description="The record the ingest stored in DynamoDB; null when there is none.")
    def stored_metadata(self, info: Info[Context, None], s3_path: str) -> DicomMetadata | None:
        record = resolvers.fetch_stored_metadata(info.context.managers, s3_path)
        return None if record is None else DicomMetadata.from_record(record)

    @strawberry.field(description="Stored records matching `filter`, by StudyDate then s3 path; `first` is 1 to 500.")
    def search_metadata(
        self, info: Info[Context, None], filter: MetadataFilter, first: int = 50, after: str | None = None
    ) -> MetadataPage:
        criteria = resolvers.search_filter(
            patient_id=filter.patient_id,
            modality=filter.modality,
            institution_name=filter.institution_name,
            study_date_from=filter.study_date_from,
            study_date_to=filter.study_date_to,
        )
        page = resolvers.search_metadata(info.context.managers, info.context.cursors, criteria, first, after)
        return MetadataPage(items=[DicomMetadata.from_record(r) for r in page.items], next_cursor=page.next_cursor)

    @strawberry.field(description="Objects under `prefix` in the bucket; `first` is 1 to 1000.")
    def dicom_files(
        self, info: Info[Context, None], prefix: str = "dicom/", first: int = 100, after: str | None = None
    ) -> DicomFilePage:
        page = resolvers.list_dicom_files(info.context.managers, info.context.cursors, prefix, first, after)
        return DicomFilePage(items=[DicomFile.from_object(o) for o in page.items], next_cursor=page.next_cursor)

    @strawberry.field(
        description=f"The five fields of up to {MAX_BATCH_PATHS} files read live and concurrently, in the "
        "order asked; a file that cannot be read gives an ExtractionError in its place."
    )
    def dicom_metadata_batch(self, info: Info[Context, None], s3_paths: list[str]) -> list[DicomMetadataResult]:
        results = resolvers.extract_metadata_batch(info.context.managers, s3_paths, request_id=info.context.request_id)
        return [
            ExtractionError.from_failure(result)
            if isinstance(result, ExtractionFailure)
            else DicomMetadata.from_record(result)
            for result in results
        ]

    @strawberry.field(
        description=f"Studies matching `filter` (all of them without one), newest StudyDate first, then by "
        f"StudyInstanceUID; `first` is 1 to {resolvers.MAX_STUDIES_PAGE}."
    )
    def studies(
        self, info: Info[Context, None], filter: StudyFilter | None = None, first: int = 50, after: str | None = None
    ) -> StudyPage:
        criteria = (filter or StudyFilter()).criteria()
        page = resolvers.search_studies(info.context.managers, info.context.cursors, criteria, first, after)
        return StudyPage(items=Study.page_of(page.items), next_cursor=page.next_cursor)

    @strawberry.field(description="The study of this StudyInstanceUID; null when none of its files is stored.")
    def study(self, info: Info[Context, None], study_instance_uid: str) -> Study | None:
        record = resolvers.get_study(info.context.managers, study_instance_uid)
        return None if record is None else Study.from_record(record)

    @strawberry.field(description="The series of this SeriesInstanceUID; null when none of its files is stored.")
    def series(self, info: Info[Context, None], series_instance_uid: str) -> Series | None:
        record = resolvers.get_series(info.context.managers, series_instance_uid)
        return None if record is None else Series.from_record(record)
