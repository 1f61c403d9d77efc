"""Search over a few hundred stored records: filters, bounds, paging, cursors, no scans, items read."""

from __future__ import annotations

import math
import random
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from flask import Flask

import resolvers
from app import create_app
from errors import InvalidArgument, InvalidCursor, UpstreamUnavailable
from local.server import LocalAWS, create_table
from managers.bundle import Managers
from managers.DynamoDBManager import DynamoDBManager
from managers.store.table import LIST_SHARD, SHARDS, SORT_ATTRIBUTE, derived_attributes, shard_of
from metadata import valid_date
from resolvers.paging import Cursors
from resolvers.search import search_filter
from schema import schema
from schema.types import Context
from tests.conftest import TEST_CURSOR_SECRET

BUCKET = "data-apps-ex"
# The secret of the conftest app, so cursors made here are read by its routes too.
CURSORS = Cursors(TEST_CURSOR_SECRET)
MODALITIES = ("CT", "MR", "US", "CR", "PT")
INSTITUTIONS = ("North Clinic", "South Hospital", "Ünïversity Center")


def make_records(count: int = 300) -> list[dict[str, str | None]]:
    rng = random.Random(20241126)
    records = []
    for n in range(count):
        date = f"{rng.choice((2022, 2023, 2024))}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
        records.append(
            {
                "s3_path": f"s3://{BUCKET}/dicom/search/anon-{n:04d}.dcm",
                "PatientID": None if n % 97 == 0 else f"P{n % 20:03d}",
                "StudyDate": None if n % 41 == 0 else date,
                "Modality": None if n % 53 == 0 else MODALITIES[n % 5],
                "InstitutionName": INSTITUTIONS[n % 3],
                "StudyDescription": f"study {n}",
            }
        )
    # Two records on the bounds' very days, to test inclusiveness.
    records[1]["StudyDate"], records[2]["StudyDate"] = "20230101", "20231231"
    # StudyDates that are no DA sort as undated and match no range; a record with none of
    # the five fields is stored but listed nowhere.
    records[3]["StudyDate"], records[4]["StudyDate"] = "2023-05-01", "20230230"
    records[5].update(PatientID=None, StudyDate=None, Modality=None, InstitutionName=None, StudyDescription=None)
    return records


RECORDS = make_records()
# shard_of of s3://data-apps-ex/dicom/anon-0.dcm … anon-7.dcm, fixed when the shards were introduced.
SHARD_SAMPLE = [2, 5, 5, 4, 5, 1, 2, 4]


def path_of(record: dict[str, str | None]) -> str:
    """Return a record's s3 path (every record and search result has one)."""
    path = record["s3_path"]
    assert path is not None
    return path


