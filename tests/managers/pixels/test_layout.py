"""Frame layouts of files built to hurt: bounded reads, clear errors, never a fetch past the object."""

from __future__ import annotations

import struct
from collections.abc import Callable

import pytest

from errors import NotDicom
from managers.pixels.decode import codestream_size
from managers.pixels.layout import MAX_FRAGMENTS, PixelHeader, encapsulated_layout, native_layout

ITEM = b"\xfe\xff\x00\xe0"
DELIMITER = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"
ELEMENT = b"\xe0\x7f\x10\x00OB\x00\x00\xff\xff\xff\xff"


def fetcher(data: bytes, calls: list[tuple[int, int]]) -> Callable[[int, int], tuple[bytes, int]]:
    def fetch(start: int, length: int) -> tuple[bytes, int]:
        assert 0 <= start <= len(data), "a fetch past the object"
        calls.append((start, length))
        return data[start : start + length], len(data)

    return fetch


def header(frames: int = 1, syntax: str = "1.2.840.10008.1.2.4.50") -> PixelHeader:
    return PixelHeader(syntax, True, False, 0, 8, 8, 1, 8, frames)


def item(value: bytes) -> bytes:
    return ITEM + struct.pack("<L", len(value)) + value


def test_a_basic_offset_table_pointing_past_the_end_is_refused() -> None:
    data = ELEMENT + item(struct.pack("<2L", 0, 10_000_000)) + item(b"x" * 8) + DELIMITER
    calls: list[tuple[int, int]] = []
    with pytest.raises(NotDicom, match="past the end"):
        encapsulated_layout(header(2), fetcher(data, calls), len(data))


def test_an_offset_table_larger_than_its_frames_is_refused_unread() -> None:
    data = ELEMENT + ITEM + struct.pack("<L", 4_000_000) + b"\x00" * 64
    calls: list[tuple[int, int]] = []
    with pytest.raises(NotDicom, match="larger than its frames"):
        encapsulated_layout(header(1), fetcher(data, calls), len(data))
    assert sum(length for _, length in calls) < 64


def test_too_many_empty_fragments_stop_at_the_bound() -> None:
    data = ELEMENT + item(b"") + item(b"") * (MAX_FRAGMENTS + 2) + DELIMITER
    calls: list[tuple[int, int]] = []
    with pytest.raises(NotDicom, match="more than"):
        encapsulated_layout(header(2), fetcher(data, calls), len(data))


def test_fragments_without_a_delimiter_are_refused() -> None:
    data = ELEMENT + item(b"") + item(b"abcd")
    with pytest.raises(NotDicom, match="sequence delimiter"):
        encapsulated_layout(header(1), fetcher(data, []), len(data))


def test_one_frame_of_several_fragments_and_one_fragment_per_frame() -> None:
    single = ELEMENT + item(b"") + item(b"ab") + item(b"cd") + DELIMITER
    layout = encapsulated_layout(header(1), fetcher(single, []), len(single))
    (span,) = layout.frames
    assert span.extract(single[span.start : span.end]) == b"abcd"
    multi = ELEMENT + item(b"") + item(b"ab") + item(b"cd") + DELIMITER
    first, second = encapsulated_layout(header(2), fetcher(multi, []), len(multi)).frames
    assert multi[first.start : first.end] == b"ab" and multi[second.start : second.end] == b"cd"


def test_native_pixel_data_shorter_than_its_frames_is_refused() -> None:
    data = b"\xe0\x7f\x10\x00OW\x00\x00" + struct.pack("<L", 100) + b"\x00" * 100
    native = PixelHeader("1.2.840.10008.1.2.1", True, False, 0, 8, 8, 1, 16, 2)
    with pytest.raises(NotDicom, match="shorter than its frames"):
        native_layout(native, fetcher(data, []))


def test_a_codestream_s_declared_size_is_read_before_decoding() -> None:
    siz = b"\xff\x4f\xff\x51" + b"\x00" * 4 + struct.pack(">4L", 65535, 65535, 0, 0)
    assert codestream_size(siz) == (65535, 65535)
    sof = b"\xff\xd8" + b"\xff\xc0" + struct.pack(">HBHH", 11, 8, 300, 400) + b"\x01\x01\x11\x00"
    assert codestream_size(sof) == (400, 300)
    assert codestream_size(b"not a codestream") is None
