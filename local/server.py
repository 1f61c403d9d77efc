"""The embedded AWS: a moto server on loopback with the bucket, the table, the trigger and samples."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from moto.server import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import BaseWSGIServer, make_server

from config import AWS_REGION, DYNAMODB_TABLE_NAME, S3_BUCKET_NAME
from local import keepalive, moto_fixes, object_gets, snapshot
from local.delivery import INDEX_DLQ, INDEX_QUEUE, INGEST_DLQ, INGEST_QUEUE, Delivery, Queues, wait_for_records
from local.events import HANDLING_TIMEOUT, MAX_RECEIVES
from local.samples import seed_files
from managers.aws.backend import DEFAULT_PORT, LOCAL_CREDENTIALS
from managers.aws.clients import Service, make_client
from managers.DynamoDBManager import DynamoDBManager
from managers.store.records import EXPIRES_AT
from managers.store.table import table_definition
from metadata import s3_path_of

log = logging.getLogger(__name__)

# A fixed Id: without one every put gets a random Id and a re-run is not a no-op.
NOTIFICATION_ID = "dicom-meta-json-ingest"
INDEX_NOTIFICATION_ID = "dicom-meta-dicom-index"

WsgiMiddleware = Callable[[Any], Any]


class _QuietRequestHandler(keepalive.KeepAliveHandler):
    """moto's handler, keeping connections open, without a log line per request: the
    emulator's traffic is not news."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


def create_table(dynamodb: Any, table_name: str = DYNAMODB_TABLE_NAME) -> None:
    """Create the metadata table with its indexes unless it exists."""
    if table_name not in dynamodb.list_tables()["TableNames"]:
        dynamodb.create_table(**table_definition(table_name))
        # Tombstones of deleted files expire (managers/store/records.py).
        dynamodb.update_time_to_live(
            TableName=table_name, TimeToLiveSpecification={"Enabled": True, "AttributeName": EXPIRES_AT}
        )


