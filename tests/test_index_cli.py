"""``python -m indexer`` run as a subprocess against an embedded AWS in its own process."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from errors import UpstreamUnavailable
from indexer import cli
from indexer.pages import BROKEN
from local.process import ROOT, LocalAWSProcess
from local.samples import SampleSpec, build_file
from managers.aws.clients import make_client
from managers.DynamoDBManager import DynamoDBManager
from managers.indexing import Indexer, Listed, PageResult
from managers.store.study_items import STUDY_INSTANCES, study_key

BUCKET = "data-apps-ex"
PREFIX = "archive/cli/"
SUMMARY_KEYS = ["listed", "indexed", "unchanged", "failed", "seconds", "report"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def aws() -> Iterator[LocalAWSProcess]:
    with LocalAWSProcess(free_port()) as process:
        s3 = make_client("s3", "local", "local", endpoint_url=process.endpoint_url)
        for n in range(30):
            s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}{n:02}.dcm", Body=build_file(SampleSpec(patient_id=f"CLI-{n}")))
        s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}README.txt", Body=b"not a DICOM file")
        yield process


def index(port: int, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LOCAL_AWS_PORT": str(port), "DICOM_META_BACKEND": "local"}
    return subprocess.run(
        [sys.executable, "-m", "indexer", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def summary_of(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, result.stdout
    summary: dict[str, Any] = json.loads(lines[0])
    assert list(summary) == SUMMARY_KEYS
    return summary


def test_a_run_then_a_rerun(aws: LocalAWSProcess, tmp_path: Path) -> None:
    report = tmp_path / "failures.jsonl"
    # WHEN the prefix is indexed
    first = index(aws.port, f"s3://{BUCKET}/{PREFIX}", "--workers", "4", "--processes", "2", "--report", str(report))
    # THEN every DICOM file is indexed, the README is reported, and the exit code says so
    assert first.returncode == 1, first.stderr
    summary = summary_of(first)
    assert {k: summary[k] for k in ("listed", "indexed", "unchanged", "failed")} == {
        "listed": 31,
        "indexed": 30,
        "unchanged": 0,
        "failed": 1,
    }
    assert summary["report"] == str(report)
    assert [json.loads(line) for line in report.read_text().splitlines()] == [
        {"key": f"{PREFIX}README.txt", "code": "NOT_DICOM"}
    ]
    assert "file" in first.stderr  # the progress bar
    dynamodb = DynamoDBManager("local", "local", endpoint_url=aws.endpoint_url)
    assert (dynamodb.get_record(f"s3://{BUCKET}/{PREFIX}07.dcm") or {})["PatientID"] == "CLI-7"
    # WHEN it runs again over the unchanged prefix: nothing is read again
    again = summary_of(index(aws.port, f"s3://{BUCKET}/{PREFIX}", "--report", str(report)))
    assert {k: again[k] for k in ("listed", "indexed", "unchanged", "failed")} == {
        "listed": 31,
        "indexed": 0,
        "unchanged": 30,
        "failed": 1,
    }


def test_pages_shared_by_processes_are_all_counted_once(
    aws: LocalAWSProcess, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # GIVEN 23 files of one study under a prefix of their own, listed 5 to a page (5 pages),
    # each page indexed in parts of 3 and 2
    s3 = make_client("s3", "local", "local", endpoint_url=aws.endpoint_url)
    spec = SampleSpec(patient_id="PAGES", study_instance_uid="2.25.4242", series_instance_uid="2.25.4242.1")
    for n in range(23):
        s3.put_object(Bucket=BUCKET, Key=f"pages/{n:02}.dcm", Body=build_file(spec))
    monkeypatch.setattr(cli, "PAGE_SIZE", 5)
    monkeypatch.setattr(cli, "PART_SIZE", 3)
    monkeypatch.setenv("LOCAL_AWS_PORT", str(aws.port))
    monkeypatch.setenv("DICOM_META_BACKEND", "local")
    # WHEN three processes index the pages (the listing stays in this one)
    summary, status = cli.run(cli.connect(6), "pages/", 6, tmp_path / "r.jsonl", processes=3)
    # THEN every file is indexed once, and the study's counters add up across the processes
    assert status == 0
    assert {k: summary[k] for k in ("listed", "indexed", "unchanged", "failed")} == {
        "listed": 23,
        "indexed": 23,
        "unchanged": 0,
        "failed": 0,
    }
    dynamodb = DynamoDBManager("local", "local", endpoint_url=aws.endpoint_url)
    study = dynamodb.get_item(study_key("2.25.4242")) or {}
    assert study[STUDY_INSTANCES] == {"N": "23"}
    # WHEN run again: every page is found unchanged, in any process
    again, _ = cli.run(cli.connect(6), "pages/", 6, tmp_path / "r.jsonl", processes=3)
    assert (again["indexed"], again["unchanged"]) == (0, 23)


def test_ctrl_c_while_processes_index_keeps_what_they_wrote(
    aws: LocalAWSProcess, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # GIVEN 23 files listed 5 to a page, the pages after the first on two processes
    s3 = make_client("s3", "local", "local", endpoint_url=aws.endpoint_url)
    for n in range(23):
        s3.put_object(Bucket=BUCKET, Key=f"stop/{n:02}.dcm", Body=build_file(SampleSpec(patient_id=f"STOP-{n}")))
    monkeypatch.setattr(cli, "PAGE_SIZE", 5)
    monkeypatch.setenv("LOCAL_AWS_PORT", str(aws.port))
    monkeypatch.setenv("DICOM_META_BACKEND", "local")
    listing = cli.connect(4)
    pages = listing.list_pages

    def interrupted(prefix: str, size: int) -> Iterator[list[Listed]]:
        for number, page in enumerate(pages(prefix, size)):
            if number == 3:
                raise KeyboardInterrupt  # Ctrl-C while the listing goes on
            yield page

    monkeypatch.setattr(listing, "list_pages", interrupted)
    # WHEN Ctrl-C comes after three pages were handed out
    first, status = cli.run(listing, "stop/", 4, tmp_path / "r.jsonl", processes=2)
    # THEN the run exits 130, having counted what its pages wrote
    assert status == 130
    assert first["listed"] == 15 and first["indexed"] <= 15
    # … and a re-run finds those unchanged and indexes the rest
    again, status = cli.run(cli.connect(4), "stop/", 4, tmp_path / "r.jsonl", processes=2)
    assert status == 0
    assert (again["unchanged"], again["indexed"]) == (first["indexed"], 23 - first["indexed"])


def test_a_page_that_cannot_write_stops_the_run_and_keeps_its_count(
    aws: LocalAWSProcess, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN DynamoDB failing after each page's first file (injected: the page's own retries are
    # tested in test_indexer), 5 files a page, the pages in a thread of this process
    def first_then_failing(self: Indexer, listed: list[Listed], pool: Any, **kwargs: Any) -> PageResult:
        result: PageResult = kwargs["result"]
        result.indexed += 1
        kwargs["on_done"](1)
        raise UpstreamUnavailable("DynamoDB kept throttling")

    monkeypatch.setattr(Indexer, "index_page", first_then_failing)
    monkeypatch.setattr(cli, "PAGE_SIZE", 5)
    monkeypatch.setenv("LOCAL_AWS_PORT", str(aws.port))
    monkeypatch.setenv("DICOM_META_BACKEND", "local")
    # WHEN the prefix (31 files, 7 pages) is indexed
    summary, status = cli.run(cli.connect(2), PREFIX, 2, tmp_path / "r.jsonl", processes=1)
    # THEN the run stops with exit 1 and says why, counting what the pages that ran wrote
    assert status == 1
    assert "index: stopped: DynamoDB kept throttling" in capsys.readouterr().err
    # (at most the pages already running or queued when the first failure came in: ahead + 1)
    assert 1 <= summary["indexed"] <= 3 and summary["listed"] <= 15  # the listing stopped too


def test_a_process_that_cannot_start_stops_the_run(
    aws: LocalAWSProcess, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN pages of 5, the first indexed here, the others by processes that find no backend
    monkeypatch.setattr(cli, "PAGE_SIZE", 5)
    monkeypatch.setenv("LOCAL_AWS_PORT", str(aws.port))
    monkeypatch.setenv("DICOM_META_BACKEND", "local")
    indexer = cli.connect(2)
    monkeypatch.setenv("LOCAL_AWS_PORT", str(free_port()))  # what the spawned processes will see
    # WHEN the prefix (31 files, 7 pages) is indexed
    summary, status = cli.run(indexer, PREFIX, 2, tmp_path / "r.jsonl", processes=2)
    # THEN the run stops with exit 1 and says why, after the first page at most
    assert status == 1
    assert f"index: stopped: {BROKEN}" in capsys.readouterr().err
    assert summary["indexed"] + summary["unchanged"] <= 5


def test_a_clean_prefix_exits_0_without_a_report(aws: LocalAWSProcess, tmp_path: Path) -> None:
    result = index(aws.port, f"s3://{BUCKET}/{PREFIX}0", "--report", str(tmp_path / "r.jsonl"))
    assert result.returncode == 0, result.stderr
    summary = summary_of(result)
    assert summary["listed"] == 10 and summary["failed"] == 0 and summary["report"] is None
    assert not (tmp_path / "r.jsonl").exists()


@pytest.mark.parametrize(
    ("prefix", "message"),
    [
        ("s3://another-bucket/dicom/", "only the bucket 'data-apps-ex'"),
        ("data-apps-ex/dicom/", "S3_PREFIX must look like s3://data-apps-ex/<prefix>/"),
        ("", "S3_PREFIX must look like"),
    ],
)
def test_usage_errors_exit_2_with_one_line(aws: LocalAWSProcess, prefix: str, message: str) -> None:
    result = index(aws.port, prefix)
    assert result.returncode == 2
    assert result.stdout == ""
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_no_running_backend_exits_2(tmp_path: Path) -> None:
    result = index(free_port(), f"s3://{BUCKET}/dicom/")
    assert result.returncode == 2
    assert "no embedded AWS answers at http://127.0.0.1:" in result.stderr
    assert "make run" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def started(progress: str) -> bool:
    """Tell whether the progress bar shows at least 5 files done (of 120)."""
    done = [int(count) for count in re.findall(r"(\d+)/120", progress)]
    return bool(done) and max(done) >= 5


@pytest.mark.slow
def test_ctrl_c_then_a_rerun_continues(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # GIVEN a slow network (20 ms per call), so that one worker takes a few seconds
    monkeypatch.setenv("LOCAL_AWS_LATENCY_MS", "20")
    with LocalAWSProcess(free_port()) as slow:
        s3 = make_client("s3", "local", "local", endpoint_url=slow.endpoint_url)
        data = build_file(SampleSpec())
        for n in range(120):
            s3.put_object(Bucket=BUCKET, Key=f"slow/{n:03}.dcm", Body=data)
        env = {**os.environ, "LOCAL_AWS_PORT": str(slow.port), "DICOM_META_BACKEND": "local"}
        command = [sys.executable, "-m", "indexer", f"s3://{BUCKET}/slow/", "--workers", "1"]
        command += ["--report", str(tmp_path / "r.jsonl")]
        # WHEN it is interrupted mid-run (Ctrl-C)
        # A run started in the background (nohup, `&` without job control) ignores SIGINT, and an
        # ignored signal stays ignored in children: give the CLI Ctrl-C as a terminal would.
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        deadline = time.monotonic() + 30
        assert process.stderr is not None
        progress = ""
        # Interrupt once a few files are done: a fixed sleep raced the whole run on a busy machine.
        while not started(progress) and time.monotonic() < deadline:
            progress += process.stderr.read(16)
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=60)
        # THEN it says what it did and exits 130
        assert process.returncode == 130
        interrupted = json.loads(out.strip().splitlines()[-1])
        assert 0 < interrupted["indexed"] < 120
        # … and a re-run skips what was written and indexes the rest
        again = index(slow.port, f"s3://{BUCKET}/slow/", "--report", str(tmp_path / "r.jsonl"))
        assert again.returncode == 0
        summary = summary_of(again)
        assert summary["unchanged"] == interrupted["indexed"]
        assert summary["indexed"] == 120 - interrupted["indexed"]
