"""Faults: a dead, throttling or returning S3/DynamoDB, and the readiness check that reports them."""

from __future__ import annotations

import socket
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from local import free_port
from local.process import LocalAWSProcess
from local.server import LocalAWS
from managers.aws.clients import CONNECT_TIMEOUT, MAX_ATTEMPTS, READ_TIMEOUT, Credentials
from managers.bundle import Managers
from managers.DicomManager import DicomManager
from managers.DynamoDBManager import DynamoDBManager
from managers.S3Manager import UPLOAD_TIMEOUT, S3Manager
from seeds import SEED_UID_ROOT
from tests.bounds import PRESIGNED_PUT, UpstreamTries

SEEDED = f"s3://data-apps-ex/dicom/anon-{SEED_UID_ROOT}1.dcm"

# Every route that needs S3 or DynamoDB, as (method, route, request arguments, the upstream
# operations it makes before it can answer).
REST_CALLS: list[tuple[str, str, dict[str, Any], list[str]]] = [
    ("GET", "/dicom-metadata", {"query_string": {"s3_path": SEEDED}}, ["s3.GetObject"]),
    ("GET", "/fetch-dicom-metadata", {"query_string": {"s3_path": SEEDED}}, ["dynamodb.GetItem"]),
    ("POST", "/upload-json-to-s3", {"json": {"s3_path": SEEDED, "Modality": "CT"}}, [PRESIGNED_PUT]),
    ("GET", "/ready", {}, ["s3.HeadBucket", "dynamodb.DescribeTable"]),
]
GRAPHQL_CALLS: list[tuple[str, list[str]]] = [
    (f'{{ dicomMetadata(s3Path: "{SEEDED}") {{ modality }} }}', ["s3.GetObject"]),
    (f'{{ storedMetadata(s3Path: "{SEEDED}") {{ modality }} }}', ["dynamodb.GetItem"]),
    (f'mutation {{ uploadJson(payload: {{s3_path: "{SEEDED}", Modality: "CT"}}) {{ s3Path }} }}', [PRESIGNED_PUT]),
]


def call_all(app: Flask) -> list[tuple[str, Any]]:
    """Call every route and GraphQL field at once (one client each); return the answers."""
    calls = [(route, method, route, kwargs) for method, route, kwargs, _ in REST_CALLS]
    calls += [(query.split("(")[0], "POST", "/graphql", {"json": {"query": query}}) for query, _ in GRAPHQL_CALLS]
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        futures = [
            (name, pool.submit(app.test_client().open, route, method=method, **kwargs))
            for name, method, route, kwargs in calls
        ]
        return [(name, future.result()) for name, future in futures]


def tries_to_give_up() -> Counter[str]:
    """The tries ``call_all`` makes of a dead upstream: MAX_ATTEMPTS of each botocore operation
    each call needs (botocore's standard retries), one presigned PUT (requests retries nothing)."""
    expected: Counter[str] = Counter()
    for operations in [ops for *_, ops in REST_CALLS] + [ops for _, ops in GRAPHQL_CALLS]:
        for operation in operations:
            expected[operation] += 1 if operation == PRESIGNED_PUT else MAX_ATTEMPTS
    return expected


def assert_all_unavailable(app: Flask) -> None:
    # What bounds the time a dead upstream costs is the tries and each try's timeout: every call
    # gives up after its configured tries, each at most a connect and a read timeout (plus
    # botocore's backoff between them), which keeps it within the 5-second budget of
    # managers/aws/clients.py however busy the machine is. Counted, not timed.
    managers: Managers = app.extensions["dicom_meta.managers"]
    for client in (managers.s3.client, managers.dynamodb.client):
        config = client.meta.config
        assert (config.connect_timeout, config.read_timeout) == (CONNECT_TIMEOUT, READ_TIMEOUT)
        assert config.retries["total_max_attempts"] == MAX_ATTEMPTS
    with UpstreamTries(managers) as upstream:
        answers = call_all(app)
    assert upstream.tries == tries_to_give_up()
    assert upstream.put_timeouts == [UPLOAD_TIMEOUT] * upstream.tries[PRESIGNED_PUT]
    for name, response in answers:
        if name.startswith("/"):
            assert response.status_code == 503, (name, response.get_data(as_text=True))
            assert response.json["error"]["code"] == "UPSTREAM_UNAVAILABLE", name
        else:
            # GraphQL reports resolver errors in errors[], with the contract's code.
            assert response.status_code == 200, name
            assert [e["extensions"]["code"] for e in response.json["errors"]] == ["UPSTREAM_UNAVAILABLE"], name


def assert_all_answer(app: Flask) -> None:
    for name, response in call_all(app):
        assert response.status_code in (200, 201), (name, response.get_data(as_text=True))
        if not name.startswith("/"):
            assert "errors" not in response.json, (name, response.json)


@pytest.fixture
def embedded_process() -> Iterator[LocalAWSProcess]:
    process = LocalAWSProcess(free_port()).start()
    yield process
    process.stop()


