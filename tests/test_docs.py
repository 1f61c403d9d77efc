"""The docs say what the code does: API.md names every route and error code, schema.graphql
is the served schema, and the lists and numbers ARCHITECTURE.md and operations.md repeat
(IAM actions, the zip, timeouts) are the code's. The README stays a front page, and every
relative link of the markdown pages leads to a file of the repository."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

import errors
import rest.errors
from deploy.build_lambda_zip import archive_name, package_files
from schema.export import SDL_FILE, sdl
from seeds import seeded_s3_path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
API = (DOCS / "API.md").read_text(encoding="utf-8")
ARCHITECTURE = (DOCS / "ARCHITECTURE.md").read_text(encoding="utf-8")
LAMBDA_POLICY = ROOT / "deploy" / "lambda-policy.json"


def test_api_md_names_every_served_route(client: FlaskClient) -> None:
    document = client.get("/openapi.json").json
    assert document is not None
    routes = {f"`{method.upper()} {path}`" for path, item in document["paths"].items() for method in item}
    routes |= {"`GET /graphql`", "`POST /graphql`"}
    assert {route for route in routes if route not in API} == set()


def every_error_code() -> set[str]:
    """Every code the service can answer: the domain errors', Flask's refusals', GraphQL's."""
    domain = {
        cls.code for cls in vars(errors).values() if isinstance(cls, type) and issubclass(cls, errors.DicomMetaError)
    }
    return domain | set(rest.errors._HTTP_CODES.values()) | {"GRAPHQL_VALIDATION_FAILED", "INTERNAL"}


def test_api_md_names_every_error_code() -> None:
    codes = every_error_code()
    assert "INVALID_CURSOR" in codes and "METHOD_NOT_ALLOWED" in codes
    assert {code for code in codes if f"`{code}`" not in API} == set()


def test_schema_graphql_is_the_served_schema() -> None:
    assert SDL_FILE.read_text(encoding="utf-8") == sdl(), "docs/schema.graphql is stale: run `make docs`"


def table_rows(text: str, after: str, until: str) -> list[list[str]]:
    """Return the cells of the markdown table rows between two markers of ``text``."""
    section = text[text.index(after) : text.index(until, text.index(after))]
    rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| ---")]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows[1:]]


def test_the_lambda_policy_table_is_the_policy() -> None:
    rows = table_rows(ARCHITECTURE, "grants exactly what the handler does", "Without `s3:ListBucket`, a missing")
    documented = {action for row in rows for action in re.findall(r"`([a-z0-9]+:\w+)`", row[0])}
    policy = json.loads(LAMBDA_POLICY.read_text())
    granted = {action for statement in policy["Statement"] for action in statement["Action"]}
    assert documented == granted


def test_the_zip_module_list_is_the_builders() -> None:
    start = ARCHITECTURE.index("module it reaches: today")
    listed = set(
        re.findall(r"`([\w/]+\.py)`", ARCHITECTURE[start : ARCHITECTURE.index("(`tests/test_docs.py` checks", start)])
    )
    shipped = {archive_name(path) for path in package_files().files} - {"lambda_function.py"}
    assert sorted(listed) == sorted(shipped)


# The IAM action each AWS call needs (HeadBucket and ListObjectsV2 are authorised as ListBucket).
IAM_ACTION = {
    "GetObject": "s3:GetObject",
    "PutObject": "s3:PutObject",
    "ListObjectsV2": "s3:ListBucket",
    "HeadBucket": "s3:ListBucket",
    "GetItem": "dynamodb:GetItem",
    "Query": "dynamodb:Query",
    "DescribeTable": "dynamodb:DescribeTable",
}


@pytest.fixture
def api_calls(app: Flask) -> Iterator[set[str]]:
    """Record the AWS operations the app's clients make while the test runs."""
    calls: set[str] = set()
    managers = app.extensions["dicom_meta.managers"]

    def record(model: Any, **_: Any) -> None:
        calls.add(model.name)

    clients = [managers.s3.client, managers.dynamodb.client]
    for client in clients:
        client.meta.events.register("before-call", record, unique_id="test-docs-calls")
    try:
        yield calls
    finally:
        for client in clients:
            client.meta.events.unregister("before-call", unique_id="test-docs-calls")


