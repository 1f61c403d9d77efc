"""The embedded AWS's data kept across restarts, in a directory (``LOCAL_AWS_DATA``, opt-in).

moto keeps everything in its process. With ``LOCAL_AWS_DATA=DIR`` the emulator saves, when it
stops, what dicom-meta's data is made of: the bucket's objects (bytes, ETag, metadata, time),
the table's items, the events still waiting in the four queues (at least once: an event being
handled when it stopped is delivered again) and the number the next S3 event's sequencer
gets, so that the indexer orders later events after the saved ones. When it starts with a
saved snapshot it loads that instead of seeding the samples.

Layout: ``DIR/objects/`` holds one file per object version, named by a hash of its bucket,
key, ETag, time and size, so a save writes only the versions it has not written before;
``DIR/snapshot/`` holds the manifest, the items and the rest as JSON. A save writes a new
``snapshot`` beside the old one and swaps them by renames: a save cut short (the process
killed) leaves the previous snapshot whole. What happened after the last save is lost when
the emulator is killed rather than stopped.

Runs inside the emulator's process (``python -m local``), on moto's backends directly: a
save or a load costs a pass over the data, not one request per item.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from config import AWS_REGION, DYNAMODB_TABLE_NAME, S3_BUCKET_NAME

DATA_VARIABLE = "LOCAL_AWS_DATA"
FORMAT = 1
_CHUNK = 1024 * 1024
_OBJECTS, _CURRENT, _NEW, _OLD = "objects", "snapshot", "snapshot.new", "snapshot.old"


def data_dir(env: Mapping[str, str] | None = None) -> Path | None:
    """The data directory ``LOCAL_AWS_DATA`` names, or ``None`` (the default: keep nothing)."""
    value = (os.environ if env is None else env).get(DATA_VARIABLE, "").strip()
    return Path(value).expanduser().resolve() if value else None


def saved(directory: Path) -> Path | None:
    """The complete snapshot in ``directory``, if a save ever finished there."""
    for name in (_CURRENT, _OLD):  # .old alone: a save was cut between its two renames
        if (directory / name / "state.json").is_file():
            return directory / name
    return None


def save(directory: Path, sequence: int) -> dict[str, int]:
    """Write the bucket, the table and the queues to ``directory``; return what was written."""
    (directory / _OBJECTS).mkdir(parents=True, exist_ok=True)
    new = directory / _NEW
    shutil.rmtree(new, ignore_errors=True)
    new.mkdir()
    counts = {
        "objects": _save_objects(directory / _OBJECTS, new / "objects.jsonl"),
        "items": _save_items(new / "items.jsonl"),
        "events": _save_queues(new / "queues.json"),
    }
    (new / "state.json").write_text(json.dumps({"format": FORMAT, "sequence": sequence, **counts}))
    _swap(directory)
    _collect(directory)
    return counts


def load(snapshot: Path) -> tuple[int, dict[str, int]]:
    """Put a saved snapshot into the (just created, empty) backends; return the next sequence
    number and what was loaded. Nothing it puts sends an S3 event."""
    state = json.loads((snapshot / "state.json").read_text())
    if state.get("format") != FORMAT:
        raise ValueError(f"{snapshot} was written in format {state.get('format')!r}, not {FORMAT}")
    counts = {
        "objects": _load_objects(snapshot.parent / _OBJECTS, snapshot / "objects.jsonl"),
        "items": _load_items(snapshot / "items.jsonl"),
        "events": _load_queues(snapshot / "queues.json"),
    }
    return int(state["sequence"]), counts


def _account() -> str:
    from moto.core import DEFAULT_ACCOUNT_ID  # moto: only in the emulator's process

    return str(DEFAULT_ACCOUNT_ID)


def _bucket() -> Any:
    from moto.s3.models import s3_backends

    return s3_backends[_account()]["aws"].get_bucket(S3_BUCKET_NAME)


def _table() -> Any:
    from moto.dynamodb.models import dynamodb_backends

    return dynamodb_backends[_account()][AWS_REGION].get_table(DYNAMODB_TABLE_NAME)


def _sqs() -> Any:
    from moto.sqs.models import sqs_backends

    return sqs_backends[_account()][AWS_REGION]


def _queues() -> Iterator[Any]:
    from local.delivery import INDEX_DLQ, INDEX_QUEUE, INGEST_DLQ, INGEST_QUEUE

    for name in (INGEST_QUEUE, INGEST_DLQ, INDEX_QUEUE, INDEX_DLQ):
        yield _sqs().get_queue(name)


def _save_objects(objects: Path, manifest: Path) -> int:
    from moto.s3.models import FakeKey

    count = 0
    with manifest.open("w") as out:
        for name, key in list(_bucket().keys.items()):
            if not isinstance(key, FakeKey):  # a delete marker
                continue
            entry = {
                "key": name,
                "etag": key.etag,
                "size": key.size,
                "modified": key.last_modified.isoformat(),
                "metadata": dict(key.metadata),
            }
            entry["file"] = _version_name(entry)
            _write_once(objects / entry["file"], key)
            out.write(json.dumps(entry) + "\n")
            count += 1
    return count


def _version_name(entry: dict[str, Any]) -> str:
    identity = json.dumps([S3_BUCKET_NAME, entry["key"], entry["etag"], entry["modified"], entry["size"]])
    return hashlib.sha256(identity.encode()).hexdigest()


def _write_once(path: Path, key: Any) -> None:
    """Copy an object's bytes to ``path`` unless an earlier save did (renamed in whole)."""
    if path.is_file():
        return
    partial = path.with_suffix(".partial")
    with partial.open("wb") as out, key.lock:
        buffer = key._value_buffer  # moto's own file: streamed, never read whole
        buffer.seek(0)
        shutil.copyfileobj(buffer, out, _CHUNK)
    partial.replace(path)


