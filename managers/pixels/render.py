"""Rendered frames (PS3.18 8.3.5.1): one frame decoded, windowed and written as JPEG or PNG.

A frame is read as every frame is (one ranged GET, ``FrameReader``), decoded by pydicom's
pixel backends (pylibjpeg's libjpeg, openjpeg and rle plugins, or numpy for native data),
given the header's modality LUT (rescale slope and intercept), windowed (the request's
``window``, else the header's first WindowCenter/WindowWidth, else the pixel range), inverted
for MONOCHROME1, and written by Pillow. Colour images are converted to RGB (YBR by pydicom,
PALETTE COLOR through its lookup tables).

What a file built to hurt can cost is bounded before anything is decoded: the header's
image size (``MAX_PIXELS``), and, for JPEG and JPEG 2000, the size the codestream itself
declares, which must be the header's.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from typing import IO, Any, cast

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.pixels import apply_color_lut, apply_modality_lut
from pydicom.uid import UID

from errors import NotAcceptable, NotDicom
from managers.dicom.header import read_header
from managers.dicom.ranged import FIRST_REQUEST, RangedReader
from managers.pixels.frames import FrameReader, Frames, VersionFetch
from managers.pixels.layout import EXPLICIT_VR_LITTLE_ENDIAN
from metadata import parse_s3_path

# Pixels one decode may produce (samples of all channels): a 7,000 x 7,000 RGB image.
MAX_PIXELS = 150_000_000
# Pixels a written image may have (the viewport asked for is bounded to it too).
MAX_OUTPUT_SIDE = 8192
THUMBNAIL_SIDE = 128
DEFAULT_QUALITY = 90

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


@dataclass(frozen=True)
class Rendering:
    """How to render: output size bound, window, format and quality (PS3.18 8.3.5.1)."""

    media_type: str = "image/jpeg"
    viewport: tuple[int, int] | None = None
    window: tuple[float, float, str] | None = None
    quality: int = DEFAULT_QUALITY


def render(reader: FrameReader, s3_path: str, etag: str | None, number: int, how: Rendering) -> bytes:
    """Return frame ``number`` of the file at ``s3_path`` rendered as ``how`` asks.

    Raises
    ------
    NotAcceptable
        When no decoder reads the frame's transfer syntax.
    NotDicom
        When the frame or the image attributes are malformed or over the bounds.
    """
    frames = reader.frames(s3_path, etag)
    frame = reader.read(s3_path, frames, number)
    pixels = _pixel_dataset(reader, s3_path, frames, frame)
    return _encode(_display(pixels, _decode(pixels), how.window), how)


def _pixel_dataset(reader: FrameReader, s3_path: str, frames: Frames, frame: bytes) -> Dataset:
    """Return a one-frame dataset: the header's image attributes and this frame's pixel data."""
    bucket, key = parse_s3_path(s3_path)
    with RangedReader(VersionFetch(reader.client, bucket, key, frames.etag), FIRST_REQUEST) as stream:
        header = read_header(cast(IO[bytes], stream))
        pixels = Dataset()
        for keyword in _PIXEL_ATTRIBUTES:
            if keyword in header:
                pixels[keyword] = header[keyword]  # deferred values (palettes) read while open
    pixels.NumberOfFrames = 1
    pixels.file_meta = FileMetaDataset()
    layout = frames.layout
    # A native frame comes back little endian whatever the file's order.
    pixels.file_meta.TransferSyntaxUID = UID(
        layout.transfer_syntax if layout.encapsulated else EXPLICIT_VR_LITTLE_ENDIAN
    )
    _check_size(pixels, frame if layout.encapsulated else None)
    pixels.PixelData = encapsulate([frame]) if layout.encapsulated else frame
    return pixels


def _check_size(pixels: Dataset, codestream: bytes | None) -> None:
    rows, columns = int(pixels.get("Rows", 0)), int(pixels.get("Columns", 0))
    samples = int(pixels.get("SamplesPerPixel", 1) or 1)
    if not rows or not columns or rows * columns * samples > MAX_PIXELS:
        raise NotDicom(f"the image is larger than {MAX_PIXELS} samples, or has no size")
    declared = _codestream_size(codestream) if codestream is not None else None
    if declared is not None and declared != (columns, rows):
        raise NotDicom("the frame's codestream declares another size than the header")


def _codestream_size(data: bytes) -> tuple[int, int] | None:
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


def _decode(pixels: Dataset) -> Any:
    """Return the frame as a numpy array (RGB for colour), or raise a 4xx error."""
    try:
        return pixels.pixel_array
    except NotImplementedError as exc:
        raise NotAcceptable("no decoder here reads this frame's transfer syntax") from exc
    except Exception as exc:
        raise NotDicom(f"the frame cannot be decoded ({type(exc).__name__})") from exc


def _display(pixels: Dataset, array: Any, window: tuple[float, float, str] | None) -> Any:
    """Return 8-bit pixels to show: modality LUT, window, inversion; colour as RGB."""
    photometric = str(pixels.get("PhotometricInterpretation", "")).strip()
    if photometric == "PALETTE COLOR":
        array = apply_color_lut(array, pixels)
    if array.ndim == 3:  # colour: scaled to 8 bits per sample
        top = float(2 ** int(pixels.get("BitsStored", 8)) - 1) or 255.0
        return np.clip(array.astype(np.float64) * (255.0 / top), 0, 255).astype(np.uint8)
    values = apply_modality_lut(array, pixels).astype(np.float64)
    center, width, function = window or _header_window(pixels, values)
    shown = _window(values, center, width, function)
    if photometric == "MONOCHROME1":
        shown = 255.0 - shown
    return shown.astype(np.uint8)


def _header_window(pixels: Dataset, values: Any) -> tuple[float, float, str]:
    """The header's first window, else one spanning the pixel range."""
    center, width = pixels.get("WindowCenter"), pixels.get("WindowWidth")
    function = str(pixels.get("VOILUTFunction", "LINEAR") or "LINEAR").strip().upper()
    try:
        first = [float(center[0] if _multi(center) else center), float(width[0] if _multi(width) else width)]
        if first[1] > 0:
            return first[0], first[1], function
    except (TypeError, ValueError, IndexError):
        pass
    low, high = float(values.min()), float(values.max())
    return (low + high) / 2, max(high - low, 1.0), "LINEAR"


def _multi(value: Any) -> bool:
    return isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue"


def _window(values: Any, center: float, width: float, function: str) -> Any:
    """Apply a VOI window (PS3.3 C.11.2.1.2): LINEAR, LINEAR_EXACT or SIGMOID, to 0..255."""
    if function == "SIGMOID":
        return 255.0 / (1.0 + np.exp(-4.0 * (values - center) / max(width, 1e-6)))
    if function == "LINEAR_EXACT":
        scaled = (values - center) / max(width, 1e-6) + 0.5
    else:
        scaled = (values - (center - 0.5)) / max(width - 1.0, 1e-6) + 0.5
    return np.clip(scaled, 0.0, 1.0) * 255.0


def _encode(shown: Any, how: Rendering) -> bytes:
    image = Image.fromarray(shown)
    if how.viewport is not None:
        image.thumbnail(how.viewport)  # fits the viewport, keeping the aspect ratio
    output = io.BytesIO()
    if how.media_type == "image/png":
        image.save(output, format="PNG")
    else:
        image.convert("RGB" if image.mode not in ("L", "RGB") else image.mode).save(
            output, format="JPEG", quality=how.quality
        )
    return output.getvalue()
