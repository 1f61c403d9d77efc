"""DicomManager: the five fields of a DICOM file in S3, read with pydicom from its header only.

The facade the resolvers call; the parsing is ``managers.dicom.header``'s, the JSON model
``managers.dicom.json_model``'s, the ranged reads ``managers.dicom.ranged``'s.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from managers.aws.objects import VersionedFetch
from managers.dicom.bulk import PIXEL_DATA, Bulk, chunks, locate, pixel_data_vr
from managers.dicom.header import fields_of, read_header
from managers.dicom.json_model import json_model, tag_of
from managers.dicom.ranged import FIRST_REQUEST, RangedReader
from managers.pixels.layout import IMPLICIT_VR_LITTLE_ENDIAN
from metadata import parse_s3_path

if TYPE_CHECKING:  # only a type here: the indexer function imports this module without requests
    from managers.S3Manager import S3Manager


class DicomManager:
    """Reads DICOM headers from S3 and extracts the five fields of docs/API.md."""

    def __init__(self, s3: S3Manager, first_request: int = FIRST_REQUEST) -> None:
        self.s3 = s3
        self.first_request = first_request

    def extract_metadata(self, file_path: str) -> dict[str, str | None]:
        """Return the five fields of the DICOM file at ``file_path``.

        Only the header is read, through ranged GETs: ``first_request`` bytes first, then
        doubling requests while parsing needs more. A header within the first request costs
        one GET whatever the file's size.

        Parameters
        ----------
        file_path
            The s3 path, ``s3://bucket/key``.

        Returns
        -------
        dict
            ``PatientID``, ``StudyDate``, ``Modality``, ``InstitutionName`` and
            ``StudyDescription``: strings as the file holds them, decoded with its Specific
            Character Set, or ``None`` when absent or empty.

        Raises
        ------
        NotFound, InvalidS3Path, ForbiddenBucket, UpstreamUnavailable
            From ``S3Manager``.
        NotDicom
            When the object is not a readable DICOM file.
        """
        # Deferred values are read through the reader, so it stays open until the fields are out.
        with self._open(file_path) as reader:
            return fields_of(read_header(reader))

    def dicom_json(
        self, file_path: str, keywords: list[str] | None = None, bulk_data_uri: str | None = None
    ) -> dict[str, Any]:
        """Return the header in the DICOM JSON model (PS3.18 Annex F).

        Parameters
        ----------
        file_path
            The s3 path of the DICOM file.
        keywords
            Attribute keywords (``"Rows"``) or 8-hex tags (``"00280010"``) to keep; all
            attributes when ``None``.
        bulk_data_uri
            Where the instance's bulk data is served (``…/bulkdata``): bulk values, Pixel Data
            among them, are written as ``BulkDataURI`` under it. Without it they are left out.

        Raises
        ------
        InvalidArgument
            When a keyword is neither a known keyword nor an 8-hex tag (checked before S3 is read).
        """
        tags = None if keywords is None else [tag_of(keyword) for keyword in keywords]
        with self._open(file_path) as reader:
            dataset = read_header(reader)
            model = json_model(dataset, tags, bulk_data_uri)
            if bulk_data_uri is not None and (tags is None or PIXEL_DATA in tags):
                # Where the parse stopped: Pixel Data's element, if the file has one (bytes
                # the last read usually holds already).
                implicit, little = dataset.original_encoding
                vr = pixel_data_vr(reader.read(12), bool(little), bool(implicit))
                if vr is not None:
                    model[f"{PIXEL_DATA:08X}"] = {"vr": vr, "BulkDataURI": f"{bulk_data_uri}/{PIXEL_DATA:08X}"}
            return model

    def bulk_value(self, file_path: str, path: tuple[int, ...]) -> Bulk:
        """Return the bulk value at ``path`` of the header (``managers.dicom.bulk``), to stream.

        The header is read once; the value's bytes are read when ``Bulk.chunks`` is iterated,
        a chunk at a time, from the same version of the object.

        Raises
        ------
        NotFound
            When the object is gone or its header has no such value.
        NotAcceptable
            For a deflated file.
        """
        bucket, key = parse_s3_path(file_path)
        fetch = VersionedFetch(self.s3.client, bucket, key)
        with RangedReader(fetch, self.first_request) as reader:
            dataset = read_header(reader)
            value = locate(dataset, path)
            size = reader.size
        return Bulk(value.vr, chunks(fetch, value, size))

    def transfer_syntax(self, file_path: str) -> str:
        """Return the transfer syntax of the file at ``file_path`` (Implicit VR Little Endian
        for a bare dataset without file meta), reading its header only."""
        with self._open(file_path) as reader:
            meta = getattr(read_header(reader), "file_meta", None)
        syntax = meta.get("TransferSyntaxUID") if meta is not None else None
        return str(syntax or IMPLICIT_VR_LITTLE_ENDIAN)

    def _open(self, file_path: str) -> RangedReader:
        """Return a header-only reader over the object at ``file_path``."""
        return RangedReader(partial(self.s3.read_range, file_path), self.first_request)
