"""The GraphQL study view on files indexed on arrival: values, counts, order, paging, filters,
batched loads and error codes.

Three studies of one patient-id prefix unique to this run (the session's embedded AWS is
shared): A has two CT series (one instance re-put, one deleted), B an MR and an SR series,
C one US series.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from pydicom.uid import generate_uid

from config import S3_BUCKET_NAME
from errors import InvalidArgument, UpstreamUnavailable
from local.samples import SampleSpec, build_file
from managers.DynamoDBManager import SHARD_WORKERS
from managers.store.study_index import StudyIndex
from schema.loaders import LevelLoader, RequestBudget
from tests.test_end_to_end import eventually
from tests.test_graphql import error_codes, gql

# Indexing on arrival takes 2-4 s; deletes and the last counts can take a little longer.
INDEXED_WITHIN = 20.0

STUDY_FIELDS = """
  studyInstanceUid patientId patientName patientBirthDate patientSex studyDate studyTime
  accessionNumber studyDescription referringPhysicianName institutionName modalitiesInStudy
  numberOfSeries numberOfInstances
"""
STUDIES = f"""
query($filter: StudyFilter, $first: Int! = 50, $after: String) {{
  studies(filter: $filter, first: $first, after: $after) {{ items {{ {STUDY_FIELDS} }} nextCursor }}
}}"""
STUDY_TREE = """
query($uid: String!, $first: Int! = 100, $after: String) {
  study(studyInstanceUid: $uid) {
    studyInstanceUid numberOfSeries numberOfInstances
    series {
      seriesInstanceUid modality seriesNumber seriesDescription bodyPartExamined numberOfInstances
      instances(first: $first, after: $after) {
        items { sopInstanceUid sopClassUid instanceNumber s3Path rows columns numberOfFrames
                metadata { s3Path patientId studyDate modality institutionName studyDescription } }
        nextCursor
      }
    }
  }
}"""
SERIES_INSTANCES = """
query($uid: String!, $first: Int! = 100, $after: String) {
  series(seriesInstanceUid: $uid) {
    seriesInstanceUid numberOfInstances
    instances(first: $first, after: $after) { items { instanceNumber } nextCursor }
  }
}"""


@dataclass
class Archive:
    """The files this module put: its patient-id prefix and each study's and series' UIDs."""

    prefix: str
    studies: dict[str, str] = field(default_factory=dict)  # "A" -> StudyInstanceUID
    series: dict[str, str] = field(default_factory=dict)  # "A1" -> SeriesInstanceUID
    paths: dict[str, list[str]] = field(default_factory=dict)  # "A1" -> s3 paths, by InstanceNumber

    def filter(self, **criteria: str) -> dict[str, str]:
        """Return a StudyFilter of this archive's studies only, plus ``criteria``."""
        return {"patientId": f"{self.prefix}*", **criteria}


# (study, series, modality, SeriesNumber, instances): the series put, A2 before A1 so that
# order cannot come from arrival.
LAYOUT = (("A", "A2", "CT", 2, 3), ("A", "A1", "CT", 1, 3), ("B", "B1", "MR", 1, 2), ("B", "B2", "SR", 7, 1))
LAYOUT_C = ("C", "C1", "US", 1, 1)
STUDY_VALUES = {
    "A": {"name": "Doe^John", "date": "20240310", "accession": "A", "description": "CHEST CT"},
    "B": {"name": "Lee^Doerte", "date": "20230105", "accession": "B", "description": "BRAIN MR"},
    "C": {"name": "Roe^Jane", "date": "20220101", "accession": "C", "description": "ABDOMEN US"},
}


