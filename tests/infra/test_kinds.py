"""The CDK side of the new function kinds, proven on the test manifest of fixture functions
(tests/support/fixture_manifest.py, never deployed), synthesized once per run: a ``webhook`` gets
a public function URL, a ``queue`` function an SQS event source mapping that reports partial
batch failures on a queue whose redrive policy ends in its DLQ, a ``worker`` is invoked by exactly
the state machines that name it; every DLQ has an alarm; cfn-lint and cdk-nag pass."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk.assertions import Match, Template

from infra.manifest import Queue
from infra.stacks import readback
from infra.stacks.asynchronous import EXECUTIONS_DLQ, VISIBILITY_FACTOR, check_visibility, dlq_name, expected_queues
from infra.stacks.compute import bound_queue, bound_state_machine, function_code_excludes, handler_package
from tests.infra.conftest import Cloud, acknowledgment_problems, lint_problems, nag_violations
from tests.support.fixture_manifest import FIXTURE_MANIFEST as FIXTURES

WEBHOOK = FIXTURES.of_kind("webhook")[0]
CONSUMER = FIXTURES.of_kind("queue")[0]
WORKER = FIXTURES.of_kind("worker")[0]
QUEUE = next(q for q in FIXTURES.queues if q.consumer == CONSUMER.name)
MACHINE = next(m for m in FIXTURES.state_machines if WORKER.name in m.substitutions.values())


@pytest.fixture(scope="module")
def fixture_json(fixture_cloud: Cloud) -> dict[str, Any]:
    return fixture_cloud.templates["dev"]


@pytest.fixture(scope="module")
def fixture(fixture_json: dict[str, Any]) -> Template:
    return Template.from_json(fixture_json)


def _function_id(template: dict[str, Any], name: str) -> str:
    return next(k for k, v in readback.function_names(template).items() if v == name)


def _queue_id(template: dict[str, Any], name: str) -> str:
    return next(k for k, v in readback.tagged(template, "AWS::SQS::Queue", readback.QUEUE_TAG).items() if v == name)


def _role_statements(template: dict[str, Any], role: str) -> list[dict[str, Any]]:
    return [
        statement
        for policy in readback.resources(template, "AWS::IAM::Policy").values()
        if {"Ref": role} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def test_the_fixture_manifest_has_every_new_kind() -> None:
    FIXTURES.check()
    assert {fn.kind for fn in FIXTURES.functions} >= {"webhook", "queue", "worker", "scheduled"}


def test_the_template_equals_the_fixture_manifest(fixture_json: dict[str, Any], fixture: Template) -> None:
    assert readback.functions(fixture_json) == {fn.name for fn in FIXTURES.functions}
    assert readback.queues(fixture_json) == expected_queues(FIXTURES)
    assert readback.state_machines(fixture_json) == {m.name for m in FIXTURES.state_machines}
    assert readback.triggers(fixture_json) == readback.manifest_triggers(FIXTURES)
    fixture.resource_count_is("AWS::ApiGateway::RestApi", 0)  # no routes, no API


# --- webhook -----------------------------------------------------------------------------------


def test_the_webhook_has_a_public_function_url(fixture_json: dict[str, Any], fixture: Template) -> None:
    webhook = _function_id(fixture_json, WEBHOOK.name)
    urls = readback.resources(fixture_json, "AWS::Lambda::Url")
    assert len(urls) == len(FIXTURES.of_kind("webhook")), "a function URL for webhooks only"
    fixture.has_resource_properties(
        "AWS::Lambda::Url", {"AuthType": "NONE", "TargetFunctionArn": {"Fn::GetAtt": [webhook, "Arn"]}}
    )
    fixture.has_resource_properties(
        "AWS::Lambda::Permission",
        {"Action": "lambda:InvokeFunctionUrl", "FunctionUrlAuthType": "NONE", "Principal": "*"},
    )
    (url_id,) = urls
    outputs = [o for o in fixture_json["Outputs"].values() if readback.referenced_logical_ids(o["Value"]) == {url_id}]
    assert outputs, "the webhook's URL is a stack output"


# --- queue -------------------------------------------------------------------------------------


def test_the_queue_function_reports_partial_batch_failures(fixture_json: dict[str, Any], fixture: Template) -> None:
    mappings = readback.resources(fixture_json, "AWS::Lambda::EventSourceMapping")
    assert len(mappings) == len([q for q in FIXTURES.queues if q.consumer])
    fixture.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "FunctionName": {"Ref": _function_id(fixture_json, CONSUMER.name)},
            "EventSourceArn": {"Fn::GetAtt": [_queue_id(fixture_json, QUEUE.name), "Arn"]},
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "BatchSize": QUEUE.batch_size,
        },
    )


def test_the_queue_redrives_to_its_dlq(fixture_json: dict[str, Any], fixture: Template) -> None:
    dlq = _queue_id(fixture_json, dlq_name(QUEUE.name))
    fixture.has_resource_properties(
        "AWS::SQS::Queue",
        {
            "RedrivePolicy": {
                "deadLetterTargetArn": {"Fn::GetAtt": [dlq, "Arn"]},
                "maxReceiveCount": QUEUE.max_receive_count,
            },
            "VisibilityTimeout": QUEUE.visibility_timeout_seconds,
            "SqsManagedSseEnabled": True,
            "Tags": Match.array_with([{"Key": readback.QUEUE_TAG, "Value": QUEUE.name}]),
        },
    )
    assert QUEUE.visibility_timeout_seconds >= VISIBILITY_FACTOR * CONSUMER.timeout_seconds
    policies = [p["Properties"] for p in readback.resources(fixture_json, "AWS::SQS::QueuePolicy").values()]
    for queue_id in readback.tagged(fixture_json, "AWS::SQS::Queue", readback.QUEUE_TAG):
        (policy,) = [p for p in policies if {"Ref": queue_id} in p["Queues"]]
        assert '"aws:SecureTransport": "false"' in json.dumps(policy), f"{queue_id} is TLS-only"


def test_every_dlq_has_a_depth_alarm(fixture_json: dict[str, Any]) -> None:
    alarmed = set()
    for alarm in readback.resources(fixture_json, "AWS::CloudWatch::Alarm").values():
        props = alarm["Properties"]
        if props["MetricName"] == "ApproximateNumberOfMessagesVisible":
            assert props["Threshold"] == 0
            assert props["AlarmActions"], "it notifies the alarm topic"
            alarmed |= readback.referenced_logical_ids(props["Dimensions"])
    dlqs = {dlq_name(q.name) for q in FIXTURES.queues} | {
        dlq_name(f.name) for f in FIXTURES.functions if f.asynchronous
    }
    if FIXTURES.state_machines:
        dlqs.add(EXECUTIONS_DLQ)  # failed, timed-out and aborted executions
    undelivered = {k for k in readback.resources(fixture_json, "AWS::SQS::Queue") if "UndeliveredAlarms" in k}
    assert len(undelivered) == 1, "the alarm topic's own DLQ, alarmed too"
    assert alarmed == {_queue_id(fixture_json, name) for name in dlqs} | undelivered
    assert dlq_name(QUEUE.name) in dlqs


def test_a_visibility_timeout_under_six_function_timeouts_is_refused() -> None:
    short = dataclasses.replace(QUEUE, visibility_timeout_seconds=VISIBILITY_FACTOR * CONSUMER.timeout_seconds - 1)
    with pytest.raises(ValueError, match="visibility timeout"):
        check_visibility(short, dataclasses.replace(FIXTURES, queues=(short,)))
    check_visibility(Queue("not-consumed", visibility_timeout_seconds=1), FIXTURES)


# --- worker ------------------------------------------------------------------------------------


def test_the_state_machine_invokes_exactly_its_worker(fixture_json: dict[str, Any]) -> None:
    worker = _function_id(fixture_json, WORKER.name)
    machines = {
        v: readback.resources(fixture_json, "AWS::StepFunctions::StateMachine")[k]["Properties"]
        for k, v in readback.tagged(
            fixture_json, "AWS::StepFunctions::StateMachine", readback.STATE_MACHINE_TAG
        ).items()
    }
    machine = machines[MACHINE.name]
    placeholder = next(p for p, target in MACHINE.substitutions.items() if target == WORKER.name)
    assert machine["DefinitionSubstitutions"][placeholder] == {"Fn::GetAtt": [worker, "Arn"]}
    role = machine["RoleArn"]["Fn::GetAtt"][0]
    invoke = [s for s in _role_statements(fixture_json, role) if "lambda:" in json.dumps(s["Action"])]
    assert invoke
    assert all(s["Action"] == "lambda:InvokeFunction" for s in invoke), "invoke, nothing else"
    assert set().union(*(readback.referenced_logical_ids(s["Resource"]) for s in invoke)) == {worker}
    # and no function's role may invoke it
    for name in FIXTURES.functions:
        fn_role = fixture_json["Resources"][_function_id(fixture_json, name.name)]["Properties"]["Role"]["Fn::GetAtt"][
            0
        ]
        assert "lambda:InvokeFunction" not in json.dumps(_role_statements(fixture_json, fn_role))


# --- code, environment, checks -------------------------------------------------------------------


@pytest.mark.parametrize("spec", FIXTURES.functions, ids=lambda f: f.name)
def test_a_fixture_function_asset_holds_only_its_own_code(
    fixture_cloud: Cloud, fixture_json: dict[str, Any], spec: Any
) -> None:
    props = fixture_json["Resources"][_function_id(fixture_json, spec.name)]["Properties"]
    folder = fixture_cloud.asset_dir(props["Code"]["S3Key"])
    files = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    package = handler_package(spec.handler)
    assert package.startswith("tests/support/fixture_functions/")
    inits = {"tests/__init__.py", "tests/support/__init__.py", "tests/support/fixture_functions/__init__.py"}
    assert files - inits == {f for f in files if f.startswith(f"{package}/")}
    assert f"{package}/handler.py" in files
    assert props["Environment"]["Variables"]["RAMPART_USES"] == ""
    assert "VpcConfig" not in props, "no fixture function uses PostgreSQL"


def test_code_excludes_for_the_production_layout() -> None:
    assert function_code_excludes("functions.health.handler.handler")[:6] == [
        "*",
        ".*",
        "!functions",
        "!functions/__init__.py",
        "!functions/health",
        "!functions/health/**",
    ]


def test_cfn_lint(fixture_cloud: Cloud) -> None:
    assert lint_problems(fixture_cloud, "dev") == []


def test_cdk_nag(fixture_cloud: Cloud) -> None:
    assert nag_violations(fixture_cloud.report) == []
    assert acknowledgment_problems(fixture_cloud, "dev") == []


# --- grants of resources a function uses (no fixture function sends or starts one) ---------------


def test_using_a_queue_or_state_machine_grants_its_actions_on_it() -> None:
    stack = Stack(App(), "grants")
    role = iam.Role(stack, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    queue = sqs.Queue(stack, "Queue")
    machine = sfn.StateMachine(
        stack, "Machine", definition_body=sfn.DefinitionBody.from_chainable(sfn.Pass(stack, "P"))
    )
    bound_queue(queue).grant(role, Queue("q").actions)
    bound_state_machine(machine).grant(role, ("states:StartExecution", "states:DescribeExecution"))
    template = Template.from_stack(stack).to_json()
    statements = [
        s
        for p in readback.resources(template, "AWS::IAM::Policy").values()
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]
    by_action = {json.dumps(s["Action"]): s["Resource"] for s in statements}
    queue_id = next(iter(readback.resources(template, "AWS::SQS::Queue")))
    machine_id = next(iter(readback.resources(template, "AWS::StepFunctions::StateMachine")))
    assert readback.referenced_logical_ids(by_action['"sqs:SendMessage"']) == {queue_id}
    assert by_action['"states:StartExecution"'] == {"Ref": machine_id}
    assert "execution:" in json.dumps(by_action['"states:DescribeExecution"']), "on the machine's executions"
