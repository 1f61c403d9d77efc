"""dicomJson (PS3.18 Annex F) against pydicom's own to_json_dict, and dicomFiles listing."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from pydicom import dcmread

from local.samples import SampleSpec, build_file, pydicom_test_file
from managers.DicomManager import BULK_DATA_THRESHOLD

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
    assert model == pydicom_model(data)
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
