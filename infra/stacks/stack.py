"""One stack per stage, composed of one construct per concern, all driven by the manifest."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Duration, Stack, Tags
from constructs import Construct

from infra import manifest
from infra.stacks.api import Api
from infra.stacks.asynchronous import Asynchronous
from infra.stacks.compute import Compute
from infra.stacks.config import StageConfig
from infra.stacks.data import Data
from infra.stacks.migrations import Migrations
from infra.stacks.network import Network
from infra.stacks.observability import Observability
from infra.stacks.workflows import Workflows


def stack_name(stage: str) -> str:
    return f"rampart-{stage}"


class RampartStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, stage: StageConfig, **kwargs: Any) -> None:
        super().__init__(
            scope,
            construct_id,
            description=f"Rampart payments backend, stage {stage.name} (infra/stacks)",
            termination_protection=stage.prod,
            **kwargs,
        )
        manifest.check()
        untaggable = ["AWS::RDS::DBProxyTargetGroup"]  # CloudFormation takes no Tags there
        Tags.of(self).add("project", "rampart", exclude_resource_types=untaggable)
        Tags.of(self).add("rampart:stage", stage.name, exclude_resource_types=untaggable)

        self.network = Network(self, "Network", stage=stage)
        self.data = Data(self, "Data", stage=stage, network=self.network)
        self.compute = Compute(self, "Compute", stage=stage, network=self.network, data=self.data)
        self.asynchronous = Asynchronous(self, "Async", stage=stage, functions=self.compute.functions)
        self.workflows = Workflows(
            self, "Workflows", stage=stage, functions=self.compute.functions, queues=self.asynchronous.queues
        )
        self.api = Api(self, "Api", stage=stage, functions=self.compute.functions)
        self.migrations = [
            Migrations(
                self,
                f"Migrations-{spec.name}" if i else "Migrations",
                handler=self.compute.functions[spec.name],
                timeout=Duration.seconds(spec.timeout_seconds),
                after=[self.data],
                before=[self.api],
            )
            for i, spec in enumerate(fn for fn in manifest.FUNCTIONS if fn.kind == "deploy")
        ]
        self.observability = Observability(
            self,
            "Observability",
            stage=stage,
            functions=self.compute.functions,
            dead_letter_queues=self.asynchronous.dead_letter_queues,
            api=self.api.rest_api,
            state_machines=self.workflows.state_machines,
        )

        CfnOutput(self, "ApiUrl", value=self.api.url, description="Base URL of the HTTP API")
        CfnOutput(self, "DbProxyEndpoint", value=self.data.proxy.endpoint)
        CfnOutput(self, "DbSecretArn", value=self.data.db_secret.secret_arn)
        CfnOutput(self, "JwtKeysSecretArn", value=self.data.jwt_keys.secret_arn)
        CfnOutput(self, "AdminSecretArn", value=self.data.admin_secret.secret_arn)
        CfnOutput(self, "DocumentsBucket", value=self.data.documents.bucket_name)
        CfnOutput(self, "AlarmTopicArn", value=self.observability.topic.topic_arn)
        CfnOutput(self, "MigrateFunction", value=self.compute.functions["migrate"].function_name)
