"""DICOM files built with pydicom, for seeding the embedded AWS, the tests and the benchmarks.

Nothing here is committed as a binary: every file is generated on demand.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import pydicom.data
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    UID,
    CTImageStorage,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    generate_uid,
)

from seeds import SEED_STUDY_UID, SEED_UID_ROOT

# pydicom's bundled files that make good seeds: small, uncompressed headers, varied.
BUNDLED_SEEDS: tuple[str, ...] = ("CT_small.dcm", "MR_small.dcm", "rtplan.dcm", "waveform_ecg.dcm")

# Columns (US) stop at 65535 (PS3.5 6.2); bigger images get more frames instead of wider ones.
MAX_COLUMNS = 4096
_ZEROS = bytes(1024 * 1024)


@dataclass
class SampleSpec:
    """What a generated DICOM file holds. ``None`` leaves an element out."""

    patient_id: str | None = "PAT-0001"
    study_date: str | None = "20240115"
    modality: str | None = "CT"
    institution_name: str | None = "General Hospital"
    study_description: str | None = "CHEST WITHOUT CONTRAST"
    patient_name: str | None = "Doe^Jane"
    series_description: str | None = "AXIAL 5MM"
    transfer_syntax: UID = ExplicitVRLittleEndian
    character_set: str | None = None
    pixel_bytes: int = 512
    rows: int = 16
    sop_instance_uid: str = field(default_factory=generate_uid)
    preamble: bool = True
    # A study of several files shares these; None gives the file a study and series of its own.
    study_instance_uid: str | None = None
    series_instance_uid: str | None = None
    series_number: int | None = None
    instance_number: int | None = None
    accession_number: str | None = None

    @property
    def file_name(self) -> str:
        """The bucket's naming rule: ``anon-<SOPInstanceUID>.dcm``."""
        return f"anon-{self.sop_instance_uid}.dcm"


def build_dataset(spec: SampleSpec, pixel_data: bytes | None = None) -> Dataset:
    """Return the dataset of ``spec``, with ``pixel_data`` or else zeros as its pixels."""
    ds = Dataset()
    if spec.character_set:
        ds.SpecificCharacterSet = spec.character_set
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = spec.sop_instance_uid
    ds.StudyInstanceUID = spec.study_instance_uid or generate_uid()
    ds.SeriesInstanceUID = spec.series_instance_uid or generate_uid()
    if spec.series_number is not None:
        ds.SeriesNumber = spec.series_number
    if spec.instance_number is not None:
        ds.InstanceNumber = spec.instance_number
    for keyword, value in (
        ("StudyDate", spec.study_date),
        ("Modality", spec.modality),
        ("InstitutionName", spec.institution_name),
        ("StudyDescription", spec.study_description),
        ("SeriesDescription", spec.series_description),
        ("PatientName", spec.patient_name),
        ("PatientID", spec.patient_id),
        ("AccessionNumber", spec.accession_number),
    ):
        if value is not None:
            setattr(ds, keyword, value)
    columns, frames = _geometry(spec)
    ds.Rows, ds.Columns = spec.rows, columns
    if frames > 1:
        ds.NumberOfFrames = frames
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelData = bytes(pixel_length(spec)) if pixel_data is None else pixel_data
    return ds


