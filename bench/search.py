"""Benchmark: what one search page reads, at two table sizes, for every filter shape.

Run with ``make bench BENCH=search`` (or ``python bench/search.py --help``). The embedded AWS
runs in a child process (``python -m local``). For each size (10,000 then 100,000 records by
default) a fresh table is filled with BatchWriteItem, each item built by the same
``derived_attributes`` the service's writers use, in studies of 20 files (2 to 4 series);
then each study and series is counted and its search keys written by the service's own
``Changes`` and ``Aggregates.settle_study``. Each shape walks its first ``--pages`` pages of
``--page``: record searches through ``resolvers.search_metadata``, study searches, a study's
series and a series' instances through ``StudyIndex``.

Per shape and size it prints the items read per page (the sum of ``ScannedCount`` over the
page's Queries plus the items its BatchGetItems and GetItems return: what DynamoDB would bill
and read, counted from botocore's ``after-call`` events) and the median latency of a page.
Targets, for every shape: items read per page at the largest size no more than at the
smallest (flat), and at most 3 x page size plus the shards' look-ahead. moto's own Query
walks every item of the table in Python, so its latency grows with the table where
DynamoDB's does not: judge by items read.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import socket
import statistics
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from local.process import LocalAWSProcess  # noqa: E402
from local.server import create_table  # noqa: E402
from managers.aws.clients import client_config  # noqa: E402
from managers.bundle import Managers  # noqa: E402
from managers.DynamoDBManager import DynamoDBManager  # noqa: E402
from managers.store import records as records_module  # noqa: E402
from managers.store.aggregates import Aggregates, Changes  # noqa: E402
from managers.store.study_index import shard_chunk  # noqa: E402
from managers.store.study_records import StudyCriteria, TextMatch  # noqa: E402
from managers.store.table import PARTITION_KEY, SHARDS, derived_attributes  # noqa: E402
from metadata import FIELDS  # noqa: E402
from resolvers.paging import Cursors, new_secret  # noqa: E402
from resolvers.search import search_filter, search_metadata  # noqa: E402

# Cursors of this run only, as create_app would make them.
CURSORS = Cursors(new_secret())

RESULTS = ROOT / "bench" / "results" / "search.json"
MODALITIES = ("CT", "MR", "US", "CR", "DX", "PT", "NM", "MG")
INSTITUTIONS = ("North Clinic", "South Hospital", "East Imaging", "West Center", "University Hospital")
RECORDS_PER_PATIENT = 100  # the same share of the table per patient at every size
RECORDS_PER_STUDY = 20
BATCH = 25  # BatchWriteItem's maximum
LOADERS = 4
# moto's Query walks the whole table: at 100,000 records one takes seconds, far beyond the
# service's 1.2 s read timeout, which is about real DynamoDB.
EMULATOR_READ_TIMEOUT = 600

# One page of a shape: (managers, page size, position or cursor) → (items served, next one).
Pager = Callable[[Managers, int, Any], tuple[int, Any]]
# The first study of every size, and its first series (records() numbers them).
FIRST_STUDY = "2.25.13.1"


def record_pages(**arguments: str) -> Pager:
    """A record search (``searchMetadata``) through its resolver, cursors included."""
    criteria = search_filter(**arguments)

    def page_of(managers: Managers, size: int, cursor: Any) -> tuple[int, Any]:
        answer = search_metadata(managers, CURSORS, criteria, size, cursor)
        return len(answer.items), answer.next_cursor

    return page_of


def study_pages(criteria: StudyCriteria) -> Pager:
    """A study search (``studies``, QIDO-RS studies) through the study index."""

    def page_of(managers: Managers, size: int, position: Any) -> tuple[int, Any]:
        found, following = managers.studies.search_studies(criteria, size, position)
        return len(found), following

    return page_of


def series_pages(managers: Managers, size: int, position: Any) -> tuple[int, Any]:
    """A study's series (``Study.series``, QIDO-RS series of a study): one Query."""
    return len(managers.studies.series_of([FIRST_STUDY])[FIRST_STUDY]), None


def instance_pages(managers: Managers, size: int, position: Any) -> tuple[int, Any]:
    """A series' instances (``Series.instances``, QIDO-RS instances of a series)."""
    found, following = managers.studies.instances(f"{FIRST_STUDY}.1", size, position)
    return len(found), following


