"""Fixes to moto's DynamoDB, so the embedded AWS keeps the guarantees the service relies on.

- moto runs requests on threads without a lock, and an ``UpdateItem``'s ``ADD`` is a read and a
  write in Python: two at once can lose one. DynamoDB serializes writes to an item; the
  embedded AWS serializes its DynamoDB requests (``serialize_dynamodb``), a person's request
  before the background work waiting with it (``FairLock``).
- moto's ``TransactWriteItems`` deep-copies every table it touches, once per action, and on a
  cancelled transaction puts the copies back, undoing whatever other requests wrote meanwhile.
  Its cost grows with the table and it loses writes. ``transact_write_items`` below checks every
  condition first, applies only when all hold, and rolls back only the items it wrote.
- moto's Query walks the whole table; ``local.moto_query`` reads only the partition named,
  so no request holds the lock for work that grows with the table.
- moto validates an UpdateItem with ten walks of its syntax tree and measures an item once
  per attribute it sets; ``local.moto_update`` applies the service's update shapes directly
  and measures each item once.
- moto's SQS walks every message of a queue, in Python, on each SendMessage, ReceiveMessage
  and DeleteMessage, asking ``datetime`` for the time twice per message: with thousands of
  events waiting, each event cost milliseconds more and copies into ``dicom/`` timed out.
  ``local.moto_sqs`` makes each call cost the few messages it touches.
- moto finds each request's service by listing its own package directory, under a lock every
  request takes: the list is read once (``_moto_modules``). And it lists each handler class's
  methods with ``inspect.getmembers`` on every request (4 % of the emulator's time): once per
  class here (``_method_names``).
- moto writes each response by walking botocore's model of it, value by value; the item
  calls' results are DynamoDB JSON already: ``local.moto_json`` dumps them directly.
- moto measures an item (twice per item of a BatchGetItem) and converts each result by
  building an object per value; ``local.moto_items`` gives the same numbers and values without.
- moto keeps objects in memory and reads a whole object for a ranged GET;
  ``local.moto_objects`` keeps them in files and reads the range only.
- moto's S3 events carry no ``sequencer``, by which S3 orders the events of one key: events
  delivered by several runners at once could then be applied out of order (a put's record
  written over its delete's tombstone). ``sequenced_s3_event`` numbers them, as S3 does.

Installed by ``LocalAWS.start`` in the process that runs the moto server, never at import.
"""

from __future__ import annotations

import collections
import copy
import functools
import itertools
import threading
from collections.abc import Callable, Iterable
from typing import Any

from moto import backends as moto_backends
from moto.core import responses as moto_responses
from moto.dynamodb.comparisons import get_filter_expression
from moto.dynamodb.exceptions import (
    MultipleTransactionsException,
    TooManyTransactionsException,
    TransactionCanceledException,
    TransactWriteSingleOpException,
)
from moto.dynamodb.models import DynamoDBBackend
from moto.s3 import notifications as s3_notifications

from local import heap, moto_items, moto_json, moto_objects, moto_query, moto_sqs, moto_update
from managers.aws.clients import BACKGROUND_AGENT


class FairLock:
    """A lock handed to its waiters first come, first served (``threading.Lock`` wakes any
    waiter), a request of a person before background work.

    Background requests (the event delivery's and the bulk indexer's, by their User-Agent)
    wait behind every waiting foreground one, but never behind more than ``FOREGROUND_RUN`` in a
    row: a burst of writes cannot keep the API's reads waiting, and reads cannot stop indexing.
    """

    FOREGROUND_RUN = 4

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._waiters: collections.deque[threading.Event] = collections.deque()
        self._background: collections.deque[threading.Event] = collections.deque()
        self._held = False
        self._run = 0  # foreground hand-overs in a row while background work waited

    def acquire(self, background: bool = False) -> None:
        with self._mutex:
            if not self._held:
                self._held = True
                return
            turn = threading.Event()
            (self._background if background else self._waiters).append(turn)
        turn.wait()  # released to this waiter: it holds the lock now

    def release(self) -> None:
        with self._mutex:
            if self._waiters and (not self._background or self._run < self.FOREGROUND_RUN):
                self._run = self._run + 1 if self._background else 0
                self._waiters.popleft().set()
            elif self._background:
                self._run = 0
                self._background.popleft().set()
            else:
                self._held = False

    def __enter__(self) -> None:
        self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


_lock = FairLock()
_OPERATIONS = frozenset({"ConditionCheck", "Put", "Delete", "Update"})


