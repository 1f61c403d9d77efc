"""The indexer function: S3 events and Step Functions batches, against the embedded AWS.

The handler under test writes to a table of its own, so that the embedded AWS's own runner
(which indexes every dicom/ object too) does not blur what the handler did.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from types import ModuleType
from typing import Any
from unittest import mock

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from errors import NotFound
from local.events import INDEXER_FILE, LambdaContext, load_handler_module
from local.process import ROOT
from local.samples import SampleSpec, build_file
from local.server import LocalAWS
from managers.aws.objects import VersionedFetch
from managers.DynamoDBManager import DynamoDBManager, normalize_sequencer
from managers.indexing import Indexer, Listed
from managers.store.search import SearchFilter
from managers.store.study_items import STUDY_INSTANCES, study_key
from tests.bounds import HANG_GUARD
from tests.test_lambda import s3_record

BUCKET = "data-apps-ex"


@pytest.fixture(scope="module")
def handler(indexer: Indexer) -> ModuleType:
    module = load_handler_module(INDEXER_FILE)
    module.use_indexer(indexer)
    return module


@pytest.fixture
def key() -> str:
    """A fresh key under dicom/ with a space and a plus, as S3 events encode them."""
    return f"dicom/idx/{uuid.uuid4().hex[:8]} scan+1"


def path(key: str) -> str:
    return f"s3://{BUCKET}/{key}"


def event(key: str, sequencer: str, removed: bool = False) -> dict[str, Any]:
    name = "ObjectRemoved:Delete" if removed else "ObjectCreated:Put"
    return {"Records": [s3_record(key, event_name=name, sequencer=sequencer)]}


def without_times(item: dict[str, Any] | None) -> dict[str, Any]:
    return {name: value for name, value in (item or {}).items() if name not in {"IndexedAt", "IngestedAt"}}


def test_a_created_object_gets_a_grown_record(
    handler: ModuleType, dynamodb: DynamoDBManager, put_object: Callable[[str, bytes], str], key: str
) -> None:
    # GIVEN a DICOM file under a key with a space and a plus, and no .dcm
    spec = SampleSpec(patient_id="IX-1", modality="MR", rows=32)
    data = build_file(spec)
    put_object(key, data)
    # WHEN its ObjectCreated event arrives
    assert handler.lambda_handler(event(key, "0A01"), LambdaContext()) == {"indexed": 1}
    # THEN the record holds the five fields and the header's attributes, with the object's size and ETag
    assert dynamodb.get_record(path(key)) == {
        "PatientID": "IX-1",
        "StudyDate": "20240115",
        "Modality": "MR",
        "InstitutionName": "General Hospital",
        "StudyDescription": "CHEST WITHOUT CONTRAST",
    }
    item = dynamodb.get_item(path(key))
    assert item is not None
    assert item["SOPInstanceUID"] == {"S": spec.sop_instance_uid}
    assert item["PatientName"] == {"S": "Doe^Jane"}
    assert item["SeriesDescription"] == {"S": "AXIAL 5MM"}
    assert item["Rows"] == {"N": "32"} and item["Columns"]["N"].isdigit()
    assert item["ObjectSize"] == {"N": str(len(data))}
    assert item["ObjectETag"]["S"].startswith('"')
    assert item["HeaderFields"]["M"]["PatientID"] == {"S": "IX-1"}
    assert item["ObjectSequencer"] == {"S": normalize_sequencer("0A01")}


def test_duplicates_change_nothing(
    handler: ModuleType, dynamodb: DynamoDBManager, put_object: Callable[[str, bytes], str], key: str
) -> None:
    put_object(key, build_file(SampleSpec(patient_id="DUP")))
    handler.lambda_handler(event(key, "0B01"), LambdaContext())
    first = dynamodb.get_item(path(key))
    assert handler.lambda_handler(event(key, "0B01"), LambdaContext()) == {"indexed": 1}
    assert without_times(dynamodb.get_item(path(key))) == without_times(first)


def test_a_late_create_never_undoes_a_delete(
    handler: ModuleType, dynamodb: DynamoDBManager, put_object: Callable[[str, bytes], str], key: str
) -> None:
    # GIVEN a file that was created (sequencer 1) and deleted (sequencer 2), re-put since without an event yet
    put_object(key, build_file(SampleSpec(patient_id="GONE")))
    # WHEN the delete event arrives first, then the create event, then the delete again
    assert handler.lambda_handler(event(key, "0C02", removed=True), LambdaContext()) == {"removed": 1}
    assert handler.lambda_handler(event(key, "0C01"), LambdaContext()) == {"stale": 1}
    assert handler.lambda_handler(event(key, "0C02", removed=True), LambdaContext()) == {"removed": 1}
    # THEN there is no record: a tombstone, invisible to reads and searches
    assert dynamodb.get_record(path(key)) is None
    item = dynamodb.get_item(path(key))
    assert item is not None and item["Deleted"] == {"BOOL": True} and "ExpiresAt" in item
    assert "PatientID" not in item and "StudyDateKey" not in item
    assert dynamodb.search(SearchFilter(patient_id="GONE"), 10)[0] == []
    # … and a later create (a re-upload) indexes it again
    assert handler.lambda_handler(event(key, "0C03"), LambdaContext()) == {"indexed": 1}
    assert (dynamodb.get_record(path(key)) or {})["PatientID"] == "GONE"


def test_an_overwrite_is_followed_and_an_older_event_is_stale(
    handler: ModuleType, dynamodb: DynamoDBManager, put_object: Callable[[str, bytes], str], key: str
) -> None:
    put_object(key, build_file(SampleSpec(patient_id="V1")))
    handler.lambda_handler(event(key, "0D01"), LambdaContext())
    put_object(key, build_file(SampleSpec(patient_id="V2", modality="US")))
    assert handler.lambda_handler(event(key, "0D02"), LambdaContext()) == {"indexed": 1}
    assert (dynamodb.get_record(path(key)) or {})["Modality"] == "US"
    assert handler.lambda_handler(event(key, "0D01"), LambdaContext()) == {"stale": 1}
    assert (dynamodb.get_record(path(key)) or {})["PatientID"] == "V2"


# (Truncated headers are read_header's business, hardened by its own tests.)
@pytest.mark.parametrize("body", [b"", b"# README\nnot a DICOM file\n"])
def test_non_dicom_objects_get_no_record_and_are_not_retried(
    handler: ModuleType,
    dynamodb: DynamoDBManager,
    put_object: Callable[[str, bytes], str],
    key: str,
    body: bytes,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # GIVEN an indexed file, then overwritten with something that is not DICOM
    put_object(key, build_file(SampleSpec(patient_id="WAS-DICOM")))
    handler.lambda_handler(event(key, "0E01"), LambdaContext())
    put_object(key, body)
    # WHEN its event arrives: acknowledged (no exception), logged with the code only
    with caplog.at_level(logging.INFO):
        assert handler.lambda_handler(event(key, "0E02"), LambdaContext()) == {"not_dicom": 1}
    # THEN the record is gone, and the log names neither the key nor a value
    assert dynamodb.get_record(path(key)) is None
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert "NOT_DICOM" in text
    assert key.split("/")[-1] not in text and "WAS-DICOM" not in text


def test_a_non_dicom_object_keeps_an_upload_only_record(
    handler: ModuleType, dynamodb: DynamoDBManager, put_object: Callable[[str, bytes], str], key: str
) -> None:
    dynamodb.put_record(path(key), {"PatientID": "UPLOADED", "Modality": "CT"})
    put_object(key, b"not dicom")
    assert handler.lambda_handler(event(key, "0F01"), LambdaContext()) == {"not_dicom": 1}
    assert (dynamodb.get_record(path(key)) or {})["PatientID"] == "UPLOADED"


def test_skips_test_events_other_buckets_and_prefixes(handler: ModuleType) -> None:
    assert handler.lambda_handler({"Event": "s3:TestEvent", "Bucket": BUCKET}, LambdaContext()) == {}
    records = [
        s3_record("dicom/a.dcm", bucket="another-bucket")["Records"]
        if False
        else s3_record("dicom/a.dcm", bucket="another-bucket"),
        s3_record("json/a.json"),
    ]
    assert handler.lambda_handler({"Records": records}, LambdaContext()) == {"skipped": 2}


def test_without_a_sequencer_the_current_state_wins(
    handler: ModuleType, dynamodb: DynamoDBManager, put_object: Callable[[str, bytes], str], s3: Any, key: str
) -> None:
    # moto sends no sequencer: a delete event for an object that exists again indexes it,
    # a create event for an object that is gone removes its record.
    put_object(key, build_file(SampleSpec(patient_id="NOW")))
    no_sequencer = {"Records": [s3_record(key, event_name="ObjectRemoved:Delete")]}
    del no_sequencer["Records"][0]["s3"]["object"]["sequencer"]
    assert handler.lambda_handler(no_sequencer, LambdaContext()) == {"indexed": 1}
    s3.delete_object(Bucket=BUCKET, Key=key)
    created = {"Records": [s3_record(key)]}
    del created["Records"][0]["s3"]["object"]["sequencer"]
    assert handler.lambda_handler(created, LambdaContext()) == {"removed": 1}
    assert dynamodb.get_record(path(key)) is None


def test_a_transient_failure_raises_after_the_other_records(
    handler: ModuleType, indexer: Indexer, dynamodb: DynamoDBManager, put_object: Callable[[str, bytes], str]
) -> None:
    keys = [f"dicom/idx/fault-{uuid.uuid4().hex[:6]}-{n}.dcm" for n in range(2)]
    for name in keys:
        put_object(name, build_file(SampleSpec()))
    real = indexer.s3.get_object

    def flaky(**request: Any) -> Any:
        if request["Key"] == keys[0]:
            raise EndpointConnectionError(endpoint_url="http://s3")
        return real(**request)

    with mock.patch.object(indexer.s3, "get_object", side_effect=flaky), pytest.raises(handler.IndexingFailed):
        handler.lambda_handler({"Records": [s3_record(name) for name in keys]}, LambdaContext())
    assert dynamodb.get_record(path(keys[0])) is None
    assert dynamodb.get_record(path(keys[1])) is not None


@contextmanager
def dynamodb_calls(indexer: Indexer) -> Iterator[list[str]]:
    """The DynamoDB operations the indexer's client makes within the block, by name."""
    calls: list[str] = []

    def count(model: Any, **_: Any) -> None:
        calls.append(model.name)

    indexer.dynamodb.client.meta.events.register("before-call.dynamodb", count)
    try:
        yield calls
    finally:
        indexer.dynamodb.client.meta.events.unregister("before-call.dynamodb", count)


