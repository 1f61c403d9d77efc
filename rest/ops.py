"""Routes for operators and tools: readiness."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from resolvers.health import readiness
from rest import managers

bp = Blueprint("ops", __name__)


@bp.get("/ready")
def ready() -> Any:
    """Answer whether S3 and DynamoDB answer: 200, or 503 naming the one that does not."""
    return jsonify(readiness(managers()))

