"""WADO-RS retrieve of files and frames (PS3.18 10.4): the stored Part 10 files of a study, a
series or an instance, and an instance's frames, read from the bucket where they lie.

Files are streamed from S3 a chunk at a time; frames are read one ranged GET each, through
the file's layout (``managers.pixels``). What a request accepts is read by
``resolvers.dicomweb.accept``; what cannot be served without transcoding is ``406``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from errors import InvalidArgument, NotAcceptable, NotFound
from managers.bundle import Managers
from managers.store.study_records import InstanceRecord
from resolvers.arguments import whole_number
from resolvers.dicomweb.accept import frame_syntax, instance_syntax
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
    syntax = frame_syntax(accept, frames.layout.transfer_syntax, native=not frames.layout.encapsulated)
    content_type = f"{FRAME_MEDIA_TYPE}; transfer-syntax={syntax}"

    def frame(number: int) -> Iterator[bytes]:
        yield managers.frames.read(instance.s3_path, frames, number)

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
