"""The embedded SQS (local/moto_sqs.py) over HTTP on the session's embedded AWS: a call costs
the messages it touches, not the queue, and answers as moto's does."""

from __future__ import annotations

import time
import types
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from moto.sqs.models import Message

from local import moto_sqs
from local.server import LocalAWS

WAITING = 3000


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The counts' clock, standing still until a test moves it: how long the machine takes
    between two calls must not decide whether the queue is counted again."""
    now = [time.monotonic()]
    monkeypatch.setattr(moto_sqs, "time", types.SimpleNamespace(monotonic=lambda: now[0], time=time.time))
    return now


@pytest.fixture
def queue(local_aws: LocalAWS, clock: list[float]) -> Iterator[tuple[Any, str]]:
    sqs = local_aws.client("sqs")
    url = sqs.create_queue(QueueName=f"moto-sqs-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    for start in range(0, WAITING, 10):
        entries = [{"Id": str(n), "MessageBody": f"event {start + n}"} for n in range(10)]
        sqs.send_message_batch(QueueUrl=url, Entries=entries)
    yield sqs, url
    sqs.delete_queue(QueueUrl=url)


@pytest.fixture
def looked_at(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many times a message's visibility is asked, per call (the work moto did per message)."""
    seen = [0]
    visible = Message.visible

    def counted(message: Message) -> bool:
        seen[0] += 1
        return bool(visible.fget(message))  # type: ignore[attr-defined]  # a property's getter

    monkeypatch.setattr(Message, "visible", property(counted))
    return seen


def test_receive_delete_and_send_touch_a_few_messages_of_thousands(
    queue: tuple[Any, str], looked_at: list[int], clock: list[float]
) -> None:
    sqs, url = queue
    received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in received] == [f"event {n}" for n in range(10)]
    assert looked_at[0] <= 20  # the ten taken (and the loop's own look); moto looked at 3,000
    looked_at[0] = 0
    for message in received:
        sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    assert looked_at[0] == 0  # found among the ten in flight
    clock[0] += moto_sqs.COUNT_SECONDS  # the counts are due again
    sqs.send_message(QueueUrl=url, MessageBody="one more")
    sqs.send_message(QueueUrl=url, MessageBody="and another")
    assert WAITING - 10 <= looked_at[0] <= WAITING  # one count of the queue for both sends (moto: 3 each)


def test_the_queue_answers_as_moto_s(queue: tuple[Any, str], monkeypatch: pytest.MonkeyPatch) -> None:
    sqs, url = queue
    monkeypatch.setattr(moto_sqs, "COUNT_SECONDS", 0.0)  # counted afresh on every call here
    received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30)["Messages"]
    assert counts(sqs, url) == (WAITING - 10, 10)
    handle = received[0]["ReceiptHandle"]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=handle)
    sqs.delete_message(QueueUrl=url, ReceiptHandle=handle)  # again: accepted, as SQS does
    assert counts(sqs, url) == (WAITING - 10, 9)
    with pytest.raises(ClientError, match="ReceiptHandleIsInvalid"):
        sqs.delete_message(QueueUrl=url, ReceiptHandle="not-a-handle")
    # A message made visible again is received again, and deleted by its newest handle.
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=received[1]["ReceiptHandle"], VisibilityTimeout=0)
    again = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1)["Messages"][0]
    assert again["MessageId"] == received[1]["MessageId"]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=again["ReceiptHandle"])
    assert counts(sqs, url) == (WAITING - 10, 8)


def counts(sqs: Any, url: str) -> tuple[int, int]:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return int(attributes[names[0]]), int(attributes[names[1]])
