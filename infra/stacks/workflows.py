"""Step Functions: every manifest state machine loaded from its ASL file (``definition``, a path
from the repository root), its Retry waits set to the stage's (``infra.asl.staged_text``), with
the manifest's substitutions (``worker`` function ARNs, queue URLs); Standard type, logging ALL
to CloudWatch, X-Ray tracing, and a role that may invoke exactly the functions and send to exactly the queues it names.

Each machine is named ``rampart-<stage>-<name>`` (:func:`state_machine_name`), so its ARN is known
before it is built (:func:`state_machine_arn`): the EventBridge rules that send its failed, timed-out
and aborted executions to the executions DLQ (``infra/stacks/asynchronous.py``, built first, where
every DLQ is) match on it."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from aws_cdk import ArnFormat, Stack, Tags
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.asl import staged_text
from infra.manifest import STATE_MACHINES, StateMachine
from infra.stacks.config import StageConfig
from infra.stacks.nag import acknowledge
from infra.stacks.readback import STATE_MACHINE_TAG

ROOT = Path(__file__).resolve().parents[2]
PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")


def state_machine_name(stage: StageConfig, name: str) -> str:
    """The physical name of a manifest state machine: its stage's, like its log group's."""
    return f"rampart-{stage.name}-{name}"


def state_machine_arn(scope: Construct, stage: StageConfig, name: str) -> str:
    """The ARN the manifest state machine ``name`` gets in ``scope``'s stack (known before it is built)."""
    return Stack.of(scope).format_arn(
        service="states",
        resource="stateMachine",
        resource_name=state_machine_name(stage, name),
        arn_format=ArnFormat.COLON_RESOURCE_NAME,
    )


class Workflows(Construct):
    """Produces nothing for an empty list of state machines."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: StageConfig,
        functions: Mapping[str, lambda_.IFunction],
        queues: Mapping[str, sqs.IQueue],
        state_machines: tuple[StateMachine, ...] = STATE_MACHINES,
        root: Path = ROOT,
        logs_key: kms.IKey | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.state_machines: dict[str, sfn.StateMachine] = {}
        for spec in state_machines:
            path = root / spec.definition
            if not path.is_file():
                raise FileNotFoundError(f"state machine {spec.name}: {path} does not exist")
            missing = set(PLACEHOLDER.findall(path.read_text())) - set(spec.substitutions)
            if missing:
                raise ValueError(f"state machine {spec.name}: no substitution for {', '.join(sorted(missing))}")
            substitutions: dict[str, str] = {}
            invoked: list[lambda_.IFunction] = []
            fed: list[sqs.IQueue] = []
            for placeholder, target in spec.substitutions.items():
                if target in functions:
                    substitutions[placeholder] = functions[target].function_arn
                    invoked.append(functions[target])
                elif target in queues:
                    substitutions[placeholder] = queues[target].queue_url
                    fed.append(queues[target])
                else:
                    raise ValueError(f"state machine {spec.name}: {placeholder} names {target}, no function or queue")
            log_group = logs.LogGroup(
                self,
                f"{spec.name}-Logs",
                log_group_name=f"/aws/vendedlogs/states/rampart-{stage.name}-{spec.name}",
                retention=stage.log_retention,
                removal_policy=stage.removal_policy,
                encryption_key=logs_key,  # executions' data: payment data
            )
            machine = sfn.StateMachine(
                self,
                spec.name,
                state_machine_name=state_machine_name(stage, spec.name),
                # the file with the stage's Retry waits (infra/manifest.py RAMP_RETRIES)
                definition_body=sfn.DefinitionBody.from_string(
                    staged_text(path.read_text(), spec.retry_policies(stage.name))
                ),
                definition_substitutions=substitutions,
                state_machine_type=sfn.StateMachineType.STANDARD,
                logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=True),
                tracing_enabled=True,
            )
            for fn in invoked:
                fn.grant_invoke(machine)
            for queue in fed:
                queue.grant_send_messages(machine)
            default_child = machine.node.default_child
            assert default_child is not None
            Tags.of(default_child).add(STATE_MACHINE_TAG, spec.name)
            acknowledge(
                machine.role,
                "AwsSolutions-IAM5[Resource::*]",
                "CloudWatch Logs delivery (logs:*LogDelivery, DescribeLogGroups, …) and X-Ray actions support no "
                "resource-level scoping.",
            )
            for fn in invoked:
                acknowledge(
                    machine.role,
                    f"AwsSolutions-IAM5[Resource::<{_logical_id(fn)}.Arn>:*]",
                    "lambda:InvokeFunction on the versions and aliases of a function this state machine names.",
                )
            self.state_machines[spec.name] = machine


def _logical_id(fn: lambda_.IFunction) -> str:
    from aws_cdk import CfnElement

    child = fn.node.default_child
    assert isinstance(child, CfnElement)
    return Stack.of(child).get_logical_id(child)
