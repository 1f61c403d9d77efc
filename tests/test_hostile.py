"""Hostile files through every entry point: the right code, in bounded work and memory, nothing logged.

The files come from ``tests/hostile.py``. Each goes through ``read_header`` (what the indexer
calls), ``/dicom-metadata``, ``dicomMetadata { dicomJson }``, ``dicomMetadataBatch`` (four
copies at once) and, for the documents the ingest reads, the Lambda handler.

"Fast" is bounded as the work that makes the time: the reads and bytes a parse takes from its
stream, the bytes it inflates, the S3 GETs and bytes a request costs. None grows with the
file's claims, and none changes when the machine is busy (a clock would).
"""

from __future__ import annotations

import json
import logging
import threading
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
from managers.dicom.bounded import MAX_HEADER_BYTES, MAX_HEADER_READS, MAX_INFLATED_BYTES
from managers.dicom.header import fields_of, read_header
from managers.dicom.json_model import json_model
from tests.bounds import (
    HANG_GUARD,
    HEADER_FETCH_BYTES,
    HEADER_GETS,
    CountingStream,
    S3Gets,
    count_inflation,
    inflated,
)
from tests.conftest import ingest_handler
from tests.hostile import CASES, MARKER, Hostile
from tests.test_lambda import s3_record
from web.logs import QuietRequestHandler

# A generous bound: the issue asks for under 100 MB per request (and under a second, which the
# work bounds below stand for: tests/bounds.py).
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


