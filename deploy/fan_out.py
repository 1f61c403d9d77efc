"""The bulk index's fan-out on AWS: a Step Functions state machine with one Distributed Map.

The Map lists the prefix itself (ItemReader over S3 ListObjectsV2, so no manifest is built),
hands the indexer function batches of keys in EXPRESS child executions, and writes what each
batch reported under the bucket's results prefix. ``deploy_resources.sh`` prints the
definition with ``definition`` and compares it with what is deployed.

Standard library only, so any ``python3`` runs it.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

# Keys per indexer invocation. At about 0.1 s per header read (one ranged GET, a GetItem and
# a PutItem) a batch takes some 10 s, well inside the function's 60 s timeout, and 100 keys
# stay far below the 256 KiB a batch may weigh. Bigger batches would cut the per-child cost
# further but make each retry redo more work.
MAX_ITEMS_PER_BATCH = 100

# Batches in flight. 40 x ~10 files/s = ~400 files/s: every record also writes the search
# indexes, whose keys (a modality, a month) can take all of a bulk run's writes into one
# partition, and one partition takes 1,000 writes/s. 40 keeps the hottest key under half of
# that and the function far below the account's 1,000 concurrent executions.
MAX_CONCURRENCY = 40

# A batch fails only on transient trouble the retries did not cure (per-file problems such as
# NOT_DICOM are reported in the batch's result, not raised). Beyond 5 % of items in failed
# batches something systemic is wrong (permissions, a throttled table): stop rather than pay
# for the rest; a re-run skips everything already indexed.
TOLERATED_FAILURE_PERCENTAGE = 5

# Longer than the function's own 60 s timeout, so Lambda's timeout is what fires and is retried.
TASK_TIMEOUT_SECONDS = 90

# Lambda's own transient errors and throttling, retried with jittered exponential backoff
# (2, 4, 8, 16, 30, 30 s at most); AWS's recommended set for the lambda:invoke integration.
LAMBDA_SERVICE_ERRORS = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
]


def indexer_task(partition: str, function_arn: str) -> dict[str, Any]:
    """The child workflow's one state: invoke the indexer with the batch, keep what it returns."""
    return {
        "Type": "Task",
        "Resource": f"arn:{partition}:states:::lambda:invoke",
        "Parameters": {"FunctionName": function_arn, "Payload.$": "$"},
        "OutputPath": "$.Payload",
        "TimeoutSeconds": TASK_TIMEOUT_SECONDS,
        "Retry": [
            {
                "ErrorEquals": LAMBDA_SERVICE_ERRORS,
                "IntervalSeconds": 2,
                "MaxAttempts": 6,
                "BackoffRate": 2.0,
                "MaxDelaySeconds": 30,
                "JitterStrategy": "FULL",
            },
            # The indexer raises only on transient failures (an unreachable table, throttling
            # past its own retries) and may time out: one more try. Worst case for a child:
            # 2 x 60 s plus the backoff above, inside an EXPRESS execution's 5 minutes.
            {"ErrorEquals": ["States.TaskFailed"], "IntervalSeconds": 5, "MaxAttempts": 1, "BackoffRate": 2.0},
        ],
        "End": True,
    }


def definition(partition: str, function_arn: str, bucket: str, results_prefix: str) -> dict[str, Any]:
    """Return the state machine's definition (Amazon States Language).

    The execution's input is ``{"bucket": ..., "prefix": ...}`` (``indexer/on_aws.py``); each
    child gets ``{"Items": [{"Key", "Etag", "Size", "LastModified", ...}], "BatchInput":
    {"bucket": ...}}``, the shape the indexer handles.
    """
    return {
        "Comment": "dicom-meta bulk index: every object under a prefix, in batches, by the indexer function",
        "StartAt": "IndexEveryObject",
        "States": {
            "IndexEveryObject": {
                "Type": "Map",
                "Label": "index",
                "ItemReader": {
                    "Resource": f"arn:{partition}:states:::s3:listObjectsV2",
                    "Parameters": {"Bucket.$": "$.bucket", "Prefix.$": "$.prefix"},
                },
                "ItemBatcher": {"MaxItemsPerBatch": MAX_ITEMS_PER_BATCH, "BatchInput": {"bucket.$": "$.bucket"}},
                "MaxConcurrency": MAX_CONCURRENCY,
                "ToleratedFailurePercentage": TOLERATED_FAILURE_PERCENTAGE,
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "EXPRESS"},
                    "StartAt": "IndexBatch",
                    "States": {"IndexBatch": indexer_task(partition, function_arn)},
                },
                "ResultWriter": {
                    "Resource": f"arn:{partition}:states:::s3:putObject",
                    "Parameters": {"Bucket": bucket, "Prefix": results_prefix.rstrip("/")},
                },
                "End": True,
            }
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("definition", help="print the state machine definition as compact JSON")
    for option in ("--partition", "--function-arn", "--bucket", "--results-prefix"):
        d.add_argument(option, required=True)
    args = parser.parse_args()
    document = definition(args.partition, args.function_arn, args.bucket, args.results_prefix)
    print(json.dumps(document, separators=(",", ":")))


if __name__ == "__main__":
    main()