# Shape name → its pager. P000001 exists at every size (patients are numbered).
SHAPES: dict[str, Pager] = {
    "no filter": record_pages(),
    "patient": record_pages(patient_id="P000001"),
    "modality": record_pages(modality="CT"),
    "date range": record_pages(study_date_from="20230101", study_date_to="20230331"),
    "institution": record_pages(institution_name="South Hospital"),
    "patient + date": record_pages(patient_id="P000001", study_date_from="20150101", study_date_to="20201231"),
    "modality + date": record_pages(modality="MR", study_date_from="20230101", study_date_to="20231231"),
    "studies: no filter": study_pages(StudyCriteria()),
    "studies: patient name prefix": study_pages(StudyCriteria(patient_name=TextMatch.parse("*smi*", "PatientName"))),
    "studies: modality": study_pages(StudyCriteria(modality="MR")),
    "studies: date range": study_pages(StudyCriteria(study_date_from="20230101", study_date_to="20230331")),
    "a study's series": series_pages,
    "instances of a series": instance_pages,
}
# Shapes read from one partition (the others merge SHARDS shards), and those that read their
# studies' items after the search keys (a BatchGetItem of up to a page and one more).
ONE_PARTITION = frozenset({"patient", "patient + date", "a study's series", "instances of a series"})
STUDY_SEARCHES = frozenset(name for name in SHAPES if name.startswith("studies:"))


SURNAMES = ("Smith", "Jones", "Garcia", "Müller", "Nguyen", "Okafor", "Rossi", "Tanaka", "Kowalski", "Dubois")
GIVEN = ("Anna", "John", "Maria", "Wei", "Ada", "Luca", "Yuki", "Olga", "Omar", "Eva")


def records(count: int, seed: int = 13) -> list[dict[str, Any]]:
    """Return ``count`` instance records in studies of ``RECORDS_PER_STUDY`` (2 to 4 series each).

    Dates over ten years (2% undated), skewed modalities; a study's values are its instances'.
    """
    rng = random.Random(seed)
    patients = max(1, count // RECORDS_PER_PATIENT)
    out: list[dict[str, Any]] = []
    for study in range(math.ceil(count / RECORDS_PER_STUDY)):
        undated = rng.random() < 0.02
        values = {
            "PatientID": f"P{rng.randrange(patients):06d}",
            "PatientName": f"{rng.choice(SURNAMES)}^{rng.choice(GIVEN)}",
            "StudyDate": None
            if undated
            else f"{rng.randint(2015, 2024)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}",
            "InstitutionName": rng.choice(INSTITUTIONS),
            "StudyDescription": f"study {study % 977}",
            "StudyInstanceUID": f"2.25.{seed}.{study + 1}",
        }
        modalities = [
            rng.choices(MODALITIES, weights=(30, 20, 15, 15, 10, 5, 3, 2))[0] for _ in range(rng.randint(2, 4))
        ]
        for n in range(min(RECORDS_PER_STUDY, count - len(out))):
            series = n % len(modalities)
            out.append(
                {
                    **values,
                    "s3_path": f"s3://data-apps-ex/dicom/bench/anon-{len(out):07d}.dcm",
                    "Modality": modalities[series],
                    "SeriesInstanceUID": f"{values['StudyInstanceUID']}.{series + 1}",
                    "SeriesNumber": series + 1,
                    "InstanceNumber": n // len(modalities) + 1,
                }
            )
    return out


def random_date(rng: random.Random) -> str:
    return f"{rng.randint(2015, 2024)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"


def item_of(record: dict[str, Any]) -> dict[str, Any]:
    """Return the DynamoDB item the indexer would store for a record read from its header."""
    path = str(record["s3_path"])
    fields = {name: record[name] for name in FIELDS if record.get(name) is not None}
    texts = ("PatientName", "StudyInstanceUID", "SeriesInstanceUID")
    item: dict[str, Any] = {
        PARTITION_KEY: {"S": path},
        **{name: {"S": value} for name, value in {**fields, **derived_attributes(path, fields)}.items()},
        records_module.HEADER_FIELDS: records_module.fields_map({name: record.get(name) for name in FIELDS}),
        **{name: {"S": record[name]} for name in texts},
        **{name: {"N": str(record[name])} for name in ("SeriesNumber", "InstanceNumber")},
    }
    item.update(
        records_module.instance_keys(
            record["StudyInstanceUID"], record["SeriesInstanceUID"], record["InstanceNumber"], path
        )
    )
    return item


def load_studies(dynamodb: DynamoDBManager, rows: list[dict[str, Any]]) -> float:
    """Count the loaded records in their studies and series, and write the studies' search keys.

    With the service's own code: ``Changes`` gives each study's and series' counter updates
    (sent here as plain UpdateItems, one study at a time per thread, instead of riding on each
    record's transaction), and ``Aggregates.settle_study`` writes the search keys.
    """
    by_study: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_study.setdefault(row["StudyInstanceUID"], []).append(item_of(row))
    writer = Aggregates(dynamodb)

    def count(uid: str) -> None:
        changes = Changes()
        for item in by_study[uid]:
            changes.add(None, item)
        for action in changes.actions(dynamodb.table_name):
            dynamodb.client.update_item(**action["Update"])
        writer.settle_study(uid)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=LOADERS) as pool:
        for done, _ in enumerate(pool.map(count, by_study), start=1):
            if done % 500 == 0:
                print(f"\r  counted {done:,} of {len(by_study):,} studies", end="", file=sys.stderr, flush=True)
    print(f"\r  counted {len(by_study):,} of {len(by_study):,} studies", file=sys.stderr)
    return time.perf_counter() - started


