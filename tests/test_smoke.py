"""The round trip of DESIGN.md through the REST routes, on the embedded AWS."""

from __future__ import annotations

import time
from typing import Any, Callable

from flask.testing import FlaskClient


def wait_for_record(client: FlaskClient, s3_path: str, timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        response = client.get("/fetch-dicom-metadata", query_string={"s3_path": s3_path})
        if response.status_code == 200 or time.monotonic() > deadline:
            return response
        time.sleep(0.1)


def test_round_trip(client: FlaskClient, put_dicom: Callable[..., str]) -> None:
    s3_path = put_dicom(patient_id="RT-1", modality="MR", study_date="20240102")
    live = client.get("/dicom-metadata", query_string={"s3_path": s3_path})
    assert live.status_code == 200
    assert live.json["PatientID"] == "RT-1"
    uploaded = client.post("/upload-json-to-s3", json=live.json)
    assert uploaded.status_code == 201
    stored = wait_for_record(client, s3_path)
    assert stored.status_code == 200
    assert stored.json == live.json
