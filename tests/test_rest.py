"""The REST routes of docs/API.md: shapes, statuses and every row of the error table."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient

from app import create_app
from local import free_port
from local.samples import SampleSpec
from managers.aws.clients import MAX_ATTEMPTS, Credentials
from tests.bounds import PRESIGNED_PUT, UpstreamTries

BUCKET = "data-apps-ex"
FIELDS = ("PatientID", "StudyDate", "Modality", "InstitutionName", "StudyDescription")


def assert_error(response: Any, status: int, code: str) -> None:
    """The contract's error shape: JSON with code, message and the response's request id."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.is_json
    error = response.json["error"]
    assert error["code"] == code
    assert error["message"]
    assert error["request_id"] == response.headers["X-Request-ID"]
    assert "Traceback" not in response.get_data(as_text=True)


def test_health(client: FlaskClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json == {"message": "The server is running"}


def test_dicom_metadata_answers_the_five_fields_in_order(client: FlaskClient, put_dicom: Callable[..., str]) -> None:
    s3_path = put_dicom(
        patient_id="P-7",
        study_date="20231231",
        modality="CT",
        institution_name="North Clinic",
        study_description="HEAD",
    )
    response = client.get("/dicom-metadata", query_string={"s3_path": s3_path})
    assert response.status_code == 200
    assert list(response.json or {}) == ["s3_path", *FIELDS]
    assert response.json == {
        "s3_path": s3_path,
        "PatientID": "P-7",
        "StudyDate": "20231231",
        "Modality": "CT",
        "InstitutionName": "North Clinic",
        "StudyDescription": "HEAD",
    }


@pytest.mark.parametrize("route", ["/dicom-metadata", "/fetch-dicom-metadata"])
@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        ({}, 400, "MISSING_PARAMETER"),
        ({"s3_path": ""}, 400, "MISSING_PARAMETER"),
        ({"s3_path": "dicom/a.dcm"}, 400, "INVALID_S3_PATH"),
        ({"s3_path": "s3://data-apps-ex"}, 400, "INVALID_S3_PATH"),
        ({"s3_path": "s3://data-apps-ex/"}, 400, "INVALID_S3_PATH"),
        ({"s3_path": "https://data-apps-ex/dicom/a.dcm"}, 400, "INVALID_S3_PATH"),
        ({"s3_path": "s3://another-bucket/dicom/a.dcm"}, 403, "FORBIDDEN_BUCKET"),
        ({"s3_path": f"s3://{BUCKET}/dicom/absent.dcm"}, 404, "NOT_FOUND"),
    ],
)
def test_path_errors(client: FlaskClient, route: str, query: dict[str, str], status: int, code: str) -> None:
    assert_error(client.get(route, query_string=query), status, code)


def test_not_dicom(client: FlaskClient, put_object: Callable[[str, bytes], str]) -> None:
    s3_path = put_object("dicom/notes.dcm", b"This is a text file, not an image.\n")
    assert_error(client.get("/dicom-metadata", query_string={"s3_path": s3_path}), 422, "NOT_DICOM")


def test_upload_answers_the_json_path(client: FlaskClient, s3: Any) -> None:
    body = {
        "s3_path": f"s3://{BUCKET}/dicom/a/anon-9.9.dcm",
        "PatientID": "X",
        "StudyDate": None,
        "Modality": "CT",
        "InstitutionName": None,
        "StudyDescription": None,
    }
    response = client.post("/upload-json-to-s3", json=body)
    assert response.status_code == 201
    assert response.json == {"s3_path": f"s3://{BUCKET}/json/a/anon-9.9.json"}
    stored = s3.get_object(Bucket=BUCKET, Key="json/a/anon-9.9.json")
    assert stored["ContentType"] == "application/json"
    assert __import__("json").loads(stored["Body"].read()) == body


def test_upload_of_a_key_outside_dicom_keeps_its_whole_key(client: FlaskClient) -> None:
    response = client.post("/upload-json-to-s3", json={"s3_path": f"s3://{BUCKET}/scans/x.dcm"})
    assert response.json == {"s3_path": f"s3://{BUCKET}/json/_/scans/x.dcm.json"}


def test_keys_that_used_to_collide_each_keep_their_own_record(client: FlaskClient) -> None:
    # GIVEN four paths that all mapped to json/c/b.json (one record was silently lost)
    paths = [f"s3://{BUCKET}/{key}" for key in ("dicom/c/b.dcm", "c/b.dcm", "dicom/c/b", "dicom/c/b.DCM")]
    # WHEN each is uploaded THEN each gets a JSON key of its own
    answers = [client.post("/upload-json-to-s3", json={"s3_path": path}) for path in paths]
    assert [answer.status_code for answer in answers] == [201] * 4
    assert len({answer.get_json()["s3_path"] for answer in answers}) == 4
    # AND a path whose document would land among those others is refused, not stored over one
    refused = client.post("/upload-json-to-s3", json={"s3_path": f"s3://{BUCKET}/dicom/_/c/b.dcm"})
    assert_error(refused, 400, "INVALID_PAYLOAD")


@pytest.mark.parametrize("limit", ["²", "١", "1.5", "-1", " 5", "5\n", "9" * 5000])
def test_limit_takes_ascii_digits_only(client: FlaskClient, limit: str) -> None:
    assert_error(client.get("/search-metadata", query_string={"limit": limit}), 400, "INVALID_ARGUMENT")


def test_a_path_ending_in_a_newline_is_invalid(client: FlaskClient) -> None:
    response = client.get("/dicom-metadata", query_string={"s3_path": f"s3://{BUCKET}/dicom/x.dcm\n"})
    assert_error(response, 400, "INVALID_S3_PATH")