def test_a_many_record_event_is_indexed_together_in_a_few_calls(
    handler: ModuleType, indexer: Indexer, dynamodb: DynamoDBManager, put_object: Callable[[str, bytes], str]
) -> None:
    # GIVEN ten files of one study and a text file, copied in together (a queue's batch, as one event)
    prefix, study = f"dicom/together-{uuid.uuid4().hex[:6]}/", f"2.25.{uuid.uuid4().int}"
    for n in range(10):
        spec = SampleSpec(patient_id="TOGETHER", study_instance_uid=study, series_instance_uid=f"{study}.1")
        put_object(f"{prefix}{n}.dcm", build_file(replace(spec, series_number=1, instance_number=n + 1)))
    put_object(f"{prefix}notes.txt", b"plain text")
    names = [f"{prefix}{n}.dcm" for n in range(10)] + [f"{prefix}notes.txt"]
    # WHEN the event arrives
    with dynamodb_calls(indexer) as calls:
        counts = handler.lambda_handler({"Records": [s3_record(name) for name in names]}, LambdaContext())
    # THEN every file has its record and the study counts each once
    assert counts == {"indexed": 10, "not_dicom": 1}
    assert all((dynamodb.get_record(path(name)) or {}).get("PatientID") == "TOGETHER" for name in names[:10])
    assert (dynamodb.get_item(study_key(study)) or {})[STUDY_INSTANCES] == {"N": "10"}
    # … in one read of the records and one transaction, the study settled once (one by one: ten of each)
    assert calls.count("BatchGetItem") == 1 and calls.count("TransactWriteItems") == 1
    assert calls.count("GetItem") == 2  # the study's settling, and the text file's record
    assert len(calls) <= 7  # and the study's search keys: a BatchWriteItem per 25, an UpdateItem


