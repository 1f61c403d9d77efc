"""Where each frame of a file lies: its byte ranges in the object, learned once per file version.

Native pixel data (PS3.5 8.1.1) is one value: frame ``n`` is ``frame_bytes`` long at a fixed
offset. Encapsulated pixel data (PS3.5 A.4) is a sequence of items: the Basic Offset Table,
then fragments. A frame's fragments are found through the Extended Offset Table
(7FE0,0001/0002) when the header has one, else the Basic Offset Table, else the item headers
themselves (one frame per fragment, or every fragment one frame for a single-frame image).

Every read is bounded whatever the file declares: at most ``MAX_FRAMES`` frames and
``MAX_FRAGMENTS`` fragments, no range past the end of the object, an offset table no larger
than its frames need.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

from errors import NotDicom

# Fetches ``length`` bytes from ``start`` (fewer at the end) and the object's size.
Fetch = Callable[[int, int], tuple[bytes, int]]

EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
IMPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2"
EXPLICIT_VR_BIG_ENDIAN = "1.2.840.10008.1.2.2"
DEFLATED = "1.2.840.10008.1.2.1.99"
NATIVE_SYNTAXES = frozenset({EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN, EXPLICIT_VR_BIG_ENDIAN})

MAX_FRAMES = 100_000
MAX_FRAGMENTS = 262_144
# Bytes one item-header walk fetches at a time: many small fragments' headers in one GET,
# little wasted on one large fragment's.
WALK_WINDOW = 4 * 1024
_ITEM = 0xE000FFFE  # (FFFE,E000) read as a little-endian uint32
_SEQUENCE_DELIMITER = 0xE0DDFFFE
_UNDEFINED = 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class Span:
    """One frame's bytes: ``parts`` are (offset, length) ranges of the object, in order.

    A native frame or a one-fragment frame has one part; a frame of several fragments has one
    per fragment, all inside ``start``..``end``, so a single ranged GET reads them all. With
    ``items``, the one part is a stretch of items (a Basic Offset Table's frame) whose
    fragments are found in the bytes read, up to the sequence delimiter.
    """

    parts: tuple[tuple[int, int], ...]
    items: bool = False

    @property
    def start(self) -> int:
        return self.parts[0][0]

    @property
    def end(self) -> int:
        return self.parts[-1][0] + self.parts[-1][1]

    def extract(self, data: bytes) -> bytes:
        """Return the frame from ``data``, the object's bytes ``start``..``end``."""
        if self.items:
            return b"".join(data[offset : offset + length] for offset, length in fragments_in(data))
        if len(self.parts) == 1:
            return data
        return b"".join(data[offset - self.start : offset - self.start + length] for offset, length in self.parts)


@dataclass(frozen=True)
class FrameLayout:
    """Where a file's frames are, and how they are stored."""

    transfer_syntax: str
    frames: tuple[Span, ...]
    # Bytes per sample of a native frame (2 for 16-bit), to swap a big-endian one; 0 otherwise.
    swap_width: int = 0

    @property
    def encapsulated(self) -> bool:
        return self.transfer_syntax not in NATIVE_SYNTAXES


@dataclass(frozen=True)
class PixelHeader:
    """What the header says of the pixel data, and where its element starts in the object."""

    transfer_syntax: str
    little_endian: bool
    implicit_vr: bool
    element_offset: int
    rows: int
    columns: int
    samples_per_pixel: int
    bits_allocated: int
    number_of_frames: int
    photometric_interpretation: str = ""
    extended_offsets: tuple[int, ...] | None = None
    extended_lengths: tuple[int, ...] | None = None


def native_layout(header: PixelHeader, fetch: Fetch) -> FrameLayout:
    """Return the frames of native pixel data: ``number_of_frames`` equal slices of one value.

    Raises
    ------
    NotDicom
        When the value is shorter than its frames, or a frame is not a whole number of bytes.
    """
    value_offset, length = _element(header, fetch)
    bits = header.rows * header.columns * header.samples_per_pixel * header.bits_allocated
    if header.photometric_interpretation == "YBR_FULL_422":
        bits = bits * 2 // 3  # two chroma samples per two pixels (PS3.3 C.7.6.3.1.2)
    if bits == 0 or bits % 8:
        raise NotDicom("the pixel data's frames are not whole bytes")
    frame_bytes = bits // 8
    if length == _UNDEFINED or frame_bytes * header.number_of_frames > length:
        raise NotDicom("the pixel data is shorter than its frames")
    spans = tuple(Span(((value_offset + n * frame_bytes, frame_bytes),)) for n in range(header.number_of_frames))
    swap = header.bits_allocated // 8 if not header.little_endian and header.bits_allocated in (16, 32, 64) else 0
    return FrameLayout(header.transfer_syntax, spans, swap)


def encapsulated_layout(header: PixelHeader, fetch: Fetch, size: int) -> FrameLayout:
    """Return the frames of encapsulated pixel data (PS3.5 A.4).

    Raises
    ------
    NotDicom
        When the items are malformed, point past the object, or are more than the bounds allow.
    """
    value_offset, length = _element(header, fetch)
    if length != _UNDEFINED:
        raise NotDicom("encapsulated pixel data must have an undefined length")
    offsets_item = _item_at(fetch, value_offset, size)
    table_length = offsets_item[1]
    if table_length > 8 * header.number_of_frames:
        raise NotDicom("the basic offset table is larger than its frames need")
    first_fragment = value_offset + 8 + table_length
    if header.extended_offsets is not None and header.extended_lengths is not None:
        spans = _from_extended(header, first_fragment, size)
    elif table_length:
        table, _ = fetch(value_offset + 8, table_length)
        if len(table) < table_length or table_length % 4:
            raise NotDicom("the basic offset table is cut short")
        basic = struct.unpack(f"<{table_length // 4}L", table)
        spans = _from_basic(basic, first_fragment, header.number_of_frames, size)
    else:
        spans = _from_items(_walk(fetch, first_fragment, size), header.number_of_frames)
    return FrameLayout(header.transfer_syntax, spans)


def _element(header: PixelHeader, fetch: Fetch) -> tuple[int, int]:
    """Return where the pixel data's value starts and its declared length."""
    head, _ = fetch(header.element_offset, 12)
    order = "<" if header.little_endian else ">"
    if len(head) < 8:
        raise NotDicom("the pixel data element is cut short")
    if header.implicit_vr:
        return header.element_offset + 8, struct.unpack(f"{order}L", head[4:8])[0]
    if len(head) < 12:
        raise NotDicom("the pixel data element is cut short")
    # OB, OW, OF, OD (and UN) carry two reserved bytes and a 32-bit length (PS3.5 7.1.2).
    return header.element_offset + 12, struct.unpack(f"{order}L", head[8:12])[0]


def _item_at(fetch: Fetch, offset: int, size: int) -> tuple[int, int]:
    """Return the tag and length of the item header at ``offset``."""
    if offset + 8 > size:
        raise NotDicom("an item of the pixel data runs past the end of the object")
    data, _ = fetch(offset, 8)
    tag, length = struct.unpack("<LL", data[:8])
    if tag != _ITEM or length == _UNDEFINED:
        raise NotDicom("the pixel data holds something that is no item")
    return tag, length


def _from_extended(header: PixelHeader, first_fragment: int, size: int) -> tuple[Span, ...]:
    """Frames of the Extended Offset Table: one fragment each (PS3.5 A.4, 7FE0,0001/0002)."""
    offsets, lengths = header.extended_offsets or (), header.extended_lengths or ()
    if len(offsets) != header.number_of_frames or len(lengths) != len(offsets):
        raise NotDicom("the extended offset table does not list every frame")
    spans = []
    for offset, length in zip(offsets, lengths, strict=True):
        start = first_fragment + offset + 8
        if start + length > size:
            raise NotDicom("the extended offset table points past the end of the object")
        spans.append(Span(((start, length),)))
    return tuple(spans)


def _from_basic(table: tuple[int, ...], first_fragment: int, frames: int, size: int) -> tuple[Span, ...]:
    """Frames of the Basic Offset Table: each from its offset to the next frame's (the last: the end)."""
    if len(table) != frames or list(table) != sorted(table) or table[0] != 0:
        raise NotDicom("the basic offset table does not list its frames in order")
    starts = [first_fragment + offset for offset in table]
    if starts[-1] + 8 > size:
        raise NotDicom("the basic offset table points past the end of the object")
    # The last frame runs to the sequence delimiter, read with it: the object's end bounds it.
    ends = [*starts[1:], size]
    return tuple(Span(((start, end - start),), items=True) for start, end in zip(starts, ends, strict=True))


def fragments_in(data: bytes) -> list[tuple[int, int]]:
    """Return the (offset, length) of each fragment value in a stretch of items, to a delimiter.

    Raises
    ------
    NotDicom
        When an item is malformed or runs past the stretch.
    """
    fragments: list[tuple[int, int]] = []
    offset = 0
    while offset + 8 <= len(data):
        tag, length = struct.unpack("<LL", data[offset : offset + 8])
        if tag == _SEQUENCE_DELIMITER:
            break
        if tag != _ITEM or offset + 8 + length > len(data):
            raise NotDicom("a fragment of the pixel data is malformed or runs past the end")
        fragments.append((offset + 8, length))
        if len(fragments) > MAX_FRAGMENTS:
            raise NotDicom(f"the pixel data has more than {MAX_FRAGMENTS} fragments")
        offset += 8 + length
    return fragments


def _from_items(items: list[tuple[int, int]], frames: int) -> tuple[Span, ...]:
    """Frames without an offset table: one per fragment, or all fragments one frame."""
    if frames == 1 and items:
        return (Span(tuple(items)),)
    if len(items) == frames:
        return tuple(Span((item,)) for item in items)
    raise NotDicom("the fragments cannot be told apart into frames without an offset table")


def _walk(fetch: Fetch, offset: int, size: int) -> list[tuple[int, int]]:
    """Return every fragment's value (offset, length) from ``offset`` to the sequence delimiter.

    Item headers are read a window at a time, so many small fragments cost one GET.
    """
    fragments: list[tuple[int, int]] = []
    window_start, window = offset, b""
    while True:
        if offset + 8 > size:
            raise NotDicom("the pixel data ends without its sequence delimiter")
        if not window_start <= offset <= window_start + len(window) - 8:
            window_start, (window, _) = offset, fetch(offset, min(WALK_WINDOW, size - offset))
        at = offset - window_start
        tag, length = struct.unpack("<LL", window[at : at + 8])
        if tag == _SEQUENCE_DELIMITER:
            return fragments
        if tag != _ITEM or length == _UNDEFINED or offset + 8 + length > size:
            raise NotDicom("a fragment of the pixel data is malformed or runs past the end")
        fragments.append((offset + 8, length))
        if len(fragments) > MAX_FRAGMENTS:
            raise NotDicom(f"the pixel data has more than {MAX_FRAGMENTS} fragments")
        offset += 8 + length
