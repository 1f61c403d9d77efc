"""A network in front of the embedded AWS: a delay before each response, a cap on each body's rate.

On loopback every request is free, so neither header-only reads nor concurrent requests show
what they are worth against S3. ``NetworkEmulator`` wraps moto's WSGI app; with 20 ms and
100 MB/s it answers roughly like S3 seen from a machine in the same region.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import partial
from typing import Any

log = logging.getLogger(__name__)

LATENCY_ENV = "LOCAL_AWS_LATENCY_MS"
BANDWIDTH_ENV = "LOCAL_AWS_BANDWIDTH_MBPS"
# Bodies leave in pieces this size, each when the rate allows it: small enough to pace
# smoothly, big enough that the sleeps are few.
CHUNK_BYTES = 64 * 1024
MEGABYTE = 1_000_000  # MB/s as network rates count it

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class NetworkEmulator:
    """WSGI middleware that delays each response and paces each response body.

    Parameters
    ----------
    app
        The WSGI application to wrap (moto's server).
    latency_ms
        Milliseconds to wait before the wrapped app answers; 0 for none.
    bandwidth_mbps
        The most megabytes (10^6 bytes) per second a response body is sent at; 0 for no cap.
    clock, sleep
        Time sources, replaceable so tests need not wait.
    """

    def __init__(
        self,
        app: WsgiApp,
        latency_ms: float = 0.0,
        bandwidth_mbps: float = 0.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if latency_ms < 0 or bandwidth_mbps < 0:
            raise ValueError("latency and bandwidth cannot be negative")
        self.app = app
        self.latency = latency_ms / 1000
        self.bytes_per_second = bandwidth_mbps * MEGABYTE
        self.clock = clock
        self.sleep = sleep

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if self.latency:
            self.sleep(self.latency)
        body = self.app(environ, start_response)
        return self._paced(body) if self.bytes_per_second else body

    def _paced(self, body: Iterable[bytes]) -> Iterator[bytes]:
        """Yield ``body`` in pieces, each no sooner than the rate allows."""
        start, sent = self.clock(), 0
        try:
            for block in body:
                for offset in range(0, len(block), CHUNK_BYTES):
                    piece = block[offset : offset + CHUNK_BYTES]
                    sent += len(piece)
                    # Wait for the piece's due time rather than sleeping per piece, so the
                    # overshoot of each sleep does not add up over a large body.
                    delay = start + sent / self.bytes_per_second - self.clock()
                    if delay > 0:
                        self.sleep(delay)
                    yield piece
        finally:
            close = getattr(body, "close", None)
            if close is not None:  # PEP 3333: the server must close what the app returned
                close()


def netem_from_env(environ: Mapping[str, str] = os.environ) -> Callable[[WsgiApp], NetworkEmulator] | None:
    """Return the middleware ``LOCAL_AWS_LATENCY_MS`` and ``LOCAL_AWS_BANDWIDTH_MBPS`` ask for.

    Returns
    -------
    callable or None
        A function wrapping a WSGI app (for ``LocalAWS.start(middleware=...)``), or ``None``
        when both are unset or 0: the embedded AWS then answers as fast as loopback allows.

    Raises
    ------
    SystemExit
        When a value is not a number at least 0.
    """
    latency = _setting(environ, LATENCY_ENV)
    bandwidth = _setting(environ, BANDWIDTH_ENV)
    if not latency and not bandwidth:
        return None
    log.info(
        "embedded AWS network: %g ms before each response, %s per response body",
        latency,
        f"{bandwidth:g} MB/s" if bandwidth else "no rate cap",
    )
    return partial(NetworkEmulator, latency_ms=latency, bandwidth_mbps=bandwidth)


def _setting(environ: Mapping[str, str], name: str) -> float:
    """Return the number in ``environ[name]`` (0 when unset or empty)."""
    text = environ.get(name, "").strip()
    try:
        value = float(text) if text else 0.0
    except ValueError:
        value = -1.0
    if not (value >= 0 and math.isfinite(value)):
        raise SystemExit(f"{name} must be a number at least 0, not {text!r}")
    return value
