"""The one place errors become HTTP answers: ``{"error": {code, message, request_id}}``."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

from errors import INTERNAL_MESSAGE, DicomMetaError, scrubbed_traceback
from web.request_id import current_request_id

log = logging.getLogger(__name__)

# Codes for what Flask or Werkzeug reject before a view runs.
_HTTP_CODES = {
    400: "INVALID_PAYLOAD",
    401: "UNAUTHENTICATED",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
}


# Headers a Werkzeug error carries that the client needs (405's list of allowed methods).
_KEPT_HEADERS = frozenset({"allow", "retry-after"})


def error_response(
    status: int, code: str, message: str, extra: Mapping[str, Any] | None = None
) -> tuple[Response, int]:
    """Return the contract's JSON error body with ``status``; ``extra`` adds top-level keys."""
    body: dict[str, Any] = dict(extra or {})
    body["error"] = {"code": code, "message": message, "request_id": current_request_id()}
    response = jsonify(body)
    if status == 401:
        # RFC 6750 3: a 401 names the scheme the client should use.
        response.headers["WWW-Authenticate"] = 'Bearer realm="dicom-meta"'
    return response, status


def _domain_error(exc: DicomMetaError) -> tuple[Response, int]:
    return error_response(exc.status, exc.code, exc.message, exc.details)


def _http_error(exc: HTTPException) -> tuple[Response, int]:
    status = exc.code or 500
    code = _HTTP_CODES.get(status, "INTERNAL" if status >= 500 else "INVALID_PAYLOAD")
    response, status = error_response(status, code, exc.description or exc.name)
    for name, value in exc.get_headers():
        if name.lower() in _KEPT_HEADERS:
            response.headers[name] = value
    return response, status


def _unexpected_error(exc: Exception) -> tuple[Response, int]:
    log.error("unexpected error (request %s)\n%s", current_request_id(), scrubbed_traceback(exc))
    return error_response(500, "INTERNAL", INTERNAL_MESSAGE)


def register(app: Flask) -> None:
    """Give every error the contract's JSON shape (the request id comes from ``web.request_id``)."""
    app.register_error_handler(DicomMetaError, _domain_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)
