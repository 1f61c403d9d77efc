"""The embedded AWS as a separate process (``python -m local``), for `make run`, gunicorn and
the tests; and its event delivery as another (``python -m local.delivery``), for `make run`.

A moto server in its own process is shared by every gunicorn worker (threads do not survive
a fork, and each worker must not start its own), can be stopped and restarted like a real
endpoint, and keeps its state apart from any in-process moto.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from local import snapshot
from managers.aws.backend import LOCAL_CREDENTIALS, PORT_VARIABLE
from managers.aws.clients import Credentials

ROOT = Path(__file__).resolve().parent.parent
# What ``python -m local`` prints once the resources exist and the samples are seeded.
READY_MARKER = "Embedded AWS at "
# What ``python -m local.delivery`` prints once its runners poll.
DELIVERY_MARKER = "Delivering the events of "
# LOCAL_AWS_EVENTS=0: ``python -m local`` leaves event delivery to ``python -m local.delivery``.
EVENTS_VARIABLE = "LOCAL_AWS_EVENTS"
# The endpoint a ready line announces. Only the URL's own characters: a warning another thread
# writes to the same pipe may follow it on the line (``...:4566/x/y.py:12: UserWarning``).
ENDPOINT = re.compile(r"http://[0-9.]+:([0-9]+)")
START_TIMEOUT = 60.0
# With a data directory: how long a start waits for the emulator to load it, and a stop for
# it to save (100,000 records and 1 GiB of objects: about 30 s each, bench/snapshot.py).
DATA_TIMEOUT = 600.0


def announce(marker: str, endpoint_url: str, rest: str = "") -> None:
    """Print a ready line in one write: ``print`` writes its newline apart, and a log line or
    warning from another thread written between the two would end up inside this line."""
    sys.stdout.write(f"{marker}{endpoint_url}{rest}\n")
    sys.stdout.flush()


class LocalAWSProcess:
    """``python -m local`` on ``127.0.0.1:port``: start, wait until seeded, stop, restart.

    ``module`` and ``marker``: another module of ``local`` to run the same way, ready when it
    prints ``marker`` and an endpoint (``python -m local.delivery``, for the AWS at ``port``).
    """

    credentials: Credentials = LOCAL_CREDENTIALS

    def __init__(
        self,
        port: int,
        *,
        echo: IO[str] | None = None,
        env: Mapping[str, str] | None = None,
        module: str = "local",
        marker: str = READY_MARKER,
    ) -> None:
        self.port = port
        self.endpoint_url = f"http://127.0.0.1:{port}"
        self.echo = echo
        self.env = dict(env or {})
        self.module, self.marker = module, marker
        self._process: subprocess.Popen[str] | None = None
        self.exit_code: int | None = None

    def start(self, timeout: float | None = None) -> LocalAWSProcess:
        """Start the process and return once it is seeded; raise if it dies or takes too long.

        With port 0 the process picks a free port; ``endpoint_url`` is then the one it announces.
        """
        env = {**os.environ, **self.env, PORT_VARIABLE: str(self.port), "PYTHONUNBUFFERED": "1"}
        self._process = subprocess.Popen(
            [sys.executable, "-m", self.module],
            cwd=ROOT,
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        ready = threading.Event()
        if timeout is None:
            timeout = DATA_TIMEOUT if self._keeps_data else START_TIMEOUT
        threading.Thread(target=self._drain, args=(self._process, ready), daemon=True).start()
        if not ready.wait(timeout) or self._process.poll() is not None:
            self.stop()
            raise RuntimeError(f"python -m {self.module} did not start (port {self.port})")
        return self

    @property
    def _keeps_data(self) -> bool:
        """Whether this is the emulator with a data directory to load and save."""
        return self.module == "local" and snapshot.data_dir({**os.environ, **self.env}) is not None

    @property
    def pid(self) -> int | None:
        """The child's process id while it runs (benchmarks read its memory from /proc)."""
        return self._process.pid if self._process is not None else None

    def _drain(self, process: subprocess.Popen[str], ready: threading.Event) -> None:
        # Always read the pipe, so a chatty child never blocks on a full one.
        assert process.stdout is not None, "started with stdout=PIPE"
        for line in process.stdout:
            found = ENDPOINT.match(line, len(self.marker)) if line.startswith(self.marker) else None
            if found is not None and not ready.is_set():
                self.endpoint_url, self.port = found.group(0), int(found.group(1))
                ready.set()
            if self.echo is not None:
                self.echo.write(line)
                self.echo.flush()
        ready.set()  # it exited: wake the waiter, which then sees poll() is not None

    def stop(self, timeout: float | None = None) -> None:
        """Stop the process (as a dead endpoint would vanish), waiting for it to exit, at most
        ``timeout`` seconds before killing it; ``exit_code`` says which (negative: a signal).

        The port stays the same, so a restart comes back at the same endpoint.
        """
        if self._process is None:
            return
        self._process.terminate()
        if timeout is None:
            timeout = DATA_TIMEOUT if self._keeps_data else 10
        try:
            self._process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self.exit_code = self._process.returncode
        self._process = None

    def __enter__(self) -> LocalAWSProcess:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
