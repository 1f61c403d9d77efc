"""Benchmark: header-only ranged extraction against the naive whole-object read, batch against one by one.

Run with ``make bench`` (or ``python bench/extract.py --help``). The embedded AWS runs in a child
process, once behind an S3-like network (20 ms before each response, 100 MB/s per body) and
once on bare loopback: in its own process its memory and CPU stay out of this one's measures.

Per file size, three ways to get the five fields:

- ``ranged``: the service's ``DicomManager.extract_metadata`` (ranged GETs, header only);
- ``naive``: ``get_object`` + ``read()`` + ``dcmread`` of the whole object (``stop_before_pixels``,
  which spares the naive one a second copy of the pixels: only the I/O differs);
- ``floor``: one 64 KiB ranged GET and a parse, the least any reader can do.

GETs and bytes are counted at the S3 client from botocore's ``after-call`` events and the
responses' ``ContentLength``. Latency is the median of timed runs; peak memory is the
``tracemalloc`` peak (Python allocations of this process) of one more, separate run.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pydicom import dcmread  # noqa: E402  imported after the sys.path line above

from config import S3_BUCKET_NAME  # noqa: E402  imported after the sys.path line above
from local.process import LocalAWSProcess  # noqa: E402  imported after the sys.path line above
from local.samples import SampleSpec, pixel_length, write_file  # noqa: E402  imported after the sys.path line above
from managers.aws.backend import LOCAL_CREDENTIALS  # noqa: E402  imported after the sys.path line above
from managers.aws.clients import client_config, make_client  # noqa: E402  imported after the sys.path line above
from managers.bundle import Managers  # noqa: E402  imported after the sys.path line above
from managers.dicom.header import fields_of  # noqa: E402  imported after the sys.path line above
from managers.dicom.ranged import FIRST_REQUEST  # noqa: E402  imported after the sys.path line above
from resolvers.paging import Cursors, new_secret  # noqa: E402
from schema import schema  # noqa: E402  imported after the sys.path line above
from schema.types import Context  # noqa: E402  imported after the sys.path line above

MB = 1_000_000
DEFAULT_SIZES_MB = (0.5, 10, 100, 500)
BATCH_FILES = 100
RESULTS = ROOT / "bench" / "results" / "extract.json"

S3_LIKE = {"name": "S3-like (20 ms, 100 MB/s)", "latency_ms": 20, "bandwidth_mbps": 100}
LOOPBACK = {"name": "loopback (no emulation)", "latency_ms": 0, "bandwidth_mbps": 0}

SINGLE_QUERY = "query One($path: String!) { dicomMetadata(s3Path: $path) { patientId } }"
BATCH_QUERY = """query Many($paths: [String!]!) {
  dicomMetadataBatch(s3Paths: $paths) { __typename ... on DicomMetadata { patientId } }
}"""


@dataclass
class Measure:
    """One way of reading one file: what it cost."""

    gets: int = 0
    bytes_read: int = 0
    runs_s: list[float] = field(default_factory=list)
    peak_mb: float | None = None

    @property
    def median_s(self) -> float:
        return statistics.median(self.runs_s)


class GetCounter:
    """Counts an S3 client's GetObject calls and the body bytes S3 answered them with."""

    def __init__(self, client: Any) -> None:
        self.lock = threading.Lock()
        self.gets = self.bytes = 0
        client.meta.events.register("after-call.s3.GetObject", self._count)

    def _count(self, parsed: dict[str, Any], **kwargs: Any) -> None:
        with self.lock:
            self.gets += 1
            self.bytes += int(parsed.get("ContentLength", 0))

    def take(self) -> tuple[int, int]:
        """Return the GETs and bytes counted since the last call, and start again."""
        with self.lock:
            counted, (self.gets, self.bytes) = (self.gets, self.bytes), (0, 0)
        return counted


