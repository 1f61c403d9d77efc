"""Benchmark: what one search page reads, at two table sizes, for every filter shape.

Run with ``make bench BENCH=search`` (or ``python bench/search.py --help``). The embedded AWS
runs in a child process (``python -m local``). For each size (10,000 then 100,000 records by
default) a fresh table is filled with BatchWriteItem, each item built by the same
``derived_attributes`` the service's writers use, then each search shape walks its first
``--pages`` pages of ``--page`` records through ``resolvers.search_metadata``.

Per shape and size it prints the items read per page (the sum of ``ScannedCount`` over the
page's Queries: what DynamoDB would bill and read, counted from botocore's ``after-call``
events) and the median latency of a page. Targets, for every shape: items read per page
at the largest size no more than at the smallest (flat), and at most 3 x page size plus the
shards' look-ahead. moto's own Query walks every item of the table in Python, so its latency
grows with the table where DynamoDB's does not: judge by items read.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import socket
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from local.process import LocalAWSProcess  # noqa: E402
from local.server import create_table  # noqa: E402
from managers.aws import client_config  # noqa: E402
from managers.bundle import Managers  # noqa: E402
from managers.DynamoDBManager import DynamoDBManager  # noqa: E402
from managers.table import PARTITION_KEY, SHARDS, derived_attributes  # noqa: E402
from resolvers.search import search_filter, search_metadata  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "search.json"
MODALITIES = ("CT", "MR", "US", "CR", "DX", "PT", "NM", "MG")
INSTITUTIONS = ("North Clinic", "South Hospital", "East Imaging", "West Center", "University Hospital")
RECORDS_PER_PATIENT = 100  # the same share of the table per patient at every size
BATCH = 25  # BatchWriteItem's maximum
LOADERS = 4
# moto's Query walks the whole table: at 100,000 records one takes seconds, far beyond the
# service's 1.2 s read timeout, which is about real DynamoDB.
EMULATOR_READ_TIMEOUT = 600

# Shape name → search_filter arguments. P000001 exists at every size (patients are numbered).
SHAPES: dict[str, dict[str, str]] = {
    "no filter": {},
    "patient": {"patient_id": "P000001"},
    "modality": {"modality": "CT"},
    "date range": {"study_date_from": "20230101", "study_date_to": "20230331"},
    "institution": {"institution_name": "South Hospital"},
    "patient + date": {"patient_id": "P000001", "study_date_from": "20150101", "study_date_to": "20201231"},
    "modality + date": {"modality": "MR", "study_date_from": "20230101", "study_date_to": "20231231"},
}


def records(count: int, seed: int = 13) -> list[dict[str, str | None]]:
    """Return ``count`` records: dates over ten years (2% undated), skewed modalities."""
    rng = random.Random(seed)
    patients = max(1, count // RECORDS_PER_PATIENT)
    out = []
    for n in range(count):
        undated = rng.random() < 0.02
        out.append(
            {
                "s3_path": f"s3://data-apps-ex/dicom/bench/anon-{n:07d}.dcm",
                "PatientID": f"P{rng.randrange(patients):06d}",
                "StudyDate": None
                if undated
                else f"{rng.randint(2015, 2024)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}",
                "Modality": rng.choices(MODALITIES, weights=(30, 20, 15, 15, 10, 5, 3, 2))[0],
                "InstitutionName": rng.choice(INSTITUTIONS),
                "StudyDescription": f"study {n % 977}",
            }
        )
    return out


def item_of(record: dict[str, str | None]) -> dict[str, Any]:
    """Return the DynamoDB item the service would store for a record (no ingest metadata)."""
    path = str(record["s3_path"])
    fields = {name: value for name, value in record.items() if name != "s3_path" and value is not None}
    return {
        PARTITION_KEY: {"S": path},
        **{name: {"S": value} for name, value in {**fields, **derived_attributes(path, fields)}.items()},
    }


def load(client: Any, table: str, rows: list[dict[str, str | None]]) -> float:
    """Write ``rows`` with BatchWriteItem from a few threads, retrying unprocessed items; return seconds."""

    def write(start: int) -> None:
        requests = [{"PutRequest": {"Item": item_of(r)}} for r in rows[start : start + BATCH]]
        while requests:
            answer = client.batch_write_item(RequestItems={table: requests})
            requests = answer.get("UnprocessedItems", {}).get(table, [])

    started = time.perf_counter()
    # A few writers at once keep the embedded AWS (its own process) busy while this one encodes.
    with ThreadPoolExecutor(max_workers=LOADERS) as pool:
        for done, _ in enumerate(pool.map(write, range(0, len(rows), BATCH)), start=1):
            if done * BATCH % 10_000 == 0:
                print(f"\r  loaded {done * BATCH:,} of {len(rows):,}", end="", file=sys.stderr, flush=True)
    print(f"\r  loaded {len(rows):,} of {len(rows):,}", file=sys.stderr)
    return time.perf_counter() - started


class ReadCounter:
    """Sums the ScannedCount of a DynamoDB client's Queries and Scans (threads included)."""

    def __init__(self, client: Any) -> None:
        self.lock = threading.Lock()
        self.items = self.calls = self.scans = 0
        client.meta.events.register("after-call.dynamodb", self._count)

    def _count(self, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        with self.lock:
            if model.name in ("Query", "Scan"):
                self.items += int(parsed.get("ScannedCount", 0))
                self.calls += 1
                self.scans += model.name == "Scan"

    def take(self) -> tuple[int, int, int]:
        """Return items read, calls and scans since the last call, and start again."""
        with self.lock:
            counted = (self.items, self.calls, self.scans)
            self.items = self.calls = self.scans = 0
        return counted


@dataclass
class ShapeResult:
    shape: str
    size: int
    pages: int
    items_per_page: list[int]
    queries_per_page: list[int]
    scans: int
    latency_ms: list[float]

    @property
    def max_items(self) -> int:
        return max(self.items_per_page)

    @property
    def median_ms(self) -> float:
        return statistics.median(self.latency_ms)


def bench_shape(managers: Managers, counter: ReadCounter, shape: str, size: int, page: int, pages: int) -> ShapeResult:
    """Walk the first ``pages`` pages of one shape; record what each read and how long it took."""
    result = ShapeResult(shape, size, 0, [], [], 0, [])
    criteria = search_filter(**SHAPES[shape])
    cursor: str | None = None
    counter.take()
    for _ in range(pages):
        started = time.perf_counter()
        answer = search_metadata(managers, criteria, page, cursor)
        result.latency_ms.append((time.perf_counter() - started) * 1000)
        items, calls, scans = counter.take()
        result.items_per_page.append(items)
        result.queries_per_page.append(calls)
        result.scans += scans
        result.pages += 1
        cursor = answer.next_cursor
        if cursor is None:
            break
    return result


def bench_size(endpoint: str, size: int, page: int, pages: int) -> list[ShapeResult]:
    """Fill a fresh table with ``size`` records and run every shape on it; drop the table after."""
    table = f"bench-search-{size}"
    credentials = LocalAWSProcess.credentials
    dynamodb = DynamoDBManager(
        credentials.aws_access_key_id,
        credentials.aws_secret_access_key,
        endpoint_url=endpoint,
        config=client_config(read_timeout=EMULATOR_READ_TIMEOUT),
        table_name=table,
    )
    create_table(dynamodb.client, table)
    try:
        print(f"{size:,} records:", file=sys.stderr)
        seconds = load(dynamodb.client, table, records(size))
        print(f"  {size / seconds:,.0f} records/s into the embedded AWS", file=sys.stderr)
        managers = Managers.create(credentials, endpoint)
        managers = Managers(s3=managers.s3, dynamodb=dynamodb, dicom=managers.dicom)
        counter = ReadCounter(dynamodb.client)
        return [bench_shape(managers, counter, shape, size, page, pages) for shape in SHAPES]
    finally:
        dynamodb.client.delete_table(TableName=table)


def look_ahead(shape: str, page: int) -> int:
    """Return the items one page may read beyond what it serves: a chunk per partition."""
    partitions = 1 if "patient_id" in SHAPES[shape] else SHARDS
    return partitions * (math.ceil(page / partitions) + 1)


@dataclass
class Check:
    name: str
    passed: bool
    detail: str


def checks(results: list[ShapeResult], page: int) -> list[Check]:
    """Flat and bounded, for every shape; never a Scan.

    Flat: the worst page at the largest size reads no more than at the smallest, or no more
    than the page, the one item peeked and one chunk per partition, a ceiling no table size
    changes. (Other records fill a page at another size, so how much of the last chunks is
    left unread differs by a few items either way.)
    """
    sizes = sorted({r.size for r in results})
    out = []
    for shape in SHAPES:
        by_size = {r.size: r for r in results if r.shape == shape}
        small, large = by_size[sizes[0]], by_size[sizes[-1]]
        bound = 3 * page + look_ahead(shape, page)
        ceiling = page + 2 + look_ahead(shape, page)
        out.append(
            Check(
                f"{shape}: flat",
                large.max_items <= max(small.max_items, ceiling),
                f"{large.max_items} at {sizes[-1]:,}, {small.max_items} at {sizes[0]:,}, size-free ceiling {ceiling}",
            )
        )
        worst = max(r.max_items for r in by_size.values())
        out.append(Check(f"{shape}: bounded", worst <= bound, f"{worst} <= {bound}"))
    scans = sum(r.scans for r in results)
    out.append(Check("no Scan", scans == 0, f"{scans} scans"))
    return out


def table(results: list[ShapeResult], page: int) -> str:
    """Return the results as a Markdown table, one row per shape, a column pair per size."""
    sizes = sorted({r.size for r in results})
    head = " | ".join(f"items/page @{s:,} | queries/page @{s:,} | ms/page @{s:,}" for s in sizes)
    rows = [
        f"| shape | {head} | bound |",
        "|---|" + "---:|" * (3 * len(sizes) + 1),
    ]
    for shape in SHAPES:
        cells = []
        for size in sizes:
            r = next(r for r in results if r.shape == shape and r.size == size)
            cells += [f"{r.max_items}", f"{max(r.queries_per_page)}", f"{r.median_ms:,.0f}"]
        rows.append(f"| {shape} | {' | '.join(cells)} | {3 * page + look_ahead(shape, page)} |")
    return "\n".join(rows)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000", help="records per run, comma-separated (%(default)s)")
    parser.add_argument("--page", type=int, default=50, help="page size (default: %(default)s)")
    parser.add_argument("--pages", type=int, default=3, help="pages walked per shape (default: %(default)s)")
    parser.add_argument("--port", type=int, default=0, help="embedded AWS port (default: a free one)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON results (default: bench/results/search.json)")
    args = parser.parse_args(argv)
    sizes = [int(size) for size in args.sizes.split(",")]
    with LocalAWSProcess(args.port or free_port()) as aws:
        results = [r for size in sizes for r in bench_size(aws.endpoint_url, size, args.page, args.pages)]
    found = checks(results, args.page)
    print(f"\nPage of {args.page}, first {args.pages} pages per shape; items/page and queries/page: the worst page; ")
    print(f"ms/page: the median on the embedded AWS (moto walks the whole table per Query). Shards: {SHARDS}.\n")
    print(table(results, args.page))
    print()
    for check in found:
        print(f"{'PASS' if check.passed else 'FAIL'}  {check.name}: {check.detail}")
    report = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "page": args.page,
        "pages": args.pages,
        "shards": SHARDS,
        "results": [{**r.__dict__, "max_items": r.max_items, "median_ms": r.median_ms} for r in results],
        "checks": [c.__dict__ for c in found],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"\nResults written to {args.out}")
    return 0 if all(check.passed for check in found) else 1


if __name__ == "__main__":
    sys.exit(main())
