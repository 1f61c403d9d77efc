"""S3 event delivery for the embedded AWS: an SQS queue polled by a thread that runs the Lambda.

The bucket notifies an SQS queue (as a real bucket notifies a Lambda); the runner long-polls
it, calls ``lambda_handler`` with the very event JSON S3 produced (or, for the indexer, the
records of up to ``BATCH_SIZE`` waiting messages as one event, as Lambda hands a function an
SQS batch), deletes the messages only when the handler succeeded (ten a call), and otherwise
makes them visible again after ``VISIBILITY_TIMEOUT``. After ``MAX_RECEIVES`` tries the event
goes to the dead-letter queue with the handler's error, in the shape of the record Lambda
sends its on-failure destination; the queue's redrive policy is a backstop should the runner
itself die mid-way.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from errors import scrubbed_traceback

log = logging.getLogger(__name__)

HANDLER_FILE = Path(__file__).resolve().parent.parent / "lambda" / "lambda_function.py"
INDEXER_FILE = HANDLER_FILE.with_name("indexer_function.py")
MAX_RECEIVES = 3
# Seconds a failed event waits before its next try (the runner sets it on failure).
VISIBILITY_TIMEOUT = 2
# Seconds an event being handled stays hidden from the other runners (the queue's own
# visibility timeout): longer than a busy emulator takes, so no event is handled twice at once.
HANDLING_TIMEOUT = 30
WAIT_SECONDS = 1
# Messages one ReceiveMessage and one DeleteMessageBatch take at most (SQS's limit).
RECEIVE_MAX = 10
# Messages a runner handling events together takes at once while they wait (Lambda's SQS
# batch size may be up to 10,000): 50 files of a study cost one transaction, not five.
BATCH_SIZE = 50
# Seconds a runner keeps handled messages before deleting them: well within HANDLING_TIMEOUT.
DELETE_WITHIN = HANDLING_TIMEOUT / 3


def load_handler_module(path: Path = HANDLER_FILE) -> ModuleType:
    """Import a handler of ``lambda/`` (``lambda`` is a keyword, so not as a package)."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class LambdaContext:
    """The part of the Lambda context object the handler reads."""

    function_name: str = "local"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))


class EventRunner:
    """Polls the notification queue and hands each S3 event to the Lambda handler."""

    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        dlq_url: str,
        handler_module: ModuleType,
        name: str = "s3-event-runner",
        *,
        together: bool = False,
    ) -> None:
        self.sqs = sqs
        self.together = together
        self.queue_url = queue_url
        self.dlq_url = dlq_url
        self.handler = handler_module.lambda_handler
        # Events done with (handled, or dead-lettered): read by the progress line.
        self.handled = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop_soon(self) -> None:
        """Ask the runner to stop after its current poll (``stop`` then waits for it)."""
        self._stop.set()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=WAIT_SECONDS + 5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception as exc:  # noqa: BLE001 - the runner outlives any one failed poll
                log.error("event runner: polling failed\n%s", scrubbed_traceback(exc))
                self._stop.wait(1)

    def poll_once(self) -> int:
        """Receive and handle one batch of messages; return how many were handled successfully."""
        messages = self._receive(WAIT_SECONDS)
        received = time.monotonic()
        # While events wait (each receive full), a runner handling them together takes up to
        # BATCH_SIZE, as Lambda's SQS batching does: a batch's reads and writes are shared.
        while self.together and len(messages) % RECEIVE_MAX == 0 and 0 < len(messages) < BATCH_SIZE:
            more = self._receive(0)
            if not more:
                break
            messages += more
        if self.together and len(messages) > 1 and self._deliver_together(messages):
            self._delete([message["ReceiptHandle"] for message in messages])
            self.handled += len(messages)
            return len(messages)
        done: list[str] = []
        handled = 0
        for message in messages:
            if self._deliver(message):
                done.append(message["ReceiptHandle"])
                handled += 1
            else:  # tried again soon, not after the handling timeout
                self.sqs.change_message_visibility(
                    QueueUrl=self.queue_url,
                    ReceiptHandle=message["ReceiptHandle"],
                    VisibilityTimeout=VISIBILITY_TIMEOUT,
                )
            if time.monotonic() - received > DELETE_WITHIN:  # before the done ones show again
                self._delete(done)
                done, received = [], time.monotonic()
        self._delete(done)
        self.handled += handled
        return handled

    def _receive(self, wait_seconds: int) -> list[dict[str, Any]]:
        response = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=RECEIVE_MAX,
            WaitTimeSeconds=wait_seconds,
            AttributeNames=["ApproximateReceiveCount"],
        )
        messages: list[dict[str, Any]] = response.get("Messages", [])
        return messages

    def _delete(self, receipt_handles: list[str]) -> None:
        """Delete the messages done with, ten a call (one call per message cost the emulator a
        tenth of an event's time); one not deleted is delivered again, as SQS may anyway."""
        for start in range(0, len(receipt_handles), RECEIVE_MAX):
            handles = receipt_handles[start : start + RECEIVE_MAX]
            entries = [{"Id": str(n), "ReceiptHandle": handle} for n, handle in enumerate(handles)]
            answer = self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)
            if answer.get("Failed"):
                line = {"event": "delete_failed", "runner": self._thread.name, "messages": len(answer["Failed"])}
                log.warning(json.dumps(line))

    def _deliver_together(self, messages: list[dict[str, Any]]) -> bool:
        """Run the handler once on the records of every message, as Lambda runs an SQS batch;
        ``True`` when all are done with. Otherwise (a record to retry, or a message that is no
        S3 event) the messages are delivered one by one, each retried or dead-lettered alone:
        the handler is idempotent, so what the batch wrote is found written."""
        records: list[Any] = []
        for message in messages:
            try:
                event = json.loads(message["Body"])
            except ValueError:
                return False
            if not isinstance(event, dict) or not isinstance(event.get("Records"), list):
                return False
            records += event["Records"]
        try:
            self.handler({"Records": records}, LambdaContext())
            return True
        except Exception as exc:  # noqa: BLE001 - delivered one by one next
            line = {"event": "batch_delivered_alone", "runner": self._thread.name, "error": type(exc).__name__}
            log.info(json.dumps(line))
            return False

    def _deliver(self, message: dict[str, Any]) -> bool:
        """Run the handler on one message; ``True`` when the message is done with."""
        event = json.loads(message["Body"])
        try:
            self.handler(event, LambdaContext())
            return True
        except Exception as exc:  # noqa: BLE001 - a failed event is retried, then dead-lettered
            tries = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
            # One JSON line, the error's type only: its message may quote a document's keys or values.
            line = {
                "event": "delivery_failed",
                "runner": self._thread.name,
                "try": tries,
                "of": MAX_RECEIVES,
                "error": type(exc).__name__,
            }
            log.warning(json.dumps(line))
            if tries < MAX_RECEIVES:
                return False
            self._dead_letter(event, exc, tries)
            return True

    def _dead_letter(self, event: dict[str, Any], exc: Exception, tries: int) -> None:
        """Keep a failed event in the DLQ with its reason, shaped as Lambda's on-failure record."""
        record = {
            "version": "1.0",
            "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "requestContext": {"condition": "RetriesExhausted", "approximateInvokeCount": tries},
            "requestPayload": event,
            "responseContext": {"statusCode": 200, "functionError": "Unhandled"},
            "responsePayload": {"errorType": type(exc).__name__, "errorMessage": str(exc)},
        }
        self.sqs.send_message(QueueUrl=self.dlq_url, MessageBody=json.dumps(record))