def test_together_a_stale_event_stays_stale_and_a_key_named_twice_keeps_its_order(
    handler: ModuleType, dynamodb: DynamoDBManager, put_object: Callable[[str, bytes], str]
) -> None:
    # GIVEN a file indexed by a later event than the one about to arrive, and two new files
    prefix = f"dicom/together-{uuid.uuid4().hex[:6]}/"
    newer, twice, fresh = f"{prefix}newer.dcm", f"{prefix}twice.dcm", f"{prefix}fresh.dcm"
    for name in (newer, twice, fresh):
        put_object(name, build_file(SampleSpec(patient_id="ORDER")))
    handler.lambda_handler(event(newer, "0G09"), LambdaContext())
    # WHEN one event holds the older event of the first, a create then a delete of the second, and the third
    records = [
        s3_record(newer, sequencer="0G01"),
        s3_record(twice, sequencer="0G02"),
        s3_record(twice, event_name="ObjectRemoved:Delete", sequencer="0G03"),
        s3_record(fresh, sequencer="0G04"),
    ]
    counts = handler.lambda_handler({"Records": records}, LambdaContext())
    # THEN the older event is stale, the delete wins over its create, the third is indexed
    assert counts == {"stale": 1, "indexed": 2, "removed": 1}
    assert dynamodb.get_record(path(twice)) is None
    assert (dynamodb.get_record(path(fresh)) or {})["PatientID"] == "ORDER"
    assert (dynamodb.get_item(path(newer)) or {})["ObjectSequencer"]["S"] == normalize_sequencer("0G09")


