"""dicom-meta: the Flask app serving GraphQL at /graphql and the REST compatibility routes."""

from __future__ import annotations

import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

from flask import Flask

import rest
import rest.dicomweb
import rest.errors
import rest.ops
import web.auth
import web.cors
import web.limits
import web.logs
import web.request_id
from managers.aws.backend import choose_backend, local_aws_port
from managers.aws.clients import load_secrets
from managers.bundle import Managers
from resolvers import paging
from schema import graphiql, schema
from schema.view import DicomMetaGraphQLView
from seeds import seeded_s3_path

log = logging.getLogger("dicom_meta")

MAX_BODY_BYTES = 1024 * 1024


def cursor_secret(configured: str | None) -> str:
    """Return the secret paging cursors are encrypted with.

    ``configured`` (the ``CURSOR_SECRET`` setting), else ``DICOM_META_CURSOR_SECRET``. On the
    ``aws`` backend there is no default: cursors must not be readable or forgeable by whoever
    reads this source. On the local backend a random one, put in the environment so that
    processes started from this one (gunicorn's workers) share it.
    """
    secret = configured or os.environ.get(paging.SECRET_VARIABLE)
    if secret:
        return secret
    if not choose_backend().is_local:
        raise SystemExit(f"{paging.SECRET_VARIABLE} must be set on the aws backend (a long random string)")
    os.environ[paging.SECRET_VARIABLE] = paging.new_secret()
    return os.environ[paging.SECRET_VARIABLE]


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the app: defaults first, then ``test_config``; managers are built once, here.

    Settings: ``MANAGERS`` (ready-made managers, for tests), else ``AWS_ENDPOINT_URL`` and
    ``AWS_CREDENTIALS`` (a ``Credentials``; when absent, secrets.json, else boto3's chain);
    ``GRAPHIQL_NODE_MODULES``: where `npm ci` put GraphiQL's assets.
    ``API_KEYS`` (a list; default: the ``API_KEYS``/``API_KEYS_FILE`` variables, none: open)
    and ``CORS_ORIGINS`` (default: the ``CORS_ORIGINS`` variable, none: no CORS).
    ``CURSOR_SECRET``: the paging cursors' secret (see ``cursor_secret``).

    Raises
    ------
    SystemExit
        On the ``aws`` backend without a cursor secret.
    """
    app = Flask(__name__)
    app.config.from_mapping(
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
        AWS_ENDPOINT_URL=None,
        AWS_CREDENTIALS=None,
        GRAPHIQL_NODE_MODULES=graphiql.DEFAULT_NODE_MODULES,
        CORS_ORIGINS=os.environ.get("CORS_ORIGINS"),
    )
    if test_config:
        app.config.from_mapping(test_config)
    if "API_KEYS" not in app.config:
        app.config["API_KEYS"] = web.auth.keys_from_environment()
    app.json.sort_keys = False  # type: ignore[attr-defined]  # answers list fields in contract order
    cursors = paging.Cursors(cursor_secret(app.config.get("CURSOR_SECRET")))
    app.extensions["dicom_meta.cursors"] = cursors

    managers = app.config.get("MANAGERS") or Managers.create(
        credentials=app.config["AWS_CREDENTIALS"] or load_secrets(),
        endpoint_url=app.config["AWS_ENDPOINT_URL"],
    )
    app.extensions["dicom_meta.managers"] = managers

    web.request_id.install(app)
    web.logs.install(app)
    rest.errors.register(app)
    web.cors.install(app)
    web.auth.install(app)
    web.limits.install(app)
    app.register_blueprint(rest.bp)
    app.register_blueprint(rest.ops.bp)
    app.register_blueprint(rest.dicomweb.bp)
    local_graphiql = graphiql.register(app, Path(app.config["GRAPHIQL_NODE_MODULES"]))
    app.add_url_rule(
        "/graphql",
        view_func=DicomMetaGraphQLView.as_view(
            "graphql",
            managers=managers,
            cursors=cursors,
            schema=schema,
            graphql_ide="graphiql",
            local_graphiql=local_graphiql,
        ),
    )
    return app


def main() -> None:
    """`make run`: start the embedded AWS unless the backend is ``aws``, then serve the API."""
    web.logs.configure_logging()
    stop_on_termination()
    port = int(os.environ.get("PORT", "5000"))
    backend = choose_backend()
    config: dict[str, Any] = {}
    children: list[Any] = []
    if backend.is_local:
        children = start_local_aws()
        config = {"AWS_ENDPOINT_URL": children[0].endpoint_url, "AWS_CREDENTIALS": children[0].credentials}
    try:
        app = create_app(config)
        print(banner(f"http://127.0.0.1:{port}", config.get("AWS_ENDPOINT_URL")), flush=True)
        app.run(host="127.0.0.1", port=port, threaded=True, request_handler=web.logs.QuietRequestHandler)
    finally:
        for child in reversed(children):
            child.stop()


def stop_on_termination() -> None:
    """End on SIGTERM or SIGHUP (a `kill`, a closed terminal) as on Ctrl-C, through ``main``'s
    ``finally``: the embedded AWS and the delivery stop with the API (and the emulator saves its
    data directory), where they would go on holding their port."""

    def stop(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, stop)


def start_local_aws() -> list[Any]:
    """Start the embedded AWS and its event delivery, each in a process of its own, so neither
    shares an interpreter (and its lock) with the API; return once the samples are indexed."""
    from local import snapshot
    from local.delivery import seeded_paths, wait_for_records
    from local.process import DELIVERY_MARKER, EVENTS_VARIABLE, LocalAWSProcess
    from managers.DynamoDBManager import DynamoDBManager

    data = snapshot.data_dir()
    # A saved data directory is loaded instead of seeded: its samples may have been deleted.
    seeded = seeded_paths() if data is None or snapshot.saved(data) is None else []
    aws = LocalAWSProcess(local_aws_port(), echo=sys.stderr, env={EVENTS_VARIABLE: "0"}).start()
    delivery = LocalAWSProcess(aws.port, echo=sys.stderr, module="local.delivery", marker=DELIVERY_MARKER)
    try:
        delivery.start()
    except RuntimeError:
        aws.stop()
        raise
    keys = (aws.credentials.aws_access_key_id, aws.credentials.aws_secret_access_key)
    wait_for_records(DynamoDBManager(*keys, endpoint_url=aws.endpoint_url), seeded)
    return [aws, delivery]


def banner(api_url: str, local_endpoint: str | None) -> str:
    """Return the startup text: where things are and three calls that work on the seeded data."""
    sample = seeded_s3_path(1)
    backend = f"embedded AWS at {local_endpoint} (any credentials)" if local_endpoint else "real AWS"
    return f"""
dicom-meta is running
  API:      {api_url}   (GraphiQL: {api_url}/graphql)
  Backend:  {backend}

Try:
  curl -s '{api_url}/dicom-metadata?s3_path={sample}'
  curl -s '{api_url}/dicom-metadata?s3_path={sample}' \\
    | curl -s -X POST -H 'Content-Type: application/json' --data-binary @- {api_url}/upload-json-to-s3
  curl -s '{api_url}/fetch-dicom-metadata?s3_path={sample}'
"""


if __name__ == "__main__":
    main()
