"""The ranged reader on its own: a fake fetch over bytes in memory, every call recorded."""

from __future__ import annotations

import io
import random

import pytest

from managers.dicom.ranged import RangedReader

DATA = bytes(range(256)) * 40  # 10,240 bytes, each offset's value known


class FakeObject:
    """An object in memory that answers ranged reads as ``S3Manager.read_range`` does."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.calls: list[tuple[int, int]] = []

    def fetch(self, start: int, length: int) -> tuple[bytes, int]:
        self.calls.append((start, length))
        if not self.data:
            return b"", 0
        assert 0 <= start < len(self.data), "a range must start inside the object"
        return self.data[start : start + length], len(self.data)


def reader_of(data: bytes = DATA, first: int = 1024, most: int = 8192) -> tuple[RangedReader, FakeObject]:
    remote = FakeObject(data)
    return RangedReader(remote.fetch, first_request=first, max_request=most), remote


def test_a_read_inside_the_first_request_costs_one_fetch() -> None:
    reader, remote = reader_of()
    assert reader.read(128) == DATA[:128]
    assert reader.read(4) == DATA[128:132]
    reader.seek(1000)
    assert reader.read(24) == DATA[1000:1024]
    assert remote.calls == [(0, 1024)]


def test_reads_past_the_cache_double_the_request() -> None:
    reader, remote = reader_of()
    assert reader.read(5000) == DATA[:5000]
    assert remote.calls == [(0, 1024), (1024, 3976)]  # one miss asks for what the read needs
    reader, remote = reader_of()
    for _ in range(7):
        reader.read(1000)
    assert [length for _, length in remote.calls] == [1024, 2048, 4096]


def test_the_request_size_stops_doubling_at_the_maximum() -> None:
    reader, remote = reader_of(first=1024, most=2048)
    while reader.read(512):
        pass
    assert {length for _, length in remote.calls[1:-1]} == {2048}


def test_a_read_across_two_fetched_ranges_is_whole() -> None:
    reader, remote = reader_of()
    reader.seek(3000)
    reader.read(10)  # fetches [3000, 5048), leaving a gap after the first range
    reader.seek(1000)
    assert reader.read(2100) == DATA[1000:3100]
    # The gap is fetched up to the next range only: no byte is fetched twice.
    assert remote.calls == [(0, 1024), (3000, 2048), (1024, 1976)]


def test_seeking_back_costs_nothing() -> None:
    reader, remote = reader_of()
    reader.read(900)
    # Each step reads 8 bytes after seeking: SEEK_CUR starts from 18.
    for whence, offset, expected in ((io.SEEK_SET, 10, 10), (io.SEEK_CUR, -13, 5), (io.SEEK_END, -10_000, 240)):
        assert reader.seek(offset, whence) == expected
        assert reader.tell() == expected
        assert reader.read(8) == DATA[expected : expected + 8]
    assert remote.calls == [(0, 1024)]


def test_end_of_file() -> None:
    reader, remote = reader_of(first=4096)
    reader.seek(len(DATA) - 3)
    assert reader.read(10) == DATA[-3:]
    assert reader.read(10) == b""
    reader.seek(len(DATA) + 50)
    assert reader.read(1) == b""
    assert all(start < len(DATA) for start, _ in remote.calls)


def test_readall_fetches_the_rest_at_once() -> None:
    reader, remote = reader_of()
    reader.seek(100)
    assert reader.read() == DATA[100:]
    assert remote.calls == [(0, 1024), (1024, len(DATA) - 1024)]


def test_an_empty_object_reads_as_empty() -> None:
    reader, remote = reader_of(b"")
    assert reader.read(128) == b""
    assert reader.read() == b""
    assert reader.seek(0, io.SEEK_END) == 0
    assert remote.calls == [(0, 1024)]


def test_a_closed_reader_refuses_reads() -> None:
    reader, _ = reader_of()
    with reader:
        reader.read(1)
    with pytest.raises(ValueError):
        reader.read(1)


def test_negative_positions_are_refused() -> None:
    reader, _ = reader_of()
    with pytest.raises(ValueError):
        reader.seek(-1)


def test_readinto_fills_a_buffer() -> None:
    reader, _ = reader_of()
    buffer = bytearray(3000)
    assert reader.readinto(buffer) == 3000
    assert bytes(buffer) == DATA[:3000]


def test_small_reads_anywhere_match_the_object_and_fetch_no_byte_twice() -> None:
    # pydicom's pattern: many reads of a few bytes, seeks forward and back. The last chunk
    # serves most of them directly; each must still be the object's bytes at that position.
    reader, remote = reader_of(first=512, most=2048)
    rng = random.Random(7)
    for _ in range(2000):
        position, size = rng.randrange(len(DATA) + 10), rng.choice((0, 1, 2, 4, 8, 100, 700))
        reader.seek(position)
        assert reader.read(size) == DATA[position : position + size]
        assert reader.tell() == min(position + size, max(position, len(DATA)))
    fetched = sorted((start, start + length) for start, length in remote.calls)
    assert all(end <= following for (_, end), (following, _) in zip(fetched, fetched[1:], strict=False))
