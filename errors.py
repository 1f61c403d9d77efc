"""Domain errors of dicom-meta.

Managers raise them, resolvers pass them on, and exactly two places translate them: the REST
error handler (``rest/errors.py``) into an HTTP status and JSON body, and the GraphQL view
(``schema/view.py``) into ``errors[].extensions.code``. Each class carries the error code of
the contract in ``docs/API.md``.
"""

from __future__ import annotations

import traceback
from typing import Any

# What a client is told of anything unexpected; the details go to the log only.
INTERNAL_MESSAGE = "Internal server error"


class DicomMetaError(Exception):
    """Base class: an expected failure a client can be told about."""

    code: str = "INTERNAL"
    status: int = 500
    # Extra top-level keys of the REST error body (only /ready uses them: which check failed).
    details: dict[str, Any] | None = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class MissingParameter(DicomMetaError):
    """Raised when a required parameter (``s3_path``) is absent or empty."""

    code, status = "MISSING_PARAMETER", 400


class InvalidS3Path(DicomMetaError):
    """Raised when a path is not of the form ``s3://bucket/key``."""

    code, status = "INVALID_S3_PATH", 400


class ForbiddenBucket(DicomMetaError):
    """Raised when a path names a bucket other than ``S3_BUCKET_NAME``."""

    code, status = "FORBIDDEN_BUCKET", 403


class NotFound(DicomMetaError):
    """Raised when an S3 object or a stored record does not exist."""

    code, status = "NOT_FOUND", 404


class NotDicom(DicomMetaError):
    """Raised when an object exists but is not a readable DICOM file."""

    code, status = "NOT_DICOM", 422


class InvalidPayload(DicomMetaError):
    """Raised when an uploaded body is not a JSON object with a valid ``s3_path`` and fields."""

    code, status = "INVALID_PAYLOAD", 400


class UnsupportedMediaType(DicomMetaError):
    """Raised when an upload is not sent as ``application/json``."""

    code, status = "UNSUPPORTED_MEDIA_TYPE", 415


class PayloadTooLarge(DicomMetaError):
    """Raised when a request body exceeds the 1 MiB limit."""

    code, status = "PAYLOAD_TOO_LARGE", 413


class InvalidArgument(DicomMetaError):
    """Raised when an argument is out of range or malformed (a date, a page size, a keyword)."""

    code, status = "INVALID_ARGUMENT", 400


class InvalidCursor(DicomMetaError):
    """Raised when a paging cursor was tampered with or belongs to another query."""

    code, status = "INVALID_CURSOR", 400


class NotAcceptable(DicomMetaError):
    """Raised when no representation a request accepts (a media type, a transfer syntax) can be served."""

    code, status = "NOT_ACCEPTABLE", 406


class UpstreamUnavailable(DicomMetaError):
    """Raised when S3 or DynamoDB is unreachable, times out or keeps throttling."""

    code, status = "UPSTREAM_UNAVAILABLE", 503


class Unauthenticated(DicomMetaError):
    """Raised when API keys are configured and the request carries none or a wrong one."""

    code, status = "UNAUTHENTICATED", 401


class NotReady(UpstreamUnavailable):
    """Raised by the readiness check when S3 or DynamoDB does not answer; says which one."""

    def __init__(self, checks: dict[str, str]) -> None:
        failed = ", ".join(name for name, state in checks.items() if state != "ok")
        super().__init__(f"not ready: {failed} did not answer")
        self.details = dict(checks)


def scrubbed_traceback(exc: BaseException) -> str:
    """Return the traceback of ``exc`` and its causes with every exception message left out.

    A message may quote a value from a DICOM file, a query or an S3 key (pydicom's and
    boto3's do), so logs get the frames and the exception types only: enough to find the
    line, nothing a client sent. Log it instead of ``exc_info``.
    """
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not seen for seen in chain):
        chain.append(current)
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    lines: list[str] = []
    for item in reversed(chain):
        lines.append("Traceback (most recent call last):")
        lines.extend(line.rstrip("\n") for line in traceback.format_list(traceback.extract_tb(item.__traceback__)))
        lines.append(f"{type(item).__module__}.{type(item).__qualname__} (message withheld)")
    return "\n".join(lines)
