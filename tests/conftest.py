"""Fixtures: a real moto server on loopback, the app wired to it, DICOM files built with pydicom."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from config import S3_BUCKET_NAME
from local.samples import SampleSpec, build_file
from local.server import LocalAWS

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
