"""GraphQL documents and variables built to hurt: refused early, with a contract code, nothing logged."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any, cast

import pytest
import strawberry.schema.schema as strawberry_schema
from flask.testing import FlaskClient

from schema.fanout import MAX_EXPANDED_FIELDS

MARKER = "PHI-SECRET-GQ7V"
SEARCH = "query($f: MetadataFilter!, $n: Int!) { searchMetadata(filter: $f, first: $n) { items { s3Path } } }"
LIVE = "query($p: String!) { dicomMetadata(s3Path: $p) { s3Path } }"
BATCH = "query($p: [String!]!) { dicomMetadataBatch(s3Paths: $p) { __typename } }"


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.DEBUG)
    yield caplog


def fan_out(levels: int) -> str:
    """The issue's document: each fragment spreads the next twice, 2**levels fields in all."""
    fragments = " ".join(f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(levels))
    return f"query {{ ...F0 }} {fragments} fragment F{levels} on Query {{ __typename }}"


def body(response: Any) -> dict[str, Any]:
    """The JSON body of a test client's response (typed, for mypy)."""
    return cast(dict[str, Any], response.get_json())


def codes(answer: dict[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in answer.get("errors", [])]


@pytest.fixture
def validations(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the runs of graphql-core's validation (one per document Strawberry validates)."""
    runs: list[int] = []
    validate = strawberry_schema.validate_document

    def counted(*args: Any, **kwargs: Any) -> Any:
        runs.append(1)
        return validate(*args, **kwargs)

    monkeypatch.setattr(strawberry_schema, "validate_document", counted)
    return runs


@pytest.mark.parametrize("levels", [22, 40, 200])
def test_fragment_fan_out_is_refused_before_validation(
    client: FlaskClient, validations: list[int], levels: int
) -> None:
    response = client.post("/graphql", json={"query": fan_out(levels)})
    assert response.status_code == 200
    assert codes(body(response)) == ["GRAPHQL_VALIDATION_FAILED"]
    # Refused for its expansion, or (200 levels) by the token limit while parsing.
    assert "fragments" in body(response)["errors"][0]["message"] or "tokens" in body(response)["errors"][0]["message"]
    # What took seconds to minutes was graphql-core's validation walking the 2**levels fields
    # (schema/fanout.py, which counts them without expanding): for these it never runs.
    assert validations == []


def test_a_modest_fan_out_still_runs(client: FlaskClient, validations: list[int]) -> None:
    # 2**10 = 1024 fields once expanded: under the bound, validated and answered as usual.
    assert MAX_EXPANDED_FIELDS > 2**10
    response = client.post("/graphql", json={"query": fan_out(10)})
    assert body(response) == {"data": {"__typename": "Query"}}
    assert validations == [1]


def test_unused_fragments_count_too(client: FlaskClient) -> None:
    document = fan_out(30).replace("query { ...F0 }", "query { __typename }")
    assert codes(body(client.post("/graphql", json={"query": document}))) == ["GRAPHQL_VALIDATION_FAILED"]


BAD_VARIABLES: dict[str, tuple[str, dict[str, Any]]] = {
    "list-for-string": (SEARCH, {"f": {"patientId": [MARKER]}, "n": 5}),
    "object-for-string": (SEARCH, {"f": {"modality": {"x": MARKER}}, "n": 5}),
    "unknown-filter-field": (SEARCH, {"f": {MARKER: "x"}, "n": 5}),
    "string-for-int": (SEARCH, {"f": {}, "n": MARKER}),
    "huge-int": (SEARCH, {"f": {}, "n": 10**30}),
    "null-for-non-null": (LIVE, {"p": None}),
    "missing-variable": (LIVE, {}),
    "number-for-string": (LIVE, {"p": 12.5}),
    "null-in-list": (BATCH, {"p": [None, MARKER]}),
    "variables-not-an-object": (LIVE, [MARKER]),  # type: ignore[dict-item]
}


@pytest.mark.parametrize("name", sorted(BAD_VARIABLES))
def test_bad_variables_are_validation_failures(
    client: FlaskClient, name: str, debug_logs: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    query, variables = BAD_VARIABLES[name]
    response = client.post("/graphql", json={"query": query, "variables": variables})
    if response.status_code == 200:
        assert codes(body(response)) == ["GRAPHQL_VALIDATION_FAILED"], response.json
    else:  # a body Strawberry refuses outright: the contract's 400
        assert (response.status_code, body(response)["error"]["code"]) == (400, "INVALID_PAYLOAD")
    out, err = capfd.readouterr()
    assert MARKER not in debug_logs.text + out + err


@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_deeply_nested_variables_are_refused(
    client: FlaskClient, depth: int, debug_logs: pytest.LogCaptureFixture
) -> None:
    text = '{"query": "mutation($d: JSON!) { uploadJson(payload: $d) { s3Path } }", "variables": {"d": '
    text += "[" * depth + json.dumps(MARKER) + "]" * depth + "}}"
    response = client.post("/graphql", data=text, content_type="application/json")
    if response.status_code == 200:
        assert codes(body(response)) in (["GRAPHQL_VALIDATION_FAILED"], ["INVALID_PAYLOAD"])
    else:
        assert (response.status_code, body(response)["error"]["code"]) == (400, "INVALID_PAYLOAD")
    assert MARKER not in debug_logs.text


@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_deeply_nested_upload_bodies_are_invalid_payloads(client: FlaskClient, depth: int) -> None:
    text = '{"s3_path": "s3://data-apps-ex/dicom/x.dcm", "PatientID": ' + "[" * depth + "]" * depth + "}"
    response = client.post("/upload-json-to-s3", data=text, content_type="application/json")
    assert (response.status_code, body(response)["error"]["code"]) == (400, "INVALID_PAYLOAD")
