"""The REST compatibility routes of docs/API.md: thin wrappers over the resolvers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import Blueprint, current_app, jsonify, request

import resolvers
from errors import InvalidArgument, InvalidPayload, NotFound, UnsupportedMediaType
from resolvers.arguments import date_range, whole_number

if TYPE_CHECKING:
    from managers.bundle import Managers
    from resolvers.paging import Cursors

bp = Blueprint("rest", __name__)


def managers() -> Managers:
    """Return the app's managers (built once, in create_app)."""
    return current_app.extensions["dicom_meta.managers"]


def cursors() -> Cursors:
    """Return the app's paging cursors (their key built once, in create_app)."""
    return current_app.extensions["dicom_meta.cursors"]


@bp.get("/health")
def health() -> Any:
    """Answer that the process is alive (no dependency is checked)."""
    return {"message": "The server is running"}


@bp.get("/dicom-metadata")
def dicom_metadata() -> Any:
    """Return the five fields read live from the DICOM file at ``s3_path``."""
    return jsonify(resolvers.extract_metadata(managers(), request.args.get("s3_path")))


@bp.get("/fetch-dicom-metadata")
def fetch_dicom_metadata() -> Any:
    """Return the record stored in DynamoDB for ``s3_path``."""
    s3_path = request.args.get("s3_path")
    record = resolvers.fetch_stored_metadata(managers(), s3_path)
    if record is None:
        raise NotFound(f"no stored metadata for {s3_path}")
    return jsonify(record)


@bp.post("/upload-json-to-s3")
def upload_json_to_s3() -> Any:
    """Upload the body's metadata document to json/ through a presigned URL."""
    if not request.is_json:
        raise UnsupportedMediaType("send the body as Content-Type: application/json")
    try:
        payload = request.get_json(silent=True)
    except RecursionError as exc:  # json.loads recurses once per level of nesting
        raise InvalidPayload("the body is nested too deeply to be read as JSON") from exc
    if payload is None:
        raise InvalidPayload("the body is not valid JSON")
    return jsonify({"s3_path": resolvers.upload_json(managers(), payload)}), 201


# QIDO-RS style parameters (PS3.18 8.3.4) of GET /search-metadata.
DEFAULT_SEARCH_LIMIT = 50
SEARCH_PARAMETERS = frozenset({"PatientID", "Modality", "InstitutionName", "StudyDate", "limit", "cursor"})


@bp.get("/search-metadata")
def search_metadata() -> Any:
    """Return one page of stored records matching QIDO-style parameters."""
    unknown = sorted(set(request.args) - SEARCH_PARAMETERS)
    if unknown:
        # Ignoring a misspelt filter would silently widen the results.
        raise InvalidArgument(
            f"unknown parameters: {', '.join(unknown)}; allowed: {', '.join(sorted(SEARCH_PARAMETERS))}"
        )
    low, high = date_range(request.args.get("StudyDate", ""), "StudyDate")
    criteria = resolvers.search_filter(
        patient_id=request.args.get("PatientID"),
        modality=request.args.get("Modality"),
        institution_name=request.args.get("InstitutionName"),
        study_date_from=low,
        study_date_to=high,
    )
    page = resolvers.search_metadata(
        managers(), cursors(), criteria, _limit(request.args.get("limit")), request.args.get("cursor")
    )
    return jsonify({"items": page.items, "next_cursor": page.next_cursor})


def _limit(value: str | None) -> int:
    return DEFAULT_SEARCH_LIMIT if value is None else whole_number(value, "limit")
