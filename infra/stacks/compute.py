"""Every manifest function as a Lambda: arm64, Python 3.12, the ``rampart`` layer plus the
dependency layers it lists, its own least-privilege role derived from ``Function.uses``, active
X-Ray tracing, JSON logs into a log group with retention, and the VPC when it uses PostgreSQL:
the isolated ``app`` subnets, or the ``egress`` subnets (out through the NAT, HTTPS anywhere)
when it also uses an ``External`` (a chain's RPC, a provider's API) or an API Gateway usage plan
(the gateway's management API has no VPC endpoint).

What a function uses reaches it one way for every resource (:meth:`Compute.bind`): the resource's
env var (``manifest.env_var``) carries its name, URL or ARN (an ``External``: the stage's value,
``StageConfig.externals``), and its role is granted the resource's ``actions`` on it (an
``External``: none). PostgreSQL alone is special (the RDS Proxy variables of docs/cloud.md, IAM
auth, the VPC). A ``webhook`` function gets a function URL."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import BundlingOptions, DockerImage, Duration, ILocalBundling, Stack, Tags, Token
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra import layers as layer_build
from infra.manifest import (
    MANIFEST,
    USES_SETTING,
    External,
    Function,
    Manifest,
    Postgres,
    StageSetting,
    UsagePlan,
    env_var,
    uses_value,
)
from infra.stacks.config import StageConfig
from infra.stacks.data import Data, db_login
from infra.stacks.nag import acknowledge
from infra.stacks.network import Network
from infra.stacks.readback import FUNCTION_TAG

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = lambda_.Runtime.PYTHON_3_12
assert RUNTIME.name == f"python{layer_build.PYTHON_VERSION}", "layers and runtime must agree"
ARCHITECTURE = lambda_.Architecture.ARM_64
METRICS_NAMESPACE = "Rampart"
# Never packaged: byte code, editor and build leftovers.
JUNK = ["**/__pycache__", "**/*.pyc", "**/.DS_Store", "*.egg-info"]

# Lambda's hyperplane ENIs in a VPC; EC2 supports no resource scoping for these.
VPC_ACTIONS = (
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
)


# Where a failed invocation of each kind ends up instead of a DeadLetterConfig (cdk-nag Serverless).
FAILURES_GO = {
    "api": "Invoked synchronously by API Gateway: the caller receives the failure (5xx) and retries.",
    "authorizer": "Invoked synchronously by API Gateway: a failure answers the caller 500; nothing to redeliver.",
    "webhook": "Invoked synchronously through its function URL: the provider sees the failure and redelivers.",
    "worker": "Invoked synchronously by Step Functions, whose Retry and Catch handle a failure.",
    "queue": "Fed by an SQS event source: a failed message returns to its queue, whose redrive policy moves it "
    "to the queue's DLQ after max_receive_count receives.",
    "scheduled": "Failed asynchronous invocations go to the function's SQS DLQ as an on-failure destination "
    "(EventInvokeConfig), which carries the error and supersedes DeadLetterConfig.",
    "deploy": "Invoked synchronously by the deploy trigger (a failure fails the deployment); its asynchronous "
    "failures go to its SQS DLQ as an on-failure destination.",
}


def _uses_env() -> str:
    """The variable that lists what a function uses (``name=setting`` pairs, manifest.uses_value):
    its entry stack checks at cold start that each of those settings is there."""
    from rampart.core.settings import Settings

    alias = Settings.model_fields[USES_SETTING].alias
    assert alias is not None
    return alias


USES_ENV = _uses_env()
RESERVED_ENV = frozenset({"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "RAMPART_STAGE", USES_ENV})


def handler_package(handler: str) -> str:
    """The folder of a handler's module, e.g. ``functions/health`` for
    ``functions.health.handler.handler``: what its code asset holds."""
    *package, _module, _function = handler.split(".")
    if not package:
        raise ValueError(f"handler {handler}: expected <package>.<module>.<function>")
    return "/".join(package)


def function_code_excludes(handler: str) -> list[str]:
    """Exclude everything under the repository root but the handler's package folder and the
    ``__init__.py`` of each package above it: the bundle root is the repository root, so the
    manifest's handler path (``functions.<name>.handler.handler``, or a test manifest's
    ``tests.support.fixture_functions.<name>.handler.handler``) imports as written."""
    folder = handler_package(handler)
    parents = folder.split("/")[:-1]
    kept: list[str] = []
    for depth in range(1, len(parents) + 1):
        above = "/".join(parents[:depth])
        kept += [f"!{above}", f"!{above}/__init__.py"]
    # "*" does not match dot files: ".*" keeps .git, .venv and friends out (and unwalked).
    return ["*", ".*", *kept, f"!{folder}", f"!{folder}/**", *JUNK]


@jsii.implements(ILocalBundling)
class _PythonLayerLayout:
    """Copies ``<source>/<package>`` to ``<output>/python/<package>``, where Lambda's Python
    runtime finds layer code (``/opt/python``). Runs in this process: no Docker."""

    def __init__(self, source: Path, package: str) -> None:
        self.source = source
        self.package = package

    def try_bundle(self, output_dir: str, *, image: DockerImage, **_: Any) -> bool:
        target = Path(output_dir) / "python" / self.package
        shutil.copytree(
            self.source / self.package,
            target,
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".DS_Store"),
            dirs_exist_ok=True,
        )
        return True


def rampart_layer_code() -> lambda_.Code:
    """Our package (``layers/core/rampart``) as a layer: migrations included (package data)."""
    source = ROOT / "layers" / "core"
    return lambda_.Code.from_asset(
        str(source),
        exclude=JUNK,
        bundling=BundlingOptions(
            image=DockerImage.from_registry("unused-local-bundling-only"),
            local=_PythonLayerLayout(source, "rampart"),
        ),
    )


def environment(spec: Function, stage: StageConfig, data: Data, manifest: Manifest = MANIFEST) -> dict[str, str]:
    """The env contract of docs/cloud.md that needs no other resource: the service name, the
    stage, what the function uses, PostgreSQL's proxy variables, and the manifest's ``env``.
    :meth:`Compute.bind` adds each other used resource's variable."""
    env = {
        "POWERTOOLS_SERVICE_NAME": spec.name,
        "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
        "RAMPART_STAGE": stage.name,
        USES_ENV: uses_value([spec], manifest),
    }
    if "postgres" in spec.uses:
        env |= {
            "RAMPART_DB_PROXY_ENDPOINT": data.proxy.endpoint,
            "RAMPART_DB_NAME": data.db_name,
            "RAMPART_DB_USER": db_login(spec, manifest),
        }
        if db_login(spec, manifest) == data.db_user:  # the owner sets the login roles' passwords
            env["RAMPART_DB_ROLE_SECRETS"] = ",".join(
                f"{name}={secret.secret_arn}" for name, secret in sorted(data.role_secrets.items())
            )
    declared = manifest.resources()
    bound = {
        env_var(declared[name])
        for name in spec.uses
        if not isinstance(declared[name], Postgres) and declared[name].setting is not None
    }
    for key, value in spec.env:
        if key in env or key in RESERVED_ENV or key in bound:
            raise ValueError(f"function {spec.name}: env {key} is set by the CDK app from the manifest")
        env[key] = value
    return env


