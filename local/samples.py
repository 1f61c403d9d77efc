"""DICOM files built with pydicom, for seeding the embedded AWS, the tests and the benchmarks.

Nothing here is committed as a binary: every file is generated on demand.
"""

from __future__ import annotations

import io
import math
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

from seeds import SEED_SAMPLER_STUDY_UID, SEED_STUDY_UID, SEED_UID_ROOT, seeded_file_study_uid

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
    """Return the files `make run` puts under ``dicom/``: generated ones (phantom pixels),
    pydicom's as they are, then the transfer syntax sampler (pydicom's, with headers of its own)."""
    generated = [
        SampleSpec(
            sop_instance_uid=f"{SEED_UID_ROOT}1",
            study_instance_uid=seeded_file_study_uid(1),
            series_instance_uid=f"{seeded_file_study_uid(1)}.1",
            patient_id="PAT-0001",
            study_date="20240115",
            modality="CT",
            institution_name="General Hospital",
            study_description="CHEST WITHOUT CONTRAST",
        ),
        SampleSpec(
            sop_instance_uid=f"{SEED_UID_ROOT}2",
            study_instance_uid=seeded_file_study_uid(2),
            series_instance_uid=f"{seeded_file_study_uid(2)}.1",
            patient_id="PAT-0002",
            study_date="20240302",
            modality="MR",
            institution_name="University Clinic",
            study_description="BRAIN MRI",
            transfer_syntax=ImplicitVRLittleEndian,
        ),
        SampleSpec(
            sop_instance_uid=f"{SEED_UID_ROOT}3",
            study_instance_uid=seeded_file_study_uid(3),
            series_instance_uid=f"{seeded_file_study_uid(3)}.1",
            patient_id="PAT-0003",
            study_date="20231120",
            modality="US",
            institution_name="Klinikum Müller",
            study_description="Abdomen Sonographie",
            character_set="ISO_IR 100",
            patient_name="Müller^Jürgen",
        ),
    ]
    files = [phantom_file(spec, Phantom(variant=number)) for number, spec in enumerate(generated)]
    files += [phantom_file(spec, phantom) for spec, phantom in seed_study_phantoms()]
    return files + [bundled_file(name) for name in BUNDLED_SEEDS] + sampler_files()


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


def seed_study_phantoms() -> list[tuple[SampleSpec, Phantom]]:
    """Return the seeded study's files with their pixels: a phantom of each instance's own, T2's
    rings in inverted contrast."""
    return [
        (spec, Phantom(variant=spec.instance_number or 0, inverted=spec.series_number == 2)) for spec in seed_study()
    ]


# ----------------------------------------------------------------------------- phantom pixels

# The window the phantoms are drawn for: their values lie in 0 to 4095 (12 bits in 16).
PHANTOM_WINDOW = (2048, 4096)
PHANTOM_TOP = 4095


@dataclass(frozen=True)
class Phantom:
    """A disc of rings over a gradient: ``variant`` moves and resizes it; ``inverted`` swaps the
    rings' bright and dark."""

    variant: int = 0
    inverted: bool = False

    def value(self, row: int, column: int, rows: int, columns: int) -> int:
        """Return the pixel at ``row``, ``column`` of a ``rows`` by ``columns`` frame."""
        centre_row = (rows - 1) / 2 + (self.variant % 3 - 1) * rows / 10
        centre_column = (columns - 1) / 2 - (self.variant % 2) * columns / 10
        radius = min(rows, columns) * (0.30 + 0.05 * (self.variant % 3))
        distance = math.hypot(row - centre_row, column - centre_column)
        value = 300 + 900 * column / max(1, columns - 1)  # a gradient from left to right
        if distance <= radius:  # a disc of rings, fading to its edge
            rings = 0.5 + 0.5 * math.cos(2 * math.pi * distance / max(2.0, radius / 1.5))
            if self.inverted:
                rings = 1 - rings
            value += 1200 + 1500 * rings * (1 - distance / (2 * radius))
        return min(PHANTOM_TOP, max(0, round(value)))

    def pixels(self, spec: SampleSpec) -> bytes:
        """Return 16-bit unsigned pixels of the frames of ``spec``, in its transfer syntax's byte order."""
        columns, frames = _geometry(spec)
        values = [
            self.value(row, column, spec.rows, columns)
            for _ in range(frames)
            for row in range(spec.rows)
            for column in range(columns)
        ]
        order = ">" if spec.transfer_syntax == ExplicitVRBigEndian else "<"
        return struct.pack(f"{order}{len(values)}H", *values)


