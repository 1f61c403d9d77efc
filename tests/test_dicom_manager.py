"""DicomManager on real files written with pydicom, read from the embedded AWS's S3."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread
from pydicom.data import get_charset_files

from errors import NotDicom, NotFound
from local.samples import build_file, pydicom_test_file
from managers.bundle import Managers
from managers.dicom.header import fields_of
from tests.dicom_cases import CASES, Case


@pytest.fixture(scope="module")
def managers(app: Any) -> Managers:
    return app.extensions["dicom_meta.managers"]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_extracts_the_five_fields(case: Case, managers: Managers, put_object: Callable[[str, bytes], str]) -> None:
    # GIVEN a DICOM file written by pydicom in this variant
    s3_path = put_object(f"dicom/{case.spec.file_name}", build_file(case.spec))
    # WHEN its metadata is extracted THEN the values are exactly the file's
    assert managers.dicom.extract_metadata(s3_path) == case.expected


def test_pydicom_bundled_file(managers: Managers, put_object: Callable[[str, bytes], str]) -> None:
    data = pydicom_test_file("CT_small.dcm").read_bytes()
    s3_path = put_object("dicom/ct small.dcm", data)
    assert managers.dicom.extract_metadata(s3_path) == {
        "PatientID": "1CT1",
        "StudyDate": "20040119",
        "Modality": "CT",
        "InstitutionName": "JFK IMAGING CENTER",
        "StudyDescription": "e+1",
    }


@pytest.mark.parametrize("path", sorted(get_charset_files("*.dcm")), ids=lambda p: Path(p).name)
def test_pydicom_charset_files_match_pydicom(
    path: str, managers: Managers, put_object: Callable[[str, bytes], str]
) -> None:
    # pydicom's character-set corpus (ISO 2022 escapes, Arabic, Hebrew, Greek, multi-byte Asian).
    s3_path = put_object(f"dicom/{Path(path).name}", Path(path).read_bytes())
    assert managers.dicom.extract_metadata(s3_path) == fields_of(dcmread(path))


@pytest.mark.parametrize(
    "body",
    [
        b"hello, this is plain text and not a DICOM file at all\n" * 4,
        b"",
        b"DICM",
        b"\x00" * 200,
        b'{"PatientID": "x"}',
        bytes(range(256)) * 4,
    ],
    ids=["text", "empty", "short", "zeros", "json", "binary"],
)
def test_not_dicom(body: bytes, managers: Managers, put_object: Callable[[str, bytes], str]) -> None:
    s3_path = put_object("dicom/not-dicom.dcm", body)
    with pytest.raises(NotDicom):
        managers.dicom.extract_metadata(s3_path)


def test_missing_object(managers: Managers) -> None:
    with pytest.raises(NotFound):
        managers.dicom.extract_metadata("s3://data-apps-ex/dicom/absent.dcm")
