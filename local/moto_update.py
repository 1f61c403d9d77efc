"""UpdateItem in the embedded DynamoDB at the cost of what it changes, for the service's shapes.

moto parses every UpdateExpression, deep-copies its syntax tree and walks it with ten
validators, twice when the item is new, then executes it; each attribute it sets re-measures
the whole item. The service's study and series counters (``managers.store.aggregates``) are
such updates, one or two in every indexing transaction: they were the largest part of the
emulator's work per indexed file, all of it under the lock that serializes DynamoDB requests.

Here an expression made only of top-level placeholders in the clauses the service writes is
parsed once (and cached) and applied directly:

- ``ADD #n :v``: a number added to a number (or to nothing: 0), a set joined to a set;
- ``SET #n = :v`` and ``SET #n = if_not_exists(#m, :v)``;
- ``REMOVE #n``.

The item is measured once, after the changes, against moto's limit, and left as it was when
too large. Conditions (``ConditionExpression``, ``Expected``) are moto's own code. Anything else
(another clause or function, a document path, a key attribute, an attribute named twice, a
type the clause does not take, a table with a stream) goes to moto's update unchanged, which
raises its own errors for what is invalid.

moto's request handler also parsed each update expression of a transaction once more, to
list its attribute names; each expression is now parsed once (``install``). Every item moto
builds (each put, each item of a batch or a transaction) re-measured itself
once per attribute too, a cost that grew with the square of its attributes; ``measured_item``
measures it once, with the same limit and error.

Installed by ``moto_fixes.install`` (the update through ``moto_query``, which keeps its
partitions on every update), in the process that runs the moto server, never at import.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from moto.dynamodb.comparisons import create_condition_expression_parser, get_expected
from moto.dynamodb.exceptions import ConditionalCheckFailed, ItemSizeTooLarge, ItemSizeToUpdateTooLarge
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict
from moto.dynamodb.models.utilities import bytesize
from moto.dynamodb.parsing.expressions import UpdateExpressionParser  # type: ignore[attr-defined]  # untyped export

# Updates applied here and those left to moto, for the tests.
stats = {"fast": 0, "fallbacks": 0}
ENABLED = True
# moto's limit on an item's size (models/dynamo_type.py LimitedSizeDict): 400 KB and a margin.
ITEM_SIZE_LIMIT = 405000

_moto_update = DynamoDBBackend.update_item
_NAME = r"#\w+"
_VALUE = r":\w+"
_SECTION = re.compile(r"(?:^|\s)(ADD|SET|REMOVE|DELETE)\s", re.IGNORECASE)
_ADD = re.compile(rf"\s*({_NAME})\s+({_VALUE})\s*")
_SET = re.compile(rf"\s*({_NAME})\s*=\s*(?:if_not_exists\(\s*({_NAME})\s*,\s*({_VALUE})\s*\)|({_VALUE}))\s*")
_REMOVE = re.compile(rf"\s*({_NAME})\s*")
_SET_TYPES = frozenset({"SS", "NS", "BS"})


@dataclass(frozen=True)
class Clause:
    """One action on one attribute: ``kind`` ADD, SET, SET_FIRST (if_not_exists) or REMOVE."""

    kind: str
    name: str
    value: str = ""
    source: str = ""  # SET_FIRST: the attribute whose presence keeps it


def update_item(self: DynamoDBBackend, table_name: str, key: dict[str, Any], **kwargs: Any) -> Item:
    """moto's ``update_item``, through the fast path when the update is one of its shapes."""
    if ENABLED:
        item = _fast_update(self, table_name, key, **kwargs)
        if item is not None:
            return item
    stats["fallbacks"] += 1
    result: Item = _moto_update(self, table_name, key, **kwargs)
    return result


def install() -> None:
    """Build moto's items measured once and parse each update expression once (the update
    itself goes through ``moto_query``'s)."""
    Item.__init__ = measured_item  # type: ignore[method-assign]  # the fix itself
    if not hasattr(UpdateExpressionParser.make, "cache_info"):
        # The syntax tree is only read (moto's validators work on a deep copy of it), so one
        # parse serves every request with the same expression: moto's request handler parsed
        # each transaction's updates again only to list their attribute names.
        UpdateExpressionParser.make = staticmethod(functools.lru_cache(maxsize=1024)(UpdateExpressionParser.make))


