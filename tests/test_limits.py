"""Limits: bodies over 1 MiB are refused before they are read whole; GraphQL documents are bounded."""

from __future__ import annotations

import http.client
import io
from collections.abc import Iterator
from typing import Any

import pytest
import strawberry
from flask import Flask
from flask.testing import FlaskClient
from graphql import get_introspection_query
from werkzeug.test import EnvironBuilder, run_wsgi_app

from schema import LIMITS, MAX_ALIASES, MAX_QUERY_DEPTH, MAX_TOKENS
from tests.served import served_over_http

MIB = 1024 * 1024
ROUTES = ["/graphql", "/upload-json-to-s3"]


class EndlessBody(io.RawIOBase):
    """A request body that never ends, counting what the server reads of it."""

    def __init__(self) -> None:
        self.served = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        chunk = b" " * len(buffer)
        buffer[: len(chunk)] = chunk
        self.served += len(chunk)
        return len(chunk)


def assert_too_large(response: Any) -> None:
    assert response.status_code == 413, response.get_data(as_text=True)[:200]
    assert response.json["error"]["code"] == "PAYLOAD_TOO_LARGE"


@pytest.mark.parametrize("route", ROUTES)
def test_a_declared_length_over_one_mib_is_refused(client: FlaskClient, route: str) -> None:
    body = b'{"query": "' + b"x" * MIB + b'"}'
    assert_too_large(client.post(route, data=body, content_type="application/json"))


@pytest.mark.parametrize("route", ROUTES)
def test_an_endless_chunked_body_is_refused_after_one_mib(app: Flask, route: str) -> None:
    # GIVEN a body without Content-Length that never ends (a server reading it whole would hang)
    body = EndlessBody()
    environ = EnvironBuilder(
        path=route, method="POST", content_type="application/json", headers=[("Transfer-Encoding", "chunked")]
    ).get_environ()
    environ.pop("CONTENT_LENGTH", None)
    # What a server sets once it has de-chunked the body: the stream ends where the body ends.
    environ.update({"wsgi.input": body, "wsgi.input_terminated": True})
    # WHEN it is posted THEN the app stops reading soon after the limit and answers 413
    app_iter, status, headers = run_wsgi_app(app, environ, buffered=True)
    assert_too_large(app.response_class(app_iter, status, headers))
    assert body.served <= 2 * MIB


@pytest.fixture(scope="module")
def served(app: Flask) -> Iterator[int]:
    """The app on a real socket (Werkzeug's server, which de-chunks like gunicorn); its port."""
    with served_over_http(app) as origin:
        yield int(origin.rpartition(":")[2])


@pytest.mark.parametrize("route", ROUTES)
def test_a_chunked_body_over_one_mib_on_a_real_socket(served: int, route: str) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", served, timeout=10)
    chunks = (b"x" * 65536 for _ in range(20))  # 1.25 MiB, sent without Content-Length
    connection.request("POST", route, body=chunks, headers={"Content-Type": "application/json"}, encode_chunked=True)
    response = connection.getresponse()
    assert response.status == 413
    assert b'"PAYLOAD_TOO_LARGE"' in response.read()
    connection.close()


def test_a_body_just_under_the_limit_is_read(client: FlaskClient) -> None:
    body = b'{"query": "{ __typename }", "variables": {"pad": "' + b"x" * (MIB - 100) + b'"}}'
    assert len(body) < MIB
    assert client.post("/graphql", data=body, content_type="application/json").json == {"data": {"__typename": "Query"}}


def gql_errors(client: FlaskClient, query: str) -> list[dict[str, Any]]:
    response = client.post("/graphql", json={"query": query})
    assert response.status_code == 200
    assert response.json is not None
    errors: list[dict[str, Any]] = response.json.get("errors", [])
    return errors


def test_too_many_aliases(client: FlaskClient) -> None:
    fields = " ".join(
        f'a{i}: dicomMetadata(s3Path: "s3://data-apps-ex/dicom/{i}.dcm") {{ modality }}' for i in range(MAX_ALIASES + 1)
    )
    errors = gql_errors(client, f"{{ {fields} }}")
    assert [e["extensions"]["code"] for e in errors] == ["GRAPHQL_VALIDATION_FAILED"]
    assert f"Allowed: {MAX_ALIASES}" in errors[0]["message"]


def test_aliases_up_to_the_limit_run(client: FlaskClient) -> None:
    fields = " ".join(f"a{i}: __typename" for i in range(MAX_ALIASES))
    assert gql_errors(client, f"{{ {fields} }}") == []


def test_too_many_tokens(client: FlaskClient) -> None:
    errors = gql_errors(client, "{ " + "__typename " * MAX_TOKENS + "}")
    assert [e["extensions"]["code"] for e in errors] == ["GRAPHQL_VALIDATION_FAILED"]
    assert f"more than {MAX_TOKENS} tokens" in errors[0]["message"]


def test_too_many_tokens_via_get(client: FlaskClient) -> None:
    response = client.get("/graphql", query_string={"query": "{ " + "__typename " * MAX_TOKENS + "}"})
    assert response.json and response.json["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


@strawberry.type
class Node:
    @strawberry.field
    def child(self) -> Node:
        return Node()

    name: str = "n"


@strawberry.type
class RecursiveQuery:
    @strawberry.field
    def root(self) -> Node:
        return Node()


def nested(depth: int) -> str:
    return "{ root { " + "child { " * (depth - 1) + "name" + " }" * depth + " }"


def test_the_depth_limit() -> None:
    # The service's schema is not deep enough to exceed the limit; the same limits on a
    # recursive schema show it is in force.
    recursive = strawberry.Schema(query=RecursiveQuery, extensions=LIMITS)
    assert not recursive.execute_sync(nested(MAX_QUERY_DEPTH)).errors
    errors = recursive.execute_sync(nested(MAX_QUERY_DEPTH + 1)).errors
    assert errors and f"exceeds maximum operation depth of {MAX_QUERY_DEPTH}" in errors[0].message


@pytest.mark.parametrize(
    "options",
    [
        {},
        {
            "descriptions": True,
            "specified_by_url": True,
            "directive_is_repeatable": True,
            "schema_description": True,
            "input_value_deprecation": True,
        },
    ],
)
def test_the_introspection_query_of_graphiql_still_runs(client: FlaskClient, options: dict[str, bool]) -> None:
    response = client.post("/graphql", json={"query": get_introspection_query(**options)})
    assert response.json is not None and "errors" not in response.json
    assert response.json["data"]["__schema"]["queryType"]["name"] == "Query"
