"""WADO-RS retrieve of files, frames, rendered frames and thumbnails (PS3.18 10.4, 8.3.5): the
stored Part 10 files of a study, a series or an instance, and an instance's frames, read
from the bucket where they lie.

Files are streamed from S3 a chunk at a time; frames are read one ranged GET each, through
the file's layout (``managers.pixels``). What a request accepts is read by
``resolvers.dicomweb.accept``; what cannot be served without transcoding is ``406``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

from errors import InvalidArgument, NotAcceptable, NotFound
from managers.bundle import Managers
from managers.dicom.bulk import PIXEL_DATA, parse_path
from managers.pixels.decode import Decoder, can_decode
from managers.pixels.render import DEFAULT_QUALITY, MAX_OUTPUT_SIDE, THUMBNAIL_SIDE, Rendering, render

__all__ = [
    "Part",
    "Rendering",
    "bulk_data",
    "frame_numbers",
    "instance_files",
    "instance_frames",
    "rendered_frame",
    "rendering",
    "thumbnail",
]
from managers.store.study_records import InstanceRecord, SeriesRecord
from resolvers.arguments import checked_uid, whole_number
from resolvers.dicomweb.accept import (
    EXPLICIT_VR_LITTLE_ENDIAN,
    bulk_syntax,
    frame_syntax,
    instance_syntax,
    media_ranges,
)
from resolvers.dicomweb.retrieve import metadata_instances

# Frame numbers one request may list: a whole CT series' worth, not a million.
MAX_FRAME_LIST = 1000
INSTANCE_MEDIA_TYPE = "application/dicom"
FRAME_MEDIA_TYPE = "application/octet-stream"


@dataclass(frozen=True)
class Part:
    """One part of a multipart answer: its Content-Type and its bytes, produced lazily."""

    content_type: str
    chunks: Iterator[bytes]


def frame_numbers(frame_list: str) -> list[int]:
    """Return the 1-based frame numbers of a ``frames/{list}`` path segment, in the order given.

    Raises
    ------
    InvalidArgument
        For an empty item, a word, 0, or more than ``MAX_FRAME_LIST`` numbers.
    """
    items = frame_list.split(",")
    if len(items) > MAX_FRAME_LIST:
        raise InvalidArgument(f"at most {MAX_FRAME_LIST} frames may be asked for at once")
    numbers = [whole_number(item.strip(), "a frame number") for item in items]
    if min(numbers) < 1:
        raise InvalidArgument("frame numbers start at 1")
    return numbers


def instance_frames(
    managers: Managers, study: str, series: str, sop: str, frame_list: str, accept: str | None
) -> list[Part]:
    """Return the parts answering ``…/instances/{sop}/frames/{frame_list}``, one per frame asked.

    Raises
    ------
    InvalidArgument
        For a malformed list or a frame number past the last frame.
    NotFound
        For unknown UIDs, an instance not of that series, or an instance without pixel data.
    NotAcceptable
        When no representation ``accept`` allows can be served.
    """
    numbers = frame_numbers(frame_list)
    (instance,) = metadata_instances(managers, study, series, sop)
    frames = managers.frames.frames(instance.s3_path, instance.etag)
    if max(numbers) > frames.count:
        raise InvalidArgument(f"the instance has {frames.count} frame(s)")
    layout = frames.layout
    syntax, decoded = frame_syntax(
        accept, layout.transfer_syntax, native=not layout.encapsulated, decodable=can_decode(layout.transfer_syntax)
    )
    content_type = f"{FRAME_MEDIA_TYPE}; transfer-syntax={syntax}"
    decoder = Decoder(managers.frames, instance.s3_path, frames) if decoded else None

    def frame(number: int) -> Iterator[bytes]:
        if decoder is None:
            yield managers.frames.read(instance.s3_path, frames, number)
        else:
            yield decoder.native(number)

    return [Part(content_type, frame(number)) for number in numbers]


def instance_files(
    managers: Managers, study: str, series: str | None, sop: str | None, accept: str | None
) -> list[Part]:
    """Return the parts answering a WADO-RS retrieve of a study, a series or an instance.

    Raises
    ------
    NotFound
        For unknown UIDs (as WADO-RS metadata).
    NotAcceptable
        When a transfer syntax is asked for that a file is not stored in.
    InvalidArgument
        For more instances than one answer holds (as WADO-RS metadata).
    """
    syntax = instance_syntax(accept)
    instances = metadata_instances(managers, study, series, sop)
    if syntax is not None and any(managers.dicom.transfer_syntax(i.s3_path) != syntax for i in instances):
        raise NotAcceptable("the files are served as stored, and not all are stored in the syntax asked for")
    return [Part(_file_type(syntax), _file(managers, instance)) for instance in instances]


def _file_type(syntax: str | None) -> str:
    return INSTANCE_MEDIA_TYPE if syntax is None else f"{INSTANCE_MEDIA_TYPE}; transfer-syntax={syntax}"


def _file(managers: Managers, instance: InstanceRecord) -> Iterator[bytes]:
    """Yield one stored file's bytes; nothing when it is gone since it was indexed."""
    try:
        yield from managers.s3.stream(instance.s3_path)
    except NotFound:
        return


