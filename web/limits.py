"""The 1 MiB body limit, for bodies sent without ``Content-Length`` too.

Werkzeug refuses a declared length over ``MAX_CONTENT_LENGTH`` before reading anything. A
chunked body has no declared length, and Werkzeug's stream then stops reading at the limit
*without* an error: the app would see the first MiB of a larger body, cut short. So such a
body is read here, one byte past the limit at most, and refused if it has that byte.
"""

from __future__ import annotations

import io
from typing import IO

from flask import Flask, current_app, request

from errors import PayloadTooLarge

READ_SIZE = 64 * 1024


def read_at_most(stream: IO[bytes], limit: int) -> bytes:
    """Return the stream's bytes, stopping once ``limit`` bytes are read."""
    parts, read = [], 0
    while read < limit:
        part = stream.read(min(READ_SIZE, limit - read))
        if not part:
            break
        parts.append(part)
        read += len(part)
    return b"".join(parts)


def buffer_unsized_body() -> None:
    """Read a body without ``Content-Length`` up to the limit, or refuse it with 413."""
    environ = request.environ
    # Without wsgi.input_terminated the server cannot end such a stream, and Werkzeug reads
    # it as empty; with a declared length, Werkzeug enforces the limit itself.
    if environ.get("CONTENT_LENGTH") or not environ.get("wsgi.input_terminated"):
        return
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    body = read_at_most(environ["wsgi.input"], limit + 1)
    if len(body) > limit:
        raise PayloadTooLarge(f"the body is over the limit of {limit} bytes")
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))


def install(app: Flask) -> None:
    """Check unsized bodies before any view reads them. Install after the key check, so the
    body of a refused client is never read."""
    app.before_request(buffer_unsized_body)
