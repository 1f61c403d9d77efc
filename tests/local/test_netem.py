"""The network emulation of the embedded AWS: its arithmetic on a fake clock, then loosely for real."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from config import S3_BUCKET_NAME
from local.netem import BANDWIDTH_ENV, CHUNK_BYTES, LATENCY_ENV, NetworkEmulator, netem_from_env
from local.server import LocalAWS


class FakeTime:
    """A clock that moves only when slept on, recording each sleep."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Body(list[bytes]):
    """A WSGI body that remembers being closed."""

    closed = False

    def close(self) -> None:
        self.closed = True


def run(emulator: NetworkEmulator) -> bytes:
    return b"".join(emulator({}, lambda status, headers: None))


def test_latency_comes_before_the_response() -> None:
    fake = FakeTime()
    calls: list[float] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        calls.append(fake.now)
        return [b"ok"]

    assert run(NetworkEmulator(app, latency_ms=20, clock=fake.clock, sleep=fake.sleep)) == b"ok"
    assert calls == [pytest.approx(0.020)]


def test_the_body_leaves_at_the_capped_rate_whole_and_closed() -> None:
    fake = FakeTime()
    data = bytes(range(256)) * 4000  # 1,024,000 bytes
    body = Body([data[:1000], data[1000:]])
    emulator = NetworkEmulator(lambda e, s: body, latency_ms=5, bandwidth_mbps=2, clock=fake.clock, sleep=fake.sleep)
    assert run(emulator) == data
    assert body.closed
    # 5 ms, then 1,024,000 bytes at 2,000,000 bytes per second.
    assert fake.now == pytest.approx(0.005 + 0.512)
    assert len(fake.sleeps) >= len(data) // CHUNK_BYTES


def test_without_a_cap_the_body_passes_through_untouched() -> None:
    body = Body([b"a", b"b"])
    assert NetworkEmulator(lambda e, s: body)({}, lambda *a: None) is body


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, None),
        ({LATENCY_ENV: "0", BANDWIDTH_ENV: ""}, None),
        ({LATENCY_ENV: "20", BANDWIDTH_ENV: "100"}, (0.020, 100_000_000)),
        ({BANDWIDTH_ENV: "12.5"}, (0.0, 12_500_000)),
    ],
)
def test_netem_from_env(environ: dict[str, str], expected: tuple[float, float] | None) -> None:
    middleware = netem_from_env(environ)
    if expected is None:
        assert middleware is None
        return
    assert middleware is not None
    emulator = middleware(lambda e, s: [])
    assert (emulator.latency, emulator.bytes_per_second) == pytest.approx(expected)


@pytest.mark.parametrize("value", ["fast", "-1", "nan", "inf"])
def test_netem_from_env_refuses_nonsense(value: str) -> None:
    with pytest.raises(SystemExit, match=LATENCY_ENV):
        netem_from_env({LATENCY_ENV: value})


@pytest.fixture(scope="module")
def slow_aws() -> Iterator[LocalAWS]:
    """An embedded AWS behind 50 ms and 10 MB/s, with nothing seeded."""
    middleware = netem_from_env({LATENCY_ENV: "50", BANDWIDTH_ENV: "10"})
    aws = LocalAWS.start(port=0, seed=False, deliver_events=False, middleware=middleware)
    try:
        yield aws
    finally:
        aws.stop()


def test_the_embedded_aws_answers_slower_behind_the_emulator(slow_aws: LocalAWS) -> None:
    s3 = slow_aws.client("s3")
    key = "netem/one-mb"
    s3.put_object(Bucket=S3_BUCKET_NAME, Key=key, Body=bytes(1_000_000))
    try:
        started = time.monotonic()
        s3.head_object(Bucket=S3_BUCKET_NAME, Key=key)
        assert time.monotonic() - started >= 0.045  # the latency, loosely
        started = time.monotonic()
        body = s3.get_object(Bucket=S3_BUCKET_NAME, Key=key)["Body"].read()
        assert len(body) == 1_000_000
        assert time.monotonic() - started >= 0.045 + 0.09  # the latency and 1 MB at 10 MB/s, loosely
    finally:
        s3.delete_object(Bucket=S3_BUCKET_NAME, Key=key)
