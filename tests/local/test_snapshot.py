"""LOCAL_AWS_DATA: the embedded AWS keeps its bucket, table and waiting events across restarts."""

from __future__ import annotations

import io
import json
import socket
import time
from pathlib import Path
from typing import Any

import boto3
import pydicom
import pytest

from config import S3_BUCKET_NAME
from local.process import EVENTS_VARIABLE, LocalAWSProcess
from local.samples import pydicom_test_file
from local.snapshot import DATA_VARIABLE, data_dir, saved
from managers.DynamoDBManager import DynamoDBManager
from metadata import s3_path_of
from seeds import seeded_s3_path
from tests.bounds import HANG_GUARD

KEY = "dicom/mine/ct.dcm"
PATH = s3_path_of(S3_BUCKET_NAME, KEY)
pytestmark = pytest.mark.slow  # each test starts the emulator's process twice


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def s3_of(aws: LocalAWSProcess) -> Any:
    keys = aws.credentials
    return boto3.client(
        "s3",
        endpoint_url=aws.endpoint_url,
        aws_access_key_id=keys.aws_access_key_id,
        aws_secret_access_key=keys.aws_secret_access_key,
        region_name="us-east-1",
    )


def dynamodb_of(aws: LocalAWSProcess) -> DynamoDBManager:
    keys = aws.credentials
    return DynamoDBManager(keys.aws_access_key_id, keys.aws_secret_access_key, endpoint_url=aws.endpoint_url)


def ct_bytes(modality: str = "CT") -> bytes:
    dataset = pydicom.dcmread(pydicom_test_file("CT_small.dcm"))
    dataset.Modality = modality
    buffer = io.BytesIO()
    dataset.save_as(buffer)
    return buffer.getvalue()


def stopped(aws: LocalAWSProcess) -> None:
    """Stop the emulator and check it exited by itself, having saved (not killed after a hang)."""
    aws.stop(HANG_GUARD)
    assert aws.exit_code == 0


def record_of(aws: LocalAWSProcess, path: str, modality: str) -> dict[str, Any] | None:
    """The record of ``path`` once it has ``modality`` (the delivery runs in the background)."""
    dynamodb = dynamodb_of(aws)
    for _ in range(300):  # bounded by tries; a loaded machine only makes it take longer
        record = dynamodb.get_record(path)
        if record is not None and record.get("Modality") == modality:
            return record
        time.sleep(0.1)
    return dynamodb.get_record(path)


def test_the_variable_names_the_directory(tmp_path: Path) -> None:
    assert data_dir({}) is None
    assert data_dir({DATA_VARIABLE: " "}) is None
    assert data_dir({DATA_VARIABLE: str(tmp_path)}) == tmp_path.resolve()


def test_a_restart_keeps_objects_records_and_deletions_and_later_writes_win(tmp_path: Path) -> None:
    aws = LocalAWSProcess(free_port(), env={DATA_VARIABLE: str(tmp_path)}).start()
    try:
        # GIVEN a file of mine indexed, a sample deleted, and the emulator stopped
        s3 = s3_of(aws)
        s3.put_object(Bucket=S3_BUCKET_NAME, Key=KEY, Body=ct_bytes(), ContentType="application/dicom")
        assert record_of(aws, PATH, "CT") is not None
        sample_key = seeded_s3_path(1).split("/", 3)[3]
        s3.delete_object(Bucket=S3_BUCKET_NAME, Key=sample_key)
        before = s3.head_object(Bucket=S3_BUCKET_NAME, Key=KEY)
        stopped(aws)
        assert saved(tmp_path) == tmp_path / "snapshot"
        # WHEN it starts again on the same directory
        aws.start()
        s3 = s3_of(aws)
        # THEN the object is the same version, its record is there, and the deleted sample
        # stays deleted (the samples are not seeded over a saved directory)
        after = s3.get_object(Bucket=S3_BUCKET_NAME, Key=KEY)
        assert after["Body"].read() == ct_bytes()
        assert (after["ETag"], after["LastModified"], after["ContentType"]) == (
            before["ETag"],
            before["LastModified"],
            "application/dicom",
        )
        assert dynamodb_of(aws).get_record(PATH) == record_of(aws, PATH, "CT")
        assert "Contents" not in s3.list_objects_v2(Bucket=S3_BUCKET_NAME, Prefix=sample_key)
        # WHEN the file is overwritten after the restart THEN the new version's event is not
        # taken for an older one (the sequencer goes on from the saved number)
        s3.put_object(Bucket=S3_BUCKET_NAME, Key=KEY, Body=ct_bytes("MR"))
        record = record_of(aws, PATH, "MR")
        assert record is not None and record["Modality"] == "MR"
        stopped(aws)
        # AND the old version's file is gone from the directory once no snapshot names it
        manifest = [json.loads(line) for line in (tmp_path / "snapshot" / "objects.jsonl").read_text().splitlines()]
        assert sorted(path.name for path in (tmp_path / "objects").iterdir()) == sorted(e["file"] for e in manifest)
    finally:
        aws.stop()


def test_events_waiting_at_the_stop_are_delivered_after_the_restart(tmp_path: Path) -> None:
    # GIVEN an emulator that delivers no events (as `make run`'s, whose delivery is apart)
    quiet = LocalAWSProcess(free_port(), env={DATA_VARIABLE: str(tmp_path), EVENTS_VARIABLE: "0"}).start()
    try:
        s3_of(quiet).put_object(Bucket=S3_BUCKET_NAME, Key=KEY, Body=ct_bytes())
        assert dynamodb_of(quiet).get_record(PATH) is None
    finally:
        stopped(quiet)
    state = json.loads((tmp_path / "snapshot" / "state.json").read_text())
    assert state["events"] >= 1
    # WHEN it comes back delivering events THEN the file put before the stop is indexed
    aws = LocalAWSProcess(quiet.port, env={DATA_VARIABLE: str(tmp_path)}).start()
    try:
        assert record_of(aws, PATH, "CT") is not None
    finally:
        stopped(aws)


def test_a_save_cut_short_leaves_the_previous_snapshot(tmp_path: Path) -> None:
    aws = LocalAWSProcess(free_port(), env={DATA_VARIABLE: str(tmp_path)}).start()
    try:
        s3_of(aws).put_object(Bucket=S3_BUCKET_NAME, Key=KEY, Body=ct_bytes())
        assert record_of(aws, PATH, "CT") is not None
    finally:
        stopped(aws)
    # GIVEN a save killed mid-way: a half-written new snapshot, the last whole one renamed
    (tmp_path / "snapshot").rename(tmp_path / "snapshot.old")
    (tmp_path / "snapshot.new").mkdir()
    (tmp_path / "snapshot.new" / "items.jsonl").write_text('{"half": ')
    assert saved(tmp_path) == tmp_path / "snapshot.old"
    # WHEN the emulator starts THEN it loads the whole one
    aws.start()
    try:
        assert dynamodb_of(aws).get_record(PATH) is not None
        assert s3_of(aws).head_object(Bucket=S3_BUCKET_NAME, Key=KEY)["ContentLength"] == len(ct_bytes())
    finally:
        stopped(aws)
    assert saved(tmp_path) == tmp_path / "snapshot"
    assert not (tmp_path / "snapshot.new").exists() and not (tmp_path / "snapshot.old").exists()
