"""Hostile files through every entry point: the right code, fast, in bounded memory, nothing logged.

The files come from ``tests/hostile.py``. Each goes through ``read_header`` (what the indexer
calls), ``/dicom-metadata``, ``dicomMetadata { dicomJson }``, ``dicomMetadataBatch`` (four
copies at once) and, for the documents the ingest reads, the Lambda handler.
"""

from __future__ import annotations

import io
import json
import logging
import threading
import time
import tracemalloc
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from types import ModuleType
from typing import Any, cast

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.serving import make_server

import resolvers
from errors import DicomMetaError
from local.events import LambdaContext
from local.server import LocalAWS
from managers.bundle import Managers
from managers.dicom.header import fields_of, read_header
from managers.dicom.json_model import json_model
from tests.conftest import ingest_handler
from tests.hostile import CASES, MARKER, Hostile
from tests.test_lambda import s3_record
from web.logs import QuietRequestHandler

# Generous bounds: the issue asks for under a second and under 100 MB per request.
SECONDS = 1.0
MEGABYTES = 100
BATCH_COPIES = 4


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.DEBUG)
    yield caplog


@pytest.fixture
def managers(app: Flask) -> Managers:
    return app.extensions["dicom_meta.managers"]


def body(response: Any) -> dict[str, Any]:
    """The JSON body of a test client's response (typed, for mypy)."""
    return cast(dict[str, Any], response.get_json())


def code_of(call: Callable[[], Any]) -> str:
    try:
        call()
    except DicomMetaError as exc:
        return exc.code
    return "OK"


def timed(call: Callable[[], Any], tries: int = 2) -> tuple[Any, float]:
    """The result of ``call`` and its best time of ``tries``: the machine is shared, so one
    run may wait for a core; the bound is on the work, not on the neighbours."""
    best = float("inf")
    for _ in range(tries):
        started = time.perf_counter()
        result = call()
        best = min(best, time.perf_counter() - started)
    return result, best


def peak_megabytes(call: Callable[[], Any]) -> float:
    """The peak of Python allocations during ``call`` (the embedded AWS's included), in MB."""
    tracemalloc.start()
    try:
        call()
        return tracemalloc.get_traced_memory()[1] / 1024 / 1024
    finally:
        tracemalloc.stop()


