"""Bulk data (PS3.18 F.2.6, 10.4): the large values WADO-RS metadata points at with a
BulkDataURI, found in the header by their path and read by range where they lie.

A path names a value as the JSON model nests it: tags and item indexes alternating,
``00880200/0/7FE00010`` (``json_model.path_text``). The header is parsed as for every read
(bounded, values over ``DEFER_SIZE`` left unread), so locating a value costs the header's
GETs, and its bytes are then read in chunks of ``CHUNK`` by ranged GETs of that version.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from errors import InvalidArgument, NotAcceptable, NotDicom, NotFound
from managers.dicom.header import MAX_SEQUENCE_DEPTH

PIXEL_DATA = 0x7FE00010
DEFLATED = "1.2.840.10008.1.2.1.99"
# Bytes one ranged GET of a bulk value reads, and what the API holds of it at once.
CHUNK = 1024 * 1024
_TAG = re.compile(r"[0-9A-Fa-f]{8}")
_INDEX = re.compile(r"[0-9]{1,6}")


@dataclass(frozen=True)
class BulkValue:
    """Where a bulk value lies: ``length`` bytes at ``offset`` of the object, or ``inline``
    when the header parse already holds it (a value under ``DEFER_SIZE``)."""

    vr: str
    offset: int
    length: int
    inline: bytes | None = None


@dataclass(frozen=True)
class Bulk:
    """A located bulk value: its VR, and its bytes, read as they are iterated."""

    vr: str
    chunks: Iterator[bytes]


def parse_path(text: str) -> tuple[int, ...]:
    """Return the tags and indexes of a bulkdata path, else raise ``InvalidArgument``."""
    parts = text.strip("/").split("/")
    if len(parts) % 2 == 0 or len(parts) > 2 * MAX_SEQUENCE_DEPTH + 1:
        raise InvalidArgument("a bulk data path is a tag, or tags and item indexes alternating")
    path: list[int] = []
    for n, part in enumerate(parts):
        pattern = _TAG if n % 2 == 0 else _INDEX
        if not pattern.fullmatch(part):
            raise InvalidArgument("a bulk data path is 8-hex tags and item numbers from 0, e.g. 00880200/0/7FE00010")
        path.append(int(part, 16) if n % 2 == 0 else int(part))
    return tuple(path)


def locate(dataset: Dataset, path: tuple[int, ...]) -> BulkValue:
    """Return where the value at ``path`` lies in the object whose header is ``dataset``.

    Raises
    ------
    NotFound
        When the header has no element or item there.
    NotAcceptable
        For a deflated file, whose values cannot be read by range.
    """
    meta = getattr(dataset, "file_meta", None)
    if meta is not None and str(meta.get("TransferSyntaxUID", "")) == DEFLATED:
        raise NotAcceptable("bulk data cannot be cut out of a deflated dataset")
    current = dataset
    for tag, index in zip(path[:-1:2], path[1::2], strict=True):
        sequence = current.get(tag)
        if sequence is None or not isinstance(sequence.value, Sequence) or index >= len(sequence.value):
            raise NotFound("the header has no such item")
        current = sequence.value[index]
    raw: Any = current.get_item(path[-1], keep_deferred=True)
    if raw is None or getattr(raw, "VR", None) == "SQ":
        raise NotFound("the header has no such bulk value")
    return _value_of(raw)


def _value_of(raw: Any) -> BulkValue:
    vr = str(getattr(raw, "VR", None) or "UN")
    value = raw.value
    if isinstance(value, (bytes, bytearray)):
        return BulkValue(vr, 0, len(value), bytes(value))
    if value is None and getattr(raw, "value_tell", None) is not None and raw.length not in (None, 0xFFFFFFFF):
        return BulkValue(vr, int(raw.value_tell), int(raw.length))  # deferred: read by range
    if value is None:
        return BulkValue(vr, 0, 0, b"")
    raise NotFound("the header has no such bulk value")  # converted already: not bulk data


def pixel_data_vr(head: bytes, little_endian: bool, implicit_vr: bool) -> str | None:
    """Return Pixel Data's VR when ``head``, the bytes where the header parse stopped, is its
    element (``OB`` or ``OW``; implicit VR: ``OW``, PS3.5 A.1); ``None`` otherwise."""
    if len(head) < 8:
        return None
    group, element = struct.unpack("<HH" if little_endian else ">HH", head[:4])
    if (group << 16 | element) != PIXEL_DATA:
        return None
    if implicit_vr:
        return "OW"
    vr = head[4:6].decode("ascii", "replace")
    return vr if vr in ("OB", "OW") else "OB"


def chunks(fetch: Any, value: BulkValue, size: int) -> Iterator[bytes]:
    """Yield a value's bytes, ``CHUNK`` at a time, through ``fetch(start, length)``.

    Raises
    ------
    NotDicom
        When the object ends inside the value.
    """
    if value.inline is not None:
        yield value.inline
        return
    if value.offset + value.length > size:
        raise NotDicom("the object ends inside the value")
    for start in range(value.offset, value.offset + value.length, CHUNK):
        data, _ = fetch(start, min(CHUNK, value.offset + value.length - start))
        yield data
