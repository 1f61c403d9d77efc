"""Hostile DICOM files, generated (never committed): each built to hurt the header reader.

Most cases hold ``MARKER`` where a careless reader would echo it: in a value, a tag's
bytes or the garbage itself. A test runs each through every entry point and checks the code,
the time, the memory and that the marker reaches no log.
"""

from __future__ import annotations

import random
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from pydicom.dataset import FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import UID, CTImageStorage, DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian

MARKER = "PHI-SECRET-7Q2Z"
_MB = 1024 * 1024
_LONG_VRS = {"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "UC", "UN", "UR", "UT"}


@dataclass(frozen=True)
class Hostile:
    """A hostile file and what each reading answers: a code, or ``"OK"``."""

    id: str
    build: Callable[[], bytes]
    fields: str = "NOT_DICOM"  # /dicom-metadata, the batch, read_header + fields_of
    json: str = "NOT_DICOM"  # dicomJson


def element(group: int, elem: int, vr: str, value: bytes, length: int | None = None) -> bytes:
    """One Explicit VR Little Endian element; ``length`` overrides the declared length."""
    declared = len(value) if length is None else length
    if vr in _LONG_VRS or len(vr) != 2 or not vr.isalpha():
        return struct.pack("<HH2sHL", group, elem, vr.encode("latin-1"), 0, declared) + value
    return struct.pack("<HH2sH", group, elem, vr.encode("latin-1"), declared) + value


def implicit(group: int, elem: int, value: bytes, length: int | None = None) -> bytes:
    """One Implicit VR Little Endian element (tag, 32-bit length, value)."""
    return struct.pack("<HHL", group, elem, len(value) if length is None else length) + value


def file_meta(syntax: UID = ExplicitVRLittleEndian) -> bytes:
    """Preamble, ``DICM`` and a file meta (PS3.10 7.1) naming ``syntax``."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = CTImageStorage, UID("1.2.3.4")
    meta.TransferSyntaxUID = syntax
    fp = DicomBytesIO()
    fp.is_little_endian, fp.is_implicit_VR = True, False
    write_file_meta_info(fp, meta, enforce_standard=True)
    return b"\x00" * 128 + b"DICM" + fp.getvalue()


def part10(body: bytes, syntax: UID = ExplicitVRLittleEndian) -> bytes:
    """A file meta naming ``syntax``, then ``body`` as is (elements, or raw deflate)."""
    return file_meta(syntax) + body


def deflated(elements: bytes) -> bytes:
    """``elements`` deflated as PS3.5 A.5 asks: raw deflate, no zlib header."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(elements) + compressor.flush()


def _deflate_bomb(size: int) -> bytes:
    """A private OB of ``size`` zeros before PatientID, all deflated: tiny compressed, huge inflated."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    out = [
        compressor.compress(element(0x0009, 0x0010, "LO", b"ACME") + struct.pack("<HH2sHL", 9, 0x1010, b"OB", 0, size))
    ]
    chunk = bytes(_MB)
    for _ in range(size // _MB):
        out.append(compressor.compress(chunk))
    out.append(compressor.compress(element(0x0010, 0x0020, "LO", MARKER.encode())))
    out.append(compressor.flush())
    return b"".join(out)


def _marker(length: int) -> bytes:
    return (MARKER.encode() * (length // len(MARKER) + 1))[:length]


def _nested(depth: int, defined: bool) -> bytes:
    """(0008,1032) holding ``depth`` sequences, each in the one item of the one above."""
    inner = element(0x0008, 0x0104, "LO", MARKER.encode())
    for _ in range(depth):
        if defined:
            item = struct.pack("<HHL", 0xFFFE, 0xE000, len(inner)) + inner
            inner = element(0x0008, 0x1032, "SQ", item)
        else:
            item = struct.pack("<HHL", 0xFFFE, 0xE000, 0xFFFFFFFF) + inner + struct.pack("<HHL", 0xFFFE, 0xE00D, 0)
            inner = element(0x0008, 0x1032, "SQ", item + struct.pack("<HHL", 0xFFFE, 0xE0DD, 0), 0xFFFFFFFF)
    return inner


def _garbage(size: int, seed: int) -> bytes:
    rng = random.Random(seed)
    return MARKER.encode() + rng.randbytes(size)


def _many_elements(count: int) -> bytes:
    """``count`` empty private elements: a header of hardly any bytes per element."""
    out = bytearray()
    group = 0x0009
    for index in range(count):
        out += struct.pack("<HH2sH", group + 2 * (index // 0xFE00), 0x0100 + index % 0xFE00, b"LO", 0)
    return bytes(out) + element(0x0010, 0x0020, "LO", MARKER.encode())


PATIENT_ID = element(0x0010, 0x0020, "LO", MARKER.encode())

CASES: list[Hostile] = [
    # 1. Patient values of a binary VR.
    Hostile("patient-id-fd", lambda: part10(element(0x0010, 0x0020, "FD", _marker(15)))),
    Hostile("patient-id-ob", lambda: part10(element(0x0010, 0x0020, "OB", _marker(16))), json="OK"),
    Hostile(
        "patient-name-ul",
        lambda: part10(element(0x0010, 0x0010, "UL", _marker(15))),
        fields="OK",
    ),
    Hostile("patient-id-too-long", lambda: part10(element(0x0010, 0x0020, "LO", _marker(5000))), json="OK"),
    # 3. Deflate: a bomb before the fields, garbage, a bomb in the pixel data (harmless).
    Hostile("deflate-bomb", lambda: part10(_deflate_bomb(64 * _MB), DeflatedExplicitVRLittleEndian)),
    Hostile("deflate-garbage", lambda: part10(_garbage(4096, 3), DeflatedExplicitVRLittleEndian)),
    Hostile(
        "deflate-bomb-in-pixels",
        lambda: part10(
            deflated(PATIENT_ID + struct.pack("<HH2sHL", 0x7FE0, 0x0010, b"OB", 0, 64 * _MB))
            + deflated(bytes(64 * _MB)),
            DeflatedExplicitVRLittleEndian,
        ),
        fields="OK",
        json="OK",
    ),
    # 4. A declared length past the end, and a value really that long.
    Hostile(
        "ut-length-past-end",
        lambda: part10(element(0x0008, 0x1030, "UT", b"", 0xFFFFFFF0) + bytes(20 * _MB)),
    ),
    Hostile("study-description-ut-5mb", lambda: part10(element(0x0008, 0x1030, "UT", _marker(5 * _MB))), json="OK"),
    # 8. A large private text: left out of dicomJson, no harm to the fields.
    Hostile(
        "private-ut-6mb",
        lambda: part10(element(0x0009, 0x0010, "LO", b"ACME") + element(0x0009, 0x1010, "UT", _marker(6 * _MB))),
        fields="OK",
        json="OK",
    ),
    # 5. Malformed structure.
    Hostile(
        "sequence-without-delimiters",
        lambda: part10(
            element(0x0008, 0x1032, "SQ", b"", 0xFFFFFFFF)
            + struct.pack("<HHL", 0xFFFE, 0xE000, 0xFFFFFFFF)
            + element(0x0008, 0x0104, "LO", MARKER.encode())
        ),
    ),
    Hostile("nesting-500-undefined", lambda: part10(_nested(500, defined=False) + PATIENT_ID)),
    Hostile("nesting-500-defined", lambda: part10(_nested(500, defined=True) + PATIENT_ID), fields="OK"),
    Hostile("nesting-100-undefined", lambda: part10(_nested(100, defined=False) + PATIENT_ID)),
    Hostile("nesting-100-defined", lambda: part10(_nested(100, defined=True) + PATIENT_ID), fields="OK"),
    Hostile("unknown-vr-zz-private", lambda: part10(element(0x0009, 0x1010, "ZZ", MARKER.encode()) + PATIENT_ID)),
    Hostile("unknown-vr-zz", lambda: part10(element(0x0008, 0x1030, "ZZ", MARKER.encode()) + PATIENT_ID)),
    Hostile("huge-un-first", lambda: part10(element(0x0008, 0x0050, "UN", MARKER.encode(), 0x7FFFFFF0))),
    Hostile("undefined-un-garbage", lambda: part10(element(0x0009, 0x1010, "UN", _garbage(2000, 5), 0xFFFFFFFF))),
    Hostile(
        "meta-huge-length", lambda: b"\x00" * 128 + b"DICM" + element(0x0002, 0x0001, "OB", b"\x00\x01", 0x7FFFFFF0)
    ),
    Hostile("many-elements", lambda: part10(_many_elements(200_000))),
    # A preamble and DICM, then nothing or garbage; a valid meta then nothing or garbage.
    Hostile("dicm-then-nothing", lambda: b"\x00" * 128 + b"DICM"),
    Hostile("dicm-then-garbage", lambda: b"\x00" * 128 + b"DICM" + _garbage(4096, 1)),
    Hostile("meta-then-nothing", lambda: file_meta()),
    Hostile("meta-then-garbage", lambda: file_meta() + _garbage(4096, 2)),
    Hostile("bare-implicit-huge-length", lambda: implicit(0x0008, 0x0005, b"", 0xFFFFFFF0) + _marker(64)),
    Hostile("text", lambda: f"Patient {MARKER}: not an image\n".encode() * 20),
]