def load(client: Any, table: str, rows: list[dict[str, Any]]) -> float:
    """Write ``rows`` with BatchWriteItem from a few threads, retrying unprocessed items; return seconds."""

    def write(start: int) -> None:
        requests = [{"PutRequest": {"Item": item_of(r)}} for r in rows[start : start + BATCH]]
        while requests:
            answer = client.batch_write_item(RequestItems={table: requests})
            requests = answer.get("UnprocessedItems", {}).get(table, [])

    started = time.perf_counter()
    # A few writers at once keep the embedded AWS (its own process) busy while this one encodes.
    with ThreadPoolExecutor(max_workers=LOADERS) as pool:
        for done, _ in enumerate(pool.map(write, range(0, len(rows), BATCH)), start=1):
            if done * BATCH % 10_000 == 0:
                print(f"\r  loaded {done * BATCH:,} of {len(rows):,}", end="", file=sys.stderr, flush=True)
    print(f"\r  loaded {len(rows):,} of {len(rows):,}", file=sys.stderr)
    return time.perf_counter() - started


class ReadCounter:
    """Sums the items a DynamoDB client reads: ScannedCount of Queries and Scans, items of
    BatchGetItem and GetItem (threads included)."""

    def __init__(self, client: Any) -> None:
        self.lock = threading.Lock()
        self.items = self.calls = self.scans = 0
        client.meta.events.register("after-call.dynamodb", self._count)

    def _count(self, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        with self.lock:
            if model.name in ("Query", "Scan"):
                self.items += int(parsed.get("ScannedCount", 0))
                self.calls += 1
                self.scans += model.name == "Scan"
            elif model.name == "BatchGetItem":
                self.items += sum(len(items) for items in parsed.get("Responses", {}).values())
                self.calls += 1
            elif model.name == "GetItem":
                self.items += "Item" in parsed
                self.calls += 1

    def take(self) -> tuple[int, int, int]:
        """Return items read, calls and scans since the last call, and start again."""
        with self.lock:
            counted = (self.items, self.calls, self.scans)
            self.items = self.calls = self.scans = 0
        return counted


@dataclass
class ShapeResult:
    shape: str
    size: int
    pages: int
    items_per_page: list[int]
    queries_per_page: list[int]
    scans: int
    latency_ms: list[float]

    @property
    def max_items(self) -> int:
        return max(self.items_per_page)

    @property
    def median_ms(self) -> float:
        return statistics.median(self.latency_ms)


def bench_shape(managers: Managers, counter: ReadCounter, shape: str, size: int, page: int, pages: int) -> ShapeResult:
    """Walk the first ``pages`` pages of one shape; record what each read and how long it took."""
    result = ShapeResult(shape, size, 0, [], [], 0, [])
    cursor: Any = None
    counter.take()
    for _ in range(pages):
        started = time.perf_counter()
        _, cursor = SHAPES[shape](managers, page, cursor)
        result.latency_ms.append((time.perf_counter() - started) * 1000)
        items, calls, scans = counter.take()
        result.items_per_page.append(items)
        result.queries_per_page.append(calls)
        result.scans += scans
        result.pages += 1
        if cursor is None:
            break
    return result


def bench_size(endpoint: str, size: int, page: int, pages: int) -> list[ShapeResult]:
    """Fill a fresh table with ``size`` records and run every shape on it; drop the table after."""
    table = f"bench-search-{size}"
    credentials = LocalAWSProcess.credentials
    dynamodb = DynamoDBManager(
        credentials.aws_access_key_id,
        credentials.aws_secret_access_key,
        endpoint_url=endpoint,
        config=client_config(read_timeout=EMULATOR_READ_TIMEOUT),
        table_name=table,
    )
    create_table(dynamodb.client, table)
    try:
        print(f"{size:,} records:", file=sys.stderr)
        rows = records(size)
        seconds = load(dynamodb.client, table, rows)
        print(f"  {size / seconds:,.0f} records/s into the embedded AWS", file=sys.stderr)
        load_studies(dynamodb, rows)
        managers = Managers.create(credentials, endpoint)
        managers = Managers(s3=managers.s3, dynamodb=dynamodb, dicom=managers.dicom)
        counter = ReadCounter(dynamodb.client)
        return [bench_shape(managers, counter, shape, size, page, pages) for shape in SHAPES]
    finally:
        dynamodb.client.delete_table(TableName=table)


def look_ahead(shape: str, page: int) -> int:
    """Return the items one page may read beyond what it serves: a chunk per partition."""
    if shape in STUDY_SEARCHES:
        return SHARDS * shard_chunk(page)
    partitions = 1 if shape in ONE_PARTITION else SHARDS
    return partitions * (math.ceil(page / partitions) + 1)


def size_free_ceiling(shape: str, page: int) -> int:
    """Return what a page may read at any table size: the page, one peeked, the look-ahead
    (and, for a study search, the study items of a page and one more)."""
    keys = page + 2 + look_ahead(shape, page)
    return keys + page + 1 if shape in STUDY_SEARCHES else keys


@dataclass
class Check:
    name: str
    passed: bool
    detail: str


def checks(results: list[ShapeResult], page: int) -> list[Check]:
    """Flat and bounded, for every shape; never a Scan.

    Flat: the worst page at the largest size reads no more than at the smallest, or no more
    than the page, the one item peeked and one chunk per partition, a ceiling no table size
    changes. (Other records fill a page at another size, so how much of the last chunks is
    left unread differs by a few items either way.)
    """
    sizes = sorted({r.size for r in results})
    out = []
    for shape in SHAPES:
        by_size = {r.size: r for r in results if r.shape == shape}
        small, large = by_size[sizes[0]], by_size[sizes[-1]]
        bound = 3 * page + look_ahead(shape, page)
        ceiling = size_free_ceiling(shape, page)
        out.append(
            Check(
                f"{shape}: flat",
                large.max_items <= max(small.max_items, ceiling),
                f"{large.max_items} at {sizes[-1]:,}, {small.max_items} at {sizes[0]:,}, size-free ceiling {ceiling}",
            )
        )
        worst = max(r.max_items for r in by_size.values())
        out.append(Check(f"{shape}: bounded", worst <= bound, f"{worst} <= {bound}"))
    scans = sum(r.scans for r in results)
    out.append(Check("no Scan", scans == 0, f"{scans} scans"))
    return out


def table(results: list[ShapeResult], page: int) -> str:
    """Return the results as a Markdown table, one row per shape, a column pair per size."""
    sizes = sorted({r.size for r in results})
    head = " | ".join(f"items/page @{s:,} | queries/page @{s:,} | ms/page @{s:,}" for s in sizes)
    rows = [
        f"| shape | {head} | bound |",
        "|---|" + "---:|" * (3 * len(sizes) + 1),
    ]
    for shape in SHAPES:
        cells = []
        for size in sizes:
            r = next(r for r in results if r.shape == shape and r.size == size)
            cells += [f"{r.max_items}", f"{max(r.queries_per_page)}", f"{r.median_ms:,.0f}"]
        rows.append(f"| {shape} | {' | '.join(cells)} | {3 * page + look_ahead(shape, page)} |")
    return "\n".join(rows)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000", help="records per run, comma-separated (%(default)s)")
    parser.add_argument("--page", type=int, default=50, help="page size (default: %(default)s)")
    parser.add_argument("--pages", type=int, default=3, help="pages walked per shape (default: %(default)s)")
    parser.add_argument("--port", type=int, default=0, help="embedded AWS port (default: a free one)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON results (default: bench/results/search.json)")
    args = parser.parse_args(argv)
    sizes = [int(size) for size in args.sizes.split(",")]

    with LocalAWSProcess(args.port or free_port()) as aws:
        results = [r for size in sizes for r in bench_size(aws.endpoint_url, size, args.page, args.pages)]
    found = checks(results, args.page)
    print(f"\nPage of {args.page}, first {args.pages} pages per shape; items/page and queries/page: the worst page; ")
    print(
        "ms/page: the median on the embedded AWS, whose first Query of an index builds its sorted copy "
        f"of that index (a second or two at 100,000). Shards: {SHARDS}.\n"
    )
    print(table(results, args.page))
    print()
    for check in found:
        print(f"{'PASS' if check.passed else 'FAIL'}  {check.name}: {check.detail}")
    report = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "page": args.page,
        "pages": args.pages,
        "shards": SHARDS,
        "results": [{**r.__dict__, "max_items": r.max_items, "median_ms": r.median_ms} for r in results],
        "checks": [c.__dict__ for c in found],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"\nResults written to {args.out}")
    return 0 if all(check.passed for check in found) else 1


if __name__ == "__main__":
    sys.exit(main())
