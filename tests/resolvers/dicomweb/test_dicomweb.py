"""DICOMweb under /dicomweb: query parsing and DICOM JSON rendering, then the routes on indexed files."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from pydicom.uid import generate_uid

from app import create_app
from config import S3_BUCKET_NAME
from errors import InvalidArgument, NotDicom, UpstreamUnavailable
from local.samples import SampleSpec, build_file
from local.server import LocalAWS
from managers.dicom.attributes import STUDY_ANSWER
from managers.dicom.json_model import attributes_json as render
from managers.store.study_records import StudyCriteria, TextMatch
from resolvers.dicomweb import query as dicomweb
from resolvers.dicomweb import retrieve as dicomweb_retrieve
from resolvers.dicomweb import search as dicomweb_search

DICOM_JSON = "application/dicom+json"

# Tags of the answers (PS3.6).
STUDY_UID, SERIES_UID, SOP_UID = "0020000D", "0020000E", "00080018"
PATIENT_NAME, PATIENT_ID, STUDY_DATE = "00100010", "00100020", "00080020"
MODALITIES, MODALITY, SERIES_NUMBER = "00080061", "00080060", "00200011"
INSTANCE_NUMBER, ROWS, COLUMNS = "00200013", "00280010", "00280011"
STUDY_SERIES, STUDY_INSTANCES, SERIES_INSTANCES = "00201206", "00201208", "00201209"


# --------------------------------------------------------------------------- parsing


def parse(level: dicomweb.Level, query: str, **path: str) -> dicomweb.QidoQuery:
    pairs = [tuple(item.split("=", 1)) for item in query.split("&") if item] if query else []
    return dicomweb.parse_query(level, [(key, value) for key, value in pairs], **path)


def test_keys_by_keyword_or_tag_build_the_study_criteria() -> None:
    query = parse("study", "00100020=*pat-7*&PatientName=DOE^J*&StudyDescription=*chest*&StudyDate=20240101-")
    assert query.criteria.patient_id == TextMatch("pat-7", "word")
    assert query.criteria.patient_name == TextMatch("doe^j", "prefix")
    assert query.criteria.study_description == TextMatch("chest", "word")
    assert (query.criteria.study_date_from, query.criteria.study_date_to) == ("20240101", None)
    assert (query.limit, query.offset, query.warnings) == (dicomweb.DEFAULT_LIMIT, 0, ())


@pytest.mark.parametrize(
    ("value", "bounds"),
    [
        ("20240105", ("20240105", "20240105")),
        ("20240101-20241231", ("20240101", "20241231")),
        ("-20241231", (None, "20241231")),
        ("20240101-", ("20240101", None)),
        ("", (None, None)),
    ],
)
def test_date_ranges(value: str, bounds: tuple[str | None, str | None]) -> None:
    query = parse("series", f"StudyDate={value}&SeriesDate={value}")
    assert (query.criteria.study_date_from, query.criteria.study_date_to) == bounds
    assert query.series_date == bounds


@pytest.mark.parametrize(
    "query",
    [
        "StudyDate=2024",
        "StudyDate=20241301",
        "StudyDate=20240201-20240101",
        "StudyDate=-",
        "StudyDate=1-2-3",
        "limit=0",
        "limit=-1",
        "limit=ten",
        "limit=١",
        "offset=10001",
        "offset=-5",
        "fuzzymatching=maybe",
        "includefield=NotAKeyword",
        "includefield=PatientName.FamilyName",
        "Bogus=1",
        "00099999=1",
        "SeriesInstanceUID=1.2",  # a series key on a study search
        "Modality=CT",
        "StudyInstanceUID=1.2.abc",
        "StudyInstanceUID=1.2..3",
        "PatientName=DO?E",
        "PatientName=D*E",
        "PatientID=a&PatientID=b",
        "limit=1&limit=2",
        "ModalitiesInStudy=C*",
        "ModalitiesInStudy=®",
        "ModalitiesInStudy=CT,",
        "StudyInstanceUID=1.2,,1.3",
        "StudyInstanceUID=1.2 ",
        f"StudyInstanceUID={','.join(str(n) for n in range(101))}",
    ],
)
def test_malformed_queries_are_invalid_arguments(query: str) -> None:
    with pytest.raises(InvalidArgument):
        parse("study", query)


def test_too_many_combinations_of_list_values_are_refused() -> None:
    uids = ",".join(f"1.{n}" for n in range(40))
    query = parse("study", f"StudyInstanceUID={uids}&ModalitiesInStudy=CT,MR,PT")
    with pytest.raises(InvalidArgument):
        dicomweb_search._variants(query)


def test_limit_is_capped_with_a_warning_and_fuzzy_matching_is_literal() -> None:
    query = parse("study", "limit=5000&fuzzymatching=true&offset=10000")
    assert (query.limit, query.offset) == (dicomweb.MAX_LIMIT, 10_000)
    assert query.warnings == (dicomweb.LIMIT_WARNING, dicomweb.FUZZY_WARNING)
    assert parse("study", "fuzzymatching=false&limit=1000").warnings == ()


def test_lists_by_backslash_comma_or_repetition_and_the_path_uid() -> None:
    query = parse("instance", "StudyInstanceUID=1.2\\1.3,1.4&StudyInstanceUID=1.5&ModalitiesInStudy=ct,MR")
    assert query.study_uids == {"1.2", "1.3", "1.4", "1.5"}
    assert query.modalities_in_study == {"CT", "MR"}
    # The path's UID narrows the query's list: a UID outside it matches nothing.
    assert parse("series", "StudyInstanceUID=1.2,1.3", study_uid="1.3").study_uids == {"1.3"}
    assert parse("series", "StudyInstanceUID=1.2", study_uid="1.3").study_uids == frozenset()
    assert parse("instance", "", study_uid="1.3", series_uid="1.3.4").series_uids == {"1.3.4"}
    with pytest.raises(InvalidArgument):
        parse("series", "", study_uid="not-a-uid")


def test_includefield_by_keyword_tag_repetition_or_all() -> None:
    query = parse("series", "includefield=SeriesDate,00081030&includefield=00091001&includefield=PatientName")
    assert query.include == {"SeriesDate", "StudyDescription", "PatientName"}
    assert not query.include_all
    assert parse("study", "includefield=all").include_all


def test_universal_matching_is_no_criterion() -> None:
    query = parse("study", "PatientName=*&PatientID=&AccessionNumber=**&ModalitiesInStudy=")
    assert query.criteria == StudyCriteria()
    assert query.modalities_in_study is None


# --------------------------------------------------------------------------- rendering


def test_render_writes_the_dicom_json_model() -> None:
    values = {
        "StudyInstanceUID": "1.2.3",
        "PatientName": "Doe^Jane^^^",
        "ModalitiesInStudy": ["CT", "MR"],
        "NumberOfStudyRelatedInstances": 12,
        "SeriesNumber": "7",
        "ImageType": "ORIGINAL\\PRIMARY",
        "SliceThickness": "2.5",
        "StudyDescription": "A\\B",
    }
    model = render(values, ["ImageType", "SliceThickness", "StudyTime"], STUDY_ANSWER)
    assert model[STUDY_UID] == {"vr": "UI", "Value": ["1.2.3"]}
    assert model[PATIENT_NAME] == {"vr": "PN", "Value": [{"Alphabetic": "Doe^Jane"}]}
    assert model[MODALITIES] == {"vr": "CS", "Value": ["CT", "MR"]}
    assert model[STUDY_INSTANCES] == {"vr": "IS", "Value": [12]}
    assert model["00080008"] == {"vr": "CS", "Value": ["ORIGINAL", "PRIMARY"]}
    assert model["00180050"] == {"vr": "DS", "Value": [2.5]}
    # Required but empty: the VR alone; asked for but not held: left out.
    assert model[PATIENT_ID] == {"vr": "LO"} and model["00080030"] == {"vr": "TM"}
    assert SERIES_NUMBER not in model
    assert list(model) == sorted(model)


def test_render_leaves_out_what_it_cannot_write() -> None:
    model = render({"Rows": "12a", "PixelData": b"x", "PatientName": "^^"}, ["Rows", "PixelData", "PatientName"], [])
    assert model == {}


# --------------------------------------------------------------------------- routes on indexed files


@dataclass
class Archive:
    """Two studies of one patient, the newer with a CT and an MR series, put under dicom/."""

    patient_id: str = field(default_factory=lambda: f"DW-{uuid.uuid4().hex[:10]}")
    new_study: str = field(default_factory=generate_uid)
    old_study: str = field(default_factory=generate_uid)
    ct_series: str = field(default_factory=generate_uid)
    mr_series: str = field(default_factory=generate_uid)
    old_series: str = field(default_factory=generate_uid)
    ct_sops: list[str] = field(default_factory=lambda: [generate_uid() for _ in range(3)])
    mr_sops: list[str] = field(default_factory=lambda: [generate_uid() for _ in range(2)])
    old_sops: list[str] = field(default_factory=lambda: [generate_uid()])
    keys: list[str] = field(default_factory=list)

    def specs(self) -> Iterator[SampleSpec]:
        common: dict[str, Any] = {
            "patient_id": self.patient_id,
            "patient_name": "Zeta^Alphonse",
            "accession_number": "ACC-77",
        }
        for number, sop in zip((3, 1, 2), self.ct_sops, strict=True):
            yield SampleSpec(
                **common,
                study_date="20250310",
                study_description="CHEST ABDOMEN",
                study_instance_uid=self.new_study,
                series_instance_uid=self.ct_series,
                series_number=1,
                instance_number=number,
                modality="CT",
                sop_instance_uid=sop,
                rows=32,
            )
        for number, sop in enumerate(self.mr_sops, start=1):
            yield SampleSpec(
                **common,
                study_date="20250310",
                study_description="CHEST ABDOMEN",
                study_instance_uid=self.new_study,
                series_instance_uid=self.mr_series,
                series_number=2,
                instance_number=number,
                modality="MR",
                sop_instance_uid=sop,
            )
        yield SampleSpec(
            **common,
            study_date="20190102",
            study_description="KNEE",
            study_instance_uid=self.old_study,
            series_instance_uid=self.old_series,
            series_number=1,
            instance_number=1,
            modality="CR",
            sop_instance_uid=self.old_sops[0],
        )


def body(answer: Any) -> Any:
    """Return an answer's JSON body (asserting it has one)."""
    assert answer.json is not None, answer.data[:200]
    return answer.json