@pytest.fixture(scope="module")
def archive(s3: Any, client_module: FlaskClient) -> Iterator[Archive]:
    """Put the three studies (instances in reverse order), re-put one, delete one, wait for the counts."""
    archive = Archive(prefix=f"GQS{uuid.uuid4().hex[:8].upper()}")
    keys: list[str] = []

    def put(key: str, data: bytes) -> None:
        s3.put_object(Bucket=S3_BUCKET_NAME, Key=key, Body=data)
        keys.append(key)

    try:
        for study, series, modality, number, count in (*LAYOUT, LAYOUT_C):
            study_uid = archive.studies.setdefault(study, generate_uid())
            archive.series[series] = generate_uid()
            values = STUDY_VALUES[study]
            files = {}
            for instance_number in range(count, 0, -1):
                spec = SampleSpec(
                    patient_id=f"{archive.prefix}-{study}",
                    patient_name=values["name"],
                    study_date=values["date"],
                    accession_number=f"{archive.prefix}{values['accession']}",
                    study_description=values["description"],
                    institution_name="Graph Clinic",
                    modality=modality,
                    series_description=f"{series} SERIES",
                    study_instance_uid=study_uid,
                    series_instance_uid=archive.series[series],
                    series_number=number,
                    instance_number=instance_number,
                )
                key = f"dicom/graphql-studies/{archive.prefix}/{spec.file_name}"
                files[instance_number] = (key, build_file(spec))
                put(*files[instance_number])
            archive.paths[series] = [f"s3://{S3_BUCKET_NAME}/{files[n][0]}" for n in sorted(files)]
            if series == "A1":
                put(*files[2])  # the same file again: a duplicate event, not a fourth instance
            if series == "A2":
                s3.delete_object(Bucket=S3_BUCKET_NAME, Key=files[3][0])  # A2 keeps instances 1 and 2
                archive.paths[series] = archive.paths[series][:2]
        expected = {"A": 5, "B": 3, "C": 1}

        def counted() -> bool:
            answer = gql(client_module, STUDIES, filter=archive.filter())
            items = (answer.get("data") or {}).get("studies", {}).get("items", [])
            return {item["patientId"][-1]: item["numberOfInstances"] for item in items} == expected

        assert eventually(counted, timeout=INDEXED_WITHIN), "the studies were not indexed with their final counts"
        yield archive
    finally:
        for key in keys:
            s3.delete_object(Bucket=S3_BUCKET_NAME, Key=key)


@pytest.fixture(scope="module")
def client_module(app: Flask) -> FlaskClient:
    return app.test_client()


def uids_of(answer: dict[str, Any]) -> list[str]:
    assert "errors" not in answer, answer
    return [item["studyInstanceUid"] for item in answer["data"]["studies"]["items"]]


def test_study_values_and_counts(client: FlaskClient, archive: Archive) -> None:
    answer = gql(client, STUDIES, filter=archive.filter(accessionNumber=f"{archive.prefix}A"))
    assert "errors" not in answer, answer
    assert answer["data"]["studies"] == {
        "items": [
            {
                "studyInstanceUid": archive.studies["A"],
                "patientId": f"{archive.prefix}-A",
                "patientName": "Doe^John",
                "patientBirthDate": None,
                "patientSex": None,
                "studyDate": "20240310",
                "studyTime": None,
                "accessionNumber": f"{archive.prefix}A",
                "studyDescription": "CHEST CT",
                "referringPhysicianName": None,
                "institutionName": "Graph Clinic",
                "modalitiesInStudy": ["CT"],
                "numberOfSeries": 2,
                "numberOfInstances": 5,
            }
        ],
        "nextCursor": None,
    }


def test_studies_newest_first_and_study_level_values(client: FlaskClient, archive: Archive) -> None:
    answer = gql(client, STUDIES, filter=archive.filter())
    assert uids_of(answer) == [archive.studies[s] for s in "ABC"]
    by_study = {item["patientId"][-1]: item for item in answer["data"]["studies"]["items"]}
    assert sorted(by_study["B"]["modalitiesInStudy"]) == ["MR", "SR"]
    assert [(by_study[s]["numberOfSeries"], by_study[s]["numberOfInstances"]) for s in "ABC"] == [
        (2, 5),
        (2, 3),
        (1, 1),
    ]


def test_series_and_instances_in_order_with_their_metadata(client: FlaskClient, archive: Archive) -> None:
    answer = gql(client, STUDY_TREE, uid=archive.studies["A"])
    assert "errors" not in answer, answer
    study = answer["data"]["study"]
    assert (study["numberOfSeries"], study["numberOfInstances"]) == (2, 5)
    series = study["series"]
    assert [(s["seriesInstanceUid"], s["seriesNumber"], s["numberOfInstances"]) for s in series] == [
        (archive.series["A1"], 1, 3),
        (archive.series["A2"], 2, 2),
    ]
    assert (series[0]["modality"], series[0]["seriesDescription"], series[0]["bodyPartExamined"]) == (
        "CT",
        "A1 SERIES",
        None,
    )
    first = series[0]["instances"]
    assert first["nextCursor"] is None
    assert [(i["instanceNumber"], i["s3Path"]) for i in first["items"]] == list(enumerate(archive.paths["A1"], 1))
    instance = first["items"][0]
    assert (instance["rows"], instance["columns"], instance["numberOfFrames"]) == (16, 16, None)
    assert instance["sopClassUid"] == "1.2.840.10008.5.1.4.1.1.2"  # CT Image Storage
    assert instance["sopInstanceUid"] in instance["s3Path"]
    assert instance["metadata"] == {
        "s3Path": archive.paths["A1"][0],
        "patientId": f"{archive.prefix}-A",
        "studyDate": "20240310",
        "modality": "CT",
        "institutionName": "Graph Clinic",
        "studyDescription": "CHEST CT",
    }
    # The deleted instance is gone from its series.
    assert [i["instanceNumber"] for i in series[1]["instances"]["items"]] == [1, 2]


