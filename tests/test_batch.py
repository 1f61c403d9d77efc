"""dicomMetadataBatch: results in input order, each the metadata or its error, at most 100 paths."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from config import S3_BUCKET_NAME
from managers.bundle import Managers
from resolvers import MAX_BATCH_PATHS

BATCH_QUERY = """
query Batch($paths: [String!]!) {
  dicomMetadataBatch(s3Paths: $paths) {
    __typename
    ... on DicomMetadata { s3Path patientId modality }
    ... on ExtractionError { s3Path code message }
  }
}
"""


def batch(client: FlaskClient, paths: list[str]) -> Any:
    response = client.post("/graphql", json={"query": BATCH_QUERY, "variables": {"paths": paths}})
    assert response.status_code == 200
    return response.json


def test_results_come_in_input_order_with_each_error_in_place(
    client: FlaskClient, put_dicom: Callable[..., str], put_object: Callable[[str, bytes], str]
) -> None:
    good = [put_dicom(patient_id=f"B-{index}", modality="MR") for index in range(5)]
    text = put_object("dicom/batch-note.dcm", b"not an image, just a note\n")
    paths = [
        good[0],
        f"s3://{S3_BUCKET_NAME}/dicom/absent.dcm",
        good[1],
        text,
        good[2],
        "not-a-path",
        "s3://another-bucket/dicom/a.dcm",
        "",
        good[3],
        good[4],
    ]
    body = batch(client, paths)
    assert "errors" not in body
    results = body["data"]["dicomMetadataBatch"]
    assert [result["s3Path"] for result in results] == paths
    assert [result.get("code") or result["patientId"] for result in results] == [
        "B-0",
        "NOT_FOUND",
        "B-1",
        "NOT_DICOM",
        "B-2",
        "INVALID_S3_PATH",
        "FORBIDDEN_BUCKET",
        "MISSING_PARAMETER",
        "B-3",
        "B-4",
    ]
    assert {result["__typename"] for result in results if "code" in result} == {"ExtractionError"}
    assert all(result["message"] for result in results if "code" in result)


def test_an_empty_batch_is_an_empty_list(client: FlaskClient) -> None:
    assert batch(client, [])["data"]["dicomMetadataBatch"] == []


def test_a_full_batch_is_answered_whole(client: FlaskClient, put_dicom: Callable[..., str]) -> None:
    paths = [put_dicom(patient_id=f"F-{index}") for index in range(10)] * (MAX_BATCH_PATHS // 10)
    results = batch(client, paths)["data"]["dicomMetadataBatch"]
    assert [result["patientId"] for result in results] == [f"F-{index % 10}" for index in range(MAX_BATCH_PATHS)]


def test_more_than_the_limit_fails_the_field(client: FlaskClient) -> None:
    body = batch(client, [f"s3://{S3_BUCKET_NAME}/dicom/{index}.dcm" for index in range(MAX_BATCH_PATHS + 1)])
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "INVALID_ARGUMENT"
    assert str(MAX_BATCH_PATHS) in body["errors"][0]["message"]


def test_an_unexpected_failure_is_internal_and_spares_the_others(
    app: Flask, client: FlaskClient, put_dicom: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    managers: Managers = app.extensions["dicom_meta.managers"]
    good, broken = put_dicom(patient_id="OK-1"), put_dicom(patient_id="BUG-1")
    extract, threads = managers.dicom.extract_metadata, set()

    def flaky(s3_path: str) -> dict[str, str | None]:
        threads.add(threading.current_thread().name)
        if s3_path == broken:
            raise RuntimeError("a bug with a secret detail")
        return extract(s3_path)

    monkeypatch.setattr(managers.dicom, "extract_metadata", flaky)
    results = batch(client, [broken, good])["data"]["dicomMetadataBatch"]
    assert results[0]["code"] == "INTERNAL"
    assert "secret" not in results[0]["message"]
    assert results[1]["patientId"] == "OK-1"
    assert all(name.startswith("dicom-meta-batch") for name in threads)  # the app's pool, not the request's thread
