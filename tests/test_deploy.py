"""The deploy and rollback scripts, run for real against a moto server of their own.

A separate moto process, not the embedded AWS of the other tests: moto's backends are global
to a process, and the scripts' IAM role, function and notification must not mix with them.
The lifecycle runs once, as a chain of module fixtures, each recording the state it leaves:
a bucket that already has an unrelated notification entry -> deploy -> the shipped handlers
(ingest and indexer) run in a clean interpreter, and a bulk index submitted to the deployed
state machine -> deploy again -> rollback -> rollback again with --delete-data.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
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
from indexer import on_aws
from local import free_port
from local.samples import SampleSpec, build_file
from managers.aws.step_functions import STATE_MACHINE_NAME
from managers.DynamoDBManager import DynamoDBManager
from managers.store.search import SearchFilter
from managers.store.study_index import StudyIndex
from managers.store.table import INDEXES, attribute_definitions, table_definition

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
ZIP_FILE = ROOT / "build" / "lambda.zip"
INDEXER_ZIP_FILE = ROOT / "build" / "indexer.zip"
ACCOUNT = "123456789012"  # moto's account

# The names the scripts derive from config.py (deploy/common.sh).
DLQ_NAME = f"{LAMBDA_FUNCTION_NAME}-dlq"
POLICY_NAME = f"{LAMBDA_FUNCTION_NAME}-least-privilege"
PERMISSION_SID = f"s3-invoke-from-{S3_BUCKET_NAME}"
NOTIFICATION_ID = f"{LAMBDA_FUNCTION_NAME}-json-ingest"
INDEXER = f"{LAMBDA_FUNCTION_NAME}Indexer"
INDEXER_ROLE = f"{LAMBDA_ROLE_NAME}Indexer"
INDEXER_DLQ_NAME = f"{INDEXER}-dlq"
INDEXER_POLICY_NAME = f"{INDEXER}-least-privilege"
INDEXER_NOTIFICATION_ID = f"{INDEXER}-dicom-index"
FAN_OUT_ROLE = f"{LAMBDA_ROLE_NAME}IndexerFanOut"
FAN_OUT_POLICY_NAME = f"{STATE_MACHINE_NAME}-least-privilege"
STATE_MACHINE_ARN = f"arn:aws:states:{AWS_REGION}:{ACCOUNT}:stateMachine:{STATE_MACHINE_NAME}"

# Another consumer of the bucket's events, there before deploy: the merge must keep it. Not
# under dicom/: S3 refuses two entries with overlapping prefixes for the same events, so a
# consumer of new DICOM files and the indexer cannot both be notified (docs/ARCHITECTURE.md).
OTHER_QUEUE = "other-team-report-arrivals"
OTHER_ENTRY_ID = "other-team-report-arrivals"

PROBE_KEY = "json/deploy-probe.json"
PROBE_DICOM = f"s3://{S3_BUCKET_NAME}/dicom/anon-deploy-probe.dcm"
# What the indexer probe reads: a real DICOM file and a text file among the DICOM files.
INDEX_PROBE_KEY = "dicom/deploy probe/anon-index-probe.dcm"
INDEX_PROBE_TEXT_KEY = "dicom/deploy probe/README.txt"

# The package must import without these: the Lambda runtime has none of them. The indexer
# ships pydicom itself; the ingest function must not even find it.
APP_ONLY_PACKAGES = ("flask", "pydicom", "requests", "strawberry", "moto")
INDEXER_FORBIDDEN = ("flask", "requests", "strawberry", "moto", "numpy")
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
        # Any: clients are made by attribute name (``aws.s3``), which no stub can type.
        self.session: Any = boto3.session.Session(
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
    return {
        **function_state(aws, LAMBDA_FUNCTION_NAME, LAMBDA_ROLE_NAME, DLQ_NAME),
        "table": table_state(aws),
        "indexer": function_state(aws, INDEXER, INDEXER_ROLE, INDEXER_DLQ_NAME),
        "fan_out": {
            "role": role_state(aws, FAN_OUT_ROLE),
            "machine": without(
                absent_as_none(
                    lambda: aws.stepfunctions.describe_state_machine(stateMachineArn=STATE_MACHINE_ARN),
                    "StateMachineDoesNotExist",
                ),
                "creationDate",
            ),
        },
        # Kept as text, keys in the order S3 gave them: a re-run must not reorder anything.
        "notification": json.dumps(without(aws.s3.get_bucket_notification_configuration(Bucket=S3_BUCKET_NAME))),
    }


def role_state(aws: Clients, name: str) -> dict[str, Any] | None:
    role = absent_as_none(lambda: aws.iam.get_role(RoleName=name)["Role"], "NoSuchEntity")
    return role and {
        "Arn": role["Arn"],
        "AssumeRolePolicyDocument": role["AssumeRolePolicyDocument"],
        "inline": {
            policy: aws.iam.get_role_policy(RoleName=name, PolicyName=policy)["PolicyDocument"]
            for policy in aws.iam.list_role_policies(RoleName=name)["PolicyNames"]
        },
        "attached": aws.iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"],
    }


def function_state(aws: Clients, name: str, role_name: str, dlq_name: str) -> dict[str, Any]:
    """A function as deploy leaves it: its role, settings, async-invoke config, resource policy, DLQ."""
    function = absent_as_none(
        lambda: aws.awslambda.get_function_configuration(FunctionName=name), "ResourceNotFoundException"
    )
    invoke = absent_as_none(
        lambda: aws.awslambda.get_function_event_invoke_config(FunctionName=name), "ResourceNotFoundException"
    )
    policy = absent_as_none(lambda: aws.awslambda.get_policy(FunctionName=name), "ResourceNotFoundException")
    dlq_url = absent_as_none(
        lambda: aws.sqs.get_queue_url(QueueName=dlq_name)["QueueUrl"],
        "AWS.SimpleQueueService.NonExistentQueue",
        "QueueDoesNotExist",
    )
    return {
        "role": role_state(aws, role_name),
        "function": without(function, "LastModified", "RevisionId", "LastUpdateStatus"),
        "invoke": without(invoke, "LastModified"),
        "policy": policy and json.loads(policy["Policy"]),
        "dlq": dlq_url
        and aws.sqs.get_queue_attributes(
            QueueUrl=dlq_url, AttributeNames=["QueueArn", "MessageRetentionPeriod", "SqsManagedSseEnabled"]
        )["Attributes"],
    }


def table_state(aws: Clients) -> dict[str, Any] | None:
    table = absent_as_none(
        lambda: aws.dynamodb.describe_table(TableName=DYNAMODB_TABLE_NAME)["Table"], "ResourceNotFoundException"
    )
    return table and {
        **{key: table.get(key) for key in ("KeySchema", "AttributeDefinitions", "BillingModeSummary", "TableArn")},
        "indexes": sorted(
            (
                {key: index[key] for key in ("IndexName", "KeySchema", "Projection")}
                for index in table.get("GlobalSecondaryIndexes", [])
            ),
            key=lambda i: i["IndexName"],
        ),
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
            "Key": {"FilterRules": [{"Name": "prefix", "Value": "reports/"}, {"Name": "suffix", "Value": ".pdf"}]}
        },
    }
    aws.s3.put_bucket_notification_configuration(
        Bucket=S3_BUCKET_NAME, NotificationConfiguration={"QueueConfigurations": [entry]}
    )
    # Uploaded before the trigger exists, so moto does not try (and fail) to run the Lambda.
    document = {"s3_path": PROBE_DICOM, "PatientID": "DEPLOY-1", "Modality": "CT", "StudyDate": "20240101"}
    aws.s3.put_object(Bucket=S3_BUCKET_NAME, Key=PROBE_KEY, Body=json.dumps(document).encode())
    probe = SampleSpec(patient_id="INDEX-1", modality="MR", institution_name="Deploy Hospital")
    aws.s3.put_object(Bucket=S3_BUCKET_NAME, Key=INDEX_PROBE_KEY, Body=build_file(probe))
    aws.s3.put_object(Bucket=S3_BUCKET_NAME, Key=INDEX_PROBE_TEXT_KEY, Body=b"not a DICOM file\n")
    return aws.s3.get_bucket_notification_configuration(Bucket=S3_BUCKET_NAME)["QueueConfigurations"][0]


@pytest.fixture(scope="module")
def first_deploy(aws: Clients, script_env: dict[str, str], other_entry: dict[str, Any]) -> Stage:
    """WHEN deploy runs on that account."""
    output = run_script("deploy_resources.sh", script_env)
    zips = {
        "zip_names": sorted(zipfile.ZipFile(ZIP_FILE).namelist()),
        "indexer_zip_names": sorted(zipfile.ZipFile(INDEXER_ZIP_FILE).namelist()),
        "indexer_zip_bytes": INDEXER_ZIP_FILE.stat().st_size,
    }
    return Stage(output, read_state(aws), zips)


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


@pytest.fixture(scope="module")
def shipped_indexer(
    first_deploy: Stage, aws: Clients, script_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """The deployed indexer zip, run like the ingest one, on the batch a Distributed Map child sends."""
    package = tmp_path_factory.mktemp("indexer-package")
    zipfile.ZipFile(INDEXER_ZIP_FILE).extractall(package)
    runtime = lambda_runtime_packages(tmp_path_factory.mktemp("indexer-runtime"))
    items = []
    for key in (INDEX_PROBE_KEY, INDEX_PROBE_TEXT_KEY):
        head = aws.s3.head_object(Bucket=S3_BUCKET_NAME, Key=key)
        items.append(
            {
                "Key": key,
                "Etag": head["ETag"],
                "Size": head["ContentLength"],
                "LastModified": head["LastModified"].isoformat(),
                "StorageClass": "STANDARD",
            }
        )
    event = {"Items": items, "BatchInput": {"bucket": S3_BUCKET_NAME}}
    code = f"""
