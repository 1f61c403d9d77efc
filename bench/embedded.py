"""Benchmark: what the embedded AWS costs at archive size.

Run with ``make bench BENCH=embedded`` (or ``python bench/embedded.py --help``). Every phase
starts its own embedded AWS (``python -m local``) in a child process, as ``make run`` does:

1. Listings. For each size (1,000 and 10,000 instances by default; 100,000 with
   ``--sizes``, about 20 minutes more) a fresh table is
   filled the way ``bench/search.py`` fills one (its ``records``, ``load`` and
   ``load_studies``: BatchWriteItem, then the studies' and series' counts and search keys by
   the service's own ``Changes`` and ``Aggregates.settle_study``), and the API, in this
   process (Flask's test client over that table), serves the first page of each listing shape
   ``--repeats`` times: QIDO-RS studies (no filter, a PatientName prefix, a modality, a
   StudyDate range), GraphQL ``studies(first: 25)`` and REST ``/search-metadata``. Items read
   per page: ``ScannedCount`` of its Queries plus the items of its BatchGetItems and GetItems,
   from botocore's ``after-call`` events on the API's DynamoDB client (``bench/search.py``'s
   ``ReadCounter``). Targets: at the largest size each page's median within 2x of the
   smallest size's and under 300 ms.
2. ``make index``: ``--index-files`` small files put outside ``dicom/`` (no events), then
   ``python -m indexer <prefix> --workers 32`` as a subprocess (``--processes``: one per core, as
   ``make index``). Target >= 300 files/s.
3. On arrival: the embedded AWS with LOCAL_AWS_EVENTS=0 and ``python -m local.delivery``, as
   ``make run`` starts them; ``--arrive`` small files copied into ``dicom/`` by boto3 from 16
   threads, timed until their studies count every one (a BatchGetItem of the study items
   every second), then every record checked once. Target >= 100 files/s.
4. Meanwhile a QIDO-RS study page every 0.2 s through the API: p95 <= 1 s.
5. The embedded AWS's peak memory (VmHWM of ``python -m local``) after each phase, and in a
   phase of its own: ``--objects`` objects of ``--object-kb`` KiB (1 GiB of 1 MiB files by
   default) put into a fresh one. Target: it grows by less than 400 MB (objects live in files).
6. CPU per file in phases 2 and 3: the emulator's (``/proc``) and the indexing side's (the
   ``python -m indexer`` child's, or the delivery process's), so a miss says whose time it is.

Prints Markdown tables and PASS/FAIL lines, writes bench/results/embedded.json and exits 1
when a target is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app import create_app  # noqa: E402
from bench.search import EMULATOR_READ_TIMEOUT, ReadCounter, free_port, load, load_studies, records  # noqa: E402
from config import S3_BUCKET_NAME  # noqa: E402
from indexer.cli import DEFAULT_PROCESSES  # noqa: E402
from local.process import DELIVERY_MARKER, EVENTS_VARIABLE, LocalAWSProcess  # noqa: E402
from local.samples import SampleSpec, build_file  # noqa: E402
from local.server import create_table  # noqa: E402
from managers.aws.clients import client_config, make_client  # noqa: E402
from managers.bundle import Managers  # noqa: E402
from managers.DynamoDBManager import DynamoDBManager  # noqa: E402
from managers.store.study_items import STUDY_INSTANCES, study_key  # noqa: E402
from managers.store.table import PARTITION_KEY  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "embedded.json"
PAGE = 25
# Listing shape → (path, GraphQL body or None: a GET). StudyDate 2023 Q1; records() spans 2015-2024.
GRAPHQL = f"{{ studies(first: {PAGE}) {{ items {{ studyInstanceUid patientName studyDate }} nextCursor }} }}"
SHAPES: dict[str, tuple[str, dict[str, Any] | None]] = {
    "QIDO-RS studies, no filter": (f"/dicomweb/studies?limit={PAGE}", None),
    "QIDO-RS studies, PatientName=smi*": (f"/dicomweb/studies?limit={PAGE}&PatientName=smi*", None),
    "QIDO-RS studies, ModalitiesInStudy=CT": (f"/dicomweb/studies?limit={PAGE}&ModalitiesInStudy=CT", None),
    "QIDO-RS studies, StudyDate range": (f"/dicomweb/studies?limit={PAGE}&StudyDate=20230101-20230331", None),
    "GraphQL studies(first: 25)": ("/graphql", {"query": GRAPHQL}),
    "REST /search-metadata": (f"/search-metadata?limit={PAGE}", None),
}
PAGE_RATIO_TARGET = 2.0
PAGE_MS_TARGET = 300.0
ARRIVAL_TARGET = 100.0
INDEX_TARGET = 300.0
READ_P95_TARGET_MS = 1000.0
READ_EVERY = 0.2
UPLOADERS = 16
ARRIVE_PREFIX = "dicom/bench-embedded/"
INDEX_PREFIX = "bench-embedded-index/"
OBJECTS_PREFIX = "bench-embedded-objects/"
OBJECTS_GROWTH_TARGET_MB = 400.0
ARRIVAL_TIMEOUT = 1800.0  # 10,000 files at 10 files/s, with room


def cpu_seconds(pid: int | None) -> float:
    """User and system CPU a running process has used so far (``/proc/<pid>/stat``)."""
    assert pid is not None, "the process is running"
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_mb(aws: LocalAWSProcess, field: str = "VmHWM") -> float:
    """The embedded AWS process's peak resident memory (VmHWM, or another field of its status), MB."""
    assert aws.pid is not None, "the embedded AWS is running"
    for line in Path(f"/proc/{aws.pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@dataclass
class Listing:
    shape: str
    size: int
    ms: list[float] = field(default_factory=list)
    items: list[int] = field(default_factory=list)
    calls: list[int] = field(default_factory=list)
    served: int = 0

    @property
    def median_ms(self) -> float:
        return statistics.median(self.ms)


def serve_page(client: Any, path: str, body: dict[str, Any] | None) -> int:
    """Request one page; return how many entries it holds (raise unless 200)."""
    answer = client.post(path, json=body) if body is not None else client.get(path)
    assert answer.status_code == 200, (path, answer.status_code, answer.get_data(as_text=True)[:300])
    data = answer.get_json()
    if isinstance(data, list):
        return len(data)
    if "data" in data:
        assert not data.get("errors"), data["errors"]
        return len(data["data"]["studies"]["items"])
    return len(data["items"])


def bench_size(endpoint: str, size: int, repeats: int) -> list[Listing]:
    """Fill a fresh table with ``size`` records, serve every shape's first page; drop the table."""
    table = f"bench-embedded-{size}"
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
        print(f"{size:,} instances:", file=sys.stderr)
        rows = records(size)
        load(dynamodb.client, table, rows)
        load_studies(dynamodb, rows)
        del rows  # the API's process holds no archive: its collector should not walk one
        base = Managers.create(credentials, endpoint)
        managers = Managers(s3=base.s3, dynamodb=dynamodb, dicom=base.dicom)
        client = create_app({"MANAGERS": managers}).test_client()
        counter = ReadCounter(dynamodb.client)
        out = []
        for shape, (path, body) in SHAPES.items():
            result = Listing(shape, size)
            serve_page(client, path, body)  # warm: the first request builds what the app caches
            counter.take()
            for _ in range(repeats):
                started = time.perf_counter()
                result.served = serve_page(client, path, body)
                result.ms.append((time.perf_counter() - started) * 1000)
                items, calls, _ = counter.take()
                result.items.append(items)
                result.calls.append(calls)
            out.append(result)
        return out
    finally:
        dynamodb.client.delete_table(TableName=table)


def small_files(count: int, tag: str) -> list[tuple[str, bytes]]:
    """``count`` small instances (4 KiB of pixels), in studies of 20 of a few patients."""
    out = []
    for n in range(count):
        spec = SampleSpec(
            patient_id=f"EMB-{n % 37}",
            pixel_bytes=4096,
            study_instance_uid=f"2.25.77.{tag}.{n // 20 + 1}",
            series_instance_uid=f"2.25.77.{tag}.{n // 20 + 1}.1",
            series_number=1,
            instance_number=n % 20 + 1,
        )
        out.append((f"{n:06d}.dcm", build_file(spec)))
    return out


def put_all(s3: Any, prefix: str, files: list[tuple[str, bytes]]) -> float:
    """Put ``files`` under ``prefix`` from ``UPLOADERS`` threads; return the seconds it took."""
    started = time.monotonic()
    with ThreadPoolExecutor(UPLOADERS) as pool:
        list(pool.map(lambda f: s3.put_object(Bucket=S3_BUCKET_NAME, Key=prefix + f[0], Body=f[1]), files))
    return time.monotonic() - started


def count_records(dynamodb: DynamoDBManager, prefix: str, files: list[tuple[str, bytes]]) -> int:
    """How many of ``files`` under ``prefix`` have their record: BatchGetItem of their keys,
    100 at a time, as a client that knows what it copied would check (no Scan)."""
    found = 0
    keys = [{PARTITION_KEY: {"S": f"s3://{S3_BUCKET_NAME}/{prefix}{name}"}} for name, _ in files]
    for start in range(0, len(keys), 100):
        wanted: dict[str, Any] = {
            dynamodb.table_name: {
                "Keys": keys[start : start + 100],
                "ProjectionExpression": "#k",
                "ExpressionAttributeNames": {"#k": PARTITION_KEY},
            }
        }
        while wanted:
            answer = dynamodb.client.batch_get_item(RequestItems=wanted)
            found += len(answer["Responses"].get(dynamodb.table_name, []))
            wanted = answer.get("UnprocessedKeys") or {}
    return found


def counted_in_studies(dynamodb: DynamoDBManager, files: int, tag: str) -> int:
    """The instances the studies of ``small_files(files, tag)`` count: one BatchGetItem per
    100 studies (a light poll; ``count_records`` checks every record once at the end)."""
    keys = [study_key(f"2.25.77.{tag}.{n}") for n in range(1, (files + 19) // 20 + 1)]
    found = dynamodb.get_items(keys, (STUDY_INSTANCES,))
    return sum(int(item.get(STUDY_INSTANCES, {}).get("N", "0")) for item in found.values())


def bench_index(files: int, workers: int, processes: int) -> dict[str, Any]:
    """Put ``files`` without events, then time ``python -m indexer`` over them."""
    corpus = small_files(files, "9")
    with LocalAWSProcess(free_port(), env={EVENTS_VARIABLE: "0"}) as aws:
        s3 = make_client("s3", "local", "local", endpoint_url=aws.endpoint_url)
        put_all(s3, INDEX_PREFIX, corpus)
        print(
            f"make index: {files:,} files put, indexing with {workers} workers in {processes} processes",
            file=sys.stderr,
        )
        env = {**os.environ, "LOCAL_AWS_PORT": str(aws.port), "DICOM_META_BACKEND": "local"}
        arguments = [f"s3://{S3_BUCKET_NAME}/{INDEX_PREFIX}", "--workers", str(workers), "--processes", str(processes)]
        arguments += ["--report", str(ROOT / "bench" / "results" / "embedded-failures.jsonl")]
        emulator_cpu, children = cpu_seconds(aws.pid), resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "indexer", *arguments],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        wall = time.monotonic() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        indexer_cpu = after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime
        summary: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        return {
            **summary,
            "emulator_cpu_ms_per_file": 1000 * (cpu_seconds(aws.pid) - emulator_cpu) / files,
            "client_cpu_ms_per_file": 1000 * indexer_cpu / files,
            "files": files,
            "workers": workers,
            "processes": processes,
            "wall": wall,
            "rate": summary["indexed"] / summary["seconds"],
            "peak_mb": peak_mb(aws),
        }


def bench_arrival(files: int) -> dict[str, Any]:
    """The embedded AWS and its delivery as `make run` starts them; copy ``files`` into dicom/,
    time until all are indexed, and read a study page every 0.2 s meanwhile."""
    corpus = small_files(files, "8")
    port = free_port()
    with (
        LocalAWSProcess(port, env={EVENTS_VARIABLE: "0"}) as aws,
        LocalAWSProcess(port, module="local.delivery", marker=DELIVERY_MARKER) as delivery,
    ):
        credentials = aws.credentials
        # The copier is any S3 client (the AWS CLI's timeouts: botocore's 60 s defaults), not
        # one of the service's, whose 1.2 s suit S3 itself.
        s3 = make_client("s3", "local", "local", endpoint_url=aws.endpoint_url, config=client_config(read_timeout=60))
        dynamodb = DynamoDBManager("local", "local", endpoint_url=aws.endpoint_url)
        client = create_app({"AWS_ENDPOINT_URL": aws.endpoint_url, "AWS_CREDENTIALS": credentials}).test_client()
        serve_page(client, f"/dicomweb/studies?limit={PAGE}", None)
        reads: list[float] = []
        failed_reads: list[int] = []  # a page that did not answer 200 (503: the emulator too slow)
        stop = threading.Event()

        def reader() -> None:
            while not stop.wait(READ_EVERY):
                started = time.perf_counter()
                answer = client.get(f"/dicomweb/studies?limit={PAGE}")
                reads.append((time.perf_counter() - started) * 1000)
                if answer.status_code != 200:
                    failed_reads.append(answer.status_code)

        print(f"on arrival: copying {files:,} files into dicom/", file=sys.stderr)
        thread = threading.Thread(target=reader, daemon=True)
        emulator_cpu, delivery_cpu = cpu_seconds(aws.pid), cpu_seconds(delivery.pid)
        started = time.monotonic()
        thread.start()
        uploaded = put_all(s3, ARRIVE_PREFIX, corpus)
        indexed = 0
        while time.monotonic() - started < ARRIVAL_TIMEOUT:
            indexed = counted_in_studies(dynamodb, files, "8")
            print(f"\r  {indexed:,} of {files:,} indexed", end="", file=sys.stderr, flush=True)
            if indexed >= files:
                break
            time.sleep(1.0)
        seconds = time.monotonic() - started
        emulator_cpu, delivery_cpu = cpu_seconds(aws.pid) - emulator_cpu, cpu_seconds(delivery.pid) - delivery_cpu
        stop.set()
        thread.join()
        indexed = count_records(dynamodb, ARRIVE_PREFIX, corpus)  # every record there, exactly
        print(file=sys.stderr)
        ordered = sorted(reads)
        return {
            "files": files,
            "indexed": indexed,
            "upload_seconds": uploaded,
            "seconds": seconds,
            "rate": indexed / seconds,
            "reads": len(reads),
            "failed_reads": len(failed_reads),
            "read_p50_ms": statistics.median(ordered) if ordered else float("nan"),
            "read_p95_ms": ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))] if ordered else float("nan"),
            "read_max_ms": ordered[-1] if ordered else float("nan"),
            "peak_mb": peak_mb(aws),
            # The emulator's includes the copies' PUTs and the reader's pages.
            "emulator_cpu_ms_per_file": 1000 * emulator_cpu / files,
            "client_cpu_ms_per_file": 1000 * delivery_cpu / files,
        }