Grant = Callable[[iam.IGrantable, Sequence[str]], object]  # (grantee, actions)


@dataclass(frozen=True)
class Bound:
    """A manifest resource as built: what its env var carries, and how to grant actions on it."""

    value: str
    grant: Grant


def bound_table(table: dynamodb.ITable) -> Bound:
    return Bound(table.table_name, lambda grantee, actions: table.grant(grantee, *actions))


def bound_secret(secret: secretsmanager.ISecret) -> Bound:
    def grant(grantee: iam.IGrantable, actions: Sequence[str]) -> None:
        iam.Grant.add_to_principal(grantee=grantee, actions=list(actions), resource_arns=[secret.secret_arn])
        key = secret.encryption_key
        if key is not None and "secretsmanager:GetSecretValue" in actions:
            # Secrets Manager decrypts a customer-managed-key secret with the caller's permission,
            # and only on its behalf (kms:ViaService).
            iam.Grant.add_to_principal(
                grantee=grantee,
                actions=["kms:Decrypt"],
                resource_arns=[key.key_arn],
                conditions={
                    "StringEquals": {"kms:ViaService": f"secretsmanager.{Stack.of(secret).region}.amazonaws.com"}
                },
            )

    return Bound(secret.secret_arn, grant)


def bound_queue(queue: sqs.IQueue) -> Bound:
    return Bound(queue.queue_url, lambda grantee, actions: queue.grant(grantee, *actions))