import importlib.util, json, sys
sys.path[:0] = [{str(package)!r}, {str(runtime)!r}]
before = set(sys.modules)
import indexer_function
imported = sorted(set(sys.modules) - before)
result = indexer_function.lambda_handler({event!r}, None)
import pydicom
print(json.dumps({{
    "result": result,
    "imported": imported,
    "outside_stdlib": sorted({{m.split(".")[0] for m in imported}} - set(sys.stdlib_module_names)),
    "peak_mb": int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM:")).split()[1]) / 1024,
    "pydicom_file": pydicom.__file__,
    "importable": [p for p in {INDEXER_FORBIDDEN!r} if importlib.util.find_spec(p) is not None],
    "handler_file": indexer_function.__file__,
}}))
"""
    # -B as well: /var/task is read-only in Lambda, so nothing is compiled to .pyc there either.
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-B", "-c", code], env=script_env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    record = f"s3://{S3_BUCKET_NAME}/{INDEX_PROBE_KEY}"
    item = aws.dynamodb.get_item(TableName=DYNAMODB_TABLE_NAME, Key={"FilePath": {"S": record}}).get("Item")
    return {"package": str(package), **json.loads(result.stdout), "item": item}


@pytest.fixture(scope="module")
def submitted(first_deploy: Stage, aws: Clients, moto_endpoint: str) -> dict[str, Any]:
    """WHEN the bulk index is submitted on AWS, to the state machine deploy made."""
    started = submit_as_tester(moto_endpoint)
    return {"started": started, "execution": aws.stepfunctions.describe_execution(executionArn=started["execution"])}


def submit_refusal(endpoint: str) -> tuple[int | str | None, str]:
    """Submit the bulk index expecting a refusal; return the exit status and what stderr said."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as exited:
        submit_as_tester(endpoint)
    return exited.value.code, err.getvalue()


