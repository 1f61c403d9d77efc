"""The embedded DynamoDB's Query (local/moto_query.py) against moto's own, over HTTP on the
session's embedded AWS: the same items, counts and pages for the calls the service makes, and
a cost bounded by the page, not the table."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from local import moto_query
from local.server import LocalAWS

PARTITIONS = [f"p{n}" for n in range(6)]


def item(n: int) -> dict[str, Any]:
    """Item ``n``: in a partition of the table, of a GSI with a range key, of a sparse GSI."""
    chance = random.Random(n)
    made: dict[str, Any] = {
        "pk": {"S": PARTITIONS[n % len(PARTITIONS)]},
        "sk": {"S": f"{chance.randrange(10**6):07d}-{n}"},
        "g": {"S": chance.choice(PARTITIONS)},
        "gs": {"S": chance.choice(["2024", "2023", "2025"]) + f"{chance.randrange(10**4):05d}"},
        "num": {"N": str(chance.randrange(-50, 50))},
        "kind": {"S": chance.choice(["CT", "MR", "US"])},
    }
    if n % 3 == 0:
        made["sparse"] = {"S": chance.choice(["a", "b"])}
    return made


@pytest.fixture(scope="module")
def table(local_aws: LocalAWS) -> Iterator[tuple[Any, str]]:
    client = local_aws.client("dynamodb")
    name = f"moto-query-{uuid.uuid4().hex[:8]}"
    client.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": a, "AttributeType": t}
            for a, t in (("pk", "S"), ("sk", "S"), ("g", "S"), ("gs", "S"), ("sparse", "S"), ("num", "N"))
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by-g",
                "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}, {"AttributeName": "gs", "KeyType": "RANGE"}],
                "Projection": {"ProjectionType": "ALL"},
            },
            {
                "IndexName": "by-num",
                "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}, {"AttributeName": "num", "KeyType": "RANGE"}],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            },
            {
                "IndexName": "sparse",
                "KeySchema": [{"AttributeName": "sparse", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["kind"]},
            },
        ],
    )
    for start in range(0, 600, 25):
        requests = [{"PutRequest": {"Item": item(n)}} for n in range(start, start + 25)]
        client.batch_write_item(RequestItems={name: requests})
    yield client, name
    client.delete_table(TableName=name)


def pages(client: Any, request: dict[str, Any]) -> list[dict[str, Any]]:
    """Every page of a Query, as the service reads them (ExclusiveStartKey from each LastEvaluatedKey)."""
    answered = []
    request = dict(request)
    while True:
        page = client.query(**request)
        page.pop("ResponseMetadata")
        answered.append(page)
        if "LastEvaluatedKey" not in page:
            return answered
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def both(client: Any, request: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    ours = pages(client, request)
    with moto_query.disabled():
        theirs = pages(client, request)
    return ours, theirs


def names(**aliases: str) -> dict[str, str]:
    return {f"#{alias}": name for alias, name in aliases.items()}


QUERIES: list[dict[str, Any]] = [
    # The service's shapes: a partition, above a key, between two keys, with equality filters.
    {"KeyConditionExpression": "pk = :h", "ExpressionAttributeValues": {":h": {"S": "p1"}}, "Limit": 7},
    {
        "IndexName": "by-g",
        "KeyConditionExpression": "#h = :h AND #s > :low",
        "ExpressionAttributeNames": names(h="g", s="gs"),
        "ExpressionAttributeValues": {":h": {"S": "p2"}, ":low": {"S": "2024"}},
        "Limit": 10,
    },
    {
        "IndexName": "by-g",
        "KeyConditionExpression": "#h = :h AND #s BETWEEN :low AND :high",
        "ExpressionAttributeNames": names(h="g", s="gs", k="kind"),
        "ExpressionAttributeValues": {
            ":h": {"S": "p3"},
            ":low": {"S": "2023"},
            ":high": {"S": "202405000"},
            ":k": {"S": "CT"},
        },
        "Limit": 9,
        "FilterExpression": "#k = :k",
    },
    # And what a Query can say beyond them.
    {
        "IndexName": "by-g",
        "KeyConditionExpression": "g = :h AND begins_with(gs, :p)",
        "ExpressionAttributeValues": {":h": {"S": "p0"}, ":p": {"S": "2025"}},
        "ScanIndexForward": False,
        "Limit": 6,
        "ProjectionExpression": "pk, sk, gs",
    },
    {
        "IndexName": "by-num",
        "KeyConditionExpression": "g = :h AND num <= :n",
        "ExpressionAttributeValues": {":h": {"S": "p4"}, ":n": {"N": "-3"}},
        "Limit": 5,
    },
    {
        "IndexName": "by-num",
        "KeyConditionExpression": "g = :h AND num = :n",
        "ExpressionAttributeValues": {":h": {"S": "p5"}, ":n": {"N": "7"}},
    },
    {
        "KeyConditionExpression": "pk = :h AND sk < :s",
        "ExpressionAttributeValues": {":h": {"S": "p0"}, ":s": {"S": "0500000"}, ":z": {"N": "0"}},
        "ScanIndexForward": False,
        "Limit": 11,
        "FilterExpression": "num > :z",
    },
    {"IndexName": "sparse", "KeyConditionExpression": "sparse = :h", "ExpressionAttributeValues": {":h": {"S": "a"}}},
    {"KeyConditionExpression": "pk = :h", "ExpressionAttributeValues": {":h": {"S": "nobody"}}},
]


@pytest.mark.parametrize("request_", QUERIES, ids=[f"query-{n}" for n in range(len(QUERIES))])
def test_a_query_answers_what_moto_answers(table: tuple[Any, str], request_: dict[str, Any]) -> None:
    client, name = table
    ours, theirs = both(client, {"TableName": name, **request_})
    # moto answers one more, empty page when items outside the key condition follow the last
    # match; DynamoDB (and the fast path) need not: the items and counts are the same.
    assert [i for page in ours for i in page["Items"]] == [i for page in theirs for i in page["Items"]]
    assert sum(p["ScannedCount"] for p in ours) == sum(p["ScannedCount"] for p in theirs)
    assert sum(p["Count"] for p in ours) == sum(p["Count"] for p in theirs)
    assert ours[0] == theirs[0] or not theirs[-1]["Items"]
    assert sum(p["Count"] for p in ours) > 0 or "nobody" in str(request_)


def test_a_query_reads_its_page_whatever_the_table_holds(table: tuple[Any, str]) -> None:
    client, name = table
    before = moto_query.stats["examined"], moto_query.stats["fallbacks"]
    page = client.query(
        TableName=name,
        IndexName="by-g",
        KeyConditionExpression="g = :h AND gs > :low",
        ExpressionAttributeValues={":h": {"S": "p1"}, ":low": {"S": "2024"}},
        Limit=5,
    )
    assert page["Count"] == 5 and "LastEvaluatedKey" in page
    # Five items and the sixth that says another page follows, of a table of 600.
    assert (moto_query.stats["examined"] - before[0], moto_query.stats["fallbacks"] - before[1]) == (6, 0)


def test_writes_keep_the_partitions(table: tuple[Any, str]) -> None:
    client, name = table
    key = {"pk": {"S": "p0"}, "sk": {"S": "zz-moved"}}
    client.put_item(TableName=name, Item={**key, "g": {"S": "moving"}, "gs": {"S": "1"}, "num": {"N": "1"}})

    def in_partition(partition: str) -> list[str]:
        answer = client.query(
            TableName=name,
            IndexName="by-g",
            KeyConditionExpression="g = :h",
            ExpressionAttributeValues={":h": {"S": partition}},
        )
        return [i["sk"]["S"] for i in answer["Items"]]

    assert in_partition("moving") == ["zz-moved"]
    # An update that changes the index key moves the item to its new partition and place
    client.update_item(
        TableName=name,
        Key=key,
        UpdateExpression="SET g = :g, gs = :s",
        ExpressionAttributeValues={":g": {"S": "moved"}, ":s": {"S": "0"}},
    )
    assert (in_partition("moving"), in_partition("moved")) == ([], ["zz-moved"])
    # A transaction's writes and a delete are seen too
    other = {"pk": {"S": "p0"}, "sk": {"S": "zz-other"}}
    client.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": name, "Item": {**other, "g": {"S": "moved"}, "gs": {"S": "00"}}}},
            {"Delete": {"TableName": name, "Key": key}},
        ]
    )
    assert in_partition("moved") == ["zz-other"]
    client.delete_item(TableName=name, Key=other)
    assert in_partition("moved") == []
    with moto_query.disabled():
        assert in_partition("moved") == []


def test_the_service_s_listings_take_the_fast_path(client: Any) -> None:
    # Every Query the service's listings make is one the partitions answer (none left to moto)
    before = dict(moto_query.stats)
    for url in ("/dicomweb/studies?limit=5", "/dicomweb/studies?ModalitiesInStudy=CT&limit=5", "/search-metadata"):
        assert client.get(url).status_code == 200, url
    assert moto_query.stats["fallbacks"] == before["fallbacks"]
    # and reads at most a page and one more item per shard (8 shards, 3 listings, 5 a page)
    assert moto_query.stats["examined"] - before["examined"] <= 3 * 8 * 6