def bound_external(external: External, value: str) -> Bound:
    """An ``External``: plain configuration (its env var carries the stage's value), no grant."""
    if external.actions:
        raise ValueError(f"External {external.name} grants nothing (it names no AWS resource): drop its actions")

    def grant(grantee: iam.IGrantable, actions: Sequence[str]) -> None:
        if actions:
            raise ValueError(f"no action can be granted on External {external.name}: {', '.join(actions)}")

    return Bound(value, grant)


def bound_stage_setting(item: StageSetting, stage: str) -> Bound:
    """A ``StageSetting``: the manifest's value for ``stage`` in its env var, no grant."""

    def grant(grantee: iam.IGrantable, actions: Sequence[str]) -> None:
        if actions:
            raise ValueError(f"no action can be granted on {item.name}: {', '.join(actions)}")

    return Bound(item.value(stage), grant)


def externals_used(spec: Function, manifest: Manifest = MANIFEST) -> list[str]:
    """The ``External`` resources ``spec`` uses (by name, sorted)."""
    declared = manifest.resources()
    return sorted(name for name in spec.uses if isinstance(declared[name], External))


def reaches_outside(spec: Function, manifest: Manifest = MANIFEST) -> bool:
    """Whether ``spec`` reaches beyond the VPC's endpoints: it uses an ``External`` (the outside
    world), or an API Gateway ``UsagePlan`` (API Gateway's management API has no VPC endpoint,
    only its public one). A PostgreSQL user then runs in the egress subnets, behind the NAT,
    instead of the isolated ones."""
    declared = manifest.resources()
    return bool(externals_used(spec, manifest)) or any(isinstance(declared[name], UsagePlan) for name in spec.uses)


# Actions on a state machine's executions rather than on the machine itself.
EXECUTION_ACTIONS = frozenset({"states:DescribeExecution", "states:StopExecution", "states:GetExecutionHistory"})


def bound_state_machine(machine: sfn.IStateMachine) -> Bound:
    def grant(grantee: iam.IGrantable, actions: Sequence[str]) -> None:
        on_executions = [a for a in actions if a in EXECUTION_ACTIONS]
        on_machine = [a for a in actions if a not in EXECUTION_ACTIONS]
        if on_executions:
            machine.grant_execution(grantee, *on_executions)
            executions = machine.state_machine_arn.replace(":stateMachine:", ":execution:", 1) + ":*"
            principal = grantee.grant_principal
            if isinstance(principal, Construct) and not Token.is_unresolved(executions):
                acknowledge(
                    principal,
                    f"AwsSolutions-IAM5[Resource::{executions}]",
                    "Executions are named after ramps, unknown in advance: the grant covers only this "
                    "state machine's own executions (DescribeExecution for an operator's resume).",
                )
        if on_machine:
            machine.grant(grantee, *on_machine)

    return Bound(machine.state_machine_arn, grant)


