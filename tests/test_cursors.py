"""Paging cursors: opaque to anyone without the secret, refused when changed, and no
configuration that leaves them readable (the aws backend refuses to start without a secret)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

import resolvers
from app import create_app
from errors import InvalidCursor
from resolvers import paging
from resolvers.paging import NONCE_BYTES, Cursors, fingerprint

ROOT = Path(__file__).resolve().parent.parent
# What conftest's autouse fixture puts in DICOM_META_CURSOR_SECRET for every test.
TEST_CURSOR_SECRET = "tests-cursor-secret"
QUERY = fingerprint("searchMetadata", {"patient_id": "P003"})
POSITION = {"partition": "P003", "path": "s3://data-apps-ex/dicom/anon-1.2.3.dcm", "sort": "20240102#x"}
FIELDS = ("partition", "path", "sort")


CURSORS = Cursors(TEST_CURSOR_SECRET)
encode_cursor, decode_cursor = CURSORS.encode, CURSORS.decode


def sealed(query: str, plaintext: bytes) -> str:
    """Return a cursor that authenticates but holds ``plaintext`` (what a bug could produce)."""
    nonce = os.urandom(NONCE_BYTES)
    return paging._b64(nonce + CURSORS._aead.encrypt(nonce, plaintext, query.encode()))


def test_a_cursor_round_trips() -> None:
    cursor = encode_cursor(QUERY, POSITION)
    assert cursor is not None
    assert decode_cursor(QUERY, cursor, FIELDS) == POSITION
    assert encode_cursor(QUERY, None) is None and decode_cursor(QUERY, None) is None
    assert encode_cursor(QUERY, POSITION) != cursor  # a fresh nonce each time


def test_every_changed_byte_is_refused() -> None:
    cursor = encode_cursor(QUERY, POSITION)
    assert cursor
    raw = paging._unb64(cursor)
    for index in range(len(raw)):
        changed = raw[:index] + bytes([raw[index] ^ 0x01]) + raw[index + 1 :]
        with pytest.raises(InvalidCursor):
            decode_cursor(QUERY, paging._b64(changed), FIELDS)


def test_a_cursor_of_another_secret_or_query_is_refused() -> None:
    cursor = encode_cursor(QUERY, POSITION)
    with pytest.raises(InvalidCursor):
        decode_cursor(fingerprint("searchMetadata", {"patient_id": "P004"}), cursor, FIELDS)
    with pytest.raises(InvalidCursor):
        Cursors("another deployment's secret").decode(QUERY, cursor, FIELDS)


def test_two_apps_in_one_process_keep_their_own_keys(app: Flask) -> None:
    managers = app.extensions["dicom_meta.managers"]
    first = create_app({"MANAGERS": managers, "CURSOR_SECRET": "first"}).extensions["dicom_meta.cursors"]
    second = create_app({"MANAGERS": managers, "CURSOR_SECRET": "second"}).extensions["dicom_meta.cursors"]
    cursor = first.encode(QUERY, POSITION)
    assert first.decode(QUERY, cursor, FIELDS) == POSITION
    with pytest.raises(InvalidCursor):
        second.decode(QUERY, cursor, FIELDS)
    # Building the second app left the first one's key as it was.
    assert first.decode(QUERY, first.encode(QUERY, POSITION), FIELDS) == POSITION


@pytest.mark.parametrize(
    "plaintext",
    [
        b"not json",
        b"\xff\xfe",
        b"[1, 2]",
        b'"a string"',
        b"null",
        b"{}",
        b'{"partition": "P003", "path": "s3://data-apps-ex/dicom/a.dcm"}',
        b'{"partition": "P003", "path": "s3://data-apps-ex/dicom/a.dcm", "sort": 20240102}',
        b'{"partition": "P003", "path": null, "sort": "x"}',
        b'{"partition": "P003", "path": "p", "sort": "s", "extra": "e"}',
        b'{"token": "t"}',
    ],
)
def test_a_position_of_the_wrong_shape_is_invalid(plaintext: bytes) -> None:
    with pytest.raises(InvalidCursor):
        decode_cursor(QUERY, sealed(QUERY, plaintext), FIELDS)


@pytest.mark.parametrize(
    ("route", "params", "operation", "arguments"),
    [
        ("/search-metadata", {"Modality": "CT"}, "searchMetadata", asdict(resolvers.search_filter(modality="CT"))),
        (None, {"prefix": "dicom/"}, "dicomFiles", {"prefix": "dicom/"}),
    ],
)
def test_a_misshapen_cursor_is_400_not_500(
    app: Flask, route: str | None, params: dict[str, str], operation: str, arguments: dict[str, Any]
) -> None:
    query = fingerprint(operation, arguments)
    cursor = sealed(query, b'{"partition": 7, "token": ["t"]}')
    client = app.test_client()
    if route:
        response = client.get(route, query_string={**params, "cursor": cursor})
        assert response.status_code == 400
        assert response.json and response.json["error"]["code"] == "INVALID_CURSOR"
        return
    body = {
        "query": 'query($a: String) { dicomFiles(prefix: "dicom/", first: 2, after: $a) { nextCursor } }',
        "variables": {"a": cursor},
    }
    answer = client.post("/graphql", json=body).json
    assert answer and answer["errors"][0]["extensions"]["code"] == "INVALID_CURSOR"


def test_the_aws_backend_refuses_to_start_without_a_secret(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DICOM_META_BACKEND", "aws")
    monkeypatch.delenv("DICOM_META_CURSOR_SECRET")
    managers = app.extensions["dicom_meta.managers"]
    with pytest.raises(SystemExit, match="DICOM_META_CURSOR_SECRET must be set"):
        create_app({"MANAGERS": managers})
    assert create_app({"MANAGERS": managers, "CURSOR_SECRET": "s3cret"})


def test_the_wsgi_entry_exits_with_one_clear_line_on_aws_without_a_secret() -> None:
    env = {k: v for k, v in os.environ.items() if k != "DICOM_META_CURSOR_SECRET"}
    env["DICOM_META_BACKEND"] = "aws"
    result = subprocess.run(
        [sys.executable, "-c", "import wsgi; wsgi.served_app()"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1] == (
        "DICOM_META_CURSOR_SECRET must be set on the aws backend (a long random string)"
    )


def test_the_local_backend_picks_a_random_secret_for_its_children(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DICOM_META_CURSOR_SECRET")
    local = create_app({"MANAGERS": app.extensions["dicom_meta.managers"]})
    first = os.environ["DICOM_META_CURSOR_SECRET"]
    assert len(first) >= 40 and first != TEST_CURSOR_SECRET
    cursor = local.extensions["dicom_meta.cursors"].encode(QUERY, POSITION)
    # What a gunicorn worker does with the inherited variable: it reads the same cursors.
    child = subprocess.run(
        [sys.executable, "-c", CHILD_DECODES, QUERY, str(cursor)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(child.stdout) == POSITION
    monkeypatch.delenv("DICOM_META_CURSOR_SECRET")
    create_app({"MANAGERS": app.extensions["dicom_meta.managers"]})
    assert os.environ["DICOM_META_CURSOR_SECRET"] != first  # another run, another secret


CHILD_DECODES = """
import json, os, sys
from resolvers import paging
cursors = paging.Cursors(os.environ["DICOM_META_CURSOR_SECRET"])
print(json.dumps(cursors.decode(sys.argv[1], sys.argv[2])))
"""
