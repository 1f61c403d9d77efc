"""``submit()`` of the bulk index on AWS (indexer/on_aws.py): the execution it starts and the
one-line refusals. On the session's embedded AWS (not ``mock_aws``: moto's backends are global
to the process, and leaving a mock resets the embedded AWS the other tests use);
tests/test_deploy.py repeats the submission against the state machine deploy creates."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from config import S3_BUCKET_NAME
from indexer import on_aws
from local.server import LocalAWS
from managers.aws.step_functions import STATE_MACHINE_NAME


@pytest.fixture
def endpoint(local_aws: LocalAWS) -> str:
    return local_aws.endpoint_url


@pytest.fixture
def stepfunctions(local_aws: LocalAWS) -> Iterator[Any]:
    """Step Functions on the embedded AWS; every state machine made through it is removed after."""
    client = local_aws.client("stepfunctions")
    yield client
    for machine in client.list_state_machines()["stateMachines"]:
        client.delete_state_machine(stateMachineArn=machine["stateMachineArn"])


def deploy_state_machine(client: Any, name: str = STATE_MACHINE_NAME) -> str:
    definition = {"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}
    role = "arn:aws:iam::123456789012:role/fan-out"
    return str(
        client.create_state_machine(name=name, definition=json.dumps(definition), roleArn=role)["stateMachineArn"]
    )


@pytest.mark.parametrize("prefix", [f"s3://{S3_BUCKET_NAME}/dicom/", f"s3://{S3_BUCKET_NAME}/dicom/2024/ward a+b/"])
def test_submit_starts_an_execution_with_the_bucket_and_prefix(stepfunctions: Any, endpoint: str, prefix: str) -> None:
    # GIVEN the fan-out deployed under its config-derived name
    arn = deploy_state_machine(stepfunctions)
    # WHEN the bulk index is submitted
    started = on_aws.submit(prefix, endpoint)
    # THEN one execution of that state machine runs with the bucket and the key prefix as input
    key_prefix = prefix.removeprefix(f"s3://{S3_BUCKET_NAME}/")
    assert (started["stateMachine"], started["bucket"], started["prefix"]) == (arn, S3_BUCKET_NAME, key_prefix)
    assert started["results"] == f"s3://{S3_BUCKET_NAME}/index-results/"
    execution = stepfunctions.describe_execution(executionArn=started["execution"])
    assert execution["stateMachineArn"] == arn
    assert json.loads(execution["input"]) == {"bucket": S3_BUCKET_NAME, "prefix": key_prefix}
    assert execution["name"].startswith("index-") and "ward" not in execution["name"]


def test_two_submissions_are_two_executions(stepfunctions: Any, endpoint: str) -> None:
    deploy_state_machine(stepfunctions)
    first = on_aws.submit(f"s3://{S3_BUCKET_NAME}/dicom/", endpoint)
    second = on_aws.submit(f"s3://{S3_BUCKET_NAME}/dicom/", endpoint)
    assert first["execution"] != second["execution"]


def test_dicom_without_its_slash_means_dicom(stepfunctions: Any, endpoint: str) -> None:
    deploy_state_machine(stepfunctions)
    assert on_aws.submit(f"s3://{S3_BUCKET_NAME}/dicom", endpoint)["prefix"] == "dicom/"


def refusal(capsys: pytest.CaptureFixture[str], prefix: str, endpoint_url: str | None = None) -> str:
    """Submit, expect exit status 2, return the one line said on stderr."""
    with pytest.raises(SystemExit) as exited:
        on_aws.submit(prefix, endpoint_url)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("index --on-aws: ")
    return err


def test_submit_says_when_the_state_machine_is_not_deployed(
    stepfunctions: Any, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    deploy_state_machine(stepfunctions, name="someone-elses-machine")
    assert f"{STATE_MACHINE_NAME} is not deployed" in refusal(capsys, f"s3://{S3_BUCKET_NAME}/dicom/", endpoint)


@pytest.mark.parametrize(
    ("prefix", "says"),
    [
        ("dicom/", "must look like"),
        ("", "must look like"),
        ("s3:///dicom/", "must look like"),
        (f"https://{S3_BUCKET_NAME}/dicom/", "must look like"),
        (f"s3://{S3_BUCKET_NAME}/dicom/\nx", "must look like"),
        ("s3://patient-smith-bucket/dicom/", "another bucket"),
        (f"s3://{S3_BUCKET_NAME}/", "only prefixes under"),
        (f"s3://{S3_BUCKET_NAME}", "only prefixes under"),
        (f"s3://{S3_BUCKET_NAME}/json/", "only prefixes under"),
    ],
)
def test_submit_refuses_a_bad_prefix_before_calling_aws(
    prefix: str, says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # A dead endpoint: a refusal that called AWS would say "unreachable" instead.
    err = refusal(capsys, prefix, endpoint_url="http://127.0.0.1:9")
    assert says in err
    assert "smith" not in err  # the value given is never repeated


def test_submit_says_when_aws_is_unreachable(capsys: pytest.CaptureFixture[str]) -> None:
    assert "unreachable" in refusal(capsys, f"s3://{S3_BUCKET_NAME}/dicom/", endpoint_url="http://127.0.0.1:9")