def test_dicom_json_on_an_instance(client: FlaskClient, archive: Archive) -> None:
    query = """query($uid: String!) { series(seriesInstanceUid: $uid) { instances(first: 1) {
        items { metadata { dicomJson(keywords: ["InstanceNumber", "SeriesNumber"]) } } } } }"""
    answer = gql(client, query, uid=archive.series["B2"])
    assert "errors" not in answer, answer
    assert answer["data"]["series"]["instances"]["items"][0]["metadata"]["dicomJson"] == {
        "00200011": {"vr": "IS", "Value": [7]},
        "00200013": {"vr": "IS", "Value": [1]},
    }


def test_study_pages_follow_their_cursors(client: FlaskClient, archive: Archive) -> None:
    seen: list[str] = []
    after = None
    for _ in range(5):
        answer = gql(client, STUDIES, filter=archive.filter(), first=1, after=after)
        page = uids_of(answer)
        assert len(page) <= 1
        seen += page
        after = answer["data"]["studies"]["nextCursor"]
        if after is None:
            break
    assert seen == [archive.studies[s] for s in "ABC"]
    assert after is None


def test_instance_pages_and_their_cursor_belong_to_the_series(client: FlaskClient, archive: Archive) -> None:
    # First page reached through the study, second through the series: one cursor, either path.
    answer = gql(client, STUDY_TREE, uid=archive.studies["A"], first=2)
    assert "errors" not in answer, answer
    a1, a2 = answer["data"]["study"]["series"]
    assert [i["instanceNumber"] for i in a1["instances"]["items"]] == [1, 2]
    cursor = a1["instances"]["nextCursor"]
    assert cursor and a2["instances"]["nextCursor"] is None
    rest = gql(client, SERIES_INSTANCES, uid=archive.series["A1"], first=2, after=cursor)
    assert "errors" not in rest, rest
    assert rest["data"]["series"]["instances"] == {"items": [{"instanceNumber": 3}], "nextCursor": None}
    # The same cursor on another series.
    other = gql(client, SERIES_INSTANCES, uid=archive.series["A2"], after=cursor)
    assert error_codes(other) == ["INVALID_CURSOR"]


@pytest.mark.parametrize(
    ("criteria", "expected"),
    [
        ({"patientName": "*doe*"}, "AB"),  # any name component starting with "doe"
        ({"patientName": "*DOER*"}, "B"),
        ({"patientName": "DOE^J*"}, "A"),  # prefix of the whole name
        ({"patientName": "doe^john"}, "A"),  # exact, any case
        ({"patientName": "doe"}, ""),
        ({"modality": "MR"}, "B"),
        ({"modality": "sr"}, "B"),  # any series' modality
        ({"modality": "CT"}, "A"),
        ({"studyDateFrom": "20230101", "studyDateTo": "20231231"}, "B"),
        ({"studyDateFrom": "2023-01-05"}, "AB"),
        ({"studyDateTo": "20230105"}, "BC"),
        ({"patientName": "*doe*", "studyDateTo": "20231231"}, "B"),
    ],
)
def test_filters(client: FlaskClient, archive: Archive, criteria: dict[str, str], expected: str) -> None:
    answer = gql(client, STUDIES, filter=archive.filter(**criteria))
    assert uids_of(answer) == [archive.studies[s] for s in expected]


def test_filter_by_study_uid(client: FlaskClient, archive: Archive) -> None:
    answer = gql(client, STUDIES, filter={"studyInstanceUid": archive.studies["C"]})
    assert uids_of(answer) == [archive.studies["C"]]


def test_unknown_study_and_series_are_null(client: FlaskClient, archive: Archive) -> None:
    query = """query($u: String!) {
        study(studyInstanceUid: $u) { numberOfSeries } series(seriesInstanceUid: $u) { modality } }"""
    assert gql(client, query, u=generate_uid()) == {"data": {"study": None, "series": None}}
    assert uids_of(gql(client, STUDIES, filter={"patientId": f"{archive.prefix}-NOBODY"})) == []