@contextmanager
def embedded_aws(latency_ms: float, bandwidth_mbps: float) -> Iterator[str]:
    """Run ``python -m local`` on a free port behind the given network; yield its endpoint URL."""
    network = {"LOCAL_AWS_LATENCY_MS": str(latency_ms), "LOCAL_AWS_BANDWIDTH_MBPS": str(bandwidth_mbps)}
    with LocalAWSProcess(0, env=network) as process:
        yield process.endpoint_url


def upload(uploader: Any, key: str, spec: SampleSpec) -> int:
    """Write ``spec`` to a temporary file and upload it, never holding its pixels in memory."""
    with tempfile.TemporaryFile() as fp:
        size = write_file(spec, fp)
        fp.seek(0)
        uploader.put_object(Bucket=S3_BUCKET_NAME, Key=key, Body=fp, ContentLength=size)
    return size


def naive_fields(managers: Managers, s3_path: str) -> dict[str, str | None]:
    """What a user would write: get the whole object, read it, parse it."""
    key = s3_path.removeprefix(f"s3://{S3_BUCKET_NAME}/")
    body = managers.s3.client.get_object(Bucket=S3_BUCKET_NAME, Key=key)["Body"].read()
    return fields_of(dcmread(io.BytesIO(body), stop_before_pixels=True))


def floor_fields(managers: Managers, s3_path: str) -> dict[str, str | None]:
    """The least any reader can do: one 64 KiB ranged GET, then a parse."""
    data, _ = managers.s3.read_range(s3_path, 0, FIRST_REQUEST)
    return fields_of(dcmread(io.BytesIO(data), stop_before_pixels=True))


def measure(read: Callable[[], Any], counter: GetCounter, runs: int, memory: bool = True) -> Measure:
    """Time ``runs`` calls of ``read``, count one call's GETs and bytes, trace one more's memory."""
    result = Measure()
    counter.take()
    for _ in range(runs):
        started = time.perf_counter()
        read()
        result.runs_s.append(time.perf_counter() - started)
    gets, read_bytes = counter.take()
    result.gets, result.bytes_read = gets // runs, read_bytes // runs
    if memory:
        tracemalloc.start()
        try:
            read()
            result.peak_mb = tracemalloc.get_traced_memory()[1] / MB
        finally:
            tracemalloc.stop()
    return result


def bench_size(managers: Managers, uploader: Any, counter: GetCounter, size_mb: float, runs: int) -> dict[str, Any]:
    """Upload one file with ``size_mb`` of pixel data, measure the three readers, delete it."""
    spec = SampleSpec(pixel_bytes=int(size_mb * MB), patient_id=f"BENCH-{size_mb:g}")
    key = f"dicom/bench/{spec.file_name}"
    object_bytes = upload(uploader, key, spec)
    s3_path = f"s3://{S3_BUCKET_NAME}/{key}"
    try:
        expected = managers.dicom.extract_metadata(s3_path)  # also warms the connection up
        assert naive_fields(managers, s3_path) == expected == floor_fields(managers, s3_path)
        counter.take()
        # The naive read of a big file takes seconds per run: fewer runs still give a fair median.
        naive_runs = runs if size_mb < 100 else max(1, min(runs, 3))
        readers = {
            "ranged": measure(lambda: managers.dicom.extract_metadata(s3_path), counter, runs),
            "floor": measure(lambda: floor_fields(managers, s3_path), counter, runs, memory=False),
            "naive": measure(lambda: naive_fields(managers, s3_path), counter, naive_runs),
        }
    finally:
        uploader.delete_object(Bucket=S3_BUCKET_NAME, Key=key)
    header_bytes = object_bytes - pixel_length(spec)
    return {
        "pixel_mb": size_mb,
        "object_bytes": object_bytes,
        "header_bytes": header_bytes,
        **{name: {**asdict(m), "median_s": m.median_s} for name, m in readers.items()},
    }


