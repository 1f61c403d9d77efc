"""Opaque paging cursors: a position, bound to the query it belongs to, encrypted and signed.

A cursor is ``base64url(nonce + ciphertext).base64url(hmac)``. The plaintext JSON holds the
query's fingerprint and the position after the last item served, which includes a patient
id or a study date: cursors travel in URLs and proxy logs, so they are encrypted (a keystream
of HMAC-SHA256 blocks, encrypt-then-MAC). A cursor that was altered, truncated or made by
another query fails verification and is answered with ``INVALID_CURSOR``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
from typing import Any

from errors import InvalidArgument, InvalidCursor

# Set DICOM_META_CURSOR_SECRET in production so cursors cannot be forged. The default still
# detects corruption and foreign cursors, and stays stable across workers and restarts.
_DEFAULT_SECRET = "dicom-meta-cursor-v1"


def _secret() -> bytes:
    return os.environ.get("DICOM_META_CURSOR_SECRET", _DEFAULT_SECRET).encode()


def fingerprint(operation: str, arguments: dict[str, Any]) -> str:
    """Return a short digest naming a query: its operation and normalized arguments."""
    canonical = json.dumps([operation, arguments], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _keystream(nonce: bytes, length: int) -> bytes:
    blocks = (
        hmac.new(_secret(), b"stream" + nonce + n.to_bytes(4, "big"), hashlib.sha256).digest()
        for n in range(length // 32 + 1)
    )
    return b"".join(blocks)[:length]


def _xor(data: bytes, stream: bytes) -> bytes:
    return bytes(a ^ b for a, b in zip(data, stream))


def encode_cursor(query: str, position: dict[str, Any] | None) -> str | None:
    """Return the cursor for ``position`` in the query ``query`` (``None`` stays ``None``)."""
    if position is None:
        return None
    plaintext = json.dumps({"q": query, "p": position}, separators=(",", ":")).encode()
    nonce = os.urandom(12)
    payload = nonce + _xor(plaintext, _keystream(nonce, len(plaintext)))
    signature = hmac.new(_secret(), payload, hashlib.sha256).digest()[:16]
    return f"{_b64(payload)}.{_b64(signature)}"


def decode_cursor(query: str, cursor: str | None) -> dict[str, Any] | None:
    """Return the position a cursor holds, checking it belongs to ``query``.

    Raises
    ------
    InvalidCursor
        When the cursor was tampered with, is malformed, or belongs to another query.
    """
    if cursor is None:
        return None
    try:
        payload_text, signature_text = cursor.split(".")
        payload, signature = _unb64(payload_text), _unb64(signature_text)
    except (ValueError, binascii.Error) as exc:
        raise InvalidCursor("the cursor is malformed; start again without one") from exc
    expected = hmac.new(_secret(), payload, hashlib.sha256).digest()[:16]
    if not hmac.compare_digest(signature, expected):
        raise InvalidCursor("the cursor was altered or is not one of ours")
    nonce, ciphertext = payload[:12], payload[12:]
    data = json.loads(_xor(ciphertext, _keystream(nonce, len(ciphertext))))
    if data.get("q") != query:
        raise InvalidCursor("the cursor belongs to another query; page with the same arguments")
    return data["p"]


def check_page_size(first: int, maximum: int) -> int:
    """Return ``first`` when it is between 1 and ``maximum``, else raise ``InvalidArgument``."""
    if not 1 <= first <= maximum:
        raise InvalidArgument(f"page size must be between 1 and {maximum}, not {first}")
    return first
