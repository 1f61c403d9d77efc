"""DICOM variants the tests read: each a SampleSpec and the five fields a reader must return."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from local.samples import SampleSpec


@dataclass
class Case:
    id: str
    spec: SampleSpec
    expected: dict[str, str | None]


def _expected(spec: SampleSpec) -> dict[str, str | None]:
    return {
        "PatientID": spec.patient_id or None,
        "StudyDate": spec.study_date or None,
        "Modality": spec.modality or None,
        "InstitutionName": spec.institution_name or None,
        "StudyDescription": spec.study_description or None,
    }


def _case(id: str, **fields: Any) -> Case:
    spec = SampleSpec(**fields)
    return Case(id, spec, _expected(spec))


CASES: list[Case] = [
    _case("explicit-le", transfer_syntax=ExplicitVRLittleEndian),
    _case("implicit-le", transfer_syntax=ImplicitVRLittleEndian, modality="MR"),
    _case("explicit-be", transfer_syntax=ExplicitVRBigEndian, modality="PT"),
    _case(
        "latin1", character_set="ISO_IR 100", institution_name="Klinikum Göttingen", study_description="Schädel nativ"
    ),
    _case(
        "utf8", character_set="ISO_IR 192", institution_name="Hôpital Saint-Éloi", study_description="ЭКГ покоя 心電図"
    ),
    _case("missing-fields", institution_name=None, study_description=None, modality=None),
    _case("empty-fields", institution_name="", study_description=""),
    _case("no-preamble", preamble=False),
    _case("no-preamble-implicit", preamble=False, transfer_syntax=ImplicitVRLittleEndian),
]
