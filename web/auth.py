"""API keys: every route but the public ones needs ``Authorization: Bearer <key>`` or ``X-API-Key``."""

from __future__ import annotations

import hmac
import logging
import os
from collections.abc import Iterable
from pathlib import Path

from flask import Flask, current_app, request

from errors import Unauthenticated

log = logging.getLogger(__name__)

API_KEY_HEADER = "X-API-Key"
# Probes and the GraphiQL page itself: a load balancer or a browser's page load cannot send a
# header, and none of them answers with data. Static files (Flask's ``static`` endpoint, an
# offline GraphiQL's ``graphiql`` blueprint of scripts and styles) are public for the same
# reason as the page: a <script> tag sends no header either.
PUBLIC_ENDPOINTS = frozenset({"rest.health", "ops.ready", "static"})
PUBLIC_BLUEPRINTS = frozenset({"graphiql"})
GRAPHQL_ENDPOINT = "graphql"


def keys_from_environment(environ: dict[str, str] | None = None) -> tuple[str, ...] | None:
    """Return the keys of ``API_KEYS`` (comma-separated) and ``API_KEYS_FILE`` (one a line).

    ``None`` when neither is set: the API is open. A variable that is set but yields no key
    is a mistake that must not silently open the API, so it raises ``ValueError``.
    """
    environ = dict(os.environ) if environ is None else environ
    inline, file_name = environ.get("API_KEYS"), environ.get("API_KEYS_FILE")
    if inline is None and file_name is None:
        return None
    keys = list(parse_keys((inline or "").split(",")))
    if file_name:
        keys += parse_keys(Path(file_name).read_text(encoding="utf-8").splitlines())
    if not keys:
        raise ValueError("API_KEYS or API_KEYS_FILE is set but holds no key")
    return tuple(keys)


def parse_keys(entries: Iterable[str]) -> list[str]:
    """Return the non-empty, stripped entries (``#`` starts a comment line in a key file)."""
    return [entry.strip() for entry in entries if entry.strip() and not entry.strip().startswith("#")]


def configured_keys(value: object) -> tuple[str, ...]:
    """Normalise the ``API_KEYS`` setting: a list of keys, a comma-separated string, or none."""
    if not value:
        return ()
    if isinstance(value, str):
        return tuple(parse_keys(value.split(",")))
    if not isinstance(value, Iterable):
        raise TypeError("API_KEYS must be a list of keys or a comma-separated string")
    return tuple(parse_keys([str(entry) for entry in value]))


def key_matches(sent: str, keys: Iterable[str]) -> bool:
    """Tell whether ``sent`` is one of ``keys``, in time that does not depend on where they differ.

    Every key is compared (no early exit), so the time does not tell which key came close.
    """
    sent_bytes = sent.encode("utf-8")
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(sent_bytes, key.encode("utf-8"))
    return matched


def sent_keys() -> list[str]:
    """Return the keys the request carries: the Bearer token and the X-API-Key header."""
    sent = []
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        sent.append(token.strip())
    if request.headers.get(API_KEY_HEADER, "").strip():
        sent.append(request.headers[API_KEY_HEADER].strip())
    return sent


def is_public_request() -> bool:
    """Tell whether this request may go without a key."""
    if request.method == "OPTIONS":
        # CORS preflights carry no credentials by design, and Flask answers OPTIONS itself
        # (the allowed methods), never reaching a view.
        return True
    if request.endpoint in PUBLIC_ENDPOINTS or request.blueprint in PUBLIC_BLUEPRINTS:
        return True
    return request.endpoint == GRAPHQL_ENDPOINT and is_graphiql_page_load()


def is_graphiql_page_load() -> bool:
    """Tell whether Strawberry will answer this /graphql request with the GraphiQL page.

    The very test of Strawberry's ``should_render_graphql_ide``: a GET without ``query`` from
    a client accepting HTML. That request executes nothing; the IDE's own queries are POSTs
    that carry the key set in its Headers tab.
    """
    accept = request.headers.get("Accept", "")
    return (
        request.method == "GET"
        and request.args.get("query") is None
        and any(kind in accept for kind in ("text/html", "*/*"))
    )


def require_api_key() -> None:
    """Refuse the request with 401 unless it is public or carries a configured key."""
    keys: tuple[str, ...] = current_app.extensions["dicom_meta.api_keys"]
    if not keys or is_public_request():
        return
    if not any(key_matches(sent, keys) for sent in sent_keys()):
        raise Unauthenticated("send a valid API key as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'")


def install(app: Flask) -> None:
    """Read the keys from ``app.config['API_KEYS']`` and guard every request with them."""
    keys = configured_keys(app.config.get("API_KEYS"))
    if not keys:
        log.warning("API_KEYS is not set: the API is open to anyone who can reach it")
    app.extensions["dicom_meta.api_keys"] = keys
    app.before_request(require_api_key)
