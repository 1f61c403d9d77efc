"""The GraphQL schema: names of docs/API.md, operations, and error codes in extensions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient

from schema import schema
from schema.types import Context

BUCKET = "data-apps-ex"
METADATA_FIELDS = "s3Path patientId studyDate modality institutionName studyDescription"


def gql(client: FlaskClient, query: str, **variables: Any) -> dict[str, Any]:
    response = client.post("/graphql", json={"query": query, "variables": variables})
    assert response.status_code == 200
    assert response.headers["X-Request-ID"]
    assert response.json is not None
    answer: dict[str, Any] = response.json
    return answer


def error_codes(result: dict[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in result.get("errors", [])]


LIVE = f"query($p: String!) {{ dicomMetadata(s3Path: $p) {{ {METADATA_FIELDS} }} }}"
STORED = f"query($p: String!) {{ storedMetadata(s3Path: $p) {{ {METADATA_FIELDS} }} }}"
UPLOAD = "mutation($payload: JSON!) { uploadJson(payload: $payload) { s3Path } }"


def test_schema_has_the_contract_names() -> None:
    sdl = schema.as_str()
    for line in (
        "dicomMetadata(s3Path: String!): DicomMetadata!",
        "storedMetadata(s3Path: String!): DicomMetadata",
        "uploadJson(payload: JSON!): UploadResult!",
        "s3Path: String!",
        "patientId: String",
        "studyDate: String",
        "modality: String",
        "institutionName: String",
        "studyDescription: String",
    ):
        assert line in sdl


def test_dicom_metadata(client: FlaskClient, put_dicom: Callable[..., str]) -> None:
    s3_path = put_dicom(
        patient_id="G-1", modality="MR", study_date="20220505", institution_name="Lab", study_description="KNEE"
    )
    result = gql(client, LIVE, p=s3_path)
    assert "errors" not in result
    assert result["data"]["dicomMetadata"] == {
        "s3Path": s3_path,
        "patientId": "G-1",
        "studyDate": "20220505",
        "modality": "MR",
        "institutionName": "Lab",
        "studyDescription": "KNEE",
    }


def test_stored_metadata_is_null_without_a_record(client: FlaskClient, put_dicom: Callable[..., str]) -> None:
    result = gql(client, STORED, p=put_dicom("unindexed/no-record.dcm"))  # outside dicom/: not indexed
    assert result == {"data": {"storedMetadata": None}}


def test_execute_sync_with_a_context(app: Any, put_dicom: Callable[..., str]) -> None:
    s3_path = put_dicom(patient_id="SYNC")
    context = Context(
        managers=app.extensions["dicom_meta.managers"], cursors=app.extensions["dicom_meta.cursors"], request_id="t"
    )
    result = schema.execute_sync(LIVE, variable_values={"p": s3_path}, context_value=context)
    assert not result.errors and result.data
    assert result.data["dicomMetadata"]["patientId"] == "SYNC"


@pytest.mark.parametrize("query", [LIVE, STORED])
@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("", "MISSING_PARAMETER"),
        ("dicom/a.dcm", "INVALID_S3_PATH"),
        ("s3://elsewhere/dicom/a.dcm", "FORBIDDEN_BUCKET"),
    ],
)
def test_path_errors(client: FlaskClient, query: str, path: str, code: str) -> None:
    result = gql(client, query, p=path)
    assert error_codes(result) == [code]
    assert result["errors"][0]["extensions"]["request_id"]


def test_live_errors(client: FlaskClient, put_object: Callable[[str, bytes], str]) -> None:
    assert error_codes(gql(client, LIVE, p=f"s3://{BUCKET}/dicom/absent.dcm")) == ["NOT_FOUND"]
    text = put_object("dicom/text.dcm", b"plain text, not DICOM " * 10)
    result = gql(client, LIVE, p=text)
    assert error_codes(result) == ["NOT_DICOM"]
    assert result["data"] is None


def test_upload_json(client: FlaskClient) -> None:
    payload = {"s3_path": f"s3://{BUCKET}/dicom/sub/anon-5.dcm", "Modality": "US"}
    result = gql(client, UPLOAD, payload=payload)
    assert result == {"data": {"uploadJson": {"s3Path": f"s3://{BUCKET}/json/sub/anon-5.json"}}}


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ([1, 2], "INVALID_PAYLOAD"),
        ("text", "INVALID_PAYLOAD"),
        ({}, "INVALID_PAYLOAD"),
        ({"s3_path": "nope"}, "INVALID_PAYLOAD"),
        ({"s3_path": f"s3://{BUCKET}/dicom/a.dcm", "Modality": ["CT"]}, "INVALID_PAYLOAD"),
        ({"s3_path": "s3://elsewhere/dicom/a.dcm"}, "FORBIDDEN_BUCKET"),
    ],
)
def test_upload_errors(client: FlaskClient, payload: Any, code: str) -> None:
    assert error_codes(gql(client, UPLOAD, payload=payload)) == [code]


def test_invalid_queries_are_validation_errors(client: FlaskClient) -> None:
    assert error_codes(gql(client, "{ dicomMetadata { s3Path } }")) == ["GRAPHQL_VALIDATION_FAILED"]
    assert error_codes(gql(client, "{ nope")) == ["GRAPHQL_VALIDATION_FAILED"]


def test_unexpected_errors_are_scrubbed(client: FlaskClient, app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(s3_path: str) -> None:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(app.extensions["dicom_meta.managers"].dicom, "extract_metadata", explode)
    result = gql(client, LIVE, p=f"s3://{BUCKET}/dicom/a.dcm")
    assert error_codes(result) == ["INTERNAL"]
    assert result["errors"][0]["message"] == "Internal server error"


@pytest.mark.parametrize(
    ("data", "content_type", "status"),
    [(b"{not json", "application/json", 400), (b"query", "text/plain", 415)],
)
def test_malformed_http_requests_answer_the_contract_error(
    client: FlaskClient, data: bytes, content_type: str, status: int
) -> None:
    response = client.post("/graphql", data=data, content_type=content_type)
    assert response.status_code == status
    assert response.json and response.json["error"]["code"] in {"INVALID_PAYLOAD", "UNSUPPORTED_MEDIA_TYPE"}


def test_browsers_get_graphiql(client: FlaskClient) -> None:
    response = client.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert "graphiql" in response.get_data(as_text=True).lower()


def test_queries_via_get(client: FlaskClient, put_dicom: Callable[..., str]) -> None:
    s3_path = put_dicom(patient_id="GET-1")
    response = client.get(
        "/graphql", query_string={"query": f'{{ dicomMetadata(s3Path: "{s3_path}") {{ patientId }} }}'}
    )
    assert response.json == {"data": {"dicomMetadata": {"patientId": "GET-1"}}}