def bench_objects(count: int, kib: int) -> dict[str, Any]:
    """Put ``count`` objects of ``kib`` KiB outside ``dicom/`` (no events) into a fresh embedded
    AWS; return how much its memory grew (VmHWM after, against VmRSS before)."""
    body = os.urandom(kib * 1024)
    with LocalAWSProcess(free_port(), env={EVENTS_VARIABLE: "0"}) as aws:
        s3 = make_client("s3", "local", "local", endpoint_url=aws.endpoint_url)
        before = peak_mb(aws, "VmRSS")
        print(f"objects: putting {count:,} of {kib:,} KiB", file=sys.stderr)
        seconds = put_all(s3, OBJECTS_PREFIX, [(f"{n:06d}.bin", body) for n in range(count)])
        peak = peak_mb(aws)
        return {"count": count, "kib": kib, "seconds": seconds, "rss_before_mb": before, "peak_mb": peak}


def listing_table(results: list[Listing]) -> str:
    sizes = sorted({r.size for r in results})
    head = " | ".join(f"ms @{s:,} | items @{s:,}" for s in sizes)
    lines = [f"| listing (page of {PAGE}) | {head} | ratio |", "|---|" + "---:|" * (2 * len(sizes) + 1)]
    for shape in SHAPES:
        by_size = {r.size: r for r in results if r.shape == shape}
        cells = [f"{by_size[s].median_ms:,.0f} | {max(by_size[s].items)}" for s in sizes]
        ratio = by_size[sizes[-1]].median_ms / by_size[sizes[0]].median_ms
        lines.append(f"| {shape} | {' | '.join(cells)} | {ratio:.2f}× |")
    return "\n".join(lines)


