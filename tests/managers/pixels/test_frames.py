"""The frame reader's layout cache: bounded in bytes whatever the files declare, on real files
in the embedded S3 (outside dicom/, so nothing indexes them)."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from typing import Any

from local.samples import SampleSpec, build_dataset, encode_file
from managers.pixels.frames import BYTES_PER_PART, FrameReader
from managers.pixels.layout import FrameLayout, Span


def frames_file(frames: int) -> bytes:
    """A native file of ``frames`` one-pixel 16-bit frames: many frames in few bytes."""
    spec = SampleSpec()
    dataset = build_dataset(spec)
    dataset.Rows = dataset.Columns = 1
    dataset.NumberOfFrames = frames
    dataset.PixelData = bytes(2 * frames)
    return encode_file(dataset, spec)


def test_a_layout_takes_no_more_than_its_weight_says() -> None:
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        layout = FrameLayout("1.2.840.10008.1.2.1", tuple(Span(((10**9 + 2 * n, 2),)) for n in range(100_000)))
        taken = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(layout.frames) == 100_000
    assert taken <= BYTES_PER_PART * 100_000


def test_the_cache_keeps_to_its_byte_budget(s3: Any, put_object: Callable[[str, bytes], str]) -> None:
    big = put_object("frames-cache/big.dcm", frames_file(20_000))
    small = [put_object(f"frames-cache/small-{n}.dcm", frames_file(1)) for n in range(40)]
    budget = BYTES_PER_PART * 20_010  # the big layout and four small ones
    reader = FrameReader(s3, cache_bytes=budget)

    learned = reader.frames(big)
    assert learned.count == 20_000 and reader.cached_bytes == learned.weight
    for path in small:
        reader.frames(path)
        assert reader.cached_bytes <= budget
    # The big layout was the least recently used: dropped; the small ones all fit.
    assert reader.cached_bytes == 40 * reader.frames(small[-1]).weight


def test_a_layout_over_the_whole_budget_is_served_but_not_kept(
    s3: Any, put_object: Callable[[str, bytes], str]
) -> None:
    path = put_object("frames-cache/huge.dcm", frames_file(5_000))
    reader = FrameReader(s3, cache_bytes=BYTES_PER_PART * 1_000)
    frames = reader.frames(path)
    assert frames.count == 5_000 and reader.read(path, frames, 5_000) == b"\x00\x00"
    assert reader.cached_bytes == 0
