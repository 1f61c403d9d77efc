"""Streams that bound what parsing one DICOM header may cost, whatever the file claims.

pydicom trusts a file: it reads a value as long as the length the file declares, inflates a
Deflated dataset (PS3.5 A.5) in one call, and walks as many elements as there are. A file built
to hurt makes any of these take gigabytes or minutes. The reader wraps the stream it parses in
these classes, which refuse (``HeaderTooLarge``) before the cost is paid, not after.
"""

from __future__ import annotations

import io
import zlib
from typing import Protocol

# Bytes a header parse may read from the stream in all (values skipped by seeking are not
# read). Real headers are kilobytes; an enhanced multi-frame header with per-frame sequences
# for a thousand frames is a megabyte or two. RangedReader doubles its requests, so S3 sends
# at most about twice this (8 MiB) for one header.
MAX_HEADER_BYTES = 4 * 1024 * 1024
# Read calls a header parse may make: pydicom makes two or three per element, so this bounds
# the elements walked (and the time and the objects built) where bytes alone would not: 10,000
# to 30,000 elements, a quarter of a second at worst (empty elements, one read each). A long
# sequence of defined length costs no reads (its value is skipped, DEFER_SIZE); only
# undefined-length ones are walked element by element (1,500 items of 4 elements: 13,600 reads).
MAX_HEADER_READS = 30_000
# Bytes a Deflated dataset may inflate to before its header must have ended.
MAX_INFLATED_BYTES = 8 * 1024 * 1024
# Compressed bytes fed to the inflater at a time.
_INFLATE_CHUNK = 16 * 1024


class Stream(Protocol):
    """What the header reader needs of a stream: a seekable binary file (``BytesIO``, ``RangedReader``)."""

    def read(self, size: int = -1, /) -> bytes | None: ...

    def seek(self, offset: int, whence: int = io.SEEK_SET, /) -> int: ...

    def tell(self) -> int: ...


class HeaderTooLarge(OSError):
    """Raised when parsing a header would read, inflate or walk more than its bounds allow."""


class BoundedStream(io.RawIOBase):
    """A read-only view of a seekable stream that refuses reads beyond a budget.

    Parameters
    ----------
    fp
        The seekable binary stream to read.
    max_bytes
        Bytes all reads together may return; a read that would pass it raises before reading,
        so a declared length of 4 GiB allocates nothing.
    max_reads
        Read calls allowed.
    """

    def __init__(self, fp: Stream, max_bytes: int = MAX_HEADER_BYTES, max_reads: int = MAX_HEADER_READS) -> None:
        super().__init__()
        self._fp = fp
        self._bytes_left = max_bytes
        self._reads_left = max_reads

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        """Return up to ``size`` bytes (all that is left when negative), within the budget."""
        self._reads_left -= 1
        if self._reads_left < 0:
            raise HeaderTooLarge("the header has more elements than a header may have")
        if size is None or size < 0:
            data = self._fp.read(self._bytes_left + 1) or b""
        elif size > self._bytes_left:
            raise HeaderTooLarge("the header is larger than a header may be")
        else:
            data = self._fp.read(size) or b""
        if len(data) > self._bytes_left:
            raise HeaderTooLarge("the header is larger than a header may be")
        self._bytes_left -= len(data)
        return data

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]  # RawIOBase's is Buffer
        data = self.read(len(buffer))
        memoryview(buffer).cast("B")[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._fp.seek(offset, whence)

    def tell(self) -> int:
        return self._fp.tell()

    def size(self) -> int:
        """The stream's length in bytes (the position is kept)."""
        here = self._fp.tell()
        end = self._fp.seek(0, io.SEEK_END)
        self._fp.seek(here)
        return end


class InflatingReader(io.RawIOBase):
    """A seekable file over the inflated bytes of a raw deflate stream, inflated on demand.

    Only what parsing reaches is inflated, so a header followed by gigabytes of compressed
    pixel data costs the header; reaching past ``max_size`` raises ``HeaderTooLarge``.

    Parameters
    ----------
    fp
        The compressed stream, positioned at its first byte (PS3.5 A.5: raw deflate, no zlib header).
    max_size
        Inflated bytes allowed.
    """

    def __init__(self, fp: Stream, max_size: int = MAX_INFLATED_BYTES) -> None:
        super().__init__()
        self._fp = fp
        self._max_size = max_size
        self._inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        self._data = bytearray()
        self._pos = 0
        self._ended = False

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        """Return up to ``size`` inflated bytes from the position (to the end when negative)."""
        end = self._max_size + 1 if size is None or size < 0 else self._pos + size
        self._inflate_to(end)
        data = bytes(self._data[self._pos : end])
        self._pos += len(data)
        return data

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]  # RawIOBase's is Buffer
        data = self.read(len(buffer))
        memoryview(buffer).cast("B")[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            position = offset
        elif whence == io.SEEK_CUR:
            position = self._pos + offset
        else:  # the end is known only by inflating to it
            self._inflate_to(self._max_size + 1)
            position = len(self._data) + offset
        self._pos = max(0, position)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def _inflate_to(self, end: int) -> None:
        """Inflate until ``end`` bytes are out or the stream ends; refuse past ``max_size``."""
        while len(self._data) < end and not self._ended:
            if len(self._data) > self._max_size:
                raise HeaderTooLarge("the deflated dataset inflates beyond what a header may")
            chunk = self._inflater.unconsumed_tail or self._fp.read(_INFLATE_CHUNK) or b""
            if not chunk:
                self._ended = True
                break
            # zlib.error on a corrupt stream is the caller's to map.
            self._data += self._inflater.decompress(chunk, self._max_size + 1 - len(self._data))
            self._ended = self._inflater.eof
        if end > self._max_size and len(self._data) > self._max_size:
            raise HeaderTooLarge("the deflated dataset inflates beyond what a header may")
