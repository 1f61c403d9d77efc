"""The files `make run` seeds under dicom/: real pictures in several transfer syntaxes, each with
a Modality and UIDs of its own, the same on every run; and, through the app on the session's
seeded embedded AWS, each one rendered as an image that is not one colour."""

from __future__ import annotations

import io
from functools import cache
from typing import Any

import numpy as np
import pytest
from flask.testing import FlaskClient
from pydicom import dcmread
from pydicom.dataset import FileDataset
from pydicom.uid import (
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGLosslessSV1,
    JPEGLSLossless,
    RLELossless,
)

from local.samples import BUNDLED_SEEDS, SAMPLER_HEADER, SAMPLER_SERIES, pydicom_test_file, seed_files, seed_study
from seeds import SEED_SAMPLER_STUDY_UID, SEED_STUDY_UID, SEED_UID_ROOT
from tests.resolvers.dicomweb.test_dicomweb import body, wait_for

# What the issue asks the seeds to hold, beside the native syntaxes.
REQUIRED_SYNTAXES = {
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    ExplicitVRBigEndian,
    RLELossless,
    JPEGBaseline8Bit,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEG2000Lossless,
}
# Seeding stays quick: every seed is a small file.
MAX_SEED_BYTES = 1024 * 1024


@cache
def seeded() -> dict[str, FileDataset]:
    """The seeded files by name, read back with pydicom."""
    return {name: dcmread(io.BytesIO(data)) for name, data in seed_files()}


def images() -> list[str]:
    """The names of the seeded files that hold pixel data."""
    return [name for name, ds in seeded().items() if "PixelData" in ds]


def test_the_seeds_cover_the_transfer_syntaxes() -> None:
    syntaxes = {ds.file_meta.TransferSyntaxUID for ds in seeded().values()}
    assert len(syntaxes) >= 5
    assert not REQUIRED_SYNTAXES - syntaxes, REQUIRED_SYNTAXES - syntaxes


def test_every_seeded_image_names_its_modality() -> None:
    # OHIF 3.13 cannot open a study whose ModalitiesInStudy is empty (docs/ohif.md).
    assert images() and not [name for name in images() if not seeded()[name].get("Modality")]


def test_the_seeds_uids_are_unique_and_the_same_on_every_call() -> None:
    files = seed_files()
    assert files == seed_files(), "two calls seed different files"
    datasets = seeded().values()
    sops = [str(ds.SOPInstanceUID) for ds in datasets]
    assert len(set(sops)) == len(sops) == len(files)
    assert [name for name, _ in files] == [f"anon-{sop}.dcm" for sop in sops]
    # The files written here say their own UID in their file meta (pydicom's rtplan.dcm does not).
    ours = [ds for ds in datasets if ds.SOPInstanceUID.startswith(SEED_UID_ROOT)]
    assert len(ours) == len(files) - len(BUNDLED_SEEDS)
    assert all(ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID for ds in ours)
    # A series lies in one study; no UID names both a study and a series or an instance.
    study_of: dict[str, set[str]] = {}
    for ds in datasets:
        study_of.setdefault(str(ds.SeriesInstanceUID), set()).add(str(ds.StudyInstanceUID))
    assert all(len(studies) == 1 for studies in study_of.values()), study_of
    studies = {str(ds.StudyInstanceUID) for ds in datasets}
    assert not (studies & set(study_of)) and not ((studies | set(study_of)) & set(sops))


def test_the_sampler_is_one_study_of_a_series_per_syntax() -> None:
    sampled = [ds for ds in seeded().values() if ds.StudyInstanceUID == SEED_SAMPLER_STUDY_UID]
    assert len(sampled) == len(SAMPLER_SERIES) and SEED_SAMPLER_STUDY_UID.startswith(SEED_UID_ROOT)
    for number, ((name, description), ds) in enumerate(zip(SAMPLER_SERIES, sampled, strict=True), 1):
        original = dcmread(pydicom_test_file(name))
        assert (ds.SeriesInstanceUID, ds.SOPInstanceUID) == (
            f"{SEED_SAMPLER_STUDY_UID}.{number}",
            f"{SEED_SAMPLER_STUDY_UID}.{number}.1",
        )
        assert (ds.SeriesNumber, ds.InstanceNumber, ds.SeriesDescription) == (number, 1, description)
        assert {keyword: str(ds.get(keyword)) for keyword in SAMPLER_HEADER} == SAMPLER_HEADER
        # Only the header changed: the pixels are pydicom's, in the file's own syntax.
        assert ds.file_meta.TransferSyntaxUID == original.file_meta.TransferSyntaxUID
        assert ds.PixelData == original.PixelData, name
    assert len({ds.file_meta.TransferSyntaxUID for ds in sampled}) == len(sampled)


def test_the_seeds_are_small() -> None:
    assert sum(len(data) for _, data in seed_files()) < MAX_SEED_BYTES


@pytest.mark.parametrize("name", images())
def test_every_seeded_image_decodes_to_a_picture(name: str) -> None:
    pixels = seeded()[name].pixel_array
    assert pixels.max() > pixels.min(), f"{name} is one value throughout"


def test_the_knee_study_shows_a_different_picture_in_each_instance() -> None:
    knee = [ds for ds in seeded().values() if ds.StudyInstanceUID == SEED_STUDY_UID]
    assert len(knee) == len(seed_study()) == 4
    assert len({ds.PixelData for ds in knee}) == len(knee)
    assert all(ds.WindowWidth > 0 for ds in knee)


def url_of(name: str) -> str:
    ds = seeded()[name]
    return f"/dicomweb/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}/instances/{ds.SOPInstanceUID}"


def test_every_seeded_study_lists_its_modalities(client: FlaskClient) -> None:
    # What OHIF's study check reads: ModalitiesInStudy (0008,0061) with a value.
    studies = {str(seeded()[name].StudyInstanceUID) for name in images()}

    def listed() -> dict[str, Any]:
        found = {}
        for study in studies:
            answer = client.get(
                "/dicomweb/studies", query_string={"StudyInstanceUID": study, "includefield": "00081030"}
            )
            if answer.status_code == 200 and body(answer):
                found[study] = body(answer)[0]
        return found if len(found) == len(studies) else {}

    found = wait_for(listed)
    assert found, "the seeded studies are not all indexed"
    assert all(study.get("00080061", {}).get("Value") for study in found.values()), found
    sampler = found[SEED_SAMPLER_STUDY_UID]
    assert sampler["00201206"]["Value"] == [len(SAMPLER_SERIES)]
    assert sampler["00081030"]["Value"] == ["TRANSFER SYNTAX SAMPLER"]


@pytest.mark.parametrize("name", images())
def test_every_seeded_image_renders_through_the_app(client: FlaskClient, name: str) -> None:
    from PIL import Image

    answer = wait_for(lambda: (r := client.get(url_of(name) + "/rendered")).status_code == 200 and r)
    assert answer, f"{name}: {client.get(url_of(name) + '/rendered').status_code}"
    assert answer.mimetype == "image/jpeg"
    image = Image.open(io.BytesIO(answer.data))
    ds = seeded()[name]
    assert image.format == "JPEG" and image.size == (ds.Columns, ds.Rows)
    grey = np.asarray(image.convert("L"))
    assert grey.max() > grey.min(), f"{name} renders as one colour"
