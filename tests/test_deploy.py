"""The deploy and rollback scripts, run for real against a moto server of their own.

A separate moto process, not the embedded AWS of the other tests: moto's backends are global
to a process, and the scripts' IAM role, function and notification must not mix with them.
The lifecycle runs once, as a chain of module fixtures, each recording the state it leaves:
a bucket that already has an unrelated notification entry -> deploy -> the shipped handler
run in a clean interpreter -> deploy again -> rollback -> rollback again with --delete-data.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from config import AWS_REGION, DYNAMODB_TABLE_NAME, LAMBDA_FUNCTION_NAME, LAMBDA_ROLE_NAME, S3_BUCKET_NAME
from managers.table import attribute_definitions, table_definition

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
ZIP_FILE = ROOT / "build" / "lambda.zip"
ACCOUNT = "123456789012"  # moto's account

# The names the scripts derive from config.py (deploy/common.sh).
DLQ_NAME = f"{LAMBDA_FUNCTION_NAME}-dlq"
POLICY_NAME = f"{LAMBDA_FUNCTION_NAME}-least-privilege"
PERMISSION_SID = f"s3-invoke-from-{S3_BUCKET_NAME}"
NOTIFICATION_ID = f"{LAMBDA_FUNCTION_NAME}-json-ingest"

# Another consumer of the bucket's events, there before deploy: the merge must keep it.
OTHER_QUEUE = "other-team-dicom-arrivals"
OTHER_ENTRY_ID = "other-team-dicom-arrivals"

PROBE_KEY = "json/deploy-probe.json"
PROBE_DICOM = f"s3://{S3_BUCKET_NAME}/dicom/anon-deploy-probe.dcm"

# The package must import without these: the Lambda runtime has none of them.
APP_ONLY_PACKAGES = ("flask", "pydicom", "requests", "strawberry", "moto")
# What the Lambda Python runtime provides beyond the standard library: boto3 and its
# dependencies. The clean interpreter sees these and the unzipped package, nothing else.
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six")

SCRIPT_TIMEOUT = 240


@dataclass
class Stage:
    """What one step of the lifecycle printed and the AWS state it left."""

    output: str
    state: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)


# --- the moto server and the scripts ---------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_up(endpoint: str, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"moto server exited with {process.returncode}")
        try:
            urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"moto server not up at {endpoint} after {timeout} s")


@pytest.fixture(scope="module")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A moto server in its own process, on a free port."""
    port = free_port()
    log = (tmp_path_factory.mktemp("moto") / "server.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(endpoint, process)
        yield endpoint
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


@pytest.fixture(scope="module")
def script_env(moto_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The scripts' environment: the moto endpoint, fake keys, no profile and no secrets.json."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    env.update(
        AWS_ENDPOINT_URL=moto_endpoint,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        # Whatever secrets.json this checkout holds, the scripts must not read it here.
        DICOM_META_SECRETS_FILE=str(tmp_path_factory.mktemp("secrets") / "absent.json"),
    )
    return env


def run_script(name: str, env: dict[str, str], *args: str) -> str:
    """Run a deploy script; return what it printed, failing the test if it failed."""
    result = subprocess.run(
        ["bash", str(DEPLOY / name), *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=SCRIPT_TIMEOUT,
    )
    assert result.returncode == 0, f"{name} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


class Clients:
    """boto3 clients on the moto server, built lazily, as the tests' own view of AWS."""

    def __init__(self, endpoint: str) -> None:
        self.session = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=AWS_REGION
        )
        self.endpoint = endpoint

    def __getattr__(self, service: str) -> Any:
        # ``lambda`` is a keyword: the tests say ``aws.awslambda``.
        name = "lambda" if service == "awslambda" else service
        client = self.session.client(name, endpoint_url=self.endpoint)
        setattr(self, service, client)
        return client


@pytest.fixture(scope="module")
def aws(moto_endpoint: str) -> Clients:
    return Clients(moto_endpoint)


# --- reading the state the scripts leave ------------------------------------------------


def absent_as_none(call: Any, *codes: str) -> Any:
    """Return ``call()``, or ``None`` when AWS answers that the resource does not exist."""
    try:
        return call()
    except ClientError as exc:
        if exc.response["Error"]["Code"] in codes:
            return None
        raise


def without(document: dict[str, Any] | None, *keys: str) -> dict[str, Any] | None:
    return None if document is None else {k: v for k, v in document.items() if k not in (*keys, "ResponseMetadata")}


def read_state(aws: Clients) -> dict[str, Any]:
    """Everything deploy manages, as AWS reports it (volatile timestamps left out)."""
    table = absent_as_none(
        lambda: aws.dynamodb.describe_table(TableName=DYNAMODB_TABLE_NAME)["Table"], "ResourceNotFoundException"
    )
    role = absent_as_none(lambda: aws.iam.get_role(RoleName=LAMBDA_ROLE_NAME)["Role"], "NoSuchEntity")
    function = absent_as_none(
        lambda: aws.awslambda.get_function_configuration(FunctionName=LAMBDA_FUNCTION_NAME), "ResourceNotFoundException"
    )
    invoke = absent_as_none(
        lambda: aws.awslambda.get_function_event_invoke_config(FunctionName=LAMBDA_FUNCTION_NAME),
        "ResourceNotFoundException",
    )
    policy = absent_as_none(
        lambda: aws.awslambda.get_policy(FunctionName=LAMBDA_FUNCTION_NAME), "ResourceNotFoundException"
    )
    dlq_url = absent_as_none(
        lambda: aws.sqs.get_queue_url(QueueName=DLQ_NAME)["QueueUrl"],
        "AWS.SimpleQueueService.NonExistentQueue",
        "QueueDoesNotExist",
    )
    return {
        "table": table
        and {
            **{key: table.get(key) for key in ("KeySchema", "AttributeDefinitions", "BillingModeSummary", "TableArn")},
            "indexes": sorted(
                (
                    {key: index[key] for key in ("IndexName", "KeySchema", "Projection")}
                    for index in table.get("GlobalSecondaryIndexes", [])
                ),
                key=lambda i: i["IndexName"],
            ),
        },
        "role": role
        and {
            "Arn": role["Arn"],
            "AssumeRolePolicyDocument": role["AssumeRolePolicyDocument"],
            "inline": {
                name: aws.iam.get_role_policy(RoleName=LAMBDA_ROLE_NAME, PolicyName=name)["PolicyDocument"]
                for name in aws.iam.list_role_policies(RoleName=LAMBDA_ROLE_NAME)["PolicyNames"]
            },
            "attached": aws.iam.list_attached_role_policies(RoleName=LAMBDA_ROLE_NAME)["AttachedPolicies"],
        },
        "function": without(function, "LastModified", "RevisionId", "LastUpdateStatus"),
        "invoke": without(invoke, "LastModified"),
        "policy": policy and json.loads(policy["Policy"]),
        "dlq": dlq_url
        and aws.sqs.get_queue_attributes(
            QueueUrl=dlq_url, AttributeNames=["QueueArn", "MessageRetentionPeriod", "SqsManagedSseEnabled"]
        )["Attributes"],
        # Kept as text, keys in the order S3 gave them: a re-run must not reorder anything.
        "notification": json.dumps(without(aws.s3.get_bucket_notification_configuration(Bucket=S3_BUCKET_NAME))),
    }


# --- the lifecycle, one stage per fixture -----------------------------------------------


@pytest.fixture(scope="module")
def other_entry(aws: Clients) -> dict[str, Any]:
    """GIVEN the bucket with another team's queue notification and an uploaded metadata file."""
    aws.s3.create_bucket(Bucket=S3_BUCKET_NAME, CreateBucketConfiguration={"LocationConstraint": AWS_REGION})
    queue_url = aws.sqs.create_queue(QueueName=OTHER_QUEUE)["QueueUrl"]
    queue_arn = aws.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    entry = {
        "Id": OTHER_ENTRY_ID,
        "QueueArn": queue_arn,
        "Events": ["s3:ObjectCreated:*"],
        "Filter": {
            "Key": {"FilterRules": [{"Name": "prefix", "Value": "dicom/"}, {"Name": "suffix", "Value": ".dcm"}]}
        },
    }
    aws.s3.put_bucket_notification_configuration(
        Bucket=S3_BUCKET_NAME, NotificationConfiguration={"QueueConfigurations": [entry]}
    )
    # Uploaded before the trigger exists, so moto does not try (and fail) to run the Lambda.
    document = {"s3_path": PROBE_DICOM, "PatientID": "DEPLOY-1", "Modality": "CT", "StudyDate": "20240101"}
    aws.s3.put_object(Bucket=S3_BUCKET_NAME, Key=PROBE_KEY, Body=json.dumps(document).encode())
    return aws.s3.get_bucket_notification_configuration(Bucket=S3_BUCKET_NAME)["QueueConfigurations"][0]


@pytest.fixture(scope="module")
def first_deploy(aws: Clients, script_env: dict[str, str], other_entry: dict[str, Any]) -> Stage:
    """WHEN deploy runs on that account."""
    output = run_script("deploy_resources.sh", script_env)
    return Stage(output, read_state(aws), {"zip_names": sorted(zipfile.ZipFile(ZIP_FILE).namelist())})


@pytest.fixture(scope="module")
def shipped_handler(
    first_deploy: Stage, aws: Clients, script_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """The deployed zip, unzipped, run in an interpreter that has only what Lambda has."""
    package = tmp_path_factory.mktemp("package")
    zipfile.ZipFile(ZIP_FILE).extractall(package)
    runtime = lambda_runtime_packages(tmp_path_factory.mktemp("runtime"))
    event = {"Records": [{"s3": {"bucket": {"name": S3_BUCKET_NAME}, "object": {"key": PROBE_KEY}}}]}
    code = f"""
import importlib.util, json, sys
sys.path[:0] = [{str(package)!r}, {str(runtime)!r}]
import lambda_function
counts = lambda_function.lambda_handler({event!r}, None)
print(json.dumps({{
    "counts": counts,
    "loaded": sorted(m for m in sys.modules if m.split(".")[0] in {APP_ONLY_PACKAGES!r}),
    "importable": [p for p in {APP_ONLY_PACKAGES!r} if importlib.util.find_spec(p) is not None],
    "handler_file": lambda_function.__file__,
}}))
"""
    # -I: no PYTHON* variables, no user site; -S: no site-packages at all, so the venv's
    # Flask and pydicom are out of reach and only the paths above are added.
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code], env=script_env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    item = aws.dynamodb.get_item(TableName=DYNAMODB_TABLE_NAME, Key={"FilePath": {"S": PROBE_DICOM}}).get("Item")
    return {"package": str(package), **json.loads(result.stdout), "item": item}


def lambda_runtime_packages(directory: Path) -> Path:
    """Link boto3 and its dependencies into ``directory``: the Lambda runtime's extras."""
    for name in RUNTIME_PACKAGES:
        spec = importlib.util.find_spec(name)
        assert spec is not None and spec.origin, f"{name} is not installed"
        origin = Path(spec.origin)
        source = origin.parent if origin.name == "__init__.py" else origin
        (directory / source.name).symlink_to(source)
    return directory


@pytest.fixture(scope="module")
def second_deploy(aws: Clients, script_env: dict[str, str], shipped_handler: dict[str, Any]) -> Stage:
    """WHEN deploy runs again, with nothing changed."""
    return Stage(run_script("deploy_resources.sh", script_env), read_state(aws))


@pytest.fixture(scope="module")
def rollbacks(aws: Clients, script_env: dict[str, str], second_deploy: Stage) -> dict[str, Stage]:
    """WHEN rollback runs, then runs again with --delete-data."""
    first = Stage(run_script("rollback_resources.sh", script_env), read_state(aws))
    again = Stage(run_script("rollback_resources.sh", script_env, "--delete-data"), read_state(aws))
    return {"first": first, "again": again}


# --- deploy ------------------------------------------------------------------------------


def test_table_has_the_contract_key_and_on_demand_billing(first_deploy: Stage) -> None:
    table = first_deploy.state["table"]
    assert table["KeySchema"] == [{"AttributeName": "FilePath", "KeyType": "HASH"}]
    assert table["AttributeDefinitions"] == attribute_definitions()
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"


def test_table_has_the_search_indexes(first_deploy: Stage) -> None:
    assert first_deploy.state["table"]["indexes"] == sorted(
        table_definition(DYNAMODB_TABLE_NAME)["GlobalSecondaryIndexes"], key=lambda i: i["IndexName"]
    )
    assert [i["IndexName"] for i in first_deploy.state["table"]["indexes"]] == [
        "Modality-StudyDate",
        "PatientID-StudyDate",
        "StudyMonth-StudyDate",
    ]


def test_role_is_assumable_by_lambda_only(first_deploy: Stage) -> None:
    trust = first_deploy.state["role"]["AssumeRolePolicyDocument"]
    assert [(s["Effect"], s["Principal"], s["Action"]) for s in trust["Statement"]] == [
        ("Allow", {"Service": "lambda.amazonaws.com"}, "sts:AssumeRole")
    ]


def test_role_has_one_least_privilege_inline_policy(first_deploy: Stage) -> None:
    role, state = first_deploy.state["role"], first_deploy.state
    assert role["attached"] == []  # no AWS managed policies, *FullAccess or other
    assert list(role["inline"]) == [POLICY_NAME]
    grants = {
        action: resources
        for statement in role["inline"][POLICY_NAME]["Statement"]
        for action in as_list(statement["Action"])
        for resources in [sorted(as_list(statement["Resource"]))]
        if statement["Effect"] == "Allow"
    }
    log_group = f"arn:aws:logs:{AWS_REGION}:{ACCOUNT}:log-group:/aws/lambda/{LAMBDA_FUNCTION_NAME}"
    assert grants == {
        "s3:GetObject": [f"arn:aws:s3:::{S3_BUCKET_NAME}/json/*"],
        "dynamodb:PutItem": [state["table"]["TableArn"]],
        "dynamodb:UpdateItem": [state["table"]["TableArn"]],  # the months registry of the date index
        "sqs:SendMessage": [state["dlq"]["QueueArn"]],
        "logs:CreateLogGroup": [log_group, f"{log_group}:*"],
        "logs:CreateLogStream": [log_group, f"{log_group}:*"],
        "logs:PutLogEvents": [log_group, f"{log_group}:*"],
    }
    assert all("*" not in action for action in grants)


def as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


def test_function_settings(first_deploy: Stage) -> None:
    function = first_deploy.state["function"]
    runtime = function["Runtime"]
    assert runtime.startswith("python3.") and int(runtime.split(".")[1]) >= 12
    assert function["Handler"] == "lambda_function.lambda_handler"
    assert function["Role"] == first_deploy.state["role"]["Arn"]
    assert (function["Timeout"], function["MemorySize"]) == (30, 256)
    assert function["State"] == "Active"


def test_zip_holds_the_handler_and_only_the_modules_it_imports(first_deploy: Stage) -> None:
    assert first_deploy.extra["zip_names"] == [
        "config.py",
        "errors.py",
        "lambda_function.py",
        "managers/DynamoDBManager.py",
        "managers/__init__.py",
        "managers/aws.py",
        "managers/records.py",
        "managers/table.py",
        "metadata.py",
    ]
    assert "build/lambda.zip" in first_deploy.output and "9 files" in first_deploy.output


def test_shipped_handler_runs_without_flask_or_pydicom(shipped_handler: dict[str, Any]) -> None:
    assert shipped_handler["handler_file"].startswith(shipped_handler["package"])
    assert shipped_handler["importable"] == [] and shipped_handler["loaded"] == []
    assert shipped_handler["counts"] == {"stored": 1, "stale": 0, "skipped": 0, "failed": 0}
    assert shipped_handler["item"]["PatientID"] == {"S": "DEPLOY-1"}
    assert shipped_handler["item"]["JsonS3Path"] == {"S": f"s3://{S3_BUCKET_NAME}/{PROBE_KEY}"}


def test_failed_events_go_to_the_dlq_after_retries(first_deploy: Stage) -> None:
    invoke, dlq = first_deploy.state["invoke"], first_deploy.state["dlq"]
    assert invoke["MaximumRetryAttempts"] == 2
    assert invoke["DestinationConfig"]["OnFailure"]["Destination"] == dlq["QueueArn"]
    assert dlq["MessageRetentionPeriod"] == "1209600"


def test_only_this_bucket_in_this_account_may_invoke(first_deploy: Stage) -> None:
    statements = first_deploy.state["policy"]["Statement"]
    assert len(statements) == 1
    statement = statements[0]
    assert statement["Sid"] == PERMISSION_SID
    assert statement["Principal"] == {"Service": "s3.amazonaws.com"}
    assert statement["Action"] == "lambda:InvokeFunction"
    assert statement["Condition"] == {
        "ArnLike": {"AWS:SourceArn": f"arn:aws:s3:::{S3_BUCKET_NAME}"},
        "StringEquals": {"AWS:SourceAccount": ACCOUNT},
    }


def test_notification_is_added_and_the_other_entry_kept(first_deploy: Stage, other_entry: dict[str, Any]) -> None:
    notification = json.loads(first_deploy.state["notification"])
    assert notification["QueueConfigurations"] == [other_entry]
    assert notification["LambdaFunctionConfigurations"] == [
        {
            "Id": NOTIFICATION_ID,
            "LambdaFunctionArn": first_deploy.state["function"]["FunctionArn"],
            "Events": ["s3:ObjectCreated:*"],
            "Filter": {
                "Key": {"FilterRules": [{"Name": "prefix", "Value": "json/"}, {"Name": "suffix", "Value": ".json"}]}
            },
        }
    ]


def test_deploy_prints_each_step_and_a_summary(first_deploy: Stage) -> None:
    for step in range(1, 10):
        assert f"[{step}/9]" in first_deploy.output
    assert "Deployed. What exists now:" in first_deploy.output
    assert "warning" not in first_deploy.output  # the other entry does not overlap ours


# --- deploy again ------------------------------------------------------------------------


def test_second_deploy_changes_nothing_but_the_code(first_deploy: Stage, second_deploy: Stage) -> None:
    assert second_deploy.state == first_deploy.state  # the notification compared as text
    # The zip is reproducible, so even the uploaded code is the same.
    assert "identical to what was deployed" in second_deploy.output
    for unchanged in ("settings unchanged", "inline policy unchanged", "trust policy unchanged"):
        assert unchanged in second_deploy.output
    assert second_deploy.output.count("      unchanged") == 3  # invoke config, permission, notification


# --- rollback ----------------------------------------------------------------------------


def test_rollback_removes_what_deploy_made_and_keeps_the_table(
    rollbacks: dict[str, Stage], first_deploy: Stage, other_entry: dict[str, Any]
) -> None:
    state = rollbacks["first"].state
    assert {key: state[key] for key in ("role", "function", "invoke", "policy", "dlq")} == dict.fromkeys(
        ("role", "function", "invoke", "policy", "dlq")
    )
    assert state["table"] == first_deploy.state["table"]
    assert json.loads(state["notification"]) == {"QueueConfigurations": [other_entry]}
    assert "kept: it holds the records" in rollbacks["first"].output


def test_rollback_again_reports_absent_things_and_deletes_data_on_request(rollbacks: dict[str, Stage]) -> None:
    again = rollbacks["again"]
    for line in (
        "notification  absent",
        "permission    absent",
        "function      absent",
        "role          absent",
        "dead letters  absent",
    ):
        assert line in again.output
    assert again.state["table"] is None
    assert "table         removed, with its records" in again.output
    assert json.loads(again.state["notification"])["QueueConfigurations"][0]["Id"] == OTHER_ENTRY_ID


# --- upgrading a table made before the search indexes ------------------------------------


def test_deploy_adds_missing_indexes_to_an_existing_table(
    rollbacks: dict[str, Stage], aws: Clients, script_env: dict[str, str]
) -> None:
    # GIVEN the table as an earlier deploy made it: the key alone, no indexes
    aws.dynamodb.create_table(
        TableName=DYNAMODB_TABLE_NAME,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "FilePath", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "FilePath", "AttributeType": "S"}],
    )
    # WHEN deploy runs THEN it adds each index and says so
    output = run_script("deploy_resources.sh", script_env)
    for index in ("PatientID-StudyDate", "Modality-StudyDate", "StudyMonth-StudyDate"):
        assert f"index {index} added" in output
    assert [i["IndexName"] for i in read_state(aws)["table"]["indexes"]] == [
        "Modality-StudyDate",
        "PatientID-StudyDate",
        "StudyMonth-StudyDate",
    ]