def test_a_step_functions_batch(
    handler: ModuleType, dynamodb: DynamoDBManager, put_object: Callable[[str, bytes], str], s3: Any
) -> None:
    # GIVEN objects as a Distributed Map's ItemReader lists them (ListObjectsV2 items)
    prefix = f"dicom/batch-{uuid.uuid4().hex[:6]}/"
    for n in range(3):
        put_object(f"{prefix}{n}.dcm", build_file(SampleSpec(patient_id=f"SF-{n}")))
    put_object(f"{prefix}notes.txt", b"plain text")
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)["Contents"]
    items = [
        {"Key": o["Key"], "Etag": o["ETag"], "Size": o["Size"], "LastModified": str(o["LastModified"])} for o in listed
    ]
    batch = {"Items": items, "BatchInput": {"bucket": BUCKET}}
    # WHEN the batch runs twice
    first = handler.lambda_handler(batch, LambdaContext())
    second = handler.lambda_handler(batch, LambdaContext())
    # THEN it counts what it did, and the second run reads nothing
    assert first == {
        "indexed": 3,
        "unchanged": 0,
        "failed": 1,
        "failures": [{"key": f"{prefix}notes.txt", "code": "NOT_DICOM"}],
    }
    assert second == {
        "indexed": 0,
        "unchanged": 3,
        "failed": 1,
        "failures": [{"key": f"{prefix}notes.txt", "code": "NOT_DICOM"}],
    }
    assert (dynamodb.get_record(path(f"{prefix}2.dcm")) or {})["PatientID"] == "SF-2"


# Uploads (the ingest Lambda's put_record) and indexing, in every order.

UPLOADED = {
    "PatientID": "ASSERTED",
    "StudyDate": "20200202",
    "Modality": "OT",
    "InstitutionName": None,
    "StudyDescription": "UPLOADED",
}


def test_upload_after_indexing_wins_and_keeps_the_header(
    indexer: Indexer, dynamodb: DynamoDBManager, put_object: Callable[[str, bytes], str], key: str
) -> None:
    put_object(key, build_file(SampleSpec(patient_id="HEADER")))
    indexer.index_object(key, normalize_sequencer("01"))
    assert dynamodb.put_record(path(key), dict(UPLOADED), source=f"s3://{BUCKET}/json/x.json", sequencer="05")
    assert dynamodb.get_record(path(key)) == UPLOADED
    item = dynamodb.get_item(path(key)) or {}
    assert item["PatientName"] == {"S": "Doe^Jane"} and item["HeaderFields"]["M"]["PatientID"] == {"S": "HEADER"}
    # a re-index of the same file (a duplicate event, a bulk run) keeps the upload
    indexer.index_object(key, normalize_sequencer("02"))
    assert dynamodb.get_record(path(key)) == UPLOADED
    # and searches answer the uploaded values
    assert [r["s3_path"] for r in dynamodb.search(SearchFilter(patient_id="ASSERTED"), 50)[0]] == [path(key)]


