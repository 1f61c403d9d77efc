"""CORS for browser apps on other origins, with flask-cors: allowed origins from ``CORS_ORIGINS``.

flask-cors rather than a hand-written hook: it answers preflights, sets ``Vary: Origin`` and
adds the headers to error answers too (a browser app must be able to read a 401 or a 413).
"""

from __future__ import annotations

from collections.abc import Iterable

from flask import Flask
from flask_cors import CORS

from web.auth import API_KEY_HEADER

ALLOWED_METHODS = ["GET", "POST", "OPTIONS"]
# Accept: a DICOMweb viewer's (OHIF's dicomweb-client) Accept values hold quotes, which make
# it a header browsers preflight. Warning: DICOMweb's limit and fuzzy-matching notices.
ALLOWED_HEADERS = ["Authorization", API_KEY_HEADER, "Content-Type", "X-Request-ID", "Accept"]
EXPOSED_HEADERS = ["X-Request-ID", "Warning"]
# Seconds a browser may cache a preflight answer.
PREFLIGHT_MAX_AGE = 600
# flask-cors treats an origin holding any of these as a regular expression; an origin is
# compared exactly here, so such an entry is a configuration mistake.
_REGEX_CHARACTERS = frozenset("*\\]?$^[]()")


def parse_origins(value: object) -> list[str]:
    """Normalise ``CORS_ORIGINS``: a comma-separated string or a list of exact origins, or ``*``.

    Raises ``ValueError`` for an entry that is not an exact origin, rather than let
    flask-cors read it as a pattern that could match more than was meant.
    """
    if not value:
        return []
    if not isinstance(value, str | Iterable):
        raise TypeError("CORS_ORIGINS must be a list of origins or a comma-separated string")
    entries = value.split(",") if isinstance(value, str) else [str(entry) for entry in value]
    origins = [entry.strip().rstrip("/") for entry in entries if entry.strip()]
    if origins == ["*"]:
        return origins
    for origin in origins:
        if not _REGEX_CHARACTERS.isdisjoint(origin) or "://" not in origin:
            raise ValueError(f"CORS_ORIGINS: {origin!r} is not an origin like https://app.example.org (or a lone *)")
    return origins


def install(app: Flask) -> None:
    """Allow the origins of ``app.config['CORS_ORIGINS']``; with none, send no CORS headers."""
    origins = parse_origins(app.config.get("CORS_ORIGINS"))
    if not origins:
        return
    CORS(
        app,
        origins=origins,
        methods=ALLOWED_METHODS,
        allow_headers=ALLOWED_HEADERS,
        expose_headers=EXPOSED_HEADERS,
        max_age=PREFLIGHT_MAX_AGE,
        # Keys travel in headers, never cookies: no credentialed requests.
        supports_credentials=False,
        vary_header=True,
    )
