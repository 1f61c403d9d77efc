"""Fuzzing with schemathesis: the REST routes from /openapi.json, and /graphql from its schema.

Zero 5xx, every HTTP error in the contract's JSON shape, every GraphQL error with a contract
code. A short run here (``FUZZ_MAX_EXAMPLES``, 25 per operation); ``make fuzz`` runs thousands.
The app runs on an embedded AWS of its own (a separate process), so the documents the fuzzer
uploads and the records the Lambda stores never reach the other tests' bucket and table.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from flask import Flask
from graphql import (
    BooleanValueNode,
    FloatValueNode,
    IntValueNode,
    ListValueNode,
    NameNode,
    NullValueNode,
    ObjectFieldNode,
    ObjectValueNode,
    StringValueNode,
    ValueNode,
    build_schema,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.generation import GenerationMode

from app import create_app
from local import free_port
from local.process import LocalAWSProcess
from metadata import FIELDS
from rest.openapi import PATHS
from schema import schema as strawberry_schema
from seeds import SEED_UID_ROOT

MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "25"))
# The short run in `make test` is the same every time; `make fuzz` explores anew.
DERANDOMIZE = os.environ.get("FUZZ_RANDOM", "") == ""
KEY = "fuzz-key-7f3a9c1e"
AUTH = {"Authorization": f"Bearer {KEY}"}

# The contract's codes (docs/API.md), plus the two the HTTP and GraphQL layers add.
CONTRACT_CODES = frozenset(
    {
        "MISSING_PARAMETER",
        "INVALID_S3_PATH",
        "FORBIDDEN_BUCKET",
        "NOT_FOUND",
        "NOT_DICOM",
        "INVALID_PAYLOAD",
        "UNSUPPORTED_MEDIA_TYPE",
        "PAYLOAD_TOO_LARGE",
        "INVALID_ARGUMENT",
        "INVALID_CURSOR",
        "UNAUTHENTICATED",
        "METHOD_NOT_ALLOWED",
        "GRAPHQL_VALIDATION_FAILED",
    }
)

GRAPHQL = build_schema(strawberry_schema.as_str())

FUZZ_SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=DERANDOMIZE,
    database=None,
    suppress_health_check=list(HealthCheck),
)


NAMES = st.from_regex(r"\A[_A-Za-z][_0-9A-Za-z]{0,12}\Z")
SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text()
ANY_JSON = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(NAMES, inner, max_size=4), max_leaves=12
)
# Mostly documents shaped like an upload (s3_path and the five fields), some anything at all.
S3_PATHS = st.sampled_from(["s3://data-apps-ex/dicom/", "s3://data-apps-ex/", "s3://other/", ""]).flatmap(
    lambda prefix: st.text(max_size=40).map(lambda rest: prefix + rest)
)
DOCUMENTS = st.fixed_dictionaries(
    {"s3_path": S3_PATHS | ANY_JSON},
    optional={field: st.none() | st.text(max_size=80) | ANY_JSON for field in FIELDS},
)


BUCKET_PREFIX = re.compile(r"^s3://[^/]+/")
OUR_PREFIXES = ["s3://data-apps-ex/", "s3://data-apps-ex/dicom/", f"s3://data-apps-ex/dicom/anon-{SEED_UID_ROOT}"]


def as_graphql_value(value: Any) -> ValueNode:
    """Return the GraphQL literal of a JSON value (the JSON scalar reads literals this way)."""
    if value is None:
        return NullValueNode()
    if isinstance(value, bool):
        return BooleanValueNode(value=value)
    if isinstance(value, int):
        return IntValueNode(value=str(value))
    if isinstance(value, float):
        return FloatValueNode(value=repr(value))
    if isinstance(value, str):
        return StringValueNode(value=value)
    if isinstance(value, list):
        return ListValueNode(values=tuple(as_graphql_value(item) for item in value))
    return ObjectValueNode(
        fields=tuple(
            ObjectFieldNode(name=NameNode(value=key), value=as_graphql_value(item)) for key, item in value.items()
        )
    )


schemathesis.graphql.scalar("JSON", (DOCUMENTS | ANY_JSON).map(as_graphql_value))


# Cases run per API, and the answers checked by HTTP status (the checks also see the extra
# requests schemathesis makes, such as one without the key): printed at the end.
CASES: Counter[str] = Counter()
STATUSES: Counter[int] = Counter()


@pytest.fixture(scope="module", autouse=True)
def fuzz_summary() -> Iterator[None]:
    yield
    print(
        f"\nfuzz: {dict(CASES)} cases; {sum(STATUSES.values())} answers checked, "
        f"by status {dict(sorted(STATUSES.items()))}"
    )


@pytest.fixture(scope="module")
def fuzz_app() -> Iterator[Flask]:
    """The app, with an API key, on an embedded AWS process of its own."""
    with LocalAWSProcess(free_port()) as aws:
        yield create_app({"AWS_ENDPOINT_URL": aws.endpoint_url, "AWS_CREDENTIALS": aws.credentials, "API_KEYS": [KEY]})


@pytest.fixture(scope="module")
def openapi_schema(fuzz_app: Flask) -> Any:
    return schemathesis.openapi.from_wsgi("/openapi.json", fuzz_app, headers=AUTH)


@pytest.fixture(scope="module")
def graphql_schema(fuzz_app: Flask) -> Any:
    return schemathesis.graphql.from_wsgi("/graphql", fuzz_app, headers=AUTH)


def assert_contract_error(response: Any) -> None:
    """An HTTP error answer: JSON ``{"error": {code, message, request_id}}``, never a 5xx."""
    assert response.status_code < 500, f"server error {response.status_code}: {response.text[:300]}"
    if response.status_code < 400:
        return
    body = response.json()
    error = body["error"]
    assert error["code"] in CONTRACT_CODES, error
    assert error["message"] and isinstance(error["message"], str)
    assert [error["request_id"]] == response.headers["x-request-id"]  # lower-case names, lists of values


@schemathesis.check
def contract_error_format(ctx: Any, response: Any, case: Any) -> bool | None:
    """Every 4xx (and any 5xx) in the contract's JSON error format."""
    STATUSES[response.status_code] += 1
    assert_contract_error(response)
    return None


