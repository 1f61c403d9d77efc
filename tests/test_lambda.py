"""lambda_handler with real S3 event JSON, against the embedded AWS's S3 and DynamoDB."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import uuid
from collections.abc import Iterator
from types import ModuleType
from typing import Any
from urllib.parse import quote_plus

import pytest

from local.events import HANDLER_FILE, LambdaContext
from local.server import LocalAWS
from tests.conftest import ingest_handler

BUCKET = "data-apps-ex"


def s3_record(
    key: str, bucket: str = BUCKET, event_name: str = "ObjectCreated:Put", sequencer: str = "0055AED6DCD90281E5"
) -> dict[str, Any]:
    """One record as S3 sends it (eventVersion 2.1), the key URL-encoded as S3 encodes it."""
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-2",
        "eventTime": "2026-11-26T12:00:00.000Z",
        "eventName": event_name,
        "userIdentity": {"principalId": "AWS:AIDAEXAMPLE"},
        "requestParameters": {"sourceIPAddress": "203.0.113.10"},
        "responseElements": {
            "x-amz-request-id": "C3D13FE58DE4C810",
            "x-amz-id-2": "FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD",
        },
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "dicom-meta-json-ingest",
            "bucket": {
                "name": bucket,
                "ownerIdentity": {"principalId": "A3NL1KOZZKExample"},
                "arn": f"arn:aws:s3:::{bucket}",
            },
            "object": {
                "key": quote_plus(key),
                "size": 120,
                "eTag": "d41d8cd98f00b204e9800998ecf8427e",
                "sequencer": sequencer,
            },
        },
    }


# The embedded AWS's own runner ingests every json/ object too; this handler writes to a
# table of its own so that the assertions see only what the handler under test did.
TABLE = f"lambda-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def handler(local_aws: LocalAWS) -> Iterator[ModuleType]:
    with ingest_handler(local_aws, TABLE) as module:
        yield module


@pytest.fixture
def table(local_aws: LocalAWS) -> Any:
    return local_aws.client("dynamodb")


@pytest.fixture
def json_object(s3: Any) -> Iterator[Any]:
    keys: list[str] = []

    def put(key: str, body: bytes | dict[str, Any]) -> str:
        data = json.dumps(body).encode() if isinstance(body, dict) else body
        s3.put_object(Bucket=BUCKET, Key=key, Body=data, ContentType="application/json")
        keys.append(key)
        return key

    yield put
    for key in keys:
        s3.delete_object(Bucket=BUCKET, Key=key)


def item_of(table: Any, file_path: str) -> dict[str, Any] | None:
    item = table.get_item(TableName=TABLE, Key={"FilePath": {"S": file_path}}, ConsistentRead=True).get("Item")
    # String attributes only: an upload's UploadedFields is a map.
    return None if item is None else {name: value["S"] for name, value in item.items() if "S" in value}


def document(dicom_key: str, **fields: str | None) -> dict[str, Any]:
    return {
        "s3_path": f"s3://{BUCKET}/{dicom_key}",
        "PatientID": "L-1",
        "StudyDate": "20240101",
        "Modality": "CT",
        "InstitutionName": "Lambda Hospital",
        "StudyDescription": "CT HEAD",
        **fields,
    }


def test_stores_every_record_of_an_event(handler: ModuleType, json_object: Any, table: Any) -> None:
    # GIVEN three metadata objects, one under a key with a space and a plus
    keys = [
        json_object("json/lam/one.json", document("dicom/lam/one.dcm", PatientID="A")),
        json_object("json/lam/two.json", document("dicom/lam/two.dcm", PatientID="B", Modality=None)),
        json_object("json/lam/my scan+1.json", document("dicom/lam/my scan+1.dcm", PatientID="C")),
    ]
    # WHEN S3 delivers one event with the three records
    result = handler.lambda_handler({"Records": [s3_record(key) for key in keys]}, LambdaContext())
    # THEN each has its item, with the JSON's own path and an ingestion time
    assert result == {"stored": 3, "stale": 0, "skipped": 0, "failed": 0}
    one = item_of(table, f"s3://{BUCKET}/dicom/lam/one.dcm")
    assert one is not None
    assert {k: one[k] for k in ("PatientID", "StudyDate", "Modality", "InstitutionName", "StudyDescription")} == {
        "PatientID": "A",
        "StudyDate": "20240101",
        "Modality": "CT",
        "InstitutionName": "Lambda Hospital",
        "StudyDescription": "CT HEAD",
    }
    assert one["JsonS3Path"] == f"s3://{BUCKET}/json/lam/one.json"
    assert one["IngestedAt"].endswith("+00:00")
    two = item_of(table, f"s3://{BUCKET}/dicom/lam/two.dcm")
    assert two is not None and "Modality" not in two
    spaced = item_of(table, f"s3://{BUCKET}/dicom/lam/my scan+1.dcm")
    assert spaced is not None and spaced["PatientID"] == "C"


def test_skips_test_events_and_other_keys(handler: ModuleType) -> None:
    test_event = {
        "Service": "Amazon S3",
        "Event": "s3:TestEvent",
        "Time": "2026-11-26T12:00:00.000Z",
        "Bucket": BUCKET,
        "RequestId": "5582815E1AEA5ADF",
        "HostId": "8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3e",
    }
    assert handler.lambda_handler(test_event, LambdaContext()) == {"stored": 0, "stale": 0, "skipped": 0, "failed": 0}
    event = {"Records": [s3_record("dicom/a.dcm"), s3_record("json/readme.txt"), s3_record("json/x.json", "other")]}
    assert handler.lambda_handler(event, LambdaContext()) == {"stored": 0, "stale": 0, "skipped": 3, "failed": 0}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{broken", "not JSON"),
        (b"\xff\xfe\x00", "not JSON"),
        ({"PatientID": "no path"}, "s3_path"),
        ({"s3_path": "s3://data-apps-ex/dicom/x.dcm", "Modality": 3}, "Modality"),
    ],
    ids=["malformed", "binary", "missing-s3-path", "bad-field"],
)
def test_a_bad_record_fails_without_stopping_the_others(
    handler: ModuleType, json_object: Any, table: Any, body: Any, reason: str
) -> None:
    # GIVEN a bad document between two good ones
    first = json_object("json/bad/first.json", document("dicom/bad/first.dcm"))
    bad = json_object("json/bad/bad.json", body)
    last = json_object("json/bad/last.json", document("dicom/bad/last.dcm"))
    # WHEN they arrive in one event THEN the handler raises (so the platform retries) naming the bad one
    with pytest.raises(handler.IngestError, match=reason) as raised:
        handler.lambda_handler({"Records": [s3_record(first), s3_record(bad), s3_record(last)]}, LambdaContext())
    assert "record 1" in str(raised.value)
    # AND the good ones were stored all the same
    assert item_of(table, f"s3://{BUCKET}/dicom/bad/first.dcm") is not None
    assert item_of(table, f"s3://{BUCKET}/dicom/bad/last.dcm") is not None


def test_a_missing_object_fails_the_record(handler: ModuleType) -> None:
    with pytest.raises(handler.IngestError):
        handler.lambda_handler({"Records": [s3_record("json/gone.json")]}, LambdaContext())


def test_handler_imports_neither_flask_nor_pydicom() -> None:
    code = (
        "import importlib.util, sys;"
        f"spec = importlib.util.spec_from_file_location('lambda_function', {str(HANDLER_FILE)!r});"
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m);"
        "bad = [n for n in ('flask', 'pydicom', 'requests', 'strawberry') if n in sys.modules];"
        "print(','.join(bad)); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=str(HANDLER_FILE.parent.parent)
    )
    assert result.returncode == 0, result.stdout + result.stderr


def stored_patient(table: Any, dicom_key: str) -> str | None:
    item = item_of(table, f"s3://{BUCKET}/{dicom_key}")
    return None if item is None else item.get("PatientID")


def test_duplicate_delivery_is_idempotent(handler: ModuleType, json_object: Any, table: Any) -> None:
    key = json_object("json/dup/a.json", document("dicom/dup/a.dcm", PatientID="D-1"))
    event = {"Records": [s3_record(key, sequencer="00612A3B4C5D6E7F80")]}
    assert handler.lambda_handler(event, LambdaContext())["stored"] == 1
    first = item_of(table, f"s3://{BUCKET}/dicom/dup/a.dcm")
    assert handler.lambda_handler(event, LambdaContext())["stored"] == 1
    again = item_of(table, f"s3://{BUCKET}/dicom/dup/a.dcm")
    assert first and again
    assert {k: v for k, v in again.items() if k != "IngestedAt"} == {
        k: v for k, v in first.items() if k != "IngestedAt"
    }


def test_a_late_older_event_never_overwrites_a_newer_record(
    handler: ModuleType, json_object: Any, s3: Any, table: Any
) -> None:
    # GIVEN two writes of one metadata object, whose events arrive in reverse order
    key = json_object("json/order/a.json", document("dicom/order/a.dcm", PatientID="NEWER"))
    newer = {"Records": [s3_record(key, sequencer="0062000000000000FF")]}
    older = {"Records": [s3_record(key, sequencer="61FFFFFFFFFFFFFF")]}  # shorter: compares after padding
    assert handler.lambda_handler(newer, LambdaContext())["stored"] == 1
    # WHEN the older event comes late (and the object has changed since, without an event yet)
    s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(document("dicom/order/a.dcm", PatientID="LATE")))
    result = handler.lambda_handler(older, LambdaContext())
    # THEN it is acknowledged as stale and the newer record stays
    assert result == {"stored": 0, "stale": 1, "skipped": 0, "failed": 0}
    assert stored_patient(table, "dicom/order/a.dcm") == "NEWER"


def test_dynamodb_failing_for_one_record_fails_only_that_record(
    handler: ModuleType, json_object: Any, table: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from errors import UpstreamUnavailable

    dynamodb = handler._dynamodb()
    real_put = dynamodb.put_record

    def flaky_put(file_path: str, *args: Any, **kwargs: Any) -> bool:
        if file_path.endswith("flaky.dcm"):
            raise UpstreamUnavailable("DynamoDB is busy or failing; try again shortly")
        return real_put(file_path, *args, **kwargs)

    monkeypatch.setattr(dynamodb, "put_record", flaky_put)
    keys = [
        json_object(f"json/flaky/{name}.json", document(f"dicom/flaky/{name}.dcm", PatientID=name))
        for name in ("ok1", "flaky", "ok2")
    ]
    with pytest.raises(handler.IngestError, match="record 1: UPSTREAM_UNAVAILABLE: DynamoDB is busy"):
        handler.lambda_handler({"Records": [s3_record(k) for k in keys]}, LambdaContext())
    assert stored_patient(table, "dicom/flaky/ok1.dcm") == "ok1"
    assert stored_patient(table, "dicom/flaky/ok2.dcm") == "ok2"
    assert stored_patient(table, "dicom/flaky/flaky.dcm") is None


@pytest.mark.parametrize(
    ("mangle", "reason"),
    [
        (lambda r: r["s3"]["object"].pop("key"), "s3.object.key is missing"),
        (lambda r: r["s3"]["object"].update(key=7), "s3.object.key must be a str"),
        (lambda r: r["s3"].pop("bucket"), "s3.bucket.name is missing"),
        (lambda r: r.update(s3="not an object"), "s3.bucket.name is missing"),
        (lambda r: r["s3"]["object"].update(sequencer=12), "s3.object.sequencer must be a str"),
        (lambda r: r.update(eventName=["ObjectCreated:Put"]), "eventName must be a str"),
    ],
    ids=["no-key", "key-not-str", "no-bucket", "s3-not-object", "sequencer-not-str", "event-name-not-str"],
)
def test_a_malformed_record_is_a_validation_failure_not_a_bug(
    handler: ModuleType, json_object: Any, table: Any, mangle: Any, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN a record S3 would never send, between two good ones
    good = [json_object(f"json/shape/{n}.json", document(f"dicom/shape/{n}.dcm")) for n in ("a", "b")]
    bad = s3_record("json/shape/bad.json")
    mangle(bad)
    # WHEN the event arrives THEN that record fails, named, as invalid input
    with caplog.at_level("INFO"), pytest.raises(handler.IngestError, match=f"record 1: INVALID_EVENT: {reason}"):
        handler.lambda_handler({"Records": [s3_record(good[0]), bad, s3_record(good[1])]}, LambdaContext())
    # AND it is not logged as an unexpected error, and the others are stored
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
    assert item_of(table, f"s3://{BUCKET}/dicom/shape/a.dcm") is not None
    assert item_of(table, f"s3://{BUCKET}/dicom/shape/b.dcm") is not None


def test_records_that_are_not_a_list_fail_the_event(handler: ModuleType) -> None:
    from managers.aws.s3_events import InvalidS3Event

    with pytest.raises(InvalidS3Event, match="Records must be a list"):
        handler.lambda_handler({"Records": {"not": "a list"}}, LambdaContext())


def test_a_programming_error_is_logged_as_unexpected(
    handler: ModuleType, json_object: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN a bug in the storing code (a TypeError, which the handler once counted as bad input)
    def broken_put(*args: Any, **kwargs: Any) -> bool:
        raise TypeError("a bug")

    monkeypatch.setattr(handler._dynamodb(), "put_record", broken_put)
    key = json_object("json/bug/a.json", document("dicom/bug/a.dcm"))
    # WHEN a record arrives THEN it fails as unexpected, with its traceback (frames and types,
    # no exception message: errors.scrubbed_traceback) in the log
    with caplog.at_level("INFO"), pytest.raises(handler.IngestError, match="record 0: unexpected TypeError"):
        handler.lambda_handler({"Records": [s3_record(key)]}, LambdaContext())
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1
    message = errors[0].getMessage()
    assert message.startswith("unexpected failure on record 0\nTraceback")
    assert "builtins.TypeError (message withheld)" in message and "TypeError: a bug" not in message


def test_importing_the_handler_leaves_logging_alone() -> None:
    code = (
        "import importlib.util, logging, sys;"
        f"spec = importlib.util.spec_from_file_location('lambda_function', {str(HANDLER_FILE)!r});"
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m);"
        "root = logging.getLogger();"
        "print(root.level, len(root.handlers), logging.getLogger('dicom_meta.ingest').level)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=str(HANDLER_FILE.parent.parent), check=True
    )
    assert result.stdout.split() == [str(logging.WARNING), "0", str(logging.NOTSET)]
