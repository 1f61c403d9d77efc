"""The GraphiQL page without a browser: its assets, its fallback and its example query."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from schema.examples import EXAMPLE_QUERY, example_variables
from schema.graphiql import OWN_ASSETS, URL_PREFIX, VENDOR_ASSETS, missing_assets

BROWSER = {"Accept": "text/html"}


@pytest.fixture(scope="module", autouse=True)
def _assets_installed(app: Flask) -> None:
    if missing_assets(Path(app.config["GRAPHIQL_NODE_MODULES"])):
        pytest.fail("GraphiQL's assets are missing: run `make test`, which runs `npm ci`")


def test_page_loads_only_local_assets(client: FlaskClient) -> None:
    page = client.get("/graphql", headers=BROWSER)
    assert page.status_code == 200
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources, "the page links no assets"
    assert all(src.startswith(f"{URL_PREFIX}/") or src.startswith("data:") for src in sources), sources
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]


@pytest.mark.parametrize("name", [*VENDOR_ASSETS, *OWN_ASSETS])
def test_every_asset_is_served(client: FlaskClient, name: str) -> None:
    response = client.get(f"{URL_PREFIX}/{name}")
    assert response.status_code == 200
    assert response.mimetype in {"text/javascript", "application/javascript", "text/css"}
    assert response.data


@pytest.mark.parametrize("name", ["index.js", "package.json", "..%2Fpackage.json", "%2Fetc%2Fpasswd"])
def test_only_allow_listed_files_are_served(client: FlaskClient, name: str) -> None:
    response = client.get(f"{URL_PREFIX}/{name}")
    assert response.status_code == 404
    assert response.json and response.json["error"]["code"] == "NOT_FOUND"


def test_without_assets_falls_back_to_strawberrys_page(
    app: Flask,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="schema.graphiql"):
        bare = create_app(
            {"TESTING": True, "MANAGERS": app.extensions["dicom_meta.managers"], "GRAPHIQL_NODE_MODULES": tmp_path}
        )
        client = bare.test_client()
        pages = [client.get("/graphql", headers=BROWSER) for _ in range(2)]
    assert all(page.status_code == 200 and "unpkg.com/graphiql" in page.text for page in pages)
    warnings = [record for record in caplog.records if "falls back to Strawberry's page" in record.getMessage()]
    assert len(warnings) == 1, "the reason is logged once, at startup, not per page"
    assert client.get(f"{URL_PREFIX}/graphiql.min.js").status_code == 404


def test_example_query_runs_on_the_seeded_data(client: FlaskClient) -> None:
    response = client.post("/graphql", json={"query": EXAMPLE_QUERY, "variables": example_variables()})
    body = response.json
    assert body is not None and "errors" not in body, body
    live = body["data"]["live"]
    assert live["s3Path"] == example_variables()["s3Path"]
    assert (live["patientId"], live["modality"], live["studyDate"]) == ("PAT-0001", "CT", "20240115")


def test_example_lists_the_seeded_studies_with_their_series(client: FlaskClient) -> None:
    from tests.test_end_to_end import eventually

    seed = example_variables()["s3Path"]
    header = client.post(
        "/graphql",
        json={
            "query": 'query($p: String!) { dicomMetadata(s3Path: $p) { dicomJson(keywords: ["StudyInstanceUID"]) } }',
            "variables": {"p": seed},
        },
    ).json
    assert header is not None and "errors" not in header, header
    seed_study = header["data"]["dicomMetadata"]["dicomJson"]["0020000D"]["Value"][0]

    def find_seed_study() -> dict[str, Any] | None:
        """Page through the example's study list as a user would (nextCursor into `after`)."""
        variables = example_variables()
        for _ in range(100):  # other tests' studies may come first in this shared archive
            answer = client.post("/graphql", json={"query": EXAMPLE_QUERY, "variables": variables}).json
            assert answer is not None and "errors" not in answer, answer
            studies = answer["data"]["studies"]
            for study in studies["items"]:
                if study["studyInstanceUid"] == seed_study:
                    found: dict[str, Any] = study
                    return found
            if studies["nextCursor"] is None:
                return None
            variables = {**variables, "after": studies["nextCursor"]}
        return None

    study = eventually(find_seed_study)
    assert study is not None, "the seeded study is not in the example's study list"
    assert study == {
        "studyInstanceUid": seed_study,
        "patientName": "Doe^Jane",
        "patientId": "PAT-0001",
        "studyDate": "20240115",
        "studyDescription": "CHEST WITHOUT CONTRAST",
        "modalitiesInStudy": ["CT"],
        "numberOfSeries": 1,
        "numberOfInstances": 1,
        "series": [{"seriesNumber": None, "modality": "CT", "seriesDescription": "AXIAL 5MM", "numberOfInstances": 1}],
    }