def _geometry(spec: SampleSpec) -> tuple[int, int]:
    """Return the columns and frames of 16-bit ``spec.rows``-row frames near ``spec.pixel_bytes``."""
    columns = max(1, spec.pixel_bytes // (2 * spec.rows))
    if columns <= MAX_COLUMNS:
        return columns, 1
    return MAX_COLUMNS, max(1, round(spec.pixel_bytes / (2 * spec.rows * MAX_COLUMNS)))


def pixel_length(spec: SampleSpec) -> int:
    """Return the length of the pixel data ``spec`` gives (``pixel_bytes`` rounded to whole pixels)."""
    columns, frames = _geometry(spec)
    return spec.rows * columns * frames * 2


def build_file(spec: SampleSpec) -> bytes:
    """Return ``spec`` written as a DICOM file (PS3.10), or a bare dataset without preamble."""
    return encode_file(build_dataset(spec), spec)


def write_file(spec: SampleSpec, fp: BinaryIO) -> int:
    """Write the file of ``spec`` to ``fp`` without holding its pixel data in memory.

    For the files of hundreds of megabytes the benchmark needs: the header is encoded with an
    empty Pixel Data element whose length is then set, and the zero pixels follow in chunks.
    Pixel Data (7FE0,0010) is the last element of the dataset, so the value ends the file.

    Returns
    -------
    int
        The number of bytes written.

    Raises
    ------
    ValueError
        For a deflated transfer syntax, whose bytes cannot be patched after encoding.
    """
    if spec.transfer_syntax == DeflatedExplicitVRLittleEndian:
        raise ValueError("write_file cannot stream a deflated dataset; use build_file")
    head = bytearray(encode_file(build_dataset(spec, pixel_data=b""), spec))
    length = pixel_length(spec)
    # The element's last four bytes are its 32-bit value length, in the dataset's byte order.
    head[-4:] = struct.pack(">I" if spec.transfer_syntax == ExplicitVRBigEndian else "<I", length)
    fp.write(head)
    for start in range(0, length, len(_ZEROS)):
        fp.write(_ZEROS[: min(len(_ZEROS), length - start)])
    return len(head) + length


def encode_file(ds: Dataset, spec: SampleSpec) -> bytes:
    """Return ``ds`` encoded with the file meta, transfer syntax and preamble of ``spec``."""
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = spec.transfer_syntax
    buffer = io.BytesIO()
    if spec.preamble:
        ds.save_as(buffer, enforce_file_format=True)
    else:
        little = spec.transfer_syntax != ExplicitVRBigEndian
        implicit = spec.transfer_syntax == ImplicitVRLittleEndian
        del ds.file_meta
        ds.save_as(buffer, implicit_vr=implicit, little_endian=little)
    return buffer.getvalue()


def pydicom_test_file(name: str) -> Path:
    """Return the path of a test file pydicom bundles (never downloaded)."""
    found = pydicom.data.get_testdata_file(name, download=False)
    if not isinstance(found, str):
        raise FileNotFoundError(f"pydicom does not bundle {name}")
    return Path(found)


def bundled_file(name: str) -> tuple[str, bytes]:
    """Return the ``anon-<SOPInstanceUID>.dcm`` name and the bytes of a pydicom test file."""
    data = pydicom_test_file(name).read_bytes()
    uid = dcmread(io.BytesIO(data), stop_before_pixels=True).SOPInstanceUID
    return f"anon-{uid}.dcm", data


def seed_files() -> list[tuple[str, bytes]]:
    """Return the files `make run` puts under ``dicom/``: generated ones, then pydicom's."""
    generated = [
        SampleSpec(
            sop_instance_uid=f"{SEED_UID_ROOT}1",
            patient_id="PAT-0001",
            study_date="20240115",
            modality="CT",
            institution_name="General Hospital",
            study_description="CHEST WITHOUT CONTRAST",
        ),
        SampleSpec(
            sop_instance_uid=f"{SEED_UID_ROOT}2",
            patient_id="PAT-0002",
            study_date="20240302",
            modality="MR",
            institution_name="University Clinic",
            study_description="BRAIN MRI",
            transfer_syntax=ImplicitVRLittleEndian,
        ),
        SampleSpec(
            sop_instance_uid=f"{SEED_UID_ROOT}3",
            patient_id="PAT-0003",
            study_date="20231120",
            modality="US",
            institution_name="Klinikum Müller",
            study_description="Abdomen Sonographie",
            character_set="ISO_IR 100",
            patient_name="Müller^Jürgen",
        ),
    ]
    generated += seed_study()
    return [(spec.file_name, build_file(spec)) for spec in generated] + [bundled_file(name) for name in BUNDLED_SEEDS]


def seed_study() -> list[SampleSpec]:
    """Return the seeded study: a knee MR of two series (T1 and T2) of two instances each."""
    return [
        SampleSpec(
            sop_instance_uid=f"{SEED_STUDY_UID}.{series}.{number}",
            study_instance_uid=SEED_STUDY_UID,
            series_instance_uid=f"{SEED_STUDY_UID}.{series}",
            series_number=series,
            instance_number=number,
            series_description=("SAG T1", "COR T2 FS")[series - 1],
            patient_id="PAT-0004",
            patient_name="Doe^John",
            study_date="20240520",
            modality="MR",
            institution_name="General Hospital",
            study_description="MRI KNEE LEFT",
            accession_number="ACC-1004",
        )
        for series in (1, 2)
        for number in (1, 2)
    ]
