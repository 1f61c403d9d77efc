"""Benchmark: WADO-RS frames, rendered frames and a study's retrieve, read from the files where they lie.

Run with ``make bench BENCH=frames`` (or ``python bench/frames.py --help``). The embedded AWS
runs in a child process (``python -m local``) behind an S3-like network (20 ms before each
response, 100 MB/s per body: ``LOCAL_AWS_LATENCY_MS``, ``LOCAL_AWS_BANDWIDTH_MBPS``,
``local/netem.py``); the files are generated (``local/samples.py``), put under ``dicom/`` and
indexed on arrival by the embedded AWS's event delivery. Four cases:

1. Frame n (the middle one) of a ~500 MB native multi-frame file, its layout cached: the bytes
   the service fetched from S3 per frame (counted at its S3 client from botocore's
   ``after-call`` events and the responses' ``ContentLength``) and the median times of
   ``FrameReader.read`` and of the WADO-RS request over HTTP (the app in this process on
   werkzeug's threaded server, so its client can be counted), against the floor (one ranged
   GET of exactly the frame's bytes, same client) and the naive read (GET the whole object,
   read the frame with pydicom); runs interleaved. The same on a 512 KiB single-frame slice,
   where the emulator's reading of a whole object for any range of it does not dwarf the rest.
   Targets: both medians at most 1.2x the floor's, bytes at most the frame + 64 KiB.
2. Every frame of a series of 300 single-frame 512x512 16-bit CT slices over HTTP, 25 requests
   at once (as OHIF prefetches): frames/s, p50 and p99, with the layouts still to learn, then
   cached; and the CPU each process spent per request. The API runs in a process of its own.
3. A rendered JPEG (``frames/1/rendered``) of each of those slices, one at a time and 25 at once.
4. The API's peak memory while a ~1 GB study (4 files of 256 MB) is retrieved
   (``GET /dicomweb/studies/{study}``, streamed by the client and discarded): the API in a fresh
   process, its VmRSS sampled every 5 ms and its VmHWM read from ``/proc``. Target: less than
   50 MB above its idle VmRSS.

Prints Markdown tables, writes bench/results/frames.json, exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import requests
from boto3.s3.transfer import TransferConfig
from pydicom import dcmread
from pydicom.uid import generate_uid
from werkzeug.serving import make_server

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app import create_app  # noqa: E402  imported after the sys.path line above
from config import S3_BUCKET_NAME  # noqa: E402  imported after the sys.path line above
from local.netem import BANDWIDTH_ENV, LATENCY_ENV  # noqa: E402  imported after the sys.path line above
from local.process import LocalAWSProcess  # noqa: E402  imported after the sys.path line above
from local.samples import SampleSpec, build_dataset, encode_file, write_file  # noqa: E402  imported after sys.path
from managers.aws.backend import LOCAL_CREDENTIALS  # noqa: E402  imported after the sys.path line above
from managers.aws.clients import client_config, make_client  # noqa: E402  imported after the sys.path line above
from managers.bundle import Managers  # noqa: E402  imported after the sys.path line above
from managers.pixels.frames import Frames  # noqa: E402  imported after the sys.path line above
from resolvers.paging import new_secret  # noqa: E402  imported after the sys.path line above
from web.logs import QuietRequestHandler  # noqa: E402  imported after the sys.path line above

MB = 1_000_000
KIB = 1024
RESULTS = ROOT / "bench" / "results" / "frames.json"
SERVER_LOG = ROOT / "bench" / "results" / "frames-server.log"
API_KEY = "bench-frames-key"
HEADERS = {"Authorization": f"Bearer {API_KEY}"}
FRAME_ACCEPT = 'multipart/related; type="application/octet-stream"; transfer-syntax=*'
STUDY_ACCEPT = 'multipart/related; type="application/dicom"'
# Rows of the generated multi-frame files: 64 x 4096 16-bit frames are 512 KiB, a 512x512 slice's bytes.
MULTIFRAME_ROWS = 64
SLICE_SIDE = 512
CONCURRENCY = 25
TARGET_FLOOR_RATIO = 1.2
TARGET_SLACK_BYTES = 64 * KIB
TARGET_MEMORY_MB = 50.0
INDEX_TIMEOUT = 600.0
REQUEST_TIMEOUT = 120.0
SAMPLE_EVERY = 0.005
# Large uploads in 64 MiB parts, a few at once; no checksum trailer, so the emulator stores a plain body.
TRANSFER = TransferConfig(multipart_threshold=64 * 2**20, multipart_chunksize=64 * 2**20, max_concurrency=4)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def percentile(seconds: list[float], fraction: float) -> float:
    """Return the nearest-rank percentile of ``seconds``, in milliseconds (as bench/load.py)."""
    ordered = sorted(seconds)
    index = min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))
    return ordered[index] * 1000


def human_bytes(count: float) -> str:
    """Return a byte count in binary units."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count:.0f} B"