def wait_for(probe: Callable[[], Any], timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := probe()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return result


def put_archive(s3: Any, client: FlaskClient, archive: Archive) -> None:
    """Put the archive's files under dicom/ and wait until the index counts all of them."""
    for spec in archive.specs():
        key = f"dicom/dicomweb-tests/{spec.file_name}"
        s3.put_object(Bucket=S3_BUCKET_NAME, Key=key, Body=build_file(spec))
        archive.keys.append(key)

    def indexed() -> bool:
        answer = client.get("/dicomweb/studies", query_string={"PatientID": archive.patient_id})
        if answer.status_code != 200:
            return False
        return sorted(study[STUDY_INSTANCES]["Value"][0] for study in body(answer)) == [1, 5]

    assert wait_for(indexed), "the archive was not indexed in time"


@pytest.fixture(scope="module")
def archive(app: Flask, s3: Any) -> Iterator[Archive]:
    made = Archive()
    put_archive(s3, app.test_client(), made)
    yield made
    for key in made.keys:
        s3.delete_object(Bucket=S3_BUCKET_NAME, Key=key)


def values(study_or_item: dict[str, Any], tag: str) -> list[Any] | None:
    return study_or_item.get(tag, {}).get("Value")


def test_study_search_answers_values_counts_and_order(client: FlaskClient, archive: Archive) -> None:
    answer = client.get(f"/dicomweb/studies?00100020={archive.patient_id}")
    assert answer.status_code == 200 and answer.mimetype == DICOM_JSON
    studies = body(answer)
    assert [values(study, STUDY_UID) for study in studies] == [[archive.new_study], [archive.old_study]]
    newest = studies[0]
    assert values(newest, STUDY_DATE) == ["20250310"]
    assert values(newest, PATIENT_NAME) == [{"Alphabetic": "Zeta^Alphonse"}]
    assert values(newest, PATIENT_ID) == [archive.patient_id]
    assert values(newest, "00080050") == ["ACC-77"]
    assert values(newest, MODALITIES) == ["CT", "MR"]
    assert (values(newest, STUDY_SERIES), values(newest, STUDY_INSTANCES)) == ([2], [5])
    # Every attribute of the level is there, empty ones with their VR alone.
    assert newest["00100040"] == {"vr": "CS"} and newest["00080090"] == {"vr": "PN"}
    assert len(newest) == len(STUDY_ANSWER)


def test_study_search_matching_the_way_ohif_asks(client: FlaskClient, archive: Archive) -> None:
    # The parameters OHIF's study list sends for a typed name, a date range and a modality.
    ohif = {
        "PatientName": "*alph*",
        "00100020": f"*{archive.patient_id[:8].lower()}*",
        "StudyDate": "20250101-20251231",
        "ModalitiesInStudy": "MR,PT",
        "limit": "101",
        "offset": "0",
        "fuzzymatching": "false",
        "includefield": "00081030,00080060,00080090,00100030",
    }
    answer = client.get("/dicomweb/studies", query_string={**ohif, "AccessionNumber": "*acc-7*"})
    assert answer.status_code == 200 and "Warning" not in answer.headers
    assert [values(study, STUDY_UID) for study in body(answer)] == [[archive.new_study]]
    assert values(body(answer)[0], "00081030") == ["CHEST ABDOMEN"]
    for narrower in ({"StudyDescription": "*abdo*"}, {"StudyInstanceUID": f"{archive.new_study}\\1.2.3"}):
        assert len(body(client.get("/dicomweb/studies", query_string={**ohif, **narrower}))) == 1
    for excluding in ({"ModalitiesInStudy": "PT"}, {"StudyDate": "-20241231"}, {"PatientName": "*zz*"}):
        assert body(client.get("/dicomweb/studies", query_string={**ohif, **excluding})) == []


def test_limit_and_offset_page_in_order(client: FlaskClient, archive: Archive) -> None:
    def page(offset: int) -> list[Any]:
        query = {"PatientID": archive.patient_id, "limit": "1", "offset": str(offset)}
        return [values(study, STUDY_UID) for study in body(client.get("/dicomweb/studies", query_string=query))]

    assert [page(0), page(1), page(2)] == [[[archive.new_study]], [[archive.old_study]], []]


def test_series_of_a_study_and_across_studies(client: FlaskClient, archive: Archive) -> None:
    series = body(client.get(f"/dicomweb/studies/{archive.new_study}/series?includefield=SeriesDate,PatientID"))
    assert [values(item, SERIES_UID) for item in series] == [[archive.ct_series], [archive.mr_series]]
    assert [values(item, MODALITY) for item in series] == [["CT"], ["MR"]]
    assert [values(item, SERIES_NUMBER) for item in series] == [[1], [2]]
    assert [values(item, SERIES_INSTANCES) for item in series] == [[3], [2]]
    assert values(series[0], STUDY_UID) == [archive.new_study] and values(series[0], PATIENT_ID) == [archive.patient_id]
    only_mr = body(client.get(f"/dicomweb/studies/{archive.new_study}/series?Modality=mr"))
    assert [values(item, SERIES_UID) for item in only_mr] == [[archive.mr_series]]
    everywhere = body(client.get(f"/dicomweb/series?PatientID={archive.patient_id}&offset=1"))
    assert [values(item, SERIES_UID) for item in everywhere] == [[archive.mr_series], [archive.old_series]]
    by_uid = body(client.get(f"/dicomweb/series?SeriesInstanceUID={archive.old_series}"))
    assert [values(item, STUDY_UID) for item in by_uid] == [[archive.old_study]]
    listed = body(client.get(f"/dicomweb/series?SeriesInstanceUID={archive.ct_series},{archive.mr_series}&Modality=MR"))
    assert [values(item, SERIES_UID) for item in listed] == [[archive.mr_series]]


def test_instances_of_a_series_a_study_and_by_uid(client: FlaskClient, archive: Archive) -> None:
    base = f"/dicomweb/studies/{archive.new_study}"
    ct = body(client.get(f"{base}/series/{archive.ct_series}/instances"))
    # By InstanceNumber, whatever order the files arrived in.
    assert [values(item, INSTANCE_NUMBER) for item in ct] == [[1], [2], [3]]
    assert [values(item, SOP_UID) for item in ct] == [[archive.ct_sops[1]], [archive.ct_sops[2]], [archive.ct_sops[0]]]
    assert values(ct[0], ROWS) == [32] and values(ct[0], COLUMNS) == [ct[0][COLUMNS]["Value"][0]]
    assert isinstance(ct[0][COLUMNS]["Value"][0], int)
    assert values(ct[0], "00080016") == ["1.2.840.10008.5.1.4.1.1.2"]
    paged = body(client.get(f"{base}/instances?limit=2&offset=2"))
    assert [values(item, SOP_UID) for item in paged] == [[archive.ct_sops[0]], [archive.mr_sops[0]]]
    one = body(client.get(f"/dicomweb/instances?SOPInstanceUID={archive.mr_sops[1]}&includefield=PatientName"))
    assert [values(item, SERIES_UID) for item in one] == [[archive.mr_series]]
    assert values(one[0], PATIENT_NAME) == [{"Alphabetic": "Zeta^Alphonse"}]


def test_searches_that_match_nothing_are_empty_successes(client: FlaskClient, archive: Archive) -> None:
    unknown = generate_uid()
    for path in (
        f"/dicomweb/studies?StudyInstanceUID={unknown}",
        f"/dicomweb/studies/{unknown}/series",
        f"/dicomweb/studies/{unknown}/instances",
        f"/dicomweb/studies/{archive.new_study}/series/{archive.old_series}/instances",
        f"/dicomweb/instances?SOPInstanceUID={unknown}",
        f"/dicomweb/series?SeriesInstanceUID={unknown}",
    ):
        answer = client.get(path)
        assert (answer.status_code, answer.mimetype, body(answer)) == (200, DICOM_JSON, []), path


def test_warning_headers(client: FlaskClient, archive: Archive) -> None:
    answer = client.get(f"/dicomweb/studies?PatientID={archive.patient_id}&fuzzymatching=true&limit=5000")
    assert answer.status_code == 200 and len(body(answer)) == 2
    assert answer.headers.getlist("Warning") == [
        f"299 http://localhost/dicomweb: {dicomweb.LIMIT_WARNING}",
        "299 http://localhost/dicomweb: The fuzzymatching parameter is not supported. "
        "Only literal matching has been performed.",
    ]


@pytest.mark.parametrize(
    "path",
    [
        "/dicomweb/studies?Bogus=1",
        "/dicomweb/studies?limit=0",
        "/dicomweb/studies?StudyDate=20240230",
        "/dicomweb/studies/1.2.x/series",
        "/dicomweb/series?SOPInstanceUID=1.2",
        "/dicomweb/studies/1..2/metadata",
        "/dicomweb/studies/1.2/series/x/instances/1.3/metadata",
    ],
)
def test_bad_requests_are_400_in_the_contract_shape(client: FlaskClient, path: str) -> None:
    answer = client.get(path)
    assert answer.status_code == 400, path
    assert body(answer)["error"]["code"] == "INVALID_ARGUMENT"
    assert body(answer)["error"]["request_id"] == answer.headers["X-Request-ID"]


def test_metadata_of_a_study_a_series_and_an_instance(client: FlaskClient, archive: Archive) -> None:
    study = client.get(f"/dicomweb/studies/{archive.new_study}/metadata")
    assert study.status_code == 200 and study.mimetype == DICOM_JSON
    expected = [archive.ct_sops[1], archive.ct_sops[2], archive.ct_sops[0], *archive.mr_sops]
    assert [values(item, SOP_UID) for item in body(study)] == [[sop] for sop in expected]
    first = body(study)[0]
    assert values(first, PATIENT_NAME) == [{"Alphabetic": "Zeta^Alphonse"}]
    assert values(first, ROWS) == [32]
    instance = f"/dicomweb/studies/{archive.new_study}/series/{archive.ct_series}/instances/{expected[0]}"
    # Pixel data is a BulkDataURI of the instance's, under the URL the request reached
    assert first["7FE00010"] == {"vr": "OW", "BulkDataURI": f"http://localhost{instance}/bulkdata/7FE00010"}
    series = body(client.get(f"/dicomweb/studies/{archive.new_study}/series/{archive.mr_series}/metadata"))
    assert [values(item, SOP_UID) for item in series] == [[sop] for sop in archive.mr_sops]
    path = f"/dicomweb/studies/{archive.new_study}/series/{archive.mr_series}/instances/{archive.mr_sops[1]}/metadata"
    one = body(client.get(path))
    assert [values(item, SOP_UID) for item in one] == [[archive.mr_sops[1]]]
    assert one[0] == series[1]


def test_metadata_of_unknown_things_is_404(client: FlaskClient, archive: Archive) -> None:
    unknown = generate_uid()
    for path in (
        f"/dicomweb/studies/{unknown}/metadata",
        f"/dicomweb/studies/{archive.new_study}/series/{unknown}/metadata",
        f"/dicomweb/studies/{archive.new_study}/series/{archive.old_series}/metadata",  # another study's series
        f"/dicomweb/studies/{archive.new_study}/series/{archive.ct_series}/instances/{archive.mr_sops[0]}/metadata",
    ):
        answer = client.get(path)
        assert (answer.status_code, body(answer)["error"]["code"]) == (404, "NOT_FOUND"), path


def test_metadata_leaves_out_a_file_that_cannot_be_read(
    client: FlaskClient, app: Flask, archive: Archive, monkeypatch: pytest.MonkeyPatch
) -> None:
    dicom = app.extensions["dicom_meta.managers"].dicom
    read = dicom.dicom_json

    def one_is_broken(s3_path: str, keywords: list[str] | None = None, **options: Any) -> dict[str, Any]:
        if archive.ct_sops[0] in s3_path:
            raise NotDicom("the object is not a readable DICOM file")
        return read(s3_path, keywords, **options)

    monkeypatch.setattr(dicom, "dicom_json", one_is_broken)
    answer = client.get(f"/dicomweb/studies/{archive.new_study}/series/{archive.ct_series}/metadata")
    assert answer.status_code == 200
    assert [values(item, SOP_UID) for item in body(answer)] == [[archive.ct_sops[1]], [archive.ct_sops[2]]]
    assert answer.headers["Warning"].endswith(
        "1 of the instances could not be read (gone or no longer DICOM) and were left out."
    )

    def s3_is_down(s3_path: str, keywords: list[str] | None = None, **options: Any) -> dict[str, Any]:
        raise UpstreamUnavailable("S3 did not answer")

    monkeypatch.setattr(dicom, "dicom_json", s3_is_down)
    answer = client.get(f"/dicomweb/studies/{archive.new_study}/metadata")
    assert (answer.status_code, body(answer)["error"]["code"]) == (503, "UPSTREAM_UNAVAILABLE")


def test_a_study_over_the_metadata_bound_is_refused(
    client: FlaskClient, archive: Archive, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dicomweb_retrieve, "MAX_METADATA_INSTANCES", 4)
    answer = client.get(f"/dicomweb/studies/{archive.new_study}/metadata")
    assert (answer.status_code, body(answer)["error"]["code"]) == (400, "INVALID_ARGUMENT")
    assert client.get(f"/dicomweb/studies/{archive.new_study}/series/{archive.ct_series}/metadata").status_code == 200


def test_the_examined_bound_stops_a_walk_with_a_warning(
    client: FlaskClient, archive: Archive, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dicomweb_search, "MAX_EXAMINED", 3)
    answer = client.get(f"/dicomweb/studies/{archive.new_study}/instances")
    assert answer.status_code == 200 and len(body(answer)) < 5
    assert answer.headers["Warning"].endswith(dicomweb_search.EXAMINED_WARNING)


def test_dicomweb_needs_an_api_key_when_keys_are_set(local_aws: LocalAWS, archive: Archive) -> None:
    keyed = create_app(
        {"AWS_ENDPOINT_URL": local_aws.endpoint_url, "AWS_CREDENTIALS": local_aws.credentials, "API_KEYS": ["k-1"]}
    ).test_client()
    path = f"/dicomweb/studies/{archive.new_study}/series"
    refused = keyed.get(path)
    assert (refused.status_code, body(refused)["error"]["code"]) == (401, "UNAUTHENTICATED")
    assert keyed.get(path, headers={"Authorization": "Bearer k-1"}).status_code == 200
    assert keyed.get(path.replace("/series", "/metadata"), headers={"X-API-Key": "k-1"}).status_code == 200


def test_a_viewer_on_another_origin_may_call_dicomweb(local_aws: LocalAWS, archive: Archive) -> None:
    origin = "http://localhost:3000"  # OHIF's development server
    viewer = create_app(
        {
            "AWS_ENDPOINT_URL": local_aws.endpoint_url,
            "AWS_CREDENTIALS": local_aws.credentials,
            "API_KEYS": ["k-2"],
            "CORS_ORIGINS": origin,
        }
    ).test_client()
    preflight = viewer.options(
        "/dicomweb/studies",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "accept, authorization",
        },
    )
    assert preflight.headers["Access-Control-Allow-Origin"] == origin
    assert {"accept", "authorization"} <= {
        name.strip().lower() for name in preflight.headers["Access-Control-Allow-Headers"].split(",")
    }
    answer = viewer.get(
        f"/dicomweb/studies?PatientID={archive.patient_id}&fuzzymatching=true",
        headers={"Origin": origin, "Authorization": "Bearer k-2", "Accept": "application/dicom+json"},
    )
    assert answer.status_code == 200 and len(body(answer)) == 2
    assert "Warning" in answer.headers["Access-Control-Expose-Headers"]


