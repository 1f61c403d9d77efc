"""Fuzzing the header reader with mutated real files: pydicom's bundled ones, marked, then broken.

Each seed file gets recognisable patient values (markers), is re-encoded, and is then mutated
byte-wise (flips, inserts, deletions, truncation, duplicated spans) and structurally (a
length, a VR, a tag, the transfer syntax or the DICM prefix rewritten in place). Every case is
read by ``read_header`` + ``fields_of`` + ``json_model``: each must answer or raise NotDicom
(anything else would be a 500) within the header's bounds of reads, bytes and inflation (what
the second a case was once allowed stood for), and no marker may reach a log. A sample also
goes through ``/dicom-metadata`` on the embedded AWS: never a 5xx.

``make test`` runs ``FUZZ_DICOM_CASES`` (300) with a fixed seed; ``make fuzz`` runs thousands
with a new seed each time (``FUZZ_RANDOM``), and prints the seed so a failure can be replayed
(``FUZZ_DICOM_SEED``).
"""

from __future__ import annotations

import io
import logging
import os
import random
import struct
from collections import Counter
from collections.abc import Callable, Iterator

import pydicom.data
import pytest
from flask.testing import FlaskClient
from pydicom import dcmread
from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRBigEndian, ImplicitVRLittleEndian

from errors import NotDicom
from managers.dicom.bounded import MAX_HEADER_BYTES, MAX_HEADER_READS, MAX_INFLATED_BYTES, InflatingReader
from managers.dicom.header import fields_of, read_header
from managers.dicom.json_model import json_model
from tests.bounds import CountingStream, count_inflation, inflated

CASES = int(os.environ.get("FUZZ_DICOM_CASES", "300"))
SEED = int(
    os.environ.get(
        "FUZZ_DICOM_SEED", str(random.SystemRandom().randrange(2**32)) if os.environ.get("FUZZ_RANDOM") else "1107"
    )
)
# One case in this many also goes through the HTTP API (S3 put + GET): slower, and the same reader.
HTTP_EVERY = 10

MARKERS = {
    "PatientID": "FZMARK-PID-4411",
    "PatientName": "Fuzzmark^Perpetua",
    "InstitutionName": "FZMARK INFIRMARY",
    "StudyDescription": "FZMARK SECRET STUDY",
    "ReferringPhysicianName": "Fuzzmark^Doctor",
}
SEEDS = (
    "CT_small.dcm",
    "MR_small.dcm",
    "rtplan.dcm",
    "waveform_ecg.dcm",
    "image_dfl.dcm",
    "MR_small_bigendian.dcm",
    "MR_small_implicit.dcm",
    "nested_priv_SQ.dcm",
    "UN_sequence.dcm",
    "test-SR.dcm",
    "reportsi.dcm",
    "rtstruct.dcm",
)
_BOUNDARY_LENGTHS = (0, 1, 0xFF, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFF0, 0xFFFFFFFE, 0xFFFFFFFF)
_VRS = (b"FD", b"UL", b"SQ", b"UN", b"UT", b"OB", b"ZZ", b"\x00\x00", b"LO", b"AT", b"PN")
_SYNTAXES = (ExplicitVRBigEndian, ImplicitVRLittleEndian, DeflatedExplicitVRLittleEndian, "1.2.3.999")


def marked(name: str) -> bytes:
    """A bundled file with the markers as its patient values, re-encoded as it was."""
    ds = dcmread(str(pydicom.data.get_testdata_file(name, download=False)), force=True)
    for keyword, value in MARKERS.items():
        setattr(ds, keyword, value)
    buffer = io.BytesIO()
    ds.save_as(buffer)
    return buffer.getvalue()


def element_offsets(data: bytes) -> list[int]:
    """Offsets of the top-level elements of the dataset (where structural mutations aim)."""
    try:
        ds = dcmread(io.BytesIO(data), stop_before_pixels=True, defer_size=256)
    except Exception:  # noqa: BLE001 - a seed pydicom cannot walk just gets byte-wise mutations
        return []
    offsets = []
    for tag in sorted(ds.keys()):
        raw = ds.get_item(tag, keep_deferred=True)
        tell = getattr(raw, "value_tell", None)
        if tell:
            offsets.append(tell)
    return offsets