def phantom_file(spec: SampleSpec, phantom: Phantom) -> tuple[str, bytes]:
    """Return the name and the bytes of the file of ``spec`` with the pixels of ``phantom``."""
    ds = build_dataset(spec, pixel_data=phantom.pixels(spec))
    ds.WindowCenter, ds.WindowWidth = PHANTOM_WINDOW
    return spec.file_name, encode_file(ds, spec)


# ----------------------------------------------------------------------------- transfer syntaxes

# The sampler: one series per transfer syntax, numbered from 1, each one of pydicom's bundled
# images (pixel data and transfer syntax untouched) and a description naming its syntax.
SAMPLER_SERIES: tuple[tuple[str, str], ...] = (
    ("MR_small.dcm", "EXPLICIT VR LITTLE ENDIAN"),
    ("MR_small_implicit.dcm", "IMPLICIT VR LITTLE ENDIAN"),
    ("MR_small_bigendian.dcm", "EXPLICIT VR BIG ENDIAN"),
    ("MR_small_RLE.dcm", "RLE LOSSLESS"),
    # An echocardiogram of 30 frames: OHIF 3.13 paints SC_jpeg_no_color_transform.dcm (RGB
    # without a colour transform) magenta.
    ("examples_ybr_color.dcm", "JPEG BASELINE"),
    ("JPGExtended.dcm", "JPEG EXTENDED 12 BIT"),
    ("SC_rgb_jpeg_gdcm.dcm", "JPEG LOSSLESS SV1"),
    ("MR_small_jpeg_ls_lossless.dcm", "JPEG-LS LOSSLESS"),
    ("MR_small_jp2klossless.dcm", "JPEG 2000 LOSSLESS"),
    ("JPEG2000.dcm", "JPEG 2000"),
)
# The sampler's study and patient, alike in every file (pydicom's files differ in these).
SAMPLER_HEADER: dict[str, str] = {
    "PatientID": "PAT-0005",
    "PatientName": "Sampler^Syntax",
    "PatientBirthDate": "19700101",
    "PatientSex": "O",
    "StudyDate": "20240610",
    "StudyTime": "090000",
    "StudyDescription": "TRANSFER SYNTAX SAMPLER",
    "StudyID": "1005",
    "AccessionNumber": "ACC-1005",
    "ReferringPhysicianName": "",
    "InstitutionName": "General Hospital",
}


def sampler_files() -> list[tuple[str, bytes]]:
    """Return the sampler study's files, one per entry of ``SAMPLER_SERIES``."""
    return [sampler_file(number, name, description) for number, (name, description) in enumerate(SAMPLER_SERIES, 1)]


def sampler_file(number: int, name: str, description: str) -> tuple[str, bytes]:
    """Return pydicom's file ``name`` as series ``number`` of the sampler study: fixed UIDs
    (pydicom's MR_small variants share theirs with MR_small.dcm), the study's header values, a
    Modality (OHIF cannot open a study without one); pixel data and transfer syntax untouched."""
    ds = dcmread(pydicom_test_file(name))
    series = f"{SEED_SAMPLER_STUDY_UID}.{number}"
    sop = UID(f"{series}.1")
    ds.StudyInstanceUID, ds.SeriesInstanceUID = SEED_SAMPLER_STUDY_UID, series
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = sop
    if "FrameOfReferenceUID" in ds:
        ds.FrameOfReferenceUID = f"{series}.0"
    for keyword, value in SAMPLER_HEADER.items():
        setattr(ds, keyword, value)
    if not ds.get("Modality"):
        ds.Modality = "OT"
    ds.SeriesNumber, ds.InstanceNumber, ds.SeriesDescription = number, 1, description
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)  # in the file's own transfer syntax
    return f"anon-{sop}.dcm", buffer.getvalue()
