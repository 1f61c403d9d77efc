"""Object reads from S3, whole or by range, and what S3's answers about an object mean.

Shared by the API (``S3Manager``), the ingest Lambda (whole JSON documents) and the indexer
(ranged header reads, each tied to the object's version).

Only boto3 and the standard library beneath it, so the Lambda zip can ship it: the Lambda
runtime has boto3 but not ``requests``, which ``S3Manager`` needs for presigned uploads.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from errors import NotFound
from managers.aws.clients import error_code, http_status, make_client, upstream
from metadata import s3_path_of

# S3's codes for an object that is not there. Without s3:ListBucket, S3 answers 403 rather
# than 404 for a missing key (it will not reveal whether the key exists): for every reader
# here (the API, the indexer, whose role may GET dicom/* but not list) that object is gone.
MISSING_CODES = frozenset({"NoSuchKey", "NotFound", "404", "NoSuchBucket"})
DENIED_CODES = frozenset({"AccessDenied", "403"})


class ObjectChanged(Exception):
    """Raised when a read tied to one version (``IfMatch`` its ETag) finds the object overwritten."""


@dataclass(frozen=True)
class RangeRead:
    """What one ranged GET returned: the bytes, the object's size and the version read."""

    data: bytes
    total: int
    etag: str = ""
    last_modified: str = ""


@contextmanager
def object_errors(s3_path: str) -> Iterator[None]:
    """Map S3's answers about the object at ``s3_path`` to the contract's errors."""
    try:
        with upstream("S3"):
            yield
    except ClientError as exc:
        code = error_code(exc)
        if code in MISSING_CODES or http_status(exc) == 404:
            raise NotFound(f"no object at {s3_path}") from exc
        if code in DENIED_CODES or http_status(exc) == 403:
            raise NotFound(f"no readable object at {s3_path}") from exc
        raise


def read_range(client: Any, bucket: str, key: str, start: int, length: int, if_match: str | None = None) -> RangeRead:
    """Return ``length`` bytes of ``bucket``/``key`` from ``start`` (fewer at its end), in one ranged GET.

    ``if_match``: the ETag the read must find (a header is never stitched together from two
    versions of an overwritten object).

    Raises
    ------
    NotFound
        When the object is absent or not readable.
    ObjectChanged
        When ``if_match`` is given and the object has another ETag now.
    UpstreamUnavailable
        When S3 cannot be reached or keeps failing.
    """
    request: dict[str, Any] = {"Bucket": bucket, "Key": key, "Range": f"bytes={start}-{start + length - 1}"}
    if if_match:
        request["IfMatch"] = if_match
    try:
        with object_errors(s3_path_of(bucket, key)):
            response = client.get_object(**request)
            data: bytes = response["Body"].read()
    except ClientError as exc:
        if error_code(exc) == "InvalidRange":  # S3's answer for a range of an empty object
            return RangeRead(b"", 0, if_match or "")
        if error_code(exc) == "PreconditionFailed" or http_status(exc) == 412:
            raise ObjectChanged("the object changed while it was read") from exc
        raise
    # "bytes 0-99/1234": the total follows the slash (RFC 9110 14.4).
    content_range = response.get("ContentRange", "")
    total = int(content_range.rsplit("/", 1)[-1]) if "/" in content_range else len(data)
    modified = response.get("LastModified")
    return RangeRead(data, total, str(response.get("ETag", "")), modified.isoformat() if modified else "")


class VersionedFetch:
    """``RangedReader``'s fetch over a boto3 S3 client, tied to one version of the object.

    Every read is made ``IfMatch`` the ETag given, or else the one the first read found, so a
    header or a value is never stitched together from two versions of an overwritten object.
    """

    def __init__(self, client: Any, bucket: str, key: str, etag: str | None = None) -> None:
        self.client, self.bucket, self.key = client, bucket, key
        self.etag = etag
        self.last_modified = ""

    def __call__(self, start: int, length: int) -> tuple[bytes, int]:
        try:
            read = read_range(self.client, self.bucket, self.key, start, length, self.etag)
        except NotFound as exc:
            raise NotFound("the object is gone") from exc  # the message holds no key: it may be logged
        if not self.etag:
            self.etag, self.last_modified = read.etag, read.last_modified
        return read.data, read.total


class ObjectReader:
    """Reads whole objects through one S3 client (boto3 clients are thread-safe)."""

    def __init__(self, client: Any) -> None:
        self.client = client

    @classmethod
    def create(cls, endpoint_url: str | None = None) -> ObjectReader:
        """Build a reader on the default credential chain (the Lambda's role)."""
        return cls(make_client("s3", endpoint_url=endpoint_url))

    def read(self, bucket: str, key: str) -> bytes:
        """Return the whole object ``bucket``/``key``, read into memory.

        Raises
        ------
        NotFound
            When the object is absent or not readable.
        UpstreamUnavailable
            When S3 cannot be reached or keeps failing.
        """
        with object_errors(s3_path_of(bucket, key)):
            body: bytes = self.client.get_object(Bucket=bucket, Key=key)["Body"].read()
            return body
