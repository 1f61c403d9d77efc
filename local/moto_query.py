"""Queries of the embedded DynamoDB that read only the partition they name, as DynamoDB does.

moto's ``Table.query`` walks every item of the table for each Query (``for item in
self.all_items()``), then sorts what matched: a page of 8 shard queries costs 8 walks of the
whole table, all under the lock that serializes DynamoDB requests (``moto_fixes``). Here each
table keeps, per index (and for itself), its partitions as sorted lists of sort keys, updated on
every put, update and delete (batches and transactions go through those). A Query then finds
its partition, bisects to its key condition and its ``ExclusiveStartKey``, and reads ``Limit``
items: its cost no longer grows with the table.

What moto does after picking the items (projection of the index, ``FilterExpression``,
``ProjectionExpression``, ``ScannedCount`` counted before the filter, the 1 MB page) is kept
as moto's code does it. Anything this fast path does not cover (a multi-attribute key, the
legacy ``QueryFilter``, key values of a type other than the key's) falls back to moto's own
query. One difference, closer to DynamoDB: moto returns a ``LastEvaluatedKey`` when items
outside the key condition follow the page; here only items inside it do.

Installed by ``moto_fixes.install``, in the process that runs the moto server, never at import.
"""

from __future__ import annotations

import bisect
import contextlib
import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.models.table import RESULT_SIZE_LIMIT, Table

from local import moto_update

# Items the fast path looked at, for the tests (they bound a Query's reads by it).
stats = {"examined": 0, "fallbacks": 0}
ENABLED = True

_original_query: Callable[..., Any] = Table.query
_original_put = Table.put_item
_original_delete = Table.delete_item
# Key condition comparisons this path bisects: moto's names and symbols alike.
_LOWER = {"GT": "gt", ">": "gt", "GE": "ge", ">=": "ge", "EQ": "eq", "=": "eq", "BETWEEN": "ge"}
_UPPER = {"LT": "lt", "<": "lt", "LE": "le", "<=": "le", "EQ": "le", "=": "le"}
_SUPPORTED = {*_LOWER, *_UPPER, "BEGINS_WITH"}


def install() -> None:
    """Route Table.query through the partitions, and keep them on every write (idempotent)."""
    Table.query = _query  # type: ignore[method-assign]  # the fix itself
    Table.put_item = _put_item  # type: ignore[method-assign]  # keeps the partitions
    Table.delete_item = _delete_item  # type: ignore[method-assign]  # keeps the partitions
    DynamoDBBackend.update_item = _update_item  # type: ignore[method-assign]  # keeps the partitions


@dataclass
class Partition:
    """One partition's items in sort key order: ``keys`` sorted, ``firsts`` their first parts."""

    keys: list[tuple[Any, ...]] = field(default_factory=list)
    firsts: list[Any] = field(default_factory=list)
    items: dict[tuple[Any, ...], Item] = field(default_factory=dict)

    def add(self, key: tuple[Any, ...], item: Item) -> None:
        at = bisect.bisect_left(self.keys, key)
        self.keys.insert(at, key)
        self.firsts.insert(at, key[0])
        self.items[key] = item

    def remove(self, key: tuple[Any, ...]) -> None:
        at = bisect.bisect_left(self.keys, key)
        if at < len(self.keys) and self.keys[at] == key:
            del self.keys[at], self.firsts[at]
        self.items.pop(key, None)


