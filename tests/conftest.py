"""Fixtures: a real moto server on loopback, the app wired to it, DICOM files built with pydicom."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from config import S3_BUCKET_NAME
from local.events import load_handler_module
from local.samples import SampleSpec, build_file
from local.server import LocalAWS, create_table
from managers.aws.clients import credential_args
from managers.DynamoDBManager import DynamoDBManager
from managers.indexing import Indexer

TEST_CURSOR_SECRET = "tests-cursor-secret"


@pytest.fixture(autouse=True)
def _no_real_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep every test away from real AWS, whatever this machine's environment holds."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    # The embedded AWS, whatever secrets.json this checkout holds.
    monkeypatch.setenv("DICOM_META_BACKEND", "local")
    # Every app a test builds shares the session app's cursor secret (a process-wide setting).
    monkeypatch.setenv("DICOM_META_CURSOR_SECRET", TEST_CURSOR_SECRET)


@pytest.fixture(scope="session")
def local_aws() -> Iterator[LocalAWS]:
    """One embedded AWS for the session: moto server, bucket, table, trigger, seeded files."""
    aws = LocalAWS.start(port=0)
    try:
        yield aws
    finally:
        aws.stop()


@pytest.fixture(scope="session")
def app(local_aws: LocalAWS) -> Flask:
    """The app, wired to the embedded AWS like `make run` wires it."""
    return create_app(
        {
            "TESTING": True,
            "AWS_ENDPOINT_URL": local_aws.endpoint_url,
            "AWS_CREDENTIALS": local_aws.credentials,
            "CURSOR_SECRET": TEST_CURSOR_SECRET,
        }
    )


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture(scope="session")
def s3(local_aws: LocalAWS) -> Any:
    """A plain boto3 S3 client on the embedded AWS, as any user's S3 client would be."""
    return local_aws.client("s3")


@pytest.fixture
def put_object(s3: Any) -> Iterator[Callable[[str, bytes], str]]:
    """Put bytes under a key of the bucket; return the s3 path. Removed after the test."""
    keys: list[str] = []

    def put(key: str, data: bytes) -> str:
        s3.put_object(Bucket=S3_BUCKET_NAME, Key=key, Body=data)
        keys.append(key)
        return f"s3://{S3_BUCKET_NAME}/{key}"

    yield put
    for key in keys:
        s3.delete_object(Bucket=S3_BUCKET_NAME, Key=key)


@pytest.fixture
def put_dicom(put_object: Callable[[str, bytes], str]) -> Callable[..., str]:
    """Build a DICOM file with pydicom from SampleSpec fields, put it under dicom/; return its path."""

    def put(key: str | None = None, **spec_fields: Any) -> str:
        spec = SampleSpec(**spec_fields)
        return put_object(key or f"dicom/{spec.file_name}", build_file(spec))

    return put


@contextmanager
def own_table(local_aws: LocalAWS, table_name: str) -> Iterator[DynamoDBManager]:
    """Yield a DynamoDBManager on a metadata table of its own, deleted afterwards.

    The embedded AWS's event runners write the shared table on every upload; a module whose
    assertions must see only what its own writers did gives them a table of its own.
    """
    keys = credential_args(local_aws.credentials)
    manager = DynamoDBManager(*keys, endpoint_url=local_aws.endpoint_url, table_name=table_name)
    create_table(manager.client, table_name)
    try:
        yield manager
    finally:
        manager.client.delete_table(TableName=table_name)


@pytest.fixture(scope="module")
def dynamodb(request: pytest.FixtureRequest, local_aws: LocalAWS) -> Iterator[DynamoDBManager]:
    """A DynamoDBManager on a table of the requesting test module's own (see ``own_table``)."""
    module = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_").replace("_", "-")
    with own_table(local_aws, f"{module}-{uuid.uuid4().hex[:8]}") as manager:
        yield manager


@pytest.fixture(scope="module")
def indexer(local_aws: LocalAWS, dynamodb: DynamoDBManager) -> Indexer:
    """An Indexer reading the embedded AWS's bucket and writing the module's own table."""
    return Indexer(local_aws.client("s3"), dynamodb)


@contextmanager
def ingest_handler(local_aws: LocalAWS, table_name: str) -> Iterator[ModuleType]:
    """Yield a fresh copy of the ingest handler module, writing to a table of its own."""
    with own_table(local_aws, table_name) as dynamodb:
        module = load_handler_module()
        module.use_clients(local_aws.client("s3"), dynamodb)
        yield module
