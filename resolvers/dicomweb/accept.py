"""WADO-RS content negotiation (PS3.18 8.7): which representation a request's Accept allows.

An Accept value is a list of media ranges, each with parameters; WADO-RS asks for
``multipart/related`` with a ``type`` (``application/dicom`` for instances,
``application/octet-stream`` for frames) and optionally a ``transfer-syntax``: ``*`` takes what
is stored, a UID asks for that syntax, none means the media type's default (Explicit VR
Little Endian for frames, PS3.18 8.7.3.5.2). OHIF sends the parameters quoted; both forms are
read. Frames are offered in their stored syntax, and in Explicit VR Little Endian: native
pixel data as stored, compressed frames decoded where a decoder here reads them. Files are
served as stored only.
"""

from __future__ import annotations

from dataclasses import dataclass

from errors import NotAcceptable

EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
# An Accept header of more ranges than this is not a browser's or a viewer's: refused whole.
MAX_RANGES = 32


@dataclass(frozen=True)
class MediaRange:
    """One media range of an Accept header: ``multipart/related`` with its ``type`` and syntax."""

    media_type: str
    part_type: str | None = None
    transfer_syntax: str | None = None


def media_ranges(accept: str | None) -> list[MediaRange]:
    """Return the media ranges of an Accept header, in the order given (none: ``*/*``)."""
    if not accept or not accept.strip():
        return [MediaRange("*/*")]
    ranges = [_media_range(part) for part in _split(accept, ",") if part.strip()]
    if len(ranges) > MAX_RANGES:
        raise NotAcceptable(f"an Accept header of more than {MAX_RANGES} media ranges is not served")
    return ranges or [MediaRange("*/*")]


def _split(text: str, separator: str) -> list[str]:
    """Split at ``separator`` outside double quotes (a quoted type may hold none, but be safe)."""
    parts, current, quoted = [], "", False
    for character in text:
        if character == '"':
            quoted = not quoted
        if character == separator and not quoted:
            parts.append(current)
            current = ""
        else:
            current += character
    parts.append(current)
    return parts


def _media_range(text: str) -> MediaRange:
    media_type, *parameters = (part.strip() for part in _split(text, ";"))
    values: dict[str, str] = {}
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        values[name.strip().lower()] = value.strip().strip('"').strip()
    return MediaRange(media_type.lower(), values.get("type", "").lower() or None, values.get("transfer-syntax") or None)


def _takes(accepted: MediaRange, part_type: str) -> bool:
    """Tell whether a range accepts ``multipart/related`` parts of ``part_type``."""
    if accepted.media_type in ("*/*", "multipart/*"):
        return True
    if accepted.media_type != "multipart/related":
        return False
    return accepted.part_type in (None, part_type, "*/*", part_type.split("/")[0] + "/*")


def instance_syntax(accept: str | None) -> str | None:
    """Return the syntax instances are asked in (``None``: as stored), else raise ``NotAcceptable``.

    A range without a transfer syntax takes the files as stored: a viewer asking for
    ``application/dicom`` wants the files, and this service does not transcode.
    """
    for accepted in media_ranges(accept):
        if _takes(accepted, "application/dicom"):
            syntax = accepted.transfer_syntax
            return None if syntax in (None, "*") else syntax
    raise NotAcceptable('instances are served as multipart/related; type="application/dicom"')


def frame_syntax(accept: str | None, stored: str, native: bool, decodable: bool) -> tuple[str, bool]:
    """Return the syntax to label frames with and whether they must be decoded to it.

    Native frames are served as Explicit VR Little Endian (the stored bytes, big endian
    swapped). Encapsulated ones are served as stored for ``*`` or their own syntax, and
    decoded for Explicit VR Little Endian (the media type's default) when ``decodable``;
    the first range that can be served wins.

    Raises
    ------
    NotAcceptable
        When no range of ``accept`` can be served.
    """
    for accepted in media_ranges(accept):
        if not _takes(accepted, "application/octet-stream"):
            continue
        wanted = accepted.transfer_syntax or EXPLICIT_VR_LITTLE_ENDIAN
        if native and wanted in ("*", EXPLICIT_VR_LITTLE_ENDIAN):
            return EXPLICIT_VR_LITTLE_ENDIAN, False
        if not native and wanted in ("*", stored):
            return stored, False
        if not native and decodable and wanted == EXPLICIT_VR_LITTLE_ENDIAN:
            return EXPLICIT_VR_LITTLE_ENDIAN, True
    raise NotAcceptable(
        "these frames are served as stored or, where they can be decoded here, as Explicit VR Little Endian: ask for "
        'multipart/related; type="application/octet-stream"; transfer-syntax=* (or the file\'s own syntax)'
    )


def bulk_syntax(accept: str | None, served: str) -> None:
    """Check that ``accept`` takes bulk data parts (``application/octet-stream``) in the syntax
    they are served in (``*`` or none: as served), else raise ``NotAcceptable``."""
    for accepted in media_ranges(accept):
        if _takes(accepted, "application/octet-stream") and accepted.transfer_syntax in (None, "*", served):
            return
    raise NotAcceptable('bulk data is served as multipart/related; type="application/octet-stream", as stored')
