"""Objects of the embedded S3 kept on disk, and ranged GETs that read only their range.

moto keeps each object in a ``SpooledTemporaryFile`` held in memory up to 5 MB, so a folder of
small slices copied in costs its size in RAM; ``SPOOL_BYTES`` makes every object over 64 KiB
spill to an anonymous temporary file (the system's temporary directory; it is gone when the
emulator stops). And moto answers a ranged GET by reading the whole object and slicing it:
here the object is read from its file at the range only.

Installed by ``moto_fixes.install``, in the process that runs the moto server, never at import.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from moto.s3.models import FakeKey
from moto.s3.responses import S3Response

# Objects larger than this live in a file rather than in memory (moto's own default: 5 MB).
SPOOL_BYTES = 64 * 1024
# Bytes the ranged reads here have read from objects' files, for the tests.
stats = {"read": 0}

_ranged = threading.local()
# moto's property itself (typing sees its getter's signature only).
_original_value: property = FakeKey.__dict__["value"]
_original_key_response = S3Response.key_response


class RangedValue:
    """An object's value as moto's range handling sees it: its length, and its bytes read
    from the file only for the slice taken."""

    def __init__(self, key: FakeKey) -> None:
        self.key = key

    def __len__(self) -> int:
        return int(self.key.size)

    def __bool__(self) -> bool:
        return len(self) > 0

    def __getitem__(self, index: slice) -> bytes:
        start, stop, _ = index.indices(len(self))
        with self.key.lock:
            buffer = self.key._value_buffer
            buffer.seek(start)
            data: bytes = buffer.read(max(0, stop - start))
        stats["read"] += len(data)
        return data

    def whole(self) -> bytes:
        return self[0 : len(self)]


def install() -> None:
    """Spill objects to disk; read ranges only (idempotent)."""
    os.environ.setdefault("MOTO_S3_DEFAULT_KEY_BUFFER_SIZE", str(SPOOL_BYTES))
    FakeKey.value = property(_value, _original_value.fset)  # type: ignore[assignment, method-assign]  # the fix itself
    S3Response.key_response = _key_response  # type: ignore[method-assign]  # the fix itself


def _value(key: FakeKey) -> Any:
    if getattr(_ranged, "active", False):
        return RangedValue(key)
    return _original_value.fget(key) if _original_value.fget else None


def _key_response(self: S3Response, request: Any, full_url: str, headers: dict[str, Any]) -> Any:
    """moto's, with a GET of a single range answered from the range's bytes alone."""
    ranged = request.method == "GET" and "," not in request.headers.get("range", ",")
    _ranged.active = ranged
    try:
        status, response_headers, body = _original_key_response(self, request, full_url, headers)
    finally:
        _ranged.active = False
    if isinstance(body, RangedValue):  # the range was not taken after all: the whole object
        body = body.whole()
    return status, response_headers, body
