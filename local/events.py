"""S3 event delivery for the embedded AWS: an SQS queue polled by a thread that runs the Lambda.

The bucket notifies an SQS queue (as a real bucket notifies a Lambda); the runner long-polls
it, calls ``lambda_handler`` with the very event JSON S3 produced, deletes the message only
when the handler succeeded, and otherwise lets it come back after the visibility timeout.
After ``MAX_RECEIVES`` tries SQS moves it to the dead-letter queue, where it stays.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

log = logging.getLogger(__name__)

HANDLER_FILE = Path(__file__).resolve().parent.parent / "lambda" / "lambda_function.py"
MAX_RECEIVES = 3
VISIBILITY_TIMEOUT = 2
WAIT_SECONDS = 1


def load_handler_module() -> ModuleType:
    """Import ``lambda/lambda_function.py`` (``lambda`` is a keyword, so not as a package)."""
    spec = importlib.util.spec_from_file_location("lambda_function", HANDLER_FILE)
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

    def __init__(self, sqs: Any, queue_url: str, handler_module: ModuleType) -> None:
        self.sqs = sqs
        self.queue_url = queue_url
        self.handler = handler_module.lambda_handler
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="s3-event-runner", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=WAIT_SECONDS + 5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception:  # noqa: BLE001 - the runner must outlive a hiccup of the emulator
                log.exception("event runner: polling failed")
                self._stop.wait(1)

    def poll_once(self) -> int:
        """Receive and handle one batch of messages; return how many were handled successfully."""
        response = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=WAIT_SECONDS,
            AttributeNames=["ApproximateReceiveCount"],
        )
        handled = 0
        for message in response.get("Messages", []):
            if self._deliver(message):
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
                handled += 1
        return handled

    def _deliver(self, message: dict[str, Any]) -> bool:
        try:
            self.handler(json.loads(message["Body"]), LambdaContext())
            return True
        except Exception as exc:  # noqa: BLE001 - a failed event is retried, then dead-lettered
            tries = message.get("Attributes", {}).get("ApproximateReceiveCount", "?")
            log.warning("ingest failed (try %s of %d): %s", tries, MAX_RECEIVES, exc)
            return False
