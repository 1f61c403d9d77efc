"""Frames read from the files where they lie: the layout learned once per file version, then
one ranged GET per frame.

A file's ``FrameLayout`` is learned from its header (the same bounded parse as every header
read, over ranged GETs) the first time one of its frames is asked for, and kept in memory per
s3 path and ETag: files indexed before this code existed need nothing more, and a file
overwritten since is learned again. A frame then costs one ranged GET of about its own bytes
(``IfMatch`` the ETag, so a frame is never cut from another version), whatever the file's size.
"""

from __future__ import annotations

import array
import sys
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from typing import IO, Any, cast

from pydicom.dataset import Dataset

from errors import NotAcceptable, NotDicom, NotFound
from managers.aws.objects import ObjectChanged, VersionedFetch, read_range
from managers.dicom.header import read_header
from managers.dicom.ranged import FIRST_REQUEST, RangedReader
from managers.pixels.layout import (
    DEFLATED,
    IMPLICIT_VR_LITTLE_ENDIAN,
    MAX_FRAMES,
    NATIVE_SYNTAXES,
    FrameLayout,
    PixelHeader,
    encapsulated_layout,
    native_layout,
)
from metadata import parse_s3_path

# Memory the layouts kept per reader (an app) may take. A layout costs about
# ``BYTES_PER_PART`` per byte range (one per frame, or per fragment of a frame of several):
# a single-frame instance a few hundred bytes, a 100,000-frame file about 24 MB. The budget
# holds some 250,000 single-frame instances' layouts, or two of the largest files'.
CACHE_BYTES = 64 * 1024 * 1024
BYTES_PER_PART = 256  # measured with tracemalloc (tests/managers/pixels/test_frames.py)
# Bytes one ranged GET of a whole pixel data value reads, and what the API holds at once.
STREAM_CHUNK = 1024 * 1024
_PIXEL_DATA_TAG = b"\xe0\x7f\x10\x00"  # (7FE0,0010) little endian
_PIXEL_DATA_TAG_BIG = b"\x7f\xe0\x00\x10"


@dataclass(frozen=True)
class Frames:
    """One file version's layout: its ETag and where its frames lie."""

    etag: str
    layout: FrameLayout

    @property
    def count(self) -> int:
        return len(self.layout.frames)

    @property
    def weight(self) -> int:
        """About the bytes this layout takes in memory."""
        return BYTES_PER_PART * (1 + sum(len(span.parts) for span in self.layout.frames))


class FrameReader:
    """Reads frames through one S3 client, keeping each file version's layout (built once per app)."""

    def __init__(self, client: Any, cache_bytes: int = CACHE_BYTES) -> None:
        self.client = client
        self._cache: OrderedDict[tuple[str, str], Frames] = OrderedDict()
        self._cache_bytes = cache_bytes
        self._cached_bytes = 0
        self._lock = threading.Lock()

    @property
    def cached_bytes(self) -> int:
        """About the bytes the layouts kept take (never more than the budget)."""
        return self._cached_bytes

    def frames(self, s3_path: str, etag: str | None = None) -> Frames:
        """Return the layout of the file at ``s3_path``, learning it on first use.

        ``etag``: the version the caller knows of (an instance record's); when the object has
        another one now, the current version is learned instead.

        Raises
        ------
        NotFound
            When the object is gone, or holds no pixel data.
        NotDicom
            When its header or pixel data is malformed or over a bound.
        """
        if etag:
            with self._lock:
                cached = self._cache.get((s3_path, etag))
                if cached is not None:
                    self._cache.move_to_end((s3_path, etag))
                    return cached
            try:
                return self._learn(s3_path, etag)
            except ObjectChanged:
                pass  # overwritten since it was indexed: the version there now
        return self._learn(s3_path, None)

    def read(self, s3_path: str, frames: Frames, number: int) -> bytes:
        """Return frame ``number`` (1-based) of a file version, as stored (big endian swapped).

        Raises
        ------
        ObjectChanged
            When the object was overwritten since ``frames`` was learned.
        """
        span = frames.layout.frames[number - 1]
        bucket, key = parse_s3_path(s3_path)
        data = read_range(self.client, bucket, key, span.start, span.end - span.start, frames.etag).data
        if len(data) < span.end - span.start and not span.items:
            raise NotDicom("the object ends inside a frame")
        frame = span.extract(data)
        return _little_endian(frame, frames.layout.swap_width)

    def native_pixel_data(self, s3_path: str, frames: Frames) -> Iterator[bytes]:
        """Yield a native file's pixel data, every frame, little endian, ``STREAM_CHUNK`` at a time.

        Raises
        ------
        ObjectChanged
            When the object was overwritten since ``frames`` was learned.
        """
        bucket, key = parse_s3_path(s3_path)
        start, end = frames.layout.frames[0].start, frames.layout.frames[-1].end
        # A chunk is a whole number of samples of any width (1 to 8 bytes): none is split.
        for offset in range(start, end, STREAM_CHUNK):
            data = read_range(self.client, bucket, key, offset, min(STREAM_CHUNK, end - offset), frames.etag).data
            yield _little_endian(data, frames.layout.swap_width)

    def _learn(self, s3_path: str, etag: str | None) -> Frames:
        bucket, key = parse_s3_path(s3_path)
        fetch = VersionedFetch(self.client, bucket, key, etag)
        with RangedReader(fetch, FIRST_REQUEST) as reader:
            if reader.size == 0:
                raise NotDicom("the object is empty")
            dataset = read_header(cast(IO[bytes], reader))
            header = pixel_header(dataset, reader.tell())
            cached_fetch = partial(_cached_read, reader)
            if header.transfer_syntax in NATIVE_SYNTAXES:
                layout = native_layout(header, cached_fetch)
            else:
                layout = encapsulated_layout(header, cached_fetch, reader.size)
        learned = Frames(fetch.etag or "", layout)
        self._keep((s3_path, learned.etag), learned)
        return learned

    def _keep(self, key: tuple[str, str], learned: Frames) -> None:
        """Cache a layout, dropping the least recently used ones beyond the byte budget."""
        if learned.weight > self._cache_bytes:
            return  # larger than the whole budget: learned again when asked for again
        with self._lock:
            replaced = self._cache.pop(key, None)
            self._cached_bytes -= replaced.weight if replaced is not None else 0
            self._cache[key] = learned
            self._cached_bytes += learned.weight
            while self._cached_bytes > self._cache_bytes:
                _, dropped = self._cache.popitem(last=False)
                self._cached_bytes -= dropped.weight


