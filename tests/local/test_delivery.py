"""The embedded AWS's event delivery: `make run`'s processes, sequenced S3 events, runners
working at once, progress lines, and a lock that serves its waiters in turn."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.sqs.models import sqs_backends

import app as app_module
from config import S3_BUCKET_NAME
from local import delivery as delivery_module
from local import moto_fixes
from local.delivery import Delivery, Queues, seeded_paths
from local.events import BATCH_SIZE, EventRunner
from local.moto_fixes import FairLock
from local.process import DELIVERY_MARKER, ROOT, LocalAWSProcess, announce
from local.samples import SampleSpec, build_file
from local.server import LocalAWS
from managers.aws.backend import PORT_VARIABLE
from managers.aws.clients import BACKGROUND_AGENT, make_client
from managers.DynamoDBManager import DynamoDBManager
from tests.bounds import HANG_GUARD
from tests.resolvers.dicomweb.test_dicomweb import wait_for


def test_make_run_starts_the_emulator_and_the_delivery_in_processes_of_their_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(PORT_VARIABLE, "0")  # free ports: the session's embedded AWS is on its own
    children = app_module.start_local_aws()
    try:
        aws, delivery = children
        pids = {child.pid for child in children if child.pid is not None}
        # Two processes besides this one (the API's), both children of it
        assert len(pids) == 2 and os.getpid() not in pids
        assert {_parent_of(pid) for pid in pids} == {os.getpid()}
        # and the samples were indexed by the delivery process before start_local_aws returned
        keys = (aws.credentials.aws_access_key_id, aws.credentials.aws_secret_access_key)
        dynamodb = DynamoDBManager(*keys, endpoint_url=aws.endpoint_url)
        assert all(dynamodb.get_record(path) is not None for path in seeded_paths())
        assert delivery.endpoint_url == aws.endpoint_url
    finally:
        for child in reversed(children):
            child.stop()


def test_a_ready_line_with_a_warning_glued_to_it_still_names_the_endpoint() -> None:
    # GIVEN the delivery's ready line with a warning from another thread written before its
    # newline (what failed a CI run: the port was read as "")
    glued = f"{DELIVERY_MARKER}http://127.0.0.1:36511/venv/pydicom/filereader.py:402: UserWarning: x\n"
    child = LocalAWSProcess(4566, module="local.delivery", marker=DELIVERY_MARKER)
    ready = threading.Event()
    # WHEN the drain reads it, after a line that only starts like one
    lines = [f"{DELIVERY_MARKER}nowhere\n", glued]
    child._drain(SimpleNamespace(stdout=iter(lines)), ready)  # type: ignore[arg-type]  # a pipe's lines
    # THEN the endpoint is the URL alone
    assert ready.is_set()
    assert (child.endpoint_url, child.port) == ("http://127.0.0.1:36511", 36511)


def test_a_ready_line_is_one_write(monkeypatch: pytest.MonkeyPatch) -> None:
    # One write is one pipe write (under PIPE_BUF), which no other thread's line can split.
    writes: list[str] = []
    out = SimpleNamespace(write=writes.append, flush=lambda: None)
    monkeypatch.setattr(sys, "stdout", out)
    announce(DELIVERY_MARKER, "http://127.0.0.1:4566", " (more)")
    assert writes == [f"{DELIVERY_MARKER}http://127.0.0.1:4566 (more)\n"]


def test_make_run_stopped_by_sigterm_stops_the_emulator_and_the_delivery(tmp_path: Path) -> None:
    # GIVEN `make run`'s process (app.py) on free ports, seeded and serving
    env = {**os.environ, PORT_VARIABLE: "0", "PORT": "0", "DICOM_META_BACKEND": "local"}
    env.pop("LOCAL_AWS_DATA", None)
    out = (tmp_path / "run.log").open("w+")
    run = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=out, stderr=out)
    children: list[int] = []
    try:
        assert wait_for(lambda: "dicom-meta is running" in (tmp_path / "run.log").read_text(), HANG_GUARD)
        children = _children_of(run.pid)
        assert len(children) == 2  # the emulator and the delivery
        # WHEN it is sent SIGTERM (a `kill`, an IDE's stop button)
        run.send_signal(signal.SIGTERM)
        run.wait(timeout=HANG_GUARD)
        # THEN its children are gone too, not left holding the emulator's port
        assert not [pid for pid in children if Path(f"/proc/{pid}").exists() and _state(pid) != "Z"]
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
        for pid in children:  # what a failure left behind (still ours: its command line says so)
            with contextlib.suppress(OSError):
                if b"local" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    os.kill(pid, signal.SIGKILL)


def _children_of(parent: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and _parent_of(int(entry.name)) == parent:
                children.append(int(entry.name))
        except OSError:
            continue  # gone meanwhile
    return children


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


def _parent_of(pid: int) -> int:
    text = Path(f"/proc/{pid}/status").read_text()
    status = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    return int(status["PPid"].strip())


def test_s3_events_are_sequenced_per_key(s3: Any, local_aws: LocalAWS) -> None:
    # GIVEN one key put twice: each event's sequencer is kept with the record it wrote
    key = f"dicom/sequenced/{uuid.uuid4().hex}.dcm"
    path = f"s3://{S3_BUCKET_NAME}/{key}"
    dynamodb = local_aws.dynamodb()
    seen = []
    for patient in ("SEQ-1", "SEQ-2"):
        s3.put_object(Bucket=S3_BUCKET_NAME, Key=key, Body=build_file(SampleSpec(patient_id=patient)))
        assert wait_for(partial(_has_patient, dynamodb, path, patient))
        item = dynamodb.client.get_item(TableName=dynamodb.table_name, Key={"FilePath": {"S": path}})["Item"]
        seen.append(item["ObjectSequencer"]["S"])
    s3.delete_object(Bucket=S3_BUCKET_NAME, Key=key)
    # THEN the later event's sequencer sorts after the earlier one's, as S3's do
    assert seen[0] < seen[1]


def _has_patient(dynamodb: DynamoDBManager, path: str, patient: str) -> bool:
    return (dynamodb.get_record(path) or {}).get("PatientID") == patient


def test_the_lock_serves_its_waiters_in_turn() -> None:
    lock = FairLock()
    order: list[int] = []
    lock.__enter__()
    threads = []
    for n in range(4):
        thread = threading.Thread(target=_take, args=(lock, order, n))
        thread.start()
        threads.append(thread)
        assert wait_for(partial(_waiting, lock, n + 1))  # each waits before the next starts
    lock.__exit__(None, None, None)
    for thread in threads:
        thread.join(timeout=10)
    assert order == [0, 1, 2, 3]


def test_a_waiting_request_goes_before_background_work_but_never_starves_it() -> None:
    lock = FairLock()
    order: list[str] = []
    lock.acquire(background=True)
    threads = []
    # Three background waiters, then six foreground ones: the foreground goes first, four at
    # a time (FOREGROUND_RUN) before one background waiter gets its turn.
    waiters = [("b", True)] * 3 + [("f", False)] * 6
    for n, (name, background) in enumerate(waiters):
        thread = threading.Thread(target=_take, args=(lock, order, f"{name}{n}", background))
        thread.start()
        threads.append(thread)
        assert wait_for(partial(_waiting, lock, n + 1))
    lock.release()
    for thread in threads:
        thread.join(timeout=10)
    assert lock.FOREGROUND_RUN == 4
    assert order == ["f3", "f4", "f5", "f6", "b0", "f7", "f8", "b1", "b2"]


def test_the_embedded_aws_knows_background_clients_by_their_user_agent(
    local_aws: LocalAWS, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What the delivery's clients send: botocore appends user_agent_extra to its User-Agent.
    sent: list[str] = []
    config = delivery_module._config()
    client = make_client("dynamodb", "local", "local", endpoint_url=local_aws.endpoint_url, config=config)
    client.meta.events.register("before-send", lambda request, **_: sent.append(request.headers["User-Agent"]))
    client.list_tables()
    agent = sent[0].decode() if isinstance(sent[0], bytes) else sent[0]
    assert BACKGROUND_AGENT in agent
    # What the emulator does with it: the lock is taken as background work.
    taken: list[bool] = []
    monkeypatch.setattr(moto_fixes._lock, "acquire", lambda background=False: taken.append(background))
    monkeypatch.setattr(moto_fixes._lock, "release", lambda: None)
    app = moto_fixes.serialize_dynamodb(lambda environ, start: [b"{}"])
    for user_agent in (agent, "Boto3/1.35 md/Botocore#1.35"):
        app({"HTTP_X_AMZ_TARGET": "DynamoDB_20120810.GetItem", "HTTP_USER_AGENT": user_agent}, None)
    assert taken == [True, False]


def _waiting(lock: FairLock, count: int) -> bool:
    return len(lock._waiters) + len(lock._background) == count


def _take(lock: FairLock, order: list[Any], n: Any, background: bool = False) -> None:
    lock.acquire(background)
    try:
        order.append(n)
    finally:
        lock.release()


def test_progress_says_how_many_events_wait(
    local_aws: LocalAWS,
    put_dicom: Callable[..., str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(delivery_module, "PROGRESS_SECONDS", 0.05)
    queues = Queues(local_aws.queue_url, local_aws.dlq_url, local_aws.index_queue_url, local_aws.index_dlq_url)
    delivery = Delivery(local_aws.endpoint_url, local_aws.credentials, queues, progress=True)
    with caplog.at_level(logging.INFO, logger="dicom_meta.delivery"):
        delivery.start()
        try:
            paths = [put_dicom(patient_id=f"PROGRESS-{n}") for n in range(20)]
            dynamodb = local_aws.dynamodb()
            assert wait_for(lambda: all(dynamodb.get_record(path) for path in paths))
            assert wait_for(lambda: any("caught up" in r.getMessage() for r in caplog.records))
        finally:
            delivery.stop()
    lines = [r.getMessage() for r in caplog.records if r.name == "dicom_meta.delivery"]
    assert any(line.startswith("indexing on arrival: ") and "waiting" in line for line in lines)


def test_a_runner_deletes_what_one_receive_handled_in_one_call(local_aws: LocalAWS) -> None:
    # GIVEN a queue with five events, the third of which its handler fails
    sqs = local_aws.client("sqs")
    url = sqs.create_queue(QueueName=f"runner-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    for n in range(5):
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"n": n}))
    handled: list[int] = []

    def lambda_handler(event: dict[str, Any], context: Any) -> None:
        if event["n"] == 2:
            raise RuntimeError("this one fails")
        handled.append(event["n"])

    calls: list[str] = []
    sqs.meta.events.register("before-call.sqs", lambda model, **_: calls.append(model.name))
    runner = EventRunner(sqs, url, url, SimpleNamespace(lambda_handler=lambda_handler))  # type: ignore[arg-type]  # a handler module's one name
    # WHEN the runner polls once
    assert runner.poll_once() == 4
    # THEN one receive, one visibility change for the failed event, one delete for the four others
    assert sorted(handled) == [0, 1, 3, 4]
    assert sorted(calls) == ["ChangeMessageVisibility", "DeleteMessageBatch", "ReceiveMessage"]
    assert [json.loads(body)["n"] for body in _waiting_messages(sqs, url)] == [2]


def test_an_index_runner_hands_a_receive_to_its_handler_as_one_event(local_aws: LocalAWS) -> None:
    # GIVEN a queue with five S3 events (a record each), and a handler that fails the third
    # only when it comes in company (as a batch fails for one record that must be retried)
    sqs = local_aws.client("sqs")
    url = sqs.create_queue(QueueName=f"together-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    for n in range(5):
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"Records": [{"n": n}]}))
    events: list[list[int]] = []

    def lambda_handler(event: dict[str, Any], context: Any) -> None:
        events.append([record["n"] for record in event["Records"]])
        if 2 in events[-1] and len(events[-1]) > 1:
            raise RuntimeError("a record to retry")

    handler = SimpleNamespace(lambda_handler=lambda_handler)
    runner = EventRunner(sqs, url, url, handler, together=True)  # type: ignore[arg-type]  # a handler module's one name
    # WHEN the runner polls: once for the five, whose handling fails, then once for the five again
    # THEN the failed batch is handed over one event at a time, then all are deleted in one call
    assert runner.poll_once() == 5
    assert events == [[0, 1, 2, 3, 4], [0], [1], [2], [3], [4]]
    assert _waiting_messages(sqs, url) == []
    # … and while events wait, a runner takes them up to its batch size (several receives of
    # ten), hands them over in one call of the handler, and deletes them ten a call
    waiting = BATCH_SIZE + 5
    for start in range(0, waiting, 10):
        entries = [{"Id": str(n), "MessageBody": json.dumps({"Records": [{"n": 100 + start + n}]})} for n in range(10)]
        sqs.send_message_batch(QueueUrl=url, Entries=entries[: waiting - start])
    events.clear()
    calls: list[str] = []
    sqs.meta.events.register("before-call.sqs", lambda model, **_: calls.append(model.name))
    assert runner.poll_once() == BATCH_SIZE
    assert events == [list(range(100, 100 + BATCH_SIZE))]
    assert calls.count("ReceiveMessage") == BATCH_SIZE // 10
    assert calls.count("DeleteMessageBatch") == BATCH_SIZE // 10
    assert len(_waiting_messages(sqs, url)) == 5


def _waiting_messages(sqs: Any, url: str) -> list[str]:
    """The bodies moto's own queue still holds (in this process; SQS's counts are cached)."""
    queue = sqs_backends[DEFAULT_ACCOUNT_ID][sqs.meta.region_name].get_queue(url.rsplit("/", 1)[1])
    return [message.body for message in queue._messages]
