"""GraphQL types. Field names are the contract's (docs/API.md, "GraphQL")."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Generic, NewType, TypeVar

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

import resolvers
from resolvers import ExtractionFailure, StoredObject
from schema.loaders import Loaders, RequestBudget

if TYPE_CHECKING:
    from managers.bundle import Managers
    from resolvers.paging import Cursors

# GraphQL's Int is 32-bit; DICOM objects (whole-slide images, tomosynthesis) pass 2 GiB.
# Mapped to its GraphQL scalar in schema/__init__.py.
Long = NewType("Long", int)


@dataclass
class Context:
    """What every resolver receives as ``info.context``: built once per request, its loaders with it."""

    managers: Managers
    cursors: Cursors
    request_id: str
    # The service's /dicomweb URL as this request reached it: the base of the pixel URLs.
    dicomweb_url: str = "/dicomweb"
    loaders: Loaders = field(init=False)
    budget: RequestBudget = field(init=False, default_factory=RequestBudget)

    def __post_init__(self) -> None:
        self.loaders = Loaders(self.managers)


@strawberry.type(description="The five DICOM fields of one file; null where the file has no value.")
class DicomMetadata:
    s3_path: str = strawberry.field(description="s3://bucket/key of the DICOM file.")
    patient_id: str | None = strawberry.field(description="PatientID (0010,0020).")
    study_date: str | None = strawberry.field(description="StudyDate (0008,0020), YYYYMMDD.")
    modality: str | None = strawberry.field(description="Modality (0008,0060).")
    institution_name: str | None = strawberry.field(description="InstitutionName (0008,0080).")
    study_description: str | None = strawberry.field(description="StudyDescription (0008,1030).")

    @strawberry.field(
        description="The file's header in the DICOM JSON model (PS3.18 Annex F), read from S3 when "
        'asked for: all attributes, or only `keywords` (keywords such as "Rows" or 8-hex tags). '
        "Bulk data is left out. One request reads at most 500 headers this way."
    )
    def dicom_json(self, info: Info[Context, None], keywords: list[str] | None = None) -> JSON | None:
        info.context.budget.spend("dicomJson", 1)
        return JSON(resolvers.dicom_json(info.context.managers, self.s3_path, keywords))

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> DicomMetadata:
        """Build the type from a resolver's record (``s3_path`` plus the five keywords)."""
        return cls(
            s3_path=record["s3_path"],
            patient_id=record["PatientID"],
            study_date=record["StudyDate"],
            modality=record["Modality"],
            institution_name=record["InstitutionName"],
            study_description=record["StudyDescription"],
        )


@strawberry.type(description="Where an uploaded metadata document was stored.")
class UploadResult:
    s3_path: str = strawberry.field(description="s3://bucket/json/… of the uploaded JSON.")


@strawberry.input(
    description="Search criteria; all given ones must match. Dates are YYYYMMDD or YYYY-MM-DD, inclusive."
)
class MetadataFilter:
    patient_id: str | None = None
    modality: str | None = None
    study_date_from: str | None = None
    study_date_to: str | None = None
    institution_name: str | None = None


T = TypeVar("T")


@strawberry.type
class Page(Generic[T]):
    """One page of items and the cursor of the next; each use names itself (the contract's names)."""

    items: list[T]
    next_cursor: str | None = strawberry.field(description="Pass as `after` for the next page; null on the last.")


@strawberry.type(name="MetadataPage", description="One page of search results, ordered by StudyDate then s3 path.")
class MetadataPage(Page[DicomMetadata]):
    pass


@strawberry.type(description="An object in the bucket.")
class DicomFile:
    s3_path: str
    size: Long
    last_modified: datetime

    @classmethod
    def from_object(cls, stored: StoredObject) -> DicomFile:
        """Build the type from a listing's (s3 path, size, last modified)."""
        s3_path, size, last_modified = stored
        return cls(s3_path=s3_path, size=Long(size), last_modified=last_modified)


@strawberry.type(name="DicomFilePage", description="One page of objects, in key order.")
class DicomFilePage(Page[DicomFile]):
    pass


@strawberry.type(description="Why one file of a batch has no metadata.")
class ExtractionError:
    s3_path: str = strawberry.field(description="The path as it was asked for.")
    code: str = strawberry.field(
        description="The error code, as the REST routes would answer it (NOT_FOUND, NOT_DICOM…)."
    )
    message: str = strawberry.field(description="What went wrong, for people.")

    @classmethod
    def from_failure(cls, failure: ExtractionFailure) -> ExtractionError:
        """Build the type from the batch resolver's failure."""
        return cls(s3_path=failure.s3_path, code=failure.code, message=failure.message)


DicomMetadataResult = Annotated[
    DicomMetadata | ExtractionError,
    strawberry.union("DicomMetadataResult", description="The metadata of one file of a batch, or why there is none."),
]
