"""Whole-object reads from S3, shared by the API (``S3Manager``) and the Lambda.

Only boto3 and the standard library beneath it, so the Lambda zip can ship it: the Lambda
runtime has boto3 but not ``requests``, which ``S3Manager`` needs for presigned uploads.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from botocore.exceptions import ClientError

from errors import NotFound
from managers.aws.clients import error_code, http_status, make_client, upstream
from metadata import s3_path_of

_MISSING_CODES = frozenset({"NoSuchKey", "NotFound", "404", "NoSuchBucket"})
_DENIED_CODES = frozenset({"AccessDenied", "403"})


@contextmanager
def object_errors(s3_path: str) -> Iterator[None]:
    """Map S3's answers about the object at ``s3_path`` to the contract's errors."""
    try:
        with upstream("S3"):
            yield
    except ClientError as exc:
        code = error_code(exc)
        if code in _MISSING_CODES or http_status(exc) == 404:
            raise NotFound(f"no object at {s3_path}") from exc
        if code in _DENIED_CODES or http_status(exc) == 403:
            # Without s3:ListBucket, S3 answers 403 rather than 404 for a missing key (it
            # will not reveal whether the key exists). For the client the object is not there.
            raise NotFound(f"no readable object at {s3_path}") from exc
        raise


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
