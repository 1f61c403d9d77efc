"""Pure rules and fault mapping: s3 paths, JSON keys, credentials, backend choice, S3's answers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from botocore.stub import Stubber
from hypothesis import given, settings
from hypothesis import strategies as st

from errors import ForbiddenBucket, InvalidPayload, InvalidS3Path, MissingParameter, NotFound, UpstreamUnavailable
from managers.aws.backend import LOCAL_CREDENTIALS, Backend, choose_backend
from managers.aws.clients import Credentials, load_secrets
from managers.DynamoDBManager import DynamoDBManager
from managers.S3Manager import PRESIGNED_URL_EXPIRY, S3Manager
from metadata import json_key_for, parse_s3_path


@pytest.mark.parametrize(
    ("dicom_key", "json_key"),
    [
        ("dicom/anon-1.2.3.dcm", "json/anon-1.2.3.json"),
        ("dicom/a/anon-1.dcm", "json/a/anon-1.json"),
        ("dicom/my scan+1.dcm", "json/my scan+1.json"),
        # Everything else keeps its whole key under json/_/, so none of these four collide.
        ("dicom/c/b.DCM", "json/_/dicom/c/b.DCM.json"),
        ("dicom/c/b", "json/_/dicom/c/b.json"),
        ("c/b.dcm", "json/_/c/b.dcm.json"),
        ("dicom/c/b.dcm", "json/c/b.json"),
        ("dicom/_.dcm", "json/_.json"),
    ],
)
def test_json_key_for(dicom_key: str, json_key: str) -> None:
    assert json_key_for(dicom_key) == json_key


def test_a_key_whose_document_would_fall_in_the_other_keys_folder_is_refused() -> None:
    with pytest.raises(InvalidPayload, match="dicom/_/"):
        json_key_for("dicom/_/c/b.dcm")


KEY_PARTS = st.sampled_from(["dicom/", "_/", "c/", "b", ".dcm", ".DCM", ".json", "json/", "/", "x", "é"])
KEYS = st.lists(KEY_PARTS, min_size=1, max_size=6).map("".join) | st.text(min_size=1, max_size=30)


def _image(key: str) -> str | None:
    try:
        return json_key_for(key)
    except InvalidPayload:
        return None


@given(keys=st.lists(KEYS, min_size=2, max_size=30, unique=True))
@settings(max_examples=500, derandomize=True, database=None)
def test_no_two_keys_share_a_json_key(keys: list[str]) -> None:
    # Keys built from the parts that collided before (dicom/, .dcm, .DCM, _/), and any text:
    # distinct keys that are accepted get distinct json/ keys, each a json/*.json key.
    images = [image for image in map(_image, keys) if image is not None]
    assert len(set(images)) == len(images)
    assert all(image.startswith("json/") and image.endswith(".json") for image in images)


@pytest.mark.parametrize(
    ("path", "error"),
    [
        (None, MissingParameter),
        ("", MissingParameter),
        ("s3:/x/y", InvalidS3Path),
        ("s3://x", InvalidS3Path),
        ("s3://data-apps-ex/dicom/x.dcm\n", InvalidS3Path),
        ("s3://data-apps-ex/dicom/x\r\n.dcm", InvalidS3Path),
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
    monkeypatch.setenv("LOCAL_AWS_PORT", "4999")
    local = choose_backend(tmp_path / "secrets.json")
    assert local == Backend("local", "http://127.0.0.1:4999", LOCAL_CREDENTIALS) and local.is_local
    (tmp_path / "secrets.json").write_text(json.dumps({"AWS_ACCESS_KEY_ID": "AK", "AWS_SECRET_ACCESS_KEY": "SK"}))
    assert choose_backend(tmp_path / "secrets.json") == Backend("aws", None, Credentials("AK", "SK", None))
    monkeypatch.setenv("DICOM_META_BACKEND", "local")
    assert choose_backend(tmp_path / "secrets.json").is_local


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