class CallCounter:
    """Counts DynamoDB operations on a client and the items they read, through botocore's events."""

    def __init__(self, client: Any) -> None:
        self.calls: Counter[str] = Counter()
        self.scanned: list[int] = []  # ScannedCount of each Query or Scan answer
        client.meta.events.register("before-call.dynamodb", self._count)
        client.meta.events.register("after-call.dynamodb", self._read)

    def _count(self, model: Any, **_: Any) -> None:
        self.calls[model.name] += 1

    def _read(self, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name in ("Query", "Scan"):
            self.scanned.append(parsed["ScannedCount"])

    def clear(self) -> None:
        self.calls.clear()
        self.scanned.clear()


@pytest.fixture(scope="module")
def search_managers(app: Flask, local_aws: LocalAWS) -> Iterator[tuple[Managers, CallCounter]]:
    """The app's managers, but a table of its own holding RECORDS (other tests write too)."""
    table = f"search-test-{uuid.uuid4().hex[:8]}"
    keys = (local_aws.credentials.aws_access_key_id, local_aws.credentials.aws_secret_access_key)
    dynamodb = DynamoDBManager(*keys, endpoint_url=local_aws.endpoint_url, table_name=table)
    create_table(dynamodb.client, table)
    for record in RECORDS:
        dynamodb.put_record(path_of(record), {k: v for k, v in record.items() if k != "s3_path"})
    base = app.extensions["dicom_meta.managers"]
    try:
        yield Managers(s3=base.s3, dynamodb=dynamodb, dicom=base.dicom), CallCounter(dynamodb.client)
    finally:
        dynamodb.client.delete_table(TableName=table)


@pytest.fixture
def managers(search_managers: tuple[Managers, CallCounter]) -> Managers:
    return search_managers[0]


@pytest.fixture
def counter(search_managers: tuple[Managers, CallCounter]) -> CallCounter:
    search_managers[1].clear()
    return search_managers[1]


def expected(
    patient_id: str | None = None,
    modality: str | None = None,
    institution_name: str | None = None,
    low: str | None = None,
    high: str | None = None,
) -> list[str]:
    def matches(r: dict[str, str | None]) -> bool:
        date = valid_date(r["StudyDate"])
        return (
            any(r[field] for field in ("PatientID", "StudyDate", "Modality", "InstitutionName", "StudyDescription"))
            and (patient_id is None or r["PatientID"] == patient_id)
            and (modality is None or r["Modality"] == modality)
            and (institution_name is None or r["InstitutionName"] == institution_name)
            and (low is None or (date is not None and date >= low))
            and (high is None or (date is not None and date <= high))
        )

    hits = [r for r in RECORDS if matches(r)]
    return [path_of(r) for r in sorted(hits, key=lambda r: (valid_date(r["StudyDate"]) or "", path_of(r)))]


def all_pages(managers: Managers, page_size: int, **criteria: str | None) -> list[str]:
    paths: list[str] = []
    cursor = None
    for _ in range(1000):
        page = resolvers.search_metadata(managers, CURSORS, search_filter(**criteria), page_size, cursor)
        assert len(page.items) <= page_size
        paths += [path_of(item) for item in page.items]
        cursor = page.next_cursor
        if cursor is None:
            return paths
        assert page.items, "a page before the last must not be empty"
    raise AssertionError("paging did not end")


CRITERIA: list[dict[str, str]] = [
    {},
    {"patient_id": "P003"},
    {"modality": "MR"},
    {"study_date_from": "20230101", "study_date_to": "20231231"},
    {"study_date_from": "2023-01-01", "study_date_to": "2023-12-31"},
    {"study_date_from": "20240601"},
    {"study_date_to": "20220315"},
    {"patient_id": "P004", "modality": "MR"},
    {"patient_id": "P005", "study_date_from": "20230101"},
    {"modality": "CT", "study_date_from": "20220101", "study_date_to": "20220630"},
    {"modality": "US", "institution_name": "South Hospital"},
    {"study_date_from": "20230301", "study_date_to": "20230331", "institution_name": "North Clinic"},
    {"institution_name": "Ünïversity Center"},
    {"patient_id": "P999"},
    {"modality": "MR", "study_date_from": "20300101"},
    {"patient_id": "P007", "study_date_to": "20230615"},
    {"institution_name": "South Hospital", "study_date_from": "20220301", "study_date_to": "20240301"},
    {"institution_name": "Nowhere"},
]

# Shapes whose criteria are all in the index key (one of patient, modality, institution, with
# or without dates): a page reads the page plus the look-ahead. Two of them filter the first
# one's items (documented): a patient's records, or a modality's, bound what a page reads.
KEYED = [c for c in CRITERIA if len(set(c) & {"patient_id", "modality", "institution_name"}) <= 1]


def _expected_for(criteria: dict[str, str]) -> list[str]:
    low = criteria.get("study_date_from")
    high = criteria.get("study_date_to")
    return expected(
        criteria.get("patient_id"),
        criteria.get("modality"),
        criteria.get("institution_name"),
        low.replace("-", "") if low else None,
        high.replace("-", "") if high else None,
    )


@pytest.mark.parametrize("criteria", CRITERIA, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()) or "no-filter")
@pytest.mark.parametrize("page_size", [7, 500])
def test_pages_return_every_match_once_in_order(managers: Managers, criteria: dict[str, str], page_size: int) -> None:
    assert all_pages(managers, page_size, **criteria) == _expected_for(criteria)