def serialize_dynamodb(app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    """Wrap the moto WSGI app so that DynamoDB requests run one at a time."""

    def serialized(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
            return app(environ, start_response)
        _lock.acquire(background=BACKGROUND_AGENT in environ.get("HTTP_USER_AGENT", ""))
        try:
            return list(app(environ, start_response))
        finally:
            _lock.release()

    return serialized


def install() -> None:
    """Replace moto's ``transact_write_items``, its Query, its UpdateItem and the rest above (idempotent)."""
    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]  # the fix itself
    moto_query.install()
    moto_update.install()
    moto_objects.install()
    moto_json.install()
    moto_items.install()
    heap.untrack_models()
    moto_backends.list_of_moto_modules = _moto_modules  # the fix itself: read once
    moto_responses.method_names_from_class = _method_names  # the fix itself: once per class
    moto_sqs.install()
    s3_notifications._get_s3_event = sequenced_s3_event  # the fix itself


_listed_modules = moto_backends.list_of_moto_modules
_listed_methods = moto_responses.method_names_from_class


@functools.cache
def _moto_modules() -> tuple[str, ...]:
    return tuple(_listed_modules())


@functools.cache
def _method_names(clazz: object) -> list[str]:
    # moto only asks ``in`` of it; the classes' methods are set before the first request.
    return _listed_methods(clazz)


_original_s3_event = s3_notifications._get_s3_event
_sequence = itertools.count(1)
_sequence_lock = threading.Lock()


def next_sequence() -> int:
    """Take the number the next S3 event's sequencer would get (a snapshot keeps it)."""
    with _sequence_lock:
        return next(_sequence)


def continue_sequence(start: int) -> None:
    """Number the S3 events from ``start`` on (after a snapshot's events)."""
    global _sequence
    with _sequence_lock:
        _sequence = itertools.count(max(1, start))


def dynamodb_lock() -> FairLock:
    """The lock every DynamoDB request holds: whoever holds it sees the table between requests."""
    return _lock


def sequenced_s3_event(*args: Any, **kwargs: Any) -> dict[str, list[dict[str, Any]]]:
    """moto's S3 event with a ``sequencer``: hexadecimal, increasing in the order events are made."""
    event: dict[str, list[dict[str, Any]]] = _original_s3_event(*args, **kwargs)
    with _sequence_lock:
        number = next(_sequence)
    for record in event["Records"]:
        record["s3"]["object"]["sequencer"] = f"{number:016X}"
    return event


def _key_of(backend: DynamoDBBackend, op_type: str, op: dict[str, Any]) -> dict[str, Any]:
    if op_type != "Put":
        key: dict[str, Any] = op["Key"]
        return key
    table = backend.get_table(op["TableName"])
    attrs = op["Item"]
    key = {table.hash_key_attr: attrs[table.hash_key_attr]}
    if table.range_key_attr is not None:
        key[table.range_key_attr] = attrs[table.range_key_attr]
    return key


def transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    """All or nothing, as DynamoDB: conditions checked first, writes undone item by item on error."""
    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    actions = []
    seen: set[tuple[str, str]] = set()
    for item in transact_items:
        if len(item) != 1:
            raise TransactWriteSingleOpException
        op_type, op = next(iter(item.items()))
        if op_type not in _OPERATIONS:
            raise ValueError("Unsupported transaction operation")
        key = _key_of(self, op_type, op)
        unique = (str(op["TableName"]), str(dict(sorted(key.items()))))
        if unique in seen:
            raise MultipleTransactionsException()
        seen.add(unique)
        actions.append((op_type, op, key))
    errors = [_check(self, op, key) for _, op, key in actions]
    if any(code is not None for code, _, _ in errors):
        raise TransactionCanceledException(errors)
    backups = [(op["TableName"], key, copy.deepcopy(self.get_item(op["TableName"], key))) for _, op, key in actions]
    try:
        for op_type, op, key in actions:
            _apply(self, op_type, op, key)
    except Exception:
        for table_name, key, before in backups:
            _restore(self, table_name, key, before)
        raise


def _check(backend: DynamoDBBackend, op: dict[str, Any], key: dict[str, Any]) -> tuple[Any, Any, Any]:
    condition = op.get("ConditionExpression")
    if condition is None:
        return (None, None, None)
    current = backend.get_item(op["TableName"], key)
    expression = get_filter_expression(
        condition, op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
    )
    if expression.expr(current):
        return (None, None, None)
    return ("ConditionalCheckFailed", "The conditional request failed", None)


def _apply(backend: DynamoDBBackend, op_type: str, op: dict[str, Any], key: dict[str, Any]) -> None:
    """Apply one action whose condition was checked already."""
    if op_type == "Put":
        backend.put_item(op["TableName"], op["Item"])
    elif op_type == "Delete":
        backend.delete_item(op["TableName"], key)
    elif op_type == "Update":
        backend.update_item(
            op["TableName"],
            key,
            update_expression=op["UpdateExpression"],
            expression_attribute_names=op.get("ExpressionAttributeNames") or {},
            expression_attribute_values=op.get("ExpressionAttributeValues") or {},
        )


def _restore(backend: DynamoDBBackend, table_name: str, key: dict[str, Any], before: Any) -> None:
    if before is None:
        backend.delete_item(table_name, key)
    else:
        backend.put_item(table_name, before.to_json()["Attributes"])
