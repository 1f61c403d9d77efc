"""The app for a WSGI server: ``gunicorn -c gunicorn.conf.py 'wsgi:served_app()'`` (``make serve``).

Each gunicorn worker calls ``served_app()`` once. On the local backend the workers share one
embedded AWS, started before them by ``gunicorn.conf.py`` as a separate process, and one
cursor secret, which the master put in the environment.
"""

from __future__ import annotations

from typing import Any

from flask import Flask

from app import create_app
from managers.aws.backend import choose_backend
from web.logs import configure_logging


def served_config() -> dict[str, Any]:
    """Return create_app's settings for the backend: the embedded AWS, or real AWS as is."""
    backend = choose_backend()
    return {"AWS_ENDPOINT_URL": backend.endpoint_url, "AWS_CREDENTIALS": backend.credentials}


def served_app() -> Flask:
    """Build the app with the process's logging: access lines as bare JSON on stderr."""
    configure_logging()
    return create_app(served_config())