def test_the_corpus_is_big_and_varied_enough() -> None:
    assert len(expected(modality="MR")) > 40
    assert len(expected(patient_id="P003")) > 10
    assert expected(low="20230101", high="20230101")[0] == f"s3://{BUCKET}/dicom/search/anon-0001.dcm"
    assert f"s3://{BUCKET}/dicom/search/anon-0002.dcm" in expected(low="20231231", high="20231231")


def _ids(criteria: dict[str, str]) -> str:
    return ",".join(criteria) or "no-filter"


@pytest.mark.parametrize("criteria", CRITERIA, ids=_ids)
def test_no_filter_ever_scans(
    managers: Managers, counter: CallCounter, criteria: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(**_: Any) -> None:
        raise AssertionError("a search scanned the table")

    monkeypatch.setattr(managers.dynamodb.client, "scan", refuse)
    all_pages(managers, 10, **criteria)
    assert counter.calls["Scan"] == 0
    assert counter.calls["Query"] > 0


def page_reads(managers: Managers, counter: CallCounter, page_size: int, **criteria: str) -> list[int]:
    """Return the items read (sum of ScannedCount) by each page of a search, walking all pages."""
    reads: list[int] = []
    cursor = None
    while True:
        counter.clear()
        page = resolvers.search_metadata(managers, CURSORS, search_filter(**criteria), page_size, cursor)
        reads.append(sum(counter.scanned))
        cursor = page.next_cursor
        if cursor is None:
            return reads


@pytest.mark.parametrize("criteria", KEYED, ids=_ids)
@pytest.mark.parametrize("page_size", [3, 25])
def test_a_page_reads_a_small_multiple_of_its_size(
    managers: Managers, counter: CallCounter, criteria: dict[str, str], page_size: int
) -> None:
    partitions = 1 if "patient_id" in criteria else SHARDS
    look_ahead = partitions * (math.ceil(page_size / partitions) + 1)
    reads = page_reads(managers, counter, page_size, **criteria)
    assert max(reads) <= 3 * page_size + look_ahead, reads


def test_a_first_page_reads_the_same_whatever_the_table_holds(managers: Managers, counter: CallCounter) -> None:
    # 300 records, many times the page: the first page still reads only its chunks.
    for criteria in ({}, {"modality": "CT"}, {"institution_name": "North Clinic"}):
        counter.clear()
        resolvers.search_metadata(managers, CURSORS, search_filter(**criteria), 5)
        assert sum(counter.scanned) <= SHARDS * (math.ceil(5 / SHARDS) + 1) + 5
        assert counter.calls["Query"] <= 2 * SHARDS


def test_a_failing_shard_query_is_upstream_unavailable(managers: Managers, monkeypatch: pytest.MonkeyPatch) -> None:
    # A fault injected into the Queries the pool's threads run must still reach the caller.
    def throttled(**_: Any) -> None:
        raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow"}}, "Query")

    monkeypatch.setattr(managers.dynamodb.client, "query", throttled)
    with pytest.raises(UpstreamUnavailable):
        resolvers.search_metadata(managers, CURSORS, search_filter(), 10)


def test_derived_attributes() -> None:
    path = f"s3://{BUCKET}/dicom/a.dcm"
    fields = {"StudyDate": "20240229", "Modality": "CT", "InstitutionName": "North Clinic"}
    shard = shard_of(path)
    assert derived_attributes(path, fields) == {
        "StudyDateKey": f"20240229#{path}",
        "ListShard": f"all#{shard}",
        "ModalityShard": f"CT#{shard}",
        "InstitutionShard": f"North Clinic#{shard}",
    }
    # No PatientID, no modality: no key of theirs; a date that is no DA sorts as undated.
    assert derived_attributes(path, {"StudyDate": "20230229", "StudyDescription": "x"}) == {
        SORT_ATTRIBUTE: f"#{path}",
        LIST_SHARD: f"all#{shard}",
    }
    # Nothing to list: in no index at all.
    assert derived_attributes(path, {name: None for name in ("PatientID", "StudyDate", "Modality")}) == {}


def test_shards_are_stable_and_spread() -> None:
    # The shard of a path must never change between processes or versions: stored keys rely on it.
    assert [shard_of(f"s3://{BUCKET}/dicom/anon-{n}.dcm") for n in range(8)] == SHARD_SAMPLE
    spread = Counter(shard_of(r["s3_path"] or "") for r in RECORDS)
    assert sorted(spread) == list(range(SHARDS))
    assert min(spread.values()) > len(RECORDS) / SHARDS / 2


def test_records_without_values_still_store_and_fetch(managers: Managers) -> None:
    bare = RECORDS[0]  # n=0: no PatientID, no StudyDate, no Modality
    assert managers.dynamodb.get_record(path_of(bare)) == {k: v for k, v in bare.items() if k != "s3_path"}
    assert bare["s3_path"] not in all_pages(managers, 500, study_date_from="19000101")


@pytest.mark.parametrize(
    "criteria",
    [
        {"study_date_from": "2024-13-01"},
        {"study_date_to": "20240230"},
        {"study_date_from": "2024"},
        {"study_date_from": "yesterday"},
        {"study_date_from": "20240201", "study_date_to": "20240101"},
    ],
)
def test_bad_dates(criteria: dict[str, str]) -> None:
    with pytest.raises(InvalidArgument):
        search_filter(**criteria)


@pytest.mark.parametrize("first", [0, -1, 501])
def test_page_size_bounds(managers: Managers, first: int) -> None:
    with pytest.raises(InvalidArgument):
        resolvers.search_metadata(managers, CURSORS, search_filter(modality="CT"), first)


def test_bad_cursors(managers: Managers) -> None:
    cursor = resolvers.search_metadata(managers, CURSORS, search_filter(modality="CT"), 5).next_cursor
    assert cursor
    middle = len(cursor) // 2
    tampered = [
        cursor[:middle] + ("A" if cursor[middle] != "A" else "B") + cursor[middle + 1 :],
        "not-a-cursor",
        cursor + "x",
        cursor[:-4],
        "a.b.c",
        "",
    ]
    for bad in tampered:
        with pytest.raises(InvalidCursor):
            resolvers.search_metadata(managers, CURSORS, search_filter(modality="CT"), 5, bad)
    with pytest.raises(InvalidCursor):  # a cursor of another query
        resolvers.search_metadata(managers, CURSORS, search_filter(modality="MR"), 5, cursor)
    with pytest.raises(InvalidCursor):  # or of the file listing
        resolvers.list_dicom_files(managers, CURSORS, "dicom/", 5, cursor)


SEARCH = """query($f: MetadataFilter!, $first: Int, $after: String) {
  searchMetadata(filter: $f, first: $first, after: $after) { items { s3Path studyDate modality } nextCursor } }"""


def test_graphql_search_pages(managers: Managers) -> None:
    context = Context(managers=managers, cursors=CURSORS, request_id="t")
    seen: list[str] = []
    after = None
    while True:
        result = schema.execute_sync(
            SEARCH,
            variable_values={"f": {"modality": "PT", "studyDateFrom": "2023-01-01"}, "first": 9, "after": after},
            context_value=context,
        )
        assert not result.errors and result.data
        page = result.data["searchMetadata"]
        assert all(item["modality"] == "PT" for item in page["items"])
        seen += [item["s3Path"] for item in page["items"]]
        after = page["nextCursor"]
        if after is None:
            break
    assert seen == expected(modality="PT", low="20230101")


@pytest.mark.parametrize(
    ("variables", "code"),
    [
        ({"f": {"studyDateFrom": "2023-02-30"}}, "INVALID_ARGUMENT"),
        ({"f": {"modality": "CT"}, "first": 0}, "INVALID_ARGUMENT"),
        ({"f": {"modality": "CT"}, "after": "bogus"}, "INVALID_CURSOR"),
    ],
)
def test_graphql_search_errors(app: Flask, managers: Managers, variables: dict[str, Any], code: str) -> None:
    client = create_app({"MANAGERS": managers}).test_client()
    result = client.post("/graphql", json={"query": SEARCH, "variables": variables}).json
    assert result is not None
    assert [e["extensions"]["code"] for e in result["errors"]] == [code]


@pytest.fixture
def rest(managers: Managers) -> Any:
    return create_app({"MANAGERS": managers}).test_client()


@pytest.mark.parametrize(
    ("query", "low", "high"),
    [
        ("20230101-20231231", "20230101", "20231231"),
        ("-20220315", None, "20220315"),
        ("20240601-", "20240601", None),
        ("20230101", "20230101", "20230101"),
    ],
)
def test_rest_search_date_ranges(rest: Any, query: str, low: str | None, high: str | None) -> None:
    paths: list[str] = []
    cursor = None
    while True:
        params = {"StudyDate": query, "limit": "40", **({"cursor": cursor} if cursor else {})}
        response = rest.get("/search-metadata", query_string=params)
        assert response.status_code == 200
        paths += [item["s3_path"] for item in response.json["items"]]
        cursor = response.json["next_cursor"]
        if cursor is None:
            break
    assert paths == expected(low=low, high=high)


@pytest.mark.parametrize(("params", "institution"), [({}, None), ({"InstitutionName": "North Clinic"}, "North Clinic")])
def test_rest_search_without_patient_modality_or_date(
    rest: Any, counter: CallCounter, params: dict[str, str], institution: str | None
) -> None:
    paths: list[str] = []
    cursor = None
    while True:
        response = rest.get(
            "/search-metadata", query_string={**params, "limit": "60", **({"cursor": cursor} if cursor else {})}
        )
        assert response.status_code == 200
        paths += [item["s3_path"] for item in response.json["items"]]
        cursor = response.json["next_cursor"]
        if cursor is None:
            break
    assert paths == expected(institution_name=institution)
    assert counter.calls["Scan"] == 0


def test_rest_search_items_have_the_record_shape(rest: Any) -> None:
    response = rest.get("/search-metadata", query_string={"PatientID": "P006", "Modality": "MR"})
    assert response.status_code == 200
    items = response.json["items"]
    assert [i["s3_path"] for i in items] == expected(patient_id="P006", modality="MR")
    assert list(items[0]) == ["s3_path", "PatientID", "StudyDate", "Modality", "InstitutionName", "StudyDescription"]


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({"StudyDate": "2024-2025-01"}, 400, "INVALID_ARGUMENT"),
        ({"StudyDate": "20241301-"}, 400, "INVALID_ARGUMENT"),
        ({"limit": "many"}, 400, "INVALID_ARGUMENT"),
        ({"limit": "0"}, 400, "INVALID_ARGUMENT"),
        ({"limit": "501"}, 400, "INVALID_ARGUMENT"),
        ({"PatientId": "P001"}, 400, "INVALID_ARGUMENT"),
        ({"Modality": "CT", "cursor": "tampered"}, 400, "INVALID_CURSOR"),
    ],
)
def test_rest_search_errors(rest: Any, params: dict[str, str], status: int, code: str) -> None:
    response = rest.get("/search-metadata", query_string=params)
    assert response.status_code == status
    assert response.json["error"]["code"] == code
    assert response.json["error"]["request_id"]


def test_cursors_do_not_reveal_patient_ids_or_paths(managers: Managers) -> None:
    cursor = resolvers.search_metadata(managers, CURSORS, search_filter(patient_id="P003"), 2).next_cursor
    assert cursor
    for raw in every_base64_reading(cursor):
        assert b"P003" not in raw and b"s3://" not in raw and b"dicom/" not in raw


def every_base64_reading(text: str) -> list[bytes]:
    """Decode ``text`` as base64 and base64url from each of its first four offsets."""
    import base64
    import binascii

    readings = []
    for offset in range(4):
        part = text[offset:]
        part += "=" * (-len(part) % 4)
        for decode in (base64.urlsafe_b64decode, base64.b64decode):
            try:
                readings.append(decode(part))
            except (ValueError, binascii.Error):
                continue
    assert readings
    return readings