def bulk_data(managers: Managers, study: str, series: str, sop: str, path: str, accept: str | None) -> list[Part]:
    """Return the parts answering ``…/instances/{sop}/bulkdata/{path}``: a BulkDataURI of the
    instance's metadata (PS3.18 F.2.6).

    Pixel Data comes as the frames do: a native file's in one part (every frame, little
    endian), an encapsulated one's one part per frame as stored. Any other value is one part,
    the bytes as stored.

    Raises
    ------
    InvalidArgument
        For a malformed path.
    NotFound
        For unknown UIDs, or a header without that value.
    NotAcceptable
        When ``accept`` takes no ``application/octet-stream`` parts as served.
    """
    tags = parse_path(path)
    (instance,) = metadata_instances(managers, study, series, sop)
    if tags == (PIXEL_DATA,):
        return _pixel_data(managers, instance, accept)
    bulk_syntax(accept, "*")
    value = managers.dicom.bulk_value(instance.s3_path, tags)
    return [Part(FRAME_MEDIA_TYPE, value.chunks)]


def _pixel_data(managers: Managers, instance: InstanceRecord, accept: str | None) -> list[Part]:
    frames = managers.frames.frames(instance.s3_path, instance.etag)
    layout = frames.layout
    served = layout.transfer_syntax if layout.encapsulated else EXPLICIT_VR_LITTLE_ENDIAN
    bulk_syntax(accept, served)
    content_type = f"{FRAME_MEDIA_TYPE}; transfer-syntax={served}"
    if not layout.encapsulated:
        return [Part(content_type, managers.frames.native_pixel_data(instance.s3_path, frames))]

    def frame(number: int) -> Iterator[bytes]:
        yield managers.frames.read(instance.s3_path, frames, number)

    return [Part(content_type, frame(number)) for number in range(1, frames.count + 1)]


RENDERED_TYPES = ("image/jpeg", "image/png")


def rendering(accept: str | None, arguments: dict[str, str], thumbnail: bool = False) -> Rendering:
    """Return how a rendered or thumbnail request asks to be rendered (PS3.18 8.3.5.1).

    Raises
    ------
    NotAcceptable
        When ``accept`` allows neither JPEG nor PNG.
    InvalidArgument
        For an unknown parameter, or a malformed ``viewport``, ``window`` or ``quality``.
    """
    unknown = sorted(set(arguments) - {"viewport", "window", "quality"})
    if unknown:
        raise InvalidArgument(f"unknown parameters: {', '.join(unknown)}; allowed: quality, viewport, window")
    default = (THUMBNAIL_SIDE, THUMBNAIL_SIDE) if thumbnail else None
    return Rendering(
        media_type=_image_type(accept),
        viewport=_viewport(arguments["viewport"]) if "viewport" in arguments else default,
        window=_window(arguments["window"]) if "window" in arguments else None,
        quality=_quality(arguments.get("quality")),
    )


def _image_type(accept: str | None) -> str:
    for accepted in media_ranges(accept):
        if accepted.media_type in ("*/*", "image/*"):
            return "image/jpeg"
        if accepted.media_type in RENDERED_TYPES:
            return accepted.media_type
    raise NotAcceptable("rendered images are served as image/jpeg or image/png")


