"""Opaque paging cursors: a position, bound to the query it belongs to, encrypted and authenticated.

A cursor is ``base64url(nonce + AES-256-GCM ciphertext)``. The plaintext JSON is the position
after the last item served, which holds a patient id or an s3 path: cursors travel in URLs
and proxy logs, so they are encrypted. The query's fingerprint is the cipher's associated
data, so a cursor made by another query, altered, truncated, or made with another secret
fails authentication and is answered with ``INVALID_CURSOR``; so is one whose position does
not have the shape its query expects.

The key belongs to one app: ``create_app`` builds its ``Cursors`` once, from the
``CURSOR_SECRET`` setting or ``DICOM_META_CURSOR_SECRET``, and hands it to the resolvers with
the managers; two apps in one process keep their own keys. There is no default secret.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import secrets
from collections.abc import Collection
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from errors import InvalidArgument, InvalidCursor

SECRET_VARIABLE = "DICOM_META_CURSOR_SECRET"
NONCE_BYTES = 12  # AES-GCM's standard nonce (NIST SP 800-38D 8.2); random per cursor
_KEY_INFO = b"dicom-meta paging cursor v2"


def new_secret() -> str:
    """Return a random secret, for a local run that has none (shared with its workers)."""
    return secrets.token_urlsafe(32)


def fingerprint(operation: str, arguments: dict[str, Any]) -> str:
    """Return a short digest naming a query: its operation and normalized arguments."""
    canonical = json.dumps([operation, arguments], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Cursors:
    """Seals positions into cursors and opens them, with the key of one app's secret."""

    def __init__(self, secret: str) -> None:
        if not secret:
            raise ValueError(f"the cursor secret is empty; set {SECRET_VARIABLE}")
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_KEY_INFO).derive(secret.encode())
        self._aead = AESGCM(key)

    def encode(self, query: str, position: dict[str, str] | None) -> str | None:
        """Return the cursor for ``position`` in the query ``query`` (``None`` stays ``None``)."""
        if position is None:
            return None
        nonce = os.urandom(NONCE_BYTES)
        plaintext = json.dumps(position, separators=(",", ":")).encode()
        return _b64(nonce + self._aead.encrypt(nonce, plaintext, query.encode()))

    def decode(self, query: str, cursor: str | None, fields: Collection[str] | None = None) -> dict[str, str] | None:
        """Return the position a cursor holds, checking it belongs to ``query``.

        Parameters
        ----------
        query
            The fingerprint of the query being paged.
        cursor
            The cursor the client sent, or ``None`` for the first page.
        fields
            The keys the position must have (all strings); ``None``: any string keys.

        Raises
        ------
        InvalidCursor
            When the cursor was tampered with, is malformed, belongs to another query or another
            secret, or holds a position of another shape.
        """
        if cursor is None:
            return None
        try:
            payload = _unb64(cursor)
        except (ValueError, binascii.Error) as exc:
            raise InvalidCursor("the cursor is malformed; start again without one") from exc
        try:
            plaintext = self._aead.decrypt(payload[:NONCE_BYTES], payload[NONCE_BYTES:], query.encode())
        except (InvalidTag, ValueError) as exc:
            raise InvalidCursor("the cursor was altered, belongs to another query, or is not one of ours") from exc
        try:
            position = json.loads(plaintext)
        except ValueError as exc:
            raise InvalidCursor("the cursor holds no position; start again without one") from exc
        if not _has_shape(position, fields):
            raise InvalidCursor("the cursor holds a position of another kind; start again without one")
        return position


def _has_shape(position: Any, fields: Collection[str] | None) -> bool:
    """Tell whether ``position`` is a dict of strings with exactly ``fields`` as keys."""
    if not isinstance(position, dict) or not position:
        return False
    if not all(isinstance(key, str) and isinstance(value, str) for key, value in position.items()):
        return False
    return fields is None or set(position) == set(fields)


def check_page_size(first: int, maximum: int) -> int:
    """Return ``first`` when it is between 1 and ``maximum``, else raise ``InvalidArgument``."""
    if not 1 <= first <= maximum:
        raise InvalidArgument(f"page size must be between 1 and {maximum}, not {first}")
    return first
