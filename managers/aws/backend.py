"""Which AWS this process talks to: the embedded one (``local``) or real AWS (``aws``).

``choose_backend`` is the one rule, and every entry point asks it: ``make run`` (app.py),
gunicorn (``make serve``), the bulk index (``make index``). ``DICOM_META_BACKEND`` names the
backend; without it, ``aws`` when secrets.json exists at the root, else ``local``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from managers.aws.clients import SECRETS_FILE, Credentials, load_secrets

BACKEND_VARIABLE = "DICOM_META_BACKEND"
# The embedded AWS's port (docs/operations.md). Here, not in local/, so an entry point can
# name the embedded AWS without importing moto.
PORT_VARIABLE = "LOCAL_AWS_PORT"
DEFAULT_PORT = 4566
# moto accepts any credentials; fixed ones keep boto3 from looking for real ones.
LOCAL_CREDENTIALS = Credentials(aws_access_key_id="local", aws_secret_access_key="local")

BackendName = Literal["local", "aws"]


@dataclass(frozen=True)
class Backend:
    """Where the clients go and with which keys (``None``: boto3's chain and ``AWS_ENDPOINT_URL``)."""

    name: BackendName
    endpoint_url: str | None = None
    credentials: Credentials | None = None

    @property
    def is_local(self) -> bool:
        return self.name == "local"


def local_aws_port() -> int:
    """Return the port of the embedded AWS: ``LOCAL_AWS_PORT``, else 4566 (0: any free port)."""
    return int(os.environ.get(PORT_VARIABLE, DEFAULT_PORT))


def backend_name(secrets_file: Path = SECRETS_FILE) -> BackendName:
    """Return ``DICOM_META_BACKEND``, else ``aws`` when ``secrets_file`` exists, else ``local``.

    Raises
    ------
    SystemExit
        When ``DICOM_META_BACKEND`` is set to anything else: a process must not start on a
        backend nobody asked for.
    """
    chosen = os.environ.get(BACKEND_VARIABLE, "").strip().lower()
    if chosen == "local":
        return "local"
    if chosen == "aws":
        return "aws"
    if chosen:
        raise SystemExit(f"{BACKEND_VARIABLE} must be 'local' or 'aws', not {chosen!r}")
    return "aws" if secrets_file.is_file() else "local"


def choose_backend(secrets_file: Path = SECRETS_FILE) -> Backend:
    """Return the backend of this process: the embedded AWS on ``LOCAL_AWS_PORT``, or real AWS
    with the keys of ``secrets_file`` (boto3's default chain without it)."""
    if backend_name(secrets_file) == "local":
        return Backend("local", f"http://127.0.0.1:{local_aws_port()}", LOCAL_CREDENTIALS)
    return Backend("aws", None, load_secrets(secrets_file))
