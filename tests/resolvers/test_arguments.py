"""The one reader of each argument kind: every API accepts the same dates, numbers, UIDs and modalities."""

from __future__ import annotations

import pytest

from errors import InvalidArgument
from metadata import modality_code
from resolvers.arguments import checked_modality, checked_uid, date_bounds, date_range, whole_number


@pytest.mark.parametrize(
    ("value", "bounds"),
    [
        ("", (None, None)),
        ("20240101", ("20240101", "20240101")),
        ("2024-01-01", ("20240101", "20240101")),
        ("20240101-20241231", ("20240101", "20241231")),
        ("2024-01-01-2024-12-31", ("20240101", "20241231")),
        ("20240101-2024-12-31", ("20240101", "20241231")),
        ("-20241231", (None, "20241231")),
        ("2024-01-01-", ("20240101", None)),
    ],
)
def test_a_date_range_takes_both_date_forms_at_either_end(value: str, bounds: tuple[str | None, str | None]) -> None:
    assert date_range(value, "StudyDate") == bounds


@pytest.mark.parametrize(
    "value",
    ["-", "2024", "20241301", "2024-1-01", "20240101--20240102", "20241231-20240101", "x20240101", "2024/01/01"],
)
def test_a_malformed_or_reversed_range_is_refused_without_quoting_it(value: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        date_range(value, "StudyDate")
    assert len(value) < 2 or value not in raised.value.message


def test_date_bounds_order_the_ends() -> None:
    assert date_bounds("2024-01-01", "20240131", ("from", "to")) == ("20240101", "20240131")
    with pytest.raises(InvalidArgument, match="from is after to"):
        date_bounds("20240201", "20240131", ("from", "to"))


@pytest.mark.parametrize(("value", "number"), [("0", 0), ("50", 50), ("999999999", 999_999_999)])
def test_whole_numbers(value: str, number: int) -> None:
    assert whole_number(value, "limit") == number


@pytest.mark.parametrize("value", ["", "-1", "1.5", "²", "١", "1000000000", " 5"])
def test_what_is_not_a_whole_number(value: str) -> None:
    with pytest.raises(InvalidArgument, match="limit must be a whole number"):
        whole_number(value, "limit")


@pytest.mark.parametrize(("value", "code"), [("CT", "CT"), ("mr", "MR"), ("OT ", "OT"), ("RT_PLAN", "RT_PLAN")])
def test_one_modality_rule(value: str, code: str) -> None:
    assert modality_code(value) == code
    assert checked_modality(value, "Modality") == code


@pytest.mark.parametrize("value", ["", "C*", "C-T", "A" * 17, "CT?"])
def test_what_is_not_a_modality(value: str) -> None:
    assert modality_code(value) is None
    with pytest.raises(InvalidArgument):
        checked_modality(value, "Modality")


@pytest.mark.parametrize("value", ["1", "1.2.840.10008.1.2.1", "9" * 64])
def test_uids(value: str) -> None:
    assert checked_uid(value, "uid") == value


@pytest.mark.parametrize("value", ["", "1..2", ".1", "1.", "1.a", "9" * 65, "1.2\n"])
def test_what_is_not_a_uid(value: str) -> None:
    with pytest.raises(InvalidArgument):
        checked_uid(value, "uid")
