"""gunicorn settings for ``make serve``: loopback only, workers and threads from the environment.

``PORT`` (5000), ``GUNICORN_WORKERS`` (2), ``GUNICORN_THREADS`` (8). On the local backend the
master starts the embedded AWS once, as its own process, before forking the workers (a
server thread would not survive the fork, and one per worker would be one bucket per worker),
and stops it on exit; it also picks the run's random cursor secret, so that a cursor one
worker made is read by the others.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

from app import cursor_secret
from managers.aws.backend import choose_backend, local_aws_port

if TYPE_CHECKING:
    from local.process import LocalAWSProcess

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
    """Check the cursor secret; start the embedded AWS (local backend) and wait until it is seeded."""
    # Refuses to start on the aws backend without a secret, before any worker boots; on the
    # local one, sets a random DICOM_META_CURSOR_SECRET that the workers inherit.
    cursor_secret(None)
    if not choose_backend().is_local:
        return
    from local.process import LocalAWSProcess

    server.log.info("starting the embedded AWS on 127.0.0.1:%d", local_aws_port())
    _embedded.append(LocalAWSProcess(local_aws_port(), echo=sys.stderr).start())


def when_ready(server: Any) -> None:
    backend = _embedded[0].endpoint_url if _embedded else "real AWS"
    server.log.info("dicom-meta on http://%s (%d workers x %d threads), backend: %s", bind, workers, threads, backend)


def on_exit(server: Any) -> None:
    """Stop the embedded AWS with the server."""
    for process in _embedded:
        process.stop()
