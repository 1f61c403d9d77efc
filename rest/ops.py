"""Routes for operators and tools: readiness and the OpenAPI document."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from resolvers.health import readiness
from rest import managers
from rest.openapi import openapi_document

bp = Blueprint("ops", __name__)


@bp.get("/ready")
def ready() -> Any:
    """Answer whether S3 and DynamoDB answer: 200, or 503 naming the one that does not."""
    return jsonify(readiness(managers()))


@bp.get("/openapi.json")
def openapi() -> Any:
    """Return the OpenAPI 3 document of the REST routes."""
    return jsonify(openapi_document())