class GetCounter:
    """Counts an S3 client's GetObject calls and the body bytes S3 answered them with."""

    def __init__(self, client: Any) -> None:
        self.lock = threading.Lock()
        self.gets = self.bytes = 0
        client.meta.events.register("after-call.s3.GetObject", self._count)

    def _count(self, parsed: dict[str, Any], **_: Any) -> None:
        with self.lock:
            self.gets += 1
            self.bytes += int(parsed.get("ContentLength", 0))

    def take(self) -> tuple[int, int]:
        """Return the GETs and bytes counted since the last call, and start again."""
        with self.lock:
            counted, (self.gets, self.bytes) = (self.gets, self.bytes), (0, 0)
        return counted


# ---------------------------------------------------------------------------- the files


def uploader_client(endpoint: str) -> Any:
    """An S3 client for the uploads: long timeouts, no checksum trailer (moto stores them faster)."""
    return make_client(
        "s3",
        LOCAL_CREDENTIALS.aws_access_key_id,
        LOCAL_CREDENTIALS.aws_secret_access_key,
        endpoint_url=endpoint,
        config=client_config(
            read_timeout=300, request_checksum_calculation="when_required", s3={"addressing_style": "path"}
        ),
    )


def upload_large(uploader: Any, key: str, spec: SampleSpec, directory: str) -> int:
    """Write ``spec`` to a temporary file (zeros streamed, never in memory), upload it in parts, delete it."""
    path = Path(directory) / spec.file_name
    try:
        with path.open("wb") as fp:
            size = write_file(spec, fp)
        uploader.upload_file(str(path), S3_BUCKET_NAME, key, Config=TRANSFER)
    finally:
        path.unlink(missing_ok=True)
    return size


def slice_pixels(number: int, count: int, side: int = SLICE_SIDE) -> bytes:
    """Return a CT-like slice: a body ellipse with organs and a spine in noise, stored as HU + 1024."""
    rng = np.random.default_rng(number)
    y, x = np.mgrid[0:side, 0:side].astype(np.float32) / side - 0.5
    depth = number / max(count - 1, 1)
    hu = np.full((side, side), -1000.0, dtype=np.float32)
    hu[(x / 0.42) ** 2 + (y / 0.32) ** 2 < 1] = 40.0  # soft tissue
    lungs = 0.10 + 0.06 * np.sin(np.pi * depth)
    for centre in (-0.17, 0.17):
        hu[((x - centre) / lungs) ** 2 + ((y + 0.02) / (1.6 * lungs)) ** 2 < 1] = -850.0
    hu[(x**2 + (y - 0.2) ** 2) < 0.045**2] = 700.0  # spine
    hu[((x - 0.05) ** 2 + (y + 0.05) ** 2) < (0.03 + 0.02 * depth) ** 2] = 180.0  # contrast in a vessel
    hu += rng.normal(0.0, 15.0, size=hu.shape).astype(np.float32)
    return np.clip(hu + 1024.0, 0, 4095).astype("<u2").tobytes()


def slice_file(spec: SampleSpec, number: int, count: int) -> bytes:
    """Return one slice of the series as a DICOM file: real-looking pixels, a rescale and a window."""
    dataset = build_dataset(spec, pixel_data=slice_pixels(number, count))
    dataset.BitsStored, dataset.HighBit = 12, 11
    dataset.RescaleIntercept, dataset.RescaleSlope, dataset.RescaleType = -1024, 1, "HU"
    dataset.WindowCenter, dataset.WindowWidth = 40, 400
    dataset.SliceThickness, dataset.ImagePositionPatient = 1.0, [0.0, 0.0, float(number)]
    return encode_file(dataset, spec)


