"""local/object_gets.py: a plain GetObject answered from moto's backend is the answer moto gives.

Each request is made twice through a plain boto3 client, once answered here and once by moto
(``ENABLED`` off), and the two answers compared: status, every header (but the date and the
random request ID) and the body. Requests that are not plain must reach moto.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from local import object_gets
from local.server import LocalAWS

BUCKET = "object-gets-test"
DATA = bytes(range(256)) * 40  # 10 KiB
VARIABLE = {"date", "x-amzn-requestid"}


@pytest.fixture(scope="module")
def s3(local_aws: LocalAWS) -> Iterator[Any]:
    client = local_aws.client("s3")
    client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "us-east-2"})
    client.put_object(Bucket=BUCKET, Key="plain.dcm", Body=DATA, Metadata={"my_key": "a", "Other": "b"})
    client.put_object(Bucket=BUCKET, Key="summed.dcm", Body=DATA[:100], ChecksumAlgorithm="SHA256")
    client.put_object(Bucket=BUCKET, Key="empty.dcm", Body=b"", ContentType="application/dicom")
    client.put_object(Bucket=BUCKET, Key="deep/er/k_e-y.1.dcm", Body=DATA[:10], ContentEncoding="gzip")
    client.put_object(Bucket=BUCKET, Key="escaped (1).dcm", Body=DATA[:10])
    yield client


@pytest.fixture
def answered(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths of the requests answered here (not by moto) while the test runs."""
    paths: list[str] = []
    original = object_gets._answer

    def noting(environ: dict[str, Any]) -> Any:
        answer = original(environ)
        if answer is not None and environ["RAW_URI"].startswith(f"/{BUCKET}/"):
            paths.append(environ["RAW_URI"])
        return answer

    monkeypatch.setattr(object_gets, "_answer", noting)
    return paths


def both(call: Callable[[], Any]) -> tuple[Any, Any]:
    """The answer to ``call`` from here, and from moto."""
    here = call()
    object_gets.ENABLED = False
    try:
        return here, call()
    finally:
        object_gets.ENABLED = True


def outcome(s3: Any, **request: Any) -> Any:
    """A GetObject's status, headers and body, or its error code and status."""
    try:
        response = s3.get_object(Bucket=BUCKET, **request)
    except s3.exceptions.ClientError as exc:
        return exc.response["Error"]["Code"], exc.response["ResponseMetadata"]["HTTPStatusCode"]
    headers = response["ResponseMetadata"]["HTTPHeaders"]
    meta = {name: value for name, value in headers.items() if name not in VARIABLE}
    return response["ResponseMetadata"]["HTTPStatusCode"], meta, response["Body"].read()


PLAIN: list[dict[str, Any]] = [
    {"Key": "plain.dcm"},
    {"Key": "plain.dcm", "Range": "bytes=0-99"},
    {"Key": "plain.dcm", "Range": "bytes=10000-"},
    {"Key": "plain.dcm", "Range": "bytes=100-99999"},
    {"Key": "plain.dcm", "Range": "bytes=0-10239"},
    {"Key": "plain.dcm", "Range": "bytes=5-4"},
    {"Key": "summed.dcm"},
    {"Key": "summed.dcm", "Range": "bytes=0-9"},
    {"Key": "summed.dcm", "Range": "bytes=0-99"},
    {"Key": "summed.dcm", "ChecksumMode": "ENABLED"},
    {"Key": "summed.dcm", "ChecksumMode": "ENABLED", "Range": "bytes=1-5"},
    {"Key": "empty.dcm"},
    {"Key": "deep/er/k_e-y.1.dcm", "Range": "bytes=2-3"},
]
# To moto: absent keys, failed conditions, suffix, unsatisfiable and multiple ranges, queries,
# escaped paths.
TO_MOTO: list[dict[str, Any]] = [
    {"Key": "absent.dcm"},
    {"Key": "plain.dcm", "IfMatch": '"not-its-etag"'},
    {"Key": "plain.dcm", "IfNoneMatch": "*"},
    {"Key": "plain.dcm", "Range": "bytes=-10"},
    {"Key": "plain.dcm", "Range": "bytes=20000-20010"},
    {"Key": "plain.dcm", "Range": "bytes=0-1,5-6"},
    {"Key": "plain.dcm", "Range": "lines=1-2"},
    {"Key": "plain.dcm", "PartNumber": 1},
    {"Key": "plain.dcm", "ResponseContentType": "text/plain"},
    {"Key": "empty.dcm", "Range": "bytes=0-9"},
    {"Key": "escaped (1).dcm"},
]