def test_a_study_list_costs_one_read_per_level(
    app: Flask, client: FlaskClient, archive: Archive, monkeypatch: pytest.MonkeyPatch
) -> None:
    index: StudyIndex = app.extensions["dicom_meta.managers"].studies
    calls: Counter[str] = Counter()
    batches: list[list[str]] = []
    inside: list[str] = []  # calls the index makes to itself are its own business, not counted

    def spy(name: str) -> Callable[..., Any]:
        real = getattr(index, name)

        def counted(*args: Any, **kwargs: Any) -> Any:
            if not inside:
                calls[name] += 1
                if name == "series_of":
                    batches.append(list(args[0]))
            inside.append(name)
            try:
                return real(*args, **kwargs)
            finally:
                inside.pop()

        return counted

    for name in ("search_studies", "get_studies", "series_of", "get_series", "instances", "instances_by_sop"):
        monkeypatch.setattr(index, name, spy(name))
    query = """query($filter: StudyFilter) { studies(filter: $filter) { items {
        patientName studyDate modalitiesInStudy numberOfSeries numberOfInstances
        series { seriesInstanceUid numberOfInstances } } } }"""
    answer = gql(client, query, filter=archive.filter())
    assert "errors" not in answer, answer
    items = answer["data"]["studies"]["items"]
    assert [[s["numberOfInstances"] for s in item["series"]] for item in items] == [[3, 2], [2, 1], [1]]
    assert calls == Counter({"search_studies": 1, "series_of": 1})
    assert sorted(batches[0]) == sorted(archive.studies.values())
    # A second request loads again: loaders live one request.
    gql(client, query, filter=archive.filter())
    assert calls == Counter({"search_studies": 2, "series_of": 2})


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        ("query($u: String!) { study(studyInstanceUid: $u) { numberOfSeries } }", {"u": "1.2.abc"}),
        ("query($u: String!) { series(seriesInstanceUid: $u) { modality } }", {"u": "1." + "2" * 70}),
        (STUDIES, {"filter": {"studyInstanceUid": "not-a-uid"}}),
        (STUDIES, {"filter": {"studyDateFrom": "20241301"}}),
        (STUDIES, {"filter": {"studyDateFrom": "20240201", "studyDateTo": "20240101"}}),
        (STUDIES, {"filter": {"patientName": "*"}}),
        (STUDIES, {"filter": {"patientName": "D*E"}}),
        (STUDIES, {"filter": {"modality": "C*"}}),
        (STUDIES, {"first": 0}),
        (STUDIES, {"first": 201}),
    ],
)
def test_bad_arguments_are_invalid_argument(client: FlaskClient, query: str, variables: dict[str, Any]) -> None:
    assert error_codes(gql(client, query, **variables)) == ["INVALID_ARGUMENT"]


@pytest.mark.parametrize("first", [0, 1001])
def test_instance_page_sizes_out_of_range(client: FlaskClient, archive: Archive, first: int) -> None:
    answer = gql(client, SERIES_INSTANCES, uid=archive.series["A1"], first=first)
    assert error_codes(answer) == ["INVALID_ARGUMENT"]
    assert answer["data"] == {"series": None}  # instances is non-null: the error nulls its series


@pytest.mark.parametrize("cursor", ["garbage", "", "A" * 40])
def test_bad_study_cursors_are_invalid_cursor(client: FlaskClient, cursor: str) -> None:
    assert error_codes(gql(client, STUDIES, after=cursor)) == ["INVALID_CURSOR"]


def test_a_study_cursor_is_bound_to_its_filter(client: FlaskClient, archive: Archive) -> None:
    answer = gql(client, STUDIES, filter=archive.filter(), first=1)
    cursor = answer["data"]["studies"]["nextCursor"]
    assert cursor
    other = gql(client, STUDIES, filter=archive.filter(modality="CT"), first=1, after=cursor)
    assert error_codes(other) == ["INVALID_CURSOR"]
    instances = gql(client, SERIES_INSTANCES, uid=archive.series["A1"], after=cursor)
    assert error_codes(instances) == ["INVALID_CURSOR"]


def test_the_level_loader_loads_a_level_once() -> None:
    batches: list[list[str]] = []

    def load_many(keys: list[str]) -> dict[str, int]:
        batches.append(keys)
        return {key: len(key) for key in keys if key != "missing"}

    loader: LevelLoader[str, int] = LevelLoader(load_many)
    level = ("a", "bb", "missing")
    assert [loader.load(key, level) for key in level] == [1, 2, None]
    assert loader.load("ccc") == 3
    assert loader.load("a", ("a", "dddd")) == 1  # cached: the level is not loaded for a hit
    assert loader.load("dddd", ("a", "dddd", "ccc")) == 4
    assert batches == [["a", "bb", "missing"], ["ccc"], ["dddd"]]