@dataclass
class Study:
    """A study the benchmark stored: its UIDs, its files' keys and sizes."""

    patient_id: str
    study: str
    series: str
    sops: list[str] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)

    def spec(self, number: int, **values: Any) -> SampleSpec:
        return SampleSpec(
            patient_id=self.patient_id,
            study_instance_uid=self.study,
            series_instance_uid=self.series,
            series_number=1,
            instance_number=number,
            **values,
        )

    def add(self, spec: SampleSpec, key: str, size: int) -> None:
        self.sops.append(spec.sop_instance_uid)
        self.keys.append(key)
        self.sizes.append(size)


def new_study(name: str) -> Study:
    run = uuid.uuid4().hex[:8].upper()
    return Study(patient_id=f"BENCH-{name}-{run}", study=generate_uid(), series=generate_uid())


def store_multiframe(uploader: Any, megabytes: float, directory: str) -> Study:
    """Case 1's file: one native multi-frame instance of ``megabytes`` of pixel data."""
    study = new_study("FRAME")
    spec = study.spec(1, pixel_bytes=int(megabytes * MB), rows=MULTIFRAME_ROWS, study_description="MULTIFRAME")
    key = f"dicom/bench-frames/multiframe/{spec.file_name}"
    study.add(spec, key, upload_large(uploader, key, spec, directory))
    return study


def store_series(uploader: Any, slices: int) -> Study:
    """Case 2's series: ``slices`` single-frame 512x512 slices, built and put a few at once."""
    study = new_study("SERIES")
    specs = [
        study.spec(n, rows=SLICE_SIDE, pixel_bytes=SLICE_SIDE * SLICE_SIDE * 2, study_description="CT SERIES")
        for n in range(1, slices + 1)
    ]

    def put(spec: SampleSpec) -> tuple[SampleSpec, str, int]:
        data = slice_file(spec, spec.instance_number or 1, slices)
        key = f"dicom/bench-frames/series/{spec.file_name}"
        uploader.put_object(Bucket=S3_BUCKET_NAME, Key=key, Body=data)
        return spec, key, len(data)

    with ThreadPoolExecutor(8) as pool:
        for spec, key, size in pool.map(put, specs):
            study.add(spec, key, size)
    return study


def store_large_study(uploader: Any, megabytes: float, files: int, directory: str) -> Study:
    """Case 4's study: ``files`` files of ``megabytes / files`` each, uploaded one at a time."""
    study = new_study("STUDY")
    for number in range(1, files + 1):
        spec = study.spec(number, pixel_bytes=int(megabytes * MB / files), rows=MULTIFRAME_ROWS)
        key = f"dicom/bench-frames/study/{spec.file_name}"
        study.add(spec, key, upload_large(uploader, key, spec, directory))
        log(f"   study file {number} of {files} uploaded ({human_bytes(study.sizes[-1])})")
    return study


def wait_indexed(managers: Managers, studies: list[Study], timeout: float = INDEX_TIMEOUT) -> float:
    """Wait until the index counts every file of ``studies`` (indexed on arrival); return the seconds."""
    started = time.monotonic()
    wanted = {s.study: len(s.sops) for s in studies}
    while True:
        found = managers.studies.get_studies(list(wanted))
        counted = {uid: found[uid].number_of_instances if uid in found else 0 for uid in wanted}
        if counted == wanted:
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"not indexed within {timeout:.0f} s: {counted} of {wanted}")
        time.sleep(0.5)


# ---------------------------------------------------------------------------- serving the API


@contextmanager
def served_here(managers: Managers) -> Iterator[str]:
    """The app in this process, on werkzeug's threaded server, sharing ``managers`` (and its counted client)."""
    app = create_app({"MANAGERS": managers, "API_KEYS": [API_KEY], "CURSOR_SECRET": new_secret()})
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)


# The API alone in a process: create_app on the embedded AWS at argv[1], werkzeug's threaded
# server on a free loopback port, printed on stdout.
_SERVE = """
import sys
from werkzeug.serving import make_server
from app import create_app
from managers.aws.backend import LOCAL_CREDENTIALS
from web.logs import QuietRequestHandler
app = create_app({"AWS_ENDPOINT_URL": sys.argv[1], "AWS_CREDENTIALS": LOCAL_CREDENTIALS, "API_KEYS": [sys.argv[2]]})
server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietRequestHandler)
print(server.server_port, flush=True)
server.serve_forever()
"""


