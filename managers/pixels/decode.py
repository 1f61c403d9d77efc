"""Frames decoded: a compressed frame turned into pixels, for rendering and for clients that
ask for frames uncompressed (WADO-RS's default, Explicit VR Little Endian).

A frame is read as every frame is (one ranged GET, ``FrameReader``) and decoded by pydicom's
pixel backends: pylibjpeg's libjpeg (JPEG, JPEG-LS), openjpeg (JPEG 2000) and rle plugins, or
numpy for native data. The header's image attributes are read once per ``Decoder``, so the
frames of one request share one header read.

What a file built to hurt can cost is bounded before anything is decoded: the header's
image size (``MAX_PIXELS``), and, for JPEG and JPEG 2000, the size the codestream itself
declares, which must be the header's.
"""

from __future__ import annotations

import struct
from typing import IO, Any, cast

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.pixels import get_decoder
from pydicom.uid import UID

from errors import NotAcceptable, NotDicom
from managers.aws.objects import VersionedFetch
from managers.dicom.header import read_header
from managers.dicom.ranged import FIRST_REQUEST, RangedReader
from managers.pixels.frames import FrameReader, Frames
from managers.pixels.layout import EXPLICIT_VR_LITTLE_ENDIAN, NATIVE_SYNTAXES
from metadata import parse_s3_path

# Samples one decode may produce (of all channels): a 7,000 x 7,000 RGB image.
MAX_PIXELS = 150_000_000

# The header attributes a frame needs to be decoded and shown (PS3.3 C.7.6.3, C.11).
_PIXEL_ATTRIBUTES = (
    "SamplesPerPixel",
    "PhotometricInterpretation",
    "PlanarConfiguration",
    "Rows",
    "Columns",
    "BitsAllocated",
    "BitsStored",
    "HighBit",
    "PixelRepresentation",
    "RescaleSlope",
    "RescaleIntercept",
    "RescaleType",
    "WindowCenter",
    "WindowWidth",
    "VOILUTFunction",
    "RedPaletteColorLookupTableDescriptor",
    "GreenPaletteColorLookupTableDescriptor",
    "BluePaletteColorLookupTableDescriptor",
    "RedPaletteColorLookupTableData",
    "GreenPaletteColorLookupTableData",
    "BluePaletteColorLookupTableData",
    "SegmentedRedPaletteColorLookupTableData",
    "SegmentedGreenPaletteColorLookupTableData",
    "SegmentedBluePaletteColorLookupTableData",
)


def can_decode(transfer_syntax: str) -> bool:
    """Tell whether a decoder here reads frames of ``transfer_syntax``."""
    if transfer_syntax in NATIVE_SYNTAXES:
        return True
    try:
        return bool(get_decoder(UID(transfer_syntax)).is_available)
    except (NotImplementedError, ValueError):
        return False


class Decoder:
    """Decodes the frames of one file version, reading its image attributes once."""

    def __init__(self, reader: FrameReader, s3_path: str, frames: Frames) -> None:
        self.reader, self.s3_path, self.frames = reader, s3_path, frames
        self.attributes = _image_attributes(reader, s3_path, frames.etag)

    def dataset(self, number: int) -> Dataset:
        """Return a one-frame dataset of frame ``number``: the image attributes and its pixel data.

        Raises
        ------
        NotDicom
            When the image or the frame's codestream is over the bounds, or malformed.
        """
        frame = self.reader.read(self.s3_path, self.frames, number)
        layout = self.frames.layout
        pixels = Dataset()
        pixels.update(self.attributes)
        pixels.NumberOfFrames = 1
        pixels.file_meta = FileMetaDataset()
        # A native frame comes back little endian whatever the file's order.
        pixels.file_meta.TransferSyntaxUID = UID(
            layout.transfer_syntax if layout.encapsulated else EXPLICIT_VR_LITTLE_ENDIAN
        )
        _check_size(pixels, frame if layout.encapsulated else None)
        pixels.PixelData = encapsulate([frame]) if layout.encapsulated else frame
        return pixels

    def native(self, number: int) -> bytes:
        """Return frame ``number`` decoded, as Explicit VR Little Endian pixel data would hold it.

        Colour frames come out RGB, pixel by pixel (PlanarConfiguration 0), as the decoders
        give them; samples are little endian, of the width BitsAllocated gives.

        Raises
        ------
        NotAcceptable
            When no decoder here reads the frame's transfer syntax.
        NotDicom
            When the frame cannot be decoded or is over the bounds.
        """
        array = decode(self.dataset(number))
        return bytes(array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes())


def _image_attributes(reader: FrameReader, s3_path: str, etag: str) -> Dataset:
    """Return the header's image attributes (one bounded header read, of that version)."""
    bucket, key = parse_s3_path(s3_path)
    with RangedReader(VersionedFetch(reader.client, bucket, key, etag), FIRST_REQUEST) as stream:
        header = read_header(cast(IO[bytes], stream))
        attributes = Dataset()
        for keyword in _PIXEL_ATTRIBUTES:
            if keyword in header:
                attributes[keyword] = header[keyword]  # deferred values (palettes) read while open
    return attributes


def _check_size(pixels: Dataset, codestream: bytes | None) -> None:
    rows, columns = int(pixels.get("Rows", 0)), int(pixels.get("Columns", 0))
    samples = int(pixels.get("SamplesPerPixel", 1) or 1)
    if not rows or not columns or rows * columns * samples > MAX_PIXELS:
        raise NotDicom(f"the image is larger than {MAX_PIXELS} samples, or has no size")
    declared = codestream_size(codestream) if codestream is not None else None
    if declared is not None and declared != (columns, rows):
        raise NotDicom("the frame's codestream declares another size than the header")


def codestream_size(data: bytes) -> tuple[int, int] | None:
    """Return (width, height) a JPEG 2000 or JPEG codestream declares, ``None`` for other data."""
    if data[:4] == b"\xff\x4f\xff\x51" and len(data) >= 24:  # J2K: SOC then SIZ (15444-1 A.5.1)
        xsiz, ysiz, xosiz, yosiz = struct.unpack(">4L", data[8:24])
        return xsiz - xosiz, ysiz - yosiz
    if data[:2] == b"\xff\xd8":  # JPEG: the first SOFn segment (10918-1 B.2.2)
        offset = 2
        while offset + 9 <= len(data) and data[offset] == 0xFF:
            marker, length = data[offset + 1], struct.unpack(">H", data[offset + 2 : offset + 4])[0]
            if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF, 0xF7):
                height, width = struct.unpack(">HH", data[offset + 5 : offset + 9])
                return width, height
            offset += 2 + length
    return None


def decode(pixels: Dataset) -> Any:
    """Return a one-frame dataset's pixels as a numpy array (RGB for colour), or raise a 4xx error."""
    try:
        return pixels.pixel_array
    except NotImplementedError as exc:
        raise NotAcceptable("no decoder here reads this frame's transfer syntax") from exc
    except Exception as exc:
        raise NotDicom(f"the frame cannot be decoded ({type(exc).__name__})") from exc
