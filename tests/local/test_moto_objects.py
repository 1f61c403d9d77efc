"""The embedded S3's objects on disk, and ranged GETs that read the range only
(local/moto_objects.py), through a plain boto3 client as any user's."""

from __future__ import annotations

import os
from typing import Any

from moto.core import DEFAULT_ACCOUNT_ID
from moto.s3.models import s3_backends

from config import S3_BUCKET_NAME
from local import moto_objects

DATA = bytes(range(256)) * 12_000  # about 3 MB


def test_a_ranged_get_reads_its_range_and_objects_live_in_files(s3: Any) -> None:
    key = "objects-test/big.bin"
    s3.put_object(Bucket=S3_BUCKET_NAME, Key=key, Body=DATA)
    try:
        before = moto_objects.stats["read"]
        for asked, expected in (
            ("bytes=1000-1099", DATA[1000:1100]),
            ("bytes=-50", DATA[-50:]),
            (f"bytes={len(DATA) - 10}-{len(DATA) + 100}", DATA[-10:]),
        ):
            answer = s3.get_object(Bucket=S3_BUCKET_NAME, Key=key, Range=asked)
            assert answer["Body"].read() == expected, asked
            assert answer["ContentRange"].endswith(f"/{len(DATA)}")
        # Only the ranges were read from the object's file, not 3 MB three times
        assert moto_objects.stats["read"] - before == 100 + 50 + 10
        assert s3.get_object(Bucket=S3_BUCKET_NAME, Key=key)["Body"].read() == DATA
        stored: Any = s3_backends[DEFAULT_ACCOUNT_ID]["aws"].get_object(S3_BUCKET_NAME, key)
        assert stored._value_buffer._rolled  # spilled to its temporary file, not held in memory
        assert int(os.environ["MOTO_S3_DEFAULT_KEY_BUFFER_SIZE"]) == moto_objects.SPOOL_BYTES
    finally:
        s3.delete_object(Bucket=S3_BUCKET_NAME, Key=key)
