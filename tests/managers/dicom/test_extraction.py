"""Header-only extraction: GETs counted at the S3 client, values equal to the naive reader's."""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRBigEndian, ImplicitVRLittleEndian

from errors import DicomMetaError
from local.samples import SampleSpec, build_dataset, build_file, encode_file, pixel_length, pydicom_test_file
from managers.bundle import Managers
from managers.dicom.header import fields_of, read_header
from managers.dicom.ranged import FIRST_REQUEST
from managers.DicomManager import DicomManager

Outcome = dict[str, Any] | str  # the five fields, or an error code


class GetCounter:
    """Counts the GetObject calls of an S3 client and the body bytes they answered with."""

    def __init__(self) -> None:
        self.lengths: list[int] = []

    def __call__(self, parsed: dict[str, Any], **kwargs: Any) -> None:
        self.lengths.append(int(parsed.get("ContentLength", 0)))

    @property
    def gets(self) -> int:
        return len(self.lengths)


@pytest.fixture
def managers(app: Flask) -> Managers:
    return app.extensions["dicom_meta.managers"]


@pytest.fixture
def gets(managers: Managers) -> Iterator[GetCounter]:
    """Count the GETs the app's own S3 client makes during the test."""
    counter = GetCounter()
    events = managers.s3.client.meta.events
    events.register("after-call.s3.GetObject", counter, unique_id="test-get-counter")
    try:
        yield counter
    finally:
        events.unregister("after-call.s3.GetObject", unique_id="test-get-counter")


def outcome(extract: Callable[[], dict[str, Any]]) -> Outcome:
    try:
        return extract()
    except DicomMetaError as exc:
        return exc.code


def naive(managers: Managers, s3_path: str) -> Outcome:
    """The naive reader: the whole object in memory, then the same header parse."""
    return outcome(lambda: fields_of(read_header(io.BytesIO(managers.s3.read_object(s3_path)))))


def test_a_large_file_costs_one_get(client: FlaskClient, put_dicom: Callable[..., str], gets: GetCounter) -> None:
    s3_path = put_dicom(pixel_bytes=20_000_000, patient_id="BIG-1")
    response = client.get("/dicom-metadata", query_string={"s3_path": s3_path})
    assert response.status_code == 200
    assert response.json and response.json["PatientID"] == "BIG-1"
    assert gets.gets == 1
    assert gets.lengths[0] <= FIRST_REQUEST


def header_with(spec: SampleSpec, **elements: Any) -> bytes:
    """Return the file of ``spec`` with extra elements (keyword or tag number → value)."""
    ds = build_dataset(spec)
    for name, value in elements.items():
        setattr(ds, name, value)
    return encode_file(ds, spec)


def private_blob_file(size: int) -> bytes:
    """A file whose header holds a ``size``-byte private value before PatientID (0010,0020)."""
    ds = build_dataset(SampleSpec(patient_id="BLOB-1"))
    ds.add_new(0x00091010, "OB", os.urandom(size))
    ds.add_new(0x00090010, "LO", "ACME PRIVATE")
    return encode_file(ds, SampleSpec())


def long_header_file(items: int) -> bytes:
    """A file whose header is long because of many small values (a long sequence) before PatientID."""
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = "123", "99X", "a code meaning" * 4
    ds = build_dataset(SampleSpec(patient_id="LONG-1", pixel_bytes=2_000_000))
    ds.ProcedureCodeSequence = Sequence([item] * items)  # (0008,1032): before the patient module
    # Undefined length, as many writers encode sequences: pydicom must walk it, not skip it.
    ds["ProcedureCodeSequence"].is_undefined_length = True
    return encode_file(ds, SampleSpec())


def test_a_large_value_before_the_fields_is_skipped_not_fetched(
    managers: Managers, put_object: Callable[[str, bytes], str], gets: GetCounter
) -> None:
    s3_path = put_object("dicom/private-blob.dcm", private_blob_file(3_000_000))
    assert managers.dicom.extract_metadata(s3_path)["PatientID"] == "BLOB-1"
    assert gets.gets == 2  # the first 64 KiB, then the header after the blob
    assert sum(gets.lengths) < 3 * FIRST_REQUEST


def test_a_long_header_doubles_its_requests(
    managers: Managers, put_object: Callable[[str, bytes], str], gets: GetCounter
) -> None:
    data = long_header_file(3000)
    header = len(data) - pixel_length(SampleSpec(pixel_bytes=2_000_000))
    assert 3 * FIRST_REQUEST < header < 7 * FIRST_REQUEST
    s3_path = put_object("dicom/long-header.dcm", data)
    assert managers.dicom.extract_metadata(s3_path) == naive(managers, s3_path)
    gets.lengths.pop()  # the naive read
    assert gets.lengths == [FIRST_REQUEST, 2 * FIRST_REQUEST, 4 * FIRST_REQUEST]


def test_a_deflated_file_is_inflated_only_up_to_its_header(
    managers: Managers, put_object: Callable[[str, bytes], str], gets: GetCounter
) -> None:
    spec = SampleSpec(transfer_syntax=DeflatedExplicitVRLittleEndian, patient_id="DFL-1")
    data = encode_file(build_dataset(spec, pixel_data=os.urandom(300_000)), spec)  # noise does not deflate
    s3_path = put_object("dicom/deflated.dcm", data)
    assert managers.dicom.extract_metadata(s3_path)["PatientID"] == "DFL-1"
    # The header is inflated on demand and ends inside the first request: the noise is never fetched.
    assert gets.lengths == [FIRST_REQUEST]


