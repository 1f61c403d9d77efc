"""Pure rules and fault mapping: s3 paths, JSON keys, credentials, backend choice, S3's answers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from botocore.stub import Stubber

import app as app_module
from errors import ForbiddenBucket, InvalidS3Path, MissingParameter, NotFound, UpstreamUnavailable
from managers.aws import Credentials, load_secrets
from managers.DynamoDBManager import DynamoDBManager
from managers.S3Manager import PRESIGNED_URL_EXPIRY, S3Manager
from metadata import json_key_for, parse_s3_path


@pytest.mark.parametrize(
    ("dicom_key", "json_key"),
    [
        ("dicom/anon-1.2.3.dcm", "json/anon-1.2.3.json"),
        ("dicom/a/anon-1.dcm", "json/a/anon-1.json"),
        ("dicom/UPPER.DCM", "json/UPPER.json"),
        ("dicom/no-extension", "json/no-extension.json"),
        ("scans/x.dcm", "json/scans/x.json"),
        ("dicom/my scan+1.dcm", "json/my scan+1.json"),
    ],
)
def test_json_key_for(dicom_key: str, json_key: str) -> None:
    assert json_key_for(dicom_key) == json_key


@pytest.mark.parametrize(
    ("path", "error"),
    [
        (None, MissingParameter),
        ("", MissingParameter),
        ("s3:/x/y", InvalidS3Path),
        ("s3://x", InvalidS3Path),
        ("s3:///key", InvalidS3Path),
        ("s3://other/key", ForbiddenBucket),
    ],
)
def test_parse_s3_path_errors(path: str | None, error: type[Exception]) -> None:
    with pytest.raises(error):
        parse_s3_path(path)


def test_parse_s3_path_keeps_the_key_verbatim() -> None:
    assert parse_s3_path("s3://data-apps-ex/dicom/a b+c/%20.dcm") == ("data-apps-ex", "dicom/a b+c/%20.dcm")


def test_secrets_file(tmp_path: Path) -> None:
    assert load_secrets(tmp_path / "secrets.json") is None
    (tmp_path / "secrets.json").write_text(json.dumps({"AWS_ACCESS_KEY_ID": "AK", "AWS_SECRET_ACCESS_KEY": "SK"}))
    assert load_secrets(tmp_path / "secrets.json") == Credentials("AK", "SK", None)


def test_backend_choice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DICOM_META_BACKEND", raising=False)
    assert app_module.default_backend(tmp_path / "secrets.json") == "local"
    (tmp_path / "secrets.json").write_text("{}")
    assert app_module.default_backend(tmp_path / "secrets.json") == "aws"
    monkeypatch.setenv("DICOM_META_BACKEND", "local")
    assert app_module.default_backend(tmp_path / "secrets.json") == "local"


def test_dynamodb_manager_keeps_the_skeleton_constructor() -> None:
    explicit = DynamoDBManager("AK", "SK", "TOKEN")
    credentials = explicit.client._request_signer._credentials
    assert (credentials.access_key, credentials.secret_key, credentials.token) == ("AK", "SK", "TOKEN")
    assert DynamoDBManager().client.meta.region_name == "us-east-2"


def test_presigned_url_binds_content_type_and_expires_in_five_minutes() -> None:
    url = S3Manager("AK", "SK", endpoint_url="http://127.0.0.1:1").presigned_put_url("json/a.json")
    assert "X-Amz-Expires=300" in url and PRESIGNED_URL_EXPIRY <= 300
    assert "content-type" in url.split("X-Amz-SignedHeaders=")[1].split("&")[0]
    with pytest.raises(ValueError):
        S3Manager("AK", "SK").presigned_put_url("dicom/a.dcm")


@pytest.mark.parametrize(
    ("code", "status", "error"),
    [
        ("NoSuchKey", 404, NotFound),
        ("AccessDenied", 403, NotFound),  # a missing key without s3:ListBucket
        ("SlowDown", 503, UpstreamUnavailable),
        ("InternalError", 500, UpstreamUnavailable),
    ],
)
def test_s3_answers_become_domain_errors(code: str, status: int, error: type[Exception]) -> None:
    manager = S3Manager("AK", "SK")
    with Stubber(manager.client) as stub:
        stub.add_client_error("get_object", service_error_code=code, http_status_code=status)
        with pytest.raises(error):
            manager.read_object("s3://data-apps-ex/dicom/a.dcm")


def test_dynamodb_throttling_is_upstream_unavailable() -> None:
    manager = DynamoDBManager("AK", "SK")
    with Stubber(manager.client) as stub:
        stub.add_client_error(
            "get_item", service_error_code="ProvisionedThroughputExceededException", http_status_code=400
        )
        with pytest.raises(UpstreamUnavailable):
            manager.get_record("s3://data-apps-ex/dicom/a.dcm")
