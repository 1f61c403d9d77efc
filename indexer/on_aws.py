"""The bulk index on AWS (``python -m indexer S3_PREFIX --on-aws``): one Step Functions execution.

Instead of indexing from this machine, ``submit`` starts the fan-out state machine that
``deploy/deploy_resources.sh`` creates: a Distributed Map lists the prefix and runs the
indexer function on batches of keys (docs/ARCHITECTURE.md, "The bulk index on AWS"). The
command returns once the execution is started; its progress is in the Step Functions console
and its per-batch results under the bucket's ``index-results/``.
"""

from __future__ import annotations

import re
import sys
import uuid
from datetime import UTC, datetime
from typing import Any, NoReturn

from botocore.exceptions import BotoCoreError, ClientError

from config import S3_BUCKET_NAME
from errors import NotFound, UpstreamUnavailable
from managers.aws.clients import credential_args, error_code, load_secrets
from managers.aws.step_functions import STATE_MACHINE_NAME, StepFunctionsManager

# The indexer function's role may read only dicom/ (deploy/indexer-policy.json), so only
# prefixes inside it can be indexed on AWS; other prefixes are for the local bulk run.
INDEXED_PREFIX = "dicom/"
# Where the state machine writes each run's results (deploy/common.sh, RESULTS_PREFIX).
RESULTS_PREFIX = "index-results/"
USAGE_ERROR = 2

_S3_PREFIX = re.compile(r"s3://(?P<bucket>[^/]*)(?:/(?P<prefix>.*))?")


def fail(message: str) -> NoReturn:
    """Say what is wrong on one line of stderr and exit 2 (a usage or configuration error)."""
    print(f"index --on-aws: {message}", file=sys.stderr)
    raise SystemExit(USAGE_ERROR)


def parse_prefix(s3_prefix: str) -> tuple[str, str]:
    """Return the bucket and key prefix of ``s3://bucket/prefix``, or exit 2 saying what is wrong.

    The messages never repeat the value given: it may name a patient.
    """
    match = _S3_PREFIX.fullmatch(s3_prefix or "")
    if not match or not match["bucket"] or any(ord(c) < 32 for c in s3_prefix):
        fail(f"the prefix must look like s3://{S3_BUCKET_NAME}/{INDEXED_PREFIX}<folder>/")
    if match["bucket"] != S3_BUCKET_NAME:
        fail(f"the prefix names another bucket; only s3://{S3_BUCKET_NAME}/ is indexed")
    prefix = match["prefix"] or ""
    if prefix + "/" == INDEXED_PREFIX:
        prefix = INDEXED_PREFIX
    if not prefix.startswith(INDEXED_PREFIX):
        fail(
            f"on AWS only prefixes under s3://{S3_BUCKET_NAME}/{INDEXED_PREFIX} can be indexed "
            "(the indexer function may read nothing else); index other prefixes from this machine"
        )
    return match["bucket"], prefix


def execution_name() -> str:
    """A unique, sortable execution name; it holds no part of the prefix."""
    return f"index-{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


def submit(prefix: str, endpoint_url: str | None) -> dict[str, Any]:
    """Start the fan-out over ``prefix`` and return what was started.

    Parameters
    ----------
    prefix
        ``s3://data-apps-ex/dicom/...``: a prefix of the bucket, inside ``dicom/``.
    endpoint_url
        Another AWS endpoint (an emulator); ``None`` honours ``AWS_ENDPOINT_URL``.

    Returns
    -------
    dict
        ``execution`` (its ARN), ``started``, ``stateMachine``, ``bucket``, ``prefix`` and
        ``results`` (where the run's results will be written).

    Raises
    ------
    SystemExit
        With status 2 and a one-line message when the prefix is malformed, names another
        bucket or lies outside ``dicom/``, when the state machine is not deployed, or when
        AWS cannot be reached or refuses.
    """
    bucket, key_prefix = parse_prefix(prefix)
    try:
        manager = StepFunctionsManager(*credential_args(load_secrets()), endpoint_url=endpoint_url)
        arn = manager.state_machine_arn()
        started = manager.start_execution(arn, execution_name(), {"bucket": bucket, "prefix": key_prefix})
    except NotFound:
        fail(f"the state machine {STATE_MACHINE_NAME} is not deployed here; run bash deploy/deploy_resources.sh")
    except UpstreamUnavailable:
        fail("Step Functions (or STS) is unreachable or throttling; check the endpoint and try again")
    except ClientError as exc:
        fail(f"AWS refused the submission ({error_code(exc)}); check the credentials and their permissions")
    except BotoCoreError as exc:
        fail(f"cannot call AWS ({type(exc).__name__}); check the credentials and the endpoint")
    return {
        "execution": started["executionArn"],
        "started": started["startDate"],
        "stateMachine": arn,
        "bucket": bucket,
        "prefix": key_prefix,
        "results": f"s3://{bucket}/{RESULTS_PREFIX}",
    }
