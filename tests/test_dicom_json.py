"""dicomJson (PS3.18 Annex F) against pydicom's own to_json_dict, and dicomFiles listing.

tests/managers/dicom/test_json_model_dcmtk.py holds it to dcmtk's dcm2json, the reference.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from pydicom import dcmread

from errors import UpstreamUnavailable
from local.samples import SampleSpec, build_file, bundled_file, pydicom_test_file
from managers.dicom.header import DEFER_SIZE, read_header
from managers.dicom.json_model import BULK_DATA_THRESHOLD, json_model, tag_of

BUCKET = "data-apps-ex"


def gql(client: FlaskClient, query: str, **variables: Any) -> dict[str, Any]:
    answer: dict[str, Any] | None = client.post("/graphql", json={"query": query, "variables": variables}).json
    assert answer is not None
    return answer


JSON_LIVE = "query($p: String!, $k: [String!]) { dicomMetadata(s3Path: $p) { dicomJson(keywords: $k) } }"


def pydicom_model(data: bytes) -> dict[str, Any]:
    """What pydicom itself says, bulk data left out as ours leaves it out."""
    model = dcmread(io.BytesIO(data), stop_before_pixels=True).to_json_dict(
        bulk_data_threshold=BULK_DATA_THRESHOLD, bulk_data_element_handler=lambda _: ""
    )
    return strip_bulk(model)


def strip_bulk(model: dict[str, Any]) -> dict[str, Any]:
    return {
        tag: (
            {**element, "Value": [strip_bulk(item) for item in element["Value"]]}
            if element["vr"] == "SQ" and "Value" in element
            else element
        )
        for tag, element in model.items()
        if "BulkDataURI" not in element
    }


@pytest.mark.parametrize(
    "name",
    [
        "CT_small.dcm",
        "MR_small.dcm",
        "rtplan.dcm",
        "MR_small_bigendian.dcm",
        "MR_small_implicit.dcm",
        "waveform_ecg.dcm",
    ],
)
def test_whole_header_matches_pydicom(client: FlaskClient, put_object: Callable[[str, bytes], str], name: str) -> None:
    data = pydicom_test_file(name).read_bytes()
    s3_path = put_object(f"dicom/json/{name}", data)
    result = gql(client, JSON_LIVE, p=s3_path)
    assert "errors" not in result
    model = result["data"]["dicomMetadata"]["dicomJson"]
    expected = pydicom_model(data)
    if name in {"CT_small.dcm", "waveform_ecg.dcm"}:
        # dcm2json proves pydicom wrong on these ISO_IR 100 files: once decoded, the JSON text
        # is UTF-8, so the model says ISO_IR 192 (tests/managers/dicom/test_json_model_dcmtk.py checks it all).
        expected["00080005"] = {"vr": "CS", "Value": ["ISO_IR 192"]}
    assert model == expected
    assert "7FE00010" not in model  # pixel data is never in it


def test_selected_keywords_and_tags(client: FlaskClient, put_dicom: Callable[..., str]) -> None:
    s3_path = put_dicom(
        series_description="AXIAL 2MM", rows=32, patient_name="Müller^Jürgen", character_set="ISO_IR 100"
    )
    model = gql(client, JSON_LIVE, p=s3_path, k=["SeriesDescription", "Rows", "00100010"])["data"]["dicomMetadata"][
        "dicomJson"
    ]
    assert model == {
        "00100010": {"vr": "PN", "Value": [{"Alphabetic": "Müller^Jürgen"}]},
        "00280010": {"vr": "US", "Value": [32]},
        "0008103E": {"vr": "LO", "Value": ["AXIAL 2MM"]},
    }


def test_unknown_keyword_is_invalid_argument(client: FlaskClient, put_dicom: Callable[..., str]) -> None:
    result = gql(client, JSON_LIVE, p=put_dicom(), k=["Rows", "NoSuchKeyword"])
    assert [e["extensions"]["code"] for e in result["errors"]] == ["INVALID_ARGUMENT"]
    assert "NoSuchKeyword" in result["errors"][0]["message"]


def test_large_binary_values_are_left_out(client: FlaskClient, put_object: Callable[[str, bytes], str]) -> None:
    spec = SampleSpec()
    data = build_file(spec)
    ds = dcmread(io.BytesIO(data))
    ds.add_new(0x00291010, "OB", b"\x01" * (BULK_DATA_THRESHOLD * 4))  # a large private blob
    ds.add_new(0x00291011, "OB", b"\x02" * 16)  # a small one stays inline
    buffer = io.BytesIO()
    ds.save_as(buffer)
    s3_path = put_object("dicom/json/blob.dcm", buffer.getvalue())
    model = gql(client, JSON_LIVE, p=s3_path)["data"]["dicomMetadata"]["dicomJson"]
    assert "00291010" not in model
    assert model["00291011"]["InlineBinary"] == "AgICAgICAgICAgICAgICAg=="


def test_dicom_json_on_stored_records(client: FlaskClient, put_dicom: Callable[..., str]) -> None:
    s3_path = put_dicom(series_description="STORED SERIES")
    from tests.test_end_to_end import eventually

    live = client.get("/dicom-metadata", query_string={"s3_path": s3_path}).json
    assert client.post("/upload-json-to-s3", json=live).status_code == 201
    query = 'query($p: String!) { storedMetadata(s3Path: $p) { dicomJson(keywords: ["SeriesDescription"]) } }'
    stored = eventually(lambda: gql(client, query, p=s3_path)["data"]["storedMetadata"])
    assert stored == {"dicomJson": {"0008103E": {"vr": "LO", "Value": ["STORED SERIES"]}}}


FILES = (
    "query($prefix: String, $first: Int, $after: String) { dicomFiles(prefix: $prefix, first: $first, after: $after)"
    " { items { s3Path size lastModified } nextCursor } }"
)


def test_dicom_files_pages_through_a_prefix(client: FlaskClient, put_object: Callable[[str, bytes], str]) -> None:
    paths = sorted(put_object(f"dicom/listing/f{n:02d}.dcm", b"x" * (n + 1)) for n in range(12))
    seen: list[dict[str, Any]] = []
    after = None
    while True:
        result = gql(client, FILES, prefix="dicom/listing/", first=5, after=after)
        assert "errors" not in result, result
        page = result["data"]["dicomFiles"]
        seen += page["items"]
        after = page["nextCursor"]
        if after is None:
            break
    assert [item["s3Path"] for item in seen] == paths
    assert [item["size"] for item in seen] == list(range(1, 13))
    assert seen[0]["lastModified"].startswith("20")


def test_dicom_files_cursor_rules(client: FlaskClient) -> None:
    first = gql(client, FILES, prefix="dicom/", first=1)["data"]["dicomFiles"]
    assert first["nextCursor"]
    other = gql(client, FILES, prefix="json/", first=1, after=first["nextCursor"])
    assert [e["extensions"]["code"] for e in other["errors"]] == ["INVALID_CURSOR"]
    too_many = gql(client, FILES, first=1001)
    assert [e["extensions"]["code"] for e in too_many["errors"]] == ["INVALID_ARGUMENT"]


def test_empty_values_and_person_names_as_dcm2json_writes_them(
    client: FlaskClient, put_object: Callable[[str, bytes], str]
) -> None:
    ds = dcmread(io.BytesIO(build_file(SampleSpec(character_set="ISO_IR 192", patient_name="OB^^^^"))))
    ds.ReferringPhysicianName = "^^^^"  # separators only: no value at all
    ds.OtherPatientNames = ["Doe^John^^^", "", " Yamada ^Tarou= 山田^太郎 =やまだ^たろう^"]
    ds.ImageType = ["ORIGINAL", "", "AXIAL"]  # an empty value among others is null (F.2.5)
    ds.ImagePositionPatient = ["1.5", "", "-2"]
    ds.add_new(0x00281050, "DS", "\\")  # WindowCenter holding only empty values: no value
    ds.ReferencedImageSequence = []  # an empty sequence has no value either
    ds.add_new(0x00100000, "UL", 0)  # a group length: retired, left out
    ds.add_new(0x00189087, "FD", float("nan"))  # DiffusionBValue: JSON has no NaN, left out
    buffer = io.BytesIO()
    ds.save_as(buffer)
    model = gql(client, JSON_LIVE, p=put_object("dicom/json/empties.dcm", buffer.getvalue()))["data"]["dicomMetadata"][
        "dicomJson"
    ]
    assert model["00100010"] == {"vr": "PN", "Value": [{"Alphabetic": "OB"}]}
    assert model["00080090"] == {"vr": "PN"}
    assert model["00101001"] == {
        "vr": "PN",
        "Value": [
            {"Alphabetic": "Doe^John"},
            None,
            {"Alphabetic": "Yamada^Tarou", "Ideographic": "山田^太郎", "Phonetic": "やまだ^たろう"},
        ],
    }
    assert model["00080008"] == {"vr": "CS", "Value": ["ORIGINAL", None, "AXIAL"]}
    assert model["00200032"] == {"vr": "DS", "Value": [1.5, None, -2.0]}
    assert model["00281050"] == {"vr": "DS"}
    assert model["00081140"] == {"vr": "SQ"}
    assert "00100000" not in model and "00189087" not in model
    assert model["00080005"] == {"vr": "CS", "Value": ["ISO_IR 192"]}
    assert model["00100020"] == {"vr": "LO", "Value": ["PAT-0001"]}


def test_one_malformed_element_does_not_cost_the_header(
    client: FlaskClient, put_object: Callable[[str, bytes], str], caplog: pytest.LogCaptureFixture
) -> None:
    # badVR.dcm's NumberOfFrames (IS) holds "1A": left out, the rest served (dcm2json serves the rest too).
    caplog.set_level(logging.DEBUG)
    name, data = bundled_file("badVR.dcm")
    result = gql(client, JSON_LIVE, p=put_object(f"dicom/json/{name}", data))
    assert "errors" not in result
    model = result["data"]["dicomMetadata"]["dicomJson"]
    assert "00280008" not in model
    assert model["00280010"] == {"vr": "US", "Value": [10]}
    assert model["00100010"] == {"vr": "PN", "Value": [{"Alphabetic": "Lastname^Firstname"}]}
    assert model["3004000C"]["Value"][:3] == [0.0, 5.0, 10.0]
    assert len(model) == 43  # dcm2json's 45 less NumberOfFrames and the pixel data (never read)
    # The bad value is file content: no log line may quote it.
    assert "'1A'" not in caplog.text


class FailingAfterParse(io.BytesIO):
    """A stream that fails as S3 would once the header is parsed (a fault injected on purpose)."""

    failing = False

    def read(self, size: int | None = -1) -> bytes:
        if self.failing:
            raise UpstreamUnavailable("S3 timed out")
        return super().read(size)


def test_an_upstream_failure_is_not_taken_for_a_malformed_element() -> None:
    # A value longer than DEFER_SIZE is read when converted; S3 failing then must surface
    # (UPSTREAM_UNAVAILABLE), not yield a header silently missing that element.
    ds = dcmread(io.BytesIO(build_file(SampleSpec())))
    ds.TableOfParameterValues = [0.5] * (DEFER_SIZE // 2)  # FL: numbers, not bulk, but deferred
    buffer = io.BytesIO()
    ds.save_as(buffer)
    stream = FailingAfterParse(buffer.getvalue())
    header = read_header(stream)
    assert json_model(header, [tag_of("PatientID")]) == {"00100020": {"vr": "LO", "Value": ["PAT-0001"]}}
    stream.failing = True
    with pytest.raises(UpstreamUnavailable):
        json_model(header)
