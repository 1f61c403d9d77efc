"""The bulk run: every object under a prefix of the bucket indexed from this machine.

``python -m indexer s3://data-apps-ex/<prefix>/ [--workers N] [--processes N] [--report PATH] [--on-aws]``

The listing is read a page (1,000 keys) at a time, here; the first page is indexed on a
thread of this process, the next ones, in parts of 250 keys, by one process per core
(``indexer/pages.py``). Each part's records are read in one BatchGetItem per 100 keys,
objects whose record holds their ETag are skipped unread, the others are read header-only by
a bounded pool of threads and written 25 per BatchWriteItem.
A progress bar goes to stderr; one JSON summary line to stdout (docs/indexing.md):
``{"listed", "indexed", "unchanged", "failed", "seconds", "report"}``.

Exit codes: 0 nothing failed; 1 some files failed (all others indexed; the report lists each
with its code); 2 a usage or configuration error (another bucket, a malformed prefix, no
backend); 130 interrupted (Ctrl-C: what was read is written, the summary printed, and a
re-run continues, as finished files are skipped by their ETag).

An object listed and then deleted before its header is read is not a failure: it is listed
in the report with the code ``DELETED`` and counted in no total (so ``listed`` may exceed
``indexed + unchanged + failed`` by that many).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from config import S3_BUCKET_NAME
from errors import UpstreamUnavailable
from indexer.pages import PageRunner
from managers.aws.backend import choose_backend
from managers.aws.clients import BACKGROUND_AGENT, client_config, credential_args, make_client
from managers.DynamoDBManager import DynamoDBManager
from managers.indexing import Indexer, PageResult

USAGE_ERROR = 2
INTERRUPTED = 130
DEFAULT_WORKERS = 32
MAX_WORKERS = 256
# Processes indexing pages at once: one per core (boto3's per-call work bounds one process), at most 8.
DEFAULT_PROCESSES = min(8, len(os.sched_getaffinity(0)))
MAX_PROCESSES = 64
DEFAULT_REPORT = "index-failures.jsonl"
PAGE_SIZE = 1000
# Keys a process indexes at a time: a quarter of a listing page, so a prefix of a few pages
# still keeps every process busy, and the last part of a run is short. (The first page, on a
# thread of the command, goes whole: its BatchGetItems then all run at once.)
PART_SIZE = 250

_PREFIX = re.compile(r"^s3://(?P<bucket>[^/]+)/(?P<prefix>.*)$")


class UsageError(Exception):
    """A usage or configuration error: the run exits 2 with this one-line message."""


@dataclass
class Totals:
    """The counts of the summary line, and the failures for the report."""

    listed: int = 0
    indexed: int = 0
    unchanged: int = 0
    failed: int = 0

    def add(self, page: PageResult) -> None:
        self.indexed += page.indexed
        self.unchanged += page.unchanged
        self.failed += page.failed


def parse_prefix(s3_prefix: str) -> str:
    """Return the key prefix of ``s3://<bucket>/<prefix>``; the bucket must be ``S3_BUCKET_NAME``."""
    match = _PREFIX.match(s3_prefix or "")
    if not match:
        raise UsageError(f"S3_PREFIX must look like s3://{S3_BUCKET_NAME}/<prefix>/ (got a malformed prefix)")
    if match["bucket"] != S3_BUCKET_NAME:
        raise UsageError(f"only the bucket {S3_BUCKET_NAME!r} can be indexed, not {match['bucket']!r}")
    return match["prefix"]


def connect(workers: int) -> Indexer:
    """Build the clients of the configured backend (``choose_backend``) and check it answers.

    Local: the embedded AWS of a running ``make run`` on ``LOCAL_AWS_PORT``. AWS: the
    credentials of secrets.json or boto3's chain, honouring ``AWS_ENDPOINT_URL``.
    """
    try:
        backend = choose_backend()
    except SystemExit as exc:
        raise UsageError(str(exc)) from exc
    # Marked as background work: the embedded AWS serves the API's requests first. No client-side
    # validation of parameters: this code builds every request from records (no user input), and
    # checking each attribute of 25-item batches took 7% of a run's CPU; the service still checks.
    pool = {
        "max_pool_connections": max(32, workers + 4),
        "user_agent_extra": BACKGROUND_AGENT,
        "parameter_validation": False,
    }
    config = client_config(**pool)
    s3_config = client_config(**pool, s3={"addressing_style": "path"})
    if backend.is_local:
        missing = f"no embedded AWS answers at {backend.endpoint_url}: start `make run` (same LOCAL_AWS_PORT) first"
    else:
        missing = "AWS does not answer with these credentials (secrets.json, the default chain, AWS_ENDPOINT_URL)"
    keys = credential_args(backend.credentials)
    endpoint = backend.endpoint_url
    s3 = make_client("s3", *keys, endpoint_url=endpoint, config=s3_config if endpoint else config)
    indexer = Indexer(s3, DynamoDBManager(*keys, endpoint_url=endpoint, config=config))
    try:
        indexer.ping()
    except Exception as exc:  # any failure here means no usable backend: one line, exit 2
        raise UsageError(f"{missing} ({type(exc).__name__})") from exc
    return indexer