def assert_parse_bounded(stream: CountingStream, inflaters: list[Any]) -> None:
    """A parse took from its stream at most the header bounds (reads, bytes), and inflated at
    most MAX_INFLATED_BYTES: pydicom's work, and so its time, is in proportion to these."""
    assert stream.reads <= MAX_HEADER_READS, stream.reads
    assert stream.bytes_read <= MAX_HEADER_BYTES, stream.bytes_read
    assert all(inflated(reader) <= MAX_INFLATED_BYTES + 1 for reader in inflaters), [inflated(r) for r in inflaters]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_read_header_directly(
    case: Hostile, debug_logs: pytest.LogCaptureFixture, capfd: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The indexer's entry: a stream in, NotDicom out, whatever the stream holds, within the
    # header's bounds of reads, bytes and inflation (what a second of parsing stood for).
    data = case.build()
    inflaters = count_inflation(monkeypatch)
    stream = CountingStream(data)
    assert code_of(lambda: fields_of(read_header(stream))) == case.fields
    assert_parse_bounded(stream, inflaters)
    inflaters.clear()
    stream = CountingStream(data)
    assert code_of(lambda: json_model(read_header(stream))) == case.json
    assert_parse_bounded(stream, inflaters)
    assert_no_marker(debug_logs, capfd)


def assert_fetch_bounded(gets: S3Gets, headers: int, size: int) -> None:
    """The S3 reads of ``headers`` header parses: each at most HEADER_GETS doubling ranged GETs,
    never more bytes than the object holds nor than the header bound makes them fetch."""
    count, fetched = gets.take()
    assert 1 <= count <= headers * HEADER_GETS, count
    assert fetched <= headers * min(size, HEADER_FETCH_BYTES), fetched


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_every_api(
    case: Hostile,
    client: FlaskClient,
    managers: Managers,
    put_object: Callable[[str, bytes], str],
    debug_logs: pytest.LogCaptureFixture,
    capfd: Any,
) -> None:
    data = case.build()
    s3_path = put_object(f"dicom/hostile/{case.id}.dcm", data)

    with S3Gets(managers.s3.client) as gets:
        # REST: the code, the S3 reads, and the memory of the whole request, S3 included.
        response = client.get("/dicom-metadata", query_string={"s3_path": s3_path})
        expected = 200 if case.fields == "OK" else 422
        assert response.status_code == expected
        if case.fields != "OK":
            assert body(response)["error"]["code"] == case.fields
        assert_fetch_bounded(gets, 1, len(data))
        assert peak_megabytes(lambda: client.get("/dicom-metadata", query_string={"s3_path": s3_path})) < MEGABYTES
        gets.take()

        # dicomJson, through the manager and through GraphQL (where the five fields come first).
        assert code_of(lambda: resolvers.dicom_json(managers, s3_path)) == case.json
        assert_fetch_bounded(gets, 1, len(data))
        query = "query($p: String!) { dicomMetadata(s3Path: $p) { dicomJson } }"
        answer = body(client.post("/graphql", json={"query": query, "variables": {"p": s3_path}}))
        graphql_expected = case.fields if case.fields != "OK" else case.json
        codes = [error["extensions"]["code"] for error in answer.get("errors", [])]
        assert codes == ([] if graphql_expected == "OK" else [graphql_expected])
        gets.take()

        # The batch: four copies at once, each in its place, within four times the bounds.
        batch = (
            "query($p: [String!]!) { dicomMetadataBatch(s3Paths: $p) { __typename ... on ExtractionError { code } } }"
        )
        payload = {"query": batch, "variables": {"p": [s3_path] * BATCH_COPIES}}
        results = body(client.post("/graphql", json=payload))["data"]["dicomMetadataBatch"]
        if case.fields == "OK":
            assert {result["__typename"] for result in results} == {"DicomMetadata"}
        else:
            assert [result["code"] for result in results] == [case.fields] * BATCH_COPIES
        assert_fetch_bounded(gets, BATCH_COPIES, len(data))
    assert peak_megabytes(lambda: client.post("/graphql", json=payload)) < MEGABYTES

    assert_no_marker(debug_logs, capfd)


def test_other_clients_are_answered_meanwhile(app: Flask, put_object: Callable[[str, bytes], str]) -> None:
    # GIVEN a served app (threads, as gunicorn runs it) busy with batches of the slowest file
    worst = next(case for case in CASES if case.id == "many-elements")
    s3_path = put_object("dicom/hostile/worst.dcm", worst.build())
    key = s3_path.split("/", 3)[3]
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    query = {"query": "query($p: [String!]!) { dicomMetadataBatch(s3Paths: $p) { __typename } }"}
    body = json.dumps({**query, "variables": {"p": [s3_path] * BATCH_COPIES}}).encode()

    # The batches cannot finish before /health has been answered: the first half of their S3
    # reads pass (those parses run, holding the GIL between reads), the rest wait on `answered`.
    # So "promptly" is an order, not a duration: each /health answer comes while the batches are
    # still at work. The waits are hang guards only: they end a test in which /health never comes.
    s3 = app.extensions["dicom_meta.managers"].s3.client
    answered, holding = threading.Event(), threading.Event()
    reads: list[int] = []
    all_reads = 2 * BATCH_COPIES * 3  # each parse of this file takes 3 GETs (64, 128, 256 KiB)

    def hold(params: dict[str, Any], **_: Any) -> None:
        if params.get("Key") != key:
            return
        reads.append(1)
        if len(reads) > all_reads // 2:
            holding.set()
            answered.wait(HANG_GUARD)

    def batch() -> int:
        request = urllib.request.Request(f"{base}/graphql", body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=HANG_GUARD * 2) as response:
            return int(response.status)

    s3.meta.events.register("provide-client-params.s3.GetObject", hold, unique_id="test-hostile-hold")
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            busy = [pool.submit(batch) for _ in range(2)]
            # WHEN another client asks for something cheap while the batches are mid-way
            assert holding.wait(HANG_GUARD), "the batches never reached their later reads"
            statuses = []
            for _ in range(5):
                with urllib.request.urlopen(f"{base}/health", timeout=HANG_GUARD) as response:
                    statuses.append(response.status)
            # THEN it is answered before the batches end (they cannot end yet) …
            finished = [future.done() for future in busy]
            answered.set()
            # … and the batches still end with their answers
            assert [future.result() for future in busy] == [200, 200]
    finally:
        answered.set()
        s3.meta.events.unregister("provide-client-params.s3.GetObject", unique_id="test-hostile-hold")
        server.shutdown()
    assert statuses == [200] * 5
    assert finished == [False, False]
    assert len(reads) == all_reads  # every parse made its reads, the held ones too


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
