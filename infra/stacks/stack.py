"""One stack per stage, composed of one construct per concern, all driven by the manifest."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Duration, Environment, Stack, Tags
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.manifest import MANIFEST, Manifest
from infra.stacks.api import Api
from infra.stacks.asynchronous import Asynchronous
from infra.stacks.compute import (
    Bound,
    Compute,
    bound_external,
    bound_queue,
    bound_secret,
    bound_stage_setting,
    bound_state_machine,
    bound_table,
    reaches_outside,
)
from infra.stacks.config import StageConfig
from infra.stacks.data import Data
from infra.stacks.keys import Keys
from infra.stacks.migrations import Migrations
from infra.stacks.network import Network
from infra.stacks.observability import Observability
from infra.stacks.workflows import Workflows, state_machine_arn


def stack_name(stage: str) -> str:
    return f"rampart-{stage}"


def output_id(name: str, suffix: str) -> str:
    """A CloudFormation output id from a manifest name: ``jwt_keys`` → ``JwtKeys<suffix>``."""
    return "".join(part[:1].upper() + part[1:] for part in name.replace("-", "_").split("_")) + suffix


class RampartStack(Stack):
    """Built from a :class:`~infra.manifest.Manifest`: Rampart's by default; tests hand it a
    manifest of fixture functions (never deployed)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: StageConfig,
        manifest: Manifest = MANIFEST,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            description=f"Rampart payments backend, stage {stage.name} (infra/stacks)",
            termination_protection=stage.prod,
            env=Environment(account=stage.account, region=stage.region),
            **kwargs,
        )
        manifest.check()
        self.manifest = manifest
        # Before anything is built: a stage without a value for an External a function uses fails
        # here, by name (StageConfig.externals).
        used = {name for fn in manifest.functions for name in fn.uses}
        externals = {e.name: e for e in manifest.externals if e.name in used}
        values = stage.external_values(externals)
        untaggable = ["AWS::RDS::DBProxyTargetGroup"]  # CloudFormation takes no Tags there
        Tags.of(self).add("project", "rampart", exclude_resource_types=untaggable)
        Tags.of(self).add("rampart:stage", stage.name, exclude_resource_types=untaggable)

        self.keys = Keys(self, "Keys", stage=stage)
        # A way out of the VPC (NAT) only when a function in it reaches the outside world.
        egress = any("postgres" in fn.uses and reaches_outside(fn, manifest) for fn in manifest.functions)
        self.network = Network(self, "Network", stage=stage, egress=egress)
        self.data = Data(self, "Data", stage=stage, network=self.network, keys=self.keys, manifest=manifest)
        self.compute = Compute(self, "Compute", stage=stage, network=self.network, data=self.data, manifest=manifest)
        self.asynchronous = Asynchronous(
            self, "Async", stage=stage, functions=self.compute.functions, manifest=manifest
        )
        self.workflows = Workflows(
            self,
            "Workflows",
            stage=stage,
            functions=self.compute.functions,
            queues=self.asynchronous.queues,
            state_machines=manifest.state_machines,
            logs_key=self.keys.logs,
        )
        bound: dict[str, Bound] = {
            **{name: bound_table(table) for name, table in self.data.tables.items()},
            **{name: bound_secret(secret) for name, secret in self.data.secrets.items()},
            **{name: bound_queue(queue) for name, queue in self.asynchronous.queues.items()},
            # By their name-derived ARNs, not the constructs: a worker the machine invokes may also
            # complete its tasks (SendTaskSuccess), which would otherwise be a dependency cycle.
            **{
                name: bound_state_machine(
                    sfn.StateMachine.from_state_machine_arn(
                        self, f"{name}-ByName", state_machine_arn(self, stage, name)
                    )
                )
                for name in self.workflows.state_machines
            },
            **{name: bound_external(externals[name], value) for name, value in values.items()},
            **{item.name: bound_stage_setting(item, stage.name) for item in manifest.stage_settings},
        }
        # No REST API for a manifest without routes (a test manifest of other kinds). Built before
        # the functions are bound: its usage plans are resources a function may use.
        self.api = (
            Api(
                self,
                "Api",
                stage=stage,
                functions=self.compute.functions,
                manifest=manifest,
                logs_key=self.keys.logs,
                secrets=self.data.secrets,
            )
            if manifest.routes()
            else None
        )
        if self.api is not None:
            bound |= {plan.name: self.api.usage_plan_bound(plan) for plan in manifest.usage_plans}
        self.compute.bind(bound)
        self.migrations = [
            Migrations(
                self,
                f"Migrations-{spec.name}" if i else "Migrations",
                handler=self.compute.functions[spec.name],
                timeout=Duration.seconds(spec.timeout_seconds),
                after=[self.data],
                before=[self.api] if self.api else [],
            )
            for i, spec in enumerate(manifest.of_kind("deploy"))
        ]
        self.observability = Observability(
            self,
            "Observability",
            stage=stage,
            functions=self.compute.functions,
            dead_letter_queues=self.asynchronous.dead_letter_queues,
            api=self.api.rest_api if self.api else None,
            state_machines=self.workflows.state_machines,
            manifest=manifest,
            proxy=self.data.proxy,
            cluster=self.data.cluster,
            tables=self.data.tables,
        )

        if self.api:
            CfnOutput(self, "ApiUrl", value=self.api.url, description="Base URL of the HTTP API")
        CfnOutput(self, "DbProxyEndpoint", value=self.data.proxy.endpoint)
        CfnOutput(self, "DbSecretArn", value=self.data.db_secret.secret_arn)
        for name, secret in self.data.secrets.items():
            CfnOutput(self, output_id(name, "SecretArn"), value=secret.secret_arn)
        CfnOutput(self, "DocumentsBucket", value=self.data.documents.bucket_name)
        CfnOutput(self, "AlarmTopicArn", value=self.observability.topic.topic_arn)
        for spec in manifest.of_kind("deploy"):
            CfnOutput(self, output_id(spec.name, "Function"), value=self.compute.functions[spec.name].function_name)
        for name, url in self.compute.urls.items():
            CfnOutput(self, output_id(name, "Url"), value=url.url, description=f"Function URL of webhook {name}")

    def _machine_by_name(self, stage: StageConfig, name: str) -> sfn.IStateMachine:
        return sfn.StateMachine.from_state_machine_arn(self, f"{name}-ByName", state_machine_arn(self, stage, name))