def bench_batch(managers: Managers, uploader: Any, counter: GetCounter, runs: int) -> dict[str, Any]:
    """Upload ``BATCH_FILES`` small files; time one batch query against one query per file."""
    paths = []
    for index in range(BATCH_FILES):
        spec = SampleSpec(patient_id=f"BATCH-{index}")
        key = f"dicom/bench/batch/{spec.file_name}"
        upload(uploader, key, spec)
        paths.append(f"s3://{S3_BUCKET_NAME}/{key}")
    context = Context(managers=managers, cursors=Cursors(new_secret()), request_id="bench")

    def run_batch() -> None:
        result = schema.execute_sync(BATCH_QUERY, variable_values={"paths": paths}, context_value=context)
        assert not result.errors and result.data and len(result.data["dicomMetadataBatch"]) == BATCH_FILES

    def run_sequential() -> None:
        for path in paths:
            result = schema.execute_sync(SINGLE_QUERY, variable_values={"path": path}, context_value=context)
            assert not result.errors

    try:
        run_batch()  # starts the pool's threads and opens its connections
        batch, sequential = measure(run_batch, counter, runs, False), measure(run_sequential, counter, runs, False)
    finally:
        for path in paths:
            uploader.delete_object(Bucket=S3_BUCKET_NAME, Key=path.removeprefix(f"s3://{S3_BUCKET_NAME}/"))
    return {
        "files": BATCH_FILES,
        "batch": {**asdict(batch), "median_s": batch.median_s},
        "sequential": {**asdict(sequential), "median_s": sequential.median_s},
    }


def bench_network(network: dict[str, Any], sizes: list[float], runs: int) -> dict[str, Any]:
    """Run every measure against an embedded AWS behind ``network``."""
    print(f"\n== {network['name']}: starting the embedded AWS", flush=True)
    with embedded_aws(network["latency_ms"], network["bandwidth_mbps"]) as endpoint:
        managers = Managers.create(LOCAL_CREDENTIALS, endpoint)
        # Uploads skip the checksum trailer so the emulator stores a plain body quickly.
        uploader = make_client(
            "s3",
            LOCAL_CREDENTIALS.aws_access_key_id,
            LOCAL_CREDENTIALS.aws_secret_access_key,
            endpoint_url=endpoint,
            config=client_config(
                read_timeout=120, request_checksum_calculation="when_required", s3={"addressing_style": "path"}
            ),
        )
        counter = GetCounter(managers.s3.client)
        files = []
        for size_mb in sizes:
            print(f"   {size_mb:g} MB of pixel data…", flush=True)
            files.append(bench_size(managers, uploader, counter, size_mb, runs))
        print(f"   {BATCH_FILES} small files, batch and one by one…", flush=True)
        batch = bench_batch(managers, uploader, counter, runs)
        managers.pool.shutdown()
    return {**network, "files": files, "batch": batch}


@dataclass
class Target:
    """A goal of issue 4, checked on the measures."""

    name: str
    value: float
    limit: float
    higher_is_better: bool

    @property
    def passed(self) -> bool:
        return self.value >= self.limit if self.higher_is_better else self.value <= self.limit


def ratio(results: dict[str, Any], numerator: str, denominator: str, metric: str) -> float:
    """Return ``metric`` of one reader over another's (e.g. naive over ranged median)."""
    return results[numerator][metric] / results[denominator][metric]