def cpu_cell(phase: dict[str, Any]) -> str:
    return f"{phase['emulator_cpu_ms_per_file']:.1f} / {phase['client_cpu_ms_per_file']:.1f}"


@dataclass
class Check:
    name: str
    passed: bool
    detail: str


def checks(
    listings: list[Listing], index: dict[str, Any], arrival: dict[str, Any], objects: dict[str, Any]
) -> list[Check]:
    sizes = sorted({r.size for r in listings})
    out = []
    for shape in SHAPES:
        small = next(r for r in listings if r.shape == shape and r.size == sizes[0])
        large = next(r for r in listings if r.shape == shape and r.size == sizes[-1])
        ratio = large.median_ms / small.median_ms
        out.append(
            Check(
                f"{shape}: within {PAGE_RATIO_TARGET:.0f}x of {sizes[0]:,} and under {PAGE_MS_TARGET:.0f} ms",
                ratio <= PAGE_RATIO_TARGET and large.median_ms < PAGE_MS_TARGET,
                f"{large.median_ms:.0f} ms at {sizes[-1]:,}, {small.median_ms:.0f} ms at {sizes[0]:,} ({ratio:.2f}x)",
            )
        )
    out.append(
        Check(
            f"make index >= {INDEX_TARGET:.0f} files/s",
            index["rate"] >= INDEX_TARGET,
            f"{index['rate']:.0f} files/s",
        )
    )
    out.append(
        Check(
            f"on arrival >= {ARRIVAL_TARGET:.0f} files/s",
            arrival["indexed"] >= arrival["files"] and arrival["rate"] >= ARRIVAL_TARGET,
            f"{arrival['indexed']:,} of {arrival['files']:,} in {arrival['seconds']:.1f} s, "
            f"{arrival['rate']:.0f} files/s",
        )
    )
    out.append(
        Check(
            f"study page p95 <= {READ_P95_TARGET_MS:.0f} ms while indexing, every page answered",
            arrival["read_p95_ms"] <= READ_P95_TARGET_MS and not arrival["failed_reads"],
            f"p95 {arrival['read_p95_ms']:.0f} ms over {arrival['reads']} reads, "
            f"{arrival['failed_reads']} not answered",
        )
    )
    stored_mib = objects["count"] * objects["kib"] / 1024
    growth = objects["peak_mb"] - objects["rss_before_mb"]
    out.append(
        Check(
            f"{stored_mib:,.0f} MiB of objects grow the embedded AWS's memory by < {OBJECTS_GROWTH_TARGET_MB:.0f} MB",
            growth < OBJECTS_GROWTH_TARGET_MB,
            f"{objects['rss_before_mb']:.0f} MB before, {objects['peak_mb']:.0f} MB at most: {growth:.0f} MB",
        )
    )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000", help="instances per run, comma-separated (%(default)s)")
    parser.add_argument("--repeats", type=int, default=5, help="requests of each page, median taken (%(default)s)")
    parser.add_argument("--arrive", type=int, default=1000, help="files copied into dicom/ (default: %(default)s)")
    parser.add_argument("--index-files", type=int, default=10000, help="files for make index (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=32, help="make index workers (default: %(default)s)")
    parser.add_argument(
        "--processes", type=int, default=DEFAULT_PROCESSES, help="make index processes (default: %(default)s)"
    )
    parser.add_argument("--objects", type=int, default=1024, help="objects for the memory phase (%(default)s)")
    parser.add_argument("--object-kb", type=int, default=1024, help="KiB per object (%(default)s)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON results (default: bench/results/embedded.json)")
    args = parser.parse_args(argv)
    sizes = [int(size) for size in args.sizes.split(",")]
    args.out.parent.mkdir(parents=True, exist_ok=True)

    with LocalAWSProcess(free_port(), env={EVENTS_VARIABLE: "0"}) as aws:
        listings = [r for size in sizes for r in bench_size(aws.endpoint_url, size, args.repeats)]
        listing_peak = peak_mb(aws)
    index = bench_index(args.index_files, args.workers, args.processes)
    arrival = bench_arrival(args.arrive)
    objects = bench_objects(args.objects, args.object_kb)
    found = checks(listings, index, arrival, objects)

    print(f"\n**1. First page of each listing, median of {args.repeats} (ms) and items read (the most of any)**\n")
    print(listing_table(listings))
    print("\n**2-5. Indexing rates, reads while indexing, the embedded AWS's peak memory**\n")
    print(
        "| phase | files | seconds | files/s | CPU ms per file: emulator / indexer "
        "| reads p50 / p95 / max | embedded AWS VmHWM |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    print(f"| listings, {sizes[-1]:,} instances | - | - | - | - | - | {listing_peak:.0f} MB |")
    print(
        f"| `make index`, {index['workers']} workers, {index['processes']} processes "
        f"| {index['indexed']:,} | {index['seconds']:.1f} "
        f"| {index['rate']:.0f} | {cpu_cell(index)} | - | {index['peak_mb']:.0f} MB |"
    )
    print(
        f"| on arrival (delivery process) | {arrival['indexed']:,} | {arrival['seconds']:.1f} | {arrival['rate']:.0f} "
        f"| {cpu_cell(arrival)} "
        f"| {arrival['read_p50_ms']:.0f} / {arrival['read_p95_ms']:.0f} / {arrival['read_max_ms']:.0f} ms"
        f" ({arrival['failed_reads']} of {arrival['reads']} not 200) "
        f"| {arrival['peak_mb']:.0f} MB |"
    )
    print(
        f"| {objects['count']:,} objects of {objects['kib']:,} KiB put (no events), VmRSS before: "
        f"{objects['rss_before_mb']:.0f} MB | - | {objects['seconds']:.1f} | - | - | - | {objects['peak_mb']:.0f} MB |"
    )
    print()
    for check in found:
        print(f"{'PASS' if check.passed else 'FAIL'}  {check.name}: {check.detail}")
    report = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "page": PAGE,
        "listings": [{**r.__dict__, "median_ms": r.median_ms} for r in listings],
        "listing_peak_mb": listing_peak,
        "index": index,
        "arrival": arrival,
        "objects": objects,
        "checks": [c.__dict__ for c in found],
    }
    args.out.write_text(json.dumps(report, indent=2))
    print(f"\nResults written to {args.out}")
    return 0 if all(check.passed for check in found) else 1


if __name__ == "__main__":
    sys.exit(main())