def test_no_query_value_or_header_value_reaches_the_logs(
    client: FlaskClient, archive: Archive, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    client.get(f"/dicomweb/studies?PatientName=*alph*&PatientID={archive.patient_id}&StudyDate=20250310")
    client.get(f"/dicomweb/studies?PatientName=Leakwell?&PatientID={archive.patient_id}")  # a 400
    client.get(f"/dicomweb/studies/{archive.new_study}/series/{archive.ct_series}/metadata")
    client.get(f"/dicomweb/instances?SOPInstanceUID={archive.ct_sops[0]}&includefield=all")
    logged = caplog.text + "\n".join(str(record.args) for record in caplog.records) + "".join(capfd.readouterr())
    for value in (
        archive.patient_id,
        "Zeta",
        "Alphonse",
        "Leakwell",
        archive.new_study,
        archive.ct_sops[0],
        "20250310",
    ):
        assert value not in logged
    assert "/dicomweb/studies/<study>/series/<series>/metadata" in caplog.text  # the access line: the route only


def test_a_series_search_over_many_studies_answers(client: FlaskClient, put_dicom: Callable[..., str]) -> None:
    # More studies than the DynamoDB manager's pool has workers, their series asked for at once
    # (StudyIndex.series_of once hung the process so).
    patient = f"DW-MANY-{uuid.uuid4().hex[:8]}"
    for day in range(1, 18):
        put_dicom(patient_id=patient, study_date=f"202401{day:02d}", study_instance_uid=generate_uid(), series_number=1)
    studies = lambda: body(client.get(f"/dicomweb/studies?PatientID={patient}"))  # noqa: E731 - a probe
    assert wait_for(lambda: len(studies()) == 17), "the studies were not indexed in time"
    answers: list[Any] = []
    thread = threading.Thread(
        target=lambda: answers.append(client.get(f"/dicomweb/series?PatientID={patient}&limit=100")), daemon=True
    )
    thread.start()
    thread.join(timeout=60)
    assert answers, "the series search did not answer"
    dates = [item[STUDY_UID]["Value"][0] for item in body(answers[0])]
    assert len(dates) == 17