def test_errors_map_as_before(managers: Managers, put_object: Callable[[str, bytes], str]) -> None:
    assert outcome(lambda: managers.dicom.extract_metadata("s3://data-apps-ex/dicom/absent.dcm")) == "NOT_FOUND"
    empty = put_object("dicom/empty.dcm", b"")
    assert outcome(lambda: managers.dicom.extract_metadata(empty)) == "NOT_DICOM"
    text = put_object("dicom/text.dcm", b"Just a note, not an image.\n" * 10)
    assert outcome(lambda: managers.dicom.extract_metadata(text)) == "NOT_DICOM"


def test_an_unreachable_s3_is_upstream_unavailable() -> None:
    dead = Managers.create(endpoint_url="http://127.0.0.1:9")  # the discard port: nothing listens
    assert outcome(lambda: dead.dicom.extract_metadata("s3://data-apps-ex/dicom/a.dcm")) == "UPSTREAM_UNAVAILABLE"


GENERATED: dict[str, Callable[[], bytes]] = {
    "explicit-little": lambda: build_file(SampleSpec()),
    "implicit-little": lambda: build_file(SampleSpec(transfer_syntax=ImplicitVRLittleEndian)),
    "explicit-big": lambda: build_file(SampleSpec(transfer_syntax=ExplicitVRBigEndian)),
    "deflated": lambda: build_file(SampleSpec(transfer_syntax=DeflatedExplicitVRLittleEndian)),
    "latin-1": lambda: build_file(
        SampleSpec(
            character_set="ISO_IR 100",
            institution_name="Klinikum Müller",
            study_description="Übersicht Thorax",
            patient_name="Müller^Jürgen",
        )
    ),
    "utf-8": lambda: build_file(
        SampleSpec(
            character_set="ISO_IR 192", institution_name="東京病院", study_description="Ελληνικά ÆØÅ", patient_id="ИД-7"
        )
    ),
    "cyrillic": lambda: build_file(SampleSpec(character_set="ISO_IR 144", institution_name="Больница №1")),
    "missing-fields": lambda: build_file(SampleSpec(patient_id=None, study_date=None, institution_name=None)),
    "empty-fields": lambda: build_file(SampleSpec(modality="", study_description="")),
    "multi-valued": lambda: build_file(SampleSpec(patient_id="A1\\B2")),
    "no-preamble-explicit": lambda: build_file(SampleSpec(preamble=False)),
    "no-preamble-implicit": lambda: build_file(SampleSpec(preamble=False, transfer_syntax=ImplicitVRLittleEndian)),
    "no-preamble-big": lambda: build_file(SampleSpec(preamble=False, transfer_syntax=ExplicitVRBigEndian)),
    "large-pixels": lambda: build_file(SampleSpec(pixel_bytes=2_000_000)),
    "long-description": lambda: header_with(SampleSpec(), StudyDescription="x" * 9000),
    "private-blob": lambda: private_blob_file(200_000),
    "long-header": lambda: long_header_file(1500),
    "truncated": lambda: build_file(SampleSpec())[:500],  # ends inside InstitutionName
}

_PYDICOM_DATA = pydicom_test_file("CT_small.dcm").parent.parent
BUNDLED = sorted(
    path for folder in ("test_files", "charset_files") for path in (_PYDICOM_DATA / folder).rglob("*") if path.is_file()
)


def check_against_naive(managers: Managers, s3_path: str) -> None:
    """Assert that ranged extraction answers what the naive reader answers, also in tiny requests."""
    expected = naive(managers, s3_path)
    assert outcome(lambda: managers.dicom.extract_metadata(s3_path)) == expected
    # 256-byte first requests make almost every file take several GETs, gaps and seeks back.
    tiny = DicomManager(managers.s3, first_request=256)
    assert outcome(lambda: tiny.extract_metadata(s3_path)) == expected


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_generated_files_read_as_naive(name: str, managers: Managers, put_object: Callable[[str, bytes], str]) -> None:
    check_against_naive(managers, put_object(f"dicom/corpus/{name}.dcm", GENERATED[name]()))


def test_generated_values_are_the_files(managers: Managers, put_object: Callable[[str, bytes], str]) -> None:
    s3_path = put_object("dicom/corpus/utf-8.dcm", GENERATED["utf-8"]())
    fields = managers.dicom.extract_metadata(s3_path)
    assert (fields["InstitutionName"], fields["PatientID"]) == ("東京病院", "ИД-7")


@pytest.mark.parametrize("path", BUNDLED, ids=lambda path: str(path.relative_to(_PYDICOM_DATA)))
def test_pydicom_bundled_files_read_as_naive(
    path: Path, managers: Managers, put_object: Callable[[str, bytes], str]
) -> None:
    s3_path = put_object(f"dicom/bundled/{path.name}", path.read_bytes())
    try:
        naive(managers, s3_path)
    except Exception as exc:  # noqa: BLE001 - a file the naive reader cannot handle proves nothing
        pytest.skip(f"the naive reader fails on it: {type(exc).__name__}")
    check_against_naive(managers, s3_path)
