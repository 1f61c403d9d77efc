"""The real dicomweb-client package against the app served over HTTP, on files indexed on arrival."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from dicomweb_client.api import DICOMwebClient
from flask import Flask
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from config import S3_BUCKET_NAME
from tests.resolvers.dicomweb.test_dicomweb import (
    MODALITIES,
    PATIENT_NAME,
    SERIES_INSTANCES,
    SERIES_UID,
    SOP_UID,
    STUDY_INSTANCES,
    STUDY_SERIES,
    STUDY_UID,
    Archive,
    put_archive,
    values,
)


@pytest.fixture(scope="module")
def archive(app: Flask, s3: Any) -> Iterator[Archive]:
    made = Archive()
    put_archive(s3, app.test_client(), made)
    yield made
    for key in made.keys:
        s3.delete_object(Bucket=S3_BUCKET_NAME, Key=key)


def test_search_for_studies_as_ohif_asks(dicomweb: DICOMwebClient, archive: Archive) -> None:
    studies = dicomweb.search_for_studies(
        limit=101,
        offset=0,
        fuzzymatching=False,
        fields=["00081030", "00080060", "00080090", "00100030"],
        search_filters={
            "PatientName": "*alph*",
            "00100020": f"*{archive.patient_id.lower()}*",
            "StudyDate": "20250101-20251231",
            "ModalitiesInStudy": "CT",
        },
    )
    assert [values(study, STUDY_UID) for study in studies] == [[archive.new_study]]
    study = studies[0]
    assert values(study, PATIENT_NAME) == [{"Alphabetic": "Zeta^Alphonse"}]
    assert values(study, MODALITIES) == ["CT", "MR"]
    assert (values(study, STUDY_SERIES), values(study, STUDY_INSTANCES)) == ([2], [5])
    assert values(study, "00081030") == ["CHEST ABDOMEN"]
    # pydicom reads the answer as a dataset, as a Python viewer would.
    assert Dataset.from_json(study).PatientName == "Zeta^Alphonse"


def test_search_for_studies_pages_with_offset(dicomweb: DICOMwebClient, archive: Archive) -> None:
    filters = {"PatientID": archive.patient_id}
    pages = [dicomweb.search_for_studies(limit=1, offset=offset, search_filters=filters) for offset in (0, 1, 2)]
    assert [[values(study, STUDY_UID) for study in page] for page in pages] == [
        [[archive.new_study]],
        [[archive.old_study]],
        [],
    ]
    # The client's own paging: offset after offset until an empty page.
    everything = dicomweb.search_for_studies(limit=1, search_filters=filters, get_remaining=True)
    assert [values(study, STUDY_UID) for study in everything] == [[archive.new_study], [archive.old_study]]
    assert dicomweb.search_for_studies(search_filters={"StudyInstanceUID": generate_uid()}) == []


def test_search_for_series_and_instances(dicomweb: DICOMwebClient, archive: Archive) -> None:
    series = dicomweb.search_for_series(archive.new_study, fields=["0008103E", "00080021"])
    assert [values(item, SERIES_UID) for item in series] == [[archive.ct_series], [archive.mr_series]]
    assert [values(item, SERIES_INSTANCES) for item in series] == [[3], [2]]
    everywhere = dicomweb.search_for_series(search_filters={"PatientID": archive.patient_id, "Modality": "CR"})
    assert [values(item, SERIES_UID) for item in everywhere] == [[archive.old_series]]
    instances = dicomweb.search_for_instances(archive.new_study, archive.ct_series, limit=2, offset=1)
    assert [values(item, SOP_UID) for item in instances] == [[archive.ct_sops[2]], [archive.ct_sops[0]]]
    in_study = dicomweb.search_for_instances(archive.new_study)
    assert len(in_study) == 5
    by_uid = dicomweb.search_for_instances(search_filters={"SOPInstanceUID": archive.old_sops[0]})
    assert [values(item, STUDY_UID) for item in by_uid] == [[archive.old_study]]


def test_retrieve_study_and_series_metadata(dicomweb: DICOMwebClient, archive: Archive) -> None:
    study = dicomweb.retrieve_study_metadata(archive.new_study)
    datasets = [Dataset.from_json(item) for item in study]
    assert sorted(dataset.SOPInstanceUID for dataset in datasets) == sorted(archive.ct_sops + archive.mr_sops)
    assert {dataset.Modality for dataset in datasets} == {"CT", "MR"}
    assert all(dataset.StudyInstanceUID == archive.new_study for dataset in datasets)
    series = dicomweb.retrieve_series_metadata(archive.new_study, archive.mr_series)
    assert [Dataset.from_json(item).InstanceNumber for item in series] == [1, 2]
    instance = dicomweb.retrieve_instance_metadata(archive.new_study, archive.mr_series, archive.mr_sops[0])
    assert Dataset.from_json(instance).SOPInstanceUID == archive.mr_sops[0]