@dataclass
class ApiProcess:
    pid: int
    base: str


@contextmanager
def served_apart(endpoint: str, log_file: IO[bytes]) -> Iterator[ApiProcess]:
    """The API in a child process of its own (its memory apart from this one's and the emulator's)."""
    env = {**os.environ, "DICOM_META_BACKEND": "local", "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-c", _SERVE, endpoint, API_KEY], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=log_file
    )
    try:
        assert process.stdout is not None, "started with stdout=PIPE"
        line = process.stdout.readline().decode().strip()
        if not line.isdigit():
            raise RuntimeError(f"the API did not start (see {SERVER_LOG.relative_to(ROOT)})")
        base = f"http://127.0.0.1:{line}"
        deadline = time.monotonic() + 30
        while requests.get(f"{base}/health", timeout=5).status_code != 200:
            if time.monotonic() > deadline:
                raise RuntimeError("the API never answered /health")
            time.sleep(0.1)
        yield ApiProcess(process.pid, base)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def memory_kib(pid: int) -> dict[str, int]:
    """Return VmRSS and VmHWM of process ``pid`` (KiB), from /proc/<pid>/status."""
    values = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                values[name] = int(rest.split()[0])
    return values


class RssSampler:
    """Samples a process's VmRSS every ``SAMPLE_EVERY`` seconds on a thread, keeping the largest."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_kib = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_kib = max(self.peak_kib, memory_kib(self.pid)["VmRSS"])
            self.samples += 1
            self._stop.wait(SAMPLE_EVERY)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()


def emulator_pid(aws: LocalAWSProcess) -> int:
    """The embedded AWS's process id (LocalAWSProcess keeps its Popen private; only read here)."""
    process = aws._process
    if process is None:
        raise RuntimeError("the embedded AWS is not running")
    return process.pid


def frames_url(base: str, study: Study, index: int, frames: str) -> str:
    return f"{base}/dicomweb/studies/{study.study}/series/{study.series}/instances/{study.sops[index]}/frames/{frames}"


def multipart_parts(response: requests.Response) -> list[bytes]:
    """Return the bodies of a multipart/related answer's parts."""
    boundary = response.headers["Content-Type"].split("boundary=")[1].split(";")[0].strip('"').encode()
    parts = []
    for chunk in response.content.split(b"--" + boundary)[1:]:
        if chunk.startswith(b"--"):
            break
        parts.append(chunk.split(b"\r\n\r\n", 1)[1].removesuffix(b"\r\n"))
    return parts


# ---------------------------------------------------------------------------- case 1


def interleaved(readers: dict[str, Callable[[], object]], counter: GetCounter, runs: int) -> dict[str, Any]:
    """Time ``runs`` calls of each reader, in a rotating order (none always first); count each call's GETs."""
    times: dict[str, list[float]] = {name: [] for name in readers}
    counted: dict[str, list[tuple[int, int]]] = {name: [] for name in readers}
    names = list(readers)
    counter.take()
    for run in range(runs):
        turn = run % len(names)
        for name in names[turn:] + names[:turn]:
            started = time.perf_counter()
            readers[name]()
            times[name].append(time.perf_counter() - started)
            counted[name].append(counter.take())
    return {name: measured(times[name], counted[name]) for name in readers}


def measured(times: list[float], counted: list[tuple[int, int]]) -> dict[str, Any]:
    """One reader's runs: their times and median, and the most GETs and bytes one call fetched."""
    return {
        "runs_s": times,
        "median_s": statistics.median(times),
        "gets": max(gets for gets, _ in counted),
        "bytes": max(read for _, read in counted),
    }


