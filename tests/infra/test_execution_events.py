"""Failed executions reach a DLQ in the cloud (ARCHITECTURE.md, Ramps): for every manifest state
machine, an EventBridge rule on its Step Functions status changes FAILED, TIMED_OUT and ABORTED,
targeting one queue, ``executions-dlq``, which state machines imply (as a function's kind implies
its DLQ): encrypted, TLS-only, kept 14 days, writable by exactly those rules, with a depth alarm.
Checked on every stage of Rampart's app; cfn-lint and cdk-nag run on it with the whole template
(test_cfn_lint.py, test_nag.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from aws_cdk import App, Stack

from infra import manifest
from infra.local import executions as twin_executions
from infra.manifest import Manifest
from infra.stacks import STAGES, readback
from infra.stacks.asynchronous import (
    EXECUTIONS_DLQ,
    Asynchronous,
    execution_failures_pattern,
    expected_queues,
)
from tests.infra.conftest import Cloud

FOURTEEN_DAYS = 14 * 24 * 3600
STATUS_CHANGE = "Step Functions Execution Status Change"


def _queue_id(template: Mapping[str, Any]) -> str:
    (logical_id,) = [
        k for k, v in readback.tagged(template, "AWS::SQS::Queue", readback.QUEUE_TAG).items() if v == EXECUTIONS_DLQ
    ]
    return logical_id


def _machine_arns(template: Mapping[str, Any], stage: str) -> dict[str, str]:
    """Manifest name → the ARN each state machine gets (its physical name, in the stage's account)."""
    config = STAGES[stage]
    found = {}
    for logical_id, name in readback.tagged(
        template, "AWS::StepFunctions::StateMachine", readback.STATE_MACHINE_TAG
    ).items():
        physical = template["Resources"][logical_id]["Properties"]["StateMachineName"]
        found[name] = f"arn:aws:states:{config.region}:{config.account}:stateMachine:{physical}"
    return found


def _execution_rules(template: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """Logical id → properties of every rule on Step Functions status changes."""
    return {
        logical_id: rule["Properties"]
        for logical_id, rule in readback.resources(template, "AWS::Events::Rule").items()
        if "aws.states" in rule["Properties"].get("EventPattern", {}).get("source", [])
    }


@pytest.mark.parametrize("stage", list(STAGES))
def test_one_rule_per_state_machine_on_its_failed_timed_out_and_aborted_executions(cloud: Cloud, stage: str) -> None:
    template = cloud.templates[stage]
    arns = _machine_arns(template, stage)
    assert set(arns) == {m.name for m in manifest.STATE_MACHINES}
    rules = _execution_rules(template)
    patterns = [props["EventPattern"] for props in rules.values()]
    assert sorted(patterns, key=str) == sorted((execution_failures_pattern(arn) for arn in arns.values()), key=str)
    for props in rules.values():
        assert props["EventPattern"]["detail-type"] == [STATUS_CHANGE]
        assert props["EventPattern"]["detail"]["status"] == ["FAILED", "TIMED_OUT", "ABORTED"]
        assert props["State"] == "ENABLED"
        assert "EventBusName" not in props, "Step Functions publishes on the default bus"


@pytest.mark.parametrize("stage", list(STAGES))
def test_every_rule_targets_the_executions_dlq_alone(cloud: Cloud, stage: str) -> None:
    template = cloud.templates[stage]
    queue = _queue_id(template)
    for props in _execution_rules(template).values():
        (target,) = props["Targets"]
        assert target["Arn"] == {"Fn::GetAtt": [queue, "Arn"]}
        assert "InputTransformer" not in target
        assert "Input" not in target, "the whole event is the message"


@pytest.mark.parametrize("stage", list(STAGES))
def test_the_queue_is_encrypted_and_kept_14_days(cloud: Cloud, stage: str) -> None:
    template = cloud.templates[stage]
    props = template["Resources"][_queue_id(template)]["Properties"]
    assert props["SqsManagedSseEnabled"] is True
    assert props["MessageRetentionPeriod"] == FOURTEEN_DAYS
    assert "RedrivePolicy" not in props, "it is the last stop"


@pytest.mark.parametrize("stage", list(STAGES))
def test_only_the_execution_rules_may_send_to_it(cloud: Cloud, stage: str) -> None:
    template = cloud.templates[stage]
    queue = _queue_id(template)
    (policy,) = [
        p["Properties"]
        for p in readback.resources(template, "AWS::SQS::QueuePolicy").values()
        if {"Ref": queue} in p["Properties"]["Queues"]
    ]
    statements = policy["PolicyDocument"]["Statement"]
    denies = [s for s in statements if s["Effect"] == "Deny"]
    assert [d["Condition"] for d in denies] == [{"Bool": {"aws:SecureTransport": "false"}}]
    allows = [s for s in statements if s["Effect"] == "Allow"]
    sources = set()
    for statement in allows:
        assert statement["Principal"] == {"Service": "events.amazonaws.com"}
        assert "sqs:SendMessage" in statement["Action"]
        assert statement["Resource"] == {"Fn::GetAtt": [queue, "Arn"]}
        (condition,) = statement["Condition"].values()
        sources |= readback.referenced_logical_ids(condition["aws:SourceArn"])
    assert sources == set(_execution_rules(template))


@pytest.mark.parametrize("stage", list(STAGES))
def test_its_depth_alarms(cloud: Cloud, stage: str) -> None:
    template = cloud.templates[stage]
    queue = _queue_id(template)
    alarms = [
        a["Properties"]
        for a in readback.resources(template, "AWS::CloudWatch::Alarm").values()
        if queue in readback.referenced_logical_ids(a["Properties"].get("Dimensions", []))
    ]
    (alarm,) = alarms
    assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert alarm["Threshold"] == 0
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarm["AlarmActions"], "it notifies the alarm topic"


def test_no_state_machine_no_executions_dlq() -> None:
    bare = Manifest(functions=())
    assert EXECUTIONS_DLQ not in expected_queues(bare)
    assert EXECUTIONS_DLQ in expected_queues(manifest.MANIFEST)
    stack = Stack(App(), "bare")
    built = Asynchronous(stack, "Async", stage=STAGES["dev"], functions={}, manifest=bare)
    assert built.executions_dlq is None
    assert built.execution_rules == {}


def test_the_twin_uses_the_clouds_names_and_pattern() -> None:
    arn = "arn:aws:states:us-east-1:123456789012:stateMachine:rampart-local-brl_on"
    assert twin_executions.EXECUTIONS_DLQ == EXECUTIONS_DLQ
    assert twin_executions.failures_pattern(arn) == execution_failures_pattern(arn)
