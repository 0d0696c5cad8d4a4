"""Workflows: a state machine per manifest entry, from its ASL file with substitutions; Standard,
logging ALL, tracing, permissions to exactly what it names. The manifest has none yet, so the
construct is exercised with a fixture ASL (tests/infra/fixtures/hello.asl.json)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import Acknowledgment, App, Stack, Validations
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from aws_cdk.assertions import Match, Template
from cdk_nag import AwsSolutionsChecks

from infra.manifest import StateMachine
from infra.stacks import readback
from infra.stacks.config import STAGES
from infra.stacks.workflows import Workflows
from tests.infra.conftest import NO_FAIL

FIXTURES = Path(__file__).with_name("fixtures")
HELLO = StateMachine("hello", "hello.asl.json", {"HelloFunction": "hello", "NotifyQueue": "notify"})


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], dict[str, Any]]:
    outdir = tmp_path_factory.mktemp("workflows.out")
    app = App(outdir=str(outdir), context=NO_FAIL)
    stack = Stack(app, "workflows")
    fn = lambda_.Function(
        stack,
        "Hello",
        runtime=lambda_.Runtime.PYTHON_3_12,
        handler="index.handler",
        code=lambda_.Code.from_inline("def handler(event, context):\n    return event\n"),
    )
    queue = sqs.Queue(stack, "Notify", enforce_ssl=True)
    for rule in (
        "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
        "AwsSolutions-L1",
    ):
        Validations.of(fn).acknowledge(Acknowledgment(id=rule, reason="a test-only stand-in for a Rampart function"))
    Validations.of(queue).acknowledge(Acknowledgment(id="AwsSolutions-SQS3", reason="a test-only stand-in queue"))
    Workflows(
        stack,
        "Workflows",
        stage=STAGES["dev"],
        functions={"hello": fn},
        queues={"notify": queue},
        state_machines=(HELLO,),
        root=FIXTURES,
    )
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    app.synth()
    template = json.loads((outdir / "workflows.template.json").read_text())
    report = json.loads((outdir / "validation-report.json").read_text())
    return template, report


def test_state_machine_logs_all_and_traces(synthesized: tuple[dict[str, Any], dict[str, Any]]) -> None:
    template_json, _ = synthesized
    template = Template.from_json(template_json)
    template.has_resource_properties(
        "AWS::StepFunctions::StateMachine",
        {
            "StateMachineType": "STANDARD",
            "LoggingConfiguration": Match.object_like({"Level": "ALL", "IncludeExecutionData": True}),
            "TracingConfiguration": {"Enabled": True},
            "Tags": Match.array_with([{"Key": readback.STATE_MACHINE_TAG, "Value": "hello"}]),
        },
    )
    assert readback.state_machines(template_json) == {"hello"}


def test_substitutions_and_exact_permissions(synthesized: tuple[dict[str, Any], dict[str, Any]]) -> None:
    template, _ = synthesized
    (machine,) = readback.resources(template, "AWS::StepFunctions::StateMachine").values()
    fn_id = next(iter(readback.resources(template, "AWS::Lambda::Function")))
    queue_id = next(iter(readback.resources(template, "AWS::SQS::Queue")))
    substitutions = machine["Properties"]["DefinitionSubstitutions"]
    assert substitutions["HelloFunction"] == {"Fn::GetAtt": [fn_id, "Arn"]}
    assert substitutions["NotifyQueue"] == {"Ref": queue_id}
    role = machine["Properties"]["RoleArn"]["Fn::GetAtt"][0]
    statements = [
        s
        for p in readback.resources(template, "AWS::IAM::Policy").values()
        if {"Ref": role} in p["Properties"]["Roles"]
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]
    invoke = [s for s in statements if "lambda:InvokeFunction" in json.dumps(s["Action"])]
    assert invoke
    assert all(readback.referenced_logical_ids(s["Resource"]) == {fn_id} for s in invoke)
    send = [s for s in statements if "sqs:SendMessage" in json.dumps(s["Action"])]
    assert send
    assert all(readback.referenced_logical_ids(s["Resource"]) == {queue_id} for s in send)


def test_state_machine_passes_cdk_nag(synthesized: tuple[dict[str, Any], dict[str, Any]]) -> None:
    _, report = synthesized
    violations = [(v["ruleName"], v["violatingConstructs"]) for p in report["pluginReports"] for v in p["violations"]]
    assert violations == []


def test_no_state_machines_means_no_resources() -> None:
    app = App(context=NO_FAIL)
    stack = Stack(app, "empty")
    workflows = Workflows(stack, "Workflows", stage=STAGES["dev"], functions={}, queues={}, state_machines=())
    assert workflows.state_machines == {}
    assert workflows.node.children == []


def test_a_placeholder_without_substitution_is_refused() -> None:
    app = App(context=NO_FAIL)
    stack = Stack(app, "broken")
    broken = StateMachine("hello", "hello.asl.json", {"HelloFunction": "hello"})
    with pytest.raises(ValueError, match="NotifyQueue"):
        Workflows(stack, "W", stage=STAGES["dev"], functions={}, queues={}, state_machines=(broken,), root=FIXTURES)