def submit_as_tester(endpoint: str) -> dict[str, Any]:
    """``submit()`` of ``dicom/`` with the fake keys (module fixtures run before conftest's)."""
    with pytest.MonkeyPatch.context() as patch:
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
            patch.delenv(name, raising=False)
        patch.setenv("AWS_ACCESS_KEY_ID", "testing")
        patch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        return on_aws.submit(f"s3://{S3_BUCKET_NAME}/dicom/", endpoint)


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
def second_deploy(
    aws: Clients,
    script_env: dict[str, str],
    shipped_handler: dict[str, Any],
    shipped_indexer: dict[str, Any],
    submitted: dict[str, Any],
) -> Stage:
    """WHEN deploy runs again, with nothing changed."""
    return Stage(run_script("deploy_resources.sh", script_env), read_state(aws))


@pytest.fixture(scope="module")
def rollbacks(aws: Clients, script_env: dict[str, str], moto_endpoint: str, second_deploy: Stage) -> dict[str, Stage]:
    """WHEN rollback runs, then runs again with --delete-data."""
    first = Stage(run_script("rollback_resources.sh", script_env), read_state(aws))
    first.extra["submit"] = submit_refusal(moto_endpoint)
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
    assert [i["IndexName"] for i in first_deploy.state["table"]["indexes"]] == sorted(INDEXES)


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
        "dynamodb:UpdateItem": [state["table"]["TableArn"]],  # put_record: an upload updates the record
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
        "managers/aws/__init__.py",
        "managers/aws/clients.py",
        "managers/aws/objects.py",
        "managers/aws/s3_events.py",
        "managers/store/__init__.py",
        "managers/store/records.py",
        "managers/store/search.py",
        "managers/store/table.py",
        "metadata.py",
    ]
    assert "build/lambda.zip" in first_deploy.output and "14 files" in first_deploy.output


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
        },
        {
            "Id": INDEXER_NOTIFICATION_ID,
            "LambdaFunctionArn": first_deploy.state["indexer"]["function"]["FunctionArn"],
            "Events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"],
            # Every key under dicom/, with or without .dcm.
            "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "dicom/"}]}},
        },
    ]