def test_the_level_loader_fails_a_level_once() -> None:
    batches: list[list[str]] = []

    def load_many(keys: list[str]) -> dict[str, int]:
        batches.append(keys)
        raise UpstreamUnavailable("DynamoDB is unavailable")

    loader: LevelLoader[str, int] = LevelLoader(load_many)
    for key in ("a", "b"):
        with pytest.raises(UpstreamUnavailable):
            loader.load(key, ("a", "b"))
    assert batches == [["a", "b"]]


def test_an_unavailable_index_is_upstream_unavailable_once_per_study(
    app: Flask, client: FlaskClient, archive: Archive, monkeypatch: pytest.MonkeyPatch
) -> None:
    index: StudyIndex = app.extensions["dicom_meta.managers"].studies
    calls: list[list[str]] = []

    def unavailable(study_uids: list[str]) -> dict[str, Any]:
        calls.append(study_uids)
        raise UpstreamUnavailable("DynamoDB is unavailable")

    monkeypatch.setattr(index, "series_of", unavailable)
    query = "query($f: StudyFilter) { studies(filter: $f) { items { series { modality } } } }"
    answer = gql(client, query, f=archive.filter())
    assert answer["data"] is None
    assert set(error_codes(answer)) == {"UPSTREAM_UNAVAILABLE"}
    assert len(calls) == 1


def test_study_queries_log_no_patient_values(
    client: FlaskClient, archive: Archive, app: Flask, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret_name = "Leakwell^Henrietta*"
    gql(client, STUDIES, filter={"patientName": secret_name, "studyDateFrom": "19870612"})
    gql(client, STUDIES, filter={"patientName": "*Leakwell*", "studyDateFrom": "1987-06-12x"})
    index: StudyIndex = app.extensions["dicom_meta.managers"].studies

    def explode(study_uids: list[str]) -> None:
        message = f"table on fire for {study_uids} of Leakwell"  # a message quoting values, as libraries' do
        raise RuntimeError(message)

    monkeypatch.setattr(index, "series_of", explode)
    answer = gql(
        client, "query($u: String!) { study(studyInstanceUid: $u) { series { modality } } }", u=archive.studies["A"]
    )
    assert error_codes(answer) == ["INTERNAL"]
    assert "RuntimeError (message withheld)" in caplog.text
    for value in ("Leakwell", "Henrietta", "19870612", archive.studies["A"], archive.prefix):
        assert value not in caplog.text


def test_a_page_of_more_studies_than_the_pool_has_workers(client: FlaskClient, put_dicom: Callable[..., str]) -> None:
    prefix = f"GQP{uuid.uuid4().hex[:8].upper()}"
    count = SHARD_WORKERS + 4
    for n in range(count):
        put_dicom(patient_id=f"{prefix}-{n:02d}", study_date=f"2021{1 + n % 12:02d}{1 + n % 28:02d}")
    query = (
        "query($f: StudyFilter) { studies(filter: $f) { items { numberOfInstances series { numberOfInstances } } } }"
    )

    def listed() -> list[Any]:
        answer = gql(client, query, f={"patientId": f"{prefix}*"})
        assert "errors" not in answer, answer
        items: list[Any] = answer["data"]["studies"]["items"]
        return items if len(items) == count else []

    items = eventually(listed, timeout=INDEXED_WITHIN)
    assert [item["series"] for item in items] == [[{"numberOfInstances": 1}]] * count


def test_nested_lists_share_one_budget_per_request(client: FlaskClient) -> None:
    # The seeds hold more than 5 series: 1,000 instances of each is past the request's 5,000.
    query = "{ studies(first: 50) { items { series { instances(first: 1000) { items { sopInstanceUid } } } } } }"
    answer = gql(client, query)
    assert error_codes(answer) == ["INVALID_ARGUMENT"]
    assert "more than 5000 instances" in answer["errors"][0]["message"]
    small = gql(client, query.replace("first: 1000", "first: 2"))
    assert "errors" not in small and small["data"]["studies"]["items"]


def test_a_request_reads_at_most_its_budget_of_headers() -> None:
    budget = RequestBudget()
    budget.spend("dicomJson", 500)
    with pytest.raises(InvalidArgument):
        budget.spend("dicomJson", 1)
    budget.spend("instances", 5000)
    with pytest.raises(InvalidArgument):
        budget.spend("instances", 1)
