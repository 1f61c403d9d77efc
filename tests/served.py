"""The app on a real HTTP socket, for the tests whose client is a real HTTP client (a browser,
dicomweb-client, requests) rather than Flask's test client."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask
from werkzeug.serving import make_server

from web.logs import QuietRequestHandler


@contextmanager
def served_over_http(app: Flask) -> Iterator[str]:
    """Serve ``app`` on a free loopback port with threads (as gunicorn runs it); yield its origin.

    Werkzeug's own access line would print URLs; ``QuietRequestHandler`` is the one `make run`
    uses.
    """
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)
