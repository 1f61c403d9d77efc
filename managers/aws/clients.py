"""boto3 client construction and the translation of botocore failures into domain errors."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from config import AWS_REGION
from errors import UpstreamUnavailable

log = logging.getLogger(__name__)

# Seconds. A dead endpoint must become UPSTREAM_UNAVAILABLE within 5 seconds, not hang a
# worker. Standard retries, 3 attempts in all: a dead port fails at once, a silent one costs
# 3 x 1.2 s plus backoff under 0.2 s, throttling at most 1 + 2 s of backoff (botocore's base
# is 1 s for throttling, 50 ms for other errors).
CONNECT_TIMEOUT = 1.0
READ_TIMEOUT = 1.2
MAX_ATTEMPTS = 3

SECRETS_FILE = Path(__file__).resolve().parents[2] / "secrets.json"

THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "SlowDown",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "ServiceUnavailable",
        "InternalError",
    }
)


# The services this project builds clients for (boto3's stubs type each one's client).
Service = Literal["s3", "dynamodb", "sqs", "lambda", "iam", "sts", "stepfunctions"]


@dataclass(frozen=True)
class Credentials:
    """Explicit AWS credentials, as secrets.json holds them."""

    aws_access_key_id: str
    aws_secret_access_key: str
    aws_session_token: str | None = None


def load_secrets(path: Path = SECRETS_FILE) -> Credentials | None:
    """Return the credentials of ``secrets.json``, or ``None`` when the file is absent.

    ``None`` means boto3's default chain (environment, profile, IAM role) applies.
    """
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    return Credentials(
        aws_access_key_id=data["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=data["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=data.get("AWS_SESSION_TOKEN") or None,
    )


def credential_args(credentials: Credentials | None) -> tuple[str | None, str | None, str | None]:
    """Return the skeleton constructors' credential triple; three ``None``: boto3's default chain."""
    if credentials is None:
        return None, None, None
    return credentials.aws_access_key_id, credentials.aws_secret_access_key, credentials.aws_session_token


# The User-Agent suffix of clients doing background work (event delivery, bulk indexing): the
# embedded AWS serves a waiting person's request before theirs (local/moto_fixes.py). On AWS it
# is only a label.
BACKGROUND_AGENT = "dicom-meta-background"


def client_config(**overrides: Any) -> Config:
    """Return the botocore config every client uses: short timeouts, standard retries."""
    settings: dict[str, Any] = {
        "region_name": AWS_REGION,
        "connect_timeout": CONNECT_TIMEOUT,
        "read_timeout": READ_TIMEOUT,
        # total_max_attempts counts the first try; botocore's max_attempts would not (4 in all).
        "retries": {"mode": "standard", "total_max_attempts": MAX_ATTEMPTS},
        "max_pool_connections": 32,
    }
    settings.update(overrides)
    return Config(**settings)


def make_client(
    service: Service,
    aws_access_key_id: str | None = None,
    aws_secret_access_key: str | None = None,
    aws_session_token: str | None = None,
    *,
    endpoint_url: str | None = None,
    config: Config | None = None,
) -> Any:
    """Build a boto3 client: explicit credentials when given, else the default chain.

    ``endpoint_url=None`` lets boto3 honour ``AWS_ENDPOINT_URL`` as usual.
    """
    session = boto3.session.Session(
        aws_access_key_id=aws_access_key_id,
        aws_secret_access_key=aws_secret_access_key,
        aws_session_token=aws_session_token,
        region_name=AWS_REGION,
    )
    return session.client(service, endpoint_url=endpoint_url, config=config or client_config())


def error_code(exc: ClientError) -> str:
    """Return the AWS error code of a ClientError."""
    return str(exc.response.get("Error", {}).get("Code", ""))


def http_status(exc: ClientError) -> int:
    """Return the HTTP status AWS answered a ClientError with."""
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


@contextmanager
def upstream(service: str) -> Iterator[None]:
    """Turn network failures and throttling of ``service`` into ``UpstreamUnavailable``.

    Other ClientErrors pass through for the caller to map (a missing key, a denied read).
    botocore has already retried by the time anything reaches here.
    """
    try:
        yield
    except ClientError as exc:
        if error_code(exc) in THROTTLING_CODES or http_status(exc) >= 500:
            log.warning("%s throttled or failing: %s", service, error_code(exc))
            raise UpstreamUnavailable(f"{service} is busy or failing; try again shortly") from exc
        raise
    except (BotoConnectionError, HTTPClientError) as exc:
        log.warning("%s unreachable: %s", service, type(exc).__name__)
        raise UpstreamUnavailable(f"{service} is unreachable; try again shortly") from exc
