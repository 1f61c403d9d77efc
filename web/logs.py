"""Logs without patient data: one JSON line per request, and dependencies kept from logging wire data.

What a request log line holds is fixed here: method, the route's rule (``/dicom-metadata``,
never the URL with its ``s3_path``), status, duration and request id. Query strings, bodies
and resolver arguments are never logged, at any level.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, g, request
from werkzeug.serving import WSGIRequestHandler

from web.request_id import current_request_id

ACCESS_LOGGER = "dicom_meta.access"
access_log = logging.getLogger(ACCESS_LOGGER)

# Libraries that log bodies, URLs (query strings, presigned URLs) or element values at INFO or
# DEBUG: an S3 or DynamoDB body holds the metadata itself. Capped at WARNING whatever the root
# level is.
WIRE_LOGGERS = ("botocore", "boto3", "s3transfer", "urllib3", "werkzeug", "moto", "flask_cors")
# pydicom's warnings and errors quote element values ("Invalid value for VR DA: '…'"): silenced.
SILENT_LOGGERS = ("pydicom",)

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def quiet_wire_loggers() -> None:
    """Keep libraries that log payloads from logging below WARNING."""
    for name in WIRE_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    for name in SILENT_LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL + 1)


def configure_logging(level: int = logging.INFO) -> None:
    """Log to stderr: the access lines as bare JSON, everything else in a plain format."""
    root_handler = logging.StreamHandler()
    root_handler.setFormatter(logging.Formatter(LOG_FORMAT))
    logging.basicConfig(level=level, handlers=[root_handler], force=True)
    access_handler = logging.StreamHandler()
    access_handler.setFormatter(logging.Formatter("%(message)s"))
    access_log.handlers[:] = [access_handler]
    access_log.propagate = False
    quiet_wire_loggers()


def _start_timer() -> None:
    g.started = time.perf_counter()


def _log_request(response: Response) -> Response:
    """Write the request's one access line."""
    started = g.get("started", time.perf_counter())
    rule = request.url_rule.rule if request.url_rule is not None else None
    line: dict[str, Any] = {
        "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "method": request.method,
        "route": rule,
        "status": response.status_code,
        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
        "request_id": current_request_id(),
    }
    access_log.info(json.dumps(line))
    return response


def install(app: Flask) -> None:
    """Time every request and log it. Install first: its after-hook then runs last."""
    quiet_wire_loggers()
    app.before_request(_start_timer)
    app.after_request(_log_request)


class QuietRequestHandler(WSGIRequestHandler):
    """Werkzeug's dev-server handler without its access line, which prints the full URL.

    That URL holds ``s3_path`` (a query string); the app logs its own line instead.
    Errors are still logged.
    """

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None
