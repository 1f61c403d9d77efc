"""The embedded SQS at the cost of a few messages per call, however many wait.

moto's queue walks every message it holds, in Python, on each call: ``SendMessage`` three
times (the queue's approximate counts, which its ``attributes`` compute and ``SendMessage``
reads for one static setting), ``ReceiveMessage`` once (to list the visible messages, of which
it takes ten) and ``DeleteMessage`` twice (to find the message, then to rebuild the list
without it), each message's visibility asking the clock. With 10,000 events waiting after a
folder was copied into ``dicom/``, a copy's notification cost tens of milliseconds and the
copies timed out. Here:

- the clock is ``time.time`` (moto asked ``datetime`` twice per message);
- the visible messages are read lazily: a receive stops at the ten it takes;
- the three approximate counts are counted in one walk and kept for ``COUNT_SECONDS`` (SQS
  says they are approximate and eventually consistent);
- a delete finds its message among the messages in flight first (received, not deleted: a
  few per runner), and removes it with one copy of the list, under the queue's lock so that a
  message sent meanwhile is not lost.

Installed by ``moto_fixes.install``, in the process that runs the moto server, never at import.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from moto.core import utils as moto_utils
from moto.sqs import models as sqs_models
from moto.sqs.exceptions import ReceiptHandleIsInvalid
from moto.sqs.models import Message, Queue

COUNT_SECONDS = 1.0


def install() -> None:
    """Patch moto's queue as described above (idempotent)."""
    sqs_models.unix_time = _now_seconds  # the fix itself: the same clock, cheaper
    sqs_models.unix_time_millis = _now_millis
    Queue.messages = property(VisibleMessages)  # type: ignore[method-assign, assignment]  # lazy
    Queue.approximate_number_of_messages = property(lambda queue: _counts(queue)[0])  # type: ignore[method-assign, assignment]  # counted once
    Queue.approximate_number_of_messages_delayed = property(lambda queue: _counts(queue)[1])  # type: ignore[method-assign, assignment]  # counted once
    Queue.approximate_number_of_messages_not_visible = property(lambda queue: _counts(queue)[2])  # type: ignore[method-assign, assignment]  # counted once
    Queue.delete_message = delete_message  # type: ignore[method-assign]  # the fix itself


def _now_seconds(dt: Any = None) -> float:
    return moto_utils.unix_time(dt) if dt is not None else time.time()


def _now_millis(dt: Any = None) -> float:
    return moto_utils.unix_time_millis(dt) if dt is not None else time.time() * 1000.0


class VisibleMessages:
    """A queue's visible, undelayed messages, read as far as the reader goes."""

    def __init__(self, queue: Queue) -> None:
        self._messages: list[Message] = queue._messages  # the list as it is now: moto rebinds, never edits

    def __iter__(self) -> Iterator[Message]:
        return (message for message in self._messages if message.visible and not message.delayed)

    def __bool__(self) -> bool:
        return next(iter(self), None) is not None

    def __len__(self) -> int:
        return sum(1 for _ in self)


def _counts(queue: Queue) -> tuple[int, int, int]:
    """(visible, delayed, in flight), counted in one walk at most every ``COUNT_SECONDS``."""
    now = time.monotonic()
    counted: tuple[float, tuple[int, int, int]] | None = queue.__dict__.get("_counted")
    if counted is not None and now - counted[0] < COUNT_SECONDS:
        return counted[1]
    visible = delayed = in_flight = 0
    for message in list(queue._messages):
        if not message.visible:
            in_flight += 1
        elif message.delayed:
            delayed += 1
        else:
            visible += 1
    counts = (visible, delayed, in_flight)
    queue.__dict__["_counted"] = (now, counts)
    return counts


def delete_message(self: Queue, receipt_handle: str) -> None:
    """moto's ``Queue.delete_message``: the message found among those in flight first."""
    if receipt_handle in self.deleted_messages:
        return  # deleted already: SQS accepts it again
    message = _find(list(self.pending_messages), receipt_handle) or _find(self._messages, receipt_handle)
    if message is None:
        raise ReceiptHandleIsInvalid()
    with self._messages_lock:  # add_message appends under it: nothing sent meanwhile is lost
        kept = list(self._messages)
        if message in kept:  # by identity (Message has no __eq__), in C
            kept.remove(message)
        self._messages = kept
    self.pending_messages.discard(message)
    self.deleted_messages.update(handle for handle in message.all_receipt_handles if handle is not None)


def _find(messages: list[Message], receipt_handle: str) -> Message | None:
    return next((message for message in messages if message.had_receipt_handle(receipt_handle)), None)
