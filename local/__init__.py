"""The embedded AWS for `make run` and the tests: a moto server, seeded, with S3 events delivered."""

from __future__ import annotations

import socket


def free_port() -> int:
    """Return a loopback TCP port that is free now (for servers started by tests and benchmarks)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
