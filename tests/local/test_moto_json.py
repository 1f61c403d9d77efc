"""local/moto_json.py: the item calls' responses are the JSON moto's own serializer writes."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from local import moto_items, moto_json
from local.server import LocalAWS, create_table

# Every kind of attribute value, nested too.
ITEM: dict[str, Any] = {
    "FilePath": {"S": "s3://b/dicom/a.dcm"},
    "PatientID": {"S": "P-1"},
    "StudyDateKey": {"S": "20240101#s3://b/dicom/a.dcm"},
    "ListShard": {"S": "all#3"},
    "Count": {"N": "7"},
    "Binary": {"B": b"\x00\xffbytes"},
    "Strings": {"SS": ["a", "b"]},
    "Numbers": {"NS": ["1", "2.5"]},
    "Binaries": {"BS": [b"\x01", b"\x02"]},
    "Map": {"M": {"inner": {"L": [{"S": "x"}, {"N": "1"}, {"NULL": True}, {"BOOL": False}]}}},
    "Flag": {"BOOL": True},
    "Nothing": {"NULL": True},
    "Unicode": {"S": "Ünïcode ☃"},
}


def key(path: str) -> dict[str, Any]:
    return {"FilePath": {"S": path}}


def item(n: int) -> dict[str, Any]:
    path = f"s3://b/dicom/{n}.dcm"
    return {**ITEM, "FilePath": {"S": path}, "StudyDateKey": {"S": f"2024010{n}#{path}"}}


def calls(table: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """The item calls the service makes, each shape of answer once (errors included)."""
    total = {"ReturnConsumedCapacity": "TOTAL"}
    yield "put_item", {"TableName": table, "Item": ITEM, **total}
    yield "put_item", {"TableName": table, "Item": ITEM, "ReturnValues": "ALL_OLD"}
    yield "put_item", {"TableName": table, "Item": ITEM, "ConditionExpression": "attribute_not_exists(FilePath)"}
    yield "get_item", {"TableName": table, "Key": key("s3://b/dicom/a.dcm"), **total}
    yield "get_item", {"TableName": table, "Key": key("s3://b/dicom/absent.dcm")}
    yield (
        "get_item",
        {
            "TableName": table,
            "Key": key("s3://b/dicom/a.dcm"),
            "ProjectionExpression": "#c, #b, #m.inner[0]",
            "ExpressionAttributeNames": {"#c": "Count", "#b": "Binary", "#m": "Map"},
        },
    )
    yield (
        "update_item",
        {
            "TableName": table,
            "Key": key("s3://b/dicom/a.dcm"),
            "UpdateExpression": "ADD #c :one SET Extra = :x",
            "ExpressionAttributeNames": {"#c": "Count"},
            "ExpressionAttributeValues": {":one": {"N": "1"}, ":x": {"S": "y"}},
            "ReturnValues": "ALL_NEW",
        },
    )
    yield (
        "update_item",
        {
            "TableName": table,
            "Key": key("s3://b/dicom/a.dcm"),
            "UpdateExpression": "REMOVE Extra",
            "ReturnValues": "UPDATED_OLD",
        },
    )
    yield "batch_write_item", {"RequestItems": {table: [{"PutRequest": {"Item": item(n)}} for n in range(1, 4)]}}
    yield (
        "batch_get_item",
        {
            "RequestItems": {table: {"Keys": [key(f"s3://b/dicom/{n}.dcm") for n in range(0, 4)]}},
            **total,
        },
    )
    for forward in (True, False):
        yield (
            "query",
            {
                "TableName": table,
                "IndexName": "PatientID-StudyDate",
                "KeyConditionExpression": "PatientID = :p",
                "ExpressionAttributeValues": {":p": {"S": "P-1"}},
                "Limit": 2,
                "ScanIndexForward": forward,
                **total,
            },
        )
    yield (
        "query",
        {
            "TableName": table,
            "IndexName": "ListShard-StudyDate",
            "KeyConditionExpression": "ListShard = :s",
            "FilterExpression": "#c > :n",
            "ExpressionAttributeNames": {"#c": "Count"},
            "ExpressionAttributeValues": {":s": {"S": "all#3"}, ":n": {"N": "7"}},
            "Select": "COUNT",
        },
    )
    yield "scan", {"TableName": table, "Limit": 2}
    yield (
        "transact_write_items",
        {
            "TransactItems": [
                {"Put": {"TableName": table, "Item": item(5)}},
                {
                    "Update": {
                        "TableName": table,
                        "Key": key("s3://b/dicom/1.dcm"),
                        "UpdateExpression": "ADD #c :one",
                        "ExpressionAttributeNames": {"#c": "Count"},
                        "ExpressionAttributeValues": {":one": {"N": "1"}},
                    }
                },
                {
                    "ConditionCheck": {
                        "TableName": table,
                        "Key": key("s3://b/dicom/2.dcm"),
                        "ConditionExpression": "attribute_exists(FilePath)",
                    }
                },
            ],
            **total,
        },
    )
    yield (
        "transact_write_items",
        {
            "TransactItems": [
                {"Put": {"TableName": table, "Item": item(6), "ConditionExpression": "attribute_exists(FilePath)"}},
            ]
        },
    )
    yield "transact_get_items", {"TransactItems": [{"Get": {"TableName": table, "Key": key("s3://b/dicom/5.dcm")}}]}
    yield "delete_item", {"TableName": table, "Key": key("s3://b/dicom/3.dcm"), "ReturnValues": "ALL_OLD"}
    yield "delete_item", {"TableName": table, "Key": key("s3://b/dicom/absent.dcm")}


def bodies(local_aws: LocalAWS, direct: bool, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Each call's raw response body as JSON, on a fresh table, with or without the direct paths."""
    monkeypatch.setattr(moto_json, "ENABLED", direct)
    monkeypatch.setattr(moto_items, "ENABLED", direct)
    client = local_aws.client("dynamodb")
    table = "json-" + uuid.uuid4().hex[:8]
    raw: list[bytes] = []
    client.meta.events.register("before-parse.dynamodb", lambda response_dict, **_: raw.append(response_dict["body"]))
    create_table(client, table)
    answers = []
    for operation, arguments in calls(table):
        raw.clear()
        with contextlib.suppress(ClientError):  # an error's body is compared as the answers' are
            getattr(client, operation)(**arguments)
        answers.append(json.loads(raw[-1].decode().replace(table, "TABLE")))  # the last try's
    client.delete_table(TableName=table)
    return answers


