"""The embedded DynamoDB's item responses written as JSON directly, not walked by their shape.

moto writes every response by walking botocore's model of its output, member by member and
value by value (``moto.core.serialize``): for the item calls the service makes, whose results
are already DynamoDB JSON (strings, numbers as strings, maps, lists, booleans, binary), that
walk was a sixth of the emulator's CPU while files were indexed on arrival. Here those
results are dumped as they are, with what the walk changes done by hand: binary values in
base64, ``None`` members and members the output does not have left out; a value of any
other kind leaves the result to moto. ``tests/local/test_moto_json.py`` checks
the bytes against moto's own serializer for every call and value type the service uses.

Errors, paginated results and every other operation keep moto's serializer. Installed by
``moto_fixes.install``, in the process that runs the moto server, never at import.
"""

from __future__ import annotations

import base64
import functools
import json
from typing import Any

from moto.core.responses import ActionResult, BaseResponse
from moto.core.utils import get_service_model
from moto.dynamodb.responses import DynamoHandler, DynamoResult
from moto.utilities.aws_headers import gen_amzn_requestid_long

ENABLED = True
# The item calls: their output shapes hold only attribute values, keys, capacities and counts.
OPERATIONS = frozenset(
    {
        "GetItem",
        "BatchGetItem",
        "Query",
        "Scan",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "BatchWriteItem",
        "TransactWriteItems",
        "TransactGetItems",
    }
)
CONTENT_TYPE = "application/x-amz-json-1.0"
_original_serialized = BaseResponse.serialized
_original_enrich = BaseResponse._enrich_response


def install() -> None:
    """Answer the item calls with their results dumped directly (idempotent)."""
    DynamoHandler.serialized = serialized  # type: ignore[method-assign, assignment]  # the fix itself
    DynamoHandler._enrich_response = staticmethod(enrich_response)  # type: ignore[method-assign]  # the fix itself


def serialized(self: DynamoHandler, action_result: ActionResult) -> Any:
    """moto's ``serialized``, for a plain result of an item call without the shape walk."""
    result, operation = action_result.result, self._get_action()
    plain_call = type(action_result) in (ActionResult, DynamoResult) and operation in OPERATIONS
    if not (ENABLED and plain_call and isinstance(result, dict)):  # not paginated, not an error
        return _original_serialized(self, action_result)
    members = _output_members(operation)
    try:  # members moto adds beyond the output's (a ConsumedCapacityUnits) are left out, as there
        body = json.dumps(
            {name: _plain(value) for name, value in result.items() if name in members and value is not None}
        )
    except TypeError:  # a value of a kind the item calls never hold: moto knows what to do
        return _original_serialized(self, action_result)
    headers = {"Content-Type": CONTENT_TYPE}
    headers.update(self.response_headers)
    return 200, headers, body


def enrich_response(headers: dict[str, Any], body: Any) -> tuple[dict[str, Any], Any]:
    """moto's ``_enrich_response``, without its search for an XML ``<RequestId>`` in a body that has none.

    moto runs a look-behind regular expression over every answer to put the request ID into
    an XML one: over a page's JSON that was 8 % of the emulator's time for a BatchGetItem.
    """
    if not (ENABLED and isinstance(body, str)) or "<RequestId>" in body:
        return _original_enrich(headers, body)
    if "status" in headers:
        headers["status"] = str(headers["status"])
    gen_amzn_requestid_long(headers)
    return headers, body


@functools.cache
def _output_members(operation: str) -> frozenset[str]:
    shape = get_service_model("dynamodb").operation_model(operation).output_shape
    return frozenset(shape.members) if shape is not None else frozenset()


def _plain(value: Any) -> Any:
    """``value`` as moto's JSON serializer writes it; ``TypeError`` for anything else."""
    # By exact type first: a page's items are thousands of small dicts and strings, and one
    # ``isinstance`` of a union per value was a third of this walk's time.
    kind = type(value)
    if kind is str:
        return value
    if kind is dict:
        return {key: _plain(member) for key, member in value.items() if member is not None}
    if kind is list:
        return [_plain(member) for member in value]
    return _plain_other(value)


def _plain_other(value: Any) -> Any:
    if isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, dict):
        return {key: _plain(member) for key, member in value.items() if member is not None}
    if isinstance(value, list | tuple):
        return [_plain(member) for member in value]
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(type(value).__name__)