def test_deploy_prints_each_step_and_a_summary(first_deploy: Stage) -> None:
    for step in range(1, 19):
        assert f"[{step}/18]" in first_deploy.output
    assert "Deployed. What exists now:" in first_deploy.output
    assert "warning" not in first_deploy.output  # the other entry does not overlap ours
    assert f"make index S3_PREFIX=s3://{S3_BUCKET_NAME}/dicom/ INDEX_ARGS=--on-aws" in first_deploy.output


# --- the indexer -------------------------------------------------------------------------


def grants_of(policy: dict[str, Any]) -> dict[str, list[str]]:
    """``{action: sorted resources}`` of a policy's Allow statements."""
    return {
        action: resources
        for statement in policy["Statement"]
        for action in as_list(statement["Action"])
        for resources in [sorted(as_list(statement["Resource"]))]
        if statement["Effect"] == "Allow"
    }


def test_indexer_role_reads_dicom_and_only_its_own_records(first_deploy: Stage) -> None:
    role, indexer = first_deploy.state["indexer"]["role"], first_deploy.state["indexer"]
    assert role["Arn"] != first_deploy.state["role"]["Arn"]  # its own role
    assert [s["Principal"] for s in role["AssumeRolePolicyDocument"]["Statement"]] == [
        {"Service": "lambda.amazonaws.com"}
    ]
    assert role["attached"] == [] and list(role["inline"]) == [INDEXER_POLICY_NAME]
    table = first_deploy.state["table"]["TableArn"]
    log_group = f"arn:aws:logs:{AWS_REGION}:{ACCOUNT}:log-group:/aws/lambda/{INDEXER}"
    item_operations = ("GetItem", "BatchGetItem", "PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem")
    assert grants_of(role["inline"][INDEXER_POLICY_NAME]) == {
        "s3:GetObject": [f"arn:aws:s3:::{S3_BUCKET_NAME}/dicom/*"],
        **{f"dynamodb:{operation}": [table] for operation in item_operations},  # the table, not its indexes
        "sqs:SendMessage": [indexer["dlq"]["QueueArn"]],
        "logs:CreateLogGroup": [log_group, f"{log_group}:*"],
        "logs:CreateLogStream": [log_group, f"{log_group}:*"],
        "logs:PutLogEvents": [log_group, f"{log_group}:*"],
    }


def test_indexer_function_settings(first_deploy: Stage) -> None:
    function = first_deploy.state["indexer"]["function"]
    assert function["Handler"] == "indexer_function.lambda_handler"
    assert function["Runtime"] == first_deploy.state["function"]["Runtime"]
    assert function["Role"] == first_deploy.state["indexer"]["role"]["Arn"]
    assert (function["Timeout"], function["MemorySize"]) == (60, 512)
    assert function["State"] == "Active"


