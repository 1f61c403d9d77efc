"""Logs: one JSON line per request, and no patient data in any log at any level."""

from __future__ import annotations

import contextlib
import json
import logging
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.bounds import HANG_GUARD
from tests.served import served_over_http
from web.logs import ACCESS_LOGGER

# Values no other part of a log line could hold by chance (a date that is no timestamp).
PHI = {
    "patient_id": "PHI-7731-XQ",
    "patient_name": "Leakwell^Henrietta",
    "study_date": "19870612",
    "institution_name": "Saint Nowhere Infirmary",
    "study_description": "CONFIDENTIAL KNEE STUDY",
}


def access_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == ACCESS_LOGGER]


def assert_no_phi(text: str) -> None:
    for name, value in PHI.items():
        assert value not in text, f"{name} leaked into the logs"
    assert "Leakwell" not in text and "Henrietta" not in text


def wait_for(probe: Callable[[], Any], timeout: float = HANG_GUARD) -> Any:
    """The first truthy result of ``probe``, or the last after ``timeout`` seconds (a hang guard)."""
    deadline = time.monotonic() + timeout
    while not (result := probe()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return result


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Every record of every logger, at DEBUG, from the root logger down."""
    caplog.set_level(logging.DEBUG)
    yield caplog


def test_a_full_round_trip_logs_no_patient_data(
    client: FlaskClient,
    put_dicom: Callable[..., str],
    debug_logs: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    # GIVEN a DICOM file holding recognisable patient data
    s3_path = put_dicom(**PHI)
    fields = "s3Path patientId studyDate modality institutionName studyDescription"
    # WHEN it goes through extract → upload → trigger (the Lambda) → fetch, on both APIs
    live = client.get("/dicom-metadata", query_string={"s3_path": s3_path})
    assert live.json is not None
    assert live.json["PatientID"] == PHI["patient_id"]
    query = f"query($p: String!) {{ dicomMetadata(s3Path: $p) {{ {fields} }} }}"
    assert client.post("/graphql", json={"query": query, "variables": {"p": s3_path}}).status_code == 200
    assert client.post("/upload-json-to-s3", json=live.json).status_code == 201
    mutation = "mutation($d: JSON!) { uploadJson(payload: $d) { s3Path } }"
    assert "errors" not in (client.post("/graphql", json={"query": mutation, "variables": {"d": live.json}}).json or {})
    stored = wait_for(
        lambda: (r := client.get("/fetch-dicom-metadata", query_string={"s3_path": s3_path})).status_code == 200 and r
    )
    assert stored and stored.json == live.json
    stored_query = f'{{ storedMetadata(s3Path: "{s3_path}") {{ {fields} }} }}'
    stored_answer = client.get("/graphql", query_string={"query": stored_query}).json
    assert stored_answer and stored_answer["data"]["storedMetadata"]
    # … and through the error paths, with patient data in the arguments
    client.post("/upload-json-to-s3", json={**live.json, "Bogus": PHI["patient_name"]})
    client.post("/graphql", json={"query": f'{{ dicomMetadata(s3Path: "{PHI["patient_name"]}") {{ s3Path }} }}'})
    client.get("/dicom-metadata", query_string={"s3_path": f"s3://data-apps-ex/{PHI['study_description']}"})
    # THEN the app, boto3, the Lambda and every other logger said nothing of it
    assert len(access_lines(debug_logs)) >= 8
    assert_no_phi(debug_logs.text)
    assert_no_phi("\n".join(str(r.args) for r in debug_logs.records))
    out, err = capfd.readouterr()
    assert_no_phi(out + err)


def test_unexpected_errors_do_not_log_the_arguments(
    client: FlaskClient, app: Flask, monkeypatch: pytest.MonkeyPatch, debug_logs: pytest.LogCaptureFixture
) -> None:
    def explode(s3_path: str) -> None:
        message = f"disk on fire at {s3_path}"  # a message quoting a request value, as library messages do
        raise RuntimeError(message)

    monkeypatch.setattr(app.extensions["dicom_meta.managers"].dicom, "extract_metadata", explode)
    path = f"s3://data-apps-ex/dicom/{PHI['patient_id']}.dcm"
    client.post(
        "/graphql",
        json={"query": "query($p: String!) { dicomMetadata(s3Path: $p) { s3Path } }", "variables": {"p": path}},
    )
    client.get("/dicom-metadata", query_string={"s3_path": path})
    # The incident is logged with its frames and type, without its message (a message may
    # quote a value) and without what the client asked for.
    assert "RuntimeError (message withheld)" in debug_logs.text and "explode" in debug_logs.text
    assert "disk on fire at" not in debug_logs.text
    assert_no_phi(debug_logs.text)


def test_one_json_line_per_request(client: FlaskClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    client.get(
        "/dicom-metadata",
        query_string={"s3_path": "s3://data-apps-ex/dicom/absent.dcm"},
        headers={"X-Request-ID": "req-log-1"},
    )
    client.post("/graphql", json={"query": "{ __typename }"}, headers={"X-Request-ID": "req-log-2"})
    client.get("/no/such/route?s3_path=x", headers={"X-Request-ID": "req-log-3"})
    lines = {line["request_id"]: line for line in access_lines(caplog)}
    assert lines["req-log-1"]["route"] == "/dicom-metadata"
    assert (lines["req-log-1"]["method"], lines["req-log-1"]["status"]) == ("GET", 404)
    assert (lines["req-log-2"]["route"], lines["req-log-2"]["status"]) == ("/graphql", 200)
    # An unknown path is not logged at all: it is the client's text, not a route.
    assert lines["req-log-3"]["route"] is None and lines["req-log-3"]["status"] == 404
    for line in lines.values():
        assert set(line) == {"time", "method", "route", "status", "duration_ms", "request_id"}
        assert line["duration_ms"] >= 0


def test_refusals_are_logged_too(client: FlaskClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    client.post(
        "/upload-json-to-s3",
        data=b"x" * (1024 * 1024 + 1),
        content_type="application/json",
        headers={"X-Request-ID": "req-big"},
    )
    assert [(line["route"], line["status"]) for line in access_lines(caplog) if line["request_id"] == "req-big"] == [
        ("/upload-json-to-s3", 413)
    ]


def test_the_dev_server_logs_no_urls(app: Flask, debug_logs: pytest.LogCaptureFixture) -> None:
    # `make run` serves with Werkzeug, whose own access line prints the URL, query string and all.
    with served_over_http(app) as base:
        for path in (
            f"/dicom-metadata?s3_path=s3://data-apps-ex/dicom/{PHI['patient_id']}.dcm",
            "/graphql?"
            + urllib.parse.urlencode(
                {"query": f'{{ storedMetadata(s3Path: "s3://data-apps-ex/{PHI["study_date"]}") {{ s3Path }} }}'}
            ),
        ):
            with contextlib.suppress(urllib.error.HTTPError):
                urllib.request.urlopen(base + path.replace(" ", "%20"), timeout=10)
    assert access_lines(debug_logs)
    assert_no_phi(debug_logs.text)