def measured_item(self: Item, hash_key: DynamoType, range_key: DynamoType | None, attrs: dict[str, Any]) -> None:
    """moto's ``Item.__init__``, the item measured once: too large, it raises as moto does."""
    self.hash_key = hash_key
    self.range_key = range_key
    self.attrs = LimitedSizeDict()
    for name, value in attrs.items():
        dict.__setitem__(self.attrs, name, DynamoType(value))  # not LimitedSizeDict's measure per attribute
    if _size(self.attrs) > ITEM_SIZE_LIMIT:
        raise ItemSizeTooLarge


@contextlib.contextmanager
def disabled() -> Iterator[None]:
    """Run moto's own update meanwhile (the tests compare the two)."""
    global ENABLED
    ENABLED = False
    try:
        yield
    finally:
        ENABLED = True


@functools.lru_cache(maxsize=1024)
def parse(expression: str) -> tuple[Clause, ...] | None:
    """The clauses of ``expression``, or ``None`` unless every part is one this path applies."""
    parts = _SECTION.split(expression)
    if parts[0].strip():
        return None
    keywords = [word.upper() for word in parts[1::2]]
    if len(set(keywords)) != len(keywords) or "DELETE" in keywords:
        return None
    clauses: list[Clause] = []
    for keyword, body in zip(keywords, parts[2::2], strict=True):
        found = _clauses(keyword, body)
        if found is None:
            return None
        clauses += found
    names = [clause.name for clause in clauses]
    return tuple(clauses) if clauses and len(set(names)) == len(names) else None


def _clauses(keyword: str, body: str) -> list[Clause] | None:
    pattern = {"ADD": _ADD, "SET": _SET, "REMOVE": _REMOVE}[keyword]
    out = []
    for part in _split(body):
        match = pattern.fullmatch(part)
        if match is None:
            return None
        if keyword == "ADD":
            out.append(Clause("ADD", match[1], match[2]))
        elif keyword == "REMOVE":
            out.append(Clause("REMOVE", match[1]))
        elif match[4]:
            out.append(Clause("SET", match[1], match[4]))
        else:
            out.append(Clause("SET_FIRST", match[1], match[3], source=match[2]))
    return out


def _split(body: str) -> list[str]:
    """Split a clause list at its top-level commas (not those inside ``if_not_exists(...)``)."""
    parts, depth, start = [], 0, 0
    for at, char in enumerate(body):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(body[start:at])
            start = at + 1
    parts.append(body[start:])
    return parts


def _fast_update(
    backend: DynamoDBBackend,
    table_name: str,
    key: dict[str, Any],
    *,
    update_expression: str | None = None,
    expression_attribute_names: dict[str, str] | None = None,
    expression_attribute_values: dict[str, Any] | None = None,
    attribute_updates: dict[str, Any] | None = None,
    expected: dict[str, Any] | None = None,
    condition_expression: str | None = None,
    return_values_on_condition_check_failure: str | None = None,
    **other: Any,
) -> Item | None:
    """Apply the update here, or return ``None`` (nothing changed) for moto to do it.

    ``other``: arguments a later moto may pass; the update is then left to it.
    """
    table = backend.get_table(table_name)
    if other:
        return None
    clauses = parse(update_expression) if update_expression and not attribute_updates else None
    if clauses is None or table.stream_shard is not None or table.range_key_attr is not None:
        return None
    changes = _resolve(table, clauses, expression_attribute_names or {}, expression_attribute_values or {})
    if changes is None or set(key) != {table.hash_key_attr}:
        return None
    hash_value = DynamoType(key[table.hash_key_attr])
    item = table.get_item(hash_value, None)
    values = _new_values(item, changes)
    if values is None:
        return None
    stats["fast"] += 1
    _check_conditions(
        item,
        expected,
        condition_expression,
        expression_attribute_names,
        expression_attribute_values,
        return_values_on_condition_check_failure,
    )
    if item is None:
        item = table.put_item({table.hash_key_attr: key[table.hash_key_attr]})
    _store(item, values)
    return item


