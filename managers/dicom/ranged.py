"""A seekable, read-only file over ranged reads of a remote object (S3 ranged GETs).

pydicom reads a header with many small ``read``/``seek`` calls. ``RangedReader`` answers them
from the byte ranges already fetched and fetches more only when a read reaches past them,
doubling the request each time, so a header that fits in the first request costs one GET.
"""

from __future__ import annotations

import bisect
import io
from collections.abc import Callable

# A function that returns ``length`` bytes of the object from ``start`` (fewer at its end)
# and the object's total size: ``S3Manager.read_range`` bound to one s3 path.
Fetch = Callable[[int, int], tuple[bytes, int]]

FIRST_REQUEST = 64 * 1024
# Past 16 MiB a request's round trip is small beside its transfer time, and a bigger one would
# mostly fetch pixel data nobody reads.
MAX_REQUEST = 16 * 1024 * 1024


class RangedReader(io.RawIOBase):
    """A read-only binary file whose bytes come from ``fetch`` on demand, then from memory.

    Fetched ranges are kept (not necessarily contiguous: a reader that seeks past a large
    value does not fetch it), so seeking back costs nothing. ``read(n)`` returns ``n`` bytes
    unless the object ends first, as pydicom expects of a file.

    Parameters
    ----------
    fetch
        Returns ``(bytes, total_size)`` for ``(start, length)``. The first call is always at
        offset 0 and learns the size; no call is made past the end of the object.
    first_request
        Bytes asked for by the first fetch.
    max_request
        The doubling stops at this request size.
    """

    def __init__(self, fetch: Fetch, first_request: int = FIRST_REQUEST, max_request: int = MAX_REQUEST) -> None:
        super().__init__()
        if first_request < 1 or max_request < first_request:
            raise ValueError("need 1 <= first_request <= max_request")
        self._fetch = fetch
        self._request = first_request
        self._max_request = max_request
        self._size: int | None = None
        self._pos = 0
        # Fetched ranges, sorted and non-overlapping: _starts[i] is where _chunks[i] begins.
        self._starts: list[int] = []
        self._chunks: list[bytes] = []
        # The chunk the last read was served from, and where it starts: the next small read
        # is almost always in it too.
        self._last: tuple[bytes, int] = (b"", 0)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    @property
    def size(self) -> int:
        """The object's size in bytes (known after the first fetch, which this may trigger)."""
        if self._size is None:
            self._fetch_at(0, self._request)
        assert self._size is not None
        return self._size

    def tell(self) -> int:
        self._checkClosed()
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        """Move to ``offset`` relative to ``whence``; positions past the end read as EOF."""
        self._checkClosed()
        if whence == io.SEEK_SET:
            position = offset
        elif whence == io.SEEK_CUR:
            position = self._pos + offset
        elif whence == io.SEEK_END:
            position = self.size + offset
        else:
            raise ValueError(f"invalid whence ({whence})")
        if position < 0:
            raise ValueError(f"negative seek position {position}")
        self._pos = position
        return position

    def read(self, size: int = -1, /) -> bytes:
        """Return ``size`` bytes from the current position (fewer only at the end; all when negative).

        pydicom makes two or three reads of a few bytes per element: one that the last chunk
        holds is a slice of it, without RawIOBase's round through ``readinto``.
        """
        chunk, start = self._last
        offset = self._pos - start
        if size >= 0 and offset >= 0 and offset + size <= len(chunk):
            self._pos += size
            return chunk[offset : offset + size]
        data = super().read(size)
        return data if data is not None else b""

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]  # typeshed: any buffer
        """Fill ``buffer`` from the current position; fewer bytes only at the end."""
        self._checkClosed()
        return self._read_into(memoryview(buffer).cast("B"))

    def readall(self) -> bytes:
        """Return everything from the current position to the end.

        Each missing stretch is fetched in one request: pydicom reads a deflated dataset
        (PS3.5 A.5) to the end before inflating it, and one request beats doubling up to it.
        """
        self._checkClosed()
        remaining = max(0, self.size - self._pos)
        buffer = bytearray(remaining)
        read = self._read_into(memoryview(buffer), to_end=True)
        return bytes(buffer[:read])

    def close(self) -> None:
        """Drop the fetched bytes."""
        self._starts, self._chunks, self._last = [], [], (b"", 0)
        super().close()

    def _read_into(self, view: memoryview, to_end: bool = False) -> int:
        """Copy bytes from the cache into ``view``, fetching on each miss.

        A miss fetches the next request size, or more when the read itself needs more, or
        everything up to the end when ``to_end``.
        """
        written = 0
        while written < len(view) and self._pos < self.size:
            wanted = self.size - self._pos if to_end else max(self._request, len(view) - written)
            chunk, offset = self._chunk_at(self._pos, wanted)
            count = min(len(view) - written, len(chunk) - offset)
            view[written : written + count] = memoryview(chunk)[offset : offset + count]
            written += count
            self._pos += count
        return written

    def _chunk_at(self, position: int, request: int) -> tuple[bytes, int]:
        """Return the fetched chunk holding ``position`` and the offset in it, fetching on a miss."""
        index = bisect.bisect_right(self._starts, position) - 1
        if index >= 0 and position < self._starts[index] + len(self._chunks[index]):
            self._last = (self._chunks[index], self._starts[index])
            return self._last[0], position - self._last[1]
        data = self._fetch_at(position, request)
        self._last = (data, position)
        return data, 0

    def _fetch_at(self, position: int, request: int) -> bytes:
        """Fetch up to ``request`` bytes from ``position`` into the cache; double the next request.

        Only the first fetch (from ``size``) runs before the size is known, and it is at 0:
        every later one starts inside the object, where S3 accepts the range.
        """
        index = bisect.bisect_right(self._starts, position)
        # Stop at the next fetched range, so ranges never overlap and nothing is fetched twice.
        end = self._starts[index] if index < len(self._starts) else self._size
        length = request if end is None else min(request, end - position)
        data, total = self._fetch(position, length)
        if self._size is None:
            self._size = total
        elif not data:
            raise OSError(f"ranged read at {position} of a {self._size}-byte object returned nothing")
        if data:
            self._starts.insert(index, position)
            self._chunks.insert(index, data)
        self._request = min(self._request * 2, self._max_request)
        return data
