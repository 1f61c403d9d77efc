"""Request ids: one per request, on ``g.request_id``, echoed in the ``X-Request-ID`` header.

Installed first by ``create_app``, so every later hook, view and error handler (the access
log, the API key check, both error formats) can read the id.
"""

from __future__ import annotations

import re
import uuid

from flask import Flask, Response, g, request

REQUEST_ID_HEADER = "X-Request-ID"
# A client's id is echoed in headers and logs: accept only a short, plain token.
_CLIENT_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def current_request_id() -> str:
    """Return the id of the request being served (empty outside a request's hooks)."""
    return str(g.get("request_id", ""))


def _assign_request_id() -> None:
    sent = request.headers.get(REQUEST_ID_HEADER, "")
    g.request_id = sent if _CLIENT_REQUEST_ID.match(sent) else uuid.uuid4().hex


def _echo_request_id(response: Response) -> Response:
    response.headers[REQUEST_ID_HEADER] = current_request_id()
    return response


def install(app: Flask) -> None:
    """Give every request an id (the client's, when it is a plain token) and echo it."""
    app.before_request(_assign_request_id)
    app.after_request(_echo_request_id)
