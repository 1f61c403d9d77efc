"""Run the embedded AWS on its own: ``python -m local`` (for gunicorn or another process)."""

from __future__ import annotations

import logging
import threading

from local.netem import netem_from_env
from local.process import READY_MARKER
from local.server import LocalAWS
from managers.aws.backend import local_aws_port


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    aws = LocalAWS.start(local_aws_port(), middleware=netem_from_env())
    print(f"{READY_MARKER}{aws.endpoint_url} (any credentials; Ctrl-C stops it)", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        aws.stop()


if __name__ == "__main__":
    main()