def test_indexer_has_its_own_dlq_and_the_same_retries(first_deploy: Stage) -> None:
    indexer, ingest = first_deploy.state["indexer"], first_deploy.state
    assert indexer["dlq"]["QueueArn"] != ingest["dlq"]["QueueArn"]
    assert indexer["dlq"]["MessageRetentionPeriod"] == "1209600"
    assert indexer["invoke"]["DestinationConfig"]["OnFailure"]["Destination"] == indexer["dlq"]["QueueArn"]
    settings = ("MaximumRetryAttempts", "MaximumEventAgeInSeconds")
    assert [indexer["invoke"][k] for k in settings] == [ingest["invoke"][k] for k in settings] == [2, 21600]


def test_only_this_bucket_in_this_account_may_invoke_the_indexer(first_deploy: Stage) -> None:
    (statement,) = first_deploy.state["indexer"]["policy"]["Statement"]
    assert (statement["Principal"], statement["Action"]) == ({"Service": "s3.amazonaws.com"}, "lambda:InvokeFunction")
    assert statement["Condition"] == {
        "ArnLike": {"AWS:SourceArn": f"arn:aws:s3:::{S3_BUCKET_NAME}"},
        "StringEquals": {"AWS:SourceAccount": ACCOUNT},
    }


def test_indexer_zip_vendors_pydicom_and_nothing_else(first_deploy: Stage) -> None:
    names = first_deploy.extra["indexer_zip_names"]
    assert "indexer_function.py" in names and "pydicom/__init__.py" in names
    top_level = {name.split("/")[0] for name in names if "/" in name}
    # Repository packages and pydicom with its licence; nothing else is vendored.
    others = {
        t for t in top_level - {"managers", "pydicom"} if not (t.startswith("pydicom-") and t.endswith(".dist-info"))
    }
    assert others == set()
    assert not [n for n in names if n.startswith(("flask", "requests", "pydicom/sr/", "pydicom/data/test_files"))]
    assert first_deploy.extra["indexer_zip_bytes"] < 1024 * 1024
    assert "build/indexer.zip" in first_deploy.output and "vendored pydicom" in first_deploy.output


def test_shipped_indexer_runs_a_map_batch_with_only_what_lambda_has(shipped_indexer: dict[str, Any]) -> None:
    # pydicom comes from the package itself; Flask, requests and the rest are not even findable.
    assert shipped_indexer["handler_file"].startswith(shipped_indexer["package"])
    assert shipped_indexer["pydicom_file"].startswith(shipped_indexer["package"])
    assert shipped_indexer["importable"] == []
    result = shipped_indexer["result"]
    assert (result["indexed"], result["unchanged"], result["failed"]) == (1, 0, 1)
    assert result["failures"] == [{"key": INDEX_PROBE_TEXT_KEY, "code": "NOT_DICOM"}]
    item = shipped_indexer["item"]
    assert (item["PatientID"], item["Modality"]) == ({"S": "INDEX-1"}, {"S": "MR"})
    # Generous bounds only; the numbers themselves are reported (docs/ARCHITECTURE.md). The
    # function is deployed with 512 MB (INDEXER_MEMORY in deploy_resources.sh). The peak is the
    # process's own (VmHWM): getrusage's ru_maxrss survives exec, so it reported the size of the
    # pytest process that started it, past 512 MB late in a full run.
    assert shipped_indexer["peak_mb"] < 512
    # The cold start's import, bounded by what it loads rather than timed: the standard library,
    # the runtime's boto3 family and the package's own modules only (multiprocessing names its
    # alias of __main__ "__mp_main__"), about 400 modules in all, botocore's and pydicom's most
    # of them. A dependency more, or pydicom's numpy handlers, would add tens to hundreds.
    own = {name.removesuffix(".py") for name in os.listdir(shipped_indexer["package"])}
    assert set(shipped_indexer["outside_stdlib"]) <= own | set(RUNTIME_PACKAGES) | {"__mp_main__"}
    assert len(shipped_indexer["imported"]) < 500, len(shipped_indexer["imported"])


# --- the bulk index's fan-out ------------------------------------------------------------


def test_fan_out_role_is_assumable_only_by_our_state_machine(first_deploy: Stage) -> None:
    role = first_deploy.state["fan_out"]["role"]
    (statement,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "states.amazonaws.com"}
    assert statement["Condition"] == {
        "StringEquals": {"aws:SourceAccount": ACCOUNT},
        "ArnLike": {"aws:SourceArn": STATE_MACHINE_ARN},
    }


