"""Fixes to moto's DynamoDB, so the embedded AWS keeps the guarantees the service relies on.

- moto runs requests on threads without a lock, and an ``UpdateItem``'s ``ADD`` is a read and a
  write in Python: two at once can lose one. DynamoDB serializes writes to an item; the
  embedded AWS serializes its DynamoDB requests (``serialize_dynamodb``).
- moto's ``TransactWriteItems`` deep-copies every table it touches, once per action, and on a
  cancelled transaction puts the copies back, undoing whatever other requests wrote meanwhile.
  Its cost grows with the table and it loses writes. ``transact_write_items`` below checks every
  condition first, applies only when all hold, and rolls back only the items it wrote.
- moto's Query walks the whole table; ``local.moto_query`` reads only the partition named,
  so no request holds the lock for work that grows with the table.

Installed by ``LocalAWS.start`` in the process that runs the moto server, never at import.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Iterable
from typing import Any

from moto.dynamodb.comparisons import get_filter_expression
from moto.dynamodb.exceptions import (
    MultipleTransactionsException,
    TooManyTransactionsException,
    TransactionCanceledException,
    TransactWriteSingleOpException,
)
from moto.dynamodb.models import DynamoDBBackend

from local import moto_query

_lock = threading.Lock()
_OPERATIONS = frozenset({"ConditionCheck", "Put", "Delete", "Update"})


def serialize_dynamodb(app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    """Wrap the moto WSGI app so that DynamoDB requests run one at a time."""

    def serialized(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
            return app(environ, start_response)
        with _lock:
            return list(app(environ, start_response))

    return serialized


def install() -> None:
    """Replace moto's ``transact_write_items`` and its Query (idempotent)."""
    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]  # the fix itself
    moto_query.install()


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
