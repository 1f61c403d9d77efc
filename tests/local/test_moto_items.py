"""local/moto_items.py: items measured and converted as moto's own code does it, at less cost."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.models.utilities import dynamo_to_dict

from local import moto_items
from tests.local.test_moto_json import ITEM

# Values whose sizes moto counts by case: numbers by their significant digits, sets by their
# members, maps by their names too, booleans and nulls as 1, text by its UTF-8 bytes.
VALUES: list[dict[str, Any]] = [
    {"S": ""},
    {"S": "Ünïcode ☃"},
    {"N": "100"},
    {"N": "-1.2500"},
    {"N": "0.000"},
    {"B": b"\x00\xff"},
    {"B": base64.b64encode(b"wire").decode()},
    {"SS": ["a", "ß", "#token/2.25.1/79818875#2.25.1/pn:m"]},
    {"NS": ["1", "2.50", "-0.1"]},
    {"BS": [b"\x01", b"\x02\x03"]},
    {"BOOL": False},
    {"BOOL": True},
    {"NULL": True},
    {"L": [{"S": "x"}, {"N": "12"}, {"L": []}, {"M": {"k": {"SS": ["y"]}}}]},
    {"M": {"inner": {"M": {"ü": {"N": "3"}, "l": {"L": [{"NULL": True}]}}}, "e": {"M": {}}}},
]


def moto_size(value: DynamoType) -> int:
    return int(moto_items._original_size(value))


@pytest.mark.parametrize("raw", VALUES, ids=lambda raw: next(iter(raw)))
def test_a_value_measures_what_moto_counts(raw: dict[str, Any]) -> None:
    value = DynamoType(raw)
    assert moto_items.size(value) == moto_size(value)


def test_sizes_are_counted_by_case() -> None:
    assert moto_items.size(DynamoType({"SS": ["a", "ß"]})) == 3  # UTF-8 bytes
    assert moto_items.size(DynamoType({"N": "-1.2500"})) == 3  # 2 significant digits, + 1
    assert moto_items.size(DynamoType({"M": {"ü": {"BOOL": False}}})) == 3  # the name's 2 bytes + 1


def test_an_item_measures_what_moto_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    attributes = {**ITEM, **{f"V{n}": raw for n, raw in enumerate(VALUES)}}
    item = Item(DynamoType(ITEM["FilePath"]), None, attributes)
    expected = sum(len(name.encode()) + moto_size(value) for name, value in item.attrs.items())
    monkeypatch.setattr(DynamoType, "size", moto_items.size)
    assert item.size() == expected


def test_an_item_converts_to_what_moto_converts() -> None:
    attributes = {**ITEM, **{f"V{n}": raw for n, raw in enumerate(VALUES)}}
    item = Item(DynamoType(ITEM["FilePath"]), None, attributes)
    result = {"Responses": {"t": [item.describe_attrs(None)["Item"]]}, "Count": 1, "Flag": None, "F": 0.5}
    converted = moto_items.to_dict(result)
    assert converted == dynamo_to_dict(result)
    assert converted["Responses"]["t"][0]["V5"] == {"B": b"\x00\xff"}  # bytes, for moto's writer
    assert converted["Responses"]["t"][0]["V6"] == {"B": b"wire"}  # decoded from the wire's base64


def test_disabled_it_is_motos_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(moto_items, "ENABLED", False)
    calls: list[DynamoType] = []
    original = moto_items._original_size

    def counted(value: DynamoType) -> int:
        calls.append(value)
        return int(original(value))

    monkeypatch.setattr(moto_items, "_original_size", counted)
    value = DynamoType({"SS": ["a", "b"]})
    assert moto_items.size(value) == 2
    assert calls[0] is value  # moto's measured it (and, once installed, its members through here)
