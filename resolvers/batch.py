"""The batch resolver: the five fields of many files at once, each result or error in its place."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

from errors import INTERNAL_MESSAGE, DicomMetaError, InvalidArgument, scrubbed_traceback
from managers.bundle import Managers
from resolvers.metadata import Record, extract_metadata

log = logging.getLogger(__name__)

# One call stays one bounded unit of work: 100 headers is about what a page of a data app shows.
MAX_BATCH_PATHS = 100


@dataclass(frozen=True)
class ExtractionFailure:
    """Why one path of a batch has no metadata: the contract's error code and message."""

    s3_path: str
    code: str
    message: str


def extract_metadata_batch(
    managers: Managers, s3_paths: Sequence[str], request_id: str = ""
) -> list[Record | ExtractionFailure]:
    """Read the five fields of each path concurrently; return them in the order asked.

    One bad path does not fail the others: its domain error becomes an ``ExtractionFailure``
    with the error's code, and anything unexpected one with ``INTERNAL`` (logged).

    Raises
    ------
    InvalidArgument
        When more than ``MAX_BATCH_PATHS`` paths are asked for.
    """
    if len(s3_paths) > MAX_BATCH_PATHS:
        raise InvalidArgument(f"at most {MAX_BATCH_PATHS} paths per call, not {len(s3_paths)}")
    return list(managers.pool.map(partial(_extract_one, managers, request_id=request_id), s3_paths))


def _extract_one(managers: Managers, s3_path: str, request_id: str) -> Record | ExtractionFailure:
    """Return the record of ``s3_path``, or why there is none."""
    try:
        return extract_metadata(managers, s3_path)
    except DicomMetaError as exc:
        return ExtractionFailure(s3_path, exc.code, exc.message)
    except Exception as exc:  # noqa: BLE001 - one bad path must not fail the batch; logged scrubbed
        log.error("unexpected error in a batch extraction (request %s)\n%s", request_id, scrubbed_traceback(exc))
        return ExtractionFailure(s3_path, "INTERNAL", INTERNAL_MESSAGE)
