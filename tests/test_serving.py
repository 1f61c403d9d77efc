"""`make serve` and `make load`: the app under gunicorn on the local backend, as they run it."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from bench.load import report, run_load, served
from local import free_port

SEEDED = "s3://data-apps-ex/dicom/anon-1.2.826.0.1.3680043.8.498.1.1.dcm"


@pytest.fixture(scope="module")
def gunicorn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """gunicorn with two workers of two threads, and its embedded AWS; its URL and its log.

    Started without a cursor secret, as `make serve` is on a laptop: the master picks one.
    """
    log = tmp_path_factory.mktemp("serve") / "server.log"
    with pytest.MonkeyPatch.context() as environment:
        environment.delenv("DICOM_META_CURSOR_SECRET", raising=False)
        with served(free_port(), free_port(), workers=2, threads=2, log_path=log) as base:
            yield base, log


@pytest.mark.slow
def test_the_served_app_answers(gunicorn: tuple[str, Path]) -> None:
    base, _ = gunicorn
    assert requests.get(f"{base}/health", timeout=5).json() == {"message": "The server is running"}
    assert requests.get(f"{base}/ready", timeout=5).json() == {"s3": "ok", "dynamodb": "ok"}
    live = requests.get(f"{base}/dicom-metadata", params={"s3_path": SEEDED}, timeout=10)
    assert live.json()["Modality"] == "CT"
    query = {"query": f'{{ dicomMetadata(s3Path: "{SEEDED}") {{ patientId }} }}'}
    assert requests.post(f"{base}/graphql", json=query, timeout=10).json() == {
        "data": {"dicomMetadata": {"patientId": "PAT-0001"}}
    }


@pytest.mark.slow
def test_gunicorn_refuses_a_chunked_body_over_one_mib(gunicorn: tuple[str, Path]) -> None:
    host, port = gunicorn[0].removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    connection.request(
        "POST",
        "/graphql",
        body=(b" " * 65536 for _ in range(20)),
        encode_chunked=True,
        headers={"Content-Type": "application/json"},
    )
    response = connection.getresponse()
    assert response.status == 413
    assert json.loads(response.read())["error"]["code"] == "PAYLOAD_TOO_LARGE"


@pytest.mark.slow
def test_the_served_app_logs_json_lines_without_query_strings(gunicorn: tuple[str, Path]) -> None:
    base, log = gunicorn
    requests.get(f"{base}/dicom-metadata", params={"s3_path": SEEDED}, headers={"X-Request-ID": "served-1"}, timeout=10)
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith('{"time"')]
    mine = [line for line in lines if line["request_id"] == "served-1"]
    assert mine and mine[0]["route"] == "/dicom-metadata" and mine[0]["status"] == 200
    assert "s3_path=" not in log.read_text() and "PAT-0001" not in log.read_text()


@pytest.mark.slow
def test_a_short_load_run_has_no_errors(gunicorn: tuple[str, Path]) -> None:
    samples, wall = run_load(gunicorn[0], users=4, seconds=2, headers={})
    assert samples and all(sample.ok for sample in samples), report(samples, wall)
    assert {sample.kind for sample in samples} >= {"REST GET /dicom-metadata", "GraphQL dicomMetadata"}


@pytest.mark.slow
def test_every_worker_reads_the_cursors_of_the_others(gunicorn: tuple[str, Path]) -> None:
    # GIVEN two workers sharing the secret their master picked
    base, log = gunicorn
    assert "(2 workers x 2 threads)" in log.read_text()
    query = "query($a: String) { dicomFiles(first: 1, after: $a) { items { s3Path } nextCursor } }"
    # WHEN pages are followed over new connections, which the two workers share out
    first = requests.post(f"{base}/graphql", json={"query": query}, timeout=10).json()
    cursor = first["data"]["dicomFiles"]["nextCursor"]
    assert cursor
    answers = [
        requests.post(f"{base}/graphql", json={"query": query, "variables": {"a": cursor}}, timeout=10).json()
        for _ in range(12)
    ]
    # THEN every one of them reads it (a worker with its own secret would say INVALID_CURSOR)
    assert [answer.get("errors") for answer in answers] == [None] * 12
    second = {answer["data"]["dicomFiles"]["items"][0]["s3Path"] for answer in answers}
    assert len(second) == 1 and second != {first["data"]["dicomFiles"]["items"][0]["s3Path"]}
