"""Run the embedded AWS on its own: ``python -m local`` (for `make run`, gunicorn or another
process); with LOCAL_AWS_EVENTS=0 its events are left to ``python -m local.delivery``."""

from __future__ import annotations

import logging
import os
import threading

from local.netem import netem_from_env
from local.process import EVENTS_VARIABLE, READY_MARKER
from local.server import LocalAWS
from managers.aws.backend import local_aws_port


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    deliver = os.environ.get(EVENTS_VARIABLE, "1") != "0"
    aws = LocalAWS.start(local_aws_port(), middleware=netem_from_env(), deliver_events=deliver, progress=True)
    print(f"{READY_MARKER}{aws.endpoint_url} (any credentials; Ctrl-C stops it)", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        aws.stop()


if __name__ == "__main__":
    main()
