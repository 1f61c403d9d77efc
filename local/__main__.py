"""Run the embedded AWS on its own: ``python -m local`` (for `make run`, gunicorn or another
process); with LOCAL_AWS_EVENTS=0 its events are left to ``python -m local.delivery``; with
LOCAL_AWS_DATA=DIR it loads from and saves to that directory (``local/snapshot.py``)."""

from __future__ import annotations

import logging
import os
import signal
import time
from types import FrameType

from local import heap, snapshot
from local.netem import netem_from_env
from local.process import EVENTS_VARIABLE, READY_MARKER, announce
from local.server import LocalAWS
from managers.aws.backend import local_aws_port

WAKE_SECONDS = 0.5


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    heap.install()
    deliver = os.environ.get(EVENTS_VARIABLE, "1") != "0"
    aws = LocalAWS.start(
        local_aws_port(), middleware=netem_from_env(), deliver_events=deliver, progress=True, data=snapshot.data_dir()
    )
    if aws.data is not None:
        # SIGTERM (how `make run` and gunicorn stop it) then stops it as Ctrl-C does, so the
        # data directory is saved either way; without one, SIGTERM ends it at once. Set before
        # the ready line: a stop sent as soon as it is read must save too.
        signal.signal(signal.SIGTERM, _interrupt)
    try:
        announce(READY_MARKER, aws.endpoint_url, " (any credentials; Ctrl-C stops it)")
        # Not one wait without a timeout: a signal the kernel hands to another thread is run by
        # this one only when it wakes, and a lock wait without one never does (a stop hung).
        while True:
            time.sleep(WAKE_SECONDS)
    except KeyboardInterrupt:
        # A second Ctrl-C, or make run's SIGTERM after the Ctrl-C, must not cut the save short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        aws.stop()


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    main()
