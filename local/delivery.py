"""S3 event delivery for the embedded AWS: runners on both notification queues, several at once
as Lambda runs several invocations at once, and a progress line while events wait.

In the process of the moto server (``LocalAWS.start``, the tests), or in a process of its own
(``python -m local.delivery``, what `make run` starts): there the handlers' header parsing
does not share an interpreter with the emulator serving the API.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

from config import S3_BUCKET_NAME
from local.events import INDEXER_FILE, WAIT_SECONDS, EventRunner, load_handler_module
from managers.aws.clients import BACKGROUND_AGENT, Credentials, client_config, make_client
from managers.DynamoDBManager import DynamoDBManager
from managers.indexing import Indexer
from metadata import s3_path_of

log = logging.getLogger("dicom_meta.delivery")

INGEST_QUEUE = "dicom-meta-ingest"
INGEST_DLQ = "dicom-meta-ingest-dlq"
INDEX_QUEUE = "dicom-meta-index"
INDEX_DLQ = "dicom-meta-index-dlq"
# Runners per queue (LOCAL_INDEX_RUNNERS): events handled at once, as concurrent Lambda
# invocations. S3 events carry a sequencer (local/moto_fixes.py), so order is kept per key.
INDEX_RUNNERS = int(os.environ.get("LOCAL_INDEX_RUNNERS", "8"))
INGEST_RUNNERS = 2
# Seconds an emulator's answer may take beyond a long poll's wait before a call is retried.
EMULATOR_READ_TIMEOUT = 20
# Seconds between progress lines while events wait or arrive.
PROGRESS_SECONDS = 5.0
# Seconds `make run` waits for the seeded files' records, so the first request finds them.
SEED_INDEX_TIMEOUT = 20.0


@dataclass(frozen=True)
class Queues:
    """The notification queues and their dead-letter queues."""

    ingest: str
    ingest_dlq: str
    index: str
    index_dlq: str


def _config() -> Any:
    """Timeouts that outlast a long poll and a busy emulator (locally, slow is not down); marked
    as background work, which the embedded AWS serves after a person's requests."""
    return client_config(read_timeout=WAIT_SECONDS + EMULATOR_READ_TIMEOUT, user_agent_extra=BACKGROUND_AGENT)


def find_queues(sqs: Any) -> Queues:
    """Return the queues ``LocalAWS.create_resources`` made, by name."""

    def url(name: str) -> str:
        return str(sqs.get_queue_url(QueueName=name)["QueueUrl"])

    return Queues(url(INGEST_QUEUE), url(INGEST_DLQ), url(INDEX_QUEUE), url(INDEX_DLQ))


class Delivery:
    """Runs the ingest and indexer handlers on the events of their queues, and reports progress."""

    def __init__(self, endpoint_url: str, credentials: Credentials, queues: Queues, *, progress: bool = True) -> None:
        self.endpoint_url, self.credentials, self.queues = endpoint_url, credentials, queues
        self.runners: list[EventRunner] = []
        self.index_runners: list[EventRunner] = []
        self._progress = progress
        self._stop = threading.Event()

    def client(self, service: Any) -> Any:
        """A client of the emulator for the runners and handlers (see ``_config``)."""
        return make_client(service, *self._keys(), endpoint_url=self.endpoint_url, config=_config())

    def start(self) -> Delivery:
        handler = load_handler_module()
        handler.use_clients(self.client("s3"), self._dynamodb())
        indexer = load_handler_module(INDEXER_FILE)
        indexer.use_indexer(Indexer(self.client("s3"), self._dynamodb()))
        sqs = self.client("sqs")
        self.runners = [
            EventRunner(sqs, self.queues.ingest, self.queues.ingest_dlq, handler, name=f"s3-event-runner-{n}")
            for n in range(INGEST_RUNNERS)
        ]
        self.index_runners = [
            EventRunner(
                sqs, self.queues.index, self.queues.index_dlq, indexer, name=f"s3-index-runner-{n}", together=True
            )
            for n in range(INDEX_RUNNERS)
        ]
        for runner in self.runners + self.index_runners:
            runner.start()
        if self._progress:
            threading.Thread(target=self._report, args=(sqs,), name="delivery-progress", daemon=True).start()
        return self

    def _dynamodb(self) -> DynamoDBManager:
        return DynamoDBManager(*self._keys(), endpoint_url=self.endpoint_url, config=_config())

    def _keys(self) -> tuple[str, str]:
        return (self.credentials.aws_access_key_id, self.credentials.aws_secret_access_key)

    def stop(self) -> None:
        self._stop.set()
        for runner in self.runners + self.index_runners:
            runner.stop_soon()
        for runner in self.runners + self.index_runners:
            runner.stop()

    def indexed(self) -> int:
        """Events the indexer runners have handled since they started."""
        return sum(runner.handled for runner in self.index_runners)

    def _report(self, sqs: Any) -> None:
        """Log, while the indexer's queue has events or they were handled, how many wait and the rate."""
        last, at, busy = self.indexed(), time.monotonic(), False
        while not self._stop.wait(PROGRESS_SECONDS):
            try:
                attributes = sqs.get_queue_attributes(
                    QueueUrl=self.queues.index,
                    AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
                )["Attributes"]
            except Exception:  # noqa: BLE001 - progress is a courtesy: the emulator may be stopping
                continue
            waiting = int(attributes["ApproximateNumberOfMessages"]) + int(
                attributes["ApproximateNumberOfMessagesNotVisible"]
            )
            now, handled = time.monotonic(), self.indexed()
            rate = (handled - last) / max(now - at, 1e-6)
            if waiting or handled > last:
                log.info("indexing on arrival: %d event(s) waiting, %.0f files/s", waiting, rate)
                busy = True
            elif busy:
                log.info("indexing on arrival: caught up, %d file event(s) handled since start", handled)
                busy = False
            last, at = handled, now


def wait_for_records(dynamodb: DynamoDBManager, paths: list[str], timeout: float = SEED_INDEX_TIMEOUT) -> None:
    """Return once every path has a record, or after ``timeout`` seconds (logged)."""
    deadline = time.monotonic() + timeout
    waiting = list(paths)
    while waiting and time.monotonic() < deadline:
        waiting = [path for path in waiting if dynamodb.get_record(path) is None]
        if waiting:
            time.sleep(0.1)
    if waiting:
        log.warning("%d seeded file(s) not indexed after %.0f s", len(waiting), timeout)


def seeded_paths() -> list[str]:
    """The s3 paths ``LocalAWS.seed`` puts the samples at."""
    from local.samples import seed_files  # pydicom: only where seeds are named

    return [s3_path_of(S3_BUCKET_NAME, f"dicom/{name}") for name, _ in seed_files()]


def main() -> None:
    """``python -m local.delivery``: deliver the events of a running embedded AWS (LOCAL_AWS_PORT)."""
    from local.process import DELIVERY_MARKER, announce
    from managers.aws.backend import LOCAL_CREDENTIALS, local_aws_port

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    # A line per file would drown the progress lines at a hundred files a second.
    logging.getLogger("dicom_meta.indexer").setLevel(logging.WARNING)
    endpoint = f"http://127.0.0.1:{local_aws_port()}"
    keys = (LOCAL_CREDENTIALS.aws_access_key_id, LOCAL_CREDENTIALS.aws_secret_access_key)
    queues = find_queues(make_client("sqs", *keys, endpoint_url=endpoint))
    delivery = Delivery(endpoint, LOCAL_CREDENTIALS, queues).start()
    announce(DELIVERY_MARKER, endpoint)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        delivery.stop()


if __name__ == "__main__":
    main()
