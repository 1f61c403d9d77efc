"""The embedded DynamoDB's UpdateItem fast path (local/moto_update.py) against moto's own, over
HTTP on the session's embedded AWS: the same items, answers and errors for the updates the
service makes and for those it must leave to moto."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from config import DYNAMODB_TABLE_NAME
from local import moto_update
from local.server import LocalAWS
from managers.store.aggregates import Changes
from managers.store.study_items import series_key, study_key

STUDY = {"NumberOfStudyRelatedInstances": {"N": "3"}, "PatientID": {"S": "P-1"}, "Keys": {"SS": ["a", "b"]}}


@pytest.fixture(scope="module")
def table(local_aws: LocalAWS) -> Iterator[tuple[Any, str]]:
    client = local_aws.client("dynamodb")
    name = f"moto-update-{uuid.uuid4().hex[:8]}"
    client.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in ("pk", "g", "gs")],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by-g",
                "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}, {"AttributeName": "gs", "KeyType": "RANGE"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )
    yield client, name
    client.delete_table(TableName=name)


def names(*attributes: str) -> dict[str, str]:
    return {f"#a{n}": attribute for n, attribute in enumerate(attributes)}


# (stored item or None, the update's arguments): every one is answered by both paths alike.
UPDATES: list[tuple[dict[str, Any] | None, dict[str, Any]]] = [
    # The study counter of aggregates.py on a new and on an existing study.
    (
        None,
        {
            "UpdateExpression": "ADD #a0 :a0, #a1 :a1 SET #a2 = :a2, #a3 = if_not_exists(#a3, :a3)",
            "ExpressionAttributeNames": names(
                "NumberOfStudyRelatedInstances", "S#1.2", "StudyInstanceUID", "PatientID"
            ),
            "ExpressionAttributeValues": {":a0": {"N": "1"}, ":a1": {"N": "1"}, ":a2": {"S": "1"}, ":a3": {"S": "P-2"}},
        },
    ),
    (
        STUDY,
        {
            "UpdateExpression": "ADD #a0 :a0 SET #a1 = if_not_exists(#a1, :a1), #a2 = if_not_exists(#a2, :a2)",
            "ExpressionAttributeNames": names("NumberOfStudyRelatedInstances", "PatientID", "StudyDate"),
            "ExpressionAttributeValues": {":a0": {"N": "-1"}, ":a1": {"S": "P-2"}, ":a2": {"S": "20240101"}},
            "ReturnValues": "ALL_NEW",
        },
    ),
    # The search keys' set, with its condition, and the print's removal.
    (
        STUDY,
        {
            "UpdateExpression": "ADD #keys :keys SET #print = :print",
            "ConditionExpression": "attribute_exists(#key)",
            "ExpressionAttributeNames": {"#keys": "Keys", "#print": "Print", "#key": "pk"},
            "ExpressionAttributeValues": {":keys": {"SS": ["b", "c"]}, ":print": {"S": "d1"}},
            "ReturnValues": "UPDATED_NEW",
        },
    ),
    (
        STUDY,
        {
            "UpdateExpression": "REMOVE #print",
            "ConditionExpression": "attribute_exists(#key)",
            "ExpressionAttributeNames": {"#print": "PatientID", "#key": "pk"},
            "ReturnValues": "ALL_OLD",
        },
    ),
    # Conditions that fail, on an item and on none.
    (
        None,
        {
            "UpdateExpression": "SET #a0 = :a0",
            "ConditionExpression": "attribute_exists(#a0)",
            "ExpressionAttributeNames": names("Print"),
            "ExpressionAttributeValues": {":a0": {"S": "x"}},
        },
    ),
    (
        STUDY,
        {
            "UpdateExpression": "SET #a0 = :a0",
            "ConditionExpression": "#a0 = :no",
            "ExpressionAttributeNames": names("PatientID"),
            "ExpressionAttributeValues": {":a0": {"S": "x"}, ":no": {"S": "nobody"}},
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        },
    ),
    # An index's keys set, so the item enters the index.
    (
        STUDY,
        {
            "UpdateExpression": "set #a0 = :a0, #a1 = :a1",
            "ExpressionAttributeNames": names("g", "gs"),
            "ExpressionAttributeValues": {":a0": {"S": "G"}, ":a1": {"S": "2024"}},
        },
    ),
    # What moto must decide (the FAST_SHAPES above are the fast path's): a number added to a
    # string, a key attribute, a path named twice, an empty index key, an unknown placeholder,
    # a DELETE clause, a document path.
    (
        STUDY,
        {
            "UpdateExpression": "ADD #a0 :a0",
            "ExpressionAttributeNames": names("PatientID"),
            "ExpressionAttributeValues": {":a0": {"N": "1"}},
        },
    ),
    (
        STUDY,
        {
            "UpdateExpression": "SET #a0 = :a0",
            "ExpressionAttributeNames": names("pk"),
            "ExpressionAttributeValues": {":a0": {"S": "x"}},
        },
    ),
    (
        STUDY,
        {
            "UpdateExpression": "ADD #a0 :a0 SET #a0 = :a1",
            "ExpressionAttributeNames": names("NumberOfStudyRelatedInstances"),
            "ExpressionAttributeValues": {":a0": {"N": "1"}, ":a1": {"N": "2"}},
        },
    ),
    (
        STUDY,
        {
            "UpdateExpression": "SET #a0 = :a0",
            "ExpressionAttributeNames": names("g"),
            "ExpressionAttributeValues": {":a0": {"S": ""}},
        },
    ),
    (
        STUDY,
        {
            "UpdateExpression": "SET #a0 = :zz",
            "ExpressionAttributeNames": names("Print"),
            "ExpressionAttributeValues": {":a0": {"S": "x"}},
        },
    ),
    (
        STUDY,
        {
            "UpdateExpression": "DELETE #a0 :a0",
            "ExpressionAttributeNames": names("Keys"),
            "ExpressionAttributeValues": {":a0": {"SS": ["a"]}},
        },
    ),
    (
        STUDY,
        {
            "UpdateExpression": "SET #a0.x = :a0",
            "ExpressionAttributeNames": names("Deep"),
            "ExpressionAttributeValues": {":a0": {"S": "x"}},
        },
    ),
]


FAST_SHAPES = 7


def answer(client: Any, name: str, stored: dict[str, Any] | None, update: dict[str, Any]) -> tuple[Any, Any]:
    """Store ``stored`` (or nothing), run ``update``; return (its answer or error, the item after)."""
    key = {"pk": {"S": "under-test"}}
    client.delete_item(TableName=name, Key=key)
    if stored is not None:
        client.put_item(TableName=name, Item={**key, **stored})
    try:
        result: Any = client.update_item(TableName=name, Key=key, **update)
        result.pop("ResponseMetadata")
    except ClientError as exc:
        result = (exc.response["Error"], exc.response.get("Item"))
    after = client.get_item(TableName=name, Key=key, ConsistentRead=True).get("Item")
    return _sets_sorted(result), _sets_sorted(after)


def _sets_sorted(value: Any) -> Any:
    """A set's members in one order: DynamoDB returns them in none."""
    if isinstance(value, dict):
        return {k: sorted(v) if k in ("SS", "NS") else _sets_sorted(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return type(value)(_sets_sorted(v) for v in value)
    return value


@pytest.mark.parametrize(("stored", "update"), UPDATES, ids=[f"update-{n}" for n in range(len(UPDATES))])
def test_an_update_answers_what_moto_answers(table: tuple[Any, str], stored: Any, update: dict[str, Any]) -> None:
    client, name = table
    before = dict(moto_update.stats)
    ours = answer(client, name, stored, update)
    fast = UPDATES.index((stored, update)) < FAST_SHAPES
    assert moto_update.stats["fast"] - before["fast"] == (1 if fast else 0)
    with moto_update.disabled():
        theirs = answer(client, name, stored, update)
    assert ours == theirs


def test_the_service_s_counter_updates_take_the_fast_path(local_aws: LocalAWS) -> None:
    client = local_aws.client("dynamodb")
    study = f"2.25.{uuid.uuid4().int}"
    record = {
        "FilePath": {"S": "s3://bucket/dicom/one.dcm"},
        "StudyInstanceUID": {"S": study},
        "InstanceSeries": {"S": "1.2.3.4"},
        "SeriesNumber": {"N": "2"},
        "HeaderFields": {"M": {"Modality": {"S": "CT"}, "PatientID": {"S": "P-1"}, "StudyDate": {"S": "20240101"}}},
    }
    changes = Changes()
    assert changes.add(None, record)
    before = dict(moto_update.stats)
    client.transact_write_items(TransactItems=changes.actions(DYNAMODB_TABLE_NAME))
    assert moto_update.stats["fast"] - before["fast"] == 2  # the study's update and the series'
    assert moto_update.stats["fallbacks"] == before["fallbacks"]
    stored = client.get_item(TableName=DYNAMODB_TABLE_NAME, Key={"FilePath": {"S": study_key(study)}})["Item"]
    assert stored["NumberOfStudyRelatedInstances"] == {"N": "1"} and stored["PatientID"] == {"S": "P-1"}
    for key in (study_key(study), series_key("1.2.3.4")):
        client.delete_item(TableName=DYNAMODB_TABLE_NAME, Key={"FilePath": {"S": key}})


def test_an_update_that_grows_the_item_past_the_limit_changes_nothing(table: tuple[Any, str]) -> None:
    client, name = table
    key = {"pk": {"S": uuid.uuid4().hex}}
    client.put_item(TableName=name, Item={**key, "big": {"S": "x" * 300_000}, "n": {"N": "1"}})
    with pytest.raises(ClientError, match="exceeded the maximum allowed size"):
        client.update_item(
            TableName=name,
            Key=key,
            UpdateExpression="ADD #n :one SET #more = :more",
            ExpressionAttributeNames={"#n": "n", "#more": "more"},
            ExpressionAttributeValues={":one": {"N": "1"}, ":more": {"S": "y" * 200_000}},
        )
    item = client.get_item(TableName=name, Key=key)["Item"]
    assert item["n"] == {"N": "1"} and "more" not in item


@pytest.mark.parametrize(
    ("expression", "parsed"),
    [
        ("ADD #a :a", ("ADD",)),
        ("ADD #a :a, #b :b SET #c = :c, #d = if_not_exists(#d, :d)", ("ADD", "ADD", "SET", "SET_FIRST")),
        ("set #a = :a remove #b", ("SET", "REMOVE")),
        ("SET #add = :a", ("SET",)),
        ("SET #a = :a + :b", None),
        ("SET #a = list_append(#a, :a)", None),
        ("SET #a = :a SET #b = :b", None),
        ("SET a = :a", None),
        ("", None),
    ],
)
def test_what_the_fast_path_parses(expression: str, parsed: tuple[str, ...] | None) -> None:
    clauses = moto_update.parse(expression)
    assert (tuple(clause.kind for clause in clauses) if clauses else None) == parsed


def test_a_put_too_large_is_refused_as_moto_refuses_it(table: tuple[Any, str]) -> None:
    client, name = table
    key = {"pk": {"S": uuid.uuid4().hex}}
    with pytest.raises(ClientError, match="Item size has exceeded the maximum allowed size"):
        client.put_item(TableName=name, Item={**key, "a": {"S": "x" * 250_000}, "b": {"S": "y" * 250_000}})
    assert "Item" not in client.get_item(TableName=name, Key=key)
    client.put_item(TableName=name, Item={**key, "a": {"S": "x" * 250_000}, "b": {"S": "y" * 100_000}})
    assert len(client.get_item(TableName=name, Key=key)["Item"]["b"]["S"]) == 100_000
