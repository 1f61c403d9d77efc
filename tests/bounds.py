"""What a test bounds instead of seconds: the work a call does (reads, bytes, GETs, tries).

A wall-clock limit fails when the machine is busy; the reads, bytes and tries that made the
time do not change with the load. Timings belong in ``bench/``. The only clock a test keeps is
``HANG_GUARD``: how long to wait for something asynchronous before calling it lost.
"""

from __future__ import annotations

import io
import threading
from collections import Counter
from collections.abc import Mapping
from types import TracebackType
from typing import Any

import pytest
from requests import PreparedRequest, Response, Session
from requests.adapters import BaseAdapter

from managers.bundle import Managers
from managers.dicom import header
from managers.dicom.bounded import MAX_HEADER_BYTES, InflatingReader
from managers.dicom.ranged import FIRST_REQUEST

# Seconds a poll waits for an event to be delivered or a record to be indexed. It ends a test
# in which that never happens; it measures nothing, so it is generous for a loaded machine.
HANG_GUARD = 60.0


def _doubling_requests(total: int, first: int) -> int:
    """The requests of ``first``, ``2 * first``, … bytes it takes to fetch ``total`` bytes."""
    requests, fetched, size = 0, 0, first
    while fetched < total:
        requests, fetched, size = requests + 1, fetched + size, size * 2
    return requests


# What one header parse costs S3 at most: RangedReader doubles its request from FIRST_REQUEST
# while the parse reads on, and a parse reads at most MAX_HEADER_BYTES, so seven GETs and at
# most about twice the header bound (managers/dicom/bounded.py).
HEADER_GETS = _doubling_requests(MAX_HEADER_BYTES, FIRST_REQUEST)
HEADER_FETCH_BYTES = FIRST_REQUEST * (2**HEADER_GETS - 1)


class CountingStream(io.BytesIO):
    """A file in memory that counts what is read of it: read calls and bytes returned."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.reads = 0
        self.bytes_read = 0

    def read(self, size: int | None = -1, /) -> bytes:
        data = super().read(size)
        self.reads += 1
        self.bytes_read += len(data)
        return data

    def readinto(self, buffer: Any, /) -> int:
        count = super().readinto(buffer)
        self.reads += 1
        self.bytes_read += count
        return count


def count_inflation(monkeypatch: pytest.MonkeyPatch) -> list[InflatingReader]:
    """Make the header reader inflate through readers the caller can look at afterwards.

    Returns the list every ``InflatingReader`` a parse makes is added to; ``inflated`` tells
    how many bytes one of them inflated.
    """
    made: list[InflatingReader] = []

    class Recorded(InflatingReader):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(header, "InflatingReader", Recorded)
    return made


def inflated(reader: InflatingReader) -> int:
    """Bytes ``reader`` has inflated so far (its buffer: it keeps all it inflated)."""
    return len(reader._data)


class S3Gets:
    """The GetObject calls an S3 client makes while open, and the bytes they return.

    Thread-safe: a batch reads its files in a pool. Counted after each call, failed ones too.
    """

    def __init__(self, client: Any) -> None:
        self.client = client
        self.gets = 0
        self.bytes = 0
        self._lock = threading.Lock()
        self._id = f"tests-bounds-gets-{id(self)}"

    def __enter__(self) -> S3Gets:
        self.client.meta.events.register("after-call.s3.GetObject", self._record, unique_id=self._id)
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.meta.events.unregister("after-call.s3.GetObject", unique_id=self._id)

    def _record(self, parsed: dict[str, Any], **_: Any) -> None:
        with self._lock:
            self.gets += 1
            self.bytes += int(parsed.get("ContentLength") or 0)

    def take(self) -> tuple[int, int]:
        """Return (GETs, bytes) counted since the last ``take`` and start again from zero."""
        with self._lock:
            counted = (self.gets, self.bytes)
            self.gets, self.bytes = 0, 0
        return counted


# How UpstreamTries names the one upstream request that is not botocore's: the JSON upload,
# a PUT through a presigned URL with requests (S3Manager.upload_json), tried once.
PRESIGNED_PUT = "s3.PutObject (presigned URL)"


class _CountingAdapter(BaseAdapter):
    """A requests transport adapter that counts each request, then hands it to the real one."""

    def __init__(self, inner: BaseAdapter, tries: UpstreamTries) -> None:
        super().__init__()
        self.inner, self.tries = inner, tries

    def send(
        self,
        request: PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float, float] | tuple[float, None] | None = None,
        verify: bool | str = True,
        cert: bytes | str | tuple[bytes | str, bytes | str] | None = None,
        proxies: Mapping[str, str] | None = None,
    ) -> Response:
        self.tries.count(PRESIGNED_PUT, timeout)
        return self.inner.send(request, stream, timeout, verify, cert, proxies)

    def close(self) -> None:
        self.inner.close()


class UpstreamTries:
    """Every try an app's managers make of S3 and DynamoDB while open, by operation.

    botocore's sends (``s3.GetObject``, ``dynamodb.GetItem``…: each retry is one more) and
    the presigned upload's PUTs (``PRESIGNED_PUT``), with the timeout each PUT was given.
    Thread-safe: routes run side by side, and readiness pings in a pool of its own.
    """

    def __init__(self, managers: Managers) -> None:
        self.tries: Counter[str] = Counter()
        self.put_timeouts: list[Any] = []
        self._clients = [managers.s3.client, managers.dynamodb.client]
        self._session: Session = managers.s3.http
        self._adapters: dict[str, BaseAdapter] = {}
        self._lock = threading.Lock()
        self._id = f"tests-bounds-tries-{id(self)}"

    def __enter__(self) -> UpstreamTries:
        for client in self._clients:
            client.meta.events.register("before-send", self._sent, unique_id=self._id)
        self._adapters = dict(self._session.adapters)
        for prefix, adapter in self._adapters.items():
            self._session.mount(prefix, _CountingAdapter(adapter, self))
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        for client in self._clients:
            client.meta.events.unregister("before-send", unique_id=self._id)
        for prefix, adapter in self._adapters.items():
            self._session.mount(prefix, adapter)

    def _sent(self, event_name: str, **_: Any) -> None:
        self.count(event_name.removeprefix("before-send."))

    def count(self, operation: str, timeout: Any = None) -> None:
        with self._lock:
            self.tries[operation] += 1
            if operation == PRESIGNED_PUT:
                self.put_timeouts.append(timeout)