class LocalAWS:
    """A running moto server plus the resources and the event runner of dicom-meta."""

    def __init__(self, server: BaseWSGIServer, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread
        host, port = server.server_address[:2]
        # An AF_INET server's address: a str host (bytes only for AF_UNIX, never used here).
        self.endpoint_url = f"http://{host!s}:{port}"
        self.credentials = LOCAL_CREDENTIALS
        self.delivery: Delivery | None = None
        self.dlq_url = ""
        self.index_dlq_url = ""
        self.seeded: list[str] = []
        self.data: Path | None = None

    @classmethod
    def start(
        cls,
        port: int = DEFAULT_PORT,
        *,
        seed: bool = True,
        deliver_events: bool = True,
        middleware: WsgiMiddleware | None = None,
        progress: bool = False,
        data: Path | None = None,
    ) -> LocalAWS:
        """Start moto on ``127.0.0.1:port`` (0 picks a free port), create and seed everything.

        ``deliver_events``: run the event delivery here too (else ``python -m local.delivery``
        does, in a process of its own); ``progress``: it logs on-arrival indexing as it goes;
        ``data``: a data directory (``local/snapshot.py``) to load from if a snapshot was saved
        there (instead of seeding), and to save to on ``stop``.
        """
        moto_fixes.install()
        moto_app = DomainDispatcherApplication(create_backend_app)
        app: Any = object_gets.plain_gets(moto_fixes.serialize_dynamodb(moto_app))
        if middleware is not None:
            app = middleware(app)
        server = make_server("127.0.0.1", port, app, threaded=True, request_handler=_QuietRequestHandler)
        thread = threading.Thread(target=server.serve_forever, name="local-aws", daemon=True)
        thread.start()
        aws = cls(server, thread)
        aws.data = data
        aws.create_resources()
        saved = snapshot.saved(data) if data is not None else None
        if saved is not None:
            aws.load(saved)
        elif seed:
            aws.seeded = aws.seed()
        if deliver_events:
            aws.start_event_runner(progress)
            wait_for_records(aws.dynamodb(), aws.seeded)
        return aws

    def client(self, service: Service) -> Any:
        """Return a boto3 client for this endpoint."""
        keys = (self.credentials.aws_access_key_id, self.credentials.aws_secret_access_key)
        return make_client(service, *keys, endpoint_url=self.endpoint_url)

    def create_resources(self) -> None:
        """Create the bucket, the table, the queues and the bucket notification (idempotent)."""
        s3, sqs = self.client("s3"), self.client("sqs")
        existing = {bucket["Name"] for bucket in s3.list_buckets().get("Buckets", [])}
        if S3_BUCKET_NAME not in existing:
            s3.create_bucket(Bucket=S3_BUCKET_NAME, CreateBucketConfiguration={"LocationConstraint": AWS_REGION})
        self._create_table()
        self.queue_url, queue_arn, self.dlq_url = _create_queue(sqs, INGEST_QUEUE, INGEST_DLQ)
        self.index_queue_url, index_arn, self.index_dlq_url = _create_queue(sqs, INDEX_QUEUE, INDEX_DLQ)
        s3.put_bucket_notification_configuration(
            Bucket=S3_BUCKET_NAME,
            NotificationConfiguration={
                "QueueConfigurations": [
                    _notification(NOTIFICATION_ID, queue_arn, ["s3:ObjectCreated:*"], "json/", ".json"),
                    # The indexer: every key under dicom/, with or without .dcm.
                    _notification(
                        INDEX_NOTIFICATION_ID, index_arn, ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"], "dicom/"
                    ),
                ]
            },
        )

    def _create_table(self) -> None:
        create_table(self.client("dynamodb"))

    def seed(self) -> list[str]:
        """Put the sample DICOM files under ``dicom/``; return their s3 paths.

        Their records come from the indexer, through the same notification as any file put
        there (no metadata document is uploaded for them).
        """
        s3 = self.client("s3")
        paths = []
        for name, data in seed_files():
            key = f"dicom/{name}"
            s3.put_object(Bucket=S3_BUCKET_NAME, Key=key, Body=data, ContentType="application/dicom")
            paths.append(s3_path_of(S3_BUCKET_NAME, key))
        return paths

    def start_event_runner(self, progress: bool = False) -> None:
        """Deliver json/*.json events to ``lambda_handler`` and dicom/ events to the indexer."""
        queues = Queues(self.queue_url, self.dlq_url, self.index_queue_url, self.index_dlq_url)
        self.delivery = Delivery(self.endpoint_url, self.credentials, queues, progress=progress).start()

    def dynamodb(self) -> DynamoDBManager:
        keys = (self.credentials.aws_access_key_id, self.credentials.aws_secret_access_key)
        return DynamoDBManager(*keys, endpoint_url=self.endpoint_url)

    def load(self, saved: Path) -> None:
        """Put a saved snapshot into the emulator (no S3 event is sent for its objects)."""
        log.info("Loading the embedded AWS's data from %s", saved.parent)
        sequence, counts = snapshot.load(saved)
        moto_fixes.continue_sequence(sequence)
        log.info("Loaded %(objects)d object(s), %(items)d item(s), %(events)d waiting event(s)", counts)

    def stop(self) -> None:
        """Stop the event runners and the server; save to the data directory if there is one."""
        if self.delivery is not None:
            self.delivery.stop()
        self._server.shutdown()
        self._thread.join(timeout=5)
        keepalive.close_connections(self._server)
        if self.data is not None:
            self.save(self.data)

    def save(self, directory: Path) -> None:
        """Write the bucket, the table and the waiting events to ``directory``."""
        log.info("Saving the embedded AWS's data to %s", directory)
        with moto_fixes.dynamodb_lock():  # a request still being answered finishes first
            counts = snapshot.save(directory, moto_fixes.next_sequence())
        log.info("Saved %(objects)d object(s), %(items)d item(s), %(events)d waiting event(s)", counts)


def _create_queue(sqs: Any, name: str, dlq_name: str) -> tuple[str, str, str]:
    """Create a notification queue with its dead-letter queue; return (url, arn, dlq url)."""
    dlq_url = sqs.create_queue(QueueName=dlq_name)["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    url = sqs.create_queue(
        QueueName=name,
        Attributes={
            "VisibilityTimeout": str(HANDLING_TIMEOUT),
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(MAX_RECEIVES + 2)}),
        },
    )["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn, dlq_url


def _notification(
    notification_id: str, queue_arn: str, events: list[str], prefix: str, suffix: str | None = None
) -> dict[str, Any]:
    """Return one queue entry of a bucket notification, filtered by prefix (and suffix)."""
    rules = [{"Name": "prefix", "Value": prefix}]
    if suffix:
        rules.append({"Name": "suffix", "Value": suffix})
    return {"Id": notification_id, "QueueArn": queue_arn, "Events": events, "Filter": {"Key": {"FilterRules": rules}}}
