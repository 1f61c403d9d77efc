"""The DICOM attributes the service keeps and answers, level by level: the one list of each.

Adding an attribute to what a record keeps is one edit here (and a field of the record type
that answers it); every reader and writer takes its list from this module. Pure data, no
pydicom: the store and both Lambda packages import it.
"""

from __future__ import annotations

import functools
import re

# UIDs key indexes (DynamoDB refuses a key over 1,024 or 2,048 bytes): one that is not a valid
# UID is not kept, and its file belongs to no study.
UID_ATTRIBUTES: tuple[str, ...] = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID")

# A study's values besides the five fields' four (PatientID, StudyDate, InstitutionName,
# StudyDescription): copied onto the study item from its instances.
STUDY_FIELDS: tuple[str, ...] = ("PatientID", "StudyDate", "InstitutionName", "StudyDescription")
STUDY_TEXTS: tuple[str, ...] = (
    "PatientName",
    "PatientBirthDate",
    "PatientSex",
    "StudyTime",
    "AccessionNumber",
    "ReferringPhysicianName",
    "StudyID",
)
# A series' text values, copied onto the series item (SeriesNumber and Modality beside them).
SERIES_TEXTS: tuple[str, ...] = ("SeriesDescription", "BodyPartExamined", "SeriesDate")

# What an instance's record keeps from its header besides the five fields (docs/indexing.md):
# texts (a PN as its string form) and IS/US values stored as numbers when they hold one integer.
TEXT_ATTRIBUTES: tuple[str, ...] = (*UID_ATTRIBUTES, *STUDY_TEXTS, *SERIES_TEXTS)
NUMBER_ATTRIBUTES: tuple[str, ...] = ("SeriesNumber", "InstanceNumber", "Rows", "Columns", "NumberOfFrames")

# What QIDO-RS answers at each level whatever includefield says (docs/API.md, "DICOMweb").
STUDY_ANSWER: tuple[str, ...] = (
    "StudyInstanceUID",
    "StudyDate",
    "StudyTime",
    "AccessionNumber",
    "ModalitiesInStudy",
    "ReferringPhysicianName",
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyID",
    "StudyDescription",
    "NumberOfStudyRelatedSeries",
    "NumberOfStudyRelatedInstances",
)
SERIES_ANSWER: tuple[str, ...] = (
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "Modality",
    "SeriesNumber",
    "SeriesDescription",
    "BodyPartExamined",
    "NumberOfSeriesRelatedInstances",
)
INSTANCE_ANSWER: tuple[str, ...] = (
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "SOPInstanceUID",
    "SOPClassUID",
    "InstanceNumber",
    "Rows",
    "Columns",
    "NumberOfFrames",
)

# The QIDO-RS query keys of each level; a search takes its own level's and those above
# (PS3.18 10.6.1.2.1).
STUDY_KEYS: tuple[str, ...] = (
    "StudyInstanceUID",
    "PatientID",
    "PatientName",
    "StudyDate",
    "AccessionNumber",
    "StudyDescription",
    "ModalitiesInStudy",
)
SERIES_KEYS: tuple[str, ...] = ("SeriesInstanceUID", "Modality", "SeriesDate")
INSTANCE_KEYS: tuple[str, ...] = ("SOPInstanceUID",)

# Words a record type's field names are made of that DICOM keywords spell in capitals.
_CAPITALS = {"uid": "UID", "id": "ID", "sop": "SOP"}


@functools.lru_cache(maxsize=512)  # record types' field names: a few dozen, asked per item of a page
def keyword_of(field_name: str) -> str:
    """Return the DICOM keyword a snake_case field name spells: ``sop_class_uid`` → ``SOPClassUID``."""
    return "".join(_CAPITALS.get(word, word.capitalize()) for word in field_name.split("_"))


def field_name_of(keyword: str) -> str:
    """Return the snake_case field name of a DICOM keyword: ``SOPClassUID`` → ``sop_class_uid``."""
    words = re.findall(r"SOP|UID|ID|[A-Z][a-z]*", keyword)
    return "_".join(word.lower() for word in words)