def test_the_api_iam_table_lists_every_call_the_api_makes(client: FlaskClient, api_calls: set[str]) -> None:
    path = seeded_s3_path(1)
    live = client.get("/dicom-metadata", query_string={"s3_path": path})
    assert live.status_code == 200
    assert client.post("/upload-json-to-s3", json=live.json).status_code == 201
    client.get("/fetch-dicom-metadata", query_string={"s3_path": path})
    for params in ({"PatientID": "PAT-0001"}, {"StudyDate": "20240101-"}, {"InstitutionName": "x"}):
        assert client.get("/search-metadata", query_string=params).status_code == 200
    assert client.get("/ready").status_code == 200
    query = (
        "query($p: String!) { dicomFiles(first: 1) { items { s3Path } }"
        " dicomMetadataBatch(s3Paths: [$p]) { __typename } }"
    )
    answer = client.post("/graphql", json={"query": query, "variables": {"p": path}}).json
    assert answer is not None and "errors" not in answer
    # The presigned PUT goes through requests, not a boto3 call: the table lists it all the same.
    api_calls.add("PutObject")
    rows = table_rows(ARCHITECTURE, "What the API's own keys need", "Without `s3:ListBucket`, S3 answers")
    documented = {row[0].strip("`"): row[1].strip("`") for row in rows}
    assert api_calls <= set(IAM_ACTION), f"a call this test cannot map: {api_calls - set(IAM_ACTION)}"
    assert {call: IAM_ACTION[call] for call in api_calls} == {call: documented.get(call) for call in api_calls}


def test_the_operations_page_timeouts_are_the_clients() -> None:
    from managers.aws.clients import CONNECT_TIMEOUT, MAX_ATTEMPTS, READ_TIMEOUT
    from managers.S3Manager import UPLOAD_TIMEOUT

    operations = " ".join((DOCS / "operations.md").read_text(encoding="utf-8").split())
    assert f"tried {MAX_ATTEMPTS} times in all" in operations
    assert f"(connect timeout {CONNECT_TIMEOUT:g} s, read timeout {READ_TIMEOUT:g} s," in operations
    connect, read = UPLOAD_TIMEOUT
    assert f"the presigned upload has {connect:g} s to connect and {read:g} s to answer" in operations


README_MAX_LINES = 160


def test_the_readme_is_a_front_page() -> None:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, "README.md is a front page: move the details to docs/"


def markdown_pages() -> list[Path]:
    """The pages whose links must resolve: the README, the changelog, bench/'s and docs/'s."""
    return [ROOT / "README.md", ROOT / "CHANGELOG.md", ROOT / "bench" / "README.md", *sorted(DOCS.glob("*.md"))]


# Fenced code blocks and inline code, where a `](` is text, not a link.
_CODE = re.compile(r"^[ \t]*(```|~~~).*?^[ \t]*\1[^\n]*$|`[^`\n]*`", re.DOTALL | re.MULTILINE)
_LINK = re.compile(
    r"""
    \]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)   # an inline link or image: [text](target "title")
    | ^[ ]{0,3}\[[^\]]+\]:[ \t]*<?(\S+?)>?(?:\s|$)  # a reference definition: [name]: target
    """,
    re.MULTILINE | re.VERBOSE,
)


def relative_links(text: str) -> list[str]:
    """Return the link targets of markdown ``text`` that point into the repository."""
    prose = _CODE.sub("", text)
    targets = [inline or reference for inline, reference in _LINK.findall(prose)]
    return [target for target in targets if not re.match(r"[a-z][a-z0-9+.-]*:|#", target, re.IGNORECASE)]


def test_relative_links_finds_paths_not_urls_anchors_or_code() -> None:
    text = (
        "[a](docs/API.md) [b](API.md#dicomweb) ![c](graphiql.png) [d](https://example.org/x.md)\n"
        "[e](#layout) [f](mailto:x@example.org) `[g](nowhere.md)`\n"
        "```\n[h](nowhere.md)\n```\n[i]: ../bench/README.md\n"
    )
    assert relative_links(text) == ["docs/API.md", "API.md#dicomweb", "graphiql.png", "../bench/README.md"]


@pytest.mark.parametrize("page", markdown_pages(), ids=lambda page: str(page.relative_to(ROOT)))
def test_every_relative_link_leads_to_a_file_of_the_repository(page: Path) -> None:
    broken = []
    for target in relative_links(page.read_text(encoding="utf-8")):
        path = target.split("#", 1)[0]
        resolved = (ROOT / path.lstrip("/") if path.startswith("/") else page.parent / path).resolve()
        if not (resolved.is_file() and resolved.is_relative_to(ROOT)):
            broken.append(target)
    assert broken == [], f"{page.relative_to(ROOT)} links to what the repository does not hold"
