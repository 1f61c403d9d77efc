"""Benchmark: what the embedded AWS's data directory (``LOCAL_AWS_DATA``) costs to save and load.

Run with ``make bench BENCH=snapshot`` (or ``python bench/snapshot.py --help``). The embedded
AWS (``python -m local``, its events left undelivered) starts on an empty data directory; the
table is filled with ``--items`` instance records and their studies the way
``bench/search.py`` fills one, and ``--objects`` objects of ``--object-kb`` KiB are put under
``dicom/``. Then, each timed: the stop that saves everything (the first save writes every
object), the start that loads it, a stop with nothing changed (object versions already
written are not written again), and the emulator's peak memory after the load. No targets
(the issue asks for none): a table to know what a restart of a big ``make run`` costs.

Prints a Markdown table and writes bench/results/snapshot.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.embedded import peak_mb  # noqa: E402
from bench.search import EMULATOR_READ_TIMEOUT, free_port, load, load_studies, records  # noqa: E402
from config import S3_BUCKET_NAME  # noqa: E402
from local.process import EVENTS_VARIABLE, LocalAWSProcess  # noqa: E402
from local.snapshot import DATA_VARIABLE  # noqa: E402
from managers.aws.clients import client_config, make_client  # noqa: E402
from managers.DynamoDBManager import DynamoDBManager  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "snapshot.json"
UPLOADERS = 16


def timed(step: Any) -> float:
    started = time.monotonic()
    step()
    return time.monotonic() - started


def fill(aws: LocalAWSProcess, items: int, objects: int, object_kb: int) -> None:
    """Put the instance records with their studies, and the objects."""
    keys = (aws.credentials.aws_access_key_id, aws.credentials.aws_secret_access_key)
    config = client_config(read_timeout=EMULATOR_READ_TIMEOUT)
    dynamodb = DynamoDBManager(*keys, endpoint_url=aws.endpoint_url, config=config)
    rows = records(items)
    load(dynamodb.client, dynamodb.table_name, rows)
    load_studies(dynamodb, rows)
    s3 = make_client("s3", *keys, endpoint_url=aws.endpoint_url, config=client_config(read_timeout=60))
    body = os.urandom(object_kb * 1024)
    with ThreadPoolExecutor(UPLOADERS) as pool:
        list(
            pool.map(
                lambda n: s3.put_object(Bucket=S3_BUCKET_NAME, Key=f"dicom/bench-snapshot/{n:06d}.dcm", Body=body),
                range(objects),
            )
        )


def directory_mb(directory: Path) -> float:
    return sum(path.stat().st_size for path in directory.rglob("*") if path.is_file()) / 2**20


def run(items: int, objects: int, object_kb: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="dicom-meta-bench-") as name:
        directory = Path(name)
        aws = LocalAWSProcess(free_port(), env={DATA_VARIABLE: name, EVENTS_VARIABLE: "0"}).start()
        try:
            print(f"filling: {items:,} records, {objects:,} objects of {object_kb:,} KiB", file=sys.stderr)
            fill(aws, items, objects, object_kb)
            result: dict[str, Any] = {"items": items, "objects": objects, "object_kb": object_kb}
            result["first_save_s"] = timed(aws.stop)
            result["directory_mb"] = directory_mb(directory)
            result["load_s"] = timed(aws.start)
            result["peak_mb"] = peak_mb(aws)
            result["unchanged_save_s"] = timed(aws.stop)
        finally:
            aws.stop()
    return result


def table(result: dict[str, Any]) -> str:
    return "\n".join(
        [
            f"| {result['items']:,} records, {result['objects']:,} objects of {result['object_kb']:,} KiB | |",
            "|---|---:|",
            f"| first save (the stop), s | {result['first_save_s']:.1f} |",
            f"| data directory, MB | {result['directory_mb']:,.0f} |",
            f"| load (the start), s | {result['load_s']:.1f} |",
            f"| save with nothing changed, s | {result['unchanged_save_s']:.1f} |",
            f"| emulator's peak memory after the load, MB | {result['peak_mb']:,.0f} |",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000, help="instance records (default: 100,000)")
    parser.add_argument("--objects", type=int, default=1000, help="objects under dicom/ (default: 1,000)")
    parser.add_argument("--object-kb", type=int, default=1024, help="KiB per object (default: 1,024)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON results (default: bench/results/snapshot.json)")
    args = parser.parse_args()
    result = run(args.items, args.objects, args.object_kb)
    print(table(result))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": platform.platform(), "cpus": os.cpu_count(), **result}, indent=2))


if __name__ == "__main__":
    main()
