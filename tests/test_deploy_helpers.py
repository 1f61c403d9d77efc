"""The Python helpers of the deploy scripts: the JSON work on documents as AWS returns them
(deploy/documents.py) and the Lambda package's module list (deploy/build_lambda_zip.py)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
FUNCTION_ARN = "arn:aws:lambda:us-east-2:123456789012:function:F"


def load(name: str) -> ModuleType:
    """Import ``deploy/<name>.py`` by path: deploy/ is a folder of scripts, not a package."""
    spec = importlib.util.spec_from_file_location(f"deploy_{name}", DEPLOY / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    # Registered before it runs, as an import would: dataclasses look their module up there.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


documents = load("documents")
builder = load("build_lambda_zip")


def ours() -> dict[str, Any]:
    return documents.lambda_entry("ingest", FUNCTION_ARN, ["s3:ObjectCreated:*"], "json/", ".json")


def queue_entry(entry_id: str, prefix: str, suffix: str, events: list[str] | None = None) -> dict[str, Any]:
    return {
        "Id": entry_id,
        "QueueArn": "arn:aws:sqs:us-east-2:123456789012:q",
        "Events": events or ["s3:ObjectCreated:*"],
        "Filter": {"Key": {"FilterRules": [{"Name": "Prefix", "Value": prefix}, {"Name": "Suffix", "Value": suffix}]}},
    }


def test_merge_into_nothing_adds_our_entry() -> None:
    merged, status, warnings = documents.merge_notification({}, ours())
    assert (merged, status, warnings) == ({"LambdaFunctionConfigurations": [ours()]}, "added", [])


def test_merge_keeps_every_other_entry_untouched() -> None:
    other_lambda = {
        **ours(),
        "Id": "someone-else",
        "Filter": {"Key": {"FilterRules": [{"Name": "Prefix", "Value": "logs/"}]}},
    }
    current = {
        "QueueConfigurations": [queue_entry("q", "dicom/", ".dcm")],
        "TopicConfigurations": [{"Id": "t", "TopicArn": "arn:aws:sns:us-east-2:1:t", "Events": ["s3:ObjectRemoved:*"]}],
        "LambdaFunctionConfigurations": [other_lambda],
        "EventBridgeConfiguration": {},
    }
    merged, status, warnings = documents.merge_notification(current, ours())
    assert status == "added" and warnings == []
    assert merged == {**current, "LambdaFunctionConfigurations": [other_lambda, ours()]}


def test_merge_sees_s3s_capitalised_rule_names_as_the_same_entry() -> None:
    as_s3_returns_it = json.loads(json.dumps(ours()).replace('"prefix"', '"Prefix"').replace('"suffix"', '"Suffix"'))
    current = {"LambdaFunctionConfigurations": [as_s3_returns_it]}
    merged, status, _ = documents.merge_notification(current, ours())
    assert status == "unchanged" and merged == current


def test_merge_replaces_a_drifted_entry_in_place() -> None:
    drifted = {**ours(), "Events": ["s3:ObjectCreated:Put"]}
    other = {**ours(), "Id": "other", "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "x/"}]}}}
    merged, status, _ = documents.merge_notification({"LambdaFunctionConfigurations": [drifted, other]}, ours())
    assert status == "updated"
    assert merged["LambdaFunctionConfigurations"] == [ours(), other]


@pytest.mark.parametrize(
    ("prefix", "suffix", "events", "overlaps"),
    [
        ("json/", ".json", None, True),  # the embedded AWS's own queue entry
        ("", "", None, True),  # everything
        ("json/a/", "", None, True),
        ("dicom/", ".json", None, False),
        ("json/", ".dcm", None, False),
        ("json/", ".json", ["s3:ObjectCreated:Put"], True),
        ("json/", ".json", ["s3:ObjectRemoved:*"], False),
    ],
)
def test_merge_warns_of_entries_s3_would_refuse_next_to_ours(
    prefix: str, suffix: str, events: list[str] | None, overlaps: bool
) -> None:
    current = {"QueueConfigurations": [queue_entry("q", prefix, suffix, events)]}
    _, _, warnings = documents.merge_notification(current, ours())
    assert bool(warnings) is overlaps


def indexer_entry() -> dict[str, Any]:
    return documents.lambda_entry("index", FUNCTION_ARN, ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"], "dicom/")


def test_the_indexer_entry_has_both_events_and_no_suffix() -> None:
    entry = indexer_entry()
    assert entry["Events"] == ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]
    assert entry["Filter"] == {"Key": {"FilterRules": [{"Name": "prefix", "Value": "dicom/"}]}}


def test_ingest_and_indexer_entries_live_side_by_side() -> None:
    merged, _, warnings = documents.merge_notification({}, ours())
    merged, status, warnings = documents.merge_notification(merged, indexer_entry())
    assert (status, warnings) == ("added", [])
    assert merged["LambdaFunctionConfigurations"] == [ours(), indexer_entry()]
    assert documents.merge_notification(merged, indexer_entry())[1] == "unchanged"


@pytest.mark.parametrize(
    ("prefix", "suffix", "events", "overlaps"),
    [
        ("dicom/", ".dcm", None, True),  # another consumer of new DICOM files: S3 refuses both
        ("dicom/", "", ["s3:ObjectRemoved:Delete"], True),
        ("", "", ["s3:ObjectTagging:*"], False),
        ("reports/", ".pdf", None, False),
    ],
)
def test_merge_warns_of_entries_s3_would_refuse_next_to_the_indexer(
    prefix: str, suffix: str, events: list[str] | None, overlaps: bool
) -> None:
    current = {"QueueConfigurations": [queue_entry("q", prefix, suffix, events)]}
    _, _, warnings = documents.merge_notification(current, indexer_entry())
    assert bool(warnings) is overlaps


def test_remove_takes_out_only_our_entry() -> None:
    current = {"QueueConfigurations": [queue_entry("q", "dicom/", ".dcm")], "LambdaFunctionConfigurations": [ours()]}
    remaining, status = documents.remove_notification(current, "ingest")
    assert (remaining, status) == ({"QueueConfigurations": current["QueueConfigurations"]}, "removed")
    assert documents.remove_notification(remaining, "ingest") == (remaining, "absent")


def policy_with(statement: dict[str, Any]) -> dict[str, Any]:
    return {"Policy": json.dumps({"Version": "2012-10-17", "Statement": [statement]})}


def s3_statement(source_arn: str = "arn:aws:s3:::b", account: str = "123") -> dict[str, Any]:
    return {
        "Sid": "s3",
        "Effect": "Allow",
        "Action": "lambda:InvokeFunction",
        "Resource": FUNCTION_ARN,
        "Principal": {"Service": "s3.amazonaws.com"},
        "Condition": {"StringEquals": {"AWS:SourceAccount": account}, "ArnLike": {"AWS:SourceArn": source_arn}},
    }


@pytest.mark.parametrize(
    ("policy", "state"),
    [
        ({}, "absent"),
        (policy_with({**s3_statement(), "Sid": "another"}), "absent"),
        (policy_with(s3_statement()), "same"),
        (policy_with(s3_statement(source_arn="arn:aws:s3:::other")), "different"),
        (policy_with(s3_statement(account="999")), "different"),
    ],
)
def test_permission_state(policy: dict[str, Any], state: str) -> None:
    assert documents.permission_state(policy, "s3", "arn:aws:s3:::b", "123") == state


def test_render_refuses_a_missing_value(tmp_path: Path) -> None:
    template = tmp_path / "policy.json"
    template.write_text('{"Resource": "${TableArn}", "Other": "${QueueArn}"}')
    assert json.loads(documents.render(template, {"TableArn": "t", "QueueArn": "q"})) == {"Resource": "t", "Other": "q"}
    with pytest.raises(SystemExit):
        documents.render(template, {"TableArn": "t"})
    with pytest.raises(SystemExit):
        documents.render(template, {"TableArn": "None", "QueueArn": "q"})


def test_zip_follows_the_handlers_imports_through_the_repository(tmp_path: Path) -> None:
    handler = tmp_path / "lambda_function.py"
    handler.write_text("import json\nimport boto3\nfrom metadata import FIELDS\n")
    names = builder.build(tmp_path / "lambda.zip", handler)
    assert names == ["config.py", "errors.py", "lambda_function.py", "metadata.py"]


@pytest.mark.parametrize("module", ["pydicom", "flask", "requests"])
def test_zip_refuses_a_handler_importing_what_lambda_lacks(tmp_path: Path, module: str) -> None:
    handler = tmp_path / "lambda_function.py"
    handler.write_text(f"def lambda_handler(event, context):\n    import {module}\n")
    with pytest.raises(SystemExit, match=module):
        builder.build(tmp_path / "lambda.zip", handler)


def test_indexer_zip_vendors_pydicom_but_not_its_test_files(tmp_path: Path) -> None:
    # GIVEN an indexer handler that imports pydicom (the name decides what it may vendor)
    handler = tmp_path / "indexer_function.py"
    handler.write_text("from pydicom import dcmread\nfrom metadata import FIELDS\n")
    # WHEN its zip is built
    names = builder.build(tmp_path / "indexer.zip", handler)
    # THEN pydicom's code is in it, with its licence, and its data files, SR dictionaries and CLI are not
    assert {"indexer_function.py", "metadata.py", "pydicom/__init__.py", "pydicom/_dicom_dict.py"} <= set(names)
    assert any(name.endswith(".dist-info/licenses/LICENSE") or name.endswith("LICENSE") for name in names)
    vendored = [name for name in names if name.startswith("pydicom/")]
    assert [name for name in vendored if not name.endswith(".py")] == ["pydicom/data/urls.json"]
    assert not [name for name in vendored if name.startswith(("pydicom/sr/", "pydicom/cli/", "pydicom/data/test"))]
    assert (tmp_path / "indexer.zip").stat().st_size < 1024 * 1024


def test_ingest_zip_may_not_vendor_pydicom_and_the_indexer_no_flask(tmp_path: Path) -> None:
    ingest = tmp_path / "lambda_function.py"
    ingest.write_text("import pydicom\n")
    with pytest.raises(SystemExit, match="pydicom"):
        builder.build(tmp_path / "lambda.zip", ingest)
    indexer = tmp_path / "indexer_function.py"
    indexer.write_text("import pydicom\nimport flask\n")
    with pytest.raises(SystemExit, match="flask"):
        builder.build(tmp_path / "indexer.zip", indexer)


def test_vendoring_refuses_a_package_that_needs_others(tmp_path: Path) -> None:
    handler = tmp_path / "indexer_function.py"
    handler.write_text("import requests\n")
    with pytest.raises(SystemExit, match="requires"):
        builder.build(tmp_path / "indexer.zip", handler, frozenset({"requests"}))


def test_the_indexer_zip_is_reproducible(tmp_path: Path) -> None:
    first, second = tmp_path / "a.zip", tmp_path / "b.zip"
    handler = builder.FUNCTIONS["indexer"][0]
    builder.build(first, handler)
    builder.build(second, handler)
    assert first.read_bytes() == second.read_bytes()


fan_out = load("fan_out")
INDEXER_ARN = "arn:aws:lambda:us-east-2:123456789012:function:Indexer"


def test_fan_out_lists_the_prefix_and_batches_it_to_the_indexer() -> None:
    definition = fan_out.definition("aws", INDEXER_ARN, "data-apps-ex", "index-results/")
    state = definition["States"][definition["StartAt"]]
    assert state["Type"] == "Map" and state.get("End") is True
    # No manifest: the Map lists the prefix of the execution's input itself.
    assert state["ItemReader"] == {
        "Resource": "arn:aws:states:::s3:listObjectsV2",
        "Parameters": {"Bucket.$": "$.bucket", "Prefix.$": "$.prefix"},
    }
    # Each child gets {"Items": [...], "BatchInput": {"bucket": ...}}: the indexer's batch shape.
    assert state["ItemBatcher"] == {"MaxItemsPerBatch": 100, "BatchInput": {"bucket.$": "$.bucket"}}
    assert state["ItemProcessor"]["ProcessorConfig"] == {"Mode": "DISTRIBUTED", "ExecutionType": "EXPRESS"}
    assert (state["MaxConcurrency"], state["ToleratedFailurePercentage"]) == (40, 5)
    assert state["ResultWriter"] == {
        "Resource": "arn:aws:states:::s3:putObject",
        "Parameters": {"Bucket": "data-apps-ex", "Prefix": "index-results"},
    }


def test_fan_out_task_invokes_the_indexer_and_retries_lambda_trouble() -> None:
    processor = fan_out.definition("aws-cn", INDEXER_ARN, "b", "r/")["States"]["IndexEveryObject"]["ItemProcessor"]
    task = processor["States"][processor["StartAt"]]
    assert task["Resource"] == "arn:aws-cn:states:::lambda:invoke"
    assert task["Parameters"] == {"FunctionName": INDEXER_ARN, "Payload.$": "$"}
    assert task["OutputPath"] == "$.Payload"  # the indexer's counts and failures, as it returned them
    throttling, transient = task["Retry"]
    assert "Lambda.TooManyRequestsException" in throttling["ErrorEquals"]
    assert "Lambda.ServiceException" in throttling["ErrorEquals"]
    assert throttling["BackoffRate"] > 1 and throttling["MaxAttempts"] >= 3
    assert transient["ErrorEquals"] == ["States.TaskFailed"]
    # Every try of a batch fits in an EXPRESS child's 5 minutes (the function times out at 60 s).
    backoff = sum(
        min(throttling["IntervalSeconds"] * throttling["BackoffRate"] ** i, throttling["MaxDelaySeconds"])
        for i in range(throttling["MaxAttempts"])
    )
    worst = (1 + transient["MaxAttempts"]) * 60 + transient["IntervalSeconds"] + backoff
    assert worst < 300 and task["TimeoutSeconds"] > 60


def test_imports_under_type_checking_are_not_followed(tmp_path: Path) -> None:
    # GIVEN a module importing one name at run time and another for its type hints only
    module = tmp_path / "typed.py"
    module.write_text(
        "from typing import TYPE_CHECKING\nimport json\nif TYPE_CHECKING:\n    from requests import Session\n"
    )
    # WHEN the builder follows its imports THEN only what runs is a dependency
    names = builder.imported_names(module)
    assert "json" in names and "requests" not in names and "requests.Session" not in names