def assert_no_marker(logs: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> None:
    out, err = capfd.readouterr()
    assert MARKER not in logs.text
    assert MARKER not in "\n".join(str(record.args) for record in logs.records)
    assert MARKER not in out + err


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_read_header_directly(case: Hostile, debug_logs: pytest.LogCaptureFixture, capfd: Any) -> None:
    # The indexer's entry: a stream in, NotDicom out, whatever the stream holds.
    data = case.build()
    fields, seconds = timed(lambda: code_of(lambda: fields_of(read_header(io.BytesIO(data)))))
    assert (fields, seconds < SECONDS) == (case.fields, True), seconds
    json_code, seconds = timed(lambda: code_of(lambda: json_model(read_header(io.BytesIO(data)))))
    assert (json_code, seconds < SECONDS) == (case.json, True), seconds
    assert_no_marker(debug_logs, capfd)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_every_api(
    case: Hostile,
    client: FlaskClient,
    managers: Managers,
    put_object: Callable[[str, bytes], str],
    debug_logs: pytest.LogCaptureFixture,
    capfd: Any,
) -> None:
    s3_path = put_object(f"dicom/hostile/{case.id}.dcm", case.build())

    # REST: the code, the time, and the memory of the whole request, S3 included.
    response, seconds = timed(lambda: client.get("/dicom-metadata", query_string={"s3_path": s3_path}))
    expected = 200 if case.fields == "OK" else 422
    assert (response.status_code, seconds < SECONDS) == (expected, True), seconds
    if case.fields != "OK":
        assert body(response)["error"]["code"] == case.fields
    assert peak_megabytes(lambda: client.get("/dicom-metadata", query_string={"s3_path": s3_path})) < MEGABYTES

    # dicomJson, through the manager and through GraphQL (where the five fields come first).
    json_code, seconds = timed(lambda: code_of(lambda: resolvers.dicom_json(managers, s3_path)))
    assert (json_code, seconds < SECONDS) == (case.json, True), seconds
    query = "query($p: String!) { dicomMetadata(s3Path: $p) { dicomJson } }"
    answer = body(client.post("/graphql", json={"query": query, "variables": {"p": s3_path}}))
    graphql_expected = case.fields if case.fields != "OK" else case.json
    codes = [error["extensions"]["code"] for error in answer.get("errors", [])]
    assert codes == ([] if graphql_expected == "OK" else [graphql_expected])

    # The batch: four copies at once, each in its place, within the same bounds.
    batch = "query($p: [String!]!) { dicomMetadataBatch(s3Paths: $p) { __typename ... on ExtractionError { code } } }"
    payload = {"query": batch, "variables": {"p": [s3_path] * BATCH_COPIES}}
    answer, seconds = timed(lambda: body(client.post("/graphql", json=payload)))
    results = answer["data"]["dicomMetadataBatch"]
    # Four parses share the GIL and two cores: each stays under a second of work.
    assert seconds < SECONDS * BATCH_COPIES, seconds
    if case.fields == "OK":
        assert {result["__typename"] for result in results} == {"DicomMetadata"}
    else:
        assert [result["code"] for result in results] == [case.fields] * BATCH_COPIES
    assert peak_megabytes(lambda: client.post("/graphql", json=payload)) < MEGABYTES

    assert_no_marker(debug_logs, capfd)


def test_other_clients_are_answered_meanwhile(app: Flask, put_object: Callable[[str, bytes], str]) -> None:
    # GIVEN a served app (threads, as gunicorn runs it) busy with batches of the slowest file
    worst = next(case for case in CASES if case.id == "many-elements")
    s3_path = put_object("dicom/hostile/worst.dcm", worst.build())
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    query = {"query": "query($p: [String!]!) { dicomMetadataBatch(s3Paths: $p) { __typename } }"}
    body = json.dumps({**query, "variables": {"p": [s3_path] * BATCH_COPIES}}).encode()

    def batch() -> int:
        request = urllib.request.Request(f"{base}/graphql", body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status)

    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            busy = [pool.submit(batch) for _ in range(2)]
            # WHEN another client asks for something cheap meanwhile
            time.sleep(0.2)
            waits = []
            for _ in range(5):
                started = time.perf_counter()
                with urllib.request.urlopen(f"{base}/health", timeout=10) as response:
                    assert response.status == 200
                waits.append(time.perf_counter() - started)
            # THEN it is answered promptly, and the batches still end with their answers
            assert [future.result() for future in busy] == [200, 200]
    finally:
        server.shutdown()
    assert max(waits) < SECONDS, waits  # each /health answered within a second while 8 parses run


TABLE = f"hostile-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def handler(local_aws: LocalAWS) -> Iterator[ModuleType]:
    with ingest_handler(local_aws, TABLE) as module:
        yield module


HOSTILE_DOCUMENTS: dict[str, bytes] = {
    "deep": b'{"s3_path": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    "key-with-newline": json.dumps(
        {"s3_path": "s3://data-apps-ex/dicom/h.dcm", f'x\n{{"forged": "{MARKER}"}}': MARKER}
    ).encode(),
    "wrong-types": json.dumps(
        {"s3_path": "s3://data-apps-ex/dicom/h.dcm", "PatientID": [MARKER], "Modality": {"a": MARKER}}
    ).encode(),
    "path-with-newline": json.dumps({"s3_path": f"s3://data-apps-ex/dicom/{MARKER}.dcm\n"}).encode(),
    "not-json": MARKER.encode() + b"\xff\xfe{",
}


@pytest.mark.parametrize("name", sorted(HOSTILE_DOCUMENTS))
def test_the_lambda_refuses_hostile_documents_quietly(
    name: str,
    app: Flask,  # configures the loggers as a served app does (boto3 capped at WARNING)
    handler: ModuleType,
    put_object: Callable[[str, bytes], str],
    debug_logs: pytest.LogCaptureFixture,
    capfd: Any,
) -> None:
    key = f"json/hostile/{name}.json"
    put_object(key, HOSTILE_DOCUMENTS[name])
    with pytest.raises(handler.IngestError):
        handler.lambda_handler({"Records": [s3_record(key)]}, LambdaContext())
    assert_no_marker(debug_logs, capfd)
    # The ingest's own lines (the handler's, the event runner's) are each one JSON object.
    for record in debug_logs.records:
        if record.name in ("root", "local.events"):
            assert isinstance(json.loads(record.getMessage()), dict)
