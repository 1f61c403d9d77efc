"""Readiness: whether the services every other operation needs answer."""

from __future__ import annotations

from errors import NotReady
from managers.bundle import Managers


def readiness(managers: Managers) -> dict[str, str]:
    """Return ``{"s3": "ok", "dynamodb": "ok"}``, or raise ``NotReady`` naming what failed."""
    checks = managers.readiness()
    if any(state != "ok" for state in checks.values()):
        raise NotReady(checks)
    return checks
