"""The managers one app uses, built together once so they share clients."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from botocore.exceptions import BotoCoreError, ClientError

from errors import UpstreamUnavailable
from managers.aws.clients import Credentials, credential_args
from managers.DicomManager import DicomManager
from managers.DynamoDBManager import DynamoDBManager
from managers.pixels.frames import FrameReader
from managers.S3Manager import S3Manager
from managers.store.study_index import StudyIndex

# Extractions of one app running at once, across all batch requests: enough to hide S3's
# latency, well within the S3 client's 32 pooled connections (managers/aws/clients.py).
BATCH_WORKERS = 16


def _batch_pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=BATCH_WORKERS, thread_name_prefix="dicom-meta-batch")


@dataclass(frozen=True)
class Managers:
    """S3, DynamoDB and DICOM managers sharing one set of credentials and one endpoint.

    ``pool`` runs batch extractions; built once with the managers, it bounds the app's
    concurrent S3 reads and reuses the one S3 client (boto3 clients are thread-safe).
    """

    s3: S3Manager
    dynamodb: DynamoDBManager
    dicom: DicomManager
    pool: ThreadPoolExecutor = field(default_factory=_batch_pool)
    # Studies, series and instances, read through the same DynamoDB client.
    studies: StudyIndex = field(init=False)
    # Frames read by range through the same S3 client, each file's layout learned once.
    frames: FrameReader = field(init=False)

    def __post_init__(self) -> None:
        # frozen: set once, here
        object.__setattr__(self, "studies", StudyIndex(self.dynamodb))
        object.__setattr__(self, "frames", FrameReader(self.s3.client))

    @classmethod
    def create(cls, credentials: Credentials | None = None, endpoint_url: str | None = None) -> Managers:
        """Build the managers: explicit credentials when given, else boto3's default chain."""
        keys = credential_args(credentials)
        s3 = S3Manager(*keys, endpoint_url=endpoint_url)
        return cls(s3=s3, dynamodb=DynamoDBManager(*keys, endpoint_url=endpoint_url), dicom=DicomManager(s3))

    def readiness(self) -> dict[str, str]:
        """Ping S3 and DynamoDB side by side; return ``"ok"`` or ``"unavailable"`` for each.

        In parallel so that two dead services cost one timeout, not two. Any failure counts:
        a missing bucket or a denied table serves no request either.
        """
        pings: dict[str, Callable[[], None]] = {"s3": self.s3.ping, "dynamodb": self.dynamodb.ping}
        with ThreadPoolExecutor(max_workers=len(pings)) as pool:
            futures = {name: pool.submit(_answers, ping) for name, ping in pings.items()}
        return {name: "ok" if future.result() else "unavailable" for name, future in futures.items()}


def _answers(ping: Callable[[], None]) -> bool:
    try:
        ping()
    except (UpstreamUnavailable, ClientError, BotoCoreError):
        return False
    return True