def _save_items(path: Path) -> int:
    count = 0
    with path.open("w") as out:
        for item in list(_table().all_items()):
            out.write(json.dumps(item.to_json()["Attributes"]) + "\n")
            count += 1
    return count


def _save_queues(path: Path) -> int:
    waiting = {queue.name: [message.body for message in list(queue._messages)] for queue in _queues()}
    path.write_text(json.dumps(waiting))
    return sum(len(bodies) for bodies in waiting.values())


def _swap(directory: Path) -> None:
    current, old = directory / _CURRENT, directory / _OLD
    shutil.rmtree(old, ignore_errors=True)
    if current.exists():
        current.rename(old)
    (directory / _NEW).rename(current)
    shutil.rmtree(old, ignore_errors=True)


def _collect(directory: Path) -> None:
    """Remove the object files no snapshot names (versions overwritten or deleted since)."""
    named = {entry["file"] for entry in _entries(directory / _CURRENT / "objects.jsonl")}
    for path in (directory / _OBJECTS).iterdir():
        if path.name not in named:
            path.unlink()


def _entries(manifest: Path) -> Iterator[dict[str, Any]]:
    with manifest.open() as lines:
        for line in lines:
            yield json.loads(line)


def _load_objects(objects: Path, manifest: Path) -> int:
    from moto.s3.models import s3_backends

    backend = s3_backends[_account()]["aws"]
    count = 0
    for entry in _entries(manifest):
        key = backend.put_object(
            S3_BUCKET_NAME, entry["key"], b"", etag=entry["etag"].strip('"'), disable_notification=True
        )
        with (objects / entry["file"]).open("rb") as source, key.lock:
            shutil.copyfileobj(source, key._value_buffer, _CHUNK)
        key.contentsize = entry["size"]
        key.set_metadata(entry["metadata"], replace=True)
        key.last_modified = datetime.datetime.fromisoformat(entry["modified"])
        count += 1
    return count


def _load_items(path: Path) -> int:
    table = _table()
    count = 0
    for attributes in _entries(path):
        table.put_item(attributes)  # moto_query's put: the partitions are kept too
        count += 1
    return count


def _load_queues(path: Path) -> int:
    backend = _sqs()
    waiting: dict[str, list[str]] = json.loads(path.read_text())
    for name, bodies in waiting.items():
        for body in bodies:
            backend.send_message(name, body)
    return sum(len(bodies) for bodies in waiting.values())