def test_upload_before_indexing_still_wins(
    indexer: Indexer, dynamodb: DynamoDBManager, put_object: Callable[[str, bytes], str], key: str
) -> None:
    dynamodb.put_record(path(key), dict(UPLOADED))
    put_object(key, build_file(SampleSpec(patient_id="HEADER")))
    indexer.index_object(key, normalize_sequencer("01"))
    assert dynamodb.get_record(path(key)) == UPLOADED
    assert (dynamodb.get_item(path(key)) or {})["SOPInstanceUID"]


def test_a_changed_file_supersedes_the_upload_without_losing_it(
    indexer: Indexer, dynamodb: DynamoDBManager, put_object: Callable[[str, bytes], str], key: str
) -> None:
    put_object(key, build_file(SampleSpec(patient_id="V1")))
    indexer.index_object(key, normalize_sequencer("01"))
    dynamodb.put_record(path(key), dict(UPLOADED))
    put_object(key, build_file(SampleSpec(patient_id="V2")))
    indexer.index_object(key, normalize_sequencer("02"))
    record = dynamodb.get_record(path(key)) or {}
    assert record["PatientID"] == "V2"
    item = dynamodb.get_item(path(key)) or {}
    assert item["UploadedFields"]["M"]["PatientID"] == {"S": "ASSERTED"}
    # a new upload for the new version wins again
    dynamodb.put_record(path(key), {**UPLOADED, "PatientID": "AGAIN"})
    assert (dynamodb.get_record(path(key)) or {})["PatientID"] == "AGAIN"


def test_a_bulk_page_keeps_uploads_and_skips_unchanged_files(
    indexer: Indexer, dynamodb: DynamoDBManager, put_object: Callable[[str, bytes], str], s3: Any
) -> None:
    prefix = f"bulkpage-{uuid.uuid4().hex[:6]}/"
    for n in range(3):
        put_object(f"{prefix}{n}.dcm", build_file(SampleSpec(patient_id=f"BP-{n}")))
    dynamodb.put_record(path(f"{prefix}1.dcm"), dict(UPLOADED))
    listed = [Listed(o["Key"], o["ETag"]) for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)["Contents"]]
    with ThreadPoolExecutor(4) as pool:
        first = indexer.index_page(listed, pool)
        second = indexer.index_page(listed, pool)
    assert (first.indexed, first.unchanged, first.failures) == (3, 0, [])
    assert (second.indexed, second.unchanged) == (0, 3)
    assert dynamodb.get_record(path(f"{prefix}1.dcm")) == UPLOADED
    assert (dynamodb.get_record(path(f"{prefix}2.dcm")) or {})["PatientID"] == "BP-2"


def test_an_object_deleted_mid_run_is_reported_not_failed(
    indexer: Indexer, put_object: Callable[[str, bytes], str]
) -> None:
    with ThreadPoolExecutor(2) as pool:
        result = indexer.index_page([Listed("bulkpage/vanished.dcm", '"x"')], pool)
    assert (result.indexed, result.failed, result.failures) == (0, 0, [("bulkpage/vanished.dcm", "DELETED")])


# The embedded AWS delivers dicom/ events to the indexer, as `make run` does.


