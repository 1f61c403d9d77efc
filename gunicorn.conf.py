"""gunicorn settings for ``make serve``: loopback only, workers and threads from the environment.

``PORT`` (5000), ``GUNICORN_WORKERS`` (2), ``GUNICORN_THREADS`` (8). On the local backend the
master starts the embedded AWS once, as its own process, before forking the workers (a
server thread would not survive the fork, and one per worker would be one bucket per worker),
and stops it on exit.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from app import default_backend
from local.process import LocalAWSProcess
from wsgi import local_aws_port

bind = f"127.0.0.1:{os.environ.get('PORT', '5000')}"
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
worker_class = "gthread"
timeout = 30
graceful_timeout = 10
# No gunicorn access log: it prints the URL with its query string (s3_path, GraphQL queries).
# The app writes its own JSON line per request.
accesslog = None
errorlog = "-"
loglevel = "info"
# GraphQL GET queries travel in the URL: allow gunicorn's largest request line.
limit_request_line = 8190
# gunicorn 25+ opens a control socket at one path per user: several servers (tests, `make
# load` beside `make serve`) would fight over it, and nothing here uses it.
control_socket_disable = True

_embedded: list[LocalAWSProcess] = []


def on_starting(server: Any) -> None:
    """Start the embedded AWS (local backend) and wait until it is seeded."""
    if default_backend() != "local":
        return
    server.log.info("starting the embedded AWS on 127.0.0.1:%d", local_aws_port())
    _embedded.append(LocalAWSProcess(local_aws_port(), echo=sys.stderr).start())


def when_ready(server: Any) -> None:
    backend = _embedded[0].endpoint_url if _embedded else "real AWS"
    server.log.info("dicom-meta on http://%s (%d workers x %d threads), backend: %s", bind, workers, threads, backend)


def on_exit(server: Any) -> None:
    """Stop the embedded AWS with the server."""
    for process in _embedded:
        process.stop()