def _resolve(
    table: Any, clauses: tuple[Clause, ...], names: dict[str, str], values: dict[str, Any]
) -> list[tuple[Clause, str, str, DynamoType | None]] | None:
    """Each clause with its attribute, its source's and its value; ``None`` for moto's checks."""
    keys = set(table.attribute_keys) | {table.hash_key_attr}
    declared = {attribute["AttributeName"]: attribute["AttributeType"] for attribute in table.attr}
    out = []
    for clause in clauses:
        name, source = names.get(clause.name), names.get(clause.source or clause.name)
        value = values.get(clause.value) if clause.value else None
        if name is None or source is None or (clause.value and value is None) or name == table.hash_key_attr:
            return None
        if value is not None and not (isinstance(value, dict) and len(value) == 1):
            return None
        typed = DynamoType(value) if value is not None else None
        if typed is not None and not _valid(typed):
            return None
        if name in keys and (typed is None or declared.get(name) != typed.type or typed.value in ("", b"")):
            return None  # an index key removed, retyped or emptied: moto says why not
        out.append((clause, name, source, typed))
    return out


def _valid(value: DynamoType) -> bool:
    if value.type in _SET_TYPES:
        return bool(value.value) and len(set(value.value)) == len(value.value)
    return value.type in {"S", "N", "B", "BOOL", "NULL", "M", "L"}


def _check_conditions(
    item: Item | None,
    expected: dict[str, Any] | None,
    condition: str | None,
    names: dict[str, str] | None,
    values: dict[str, Any] | None,
    return_values: str | None,
) -> None:
    """Raise ``ConditionalCheckFailed`` as moto's update does when a condition does not hold."""
    if get_expected(expected or {}).expr(item) and create_condition_expression_parser(
        condition, names, values
    ).parse().expr(item):
        return
    if return_values == "ALL_OLD" and item is not None:
        raise ConditionalCheckFailed(item=item.to_json()["Attributes"])
    raise ConditionalCheckFailed


def _new_values(
    item: Item | None, changes: list[tuple[Clause, str, str, DynamoType | None]]
) -> dict[str, DynamoType | None] | None:
    """The attributes' new values (``None``: removed); ``None`` when a type does not fit."""
    attrs = item.attrs if item is not None else {}
    out: dict[str, DynamoType | None] = {}
    for clause, name, source, value in changes:
        current = attrs.get(name)
        if clause.kind == "REMOVE":
            out[name] = None
        elif clause.kind == "SET":
            out[name] = value
        elif clause.kind == "SET_FIRST":
            kept = attrs.get(source)
            if kept is None:
                out[name] = value
            elif source != name:
                out[name] = copy.deepcopy(kept)
        else:
            added = _add(current, value)
            if added is None:
                return None
            out[name] = added
    return out


def _add(current: DynamoType | None, value: DynamoType | None) -> DynamoType | None:
    """``ADD``: a number plus a number (nothing counts 0), a set joined to a set of its type."""
    if value is None or value.type not in _SET_TYPES | {"N"}:
        return None
    if current is None:
        return value
    if current.type != value.type:
        return None
    if value.type == "N":
        result: DynamoType = current + value
        return result
    return DynamoType({value.type: current.value + [v for v in value.value if v not in current.value]})


def _store(item: Item, values: dict[str, DynamoType | None]) -> None:
    """Write the new values into the stored item, measured once; undone when it grows too large."""
    before = {name: item.attrs.get(name) for name in values}
    for name, value in values.items():
        if value is None:
            item.attrs.pop(name, None)
        else:
            dict.__setitem__(item.attrs, name, value)  # measured once below, not per attribute
    if _size(item.attrs) > ITEM_SIZE_LIMIT:
        for name, old in before.items():
            if old is None:
                item.attrs.pop(name, None)
            else:
                dict.__setitem__(item.attrs, name, old)
        raise ItemSizeToUpdateTooLarge()


def _size(attrs: dict[str, Any]) -> int:
    return sum(bytesize(name) + value.size() for name, value in attrs.items())
