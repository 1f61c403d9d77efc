"""local/heap.py: moto keeps no list of every model it made, what a full collection leaves is
frozen past a size, and what moto stores needs no collector to be freed (a frozen cycle would
stay for good)."""

from __future__ import annotations

import gc
import uuid
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.dynamodb.models import dynamodb_backends
from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.s3.models import FakeKey, s3_backends
from moto.sqs.models import Message, sqs_backends

from config import AWS_REGION, S3_BUCKET_NAME
from local import heap
from local.server import LocalAWS
from managers.DynamoDBManager import DynamoDBManager
from managers.store.table import SORT_ATTRIBUTE
from tests.test_end_to_end import eventually


@pytest.fixture
def installed(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[int], None]]:
    def install(freeze_at: int) -> None:
        monkeypatch.setattr(heap, "FREEZE_AT", freeze_at)
        heap.install()

    try:
        yield install
    finally:
        heap.uninstall()
        gc.unfreeze()


@pytest.fixture
def no_collector() -> Iterator[None]:
    """Only reference counting frees objects meanwhile."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def test_a_full_collection_leaving_enough_objects_freezes_them(installed: Callable[[int], None]) -> None:
    installed(10**9)
    gc.collect()
    assert gc.get_freeze_count() == 0  # fewer objects than that: nothing frozen
    heap.uninstall()  # the callback alone now: no collection of another thread can freeze meanwhile
    heap.FREEZE_AT = 1_000
    heap._collected("stop", {"generation": 1, "collected": 0, "uncollectable": 0})
    heap._collected("start", {"generation": 2})
    assert gc.get_freeze_count() == 0  # only the end of a full collection freezes
    heap._collected("stop", {"generation": 2, "collected": 0, "uncollectable": 0})
    assert gc.get_freeze_count() >= 1_000
    # Installed, the next full collection freezes what is new (frozen objects are in no generation)
    heap.install()
    kept = [[n] for n in range(10_000)]
    gc.collect()
    assert {id(item) for item in kept}.isdisjoint(id(tracked) for tracked in gc.get_objects())


def test_moto_keeps_no_list_of_the_models_it_made(local_aws: LocalAWS, dynamodb: DynamoDBManager) -> None:
    # A Query copies every item it returns: moto kept each copy (64 MB per 1,000 study pages).
    path = f"s3://b/heap/{uuid.uuid4().hex}.dcm"
    row = {"FilePath": {"S": path}, "PatientID": {"S": "HEAP"}, SORT_ATTRIBUTE: {"S": f"20240101#{path}"}}
    dynamodb.client.put_item(TableName=dynamodb.table_name, Item=row)
    for _ in range(3):
        found = dynamodb.query_partition("PatientID-StudyDate", "HEAP", None, 10)
        assert [item["FilePath"] for item in found] == [row["FilePath"]]
    local_aws.client("s3").put_object(Bucket=S3_BUCKET_NAME, Key="heap-test/listed", Body=b"x")
    tracked = [getattr(model, "instances_tracked") for model in (Item, FakeKey, Message)]  # noqa: B009  # moto sets it on each class
    assert tracked == [[], [], []]


def test_an_overwritten_or_deleted_item_is_freed_without_the_collector(
    dynamodb: DynamoDBManager, no_collector: None
) -> None:
    table = dynamodb_backends[DEFAULT_ACCOUNT_ID][AWS_REGION].get_table(dynamodb.table_name)
    path = f"s3://b/heap/{uuid.uuid4().hex}.dcm"
    gone = []
    for write in ("put", "overwrite", "delete"):
        item = table.get_item(DynamoType({"S": path}), None) if write != "put" else None
        if item is not None:
            gone.append(weakref.ref(item))
        if write == "delete":
            dynamodb.client.delete_item(TableName=dynamodb.table_name, Key={"FilePath": {"S": path}})
        else:
            row = {"FilePath": {"S": path}, "PatientID": {"S": write}, "Tags": {"SS": ["a", "b"]}}
            dynamodb.client.put_item(TableName=dynamodb.table_name, Item=row)
        del item
    # the server's thread may still be unwinding the request that let go of them
    assert len(gone) == 2 and eventually(lambda: all(ref() is None for ref in gone))


def test_an_overwritten_or_deleted_object_is_freed_without_the_collector(
    local_aws: LocalAWS, no_collector: None
) -> None:
    s3 = local_aws.client("s3")
    key = f"heap-test/{uuid.uuid4().hex}"
    bucket = s3_backends[DEFAULT_ACCOUNT_ID]["aws"].get_bucket(S3_BUCKET_NAME)
    gone: list[weakref.ref[Any]] = []
    for body in (b"first", b"x" * 100_000, None):  # the second lives in a file (over 64 KiB)
        stored = bucket.keys.get(key)
        if stored is not None:
            gone.append(weakref.ref(stored))
        del stored
        if body is None:
            s3.delete_object(Bucket=S3_BUCKET_NAME, Key=key)
        else:
            s3.put_object(Bucket=S3_BUCKET_NAME, Key=key, Body=body)
    # the server's thread may still be unwinding the request that let go of them
    assert len(gone) == 2 and eventually(lambda: all(ref() is None for ref in gone))


def test_a_handled_message_is_freed_without_the_collector(local_aws: LocalAWS, no_collector: None) -> None:
    sqs = local_aws.client("sqs")
    name = f"heap-{uuid.uuid4().hex[:8]}"
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    try:
        sqs.send_message(QueueUrl=url, MessageBody="event")
        queue = sqs_backends[DEFAULT_ACCOUNT_ID][AWS_REGION].get_queue(name)
        message = weakref.ref(queue._messages[0])
        received = sqs.receive_message(QueueUrl=url)["Messages"][0]
        sqs.delete_message(QueueUrl=url, ReceiptHandle=received["ReceiptHandle"])
        assert eventually(lambda: message() is None)
    finally:
        sqs.delete_queue(QueueUrl=url)
