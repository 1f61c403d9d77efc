"""The REST compatibility routes of DESIGN.md: thin wrappers over the resolvers."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify, request

import resolvers
from errors import InvalidPayload, NotFound, UnsupportedMediaType
from managers.bundle import Managers

bp = Blueprint("rest", __name__)


def managers() -> Managers:
    """Return the app's managers (built once, in create_app)."""
    return current_app.extensions["dicom_meta.managers"]


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
    payload = request.get_json(silent=True)
    if payload is None:
        raise InvalidPayload("the body is not valid JSON")
    return jsonify({"s3_path": resolvers.upload_json(managers(), payload)}), 201
