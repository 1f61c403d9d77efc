"""The embedded DynamoDB's items measured and converted without a new object per value.

moto measures an item (its 400 KB limit on every attribute it stores, the 1 MB page of a
Query, the 16 MB of a BatchGetItem, twice per item there) by building a ``DynamoType`` for every
member of every set and map; and it turns every result into plain values (``DynamoResult``,
``dynamo_to_dict``) by asking each value whether it is a date or has a ``to_json``. For a study
item (its search keys are a set of about 25 strings) that was 52 µs to measure and 77 µs to
convert, about half the emulator's 0.35 ms per item of a page's BatchGetItem.

Here ``DynamoType.size`` gives moto's number without the objects, and ``DynamoResult`` converts
the values an item holds directly, handing anything else (a date, an object with ``to_json``,
a subclass) to moto's ``dynamo_to_dict``. ``tests/local/test_moto_items.py`` checks both against
moto's own for every value type. Installed by ``moto_fixes.install``, in the process that runs
the moto server, never at import.
"""

from __future__ import annotations

from typing import Any

from moto.core.responses import ActionResult
from moto.dynamodb.models.dynamo_type import DynamoType, LimitedSizeDict
from moto.dynamodb.models.utilities import bytesize, dynamo_to_dict, number_size
from moto.dynamodb.responses import DynamoResult

ENABLED = True
_original_size = DynamoType.size
_original_result_init = DynamoResult.__init__
_SETS = ("SS", "NS", "BS")
_SCALARS = (str, int, float, bool, type(None))
_CONTAINERS = (dict, LimitedSizeDict)


def install() -> None:
    """Measure and convert items without moto's per-value objects (idempotent)."""
    DynamoType.size = size  # type: ignore[method-assign]  # the fix itself
    DynamoResult.__init__ = _result_init  # type: ignore[method-assign]  # the fix itself


def size(self: DynamoType) -> int:
    """The value's size as moto's ``DynamoType.size`` counts it, in the same order of cases."""
    if not ENABLED:
        return int(_original_size(self))
    kind, value = self.type, self.value
    if kind == "N":
        return number_size(str(value))
    if kind in _SETS:
        if kind == "NS":
            return sum(number_size(str(member)) for member in value)
        return sum(_scalar_size(member) for member in value)
    if kind == "L":
        return sum(member.size() for member in value)
    if kind == "M":
        return sum(bytesize(name) + _member(member).size() for name, member in value.items())
    return _scalar_size(value)


def _scalar_size(value: Any) -> int:
    return 1 if isinstance(value, bool) else bytesize(value)


def _member(value: Any) -> DynamoType:
    # moto wraps each map member again (``DynamoType(v)``); one already wrapped measures the same.
    return value if type(value) is DynamoType else DynamoType(value)


def _result_init(self: DynamoResult, result: object) -> None:
    if not ENABLED:
        _original_result_init(self, result)
        return
    ActionResult.__init__(self, to_dict(result))


def to_dict(value: Any) -> Any:
    """``dynamo_to_dict(value)``, with the values items hold converted here."""
    kind = type(value)
    if kind is DynamoType:
        return _dynamo(value)
    if kind in _SCALARS:
        return value
    if kind in _CONTAINERS:
        return {key: to_dict(member) for key, member in value.items()}
    if kind is list:
        return [to_dict(member) for member in value]
    return dynamo_to_dict(value)


def _dynamo(value: DynamoType) -> dict[str, Any]:
    if value.type in ("B", "BS"):
        return dict(dynamo_to_dict(value))  # decoded from base64 or kept as bytes: moto's rules
    return {value.type: to_dict(value.value)}