def _viewport(value: str) -> tuple[int, int]:
    sides = value.split(",")
    if len(sides) != 2:
        raise InvalidArgument("viewport must be width,height")
    width, height = (whole_number(side.strip(), "viewport") for side in sides)
    if not (1 <= width <= MAX_OUTPUT_SIDE and 1 <= height <= MAX_OUTPUT_SIDE):
        raise InvalidArgument(f"viewport sides must be between 1 and {MAX_OUTPUT_SIDE}")
    return width, height


WINDOW_FUNCTIONS = ("LINEAR", "LINEAR_EXACT", "SIGMOID")


def _window(value: str) -> tuple[float, float, str]:
    parts = [part.strip() for part in value.split(",")]
    if len(parts) not in (2, 3):
        raise InvalidArgument("window must be center,width or center,width,function")
    function = parts[2].upper() if len(parts) == 3 else "LINEAR"
    try:
        center, width = float(parts[0]), float(parts[1])
    except ValueError as exc:
        raise InvalidArgument("window center and width must be numbers") from exc
    if not (math.isfinite(center) and math.isfinite(width)) or width <= 0 or function not in WINDOW_FUNCTIONS:
        raise InvalidArgument(f"window width must be above 0, the function one of {', '.join(WINDOW_FUNCTIONS)}")
    return center, width, function


def _quality(value: str | None) -> int:
    quality = DEFAULT_QUALITY if value is None else whole_number(value, "quality")
    if not 1 <= quality <= 100:
        raise InvalidArgument("quality must be between 1 and 100")
    return quality


def rendered_frame(managers: Managers, study: str, series: str, sop: str, frame: str | None, how: Rendering) -> bytes:
    """Return an instance's frame (the first when ``frame`` is ``None``) rendered as ``how`` asks.

    Raises
    ------
    InvalidArgument
        For a frame number that is malformed or past the last.
    NotFound
        For unknown UIDs or an instance without pixel data.
    """
    (instance,) = metadata_instances(managers, study, series, sop)
    number = 1 if frame is None else whole_number(frame, "the frame number")
    frames = managers.frames.frames(instance.s3_path, instance.etag)
    if not 1 <= number <= frames.count:
        raise InvalidArgument(f"the instance has {frames.count} frame(s)")
    return render(managers.frames, instance.s3_path, instance.etag, number, how)


def thumbnail(managers: Managers, study: str, series: str | None, sop: str | None, how: Rendering) -> bytes:
    """Return a small image of a representative frame: a study's first series, a series' middle
    instance, an instance's middle frame.

    Raises
    ------
    NotFound
        For unknown UIDs, or when the representative instance has no pixel data.
    """
    instance = _representative(managers, study, series, sop)
    frames = managers.frames.frames(instance.s3_path, instance.etag)
    return render(managers.frames, instance.s3_path, instance.etag, (frames.count + 1) // 2, how)


def _representative(managers: Managers, study: str, series: str | None, sop: str | None) -> InstanceRecord:
    if sop is not None and series is not None:
        (instance,) = metadata_instances(managers, study, series, sop)
        return instance
    record = _series_record(managers, study, series)
    middle = min(record.number_of_instances // 2, MAX_MIDDLE)
    instances, _ = managers.studies.instances(record.series_instance_uid, middle + 1)
    if not instances:
        raise NotFound("the series has no instances")
    return instances[-1]


def _series_record(managers: Managers, study: str, series: str | None) -> SeriesRecord:
    """Return the named series of the study, or (``None``) the study's first series."""
    checked = checked_uid(study, "StudyInstanceUID")
    if series is None:
        listed = managers.studies.series_of([checked]).get(checked) or []
        if not listed:
            raise NotFound("no such study")
        return listed[0]
    record = managers.studies.get_series([checked_uid(series, "SeriesInstanceUID")]).get(series)
    if record is None or record.study_instance_uid != checked:
        raise NotFound("no such series in that study")
    return record


# How far into a series its representative instance is looked for (one Query page).
MAX_MIDDLE = 999