class SortedIndex:
    """A table's (``index`` None) or one index's partitions, and where each item is in them."""

    def __init__(self, table: Table, index: Any | None) -> None:
        self.hash_attr, self.range_attr = _key_attributes(table, index)
        # The order moto sorts items in: an index's by its range key (without one, the table's
        # range key), then the table's keys; the table's by its range key.
        if index is None:
            self.order = [table.range_key_attr or table.hash_key_attr]
        else:
            first = self.range_attr or table.range_key_attr or table.hash_key_attr
            self.order = [first, *_table_keys(table)]
        self.partitions: dict[Any, Partition] = {}
        self.placed: dict[tuple[Any, ...], tuple[Any, tuple[Any, ...]]] = {}
        self.table = table
        for item in table.all_items():
            self.put(item)

    def put(self, item: Item) -> None:
        identity = _identity(item)
        self.drop(identity)
        hash_value = item.attrs.get(self.hash_attr)
        if hash_value is None or (self.range_attr is not None and item.attrs.get(self.range_attr) is None):
            return  # sparse: not in this index
        key = tuple(_sortable(item.attrs.get(name)) for name in self.order)
        partition_key = _sortable(hash_value)
        self.partitions.setdefault(partition_key, Partition()).add(key, item)
        self.placed[identity] = (partition_key, key)

    def drop(self, identity: tuple[Any, ...]) -> None:
        placed = self.placed.pop(identity, None)
        if placed is not None:
            partition = self.partitions[placed[0]]
            partition.remove(placed[1])
            if not partition.keys:
                del self.partitions[placed[0]]


def _key_attributes(table: Table, index: Any | None) -> tuple[str, str | None]:
    if index is None:
        return table.hash_key_attr, table.range_key_attr
    hashes = [k["AttributeName"] for k in index.schema if k["KeyType"] == "HASH"]
    ranges = [k["AttributeName"] for k in index.schema if k["KeyType"] == "RANGE"]
    if len(hashes) != 1 or len(ranges) > 1:
        raise _Unsupported
    return hashes[0], ranges[0] if ranges else None


def _table_keys(table: Table) -> tuple[str, ...]:
    return tuple(a for a in (table.hash_key_attr, table.range_key_attr) if a is not None)


def _identity(item: Item) -> tuple[Any, ...]:
    return (_sortable(item.hash_key), _sortable(item.range_key) if item.range_key is not None else None)


def _sortable(value: DynamoType | None) -> Any:
    """A key value as Python compares it: its type first, so no two types are ever compared."""
    if value is None:
        raise _Unsupported
    return (value.type, value.cast_value)


class _Unsupported(Exception):
    """A Query, or a table, this fast path leaves to moto."""


def _indexes(table: Table) -> dict[str | None, SortedIndex]:
    built: dict[str | None, SortedIndex] | None = getattr(table, "_sorted_indexes", None)
    if built is None:
        built = {}
        table._sorted_indexes = built  # type: ignore[attr-defined]  # kept with the table it indexes
    return built


def _index(table: Table, index_name: str | None) -> SortedIndex:
    """Return the sorted index of ``index_name`` (the table's own for None), built on first use."""
    built = _indexes(table)
    if index_name not in built:
        index = table.get_index(index_name) if index_name else None
        built[index_name] = SortedIndex(table, index)
    return built[index_name]


def _put_item(self: Table, *args: Any, **kwargs: Any) -> Item:
    item: Item = _original_put(self, *args, **kwargs)
    for index in _indexes(self).values():
        index.put(item)
    return item


def _delete_item(self: Table, hash_key: DynamoType, range_key: DynamoType | None) -> Item | None:
    item: Item | None = _original_delete(self, hash_key, range_key)
    if item is not None:
        for index in _indexes(self).values():
            index.drop(_identity(item))
    return item


def _update_item(self: DynamoDBBackend, table_name: str, *args: Any, **kwargs: Any) -> Item:
    # moto changes the stored item in place: it is placed again where its keys now put it.
    item: Item = moto_update.update_item(self, table_name, *args, **kwargs)
    for index in _indexes(self.get_table(table_name)).values():
        index.put(item)
    return item