@pytest.mark.parametrize("request_", PLAIN, ids=lambda r: json.dumps(r))
def test_a_plain_get_is_answered_here_as_moto_answers_it(
    s3: Any, answered: list[str], request_: dict[str, Any]
) -> None:
    here, moto = both(lambda: outcome(s3, **request_))
    assert here == moto
    assert len(answered) == 1
    assert here[0] in (200, 206)


def test_a_get_made_if_it_matches_its_etag_is_answered_here(s3: Any, answered: list[str]) -> None:
    etag = s3.head_object(Bucket=BUCKET, Key="plain.dcm")["ETag"]
    for if_match in (etag, etag.strip('"')):
        here, moto = both(lambda: outcome(s3, Key="plain.dcm", IfMatch=if_match, Range="bytes=0-9"))  # noqa: B023 - called at once
        assert here == moto
        assert here[2] == DATA[:10]
    assert len(answered) == 2


@pytest.mark.parametrize("request_", TO_MOTO, ids=lambda r: json.dumps(r))
def test_any_other_get_is_moto_s(s3: Any, answered: list[str], request_: dict[str, Any]) -> None:
    here, moto = both(lambda: outcome(s3, **request_))
    assert here == moto
    assert answered == []


def test_versions_are_moto_s_but_the_latest_is_answered_here(s3: Any, answered: list[str]) -> None:
    bucket = "object-gets-versioned"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "us-east-2"})
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    first = s3.put_object(Bucket=bucket, Key="k.dcm", Body=b"one")["VersionId"]
    second = s3.put_object(Bucket=bucket, Key="k.dcm", Body=b"two")["VersionId"]
    latest = s3.get_object(Bucket=bucket, Key="k.dcm")
    assert (latest["Body"].read(), latest["VersionId"]) == (b"two", second)
    older = s3.get_object(Bucket=bucket, Key="k.dcm", VersionId=first)
    assert older["Body"].read() == b"one"
    s3.delete_object(Bucket=bucket, Key="k.dcm")  # a delete marker: moto's NoSuchKey
    with pytest.raises(s3.exceptions.NoSuchKey):
        s3.get_object(Bucket=bucket, Key="k.dcm")
    assert answered == []  # another bucket: not counted; its plain GET was checked by value


def test_a_presigned_get_a_get_from_an_origin_and_a_bucket_with_a_policy_are_moto_s(
    local_aws: LocalAWS, s3: Any, answered: list[str]
) -> None:
    url = s3.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": "plain.dcm"})
    assert requests.get(url, timeout=10).content == DATA
    from_origin = local_aws.client("s3")
    from_origin.meta.events.register("before-sign.s3.GetObject", _with_origin)
    here, moto = both(lambda: outcome(from_origin, Key="plain.dcm"))
    assert here == moto
    assert here[2] == DATA
    assert answered == []
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{BUCKET}/*"}
        ],
    }
    s3.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps(policy))
    try:
        here, moto = both(lambda: outcome(s3, Key="plain.dcm"))
        assert here == moto == ("403", 403)  # moto denies with an empty 403
    finally:
        s3.delete_bucket_policy(Bucket=BUCKET)
    assert answered == []


def _with_origin(request: Any, **_: Any) -> None:
    request.headers["Origin"] = "http://viewer.example"
