"""API keys and CORS: who may call, from which browser origins, and what a refusal looks like."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from local.server import LocalAWS
from schema import graphiql
from web.auth import key_matches, keys_from_environment
from web.cors import parse_origins

KEY, OTHER_KEY = "k-3f9a1c7e5b2d4f60", "k-second-0a1b2c3d4e"
SEEDED = "s3://data-apps-ex/dicom/anon-1.2.826.0.1.3680043.8.498.1.1.dcm"
ORIGIN = "https://viewer.example.org"


def assert_unauthenticated(response: Any) -> None:
    assert response.status_code == 401, response.get_data(as_text=True)
    assert response.json["error"]["code"] == "UNAUTHENTICATED"
    assert response.json["error"]["request_id"] == response.headers["X-Request-ID"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.fixture(scope="module")
def secured_app(local_aws: LocalAWS) -> Flask:
    """The app with two API keys and one allowed browser origin."""
    return create_app(
        {
            "TESTING": True,
            "AWS_ENDPOINT_URL": local_aws.endpoint_url,
            "AWS_CREDENTIALS": local_aws.credentials,
            "API_KEYS": [KEY, OTHER_KEY],
            "CORS_ORIGINS": ORIGIN,
        }
    )


@pytest.fixture
def secured(secured_app: Flask) -> FlaskClient:
    return secured_app.test_client()


GRAPHQL_QUERY = {"query": f'{{ dicomMetadata(s3Path: "{SEEDED}") {{ modality }} }}'}
GUARDED = [
    ("GET", "/dicom-metadata", {"query_string": {"s3_path": SEEDED}}),
    ("GET", "/fetch-dicom-metadata", {"query_string": {"s3_path": SEEDED}}),
    ("POST", "/upload-json-to-s3", {"json": {"s3_path": SEEDED}}),
    ("POST", "/graphql", {"json": GRAPHQL_QUERY}),
    ("GET", "/graphql", {"query_string": GRAPHQL_QUERY, "headers": {"Accept": "text/html"}}),
    ("GET", "/openapi.json", {}),
    ("GET", "/no-such-route", {}),
]


@pytest.mark.parametrize(("method", "route", "kwargs"), GUARDED)
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"X-API-Key": "wrong"},
        {"Authorization": f"Basic {KEY}"},
        {"Authorization": "Bearer"},
        {"X-API-Key": KEY[:-1]},
        {"X-API-Key": KEY + "x"},
    ],
)
def test_every_route_refuses_a_missing_or_wrong_key(
    secured: FlaskClient, method: str, route: str, kwargs: dict[str, Any], headers: dict[str, str]
) -> None:
    kwargs = {**kwargs, "headers": {**kwargs.get("headers", {}), **headers}}
    assert_unauthenticated(secured.open(route, method=method, **kwargs))


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": f"Bearer {KEY}"},
        {"authorization": f"bearer {OTHER_KEY}"},
        {"X-API-Key": KEY},
        {"X-API-Key": OTHER_KEY},
    ],
)
def test_either_header_with_any_key_is_let_in(secured: FlaskClient, headers: dict[str, str]) -> None:
    assert secured.get("/dicom-metadata", query_string={"s3_path": SEEDED}, headers=headers).status_code == 200
    result = secured.post("/graphql", json=GRAPHQL_QUERY, headers=headers)
    assert result.json == {"data": {"dicomMetadata": {"modality": "CT"}}}


def test_nothing_runs_before_the_key_check(
    secured: FlaskClient, secured_app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    def must_not_run(*args: Any) -> None:
        raise AssertionError("a resolver ran without a key")

    monkeypatch.setattr(secured_app.extensions["dicom_meta.managers"].dicom, "extract_metadata", must_not_run)
    assert_unauthenticated(secured.get("/dicom-metadata", query_string={"s3_path": SEEDED}))
    assert_unauthenticated(secured.post("/graphql", json=GRAPHQL_QUERY))


def test_probes_and_the_graphiql_page_need_no_key(secured: FlaskClient) -> None:
    assert secured.get("/health").status_code == 200
    assert secured.get("/ready").json == {"s3": "ok", "dynamodb": "ok"}
    page = secured.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert "graphiql" in page.get_data(as_text=True).lower()


def test_graphiql_assets_need_no_key(local_aws: LocalAWS, tmp_path: Path) -> None:
    # GIVEN an app serving GraphiQL's own assets (here: stand-ins for what `npm ci` installs)
    for name in graphiql.VENDOR_ASSETS.values():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("/* asset */")
    app = create_app(
        {
            "AWS_ENDPOINT_URL": local_aws.endpoint_url,
            "AWS_CREDENTIALS": local_aws.credentials,
            "API_KEYS": [KEY],
            "GRAPHIQL_NODE_MODULES": tmp_path,
        }
    )
    client = app.test_client()
    # WHEN a browser loads the page and its scripts without a key THEN they are served
    assert client.get("/graphql", headers={"Accept": "text/html"}).status_code == 200
    for name in ("graphiql.min.js", "dicom-meta-graphiql.js"):
        assert client.get(f"{graphiql.URL_PREFIX}/{name}").status_code == 200, name
    # … while queries from that page still need one
    assert_unauthenticated(client.post("/graphql", json=GRAPHQL_QUERY))


def test_wrong_methods_answer_405_to_a_client_with_a_key(secured: FlaskClient) -> None:
    # Without a key a wrong method is refused like an unknown route: nothing is revealed.
    assert_unauthenticated(secured.delete("/health"))
    response = secured.delete("/health", headers={"X-API-Key": KEY})
    assert response.status_code == 405
    assert response.json and response.json["error"]["code"] == "METHOD_NOT_ALLOWED"
    # RFC 9110 15.5.6: a 405 lists the methods the route allows.
    assert set(response.headers["Allow"].split(", ")) >= {"GET", "HEAD", "OPTIONS"}


def test_keys_are_compared_whole() -> None:
    assert key_matches("abc", ["xyz", "abc"])
    assert not key_matches("ab", ["abc"])
    assert not key_matches("abcd", ["abc"])
    assert not key_matches("", ["abc"])
    assert key_matches("clé-ü", ["clé-ü"])


def test_keys_come_from_the_variable_and_the_file(tmp_path: Path) -> None:
    key_file = tmp_path / "keys"
    key_file.write_text("# rotated 2024\nfile-key-1\n\n  file-key-2  \n")
    assert keys_from_environment({}) is None
    assert keys_from_environment({"API_KEYS": " a, b ,,"}) == ("a", "b")
    assert keys_from_environment({"API_KEYS_FILE": str(key_file)}) == ("file-key-1", "file-key-2")
    assert keys_from_environment({"API_KEYS": "a", "API_KEYS_FILE": str(key_file)}) == ("a", "file-key-1", "file-key-2")


@pytest.mark.parametrize("environ", [{"API_KEYS": ""}, {"API_KEYS": " , "}, {"API_KEYS_FILE": "/nonexistent/keys"}])
def test_a_key_setting_without_keys_fails_closed(environ: dict[str, str]) -> None:
    with pytest.raises((ValueError, OSError)):
        keys_from_environment(environ)


def test_create_app_reads_the_keys_from_the_environment(local_aws: LocalAWS, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_KEYS", KEY)
    client = create_app(
        {"AWS_ENDPOINT_URL": local_aws.endpoint_url, "AWS_CREDENTIALS": local_aws.credentials}
    ).test_client()
    assert_unauthenticated(client.get("/dicom-metadata", query_string={"s3_path": SEEDED}))
    assert (
        client.get("/dicom-metadata", query_string={"s3_path": SEEDED}, headers={"X-API-Key": KEY}).status_code == 200
    )


def test_an_open_api_warns_at_startup(local_aws: LocalAWS, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        create_app(
            {"AWS_ENDPOINT_URL": local_aws.endpoint_url, "AWS_CREDENTIALS": local_aws.credentials, "API_KEYS": None}
        )
        create_app(
            {"AWS_ENDPOINT_URL": local_aws.endpoint_url, "AWS_CREDENTIALS": local_aws.credentials, "API_KEYS": [KEY]}
        )
    warnings = [r for r in caplog.records if "API_KEYS is not set" in r.getMessage()]
    assert len(warnings) == 1


# --- CORS -------------------------------------------------------------------------------------

PREFLIGHT = {
    "Origin": ORIGIN,
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization, content-type, x-request-id",
}


@pytest.mark.parametrize("route", ["/graphql", "/upload-json-to-s3", "/dicom-metadata"])
def test_preflight_from_an_allowed_origin_needs_no_key(secured: FlaskClient, route: str) -> None:
    response = secured.options(route, headers=PREFLIGHT)
    assert response.status_code in (200, 204)
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert {"GET", "POST"} <= set(response.headers["Access-Control-Allow-Methods"].split(", "))
    allowed = {h.strip().lower() for h in response.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "content-type", "x-request-id"} <= allowed


def test_preflight_allows_the_api_key_header(secured: FlaskClient) -> None:
    response = secured.options("/graphql", headers={**PREFLIGHT, "Access-Control-Request-Headers": "x-api-key"})
    assert response.headers["Access-Control-Allow-Headers"].lower() == "x-api-key"


def test_answers_to_an_allowed_origin_expose_the_request_id(secured: FlaskClient) -> None:
    ok = secured.post("/graphql", json=GRAPHQL_QUERY, headers={"Origin": ORIGIN, "X-API-Key": KEY})
    assert ok.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "X-Request-ID" in ok.headers["Access-Control-Expose-Headers"]
    # A browser app must be able to read the refusal too.
    refused = secured.post("/graphql", json=GRAPHQL_QUERY, headers={"Origin": ORIGIN})
    assert refused.status_code == 401
    assert refused.headers["Access-Control-Allow-Origin"] == ORIGIN


def test_other_origins_get_no_cors_headers(secured: FlaskClient) -> None:
    response = secured.options("/graphql", headers={**PREFLIGHT, "Origin": "https://evil.example.org"})
    assert "Access-Control-Allow-Origin" not in response.headers
    response = secured.get("/health", headers={"Origin": "https://viewer.example.org.evil.example"})
    assert "Access-Control-Allow-Origin" not in response.headers


def test_no_origin_is_allowed_by_default(client: FlaskClient) -> None:
    response = client.options("/graphql", headers=PREFLIGHT)
    assert "Access-Control-Allow-Origin" not in response.headers


def test_origins_setting() -> None:
    assert parse_origins(None) == []
    assert parse_origins("https://a.example, http://localhost:3000/ ,") == [
        "https://a.example",
        "http://localhost:3000",
    ]
    assert parse_origins("*") == ["*"]
    for bad in (
        "https://*.example.org",
        "a.example.org",
        "https://a.example|https://b.example(",
        "*,https://a.example",
    ):
        with pytest.raises(ValueError):
            parse_origins(bad)