def _query(
    self: Table,
    hash_key: DynamoType | None,
    range_comparison: str | None,
    range_objs: list[DynamoType],
    limit: int,
    exclusive_start_key: dict[str, Any] | None,
    scan_index_forward: bool,
    projection_expressions: list[list[str]] | None,
    index_name: str | None = None,
    consistent_read: bool = False,
    filter_expression: Any = None,
    hash_key_conditions: list[tuple[str, DynamoType]] | None = None,
    range_key_conditions: list[tuple[str, str, list[DynamoType]]] | None = None,
    **filter_kwargs: Any,
) -> tuple[list[Item], int, dict[str, Any] | None]:
    arguments = (hash_key, range_comparison, range_objs, limit, exclusive_start_key, scan_index_forward)
    try:
        if not ENABLED or filter_kwargs or len(range_key_conditions or []) > 1:
            raise _Unsupported
        if index_name is not None and index_name not in {i.name for i in self.all_indexes()}:
            raise _Unsupported  # moto's own error message
        picked = _pick(self, index_name, hash_key_conditions or [], *arguments)
    except (_Unsupported, TypeError, KeyError):
        stats["fallbacks"] += 1
        return _original_query(
            self,
            *arguments,
            projection_expressions,
            index_name,
            consistent_read,
            filter_expression,
            hash_key_conditions=hash_key_conditions,
            range_key_conditions=range_key_conditions,
            **filter_kwargs,
        )
    results, scanned_count, last_evaluated_key = picked
    # From here on as moto's Table.query ends.
    results = copy.deepcopy(results)
    if index_name:
        index = self.get_index(index_name)
        results = [index.project(r) for r in results]
    if filter_expression is not None:
        results = [item for item in results if filter_expression.expr(item)]
    if projection_expressions:
        results = [r.project(projection_expressions) for r in results]
    return results, scanned_count, last_evaluated_key


def _pick(
    table: Table,
    index_name: str | None,
    hash_conditions: list[tuple[str, DynamoType]],
    hash_key: DynamoType | None,
    comparison: str | None,
    range_objs: list[DynamoType],
    limit: int | None,
    start_key: dict[str, Any] | None,
    forward: bool,
) -> tuple[list[Item], int, dict[str, Any] | None]:
    """Return the page's items (before moto's projection and filter), its count and where it ended."""
    index = _index(table, index_name)
    wanted = dict(hash_conditions).get(index.hash_attr, hash_key if index_name is None else None)
    if wanted is None or (comparison is not None and (comparison not in _SUPPORTED or index.range_attr is None)):
        raise _Unsupported
    partition = index.partitions.get(_sortable(wanted))
    if partition is None:
        return [], 0, None
    low, high = _span(partition, comparison, [_sortable(v) for v in range_objs])
    if start_key:
        resume = tuple(_sortable(DynamoType(start_key[name])) for name in index.order)
        if forward:
            low = max(low, bisect.bisect_right(partition.keys, resume))
        else:
            high = min(high, bisect.bisect_left(partition.keys, resume))
    results: list[Item] = []
    size = 0
    positions: Iterator[int] = iter(range(low, high) if forward else range(high - 1, low - 1, -1))
    for at in positions:
        item = partition.items[partition.keys[at]]
        stats["examined"] += 1
        if len(results) == limit or size + item.size() > RESULT_SIZE_LIMIT:
            return results, len(results), table._get_last_evaluated_key(results[-1], index_name)
        results.append(item)
        size += item.size()
    return results, len(results), None


def _span(partition: Partition, comparison: str | None, values: list[Any]) -> tuple[int, int]:
    """Return the positions ``low``..``high`` of the partition's keys the key condition takes."""
    firsts = partition.firsts
    low, high = 0, len(firsts)
    if comparison is None:
        return low, high
    if comparison == "BEGINS_WITH":
        kind, prefix = values[0]
        if not isinstance(prefix, str) or not prefix:
            raise _Unsupported
        low = bisect.bisect_left(firsts, (kind, prefix))
        # Every text starting with the prefix sorts before the prefix with its last character raised.
        if ord(prefix[-1]) < 0x10FFFF:
            high = bisect.bisect_left(firsts, (kind, prefix[:-1] + chr(ord(prefix[-1]) + 1)))
        return low, high
    lower, upper = _LOWER.get(comparison), _UPPER.get(comparison)
    if lower is not None:
        low = (bisect.bisect_right if lower == "gt" else bisect.bisect_left)(firsts, values[0])
    if comparison == "BETWEEN":
        high = bisect.bisect_right(firsts, values[1])
    elif upper is not None:
        high = (bisect.bisect_left if upper == "lt" else bisect.bisect_right)(firsts, values[0])
    return low, max(low, high)


@contextlib.contextmanager
def disabled() -> Iterator[None]:
    """Run moto's own query meanwhile (the tests compare the two)."""
    global ENABLED
    ENABLED = False
    try:
        yield
    finally:
        ENABLED = True