def test_fan_out_role_grants_only_what_the_map_needs(first_deploy: Stage) -> None:
    role = first_deploy.state["fan_out"]["role"]
    assert role["attached"] == [] and list(role["inline"]) == [FAN_OUT_POLICY_NAME]
    policy = role["inline"][FAN_OUT_POLICY_NAME]
    results = [f"arn:aws:s3:::{S3_BUCKET_NAME}/index-results/*"]
    executions = [f"arn:aws:states:{AWS_REGION}:{ACCOUNT}:execution:{STATE_MACHINE_NAME}/*"]
    assert grants_of(policy) == {
        "lambda:InvokeFunction": [first_deploy.state["indexer"]["function"]["FunctionArn"]],
        "s3:ListBucket": [f"arn:aws:s3:::{S3_BUCKET_NAME}"],
        "s3:PutObject": results,
        "s3:GetObject": results,
        "s3:ListMultipartUploadParts": results,
        "s3:AbortMultipartUpload": results,
        "states:StartExecution": [STATE_MACHINE_ARN],
        "states:DescribeExecution": executions,
        "states:StopExecution": executions,
    }
    (listing,) = [s for s in policy["Statement"] if s["Action"] == ["s3:ListBucket"]]
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["dicom/*"]}}


def test_state_machine_is_the_distributed_map_over_the_indexer(first_deploy: Stage) -> None:
    machine = first_deploy.state["fan_out"]["machine"]
    assert (machine["name"], machine["type"]) == (STATE_MACHINE_NAME, "STANDARD")
    assert machine["roleArn"] == first_deploy.state["fan_out"]["role"]["Arn"]
    indexer_arn = first_deploy.state["indexer"]["function"]["FunctionArn"]
    expected = fan_out_definition("aws", indexer_arn, S3_BUCKET_NAME, "index-results/")
    assert json.loads(machine["definition"]) == expected