def frame_readers(
    managers: Managers, study: Study, number: int | None, base: str, session: requests.Session
) -> tuple[dict[str, Callable[[], object]], Frames]:
    """The ways to read frame ``number`` (``None``: the middle one) of a study's first file, and its layout.

    ``floor``: one ranged GET of the frame's bytes; ``reader``: ``FrameReader.read``, layout
    cached; ``route``: the WADO-RS request over HTTP; ``lookup``: the route's first step alone,
    the instance's record by SOPInstanceUID (one DynamoDB Query).
    """
    path = f"s3://{S3_BUCKET_NAME}/{study.keys[0]}"
    (record,) = managers.studies.instances_by_sop(study.sops[0])
    learned = managers.frames.frames(path, record.etag)  # the layout, learned once and cached
    chosen = number or (learned.count + 1) // 2
    span = learned.layout.frames[chosen - 1]
    client = managers.s3.client
    url = frames_url(base, study, 0, str(chosen))

    def floor() -> bytes:
        answer = client.get_object(Bucket=S3_BUCKET_NAME, Key=study.keys[0], Range=f"bytes={span.start}-{span.end - 1}")
        data: bytes = answer["Body"].read()
        return data

    def reader() -> bytes:
        # As the route does: the layout of the record's version (cached), then the frame.
        return managers.frames.read(path, managers.frames.frames(path, record.etag), chosen)

    def route() -> bytes:
        response = session.get(url, timeout=REQUEST_TIMEOUT)
        response.raise_for_status()
        (part,) = multipart_parts(response)
        return part

    def lookup() -> object:
        return managers.studies.instances_by_sop(study.sops[0])

    expected = floor()
    for name, read in (("reader", reader), ("route", route)):
        assert read() == expected, f"the {name} did not answer the frame's bytes"
    return {"floor": floor, "reader": reader, "route": route, "lookup": lookup}, learned


