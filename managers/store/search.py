"""The record search's plan: which index serves a ``SearchFilter``, its shards' bounds, the
Query requests and how their pages are merged and cut (``DynamoDBManager.search``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from managers.store.table import (
    INSTITUTION_SHARD,
    LIST_SHARD,
    LIST_VALUE,
    MODALITY_SHARD,
    PARTITION_KEY,
    SORT_ATTRIBUTE,
    shard_values,
)
from metadata import FIELDS


@dataclass(frozen=True)
class SearchFilter:
    """Normalized search criteria: dates are ``YYYYMMDD`` and inclusive."""

    patient_id: str | None = None
    modality: str | None = None
    institution_name: str | None = None
    study_date_from: str | None = None
    study_date_to: str | None = None

    @property
    def has_date_range(self) -> bool:
        return bool(self.study_date_from or self.study_date_to)


@dataclass(frozen=True)
class Plan:
    """The index that serves a filter, the partitions to merge, and what the key leaves to filter."""

    index: str
    hash_name: str
    partitions: list[str]
    filters: dict[str, str]


@dataclass(frozen=True)
class Bounds:
    """Sort key bounds: ``low`` exclusive when ``high`` is ``None``, both inclusive otherwise."""

    low: str | None
    high: str | None


def plan_for(criteria: SearchFilter) -> Plan:
    """Choose the index whose key matches the most selective criterion given."""
    others = {"Modality": criteria.modality, "InstitutionName": criteria.institution_name}
    if criteria.patient_id:
        # Many values, so unsharded: one patient's records are one partition.
        return Plan("PatientID-StudyDate", "PatientID", [criteria.patient_id], _given(others))
    if criteria.modality:
        partitions = shard_values(criteria.modality)
        return Plan("ModalityShard-StudyDate", MODALITY_SHARD, partitions, _given({**others, "Modality": None}))
    if criteria.institution_name:
        return Plan("InstitutionShard-StudyDate", INSTITUTION_SHARD, shard_values(criteria.institution_name), {})
    return Plan("ListShard-StudyDate", LIST_SHARD, shard_values(LIST_VALUE), {})


def _given(values: dict[str, str | None]) -> dict[str, str]:
    return {name: value for name, value in values.items() if value is not None}


def sort_bounds(criteria: SearchFilter, after: str | None) -> Bounds | None:
    """Return the sort key bounds of a page, or ``None`` when nothing can follow ``after``."""
    if criteria.has_date_range:
        # Undated keys start with '#', dated ones with a digit; '#' < '$' puts every key of
        # the last day below "<to>$".
        low: str | None = f"{criteria.study_date_from}#" if criteria.study_date_from else "0"
        high: str | None = f"{criteria.study_date_to or '99999999'}$"
    else:
        low, high = None, None
    if after is None:
        return Bounds(low, high)
    if high is None:
        return Bounds(after, None)
    if after > high:
        return None
    return Bounds(max(low or "", after), high)


def continue_query(
    first: Future[dict[str, Any]], query: Callable[[dict[str, Any]], dict[str, Any]], request: dict[str, Any]
) -> Iterator[dict[str, Any]]:
    """Yield a partition's items from its first response on, one Query of ``Limit`` more at a time."""
    response = first.result()
    while True:
        yield from response.get("Items", [])
        if "LastEvaluatedKey" not in response:
            return
        request = {**request, "ExclusiveStartKey": response["LastEvaluatedKey"]}
        response = query(request)


def add_filter(request: dict[str, Any], filters: dict[str, str]) -> None:
    """Add equality filters for the criteria the key condition does not cover."""
    clauses = []
    for attribute, value in filters.items():
        request["ExpressionAttributeNames"][f"#{attribute}"] = attribute
        request["ExpressionAttributeValues"][f":{attribute}"] = {"S": value}
        clauses.append(f"#{attribute} = :{attribute}")
    if clauses:
        request["FilterExpression"] = " AND ".join(clauses)


def page_of(items: Iterator[dict[str, Any]], limit: int) -> tuple[list[dict[str, str | None]], dict[str, str] | None]:
    """Take ``limit`` items, peeking one further to know whether another page exists."""
    page: list[dict[str, Any]] = []
    for item in items:
        if len(page) == limit:
            return [_with_path(item) for item in page], {"sort": page[-1][SORT_ATTRIBUTE]["S"]}
        page.append(item)
    return [_with_path(item) for item in page], None


def record_of(item: dict[str, Any]) -> dict[str, str | None]:
    return {field: item[field]["S"] if field in item else None for field in FIELDS}


def _with_path(item: dict[str, Any]) -> dict[str, str | None]:
    return {"s3_path": item[PARTITION_KEY]["S"], **record_of(item)}
