"""Indexing benchmark: `make index` over 1,000 generated files on an S3-like network.

Starts an embedded AWS (``python -m local``) with the network knobs on (20 ms before each
answer, 100 MB/s per body, ``local/netem.py``), puts 1,000 files under ``bench-index/``
(mostly small instances, a few of 10-50 MB, a few that are not DICOM; outside ``dicom/`` so
the on-arrival indexer stays out of the measure), then runs ``python -m indexer`` as a
subprocess with 1, 8 and 32 workers (records cleared between runs; its page processes one
per core, as ``make index``, never more than the workers), re-runs it over the
unchanged prefix, and measures the one-by-one client path (read via the API, upload, wait
for the record) on a sample, extrapolated to the same 1,000 files.

Prints a Markdown table, writes bench/results/index.json, exits 1 when a target is missed:
>= 100 files/s at the best worker count, re-run >= 10x faster, peak memory < 300 MB (the
command's, plus its largest page process's once per process: a bound, as they may not peak
together).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from config import S3_BUCKET_NAME  # noqa: E402
from indexer.cli import DEFAULT_PROCESSES  # noqa: E402
from local.netem import BANDWIDTH_ENV, LATENCY_ENV  # noqa: E402
from local.process import LocalAWSProcess  # noqa: E402
from local.samples import SampleSpec, build_file  # noqa: E402
from managers.aws.clients import make_client  # noqa: E402
from managers.DynamoDBManager import DynamoDBManager  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "index.json"
PREFIX = "bench-index/"
CLIENT_PREFIX = "bench-client/"
LARGE_MB = (10, 20, 30, 40, 50)
NOT_DICOM = 10
WORKER_COUNTS = (1, 8, 32)
TARGET_RATE = 100.0
TARGET_SPEEDUP = 10.0
TARGET_MEMORY_MB = 300.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def corpus(files: int, seed: int = 12) -> list[tuple[str, bytes]]:
    """Return (name, bytes): mostly small instances (8-256 KB of pixels), a few large, a few not DICOM."""
    rng = random.Random(seed)
    small = files - len(LARGE_MB) - NOT_DICOM
    out = [
        (f"small/{n:05}.dcm", build_file(SampleSpec(patient_id=f"BI-{n % 97}", pixel_bytes=rng.randint(8, 256) * 1024)))
        for n in range(small)
    ]
    out += [(f"large/{mb}mb.dcm", build_file(SampleSpec(pixel_bytes=mb * 1024 * 1024, rows=512))) for mb in LARGE_MB]
    out += [(f"other/notes-{n}.txt", f"not a DICOM file {n}\n".encode()) for n in range(NOT_DICOM)]
    return out


def put_all(s3: Any, prefix: str, files: list[tuple[str, bytes]]) -> None:
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda f: s3.put_object(Bucket=S3_BUCKET_NAME, Key=prefix + f[0], Body=f[1]), files))


def clear_records(dynamodb: DynamoDBManager, prefix: str, names: list[str]) -> None:
    """Delete the records of ``names`` so the next run indexes everything again."""
    requests = [
        {"DeleteRequest": {"Key": {"FilePath": {"S": f"s3://{S3_BUCKET_NAME}/{prefix}{name}"}}}} for name in names
    ]
    for start in range(0, len(requests), 25):
        pending: dict[str, Any] = {dynamodb.table_name: requests[start : start + 25]}
        while pending:
            pending = dynamodb.client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}


# Runs the indexer, then prints on stderr's last line its peak resident memory (VmHWM, KiB) and
# the largest of its page processes' (ru_maxrss of its children, KiB: they were spawned, not
# forked, so no parent's peak is carried into them). Not its own ru_maxrss: Linux carries the
# forking parent's peak over exec into it.
_MEASURED = """
import resource, runpy, sys
code = 0
try:
    runpy.run_module("indexer", run_name="__main__")
except SystemExit as exc:
    code = exc.code or 0
