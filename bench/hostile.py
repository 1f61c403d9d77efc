"""Measure the hostile corpus (tests/hostile.py) through the API: time, memory, bytes fetched.

Starts an embedded AWS of its own, puts every hostile file, and for each one asks
``/dicom-metadata`` and ``dicomJson`` through the app (the Flask test client, no network
between client and app; S3 over loopback). Prints one row per file: the answers, the median
time of ``--repeat`` requests, the peak of Python allocations during one request
(tracemalloc: app, boto3 and the embedded AWS together), and the bytes S3 sent. The last line
names the worst case. A last pair of columns asks ``dicomMetadataBatch`` for 16 copies at
once (the batch pool's 16 workers all parsing). Run: ``.venv/bin/python bench/hostile.py``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app import create_app  # noqa: E402
from config import S3_BUCKET_NAME  # noqa: E402
from local.server import LocalAWS  # noqa: E402
from managers.dicom.bounded import MAX_HEADER_BYTES, MAX_HEADER_READS, MAX_INFLATED_BYTES  # noqa: E402
from tests.hostile import CASES  # noqa: E402

WIDTHS = (5, 18, 7, 7, 8, 10, 8, 9)
JSON_QUERY = "query($p: String!) { dicomMetadata(s3Path: $p) { dicomJson } }"
BATCH_QUERY = "query($p: [String!]!) { dicomMetadataBatch(s3Paths: $p) { __typename } }"
# As many copies as the batch pool has workers: all parsed at once.
BATCH_COPIES = 16


class Fetched:
    """Counts the body bytes of the app's GetObject calls."""

    def __init__(self) -> None:
        self.bytes = 0

    def __call__(self, parsed: dict[str, Any], **kwargs: Any) -> None:
        self.bytes += int(parsed.get("ContentLength", 0))


def median_seconds(call: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def peak_mb(call: Callable[[], Any]) -> float:
    tracemalloc.start()
    try:
        call()
        return tracemalloc.get_traced_memory()[1] / 1024 / 1024
    finally:
        tracemalloc.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="requests timed per file and API (median)")
    args = parser.parse_args()
    aws = LocalAWS.start(port=0, seed=False, deliver_events=False)
    try:
        app = create_app({"AWS_ENDPOINT_URL": aws.endpoint_url, "AWS_CREDENTIALS": aws.credentials})
        client = app.test_client()
        managers = app.extensions["dicom_meta.managers"]
        fetched = Fetched()
        managers.s3.client.meta.events.register("after-call.s3.GetObject", fetched, unique_id="bench-fetched")
        s3 = aws.client("s3")
        rows = []
        for case in CASES:
            data = case.build()
            key = f"dicom/hostile/{case.id}.dcm"
            s3.put_object(Bucket=S3_BUCKET_NAME, Key=key, Body=data)
            path = f"s3://{S3_BUCKET_NAME}/{key}"
            fetched.bytes = 0
            rest = client.get("/dicom-metadata", query_string={"s3_path": path})
            read = fetched.bytes
            ask_rest = partial(client.get, "/dicom-metadata", query_string={"s3_path": path})
            rest_s = median_seconds(ask_rest, args.repeat)
            body = {"query": JSON_QUERY, "variables": {"p": path}}
            answer = client.post("/graphql", json=body).get_json()
            json_code = (answer.get("errors") or [{"extensions": {"code": "OK"}}])[0]["extensions"]["code"]
            ask_json = partial(client.post, "/graphql", json=body)
            json_s = median_seconds(ask_json, args.repeat)
            rest_mb, json_mb = peak_mb(ask_rest), peak_mb(ask_json)
            ask_batch = partial(
                client.post, "/graphql", json={"query": BATCH_QUERY, "variables": {"p": [path] * BATCH_COPIES}}
            )
            batch_s, batch_mb = median_seconds(ask_batch, 1), peak_mb(ask_batch)
            rows.append(
                (
                    case.id,
                    len(data),
                    rest.status_code,
                    json_code,
                    rest_s,
                    json_s,
                    max(rest_mb, json_mb),
                    read,
                    batch_s,
                    batch_mb,
                )
            )
            s3.delete_object(Bucket=S3_BUCKET_NAME, Key=key)
    finally:
        aws.stop()
    print(
        f"bounds: {MAX_HEADER_BYTES // 2**20} MiB read, {MAX_HEADER_READS:,} reads, "
        f"{MAX_INFLATED_BYTES // 2**20} MiB inflated per header\n"
    )
    columns = ("REST", "dicomJson", "REST s", "JSON s", "peak MB", "S3 bytes", "x16 s", "x16 MB")
    print(f"{'case':30} {'size':>10} " + " ".join(f"{name:>{w}}" for name, w in zip(columns, WIDTHS, strict=True)))
    for name, size, status, code, rest_s, json_s, mb, read, batch_s, batch_mb in rows:
        print(
            f"{name:30} {size:>10,} {status:>5} {code:>18} {rest_s:>7.3f} {json_s:>7.3f} {mb:>8.1f} {read:>10,} "
            f"{batch_s:>8.3f} {batch_mb:>9.1f}"
        )
    slowest = max(rows, key=lambda row: max(row[4], row[5]))
    biggest = max(rows, key=lambda row: row[6])
    most_read = max(rows, key=lambda row: row[7])
    batch_biggest = max(rows, key=lambda row: row[9])
    print(
        f"\nslowest: {slowest[0]} ({max(slowest[4], slowest[5]):.3f} s); most memory: {biggest[0]} "
        f"({biggest[6]:.1f} MB); most read from S3: {most_read[0]} ({most_read[7]:,} bytes); "
        f"largest batch of {BATCH_COPIES}: {batch_biggest[0]} ({batch_biggest[9]:.1f} MB, {batch_biggest[8]:.2f} s)"
    )


if __name__ == "__main__":
    main()
