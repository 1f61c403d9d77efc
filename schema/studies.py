"""GraphQL types of the study view: studies, their series, the series' instances.

A study's series are loaded a whole page of studies at a time (``schema/loaders.py``), so a
study list with its series costs one read per level, whatever the number of studies.
"""

from __future__ import annotations

import strawberry
from strawberry.types import Info

import resolvers
from managers.store.study_records import InstanceRecord, SeriesRecord, StudyCriteria, StudyRecord
from metadata import FIELDS
from resolvers import urls
from schema.loaders import RequestBudget
from schema.types import Context, DicomMetadata, Page

# GraphQL's Int is 32-bit; IS values (PS3.5 6.2) fit, a malformed header's need not.
INT32 = range(-(2**31), 2**31)


def _int32(value: int | None) -> int | None:
    """Return ``value`` when GraphQL's Int can carry it, else ``None`` (a malformed header)."""
    return value if value is not None and value in INT32 else None


@strawberry.input(
    description="Study search criteria; all given ones must match. Text is matched case-insensitively: "
    'exactly, by prefix with a trailing * ("DOE^J*"), or with *text* ("*doe*") by the start of any '
    "name component (patientName) or of the value (patientId, accessionNumber)."
)
class StudyFilter:
    patient_id: str | None = strawberry.field(default=None, description="PatientID (0010,0020).")
    patient_name: str | None = strawberry.field(default=None, description="PatientName (0010,0010).")
    accession_number: str | None = strawberry.field(default=None, description="AccessionNumber (0008,0050).")
    modality: str | None = strawberry.field(
        default=None,
        description="Modality (0008,0060) of any series of the study, such as CT; exact, case-insensitive.",
    )
    study_date_from: str | None = strawberry.field(
        default=None, description="First StudyDate (0008,0020), YYYYMMDD or YYYY-MM-DD, inclusive."
    )
    study_date_to: str | None = strawberry.field(
        default=None, description="Last StudyDate (0008,0020), YYYYMMDD or YYYY-MM-DD, inclusive."
    )
    study_instance_uid: str | None = strawberry.field(default=None, description="StudyInstanceUID (0020,000D).")

    def criteria(self) -> StudyCriteria:
        """Return the checked criteria this filter asks for (``InvalidArgument`` when malformed)."""
        return resolvers.study_criteria(
            patient_id=self.patient_id,
            patient_name=self.patient_name,
            accession_number=self.accession_number,
            modality=self.modality,
            study_date_from=self.study_date_from,
            study_date_to=self.study_date_to,
            study_instance_uid=self.study_instance_uid,
        )


@strawberry.type(description="One instance: one DICOM file of a series, as its stored record describes it.")
class Instance:
    sop_instance_uid: str = strawberry.field(description="SOPInstanceUID (0008,0018).")
    sop_class_uid: str | None = strawberry.field(description="SOPClassUID (0008,0016).")
    instance_number: int | None = strawberry.field(description="InstanceNumber (0020,0013).")
    s3_path: str = strawberry.field(description="s3://bucket/key of the DICOM file.")
    rows: int | None = strawberry.field(description="Rows (0028,0010).")
    columns: int | None = strawberry.field(description="Columns (0028,0011).")
    number_of_frames: int | None = strawberry.field(description="NumberOfFrames (0028,0008).")
    fields: strawberry.Private[dict[str, str | None]]
    study_uid: strawberry.Private[str]
    series_uid: strawberry.Private[str]

    @strawberry.field(description="WADO-RS URL of one frame as stored (multipart/related), 1-based.")
    def frame_url(self, info: Info[Context, None], frame: int = 1) -> str:
        return urls.frame_url(info.context.dicomweb_url, self.study_uid, self.series_uid, self.sop_instance_uid, frame)

    @strawberry.field(description="URL of the instance's image as JPEG (its first frame, or `frame`).")
    def rendered_url(self, info: Info[Context, None], frame: int | None = None) -> str:
        base = info.context.dicomweb_url
        return urls.rendered_url(base, self.study_uid, self.series_uid, self.sop_instance_uid, frame)

    @strawberry.field(description="URL of a small JPEG of the instance (its middle frame).")
    def thumbnail_url(self, info: Info[Context, None]) -> str:
        base = info.context.dicomweb_url
        return urls.instance_url(base, self.study_uid, self.series_uid, self.sop_instance_uid) + "/thumbnail"

    @strawberry.field(
        description="The five fields the stored record answers for this file (as storedMetadata); "
        "dicomJson reads any attribute of its header from S3."
    )
    def metadata(self) -> DicomMetadata:
        # A field the record lacks is null, as a file without the element gives it.
        return DicomMetadata.from_record({"s3_path": self.s3_path, **dict.fromkeys(FIELDS), **self.fields})

    @classmethod
    def from_record(cls, record: InstanceRecord) -> Instance:
        """Build the type from the study index's instance record."""
        return cls(
            sop_instance_uid=record.sop_instance_uid,
            sop_class_uid=record.sop_class_uid,
            instance_number=_int32(record.instance_number),
            s3_path=record.s3_path,
            rows=_int32(record.rows),
            columns=_int32(record.columns),
            number_of_frames=_int32(record.number_of_frames),
            fields=record.fields,
            study_uid=record.study_instance_uid,
            series_uid=record.series_instance_uid,
        )


@strawberry.type(name="InstancePage", description="One page of a series' instances, by InstanceNumber then s3 path.")
class InstancePage(Page[Instance]):
    pass