def mutate(data: bytes, offsets: list[int], rng: random.Random) -> tuple[str, bytes]:
    """Return one mutation of ``data``: its kind and the mutated bytes."""
    buf = bytearray(data)
    kind = rng.choice(["flip", "insert", "delete", "truncate", "duplicate", "length", "vr", "tag", "syntax", "prefix"])
    at = rng.randrange(len(buf))
    if kind == "flip":
        for _ in range(rng.randint(1, 16)):
            buf[rng.randrange(len(buf))] = rng.randrange(256)
    elif kind == "insert":
        buf[at:at] = rng.randbytes(rng.randint(1, 64))
    elif kind == "delete":
        del buf[at : at + rng.randint(1, 64)]
    elif kind == "truncate":
        del buf[at:]
    elif kind == "duplicate":
        span = bytes(buf[at : at + rng.randint(8, 512)])
        buf[at:at] = span * rng.randint(1, 40)
    elif kind in ("length", "vr", "tag") and offsets:
        value = rng.choice(offsets)
        if kind == "length":  # the 4 bytes before a value: a long length, or a short one and the VR
            buf[value - 4 : value] = struct.pack("<L", rng.choice(_BOUNDARY_LENGTHS))
        elif kind == "vr":
            buf[value - 4 : value - 2] = rng.choice(_VRS)
        else:
            buf[value - 8 : value - 4] = rng.randbytes(4)
    elif kind == "syntax":
        uid = rng.choice(_SYNTAXES).encode()
        for known in (b"1.2.840.10008.1.2.1\x00", b"1.2.840.10008.1.2\x00", b"1.2.840.10008.1.2.1.99"):
            buf = bytearray(bytes(buf).replace(known, (uid + b"\x00" * len(known))[: len(known)], 1))
    else:  # prefix: no DICM, or DICM and nothing after the meta's first bytes
        buf[128:132] = rng.choice([b"DICN", b"\x00\x00\x00\x00", b"DICM"])
        if rng.random() < 0.5:
            del buf[rng.randint(132, 200) :]
    return kind, bytes(buf)


def outcome(data: bytes, inflaters: list[InflatingReader]) -> tuple[str, int]:
    """What the reader answers, OK or NOT_DICOM, and the most reads one of its two parses took.

    Any exception but NotDicom fails the test (it would be a 500). Each parse must keep within
    the header's bounds: reads and bytes taken from its stream, bytes inflated (``inflaters``
    holds the inflating readers the parses make), the work that stands for its time.
    """
    streams = [CountingStream(data), CountingStream(data)]
    try:
        fields_of(read_header(streams[0]))
        json_model(read_header(streams[1]))
        answer = "OK"
    except NotDicom:
        answer = "NOT_DICOM"
    for stream in streams:
        assert stream.reads <= MAX_HEADER_READS, f"{stream.reads} reads"
        assert stream.bytes_read <= MAX_HEADER_BYTES, f"{stream.bytes_read} bytes read"
    assert all(inflated(reader) <= MAX_INFLATED_BYTES + 1 for reader in inflaters), "inflated past the bound"
    inflaters.clear()
    return answer, max(stream.reads for stream in streams)


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.DEBUG)
    yield caplog


@pytest.fixture(scope="module")
def seeds() -> list[tuple[str, bytes, list[int]]]:
    files = []
    for name in SEEDS:
        data = marked(name)
        files.append((name, data, element_offsets(data)))
    return files


def test_mutated_files_answer_or_are_not_dicom(
    seeds: list[tuple[str, bytes, list[int]]],
    client: FlaskClient,
    put_object: Callable[[str, bytes], str],
    debug_logs: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = random.Random(SEED)
    tally: Counter[str] = Counter()
    inflaters = count_inflation(monkeypatch)
    busiest = (0, "")
    for index in range(CASES):
        name, data, offsets = rng.choice(seeds)
        kind, mutated = mutate(data, offsets, rng)
        if rng.random() < 0.2:  # mutations on mutations reach further
            kind, mutated = f"{kind}+{mutate(mutated, offsets, rng)[0]}", mutate(mutated, offsets, rng)[1]
        label = f"case {index} (seed {SEED}): {kind} of {name}"
        try:
            answer, reads = outcome(mutated, inflaters)
        except AssertionError as exc:
            pytest.fail(f"{label} went past a bound of the header: {exc}")
        except Exception as exc:  # noqa: BLE001 - reported with the case that raised it
            pytest.fail(f"{label} raised {type(exc).__name__}, which would be a 500")
        busiest = max(busiest, (reads, label))
        tally[answer] += 1
        if index % HTTP_EVERY == 0:
            s3_path = put_object(f"dicom/fuzz/{index}.dcm", mutated)
            status = client.get("/dicom-metadata", query_string={"s3_path": s3_path}).status_code
            assert status in (200, 422), f"{label} answered {status} over HTTP"
    out, err = capfd.readouterr()
    text = debug_logs.text + "\n".join(str(record.args) for record in debug_logs.records) + out + err
    leaked = [keyword for keyword, value in MARKERS.items() if value in text]
    assert not leaked, f"markers in the logs: {leaked} (seed {SEED})"
    print(f"\nfuzz-dicom: {CASES} cases, seed {SEED}, {dict(tally)}; most reads {busiest[0]} ({busiest[1]})")


def test_the_seeds_are_read(seeds: list[tuple[str, bytes, list[int]]]) -> None:
    # The markers went in, and the unmutated seeds read (the fuzzing starts from real files).
    for name, data, _ in seeds:
        if name not in ("waveform_ecg.dcm",):
            assert fields_of(read_header(io.BytesIO(data)))["PatientID"] == MARKERS["PatientID"], name
