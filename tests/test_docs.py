"""The docs say what the code does: API.md names every route and error code, schema.graphql
is the served schema, and the lists and numbers ARCHITECTURE.md and operations.md repeat
(IAM actions, the zips, indexes, shards, timeouts, the functions' settings, the layering) are
the code's. The README stays a front page, every relative link of the markdown pages leads to
a file of the repository, and every file ARCHITECTURE.md names is one."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

import errors
import rest.errors
from deploy.build_lambda_zip import archive_name, imported_names, package_files
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


# --- ARCHITECTURE.md's other statements, tied to the code -----------------------------------

# The page's prose with every run of whitespace made one space: a sentence checked here may wrap.
ARCHITECTURE_PROSE = " ".join(ARCHITECTURE.split())


def between(text: str, after: str, until: str) -> str:
    """Return the part of ``text`` from ``after`` up to the first ``until`` behind it."""
    start = text.index(after)
    return text[start : text.index(until, start)]


def policy_actions(path: Path) -> set[str]:
    """Return every action an IAM policy document of deploy/ grants."""
    policy = json.loads(path.read_text())
    return {action for statement in policy["Statement"] for action in statement["Action"]}


def repository_files() -> list[str]:
    """Return the repository's files (``git ls-files``), relative to its root, that exist on disk.

    Outside a git checkout, every file under the root but the tools' own folders.
    """
    try:
        listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
        names = [name for name in listed.decode().split("\0") if name]
    except (OSError, subprocess.CalledProcessError):
        skipped = {".git", ".venv", "node_modules", "build", "__pycache__"}
        names = [
            path.relative_to(ROOT).as_posix()
            for path in ROOT.rglob("*")
            if path.is_file() and not skipped & set(path.relative_to(ROOT).parts)
        ]
    return sorted(name for name in names if (ROOT / name).is_file())


_COUNTS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9}


def test_architecture_states_the_tables_indexes() -> None:
    from managers.store.table import INDEXES, RETIRED_INDEXES

    stated = re.findall(r"\b(\d+|[a-z]+) (?:global secondary|search) indexes\b", ARCHITECTURE_PROSE, re.IGNORECASE)
    counts = {int(word) if word.isdigit() else _COUNTS.get(word.lower()) for word in stated}
    assert counts == {len(INDEXES)}, f"the page counts the indexes as {sorted(stated)}, the code has {len(INDEXES)}"
    assert f"The table has {len(INDEXES)} global secondary indexes (`INDEXES` in `managers/store/table.py`" in (
        ARCHITECTURE_PROSE
    )
    rows = table_rows(ARCHITECTURE, "The table has ", "`StudyDateKey` is")

    def first_code(cell: str) -> str | None:
        found = re.match(r"`([^`]+)`", cell)
        return found[1] if found else None

    documented = {row[0].strip("`"): (first_code(row[1]), first_code(row[2])) for row in rows}
    assert documented == INDEXES
    assert [name for name in RETIRED_INDEXES if f"`{name}`" not in ARCHITECTURE] == []


def test_architecture_states_the_shards() -> None:
    from managers.store.table import SHARDS

    stated = re.findall(r"`SHARDS` = (\d+)", ARCHITECTURE_PROSE)
    assert stated and {int(number) for number in stated} == {SHARDS}
    # The search table's partition key values: <value>#0..SHARDS-1.
    last_shards = re.findall(r"#0\.\.(\d+)", ARCHITECTURE)
    assert last_shards and {int(number) for number in last_shards} == {SHARDS - 1}


def test_architecture_timeouts_and_sizes_are_the_codes() -> None:
    from managers.aws.clients import CONNECT_TIMEOUT, MAX_ATTEMPTS, READ_TIMEOUT
    from managers.dicom.ranged import FIRST_REQUEST
    from managers.S3Manager import PRESIGNED_URL_EXPIRY

    assert (
        f"{MAX_ATTEMPTS} attempts in all, {CONNECT_TIMEOUT:g} s to connect and {READ_TIMEOUT:g} s to read"
        in ARCHITECTURE_PROSE
    )
    assert f"a {PRESIGNED_URL_EXPIRY}-second life" in ARCHITECTURE_PROSE
    assert f"`FIRST_REQUEST` ({FIRST_REQUEST // 1024} KiB)" in ARCHITECTURE_PROSE


def shell_settings(path: Path) -> dict[str, str]:
    """Return the top-level ``NAME=value`` assignments of a bash script."""
    return dict(re.findall(r"^([A-Z_]+)=(\S+)$", path.read_text(), re.MULTILINE))


def test_the_function_table_and_the_steps_are_what_deploy_does() -> None:
    settings = shell_settings(ROOT / "deploy" / "deploy_resources.sh")
    rows = table_rows(ARCHITECTURE, "The two functions, as deploy creates them", "1. **Bucket.**")
    assert [(row[1].strip("`"), row[2], row[3]) for row in rows] == [
        (settings["HANDLER"], f"{settings['TIMEOUT']} s", f"{settings['MEMORY']} MB"),
        (settings["INDEXER_HANDLER"], f"{settings['INDEXER_TIMEOUT']} s", f"{settings['INDEXER_MEMORY']} MB"),
    ]
    assert f"both on `{settings['RUNTIME']}`" in ARCHITECTURE_PROSE
    assert f"then runs {settings['STEPS']} steps" in ARCHITECTURE_PROSE
    steps = re.findall(
        r"^(\d+)\. \*\*", between(ARCHITECTURE, "## Deployment, step by step", "The run ends with"), re.M
    )
    assert steps == [str(number) for number in range(1, int(settings["STEPS"]) + 1)]


@pytest.mark.parametrize(
    ("policy", "after", "until"),
    [
        (
            "indexer-policy.json",
            "(`deploy/indexer-policy.json`) grants exactly",
            "Without `s3:ListBucket`, the indexer",
        ),
        ("fan-out-policy.json", "(`deploy/fan-out-policy.json`) grants exactly", "These are AWS's documented needs"),
    ],
)
def test_the_indexer_and_fan_out_policy_tables_are_their_policies(policy: str, after: str, until: str) -> None:
    rows = table_rows(ARCHITECTURE, after, until)
    documented = {action for row in rows for action in re.findall(r"`([a-z0-9]+:\w+)`", row[0])}
    assert documented == policy_actions(ROOT / "deploy" / policy)


def test_the_fan_out_numbers_are_the_definitions() -> None:
    from deploy.fan_out import MAX_CONCURRENCY, MAX_ITEMS_PER_BATCH, TASK_TIMEOUT_SECONDS, TOLERATED_FAILURE_PERCENTAGE

    for stated in (
        f"`MaxItemsPerBatch` {MAX_ITEMS_PER_BATCH},",
        f"`MaxConcurrency` {MAX_CONCURRENCY} ",
        f"`ToleratedFailurePercentage` {TOLERATED_FAILURE_PERCENTAGE}:",
        f"a {TASK_TIMEOUT_SECONDS}-second task timeout",
    ):
        assert stated in ARCHITECTURE_PROSE


# Where the page's prose puts the API's layers, above the managers.
ABOVE_MANAGERS = ("app.py", "web/", "rest/", "schema/", "resolvers/")


def test_architecture_names_what_imports_aws_and_pydicom_above_the_managers() -> None:
    imports = {
        name: {imported.split(".")[0] for imported in imported_names(ROOT / name)}
        for name in repository_files()
        if name.endswith(".py") and name.startswith(ABOVE_MANAGERS)
    }
    assert "resolvers/paging.py" in imports and "app.py" in imports
    assert [name for name, tops in imports.items() if tops & {"boto3", "botocore"}] == []
    importing_pydicom = {name for name, tops in imports.items() if "pydicom" in tops}
    section = between(ARCHITECTURE_PROSE, "import pydicom directly:", "(`tests/test_docs.py` checks both)")
    assert set(re.findall(r"`([\w/]+\.py)`", section)) == importing_pydicom


def test_no_listing_uses_scan() -> None:
    assert "No listing uses Scan" in ARCHITECTURE_PROSE
    diagrams = re.findall(r"^```mermaid\n(.*?)^```", ARCHITECTURE, re.DOTALL | re.MULTILINE)
    assert len(diagrams) >= 3
    assert [diagram for diagram in diagrams if re.search(r"\bScan\b", diagram)] == []
    # The code agrees: the one Scan is the backfill's, as the page says.
    scan_call = re.compile(r"""get_paginator\(\s*["']scan["']|\.scan\(""")
    scanning = [
        name
        for name in repository_files()
        if name.endswith(".py")
        and not name.startswith("tests/")
        and scan_call.search((ROOT / name).read_text(encoding="utf-8"))
    ]
    assert scanning == ["deploy/backfill.py"]
    assert "The one Scan in the repository is `deploy/backfill.py`'s" in ARCHITECTURE_PROSE


# Backticked names that are no file of the repository by design: S3 keys (prefixes of the
# bucket) and the credentials file nobody commits.
S3_PREFIXES = ("json/", "dicom/", "index-results/")
NOT_COMMITTED = {"secrets.json"}
_FILE_PATH = re.compile(r"[\w.-]+(?:/[\w.-]+)*\.(?:py|sh|json|md)")


def test_every_file_architecture_names_is_in_the_repository() -> None:
    files = repository_files()
    names = {Path(name).name for name in files}
    mentioned = {
        code
        for code in re.findall(r"`([^`\n]+)`", ARCHITECTURE)
        if _FILE_PATH.fullmatch(code) and not code.startswith(S3_PREFIXES) and code not in NOT_COMMITTED
    }
    assert "managers/store/table.py" in mentioned
    # A path must be one; a bare name (the zip's lambda_function.py) must be some file's name.
    missing = {code for code in mentioned if code not in (files if "/" in code else names)}
    assert missing == set()


def test_no_file_cites_a_design_document_the_repository_lacks() -> None:
    cited = "DESIGN" + ".md"  # spelled apart, so that this file does not cite it either
    files = repository_files()
    assert [name for name in files if Path(name).name == cited] == []
    citing = [name for name in files if cited.encode() in (ROOT / name).read_bytes()]
    assert citing == [], "the contract is docs/API.md"


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
