"""Rendered frames (PS3.18 8.3.5.1): one frame decoded, windowed and written as JPEG or PNG.

A frame is decoded (``managers.pixels.decode``: one ranged GET, pydicom's pixel backends),
given the header's modality LUT (rescale slope and intercept), windowed (the request's
``window``, else the header's first WindowCenter/WindowWidth, else the pixel range), inverted
for MONOCHROME1, and written by Pillow. Colour images are converted to RGB (YBR by pydicom,
PALETTE COLOR through its lookup tables).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.pixels import apply_color_lut, apply_modality_lut

from managers.pixels.decode import Decoder, decode
from managers.pixels.frames import FrameReader

# Pixels a written image may have (the viewport asked for is bounded to it too).
MAX_OUTPUT_SIDE = 8192
THUMBNAIL_SIDE = 128
DEFAULT_QUALITY = 90


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
    pixels = Decoder(reader, s3_path, frames).dataset(number)
    return _encode(_display(pixels, decode(pixels), how.window), how)


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
