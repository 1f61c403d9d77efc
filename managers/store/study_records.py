"""What the study index answers: studies, series and instances as records, and the criteria
of a study search with their text matching.

Text criteria (``TextMatch``) are case-insensitive:

- ``exact``: the whole value;
- ``prefix`` (``DOE^J*``): the whole value starts with the text;
- ``word`` (``*doe*``, what OHIF sends for typed text): a PN matches when any name component
  starts with the text, StudyDescription when any word does, an identifier (PatientID,
  AccessionNumber) when the value does.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from typing import Any, Literal

from errors import InvalidArgument
from managers.dicom.attributes import keyword_of
from managers.store.study_items import words

# The longest text a criterion may hold (a DICOM LO is 64 characters, a PN component 64).
MAX_TEXT = 64

MatchMode = Literal["exact", "prefix", "word"]


@dataclass(frozen=True)
class TextMatch:
    """A text criterion: the lower-cased text and how it matches (see the module's docstring)."""

    text: str
    mode: MatchMode = "exact"

    @classmethod
    def parse(cls, pattern: str, name: str) -> TextMatch:
        """Return the criterion a pattern asks for: ``text``, ``text*`` or ``*text*`` (``*text`` too).

        Raises
        ------
        InvalidArgument
            For an empty text, a text longer than ``MAX_TEXT``, or a ``*`` or ``?`` inside it
            (only a leading and a trailing ``*`` are supported).
        """
        word = pattern.startswith("*")
        prefix = pattern.endswith("*")
        text = pattern.strip("*")
        if not text or len(text) > MAX_TEXT or "*" in text or "?" in text:
            raise InvalidArgument(
                f"{name} must be a text of at most {MAX_TEXT} characters, optionally with a leading or trailing *"
            )
        mode: MatchMode = "word" if word else "prefix" if prefix else "exact"
        return cls(text.lower(), mode)

    def matches(self, value: str | None, kind: Literal["pn", "id", "text"]) -> bool:
        """Tell whether ``value`` (of a PN, an identifier or a description) matches."""
        if not value:
            return False
        lowered = value.lower()
        if self.mode == "exact":
            return lowered == self.text
        if self.mode == "prefix" or kind == "id":
            return lowered.startswith(self.text)
        return any(word.startswith(self.text) for word in words(lowered, kind))


@dataclass(frozen=True)
class StudyCriteria:
    """What a study search asks for; every criterion given must match. Dates are ``YYYYMMDD``."""

    patient_id: TextMatch | None = None
    patient_name: TextMatch | None = None
    accession_number: TextMatch | None = None
    study_description: TextMatch | None = None
    # Matches a study with any series of this modality (exact, case-insensitive).
    modality: str | None = None
    study_date_from: str | None = None
    study_date_to: str | None = None
    study_instance_uid: str | None = None


# A record field's DICOM keyword when its name does not spell it (``keyword_of``); ``None``:
# the field is no attribute (where the file is, what the record holds besides).
KEYWORD = "keyword"


def keywords_of(record: Any) -> dict[str, Any]:
    """Return a record's attribute fields by DICOM keyword, leaving out absent and empty values."""
    values: dict[str, Any] = {}
    record_type: type = type(record)
    for name, keyword in _keyword_fields(record_type):
        value = getattr(record, name)
        if value is not None and value != []:
            values[keyword] = value
    return values


@functools.cache  # one entry per record type
def _keyword_fields(record_type: type) -> tuple[tuple[str, str], ...]:
    """A record type's attribute fields as (field name, DICOM keyword) pairs."""
    pairs = ((item.name, item.metadata.get(KEYWORD, keyword_of(item.name))) for item in dataclasses.fields(record_type))
    return tuple((name, keyword) for name, keyword in pairs if keyword is not None)


@dataclass(frozen=True)
class StudyRecord:
    """One study as its instances describe it; counts are exact."""

    study_instance_uid: str
    patient_id: str | None = None
    patient_name: str | None = None
    patient_birth_date: str | None = None
    patient_sex: str | None = None
    study_date: str | None = None
    study_time: str | None = None
    accession_number: str | None = None
    study_description: str | None = None
    referring_physician_name: str | None = None
    institution_name: str | None = None
    study_id: str | None = None
    modalities_in_study: list[str] = field(default_factory=list)
    number_of_series: int = field(default=0, metadata={KEYWORD: "NumberOfStudyRelatedSeries"})
    number_of_instances: int = field(default=0, metadata={KEYWORD: "NumberOfStudyRelatedInstances"})

    def keywords(self) -> dict[str, Any]:
        """Return the study's values by DICOM keyword (absent values left out)."""
        return keywords_of(self)


@dataclass(frozen=True)
class SeriesRecord:
    """One series of a study; ``number_of_instances`` is exact."""

    study_instance_uid: str
    series_instance_uid: str
    modality: str | None = None
    series_number: int | None = None
    series_description: str | None = None
    body_part_examined: str | None = None
    series_date: str | None = None
    number_of_instances: int = field(default=0, metadata={KEYWORD: "NumberOfSeriesRelatedInstances"})

    def keywords(self) -> dict[str, Any]:
        """Return the series' values by DICOM keyword (absent values left out)."""
        return keywords_of(self)


@dataclass(frozen=True)
class InstanceRecord:
    """One instance (one DICOM file): where it is and what its record holds.

    ``attributes``: every header attribute the record keeps, by DICOM keyword (IS and US as
    ``int``), for ``includefield``; ``fields``: the five fields the record answers.
    """

    s3_path: str = field(metadata={KEYWORD: None})
    study_instance_uid: str
    series_instance_uid: str
    sop_instance_uid: str
    sop_class_uid: str | None = None
    instance_number: int | None = None
    rows: int | None = None
    columns: int | None = None
    number_of_frames: int | None = None
    # The version of the file the record was indexed from (its S3 ETag).
    etag: str | None = field(default=None, metadata={KEYWORD: None})
    attributes: dict[str, Any] = field(default_factory=dict, metadata={KEYWORD: None})
    fields: dict[str, str | None] = field(default_factory=dict, metadata={KEYWORD: None})

    def keywords(self) -> dict[str, Any]:
        """Return the instance's values by DICOM keyword (absent values left out)."""
        return {**self.attributes, **keywords_of(self)}


# A page position, as cursors carry it (opaque to callers).
Position = dict[str, str]
