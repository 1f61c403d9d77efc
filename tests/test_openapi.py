"""The OpenAPI document: served, complete, and saying what the contract says."""

from __future__ import annotations

import re
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

# Routes that are not REST operations of the document: GraphQL and GraphiQL's static files.
NOT_REST = {"/graphql", "/static/<path:filename>"}
NOT_REST_BLUEPRINTS = ("graphiql.",)


def test_every_rest_route_is_documented(app: Flask, client: FlaskClient) -> None:
    # A route added to the app but not to rest/openapi.py PATHS fails here (and is not fuzzed).
    document = client.get("/openapi.json").json
    assert document is not None
    served = {
        (openapi_path(rule.rule), method.lower())
        for rule in app.url_map.iter_rules()
        if rule.rule not in NOT_REST and not rule.endpoint.startswith(NOT_REST_BLUEPRINTS)
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}
    }
    documented = {(path, method) for path, item in document["paths"].items() for method in item}
    assert served == documented


def openapi_path(rule: str) -> str:
    """Return a Flask rule as OpenAPI writes the path: ``<study>`` becomes ``{study}``."""
    return re.sub(r"<(?:[a-z_]+:)?([a-z_]+)>", r"{\1}", rule)


def test_statuses_match_the_contract(client: FlaskClient) -> None:
    paths = openapi_paths(client)

    def statuses(path: str, method: str) -> set[str]:
        return set(paths[path][method]["responses"])

    assert statuses("/health", "get") == {"200"}
    assert statuses("/ready", "get") == {"200", "503"}
    assert statuses("/dicom-metadata", "get") == {"200", "400", "401", "403", "404", "422", "503"}
    assert statuses("/fetch-dicom-metadata", "get") == {"200", "400", "401", "403", "404", "503"}
    assert statuses("/upload-json-to-s3", "post") == {"201", "400", "401", "403", "413", "415", "503"}
    assert statuses("/search-metadata", "get") == {"200", "400", "401", "503"}
    assert statuses("/dicomweb/studies", "get") == {"200", "400", "401", "503"}
    assert statuses("/dicomweb/studies/{study}/metadata", "get") == {"200", "400", "401", "404", "503"}
    for item in paths.values():
        for operation in item.values():
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")):
                    assert response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}


def test_probes_need_no_key(client: FlaskClient) -> None:
    paths = openapi_paths(client)
    assert paths["/health"]["get"]["security"] == [] and paths["/ready"]["get"]["security"] == []
    assert "security" not in paths["/dicom-metadata"]["get"]  # the document's default: a key


def openapi_paths(client: FlaskClient) -> dict[str, Any]:
    document = client.get("/openapi.json").json
    assert document is not None
    paths: dict[str, Any] = document["paths"]
    return paths
