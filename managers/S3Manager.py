"""S3Manager: s3 paths, reads of DICOM objects, and uploads through presigned URLs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import closing
from datetime import datetime
from typing import Any

import requests
from botocore.config import Config

from config import S3_BUCKET_NAME
from errors import UpstreamUnavailable
from managers.aws.clients import client_config, make_client, upstream
from managers.aws.objects import ObjectReader, object_errors, read_range
from metadata import parse_s3_path, s3_path_of

# At most five minutes: the URL is used at once, by this process, and a leaked one must die fast.
PRESIGNED_URL_EXPIRY = 300
# (connect, read) seconds: within the 5-second budget of a failing request, like the clients'.
UPLOAD_TIMEOUT = (1.0, 3.0)
JSON_CONTENT_TYPE = "application/json"
# Bytes of a streamed object held at once (WADO-RS retrieve): the API's memory stays flat.
STREAM_CHUNK = 1024 * 1024


class S3Manager:
    """Talks to ``S3_BUCKET_NAME``: validates paths, reads objects, uploads JSON documents."""

    def __init__(
        self,
        aws_access_key_id: str | None = None,
        aws_secret_access_key: str | None = None,
        aws_session_token: str | None = None,
        *,
        endpoint_url: str | None = None,
        config: Config | None = None,
    ) -> None:
        # SigV4 so the presigned URL binds Content-Type; path style because the embedded AWS
        # (an IP and a port) has no virtual hosts.
        s3_options = {"addressing_style": "path"} if endpoint_url else {}
        self.client = make_client(
            "s3",
            aws_access_key_id,
            aws_secret_access_key,
            aws_session_token,
            endpoint_url=endpoint_url,
            config=config or client_config(signature_version="s3v4", s3=s3_options),
        )
        self.objects = ObjectReader(self.client)
        self.http = requests.Session()

    def read_object(self, s3_path: str) -> bytes:
        """Return the whole object at ``s3_path``, read into memory.

        Raises ``NotFound`` when the object is absent, ``UpstreamUnavailable`` when S3 cannot
        be reached.
        """
        return self.objects.read(*parse_s3_path(s3_path))

    def read_range(self, s3_path: str, start: int, length: int) -> tuple[bytes, int]:
        """Return ``length`` bytes from ``start`` of the object, and the object's total size."""
        read = read_range(self.client, *parse_s3_path(s3_path), start, length)
        return read.data, read.total

    def stream(self, s3_path: str, chunk_size: int = STREAM_CHUNK) -> Iterator[bytes]:
        """Yield the object at ``s3_path`` in chunks of ``chunk_size``, never holding it whole.

        The GET is made before the first chunk is yielded, so ``NotFound`` comes first.
        """
        bucket, key = parse_s3_path(s3_path)
        with object_errors(s3_path):
            body = self.client.get_object(Bucket=bucket, Key=key)["Body"]
        with closing(body):
            yield from body.iter_chunks(chunk_size)

    def presigned_put_url(self, key: str) -> str:
        """Return a URL that lets its holder PUT one JSON document at ``key`` for 5 minutes.

        ``Content-Type: application/json`` is part of the signature, so the URL cannot be used
        to store anything else (real S3 enforces it; moto's server does not).
        """
        if not key.startswith("json/"):
            raise ValueError("presigned uploads are for json/ keys only")
        return self.client.generate_presigned_url(
            "put_object",
            Params={"Bucket": S3_BUCKET_NAME, "Key": key, "ContentType": JSON_CONTENT_TYPE},
            ExpiresIn=PRESIGNED_URL_EXPIRY,
        )

    def upload_json(self, key: str, document: dict[str, Any]) -> str:
        """Upload ``document`` to ``key`` through a presigned PUT URL; return its s3 path."""
        url = self.presigned_put_url(key)
        body = json.dumps(document, ensure_ascii=False).encode("utf-8")
        try:
            response = self.http.put(
                url, data=body, headers={"Content-Type": JSON_CONTENT_TYPE}, timeout=UPLOAD_TIMEOUT
            )
        except requests.RequestException as exc:
            raise UpstreamUnavailable("S3 is unreachable; try again shortly") from exc
        if response.status_code >= 500 or response.status_code == 429:
            raise UpstreamUnavailable(f"S3 answered {response.status_code} to the upload")
        if response.status_code >= 300:
            # A 4xx on our own signed URL is our fault (clock skew, expired URL, a policy).
            raise RuntimeError(f"presigned upload refused with HTTP {response.status_code}")
        return s3_path_of(S3_BUCKET_NAME, key)

    def ping(self) -> None:
        """Check that S3 answers and the bucket is there (HEAD bucket); raise if not."""
        with upstream("S3"):
            self.client.head_bucket(Bucket=S3_BUCKET_NAME)

    def list_objects(
        self, prefix: str, limit: int, token: str | None = None
    ) -> tuple[list[tuple[str, int, datetime]], str | None]:
        """Return up to ``limit`` objects under ``prefix`` (path, size, last modified), in key
        order, and S3's continuation token for the rest (``None`` when there is no more)."""
        request: dict[str, Any] = {"Bucket": S3_BUCKET_NAME, "Prefix": prefix, "MaxKeys": limit}
        if token:
            request["ContinuationToken"] = token
        with upstream("S3"):
            response = self.client.list_objects_v2(**request)
        objects = [
            (s3_path_of(S3_BUCKET_NAME, item["Key"]), item["Size"], item["LastModified"])
            for item in response.get("Contents", [])
        ]
        return objects, response.get("NextContinuationToken") if response.get("IsTruncated") else None
