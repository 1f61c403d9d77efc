"""The pages of a bulk run indexed by several processes at once, a few parts ahead of the listing.

One process reads about 200 headers a second however many threads it runs: boto3's work per
call (serializing, signing, parsing) holds the GIL, and not the network bounds it. So the
listing stays in the command's process and hands its pages, in parts, to ``processes``
processes, each with its own clients and ``workers // processes`` threads. The first page
goes to a thread of the command's own, the same way; the processes start once there is a
second page.

Ctrl-C reaches the command only (the processes ignore it): it sets ``stop``, each part then
writes what it has read and returns what it did, as one process did before.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
from collections.abc import Callable, Iterator
from concurrent.futures import (
    FIRST_COMPLETED,
    BrokenExecutor,
    CancelledError,
    Executor,
    Future,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
    wait,
)
from dataclasses import dataclass
from typing import Any

from errors import UpstreamUnavailable
from managers.indexing import Indexer, Listed, PageResult

# Why a run stops when a process died (killed, out of memory) or could not build its clients.
BROKEN = "an indexing process ended or could not start"
# How often the progress bar is brought up to date while parts are being indexed.
PROGRESS_SECONDS = 0.5

Connect = Callable[[int], Indexer]


@dataclass(frozen=True)
class Shared:
    """What the command and its processes share: files done so far, and the stop flag."""

    done: Any  # multiprocessing.Value("q")
    stop: Any  # multiprocessing.Event


@dataclass
class Outcome:
    """A part's result, and why the run must stop (S3 or DynamoDB kept failing), if it must."""

    result: PageResult
    stopped: str | None = None


class _Stopped(Exception):
    """Raised from the progress callback when the run is told to stop."""


# The worker's clients, thread pool and shared state: set once per process (or thread) by _start.
_worker: tuple[Indexer, ThreadPoolExecutor, Shared] | None = None


def _start(connect: Connect, threads: int, shared: Shared, own_process: bool) -> None:
    global _worker  # one set of clients per process, built once, as a Lambda builds its own
    if own_process:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the command stops the run, not a terminal's Ctrl-C
        logging.basicConfig(level=logging.ERROR, format="%(message)s")
    _worker = (connect(threads), ThreadPoolExecutor(threads, thread_name_prefix="indexer"), shared)


def _index(listed: list[Listed]) -> Outcome:
    """Index one part in this worker; what it wrote is counted even when it stops midway."""
    assert _worker is not None, "started by the executor's initializer"
    indexer, pool, shared = _worker
    outcome = Outcome(PageResult())
    if shared.stop.is_set():
        return outcome

    def done(files: int) -> None:
        with shared.done.get_lock():
            shared.done.value += files
        if shared.stop.is_set():
            raise _Stopped

    try:
        indexer.index_page(listed, pool, on_done=done, result=outcome.result)
    except _Stopped:
        pass
    except UpstreamUnavailable as exc:
        outcome.stopped = exc.message
    return outcome


class PageRunner:
    """Index pages on ``processes`` processes (the first page: a thread of this one), ``workers`` reads at once.

    ``submit`` a part, then ``collect`` what finished; ``stop`` asks every part to stop.
    ``ahead``: how many parts may be running or queued while the listing goes on.
    """

    def __init__(self, connect: Connect, workers: int, processes: int, here: Indexer | None = None) -> None:
        self._context = multiprocessing.get_context("spawn")  # no fork of a process with threads and clients
        self.shared = Shared(self._context.Value("q", 0), self._context.Event())
        self._connect, self._workers, self._processes = connect, workers, processes
        # Pages start on a thread of this process (with ``here``'s clients, when given: building
        # another set costs a re-run of an unchanged page a third of its time); ``widen`` moves
        # the next ones to processes.
        local: Connect = connect if here is None else lambda _: here
        self._executors: list[Executor] = [
            ThreadPoolExecutor(1, initializer=_start, initargs=(local, workers, self.shared, False))
        ]
        self.ahead = 2  # parts running or queued while the listing goes on
        self._running: set[Future[Outcome]] = set()
        self.stopped: str | None = None

    def widen(self) -> None:
        """Index the parts submitted from now on in ``processes`` processes (if more than one).

        Called once the listing has a second page: their start (a second or so, spawning and
        importing) is then small beside the run, and a run of one page (a re-run that finds
        every file unchanged) never pays it.
        """
        if self._processes < 2 or self.widened:
            return
        threads = max(1, self._workers // self._processes)
        self._executors.append(
            ProcessPoolExecutor(
                self._processes,
                mp_context=self._context,
                initializer=_start,
                initargs=(self._connect, threads, self.shared, True),
            )
        )
        self.ahead = 2 * self._processes  # each process has its next part ready

    @property
    def widened(self) -> bool:
        """Whether parts now go to processes (then smaller parts keep them all busy)."""
        return len(self._executors) > 1

    @property
    def done(self) -> int:
        """Files done in all processes so far (for the progress bar)."""
        return int(self.shared.done.value)

    def submit(self, listed: list[Listed]) -> None:
        try:
            self._running.add(self._executors[-1].submit(_index, listed))
        except BrokenExecutor:
            self.stop(BROKEN)

    def collect(self, until: int, tick: Callable[[], None]) -> Iterator[PageResult]:
        """Yield the results of finished parts until at most ``until`` are running (0: all),
        calling ``tick`` every ``PROGRESS_SECONDS`` meanwhile. A part that had to stop stops the run.

        Each result is yielded as soon as it is in, so an interruption loses none of them.
        """
        while True:
            for future in [future for future in self._running if future.done()]:
                self._running.discard(future)
                yield self._outcome(future)
            if len(self._running) <= until:
                return
            wait(self._running, timeout=PROGRESS_SECONDS, return_when=FIRST_COMPLETED)
            tick()

    def _outcome(self, future: Future[Outcome]) -> PageResult:
        try:
            outcome = future.result()
        except CancelledError:
            return PageResult()
        except BrokenExecutor:
            self.stop(BROKEN)
            return PageResult()
        if outcome.stopped is not None:
            self.stop(outcome.stopped)
        return outcome.result

    def stop(self, reason: str | None = None) -> None:
        """Stop every part (each writes what it has read), and start no other."""
        if reason is not None and self.stopped is None:
            self.stopped = reason
        self.shared.stop.set()
        for future in self._running:
            future.cancel()

    @property
    def stopping(self) -> bool:
        """Whether the run was told to stop (Ctrl-C, or S3 or DynamoDB kept failing)."""
        return bool(self.shared.stop.is_set())

    def __enter__(self) -> PageRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        for executor in self._executors:
            executor.shutdown(wait=True, cancel_futures=True)
        _finish()


def _finish() -> None:
    """Let go of this process's worker (the first page's thread): its reading threads end."""
    global _worker  # set by _start in this process when the first page ran here
    if _worker is not None:
        _worker[1].shutdown(wait=True)
        _worker = None