@strawberry.type(description="One series of a study; its values come from its instances.")
class Series:
    series_instance_uid: str = strawberry.field(description="SeriesInstanceUID (0020,000E).")
    modality: str | None = strawberry.field(description="Modality (0008,0060).")
    series_number: int | None = strawberry.field(description="SeriesNumber (0020,0011).")
    series_description: str | None = strawberry.field(description="SeriesDescription (0008,103E).")
    body_part_examined: str | None = strawberry.field(description="BodyPartExamined (0018,0015).")
    number_of_instances: int = strawberry.field(description="Instances stored for this series (exact).")
    study_uid: strawberry.Private[str]

    @strawberry.field(description="URL of a small JPEG of the series (its middle instance).")
    def thumbnail_url(self, info: Info[Context, None]) -> str:
        return urls.series_url(info.context.dicomweb_url, self.study_uid, self.series_instance_uid) + "/thumbnail"

    @strawberry.field(
        description=f"The series' instances, by InstanceNumber then s3 path; `first` is 1 to "
        f"{resolvers.MAX_INSTANCES_PAGE}. A cursor pages this series whichever way it was reached. One "
        f"request lists at most {RequestBudget.LIMITS['instances']} instances in all (the sum of `first`)."
    )
    def instances(self, info: Info[Context, None], first: int = 100, after: str | None = None) -> InstancePage:
        info.context.budget.spend("instances", first)
        page = resolvers.series_instances(
            info.context.managers, info.context.cursors, self.series_instance_uid, first, after
        )
        return InstancePage(items=[Instance.from_record(r) for r in page.items], next_cursor=page.next_cursor)

    @classmethod
    def from_record(cls, record: SeriesRecord) -> Series:
        """Build the type from the study index's series record."""
        return cls(
            series_instance_uid=record.series_instance_uid,
            modality=record.modality,
            series_number=_int32(record.series_number),
            series_description=record.series_description,
            body_part_examined=record.body_part_examined,
            number_of_instances=record.number_of_instances,
            study_uid=record.study_instance_uid,
        )


@strawberry.type(
    description="One study: the values its instances' headers hold (where they disagree, the first instance "
    "indexed with a value gives it), and exact counts of its series and instances."
)
class Study:
    study_instance_uid: str = strawberry.field(description="StudyInstanceUID (0020,000D).")
    patient_id: str | None = strawberry.field(description="PatientID (0010,0020).")
    patient_name: str | None = strawberry.field(description="PatientName (0010,0010), as the file writes it.")
    patient_birth_date: str | None = strawberry.field(description="PatientBirthDate (0010,0030), YYYYMMDD.")
    patient_sex: str | None = strawberry.field(description="PatientSex (0010,0040).")
    study_date: str | None = strawberry.field(description="StudyDate (0008,0020), YYYYMMDD.")
    study_time: str | None = strawberry.field(description="StudyTime (0008,0030).")
    accession_number: str | None = strawberry.field(description="AccessionNumber (0008,0050).")
    study_description: str | None = strawberry.field(description="StudyDescription (0008,1030).")
    referring_physician_name: str | None = strawberry.field(description="ReferringPhysicianName (0008,0090).")
    institution_name: str | None = strawberry.field(description="InstitutionName (0008,0080).")
    modalities_in_study: list[str] = strawberry.field(description="The Modality of each series, once each.")
    number_of_series: int = strawberry.field(description="Series stored for this study (exact).")
    number_of_instances: int = strawberry.field(description="Instances stored for this study (exact).")
    # The UIDs of the studies listed beside this one: their series load with its own.
    level: strawberry.Private[tuple[str, ...]]

    @strawberry.field(description="URL of a small JPEG of the study (its first series' middle instance).")
    def thumbnail_url(self, info: Info[Context, None]) -> str:
        return urls.study_url(info.context.dicomweb_url, self.study_instance_uid) + "/thumbnail"

    @strawberry.field(description="The study's series, by SeriesNumber then UID.")
    def series(self, info: Info[Context, None]) -> list[Series]:
        records = info.context.loaders.series_of_study.load(self.study_instance_uid, self.level) or []
        return [Series.from_record(record) for record in records]

    @classmethod
    def from_record(cls, record: StudyRecord, level: tuple[str, ...] = ()) -> Study:
        """Build the type from the study index's record; ``level``: the UIDs listed with it."""
        return cls(
            study_instance_uid=record.study_instance_uid,
            patient_id=record.patient_id,
            patient_name=record.patient_name,
            patient_birth_date=record.patient_birth_date,
            patient_sex=record.patient_sex,
            study_date=record.study_date,
            study_time=record.study_time,
            accession_number=record.accession_number,
            study_description=record.study_description,
            referring_physician_name=record.referring_physician_name,
            institution_name=record.institution_name,
            modalities_in_study=list(record.modalities_in_study),
            number_of_series=record.number_of_series,
            number_of_instances=record.number_of_instances,
            level=level,
        )

    @classmethod
    def page_of(cls, records: list[StudyRecord]) -> list[Study]:
        """Build the studies of one page, each knowing the others (their series load together)."""
        level = tuple(record.study_instance_uid for record in records)
        return [cls.from_record(record, level) for record in records]


@strawberry.type(name="StudyPage", description="One page of studies, newest StudyDate first, then by UID.")
class StudyPage(Page[Study]):
    pass