def fan_out_definition(*args: str) -> dict[str, Any]:
    spec = importlib.util.spec_from_file_location("deploy_fan_out", DEPLOY / "fan_out.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return dict(module.definition(*args))


def test_submit_starts_the_deployed_state_machine_on_the_prefix(submitted: dict[str, Any]) -> None:
    execution = submitted["execution"]
    assert execution["stateMachineArn"] == STATE_MACHINE_ARN == submitted["started"]["stateMachine"]
    assert json.loads(execution["input"]) == {"bucket": S3_BUCKET_NAME, "prefix": "dicom/"}
    assert submitted["started"]["results"] == f"s3://{S3_BUCKET_NAME}/index-results/"


# --- deploy again ------------------------------------------------------------------------


def test_second_deploy_changes_nothing_but_the_code(first_deploy: Stage, second_deploy: Stage) -> None:
    assert second_deploy.state == first_deploy.state  # the notification compared as text
    # The zip is reproducible, so even the uploaded code is the same.
    assert "identical to what was deployed" in second_deploy.output
    for unchanged in ("settings unchanged", "inline policy unchanged", "trust policy unchanged"):
        assert unchanged in second_deploy.output
    # Per function: invoke config, permission, notification; then the state machine.
    assert second_deploy.output.count("      unchanged") == 7
    assert second_deploy.output.count("identical to what was deployed") == 2


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
    assert state["indexer"] == dict.fromkeys(("role", "function", "invoke", "policy", "dlq"))
    assert state["fan_out"] == {"role": None, "machine": None}


def test_submit_after_rollback_says_the_state_machine_is_not_deployed(rollbacks: dict[str, Stage]) -> None:
    status, said = rollbacks["first"].extra["submit"]
    assert status == 2
    assert said.startswith("index --on-aws: ") and said.count("\n") == 1
    assert f"{STATE_MACHINE_NAME} is not deployed here; run bash deploy/deploy_resources.sh" in said


def test_rollback_again_reports_absent_things_and_deletes_data_on_request(rollbacks: dict[str, Stage]) -> None:
    again = rollbacks["again"]
    for line, times in (
        ("notification  absent", 2),
        ("permission    absent", 2),
        ("function      absent", 2),
        ("role          absent", 3),
        ("dead letters  absent", 2),
        ("fan-out       absent", 1),
    ):
        assert again.output.count(line) == times, line
    assert again.state["table"] is None
    assert "table         removed, with its records" in again.output
    assert json.loads(again.state["notification"])["QueueConfigurations"][0]["Id"] == OTHER_ENTRY_ID


# --- upgrading a table made by an earlier version ----------------------------------------

# Two records as the first search version wrote them: unsharded keys, a month, no ListShard.
OLD_RECORDS: list[dict[str, Any]] = [
    {
        "FilePath": {"S": f"s3://{S3_BUCKET_NAME}/dicom/old-{n}.dcm"},
        "PatientID": {"S": "OLD-1"},
        "StudyDate": {"S": f"2021010{n}"},
        "Modality": {"S": "MR"},
        "StudyDateKey": {"S": f"2021010{n}#s3://{S3_BUCKET_NAME}/dicom/old-{n}.dcm"},
        "StudyMonth": {"S": "202101"},
    }
    for n in (1, 2)
] + [
    # Indexed from its header by the version before studies: counted in its study by the backfill.
    {
        "FilePath": {"S": f"s3://{S3_BUCKET_NAME}/dicom/old-3.dcm"},
        "PatientID": {"S": "OLD-1"},
        "StudyDate": {"S": "20210103"},
        "Modality": {"S": "MR"},
        "StudyDateKey": {"S": f"20210103#s3://{S3_BUCKET_NAME}/dicom/old-3.dcm"},
        "StudyMonth": {"S": "202101"},
        "HeaderFields": {"M": {"PatientID": {"S": "OLD-1"}, "StudyDate": {"S": "20210103"}, "Modality": {"S": "MR"}}},
        "StudyInstanceUID": {"S": "1.2.3.4"},
        "SeriesInstanceUID": {"S": "1.2.3.4.1"},
        "ObjectETag": {"S": '"e"'},
    }
]


def test_deploy_upgrades_a_table_of_an_earlier_version(
    rollbacks: dict[str, Stage], aws: Clients, script_env: dict[str, str]
) -> None:
    # GIVEN the table as the first search version's deploy made it, with its records
    aws.dynamodb.create_table(
        TableName=DYNAMODB_TABLE_NAME,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "FilePath", "KeyType": "HASH"}],
        AttributeDefinitions=[
            {"AttributeName": name, "AttributeType": "S"}
            for name in ("FilePath", "StudyDateKey", "PatientID", "Modality", "StudyMonth")
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": f"{name}-StudyDate",
                "KeySchema": [
                    {"AttributeName": name, "KeyType": "HASH"},
                    {"AttributeName": "StudyDateKey", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
            for name in ("PatientID", "Modality", "StudyMonth")
        ],
    )
    for item in OLD_RECORDS:
        aws.dynamodb.put_item(TableName=DYNAMODB_TABLE_NAME, Item=item)
    # WHEN deploy runs
    output = run_script("deploy_resources.sh", script_env)
    # THEN it adds the new indexes, gives the old records their keys, drops the retired indexes
    for index in sorted(set(INDEXES) - {"PatientID-StudyDate"}):
        assert f"index {index} added" in output
    assert '"read": 3, "updated": 3, "changed_meanwhile": 0, "counted": 1' in output
    for index in ("Modality-StudyDate", "StudyMonth-StudyDate"):
        assert f"index {index} dropped (no longer used)" in output
    assert [i["IndexName"] for i in read_state(aws)["table"]["indexes"]] == sorted(INDEXES)
    listed = DynamoDBManager(endpoint_url=script_env["AWS_ENDPOINT_URL"]).search(SearchFilter(modality="MR"), 10)
    assert [item["s3_path"] for item in listed[0]] == [item["FilePath"]["S"] for item in OLD_RECORDS]
    study = StudyIndex(DynamoDBManager(endpoint_url=script_env["AWS_ENDPOINT_URL"])).get_studies(["1.2.3.4"])
    assert (study["1.2.3.4"].number_of_instances, study["1.2.3.4"].modalities_in_study) == (1, ["MR"])
    # AND a second run finds nothing to do
    again = run_script("deploy_resources.sh", script_env)
    assert "added" not in again and "dropped" not in again and "given the new index attributes" not in again