def test_every_item_call_answers_what_motos_serializer_writes(
    local_aws: LocalAWS, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = bodies(local_aws, False, monkeypatch)
    assert bodies(local_aws, True, monkeypatch) == expected
    # and the calls did what they say: the answers are not all empty
    assert expected[1]["Attributes"]["Binary"] == {"B": "AP9ieXRlcw=="}
    assert expected[9]["Responses"]["TABLE"] and "LastEvaluatedKey" in expected[10]
    assert any("CancellationReasons" in answer for answer in expected)


def test_the_direct_path_is_taken_for_item_calls_only(local_aws: LocalAWS, monkeypatch: pytest.MonkeyPatch) -> None:
    walked: list[str] = []
    original = moto_json._original_serialized

    def counted(handler: Any, result: Any) -> Any:
        walked.append(handler._get_action())
        return original(handler, result)

    monkeypatch.setattr(moto_json, "_original_serialized", counted)
    client = local_aws.client("dynamodb")
    table = client.list_tables()["TableNames"][0]
    client.get_item(TableName=table, Key=key("s3://b/dicom/none.dcm"))
    with pytest.raises(ClientError):
        client.get_item(TableName="no-such-table", Key=key("s3://b/dicom/none.dcm"))
    # moto's walk for ListTables only: not for the answered GetItem (the error is moto's own too)
    assert walked == ["ListTables"]


def test_an_answer_without_an_xml_request_id_is_not_searched_for_one(monkeypatch: pytest.MonkeyPatch) -> None:
    searched: list[Any] = []
    original = moto_json._original_enrich

    def spied(headers: dict[str, Any], body: Any) -> Any:
        searched.append(body)
        return original(headers, body)

    monkeypatch.setattr(moto_json, "_original_enrich", spied)
    headers, body = moto_json.enrich_response({"status": 200}, '{"Items": []}')
    assert (body, headers["status"], len(headers["x-amzn-requestid"])) == ('{"Items": []}', "200", 52)
    assert searched == []
    # an XML answer (or a value holding the tag) is moto's to rewrite, as it does
    _, body = moto_json.enrich_response({}, "<RequestId>old</RequestId>")
    assert searched == ["<RequestId>old</RequestId>"] and "old" not in body
