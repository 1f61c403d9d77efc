"""The embedded AWS's HTTP connections kept open between requests, as AWS keeps them.

werkzeug's development server answers every request with ``Connection: close``: it cannot
tell where an unread request body ends, so it reads whatever the socket holds for 10 ms
after each response and then drops the connection. Every call a boto3 client made to the
emulator therefore opened a new TCP connection and started a new server thread (by py-spy,
about 5 % of a GET's CPU on each side).

Here a request body with a ``Content-Length`` is read through a ``Body`` that counts what
the application took, and the rest of it is skipped before the response goes out, so the
next request line is exactly where the socket is. The connection stays open unless the body
was chunked or its length is not a number, the response has no length and cannot be chunked,
the client asked to close, or the application failed. An idle connection is closed after ``IDLE_SECONDS``.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Callable
from typing import Any

from moto.moto_server.werkzeug_app import MotoRequestHandler

log = logging.getLogger(__name__)

# A connection with no request for this long is closed (boto3 reopens one when it needs it).
IDLE_SECONDS = 120
# Skipped a piece at a time, so an unread body is never held in memory whole.
SKIP_BYTES = 1 << 20
NO_BODY = frozenset({204, 304})
# The client went away mid-request (werkzeug's server ignores these too).
DROPPED = (ConnectionError, socket.timeout)


class Body:
    """A request body of known length: reads stop at its end, and ``skip`` reads past the rest."""

    def __init__(self, stream: Any, length: int) -> None:
        self._stream = stream
        self.left = length

    def read(self, size: int | None = -1) -> bytes:
        wanted = self.left if size is None or size < 0 else min(size, self.left)
        data: bytes = self._stream.read(wanted) if wanted else b""
        self.left -= len(data)
        return data

    def readline(self, size: int | None = -1) -> bytes:
        wanted = self.left if size is None or size < 0 else min(size, self.left)
        data: bytes = self._stream.readline(wanted) if wanted else b""
        self.left -= len(data)
        return data

    def readinto(self, buffer: bytearray | memoryview) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def skip(self) -> bool:
        """Read and drop what the application left; ``False`` if the client went away first."""
        while self.left:
            if not self.read(SKIP_BYTES):
                return False
        return True


class KeepAliveHandler(MotoRequestHandler):
    """moto's request handler with HTTP/1.1 keep-alive (module docstring)."""

    timeout = IDLE_SECONDS
    # A response's headers and body are two writes: without this, on a kept connection the
    # body waits for the client's delayed ACK of the headers (Nagle), 40 ms a request.
    disable_nagle_algorithm = True
    body: Body | None = None  # the request's, when its length is known

    def setup(self) -> None:
        super().setup()
        with _open_lock:
            _open.setdefault(self.server, set()).add(self.connection)

    def finish(self) -> None:
        with _open_lock:
            _open.get(self.server, set()).discard(self.connection)
        super().finish()

    def log_error(self, format: str, *args: Any) -> None:
        """Not a line per idle connection timed out, nor a request line (a client's value)."""
        if not format.startswith("Request timed out"):
            log.warning("the embedded AWS refused a request")

    def make_environ(self) -> dict[str, Any]:
        environ = super().make_environ()
        length = _length(environ.get("CONTENT_LENGTH"))
        chunked = environ.get("wsgi.input_terminated", False)
        self.body = None if chunked or length is None else Body(self.rfile, length)
        if self.body is not None:
            environ["wsgi.input"] = self.body
        return environ

    def run_wsgi(self) -> None:
        if self.headers.get("Expect", "").lower().strip() == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        environ = self.make_environ()
        response = _Response(self, environ)
        try:
            result = self.server.app(environ, response.start)
            try:
                for data in result:
                    response.write(data)
                response.finish()
            finally:
                if hasattr(result, "close"):
                    result.close()
        except DROPPED:
            self.close_connection = True
        except Exception as exc:  # noqa: BLE001 - the emulator's own failure: a 500, never a value in the log
            self.close_connection = True
            log.error("the embedded AWS failed a request (%s)", type(exc).__name__)
            if not response.sent:
                response.fail()


# Each server's open connections, so that stopping it closes the idle ones too: a kept
# connection would otherwise be answered by a server that was told to stop.
_open: dict[Any, set[socket.socket]] = {}
_open_lock = threading.Lock()


def close_connections(server: Any) -> None:
    """Close every connection ``server`` still holds (its handlers then end)."""
    with _open_lock:
        connections = _open.pop(server, set())
    for connection in connections:
        with contextlib.suppress(OSError):  # already closed by the client
            connection.shutdown(socket.SHUT_RDWR)


class _Response:
    """One response written as werkzeug's server writes it, keeping the connection when it can."""

    def __init__(self, handler: KeepAliveHandler, environ: dict[str, Any]) -> None:
        self.handler = handler
        self.environ = environ
        self.status: str | None = None
        self.headers: list[tuple[str, str]] = []
        self.sent = False
        self.chunked = False

    def start(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
        if exc_info and self.sent:
            raise exc_info[1].with_traceback(exc_info[2])
        self.status, self.headers = status, headers
        return self.write

    def write(self, data: bytes) -> None:
        if not self.sent:
            self._send_headers()
        if data:
            wfile = self.handler.wfile
            if self.chunked:
                wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            else:
                wfile.write(data)

    def finish(self) -> None:
        if not self.sent:
            self.write(b"")
        if self.chunked:
            self.handler.wfile.write(b"0\r\n\r\n")
        self.handler.wfile.flush()

    def fail(self) -> None:
        self.status, self.headers = "500 INTERNAL SERVER ERROR", [("Content-Length", "0")]
        self.finish()

    def _send_headers(self) -> None:
        assert self.status is not None, "write() before start_response"
        handler, self.sent = self.handler, True
        code_text, _, message = self.status.partition(" ")
        code = int(code_text)
        handler.send_response(code, message)
        names = set()
        for name, value in self.headers:
            handler.send_header(name, value)
            names.add(name.lower())
        bodiless = self.environ["REQUEST_METHOD"] == "HEAD" or code < 200 or code in NO_BODY
        if "content-length" not in names and not bodiless:
            self.chunked = handler.protocol_version >= "HTTP/1.1"
            if self.chunked:
                handler.send_header("Transfer-Encoding", "chunked")
        body = handler.body  # moto may have put a copy of it in the environ
        reusable = body is not None and body.skip() and (self.chunked or "content-length" in names or bodiless)
        if not reusable or handler.close_connection:  # closed after this answer (or the client asked)
            handler.send_header("Connection", "close")  # sets close_connection too
        handler.end_headers()


def _length(value: str | None) -> int | None:
    """The body's length; ``None`` when the header is not a number (then the connection closes)."""
    if not value:
        return 0
    return int(value) if value.isascii() and value.isdigit() else None
