"""The embedded AWS: a moto server on loopback with the bucket, the table, the trigger and samples."""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Callable
from typing import Any

from moto.moto_server.werkzeug_app import MotoRequestHandler
from moto.server import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import BaseWSGIServer, make_server

from config import AWS_REGION, DYNAMODB_TABLE_NAME, S3_BUCKET_NAME
from local import DEFAULT_PORT, LOCAL_CREDENTIALS
from local.events import MAX_RECEIVES, VISIBILITY_TIMEOUT, EventRunner, load_handler_module
from local.samples import seed_files
from managers.aws import Service, make_client
from managers.DicomManager import fields_of, read_header
from managers.DynamoDBManager import DynamoDBManager
from managers.table import table_definition
from metadata import json_key_for, s3_path_of

log = logging.getLogger(__name__)

INGEST_QUEUE = "dicom-meta-ingest"
INGEST_DLQ = "dicom-meta-ingest-dlq"
# A fixed Id: without one every put gets a random Id and a re-run is not a no-op.
NOTIFICATION_ID = "dicom-meta-json-ingest"

WsgiMiddleware = Callable[[Any], Any]


class _QuietRequestHandler(MotoRequestHandler):
    """moto's handler without a log line per request: the emulator's traffic is not news."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


def create_table(dynamodb: Any, table_name: str = DYNAMODB_TABLE_NAME) -> None:
    """Create the metadata table with its indexes unless it exists."""
    if table_name not in dynamodb.list_tables()["TableNames"]:
        dynamodb.create_table(**table_definition(table_name))


class LocalAWS:
    """A running moto server plus the resources and the event runner of dicom-meta."""

    def __init__(self, server: BaseWSGIServer, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread
        host, port = server.server_address[:2]
        # An AF_INET server's address: a str host (bytes only for AF_UNIX, never used here).
        self.endpoint_url = f"http://{host!s}:{port}"
        self.credentials = LOCAL_CREDENTIALS
        self.runner: EventRunner | None = None
        self.dlq_url = ""

    @classmethod
    def start(
        cls,
        port: int = DEFAULT_PORT,
        *,
        seed: bool = True,
        deliver_events: bool = True,
        middleware: WsgiMiddleware | None = None,
    ) -> LocalAWS:
        """Start moto on ``127.0.0.1:port`` (0 picks a free port), create and seed everything."""
        app: Any = DomainDispatcherApplication(create_backend_app)
        if middleware is not None:
            app = middleware(app)
        server = make_server("127.0.0.1", port, app, threaded=True, request_handler=_QuietRequestHandler)
        thread = threading.Thread(target=server.serve_forever, name="local-aws", daemon=True)
        thread.start()
        aws = cls(server, thread)
        aws.create_resources()
        if seed:
            aws.seed()
        if deliver_events:
            aws.start_event_runner()
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
        self.dlq_url = sqs.create_queue(QueueName=INGEST_DLQ)["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=self.dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.queue_url = sqs.create_queue(
            QueueName=INGEST_QUEUE,
            Attributes={
                "VisibilityTimeout": str(VISIBILITY_TIMEOUT),
                "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(MAX_RECEIVES + 2)}),
            },
        )["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        s3.put_bucket_notification_configuration(
            Bucket=S3_BUCKET_NAME,
            NotificationConfiguration={
                "QueueConfigurations": [
                    {
                        "Id": NOTIFICATION_ID,
                        "QueueArn": queue_arn,
                        "Events": ["s3:ObjectCreated:*"],
                        "Filter": {
                            "Key": {
                                "FilterRules": [
                                    {"Name": "prefix", "Value": "json/"},
                                    {"Name": "suffix", "Value": ".json"},
                                ]
                            }
                        },
                    }
                ]
            },
        )

    def _create_table(self) -> None:
        create_table(self.client("dynamodb"))

    def seed(self) -> list[str]:
        """Put the sample DICOM files under ``dicom/`` and their metadata under ``json/``.

        The metadata goes through the same trigger and Lambda as an upload, so searches find
        the seeded files from the start. Returns the files' s3 paths.
        """
        s3 = self.client("s3")
        paths = []
        for name, data in seed_files():
            key = f"dicom/{name}"
            s3.put_object(Bucket=S3_BUCKET_NAME, Key=key, Body=data, ContentType="application/dicom")
            s3_path = s3_path_of(S3_BUCKET_NAME, key)
            document = {"s3_path": s3_path, **fields_of(read_header(io.BytesIO(data)))}
            s3.put_object(
                Bucket=S3_BUCKET_NAME,
                Key=json_key_for(key),
                Body=json.dumps(document).encode(),
                ContentType="application/json",
            )
            paths.append(s3_path)
        return paths

    def start_event_runner(self) -> None:
        """Deliver each new json/*.json object's S3 event to ``lambda_handler``."""
        handler = load_handler_module()
        keys = (self.credentials.aws_access_key_id, self.credentials.aws_secret_access_key)
        handler.use_clients(self.client("s3"), DynamoDBManager(*keys, endpoint_url=self.endpoint_url))
        self.runner = EventRunner(self.client("sqs"), self.queue_url, self.dlq_url, handler)
        self.runner.start()

    def stop(self) -> None:
        """Stop the event runner and the server."""
        if self.runner:
            self.runner.stop()
        self._server.shutdown()
        self._thread.join(timeout=5)