hwm = [line for line in open("/proc/self/status") if line.startswith("VmHWM")][0].split()[1]
print("VmHWM", hwm, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)
sys.exit(code)
"""


def run_indexer(port: int, workers: int) -> dict[str, Any]:
    """Run ``python -m indexer`` once; return its summary plus its wall time and peak RSS (MB)."""
    env = {**os.environ, "LOCAL_AWS_PORT": str(port), "DICOM_META_BACKEND": "local"}
    arguments = [f"s3://{S3_BUCKET_NAME}/{PREFIX}", "--workers", str(workers)]
    arguments += ["--report", str(ROOT / "bench" / "results" / "index-failures.jsonl")]
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", _MEASURED, *arguments], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    wall = time.monotonic() - started
    summary: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    own_kib, child_kib = map(int, done.stderr.strip().splitlines()[-1].split()[1:3])
    # At most: every page process at the largest one's peak, at the same time as the command's.
    peak_kib = own_kib + child_kib * processes_for(workers)
    return {**summary, "wall": round(wall, 2), "peak_mb": round(peak_kib / 1024, 1), "exit": done.returncode}


def processes_for(workers: int) -> int:
    """The page processes ``python -m indexer --workers N`` may start (from a listing's second
    page on; none with one). Their measured peak is 0 when none started."""
    processes = min(DEFAULT_PROCESSES, workers)
    return processes if processes > 1 else 0


def client_path(endpoint: str, files: list[tuple[str, bytes]], s3: Any) -> float:
    """Seconds per file of the one-by-one path: GET /dicom-metadata, POST the upload, poll the record."""
    from app import create_app
    from managers.aws.backend import LOCAL_CREDENTIALS

    put_all(s3, CLIENT_PREFIX, files)
    client = create_app({"AWS_ENDPOINT_URL": endpoint, "AWS_CREDENTIALS": LOCAL_CREDENTIALS}).test_client()
    started = time.monotonic()
    for name, _ in files:
        s3_path = f"s3://{S3_BUCKET_NAME}/{CLIENT_PREFIX}{name}"
        live = client.get("/dicom-metadata", query_string={"s3_path": s3_path})
        assert live.status_code == 200, live.json
        assert client.post("/upload-json-to-s3", json=live.json).status_code == 201
        deadline = time.monotonic() + 30
        while client.get("/fetch-dicom-metadata", query_string={"s3_path": s3_path}).status_code != 200:
            assert time.monotonic() < deadline, "the record never came"
            time.sleep(0.05)
    return (time.monotonic() - started) / len(files)


def table(results: dict[str, Any]) -> str:
    runs = results["runs"]
    best = results["best_workers"]
    lines = [
        f"Indexing {results['files']} files ({results['mb']:.0f} MB) on {results['network']}",
        "",
        "| run | workers | listed | indexed | unchanged | failed | seconds | files/s | peak MB |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for run in runs:
        lines.append(
            f"| {run['label']} | {run['workers']} | {run['listed']} | {run['indexed']} | {run['unchanged']} "
            f"| {run['failed']} | {run['seconds']} | {run['rate']:.0f} | {run['peak_mb']} |"
        )
    per_file = results["client_seconds_per_file"]
    lines += [
        f"| one-by-one client path (sample of {results['client_sample']}, x{results['files']}) | 1 | - | - | - | - "
        f"| {per_file * results['files']:.0f} (extrapolated) | {1 / per_file:.1f} | - |",
        "",
        f"best worker count: {best}; re-run {results['speedup']:.0f}x faster than the first run; "
        f"bulk {results['client_speedup']:.0f}x faster than the client path",
    ]
    return "\n".join(lines)


def check(results: dict[str, Any]) -> list[str]:
    missed = []
    if results["best_rate"] < TARGET_RATE:
        missed.append(f"files/s {results['best_rate']:.0f} < {TARGET_RATE:.0f}")
    if results["speedup"] < TARGET_SPEEDUP:
        missed.append(f"re-run speed-up {results['speedup']:.1f} < {TARGET_SPEEDUP:.0f}")
    if results["peak_mb"] >= TARGET_MEMORY_MB:
        missed.append(f"peak memory {results['peak_mb']} MB >= {TARGET_MEMORY_MB:.0f}")
    return missed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000, help="files in the corpus (default: %(default)s)")
    parser.add_argument("--client-sample", type=int, default=30, help="files through the client path (%(default)s)")
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--bandwidth-mbps", type=float, default=100.0)
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON results (default: bench/results/index.json)")
    args = parser.parse_args(argv)
    os.environ[LATENCY_ENV], os.environ[BANDWIDTH_ENV] = str(args.latency_ms), str(args.bandwidth_mbps)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    files = corpus(args.files)
    port = free_port()
    with LocalAWSProcess(port) as aws:
        s3 = make_client("s3", "local", "local", endpoint_url=aws.endpoint_url)
        dynamodb = DynamoDBManager("local", "local", endpoint_url=aws.endpoint_url)
        put_all(s3, PREFIX, files)
        runs = []
        for workers in WORKER_COUNTS:
            clear_records(dynamodb, PREFIX, [name for name, _ in files])
            runs.append({"label": "first run", "workers": workers, **run_indexer(port, workers)})
        best = max(runs, key=lambda run: run["listed"] / run["seconds"])
        runs.append({"label": "re-run, unchanged", "workers": best["workers"], **run_indexer(port, best["workers"])})
        for run in runs:
            run["rate"] = run["listed"] / run["seconds"]
        small = [f for f in files if f[0].startswith("small/")][: args.client_sample]
        per_file = client_path(aws.endpoint_url, small, s3)
    rerun = runs[-1]
    results = {
        "files": len(files),
        "mb": sum(len(data) for _, data in files) / 1e6,
        "network": f"{args.latency_ms:.0f} ms, {args.bandwidth_mbps:.0f} MB/s",
        "runs": runs,
        "best_workers": best["workers"],
        "best_rate": best["rate"],
        "speedup": best["seconds"] / rerun["seconds"],
        "peak_mb": max(run["peak_mb"] for run in runs),
        "client_sample": len(small),
        "client_seconds_per_file": per_file,
        "client_speedup": per_file * len(files) / best["seconds"],
    }
    args.out.write_text(json.dumps(results, indent=2))
    print(table(results))
    missed = check(results)
    print("targets: " + ("all met" if not missed else "MISSED: " + "; ".join(missed)))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
