"""Resolvers of the study view: criteria checked and normalized for GraphQL and DICOMweb alike."""

from __future__ import annotations

from errors import InvalidArgument
from managers.studies import UID_PATTERN, StudyCriteria, TextMatch
from metadata import normalize_date


def checked_uid(value: str, name: str) -> str:
    """Return ``value`` when it is a DICOM UID (digits and dots, at most 64), else raise ``InvalidArgument``."""
    if len(value) > 64 or not UID_PATTERN.fullmatch(value):
        raise InvalidArgument(f"{name} must be a DICOM UID: digits and dots, at most 64 characters")
    return value


def study_criteria(
    *,
    patient_id: str | None = None,
    patient_name: str | None = None,
    accession_number: str | None = None,
    study_description: str | None = None,
    modality: str | None = None,
    study_date_from: str | None = None,
    study_date_to: str | None = None,
    study_instance_uid: str | None = None,
) -> StudyCriteria:
    """Return checked study criteria; empty strings count as not given.

    Raises
    ------
    InvalidArgument
        For a malformed date or UID, a date range whose start is after its end, or a text
        pattern ``TextMatch.parse`` refuses.
    """
    low = normalize_date(study_date_from, "studyDateFrom") if study_date_from else None
    high = normalize_date(study_date_to, "studyDateTo") if study_date_to else None
    if low and high and low > high:
        raise InvalidArgument("studyDateFrom is after studyDateTo")
    if modality and (len(modality) > 16 or "*" in modality or "?" in modality):
        raise InvalidArgument("modality must be a DICOM modality code such as CT, at most 16 characters")
    return StudyCriteria(
        patient_id=TextMatch.parse(patient_id, "patientId") if patient_id else None,
        patient_name=TextMatch.parse(patient_name, "patientName") if patient_name else None,
        accession_number=TextMatch.parse(accession_number, "accessionNumber") if accession_number else None,
        study_description=TextMatch.parse(study_description, "studyDescription") if study_description else None,
        modality=modality.upper() if modality else None,
        study_date_from=low,
        study_date_to=high,
        study_instance_uid=checked_uid(study_instance_uid, "studyInstanceUid") if study_instance_uid else None,
    )
