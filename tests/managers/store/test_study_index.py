"""Studies, series and instances kept exact in the metadata table, and read without scans.

Files are real DICOM files in the embedded S3, indexed through ``Indexer`` into a table of this
module's own (the embedded AWS's runner indexes the main table on its own).
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from pydicom.uid import generate_uid

from local.samples import SampleSpec, build_file
from local.server import LocalAWS
from managers.DynamoDBManager import SHARD_WORKERS, DynamoDBManager, normalize_sequencer
from managers.indexing import Indexer, Listed
from managers.store import study_items
from managers.store.study_index import StudyIndex, shard_chunk
from managers.store.study_records import StudyCriteria, TextMatch
from managers.store.table import SHARDS
from seeds import SEED_STUDY_UID

BUCKET = "data-apps-ex"


@pytest.fixture(scope="module")
def studies(dynamodb: DynamoDBManager) -> StudyIndex:
    return StudyIndex(dynamodb)


@pytest.fixture
def put(put_object: Callable[[str, bytes], str]) -> Callable[..., str]:
    """Put a generated file under dicom/studies/; return its key."""

    def put_file(name: str | None = None, **spec: Any) -> str:
        key = f"dicom/studies/{name or uuid.uuid4().hex}.dcm"
        put_object(key, build_file(SampleSpec(**spec)))
        return key

    return put_file


def one(studies: StudyIndex, uid: str) -> Any:
    return studies.get_studies([uid]).get(uid)


def test_a_study_counts_its_series_instances_and_modalities(
    indexer: Indexer, studies: StudyIndex, put: Callable[..., str]
) -> None:
    study, ct, mr = generate_uid(), generate_uid(), generate_uid()
    patient = f"P-{uuid.uuid4().hex[:6]}"
    common = {
        "study_instance_uid": study,
        "patient_id": patient,
        "patient_name": "Doe^Jane^Q",
        "study_date": "20240110",
    }
    keys = [put(**common, series_instance_uid=ct, series_number=2, instance_number=n, modality="CT") for n in (3, 1, 2)]
    keys.append(put(**common, series_instance_uid=mr, series_number=1, instance_number=1, modality="MR"))
    for key in keys:
        assert indexer.index_object(key) == "indexed"
    record = one(studies, study)
    assert (record.number_of_instances, record.number_of_series, record.modalities_in_study) == (4, 2, ["CT", "MR"])
    assert (record.patient_id, record.patient_name, record.study_date) == (patient, "Doe^Jane^Q", "20240110")
    series = studies.series_of([study, generate_uid()])
    assert [(s.series_instance_uid, s.modality, s.number_of_instances) for s in series[study]] == [
        (mr, "MR", 1),
        (ct, "CT", 3),
    ]
    assert list(series.values())[1] == []
    page, position = studies.instances(ct, 2)
    assert [i.instance_number for i in page] == [1, 2] and position is not None
    rest, end = studies.instances(ct, 2, position)
    assert [i.instance_number for i in rest] == [3] and end is None
    assert rest[0].s3_path.endswith(keys[0]) and rest[0].fields["PatientID"] == patient
    assert [i.s3_path for i in studies.instances_by_sop(rest[0].sop_instance_uid)] == [rest[0].s3_path]


def test_duplicates_reorderings_and_deletes_keep_counts_exact(
    indexer: Indexer, studies: StudyIndex, put: Callable[..., str], s3: Any
) -> None:
    study, series = generate_uid(), generate_uid()
    keys = [put(study_instance_uid=study, series_instance_uid=series, modality="CT") for _ in range(3)]
    for key in keys + keys:  # every event twice
        indexer.index_object(key, normalize_sequencer("10"))
    assert one(studies, study).number_of_instances == 3
    # A late create after the delete of the same object changes nothing.
    assert indexer.remove(keys[0], normalize_sequencer("20")) == "removed"
    assert indexer.index_object(keys[0], normalize_sequencer("15")) == "stale"
    assert indexer.remove(keys[0], normalize_sequencer("20")) in {"removed", "stale"}
    assert one(studies, study).number_of_instances == 2
    # A file overwritten with another modality moves its count.
    s3.put_object(
        Bucket=BUCKET,
        Key=keys[1],
        Body=build_file(SampleSpec(study_instance_uid=study, series_instance_uid=series, modality="PT")),
    )
    indexer.index_object(keys[1], normalize_sequencer("30"))
    record = one(studies, study)
    assert (record.number_of_instances, record.modalities_in_study) == (2, ["CT", "PT"])
    for key in keys[1:]:
        indexer.remove(key, normalize_sequencer("40"))
    assert one(studies, study) is None
    assert studies.series_of([study]) == {study: []}
    assert studies.search_studies(StudyCriteria(study_instance_uid=study), 10) == ([], None)


def test_concurrent_events_of_one_study_count_exactly(
    indexer: Indexer, studies: StudyIndex, put: Callable[..., str]
) -> None:
    study = generate_uid()
    series = [generate_uid() for _ in range(3)]
    keys = [put(study_instance_uid=study, series_instance_uid=series[n % 3]) for n in range(24)]
    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(indexer.index_object, keys)) == {"indexed"}
    record = one(studies, study)
    assert (record.number_of_instances, record.number_of_series) == (24, 3)
    assert sorted(s.number_of_instances for s in studies.series_of([study])[study]) == [8, 8, 8]


def test_a_bulk_page_builds_the_same_counts(
    indexer: Indexer, studies: StudyIndex, put: Callable[..., str], dynamodb: DynamoDBManager
) -> None:
    study = generate_uid()
    keys = [put(study_instance_uid=study, series_instance_uid=generate_uid(), modality="MR") for _ in range(30)]
    listed = [Listed(key, "") for key in keys]
    with ThreadPoolExecutor(4) as pool:
        result = indexer.index_page(listed, pool)
        assert (result.indexed, result.failed) == (30, 0)
        again = indexer.index_page(listed, pool)  # the ETags differ: read and written again
    assert again.indexed == 30
    record = one(studies, study)
    assert (record.number_of_instances, record.number_of_series, record.modalities_in_study) == (30, 30, ["MR"])


def test_a_bulk_page_of_one_file_studies_settles_them_together(
    indexer: Indexer, studies: StudyIndex, put: Callable[..., str], dynamodb: DynamoDBManager
) -> None:
    # GIVEN 12 files, each a study of its own (an archive of radiographs)
    tag = uuid.uuid4().hex[:6]
    uids = [generate_uid() for _ in range(12)]
    keys = [put(study_instance_uid=uid, patient_id=f"ONE-{tag}-{n:02}", modality="DX") for n, uid in enumerate(uids)]
    calls: Counter[str] = Counter()

    def count(model: Any, **kwargs: Any) -> None:
        calls[model.name] += 1

    dynamodb.client.meta.events.register("before-call.dynamodb", count)
    # WHEN they are indexed as one bulk page
    try:
        with ThreadPoolExecutor(4) as pool:
            result = indexer.index_page([Listed(key, "") for key in keys], pool)
    finally:
        dynamodb.client.meta.events.unregister("before-call.dynamodb", count)
    # THEN each study is found by its own patient ID's search keys
    assert (result.indexed, result.failed) == (12, 0)
    for n, uid in enumerate(uids):
        criteria = StudyCriteria(patient_id=TextMatch.parse(f"ONE-{tag}-{n:02}", "patientId"))
        assert [study.study_instance_uid for study in studies.search_studies(criteria, 5)[0]] == [uid]
    # … their items were read together, not a GetItem each, and their search keys written in
    # shared batches of 25; each study's mark is its own conditional update
    stored = dynamodb.get_items([study_items.study_key(uid) for uid in uids])
    tokens = sum(len(study_items.token_items(item)) for item in stored.values())
    assert calls["GetItem"] == 0
    assert calls["BatchWriteItem"] == -(-tokens // 25)
    assert calls["UpdateItem"] == 12


def test_study_search_reads_search_keys_then_verifies(
    indexer: Indexer, studies: StudyIndex, put: Callable[..., str]
) -> None:
    tag = uuid.uuid4().hex[:6]
    made = []
    for day, name, modality in (
        ("20230105", "Smith^Anna", "CT"),
        ("20230107", "Doe^John", "MR"),
        ("20230106", "Doe^Jane", "CT"),
    ):
        study = generate_uid()
        made.append(study)
        key = put(
            study_instance_uid=study,
            patient_id=f"ID-{tag}",
            patient_name=name,
            study_date=day,
            modality=modality,
            study_description=f"Knee {tag} left",
        )
        indexer.index_object(key)
    everything = StudyCriteria(patient_id=TextMatch.parse(f"ID-{tag}", "patientId"))
    found, position = studies.search_studies(everything, 2)
    assert [s.study_date for s in found] == ["20230107", "20230106"] and position is not None
    found, position = studies.search_studies(everything, 2, position)
    assert [s.study_date for s in found] == ["20230105"] and position is None
    doe = StudyCriteria(
        patient_name=TextMatch.parse("*do*", "patientName"), study_description=TextMatch.parse(f"*{tag}*", "d")
    )
    assert [s.patient_name for s in studies.search_studies(doe, 10)[0]] == ["Doe^John", "Doe^Jane"]
    anna = StudyCriteria(
        patient_name=TextMatch.parse("*ann*", "patientName"), patient_id=TextMatch.parse(f"ID-{tag}", "p")
    )
    assert [s.patient_name for s in studies.search_studies(anna, 10)[0]] == ["Smith^Anna"]
    ct = StudyCriteria(modality="CT", study_description=TextMatch.parse(f"*{tag}*", "d"), study_date_to="20230106")
    assert [s.study_instance_uid for s in studies.search_studies(ct, 10)[0]] == [made[2], made[0]]
    prefix = StudyCriteria(
        patient_name=TextMatch.parse("DOE^JO*", "patientName"), patient_id=TextMatch.parse(f"ID-{tag}", "p")
    )
    assert [s.patient_name for s in studies.search_studies(prefix, 10)[0]] == ["Doe^John"]


def test_each_shard_is_asked_for_more_than_its_share_of_a_page() -> None:
    assert [shard_chunk(limit) for limit in (1, 10, 25, 50, 100)] == [2, 6, 10, 15, 25]
    assert all(shard_chunk(limit) > -(-(limit + 1) // SHARDS) for limit in range(1, 1001))


def test_a_full_study_page_takes_one_query_a_shard(
    indexer: Indexer, studies: StudyIndex, put: Callable[..., str], dynamodb: DynamoDBManager
) -> None:
    # GIVEN 26 studies of one patient (UIDs fixed, so their shards are too: 1 to 7 in each)
    patient = f"CHUNK-{uuid.uuid4().hex[:6]}"
    for n in range(26):
        indexer.index_object(
            put(study_instance_uid=f"2.25.7300{n:02}", patient_id=patient, study_date=f"202301{n + 1:02}")
        )
    calls: Counter[str] = Counter()

    def count(model: Any, **kwargs: Any) -> None:
        calls[model.name] += 1

    dynamodb.client.meta.events.register("before-call.dynamodb", count)
    # WHEN a page of 25 is asked
    try:
        found, position = studies.search_studies(StudyCriteria(patient_id=TextMatch.parse(patient, "patientId")), 25)
    finally:
        dynamodb.client.meta.events.unregister("before-call.dynamodb", count)
    # THEN it holds the newest 25, from one Query a shard (with 5 a shard: 10) and one BatchGetItem
    assert [study.study_date for study in found] == [f"202301{day:02}" for day in range(26, 1, -1)]
    assert position is not None
    assert calls == {"Query": SHARDS, "BatchGetItem": 1}


def test_search_keys_cover_every_prefix_up_to_the_limit() -> None:
    item = {
        "StudyInstanceUID": {"S": "1.2"},
        "PatientName": {"S": "Doe^Jane"},
        "StudyDescription": {"S": "CT Chest"},
        "M#CT": {"N": "2"},
        "M#MR": {"N": "0"},
    }
    tokens = study_items.study_tokens(item)
    assert {"*", "mod:ct", "pn:d", "pn:doe", "pn:jane", "desc:chest", "desc:ch"} <= set(tokens)
    assert "mod:mr" not in tokens
    assert study_items.query_token("pn", "doe^j") == "pn:doe"
    assert study_items.query_token("desc", "abdominalis") == "desc:abdomina"


def test_the_embedded_aws_seeds_a_study_indexed_on_arrival(local_aws: LocalAWS) -> None:
    keys = (local_aws.credentials.aws_access_key_id, local_aws.credentials.aws_secret_access_key)
    seeded = StudyIndex(DynamoDBManager(*keys, endpoint_url=local_aws.endpoint_url))
    record = seeded.get_studies([SEED_STUDY_UID])[SEED_STUDY_UID]
    assert (record.patient_name, record.number_of_series, record.number_of_instances) == ("Doe^John", 2, 4)
    assert [s.series_description for s in seeded.series_of([SEED_STUDY_UID])[SEED_STUDY_UID]] == [
        "SAG T1",
        "COR T2 FS",
    ]
    found, _ = seeded.search_studies(StudyCriteria(patient_name=TextMatch.parse("*joh*", "patientName")), 10)
    assert SEED_STUDY_UID in [study.study_instance_uid for study in found]


def test_the_series_of_more_studies_than_the_pool_has_workers(studies: StudyIndex) -> None:
    # Each study's Query runs on the pool's thread that asked for it: none waits for another task.
    uids = [str(generate_uid()) for _ in range(SHARD_WORKERS * 2 + 3)]
    with ThreadPoolExecutor(1) as guard:
        found = guard.submit(studies.series_of, uids).result(timeout=60)
    assert found == {uid: [] for uid in uids}