def wait_for(probe: Callable[[], Any], timeout: float = HANG_GUARD) -> Any:
    """The first truthy result of ``probe``; after ``timeout`` seconds (a hang guard), the last."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := probe():
            return result
        time.sleep(0.05)
    return probe()


def test_the_embedded_aws_indexes_and_unindexes_on_arrival(local_aws: LocalAWS, s3: Any) -> None:
    keys = (local_aws.credentials.aws_access_key_id, local_aws.credentials.aws_secret_access_key)
    main_table = DynamoDBManager(*keys, endpoint_url=local_aws.endpoint_url)
    assert all(main_table.get_record(seeded) for seeded in local_aws.seeded)
    key = f"dicom/arrival/{uuid.uuid4().hex[:8]} my file+1"
    s3.put_object(Bucket=BUCKET, Key=key, Body=build_file(SampleSpec(patient_id="ARRIVED")))
    assert (wait_for(lambda: main_table.get_record(path(key))) or {}).get("PatientID") == "ARRIVED"
    s3.delete_object(Bucket=BUCKET, Key=key)
    assert wait_for(lambda: main_table.get_record(path(key)) is None)


def test_a_bulk_page_retries_unprocessed_writes(
    indexer: Indexer, dynamodb: DynamoDBManager, put_object: Callable[[str, bytes], str], s3: Any
) -> None:
    # GIVEN DynamoDB leaves every item of the first BatchWriteItem unprocessed (throttling)
    prefix = f"unprocessed-{uuid.uuid4().hex[:6]}/"
    for n in range(3):
        put_object(f"{prefix}{n}.dcm", build_file(SampleSpec(patient_id=f"UN-{n}")))
    listed = [Listed(o["Key"], o["ETag"]) for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)["Contents"]]
    real = dynamodb.client.batch_write_item
    calls: list[int] = []

    def throttled_once(**request: Any) -> Any:
        calls.append(1)
        return {"UnprocessedItems": request["RequestItems"]} if len(calls) == 1 else real(**request)

    # WHEN the page is indexed
    with (
        mock.patch.object(dynamodb.client, "batch_write_item", side_effect=throttled_once),
        ThreadPoolExecutor(2) as pool,
    ):
        result = indexer.index_page(listed, pool)
    # THEN the items are sent again and all written
    assert len(calls) >= 2  # the study search keys are batch writes too
    assert (result.indexed, result.failures) == (3, [])
    assert (dynamodb.get_record(path(f"{prefix}2.dcm")) or {})["PatientID"] == "UN-2"


@pytest.mark.slow
def test_a_bulk_page_reports_a_file_s3_keeps_failing(
    indexer: Indexer, put_object: Callable[[str, bytes], str], s3: Any
) -> None:
    prefix = f"dropped-{uuid.uuid4().hex[:6]}/"
    for n in range(2):
        put_object(f"{prefix}{n}.dcm", build_file(SampleSpec()))
    listed = [Listed(o["Key"], o["ETag"]) for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)["Contents"]]
    real = indexer.s3.get_object

    def dropped(**request: Any) -> Any:
        if request["Key"].endswith("0.dcm"):
            raise EndpointConnectionError(endpoint_url="http://s3")
        return real(**request)

    with mock.patch.object(indexer.s3, "get_object", side_effect=dropped), ThreadPoolExecutor(2) as pool:
        result = indexer.index_page(listed, pool)
    assert result.indexed == 1
    assert result.failures == [(f"{prefix}0.dcm", "UPSTREAM_UNAVAILABLE")] and result.failed == 1


def test_the_indexer_function_imports_neither_flask_nor_requests() -> None:
    # Its package carries pydicom and boto3 only: an import of anything else would fail there.
    probe = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("flask", "requests", "strawberry", "moto", "tqdm"):
            raise ImportError(name)
sys.meta_path.insert(0, Block())
import importlib.util
spec = importlib.util.spec_from_file_location("indexer_function", "lambda/indexer_function.py")
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(callable(module.lambda_handler))
"""
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "True", done.stderr


def test_a_malformed_record_is_reported_not_retried(handler: ModuleType, caplog: pytest.LogCaptureFixture) -> None:
    # GIVEN an event whose record lacks its object key (S3 never sends that)
    broken = {"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "data-apps-ex"}}}]}
    # WHEN it is handled THEN it fails as an invalid event, logged by its code, without a retry
    with caplog.at_level("INFO"):
        assert handler.lambda_handler(broken, LambdaContext()) == {"failed": 1}
    assert any('"code": "INVALID_EVENT"' in record.getMessage() for record in caplog.records)


def test_importing_the_indexer_leaves_logging_alone() -> None:
    code = (
        "import importlib.util, logging;"
        f"spec = importlib.util.spec_from_file_location('indexer_function', {str(INDEXER_FILE)!r});"
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m);"
        "print(logging.getLogger().level, logging.getLogger('dicom_meta.indexer').level)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.split() == [str(logging.WARNING), str(logging.NOTSET)]


def test_a_get_denied_for_want_of_list_bucket_reads_as_gone() -> None:
    # GIVEN S3 answering 403, as it does for a missing key to a role without s3:ListBucket
    denied: Any = {"Error": {"Code": "AccessDenied"}, "ResponseMetadata": {"HTTPStatusCode": 403}}
    client = mock.Mock()
    client.get_object.side_effect = ClientError(denied, "GetObject")
    # WHEN the indexer reads the header THEN the object is gone, not an unexpected failure
    with pytest.raises(NotFound):
        VersionedFetch(client, "data-apps-ex", "dicom/gone.dcm")(0, 1024)