@pytest.mark.slow
def test_a_stopped_endpoint_is_503_and_a_restarted_one_serves_again(embedded_process: LocalAWSProcess) -> None:
    # GIVEN an app on an embedded AWS in its own process, with a stored record
    app = create_app(
        {
            "AWS_ENDPOINT_URL": embedded_process.endpoint_url,
            "AWS_CREDENTIALS": embedded_process.credentials,
            "API_KEYS": None,
        }
    )
    app.extensions["dicom_meta.managers"].dynamodb.put_record(SEEDED, {"Modality": "CT"})
    assert_all_answer(app)
    # WHEN the endpoint goes away THEN every route says 503 after its tries, and the process lives
    embedded_process.stop()
    assert_all_unavailable(app)
    ready = app.test_client().get("/ready").json
    assert ready and (ready["s3"], ready["dynamodb"]) == ("unavailable", "unavailable")
    assert app.test_client().get("/health").status_code == 200
    # WHEN it comes back on the same port THEN the same app serves again, without a restart
    embedded_process.start()
    app.extensions["dicom_meta.managers"].dynamodb.put_record(SEEDED, {"Modality": "CT"})
    assert_all_answer(app)


def test_ready(client: FlaskClient) -> None:
    response = client.get("/ready")
    assert response.status_code == 200
    assert response.json == {"s3": "ok", "dynamodb": "ok"}


def test_ready_names_what_is_missing(local_aws: LocalAWS) -> None:
    # GIVEN S3 answering but a table that does not exist
    keys = (local_aws.credentials.aws_access_key_id, local_aws.credentials.aws_secret_access_key)
    s3 = S3Manager(*keys, endpoint_url=local_aws.endpoint_url)
    dynamodb = DynamoDBManager(*keys, endpoint_url=local_aws.endpoint_url, table_name="no-such-table")
    app = create_app({"MANAGERS": Managers(s3=s3, dynamodb=dynamodb, dicom=DicomManager(s3)), "API_KEYS": None})
    # WHEN readiness is asked THEN it is 503 and says which one failed, in the contract's error shape
    response = app.test_client().get("/ready")
    assert response.status_code == 503 and response.json is not None
    assert (response.json["s3"], response.json["dynamodb"]) == ("ok", "unavailable")
    assert response.json["error"]["code"] == "UPSTREAM_UNAVAILABLE"
    assert "dynamodb" in response.json["error"]["message"]


def test_a_closed_port_is_503_everywhere() -> None:
    port = free_port()  # free, so nothing listens there
    app = create_app(
        {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_CREDENTIALS": Credentials("x", "y"), "API_KEYS": None}
    )
    assert_all_unavailable(app)


@pytest.mark.slow
def test_a_silent_endpoint_is_503_after_the_configured_tries() -> None:
    # GIVEN an endpoint that takes connections and never answers (a hung server, a black hole)
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)
        app = create_app(
            {
                "AWS_ENDPOINT_URL": f"http://127.0.0.1:{silent.getsockname()[1]}",
                "AWS_CREDENTIALS": Credentials("x", "y"),
                "API_KEYS": None,
            }
        )
        # WHEN every route is called THEN each gives up with 503 after its tries, each timed out
        assert_all_unavailable(app)


class _Body:
    """The raw part of a fake HTTP response, as botocore reads it."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **kwargs: Any) -> Iterator[bytes]:
        yield self.data


def throttle(client: Any, event: str, response: tuple[int, dict[str, str], bytes], times: int) -> list[int]:
    """Answer the first ``times`` sends of ``event`` with ``response``; return a list counting sends."""
    sends: list[int] = []

    def answer(request: Any, **kwargs: Any) -> AWSResponse | None:
        sends.append(1)
        if len(sends) > times:
            return None  # let the real request through
        status, headers, body = response
        return AWSResponse(request.url, status, HTTPHeaders.from_dict(headers), _Body(body))

    client.meta.events.register_first(event, answer)
    return sends


S3_SLOW_DOWN = (
    503,
    {"Content-Type": "application/xml"},
    b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>",
)
DYNAMODB_THROTTLED = (
    400,
    {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": "t"},
    b'{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException",'
    b'"message":"Rate of requests exceeds the allowed throughput."}',
)


@pytest.fixture
def fresh_app(local_aws: LocalAWS) -> Flask:
    """An app of its own, so the handlers registered on its clients touch no other test."""
    return create_app(
        {"AWS_ENDPOINT_URL": local_aws.endpoint_url, "AWS_CREDENTIALS": local_aws.credentials, "API_KEYS": None}
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("service", "event", "response", "route"),
    [
        ("s3", "before-send.s3.GetObject", S3_SLOW_DOWN, "/dicom-metadata"),
        ("dynamodb", "before-send.dynamodb.GetItem", DYNAMODB_THROTTLED, "/fetch-dicom-metadata"),
    ],
)
def test_throttling_is_retried_then_503(
    fresh_app: Flask, service: str, event: str, response: tuple[int, dict[str, str], bytes], route: str
) -> None:
    client = getattr(fresh_app.extensions["dicom_meta.managers"], service).client
    sends = throttle(client, event, response, times=MAX_ATTEMPTS)
    answer = fresh_app.test_client().get(route, query_string={"s3_path": SEEDED})
    assert len(sends) == MAX_ATTEMPTS
    assert answer.status_code == 503
    assert answer.json and answer.json["error"]["code"] == "UPSTREAM_UNAVAILABLE"


@pytest.mark.slow
def test_throttling_that_passes_is_retried_to_success(fresh_app: Flask) -> None:
    client = fresh_app.extensions["dicom_meta.managers"].s3.client
    sends = throttle(client, "before-send.s3.GetObject", S3_SLOW_DOWN, times=MAX_ATTEMPTS - 1)
    answer = fresh_app.test_client().get("/dicom-metadata", query_string={"s3_path": SEEDED})
    assert answer.status_code == 200
    assert len(sends) == MAX_ATTEMPTS