@pytest.mark.parametrize(
    ("data", "status", "code"),
    [
        (b"{not json", 400, "INVALID_PAYLOAD"),
        (b"[1, 2]", 400, "INVALID_PAYLOAD"),
        (b'"s3://data-apps-ex/dicom/a.dcm"', 400, "INVALID_PAYLOAD"),
        (b"{}", 400, "INVALID_PAYLOAD"),
        (b'{"s3_path": ""}', 400, "INVALID_PAYLOAD"),
        (b'{"s3_path": 5}', 400, "INVALID_PAYLOAD"),
        (b'{"s3_path": "dicom/a.dcm"}', 400, "INVALID_PAYLOAD"),
        (b'{"s3_path": "s3://data-apps-ex/dicom/a.dcm", "patientId": "x"}', 400, "INVALID_PAYLOAD"),
        (b'{"s3_path": "s3://data-apps-ex/dicom/a.dcm", "Modality": 7}', 400, "INVALID_PAYLOAD"),
        (b'{"s3_path": "s3://other/dicom/a.dcm"}', 403, "FORBIDDEN_BUCKET"),
    ],
)
def test_upload_errors(client: FlaskClient, data: bytes, status: int, code: str) -> None:
    response = client.post("/upload-json-to-s3", data=data, content_type="application/json")
    assert_error(response, status, code)


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_upload_needs_json_content_type(client: FlaskClient, content_type: str | None) -> None:
    response = client.post(
        "/upload-json-to-s3", data=b'{"s3_path": "s3://data-apps-ex/dicom/a.dcm"}', content_type=content_type
    )
    assert_error(response, 415, "UNSUPPORTED_MEDIA_TYPE")


def test_upload_over_one_mib(client: FlaskClient, s3: Any) -> None:
    body = b'{"s3_path": "s3://data-apps-ex/dicom/big.dcm", "StudyDescription": "' + b"x" * (1024 * 1024) + b'"}'
    assert_error(
        client.post("/upload-json-to-s3", data=body, content_type="application/json"), 413, "PAYLOAD_TOO_LARGE"
    )
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix="json/big")


def test_fetch_without_a_record(client: FlaskClient, put_dicom: Callable[..., str]) -> None:
    # Outside dicom/, so the indexer does not give it a record.
    s3_path = put_dicom("unindexed/no-record.dcm")
    assert_error(client.get("/fetch-dicom-metadata", query_string={"s3_path": s3_path}), 404, "NOT_FOUND")


@pytest.mark.parametrize(
    ("method", "route", "status", "code"),
    [
        ("GET", "/no-such-route", 404, "NOT_FOUND"),
        ("DELETE", "/health", 405, "METHOD_NOT_ALLOWED"),
        ("GET", "/upload-json-to-s3", 405, "METHOD_NOT_ALLOWED"),
    ],
)
def test_unknown_routes_and_methods_answer_json(
    client: FlaskClient, method: str, route: str, status: int, code: str
) -> None:
    assert_error(client.open(route, method=method), status, code)


def test_unexpected_errors_are_scrubbed(
    client: FlaskClient, app: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def explode(s3_path: str) -> None:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(app.extensions["dicom_meta.managers"].dicom, "extract_metadata", explode)
    response = client.get("/dicom-metadata", query_string={"s3_path": f"s3://{BUCKET}/dicom/a.dcm"})
    assert_error(response, 500, "INTERNAL")
    assert "secret internal detail" not in response.get_data(as_text=True)
    assert "secret internal detail" in caplog.text


def test_request_id_is_echoed_or_made(client: FlaskClient) -> None:
    assert client.get("/health", headers={"X-Request-ID": "abc-123"}).headers["X-Request-ID"] == "abc-123"
    made = client.get("/health").headers["X-Request-ID"]
    assert len(made) == 32
    # A header that could forge log lines is replaced, not echoed.
    assert client.get("/health", headers={"X-Request-ID": "a b\tc"}).headers["X-Request-ID"] != "a b\tc"


@pytest.mark.parametrize(
    ("method", "route", "kwargs", "tries"),
    [
        (
            "GET",
            "/dicom-metadata",
            {"query_string": {"s3_path": f"s3://{BUCKET}/dicom/a.dcm"}},
            {"s3.GetObject": MAX_ATTEMPTS},
        ),
        (
            "GET",
            "/fetch-dicom-metadata",
            {"query_string": {"s3_path": f"s3://{BUCKET}/dicom/a.dcm"}},
            {"dynamodb.GetItem": MAX_ATTEMPTS},
        ),
        ("POST", "/upload-json-to-s3", {"json": {"s3_path": f"s3://{BUCKET}/dicom/a.dcm"}}, {PRESIGNED_PUT: 1}),
    ],
)
def test_dead_endpoint_is_upstream_unavailable_after_its_tries(
    method: str, route: str, kwargs: dict[str, Any], tries: dict[str, int]
) -> None:
    dead = create_app({"AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}", "AWS_CREDENTIALS": Credentials("x", "y")})
    # Bounded by its tries, not timed: the configured attempts of the one operation the route
    # needs (a closed port refuses each at once), then 503 (tests/test_faults.py checks the
    # timeouts that bound each try).
    with UpstreamTries(dead.extensions["dicom_meta.managers"]) as upstream:
        response = dead.test_client().open(route, method=method, **kwargs)
    assert upstream.tries == tries
    assert_error(response, 503, "UPSTREAM_UNAVAILABLE")


def test_sample_spec_names_files_like_the_bucket() -> None:
    assert SampleSpec(sop_instance_uid="1.2.3").file_name == "anon-1.2.3.dcm"