def bench_frame(
    managers: Managers, counter: GetCounter, study: Study, small: Study, base: str, runs: int, naive_runs: int
) -> dict[str, Any]:
    """Frame n of the multi-frame file, every way, against the floor and the naive read.

    The same on a single-frame slice of ``small``, the same frame size, shows the costs the
    emulator's reading of the whole 500 MB object (for any range of it) does not dwarf.
    """
    session = requests.Session()
    session.headers.update({**HEADERS, "Accept": FRAME_ACCEPT})
    readers, learned = frame_readers(managers, study, None, base, session)
    number = (learned.count + 1) // 2
    span = learned.layout.frames[number - 1]
    results = interleaved(readers, counter, runs)

    def naive() -> bytes:
        body = managers.s3.client.get_object(Bucket=S3_BUCKET_NAME, Key=study.keys[0])["Body"].read()
        dataset = dcmread(io.BytesIO(body))
        size = span.end - span.start
        frame: bytes = dataset.PixelData[(number - 1) * size : number * size]
        return frame

    log(f"   naive read ({naive_runs} runs)…")
    expected = readers["floor"]()
    counter.take()
    naive_times = []
    for _ in range(naive_runs):
        started = time.perf_counter()
        assert naive() == expected, "the naive read did not find the frame's bytes"
        naive_times.append(time.perf_counter() - started)
    gets, fetched = counter.take()
    results["naive"] = measured(naive_times, [(gets // naive_runs, fetched // naive_runs)])
    log(f"   the same on a {human_bytes(small.sizes[0])} slice…")
    slice_readers, slice_layout = frame_readers(managers, small, 1, base, session)
    first = slice_layout.layout.frames[0]
    return {
        "object_bytes": study.sizes[0],
        "frames": learned.count,
        "frame": number,
        "frame_bytes": span.end - span.start,
        "readers": results,
        "slice": {
            "object_bytes": small.sizes[0],
            "frame_bytes": first.end - first.start,
            "readers": interleaved(slice_readers, counter, runs),
        },
    }


# ---------------------------------------------------------------------------- cases 2 and 3


def fetch_all(urls: list[str], accept: str, workers: int) -> dict[str, Any]:
    """GET every URL, ``workers`` at once (a session per thread); return per-request times and totals."""
    local = threading.local()

    def get(url: str) -> tuple[float, int]:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
            session.headers.update({**HEADERS, "Accept": accept})
        started = time.perf_counter()
        response = session.get(url, timeout=REQUEST_TIMEOUT)
        body = response.content
        seconds = time.perf_counter() - started
        if response.status_code != 200:
            raise RuntimeError(f"{url} answered {response.status_code}: {body[:200]!r}")
        return seconds, len(body)

    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        answers = list(pool.map(get, urls))
    wall = time.perf_counter() - started
    seconds = [s for s, _ in answers]
    return {
        "requests": len(urls),
        "at_once": workers,
        "wall_s": wall,
        "per_second": len(urls) / wall,
        "p50_ms": percentile(seconds, 0.50),
        "p99_ms": percentile(seconds, 0.99),
        "mean_body_bytes": sum(size for _, size in answers) / len(answers),
        "seconds": seconds,
    }


def cpu_seconds(pid: int) -> float:
    """Return the CPU time (user + system) process ``pid`` has used, from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_series(api: ApiProcess, emulator_pid: int, study: Study, workers: int) -> list[dict[str, Any]]:
    """Every frame of the series, then every rendered frame, through the API in its own process.

    Each pass also says how much CPU the API, the embedded AWS and this process (the clients)
    spent per request: on 2 cores, whichever is near a core's worth bounds the rate.
    """
    frame_urls = [frames_url(api.base, study, n, "1") for n in range(len(study.sops))]
    rendered_urls = [f"{url}/rendered" for url in frame_urls]
    # Opens the API's DynamoDB connections (as any earlier request would have); layouts stay unlearned.
    requests.get(f"{api.base}/dicomweb/studies", params={"PatientID": study.patient_id}, headers=HEADERS, timeout=30)
    idle = memory_kib(api.pid)["VmRSS"] / 1024
    passes = [
        ("frames, layouts to learn", frame_urls, FRAME_ACCEPT, workers),
        ("frames, layouts cached", frame_urls, FRAME_ACCEPT, workers),
        ("rendered JPEG, one at a time", rendered_urls, "image/jpeg", 1),
        (f"rendered JPEG, {workers} at once", rendered_urls, "image/jpeg", workers),
    ]
    out = []
    processes = {"api": api.pid, "emulator": emulator_pid, "client": os.getpid()}
    for name, urls, accept, at_once in passes:
        log(f"   {name}: {len(urls)} requests, {at_once} at once…")
        before = {role: cpu_seconds(pid) for role, pid in processes.items()}
        result = {"pass": name, **fetch_all(urls, accept, at_once)}
        for role, pid in processes.items():
            result[f"{role}_cpu_ms"] = (cpu_seconds(pid) - before[role]) * 1000 / len(urls)
        # VmHWM never falls: read after each pass, it shows which pass raised the API's peak.
        result["api_hwm_mb"] = memory_kib(api.pid)["VmHWM"] / 1024
        result["api_idle_rss_mb"] = idle
        out.append(result)
    # A frame's bytes are the slice's pixels, as stored.
    first = requests.get(frame_urls[0], headers={**HEADERS, "Accept": FRAME_ACCEPT}, timeout=30)
    assert multipart_parts(first) == [slice_pixels(1, len(study.sops))], "the frame is not the slice's pixels"
    return out


# ---------------------------------------------------------------------------- case 4


def bench_study(api: ApiProcess, study: Study) -> dict[str, Any]:
    """Retrieve the whole study, streamed and discarded; the API's memory before and during."""
    session = requests.Session()
    session.headers.update(HEADERS)
    # Warm the API up as a viewer would before a download: a search, the study's metadata.
    session.get(f"{api.base}/dicomweb/studies", params={"PatientID": study.patient_id}, timeout=30).raise_for_status()
    session.get(f"{api.base}/dicomweb/studies/{study.study}/metadata", timeout=60).raise_for_status()
    time.sleep(1.0)
    idle = memory_kib(api.pid)
    received = 0
    started = time.perf_counter()
    with (
        RssSampler(api.pid) as sampler,
        session.get(
            f"{api.base}/dicomweb/studies/{study.study}", headers={"Accept": STUDY_ACCEPT}, stream=True, timeout=60
        ) as response,
    ):
        response.raise_for_status()
        for chunk in response.iter_content(chunk_size=2**20):
            received += len(chunk)
    seconds = time.perf_counter() - started
    after = memory_kib(api.pid)
    if received < sum(study.sizes):
        raise RuntimeError(f"the study's answer held {received} bytes, fewer than its files' {sum(study.sizes)}")
    # VmHWM is exact but counts the whole life; sampled VmRSS is the download's own but may miss a spike.
    peak_kib = after["VmHWM"] if after["VmHWM"] > idle["VmHWM"] else sampler.peak_kib
    return {
        "files": len(study.sizes),
        "study_bytes": sum(study.sizes),
        "received_bytes": received,
        "seconds": seconds,
        "mb_per_s": received / MB / seconds,
        "idle_rss_mb": idle["VmRSS"] / 1024,
        "idle_hwm_mb": idle["VmHWM"] / 1024,
        "sampled_peak_rss_mb": sampler.peak_kib / 1024,
        "samples": sampler.samples,
        "hwm_after_mb": after["VmHWM"] / 1024,
        "peak_mb": peak_kib / 1024,
        "above_idle_mb": (peak_kib - idle["VmRSS"]) / 1024,
    }


# ---------------------------------------------------------------------------- report


@dataclass
class Target:
    name: str
    value: float
    limit: float
    unit: str

    @property
    def passed(self) -> bool:
        return self.value <= self.limit


def targets(results: dict[str, Any]) -> list[Target]:
    frame = results["frame"]
    readers = frame["readers"]
    floor = readers["floor"]["median_s"]
    return [
        Target(
            "frame: FrameReader.read median / floor median",
            readers["reader"]["median_s"] / floor,
            TARGET_FLOOR_RATIO,
            "x",
        ),
        Target(
            "frame: WADO-RS request median / floor median",
            readers["route"]["median_s"] / floor,
            TARGET_FLOOR_RATIO,
            "x",
        ),
        Target(
            "frame: bytes fetched per frame (frame + 64 KiB)",
            max(readers["reader"]["bytes"], readers["route"]["bytes"]),
            frame["frame_bytes"] + TARGET_SLACK_BYTES,
            "B",
        ),
        Target("study retrieve: API peak above idle", results["study"]["above_idle_mb"], TARGET_MEMORY_MB, "MB"),
    ]


def tables(results: dict[str, Any]) -> str:
    """Return the results as Markdown: a table per case (2 and 3 share one)."""
    frame = results["frame"]
    readers, tiny = frame["readers"], frame["slice"]
    floor = readers["floor"]["median_s"]
    big, small = human_bytes(frame["object_bytes"]), human_bytes(tiny["object_bytes"])
    rows = [
        (big, "floor: one ranged GET of the frame (boto3)", readers["floor"], floor),
        (big, "ours: `FrameReader.read`, layout cached", readers["reader"], floor),
        (big, "ours: WADO-RS `frames/{n}` over HTTP", readers["route"], floor),
        (big, "… of which the instance lookup (one DynamoDB Query)", readers["lookup"], floor),
        (big, "naive: GET the whole object + pydicom", readers["naive"], floor),
        (small, "floor: one ranged GET of the frame (boto3)", tiny["readers"]["floor"], 0.0),
        (small, "ours: `FrameReader.read`, layout cached", tiny["readers"]["reader"], 0.0),
        (small, "ours: WADO-RS `frames/1` over HTTP", tiny["readers"]["route"], 0.0),
        (small, "… of which the instance lookup (one DynamoDB Query)", tiny["readers"]["lookup"], 0.0),
    ]
    lines = [
        f"**1. Frame {frame['frame']} of {frame['frames']} ({human_bytes(frame['frame_bytes'])}) of a {big} "
        f"native multi-frame file; the same frame size from a {small} single-frame slice**",
        "",
        "| file | read | GETs | bytes from S3 | runs | median | vs floor |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for file, label, r, base in rows:
        base = base or tiny["readers"]["floor"]["median_s"]
        lines.append(
            f"| {file} | {label} | {r['gets']} | {human_bytes(r['bytes'])} | {len(r['runs_s'])} "
            f"| {r['median_s'] * 1000:.1f} ms | {r['median_s'] / base:.2f}× |"
        )
    lines += [
        "",
        f"**2, 3. Every frame of a series of {results['slices']} slices of {SLICE_SIDE}x{SLICE_SIDE} 16-bit, "
        f"over HTTP (the API in its own process, idle VmRSS {results['series'][0]['api_idle_rss_mb']:.0f} MB)**",
        "",
        "| requests | at once | count | frames/s | p50 | p99 | body | CPU/request: API, embedded AWS, clients "
        "| API VmHWM after |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in results["series"]:
        cpu = f"{s['api_cpu_ms']:.1f}, {s['emulator_cpu_ms']:.1f}, {s['client_cpu_ms']:.1f} ms"
        lines.append(
            f"| {s['pass']} | {s['at_once']} | {s['requests']} | {s['per_second']:.0f} | {s['p50_ms']:.1f} ms "
            f"| {s['p99_ms']:.1f} ms | {human_bytes(s['mean_body_bytes'])} | {cpu} | {s['api_hwm_mb']:.0f} MB |"
        )
    study = results["study"]
    lines += [
        "",
        f"**4. Retrieve of a {human_bytes(study['study_bytes'])} study ({study['files']} files), streamed**",
        "",
        "| seconds | MB/s | API idle VmRSS | API peak | above idle |",
        "|---:|---:|---:|---:|---:|",
        f"| {study['seconds']:.1f} | {study['mb_per_s']:.0f} | {study['idle_rss_mb']:.1f} MB "
        f"| {study['peak_mb']:.1f} MB | {study['above_idle_mb']:.1f} MB |",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--frame-file-mb", type=float, default=500, help="case 1's file, MB of pixel data (default: %(default)g)"
    )
    parser.add_argument("--runs", type=int, default=40, help="case 1's timed runs per reader (default: %(default)s)")
    parser.add_argument("--naive-runs", type=int, default=3, help="case 1's whole-object reads (default: %(default)s)")
    parser.add_argument("--series", type=int, default=300, help="case 2's slices in one series (default: %(default)s)")
    parser.add_argument(
        "--at-once", type=int, default=CONCURRENCY, help="requests at once in cases 2, 3 (default: %(default)s)"
    )
    parser.add_argument("--study-mb", type=float, default=1024, help="case 4's study, MB (default: %(default)g)")
    parser.add_argument("--study-files", type=int, default=4, help="case 4's files (default: %(default)s)")
    parser.add_argument(
        "--latency-ms", type=float, default=20.0, help="ms before each embedded AWS answer (default: %(default)g)"
    )
    parser.add_argument(
        "--bandwidth-mbps", type=float, default=100.0, help="MB/s per answer body, 0: no cap (default: %(default)g)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON results (default: bench/results/frames.json)")
    args = parser.parse_args(argv)
    network = {LATENCY_ENV: str(args.latency_ms), BANDWIDTH_ENV: str(args.bandwidth_mbps)}
    for directory in (args.out.parent, SERVER_LOG.parent):
        directory.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "network": f"{args.latency_ms:g} ms, {args.bandwidth_mbps:g} MB/s",
        "slices": args.series,
    }
    with (
        LocalAWSProcess(0, env=network) as aws,
        tempfile.TemporaryDirectory(prefix="bench-frames-") as directory,
        SERVER_LOG.open("wb") as server_log,
    ):
        log(f"embedded AWS at {aws.endpoint_url} ({results['network']}); uploading…")
        uploader = uploader_client(aws.endpoint_url)
        started = time.monotonic()
        multiframe = store_multiframe(uploader, args.frame_file_mb, directory)
        log(f"   multi-frame file uploaded ({human_bytes(multiframe.sizes[0])})")
        series = store_series(uploader, args.series)
        log(f"   {args.series} slices uploaded")
        large = store_large_study(uploader, args.study_mb, args.study_files, directory)
        managers = Managers.create(LOCAL_CREDENTIALS, aws.endpoint_url)
        indexed = wait_indexed(managers, [multiframe, series, large])
        log(f"   uploaded and indexed in {time.monotonic() - started:.0f} s (the last {indexed:.0f} s waiting)")

        log("1. frame of the multi-frame file…")
        counter = GetCounter(managers.s3.client)
        with served_here(managers) as base:
            results["frame"] = bench_frame(managers, counter, multiframe, series, base, args.runs, args.naive_runs)
        log("2, 3. the series, over HTTP (API in its own process)…")
        with served_apart(aws.endpoint_url, server_log) as api:
            results["series"] = bench_series(api, emulator_pid(aws), series, args.at_once)
        log("4. the study's retrieve (API in a fresh process)…")
        with served_apart(aws.endpoint_url, server_log) as api:
            results["study"] = bench_study(api, large)
        managers.pool.shutdown()
    checks = targets(results)
    print(f"\nEmbedded AWS behind {results['network']} (local/netem.py); medians and nearest-rank p50/p99.\n")
    print(tables(results))
    print()
    for check in checks:
        shown = f"{check.value:,.2f} {check.unit} (≤ {check.limit:,.2f})" if check.unit != "B" else ""
        if check.unit == "B":
            shown = f"{human_bytes(check.value)} (≤ {human_bytes(check.limit)})"
        print(f"{'PASS' if check.passed else 'FAIL'}  {check.name}: {shown}")
    results["targets"] = [{**asdict(c), "passed": c.passed} for c in checks]
    args.out.write_text(json.dumps(results, indent=2))
    print(f"\nResults written to {args.out}")
    return 0 if all(check.passed for check in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