def run(indexer: Indexer, prefix: str, workers: int, report: Path, processes: int = 1) -> tuple[dict[str, Any], int]:
    """Index everything under ``prefix``; return the summary and the exit code.

    The listing is read here; its pages are indexed by ``processes`` processes (``PageRunner``).
    """
    started = time.monotonic()
    totals = Totals()
    failures: list[tuple[str, str]] = []
    status = 0
    bar = tqdm(total=0, unit="file", file=sys.stderr, desc="indexing", mininterval=0.5, dynamic_ncols=True)

    def tick() -> None:
        bar.update(runner.done - bar.n)

    def add(results: Iterator[PageResult]) -> None:
        nonlocal failures
        for result in results:
            totals.add(result)
            failures += result.failures
        tick()

    try:
        with PageRunner(connect, workers, processes, here=indexer) as runner:
            try:
                for number, page in enumerate(indexer.list_pages(prefix, PAGE_SIZE)):
                    if runner.stopping:
                        break
                    if number == 1:
                        runner.widen()  # more than a page: worth the processes' start
                    totals.listed += len(page)
                    bar.total += len(page)
                    bar.refresh()
                    part = PART_SIZE if runner.widened else len(page)
                    for start in range(0, len(page), part):
                        runner.submit(page[start : start + part])
                        add(runner.collect(runner.ahead, tick))
                add(runner.collect(0, tick))
            except KeyboardInterrupt:
                status = INTERRUPTED
                runner.stop()
                add(runner.collect(0, tick))  # what the pages wrote before they stopped
            except UpstreamUnavailable as exc:
                # The listing kept failing after the retries: stop here; a re-run resumes.
                runner.stop(exc.message)
                add(runner.collect(0, tick))
            if runner.stopped is not None:
                # S3 or DynamoDB kept failing: a re-run resumes where this one stopped.
                bar.write(f"index: stopped: {runner.stopped}", file=sys.stderr)
                status = status or 1
    finally:
        bar.close()
    if status == 0 and totals.failed:
        status = 1
    summary = {
        "listed": totals.listed,
        "indexed": totals.indexed,
        "unchanged": totals.unchanged,
        "failed": totals.failed,
        "seconds": round(time.monotonic() - started, 2),
        "report": write_report(report, failures),
    }
    return summary, status


def write_report(path: Path, failures: list[tuple[str, str]]) -> str | None:
    """Write one JSON line per failure (key and code); return the path, or ``None`` when none."""
    if not failures:
        path.unlink(missing_ok=True)  # a stale report of an earlier run would mislead
        return None
    with path.open("w", encoding="utf-8") as report:
        for key, code in failures:
            report.write(json.dumps({"key": key, "code": code}) + "\n")
    return str(path)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m indexer", description="Index every object under an S3 prefix.")
    parser.add_argument("s3_prefix", metavar="S3_PREFIX", help=f"s3://{S3_BUCKET_NAME}/<prefix>/")
    parser.add_argument(
        "--workers", type=int, default=DEFAULT_WORKERS, help=f"header reads at once ({DEFAULT_WORKERS})"
    )
    parser.add_argument(
        "--processes",
        type=int,
        help=f"processes sharing the reads (one per core, here {DEFAULT_PROCESSES}, at most --workers)",
    )
    parser.add_argument("--report", type=Path, default=Path(DEFAULT_REPORT), help=f"failure report ({DEFAULT_REPORT})")
    parser.add_argument("--on-aws", action="store_true", help="submit the run to AWS (Step Functions) instead")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the command; return its exit code."""
    # Warnings of retried calls carry codes only, and the summary says what failed: keep stderr for the bar.
    logging.basicConfig(level=logging.ERROR, format="%(message)s")
    args = parse_args(argv)
    try:
        if not 1 <= args.workers <= MAX_WORKERS:
            raise UsageError(f"--workers must be between 1 and {MAX_WORKERS}")
        if args.processes is None:
            args.processes = min(DEFAULT_PROCESSES, args.workers)
        if not 1 <= args.processes <= min(MAX_PROCESSES, args.workers):
            raise UsageError(f"--processes must be between 1 and {MAX_PROCESSES}, and at most --workers")
        prefix = parse_prefix(args.s3_prefix)
        if args.on_aws:
            from indexer.on_aws import submit  # only this path needs the AWS submission code

            print(json.dumps(submit(prefix, os.environ.get("AWS_ENDPOINT_URL") or None)), flush=True)
            return 0
        indexer = connect(args.workers)
    except UsageError as exc:
        print(f"index: {exc}", file=sys.stderr)
        return USAGE_ERROR
    summary, status = run(indexer, prefix, args.workers, args.report, args.processes)
    print(json.dumps(summary), flush=True)
    return status