def _cached_read(reader: RangedReader, start: int, length: int) -> tuple[bytes, int]:
    """Read through the header's reader, so bytes it already fetched are not fetched again."""
    reader.seek(start)
    return reader.read(max(0, min(length, reader.size - start))), reader.size


def pixel_header(dataset: Dataset, position: int) -> PixelHeader:
    """Return what a parsed header says of its pixel data, which starts at ``position``.

    Raises
    ------
    NotFound
        When the file has no pixel data (a report, a presentation state).
    NotDicom
        When an image attribute is missing or absurd.
    """
    implicit, little = dataset.original_encoding
    meta = getattr(dataset, "file_meta", None)
    syntax = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
    syntax = syntax or IMPLICIT_VR_LITTLE_ENDIAN
    if syntax == DEFLATED:
        raise NotAcceptable("frames cannot be cut out of a deflated dataset")
    try:
        header = PixelHeader(
            transfer_syntax=syntax,
            little_endian=bool(little),
            implicit_vr=bool(implicit),
            element_offset=position,
            rows=int(dataset.Rows),
            columns=int(dataset.Columns),
            samples_per_pixel=int(dataset.get("SamplesPerPixel", 1) or 1),
            bits_allocated=int(dataset.BitsAllocated),
            number_of_frames=int(str(dataset.get("NumberOfFrames", 1) or 1).strip() or 1),
            photometric_interpretation=str(dataset.get("PhotometricInterpretation", "")).strip(),
            extended_offsets=_uint64s(dataset, "ExtendedOffsetTable"),
            extended_lengths=_uint64s(dataset, "ExtendedOffsetTableLengths"),
        )
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise NotFound("the instance has no frames (no image attributes)") from exc
    if not 1 <= header.number_of_frames <= MAX_FRAMES or min(header.rows, header.columns) < 1:
        raise NotDicom(f"the image declares a number of frames or a size out of bounds (1 to {MAX_FRAMES} frames)")
    return header


def _uint64s(dataset: Dataset, keyword: str) -> tuple[int, ...] | None:
    value = dataset.get(keyword)
    if value is None:
        return None
    data = bytes(value)
    if len(data) % 8 or len(data) > 8 * MAX_FRAMES:
        raise NotDicom(f"the {keyword} is malformed")
    numbers = array.array("Q", data)
    if sys.byteorder == "big":
        numbers.byteswap()
    return tuple(numbers)


def _little_endian(frame: bytes, width: int) -> bytes:
    """Swap a big-endian native frame's samples to little endian (PS3.5 7.3)."""
    if not width or len(frame) % width:
        return frame
    samples = array.array({2: "H", 4: "I", 8: "Q"}[width], frame)
    samples.byteswap()
    return samples.tobytes()