@schemathesis.check
def graphql_contract(ctx: Any, response: Any, case: Any) -> bool | None:
    """HTTP errors in the contract's format; GraphQL errors each with a contract code."""
    STATUSES[response.status_code] += 1
    assert_contract_error(response)
    if response.status_code >= 400:
        return None
    # Registered checks see every operation's answers: a DICOMweb answer is a JSON array.
    body = response.json()
    errors = (body.get("errors") if isinstance(body, dict) else None) or []
    for error in errors:
        code = error.get("extensions", {}).get("code")
        assert code in CONTRACT_CODES, f"error without a contract code: {error}"
    return None


# Operations are listed from the documents themselves, without the app: schemathesis' lazy
# `from_fixture` loader does not work with pytest 9.2 (it sets the removed `_nodeid`), so the
# cases come from each operation's Hypothesis strategy instead.
def steer_into_bucket(case: Any, data: st.DataObject) -> None:
    """Point half the generated s3 paths into the service's bucket.

    Generated buckets are almost never ``data-apps-ex``, so nearly every case would stop at
    403 FORBIDDEN_BUCKET; in the bucket they reach S3, pydicom and DynamoDB.
    """
    holders = [holder for holder in (case.query, case.body) if isinstance(holder, dict)]
    for holder in holders:
        path = holder.get("s3_path")
        if isinstance(path, str) and BUCKET_PREFIX.match(path) and data.draw(st.booleans(), label="steer"):
            holder["s3_path"] = BUCKET_PREFIX.sub(data.draw(st.sampled_from(OUR_PREFIXES), label="prefix"), path)


# Rules the document cannot state: a cursor is valid only as the server made it, and a date
# range must not end before it starts; a QIDO-RS search takes at most 100 UID and modality
# combinations and UIDs of at most 64 characters. Schema-valid cases of these may rightly get a 400.
CROSS_FIELD_RULES = {"/search-metadata", *(path for path in PATHS if path.startswith("/dicomweb/"))}


# Negative cases need something to break: operations without inputs get positive ones only.
REST_OPERATIONS = [
    (method.upper(), path, mode)
    for path, item in PATHS.items()
    for method, operation in item.items()
    for mode in (
        [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
        if "parameters" in operation or "requestBody" in operation
        else [GenerationMode.POSITIVE]
    )
]
GRAPHQL_FIELDS = [
    (root.name, field) for root in (GRAPHQL.query_type, GRAPHQL.mutation_type) if root for field in root.fields
]
MODES = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]


@pytest.mark.parametrize(("method", "path", "mode"), REST_OPERATIONS)
def test_rest_routes(openapi_schema: Any, method: str, path: str, mode: GenerationMode) -> None:
    operation = openapi_schema[path][method]

    @given(case=operation.as_strategy(generation_mode=mode), data=st.data())
    @FUZZ_SETTINGS
    def run(case: Any, data: st.DataObject) -> None:
        CASES["rest"] += 1
        steer_into_bucket(case, data)
        excluded = [schemathesis.checks.positive_data_acceptance] if path in CROSS_FIELD_RULES else []
        case.call_and_validate(headers=AUTH, additional_checks=[contract_error_format], excluded_checks=excluded)

    run()


@pytest.mark.parametrize("mode", MODES, ids=str)
@pytest.mark.parametrize(("root", "field"), GRAPHQL_FIELDS)
def test_graphql(graphql_schema: Any, root: str, field: str, mode: GenerationMode) -> None:
    operation = graphql_schema[root][field]

    @given(case=operation.as_strategy(generation_mode=mode))
    @FUZZ_SETTINGS
    def run(case: Any) -> None:
        CASES["graphql"] += 1
        # Schemathesis' own GraphQL checks count any error with a path as a server error;
        # here NOT_FOUND or FORBIDDEN_BUCKET for a generated path is the right answer, so the
        # check is ours: no 5xx, and every error carries a contract code (INTERNAL is not one).
        response = case.call(headers=AUTH)
        case.validate_response(response, checks=[graphql_contract], headers=AUTH)

    run()
