"""The embedded S3's plain GetObject answered straight from moto's backend.

Every file indexed costs one ranged GET of its header. moto answers it through Flask, its
request routing and its S3 response class (permissions, ACLs, sub-resources, preconditions):
1.7 ms of the emulator's CPU a GET, most of the emulator's work per indexed file. The GETs the
service makes are the simplest kind, so they are answered here, as moto's ``get_object``
answers them (same status, headers and body; ``tests/local/test_object_gets.py`` compares the two),
with only the object's range read from its file (``moto_objects.RangedValue``).

Anything else goes to moto unchanged: a query string (versions, presigned URLs, parts), a
header beyond ``PLAIN_HEADERS`` (conditions other than a matching ``If-Match``, checksums,
encryption keys, an ``Origin``), a virtual-hosted or escaped path, a missing bucket or key,
a bucket with a policy, logging or CORS rules, an archived object, and every error answer.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from typing import Any

from moto import settings
from moto.iam.models import get_account_id_from
from moto.s3.models import ARCHIVE_STORAGE_CLASSES, FakeKey, s3_backends
from moto.utilities.aws_headers import gen_amzn_requestid_long

from local.moto_objects import RangedValue

ENABLED = True
# Request headers a plain GET of the service's clients carries (as WSGI environ keys).
PLAIN_HEADERS = frozenset(
    {
        "HTTP_HOST",
        "HTTP_AUTHORIZATION",
        "HTTP_X_AMZ_DATE",
        "HTTP_X_AMZ_CONTENT_SHA256",
        "HTTP_X_AMZ_SECURITY_TOKEN",
        "HTTP_USER_AGENT",
        "HTTP_ACCEPT",
        "HTTP_ACCEPT_ENCODING",
        "HTTP_AMZ_SDK_INVOCATION_ID",
        "HTTP_AMZ_SDK_REQUEST",
        "HTTP_CONNECTION",
        "HTTP_RANGE",
        "HTTP_IF_MATCH",
        "HTTP_X_AMZ_CHECKSUM_MODE",
    }
)
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost"})
# A path of plain characters only: the key needs no unescaping, and reads as moto reads it.
PLAIN_PATH = re.compile(r"/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/([A-Za-z0-9!_.*'()/-]+)")
# "AWS4-HMAC-SHA256 Credential=<key>/<date>/<region>/<service>/aws4_request, ..."
CREDENTIAL = re.compile(r"AWS4-HMAC-SHA256 Credential=([^/,\s]+)/[^/,]*/[^/,]*/s3/aws4_request,")

# _range's answers beside a range.
WHOLE, REFUSED = "whole", "refused"
Answer = tuple[str, list[tuple[str, str]], bytes]
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def plain_gets(app: WsgiApp) -> WsgiApp:
    """Wrap moto's WSGI app: plain GetObjects are answered here, the rest by ``app``."""

    def gets(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        answer = _answer(environ) if ENABLED and environ["REQUEST_METHOD"] == "GET" else None
        if answer is None:
            return app(environ, start_response)
        status, headers, body = answer
        start_response(status, headers)
        return [body]

    return gets


def _answer(environ: dict[str, Any]) -> Answer | None:
    if environ.get("QUERY_STRING") or not _plain_request(environ):
        return None
    path = PLAIN_PATH.fullmatch(environ.get("RAW_URI", ""))
    credential = CREDENTIAL.match(environ["HTTP_AUTHORIZATION"])
    if path is None or credential is None:
        return None
    key = _plain_key(credential.group(1), path.group(1), path.group(2))
    if key is None or not _precondition_met(key, environ.get("HTTP_IF_MATCH")):
        return None
    ranged = _range(environ.get("HTTP_RANGE"), int(key.size))
    if ranged == REFUSED:  # moto writes the error, or reads the range its own way
        return None
    headers = _headers(key, environ.get("HTTP_X_AMZ_CHECKSUM_MODE") == "ENABLED")
    if isinstance(ranged, tuple):
        status, body = "206 PARTIAL CONTENT", _part(key, ranged, headers)
    else:
        status, body = "200 OK", RangedValue(key).whole()
    gen_amzn_requestid_long(headers)
    if "content-type" not in (name.lower() for name in headers):
        headers["content-type"] = "application/xml"
    return status, _flask_headers(headers, len(body)), body


def _headers(key: FakeKey, checksum_mode: bool) -> dict[str, Any]:
    """The headers of moto's ``get_object`` for ``key``, in its order."""
    headers: dict[str, Any] = {}
    if key.version_id != "null":
        headers["x-amz-version-id"] = key.version_id
    headers.update(key.response_dict)
    if checksum_mode and key.checksum_algorithm:
        headers.update(_checksum(key, key.checksum_algorithm))
    headers.update(key.metadata)
    headers["Accept-Ranges"] = "bytes"
    return headers


def _part(key: FakeKey, ranged: tuple[int, int], headers: dict[str, Any]) -> bytes:
    """The range's bytes, with the headers changed as moto's ``_handle_range_header`` does."""
    begin, end = ranged
    if begin or end < int(key.size) - 1:  # range requests do not return the checksum
        for name in [name for name in headers if name.startswith("x-amz-checksum-")]:
            del headers[name]
    headers["content-range"] = f"bytes {begin}-{end}/{key.size}"
    return RangedValue(key)[begin : end + 1]


def _plain_request(environ: dict[str, Any]) -> bool:
    host = environ.get("HTTP_HOST", "").rpartition(":")[0]
    if host not in LOCAL_HOSTS or "HTTP_AUTHORIZATION" not in environ:
        return False
    if environ.get("CONTENT_LENGTH") not in (None, "", "0") or _authorizing():
        return False
    return all(name in PLAIN_HEADERS for name in environ if name.startswith("HTTP_"))


def _authorizing() -> bool:
    """Whether moto checks IAM permissions (``INITIAL_NO_AUTH_ACTION_COUNT`` set): then it answers."""
    return math.isfinite(settings.INITIAL_NO_AUTH_ACTION_COUNT)


def _plain_key(access_key: str, bucket_name: str, key_name: str) -> FakeKey | None:
    backend = s3_backends[get_account_id_from(access_key)]["aws"]
    bucket = backend.buckets.get(bucket_name)
    if bucket is None or bucket.policy or bucket.logging or bucket.cors:
        return None
    key = backend.get_object(bucket_name, key_name)
    if key is None or key.storage_class in ARCHIVE_STORAGE_CLASSES:
        return None
    return key


def _checksum(key: FakeKey, algorithm: str) -> dict[str, Any]:
    """The checksum headers moto's ``get_object`` adds when the client asks for them."""
    qualified = key.checksum_value
    if key.checksum_type == "COMPOSITE":
        qualified = f"{key.checksum_value}-{key.checksum_parts}"
    headers = {f"x-amz-checksum-{algorithm.lower()}": qualified}
    if key.checksum_type:
        headers["x-amz-checksum-type"] = key.checksum_type
    return headers


def _precondition_met(key: FakeKey, if_match: str | None) -> bool:
    return not if_match or key.etag in (if_match, f'"{if_match}"')


def _range(header: str | None, length: int) -> tuple[int, int] | str:
    """moto's reading of a Range header: ``(begin, end)``; ``WHOLE`` for the whole object;
    ``REFUSED`` for any other form (a suffix, several ranges, past the end), which moto answers."""
    if not header:
        return WHOLE
    unit, _, spec = header.partition("=")
    first, dash, last_text = spec.partition("-")
    if unit != "bytes" or not dash or not _digits(first) or not (_digits(last_text) or not last_text):
        return REFUSED
    begin, last = int(first), length - 1
    if begin > last:
        return REFUSED
    end = last if not last_text else min(int(last_text), last)
    return WHOLE if begin > end else (begin, end)


def _digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


def _flask_headers(headers: dict[str, Any], length: int) -> list[tuple[str, str]]:
    """The headers as moto's Flask response writes them, with flask-cors's header."""
    out = [(name, str(value)) for name, value in headers.items() if name.lower() != "content-length"]
    out.append(("Content-Length", str(length)))
    out.append(("Access-Control-Allow-Origin", "*"))
    return out