class Compute(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: StageConfig,
        network: Network,
        data: Data,
        manifest: Manifest = MANIFEST,
    ) -> None:
        super().__init__(scope, construct_id)
        self.stage = stage
        self.manifest = manifest
        functions = manifest.functions
        self.rampart_layer = lambda_.LayerVersion(
            self,
            "RampartLayer",
            code=rampart_layer_code(),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
            description="rampart: Rampart's own package (domains, adapters, migrations)",
        )
        self.dependency_layers: dict[str, lambda_.LayerVersion] = {}
        for name in sorted({layer for fn in functions for layer in fn.layers}, key=list(layer_build.LAYERS).index):
            folder = layer_build.build(name)  # a no-op when make layers already built it
            self.dependency_layers[name] = lambda_.LayerVersion(
                self,
                f"Deps-{name}",
                code=lambda_.Code.from_asset(str(folder), exclude=[layer_build.STAMP]),
                compatible_runtimes=[RUNTIME],
                compatible_architectures=[ARCHITECTURE],
                description=layer_build.LAYERS[name].description,
            )
        self.functions: dict[str, lambda_.Function] = {}
        self.log_groups: dict[str, logs.LogGroup] = {}
        self.roles: dict[str, iam.Role] = {}
        self.urls: dict[str, lambda_.FunctionUrl] = {}
        for spec in functions:
            self.functions[spec.name] = self._function(spec, stage, network, data)

    def bind(self, resources: Mapping[str, Bound]) -> None:
        """Every function gets, for each resource it uses (PostgreSQL aside), the resource's env var
        and its ``actions`` on it: least privilege, named actions on named resources."""
        declared = self.manifest.resources()
        for spec in self.manifest.functions:
            for name in sorted(spec.uses):
                resource = declared[name]
                if isinstance(resource, Postgres):
                    continue
                built = resources.get(name)
                if built is None:
                    raise ValueError(f"function {spec.name} uses {name}, but nothing was built for it")
                if resource.setting is not None:
                    self.functions[spec.name].add_environment(env_var(resource), built.value)
                built.grant(self.roles[spec.name], spec.actions_on(resource))

    def _function(self, spec: Function, stage: StageConfig, network: Network, data: Data) -> lambda_.Function:
        scope = Construct(self, spec.name)
        log_group = logs.LogGroup(
            scope,
            "Logs",
            retention=stage.log_retention,
            removal_policy=stage.removal_policy,
            encryption_key=data.keys.logs,  # requests, principals and amounts: payment data
        )
        role = iam.Role(
            scope,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Rampart {stage.name} function {spec.name}: what infra/manifest.py says it uses",
        )
        log_group.grant_write(role)
        self.roles[spec.name] = role
        in_vpc = "postgres" in spec.uses
        if in_vpc:
            # No read of the cluster's secret: functions authenticate to the proxy with IAM tokens
            # (the IAM-coverage test found the grant unused).
            # (its own database role: rds-db:connect as that user only).
            data.proxy.grant_connect(role, db_login(spec, self.manifest))
            if db_login(spec, self.manifest) == data.db_user:
                for secret in data.role_secrets.values():
                    bound_secret(secret).grant(role, ["secretsmanager:GetSecretValue"])
            role.add_to_policy(iam.PolicyStatement(actions=list(VPC_ACTIONS), resources=["*"]))
        outside = in_vpc and reaches_outside(spec, self.manifest)
        groups: list[ec2.ISecurityGroup] = [data.client_security_group]
        subnets = network.app_subnets
        if outside:
            if network.egress_subnets is None or network.egress_security_group is None:
                raise ValueError(f"function {spec.name} uses an External, but the network was built without egress")
            groups.append(network.egress_security_group)
            subnets = network.egress_subnets
        fn = lambda_.Function(
            scope,
            "Function",
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler=spec.handler,
            code=lambda_.Code.from_asset(str(ROOT), exclude=function_code_excludes(spec.handler)),
            layers=[self.rampart_layer, *(self.dependency_layers[name] for name in spec.layers)],
            role=role,
            description=spec.description,
            timeout=Duration.seconds(spec.timeout_seconds),
            memory_size=spec.memory_mb,
            reserved_concurrent_executions=spec.concurrency,
            environment=environment(spec, stage, data, self.manifest),
            tracing=lambda_.Tracing.ACTIVE,
            logging_format=lambda_.LoggingFormat.JSON,
            application_log_level_v2=lambda_.ApplicationLogLevel.INFO,
            system_log_level_v2=lambda_.SystemLogLevel.WARN,
            log_group=log_group,
            vpc=network.vpc if in_vpc else None,
            vpc_subnets=subnets if in_vpc else None,
            security_groups=groups if in_vpc else None,
        )
        default_child = fn.node.default_child
        assert default_child is not None
        Tags.of(default_child).add(FUNCTION_TAG, spec.name)
        self.log_groups[spec.name] = log_group
        if spec.kind == "webhook":
            # Public on purpose (auth type NONE): a payment provider calls it, signing each request,
            # and the function verifies that signature itself before it acts. IAM auth would need
            # the provider to sign with AWS credentials, which no provider does.
            self.urls[spec.name] = fn.add_function_url(auth_type=lambda_.FunctionUrlAuthType.NONE)

        pinned = (
            f"Pinned to {RUNTIME.name}: the dependency layers are built for exactly this runtime "
            "(infra/layers.py PYTHON_VERSION); they move together."
        )
        acknowledge(fn, "AwsSolutions-L1", pinned)
        acknowledge(fn, "Serverless-LambdaLatestVersion", pinned)
        acknowledge(fn, "Serverless-LambdaDLQ", FAILURES_GO[spec.kind])
        acknowledge(
            role,
            "AwsSolutions-IAM5[Resource::*]",
            "X-Ray PutTraceSegments/PutTelemetryRecords"
            + (" and the Lambda VPC ENI actions" if in_vpc else "")
            + " support no resource-level scoping.",
        )
        return fn
