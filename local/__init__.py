"""The embedded AWS for `make run` and the tests: a moto server, seeded, with S3 events delivered."""

from __future__ import annotations

import os
import socket

from managers.aws.clients import Credentials

# Here rather than in local.server, so gunicorn's master and workers can name the embedded AWS
# without importing moto.
DEFAULT_PORT = 4566
PORT_VARIABLE = "LOCAL_AWS_PORT"
# moto accepts any credentials; fixed ones keep boto3 from looking for real ones.
LOCAL_CREDENTIALS = Credentials(aws_access_key_id="local", aws_secret_access_key="local")


def local_aws_port() -> int:
    """Return the port of the embedded AWS: ``LOCAL_AWS_PORT``, else 4566 (0: any free port)."""
    return int(os.environ.get(PORT_VARIABLE, DEFAULT_PORT))


def free_port() -> int:
    """Return a loopback TCP port that is free now (for servers started by tests and benchmarks)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