def targets(networks: list[dict[str, Any]]) -> list[Target]:
    """Check the issue's targets on the results (the timed ones on the S3-like network)."""
    small_header = 60 * 1024
    checks = [
        Target(
            f"{n['name']}: bytes read, largest over files with header < 60 KiB",
            max(f["ranged"]["bytes_read"] for f in n["files"] if f["header_bytes"] < small_header),
            64 * 1024,
            higher_is_better=False,
        )
        for n in networks
    ]
    s3_like = next((n for n in networks if n["latency_ms"]), None)
    if s3_like is None:
        return checks
    by_size = {f["pixel_mb"]: f for f in s3_like["files"]}
    if 100 in by_size:
        f = by_size[100]
        checks += [
            Target("100 MB: naive bytes / ranged bytes", ratio(f, "naive", "ranged", "bytes_read"), 1000, True),
            Target("S3-like, 100 MB: naive time / ranged time", ratio(f, "naive", "ranged", "median_s"), 10, True),
            Target("S3-like, 100 MB: ranged time / floor time", ratio(f, "ranged", "floor", "median_s"), 2, False),
        ]
    if 500 in by_size:
        checks.append(
            Target("500 MB: ranged extraction peak memory (MB)", by_size[500]["ranged"]["peak_mb"], 100, False)
        )
    checks.append(
        Target(
            "S3-like, 100 files: one by one / batch",
            ratio(s3_like["batch"], "sequential", "batch", "median_s"),
            4,
            True,
        )
    )
    return checks


def human_bytes(count: float) -> str:
    """Return a byte count in binary units, as the 64 KiB first request is stated."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count:.0f} B"


def table(network: dict[str, Any]) -> str:
    """Return the results on one network as a Markdown table."""
    rows = [
        f"**{network['name']}**",
        "",
        "| pixel data | GETs ranged / naive | bytes ranged | bytes naive | bytes ratio "
        "| ranged | naive | floor | speed-up | ranged / floor | peak ranged | peak naive |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for f in network["files"]:
        ours, naive, floor = f["ranged"], f["naive"], f["floor"]
        cells = [
            f"{f['pixel_mb']:g} MB",
            f"{ours['gets']} / {naive['gets']}",
            human_bytes(ours["bytes_read"]),
            human_bytes(naive["bytes_read"]),
            f"{ratio(f, 'naive', 'ranged', 'bytes_read'):,.0f}×",
            *(f"{reader['median_s'] * 1000:.1f} ms" for reader in (ours, naive, floor)),
            f"{ratio(f, 'naive', 'ranged', 'median_s'):.1f}×",
            f"{ratio(f, 'ranged', 'floor', 'median_s'):.2f}",
            f"{ours['peak_mb']:.1f} MB",
            f"{naive['peak_mb']:.1f} MB",
        ]
        rows.append(f"| {' | '.join(cells)} |")
    b = network["batch"]
    rows += [
        "",
        f"{b['files']} small files: batch {b['batch']['median_s'] * 1000:.0f} ms, one by one "
        f"{b['sequential']['median_s'] * 1000:.0f} ms, {ratio(b, 'sequential', 'batch', 'median_s'):.1f}× faster",
    ]
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        default=",".join(f"{s:g}" for s in DEFAULT_SIZES_MB),
        help="pixel data sizes in MB, comma-separated (default: %(default)s)",
    )
    parser.add_argument("--runs", type=int, default=5, help="timed runs per measure (default: %(default)s)")
    parser.add_argument("--s3-like-only", action="store_true", help="skip the loopback comparison")
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON results (default: bench/results/extract.json)")
    args = parser.parse_args(argv)
    sizes = [float(size) for size in args.sizes.split(",")]
    networks = [bench_network(n, sizes, args.runs) for n in ([S3_LIKE] if args.s3_like_only else [S3_LIKE, LOOPBACK])]
    checks = targets(networks)
    print(
        "\nPeak memory: tracemalloc peak of one call (Python allocations in the benchmark's process; the "
        "embedded AWS runs in another).\n"
    )
    print("\n\n".join(table(n) for n in networks))
    print()
    for check in checks:
        print(
            f"{'PASS' if check.passed else 'FAIL'}  {check.name}: {check.value:,.2f} "
            f"({'≥' if check.higher_is_better else '≤'} {check.limit:g})"
        )
    report = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "runs": args.runs,
        "networks": networks,
        "targets": [{**asdict(c), "passed": c.passed} for c in checks],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"\nResults written to {args.out}")
    return 0 if all(check.passed for check in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
