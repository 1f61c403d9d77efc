"""Load test: concurrent clients mixing REST and GraphQL calls against the served app.

``make load`` (or ``python bench/load.py --users 50 --seconds 60``) starts the app under
gunicorn on the local backend, exactly as ``make serve`` does, on 127.0.0.1 only; stores a
record for each seeded file; runs the clients for the given time; stops the app; prints
throughput, p50, p99 and the error count. Exits 1 when any request failed.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from local import free_port  # noqa: E402  imported after the sys.path line above
from local.delivery import seeded_paths  # noqa: E402  imported after the sys.path line above
from managers.aws.backend import PORT_VARIABLE, local_aws_port  # noqa: E402
from web.auth import keys_from_environment  # noqa: E402  imported after the sys.path line above

RESULTS = ROOT / "bench" / "results"
FIELDS = "s3Path patientId studyDate modality institutionName studyDescription"
REQUEST_TIMEOUT = 30.0


@dataclass(frozen=True)
class Sample:
    """One request: what it was, how long it took, whether it got the expected answer."""

    kind: str
    seconds: float
    ok: bool
    status: int


def wait_until_ready(base: str, process: subprocess.Popen[bytes], timeout: float = 90.0) -> None:
    """Poll /ready until it answers 200; raise if the server exits or takes too long."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}")
        try:
            if requests.get(f"{base}/ready", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{base} was not ready within {timeout:.0f} s")


@contextmanager
def served(port: int, aws_port: int, workers: int, threads: int, log_path: Path) -> Iterator[str]:
    """Run ``make serve``'s gunicorn on the local backend; yield its base URL; stop it after."""
    env = {
        **os.environ,
        "PORT": str(port),
        PORT_VARIABLE: str(aws_port),
        "GUNICORN_WORKERS": str(workers),
        "GUNICORN_THREADS": str(threads),
        "DICOM_META_BACKEND": "local",
    }
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:served_app()"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            wait_until_ready(base, process)
            yield base
        finally:
            # SIGTERM: gunicorn stops its workers, then its on_exit stops the embedded AWS.
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def store_records(base: str, paths: list[str], headers: dict[str, str], timeout: float = 30.0) -> None:
    """Upload each file's metadata and wait until the Lambda has stored it, so fetches find it."""
    for path in paths:
        body = requests.get(f"{base}/dicom-metadata", params={"s3_path": path}, headers=headers, timeout=10).json()
        requests.post(f"{base}/upload-json-to-s3", json=body, headers=headers, timeout=10).raise_for_status()
    deadline = time.monotonic() + timeout
    for path in paths:
        while (
            requests.get(
                f"{base}/fetch-dicom-metadata", params={"s3_path": path}, headers=headers, timeout=10
            ).status_code
            != 200
        ):
            if time.monotonic() > deadline:
                raise RuntimeError(f"no record stored for {path}")
            time.sleep(0.1)


Call = Callable[[requests.Session, str, str], tuple[int, bool]]


def rest_extract(session: requests.Session, base: str, path: str) -> tuple[int, bool]:
    response = session.get(f"{base}/dicom-metadata", params={"s3_path": path}, timeout=REQUEST_TIMEOUT)
    return response.status_code, response.status_code == 200


def rest_fetch(session: requests.Session, base: str, path: str) -> tuple[int, bool]:
    response = session.get(f"{base}/fetch-dicom-metadata", params={"s3_path": path}, timeout=REQUEST_TIMEOUT)
    return response.status_code, response.status_code == 200


def rest_upload(session: requests.Session, base: str, path: str) -> tuple[int, bool]:
    response = session.post(
        f"{base}/upload-json-to-s3", json={"s3_path": path, "Modality": "CT"}, timeout=REQUEST_TIMEOUT
    )
    return response.status_code, response.status_code == 201


def graphql(query: str) -> Call:
    def call(session: requests.Session, base: str, path: str) -> tuple[int, bool]:
        response = session.post(
            f"{base}/graphql", json={"query": query, "variables": {"p": path}}, timeout=REQUEST_TIMEOUT
        )
        ok = response.status_code == 200 and "errors" not in response.json()
        return response.status_code, ok

    return call


# What the clients do, and how often: mostly reads, live and stored, through both APIs.
MIX: list[tuple[str, Call, int]] = [
    ("REST GET /dicom-metadata", rest_extract, 30),
    ("GraphQL dicomMetadata", graphql(f"query($p: String!) {{ dicomMetadata(s3Path: $p) {{ {FIELDS} }} }}"), 25),
    ("REST GET /fetch-dicom-metadata", rest_fetch, 20),
    ("GraphQL storedMetadata", graphql(f"query($p: String!) {{ storedMetadata(s3Path: $p) {{ {FIELDS} }} }}"), 15),
    ("REST POST /upload-json-to-s3", rest_upload, 5),
    ("GraphQL uploadJson", graphql("mutation($p: String!) { uploadJson(payload: {s3_path: $p}) { s3Path } }"), 5),
]


def client(
    base: str, paths: list[str], headers: dict[str, str], until: float, seed: int, samples: list[Sample]
) -> None:
    """One client: pick a call from the mix, time it, repeat until the deadline."""
    rng = random.Random(seed)
    names, calls, weights = zip(*MIX, strict=True)
    with requests.Session() as session:
        session.headers.update(headers)
        while time.monotonic() < until:
            index = rng.choices(range(len(MIX)), weights=weights)[0]
            started = time.perf_counter()
            try:
                status, ok = calls[index](session, base, rng.choice(paths))
            except requests.RequestException:
                status, ok = 0, False
            samples.append(Sample(names[index], time.perf_counter() - started, ok, status))


def run_load(base: str, users: int, seconds: float, headers: dict[str, str]) -> tuple[list[Sample], float]:
    """Run ``users`` clients for ``seconds``; return every sample and the wall time taken."""
    paths = seeded_paths()
    store_records(base, paths, headers)
    samples: list[Sample] = []  # list.append is atomic: the clients share it
    started = time.monotonic()
    until = started + seconds
    threads = [
        threading.Thread(target=client, args=(base, paths, headers, until, seed, samples)) for seed in range(users)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return samples, time.monotonic() - started


def percentile(sorted_seconds: list[float], fraction: float) -> float:
    """Return the nearest-rank percentile, in milliseconds."""
    if not sorted_seconds:
        return 0.0
    index = min(len(sorted_seconds) - 1, max(0, round(fraction * len(sorted_seconds)) - 1))
    return sorted_seconds[index] * 1000


def report(samples: list[Sample], wall: float) -> str:
    """Return the summary: overall, then per kind of call."""
    lines = []
    for name in ["all"] + [kind for kind, _, _ in MIX]:
        chosen = [s for s in samples if name == "all" or s.kind == name]
        seconds = sorted(s.seconds for s in chosen)
        errors = sum(not s.ok for s in chosen)
        server_errors = sum(s.status >= 500 for s in chosen)
        lines.append(
            f"{name:32} requests {len(chosen):6d}  throughput {len(chosen) / wall:7.1f}/s  "
            f"p50 {percentile(seconds, 0.50):7.1f} ms  p99 {percentile(seconds, 0.99):7.1f} ms  "
            f"errors {errors} (5xx {server_errors})"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=int(os.environ.get("LOAD_USERS", 50)))
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("LOAD_SECONDS", 60)))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", 0)) or free_port())
    aws_port = (local_aws_port() if PORT_VARIABLE in os.environ else 0) or free_port()
    parser.add_argument("--aws-port", type=int, default=aws_port)
    parser.add_argument("--workers", type=int, default=int(os.environ.get("GUNICORN_WORKERS", 2)))
    parser.add_argument("--threads", type=int, default=int(os.environ.get("GUNICORN_THREADS", 8)))
    args = parser.parse_args()
    keys = keys_from_environment()
    headers = {"Authorization": f"Bearer {keys[0]}"} if keys else {}
    log_path = RESULTS / "load-server.log"
    print(
        f"load: {args.users} clients for {args.seconds:.0f} s against gunicorn on 127.0.0.1:{args.port} "
        f"({args.workers} workers x {args.threads} threads), embedded AWS on 127.0.0.1:{args.aws_port}; "
        f"server log: {log_path.relative_to(ROOT)}",
        flush=True,
    )
    with served(args.port, args.aws_port, args.workers, args.threads, log_path) as base:
        samples, wall = run_load(base, args.users, args.seconds, headers)
    print(report(samples, wall), flush=True)
    return 1 if any(not s.ok for s in samples) else 0


if __name__ == "__main__":
    raise SystemExit(main())
