"""Every manifest function as a Lambda: arm64, Python 3.12, the ``rampart`` layer plus the
dependency layers it lists, its own least-privilege role derived from ``Function.uses``, active
X-Ray tracing, JSON logs into a log group with retention, and the VPC when it uses PostgreSQL."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import BundlingOptions, DockerImage, Duration, ILocalBundling, Tags
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra import layers as layer_build
from infra.manifest import FUNCTIONS, RESOURCE_ENV, RESOURCE_TABLE, Function, Resource
from infra.stacks.config import StageConfig
from infra.stacks.data import Data
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

TABLE_ACTIONS = ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem")
# Lambda's hyperplane ENIs in a VPC; EC2 supports no resource scoping for these.
VPC_ACTIONS = (
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
)
RESERVED_ENV = frozenset({"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "RAMPART_STAGE"})


def function_code_excludes(name: str) -> list[str]:
    """Exclude everything under the repository root but ``functions/__init__.py`` and
    ``functions/<name>/``: the bundle root is the repository root, so the manifest's handler
    path ``functions.<name>.handler.handler`` imports as written."""
    # "*" does not match dot files: ".*" keeps .git, .venv and friends out (and unwalked).
    return ["*", ".*", "!functions", "!functions/__init__.py", f"!functions/{name}", f"!functions/{name}/**", *JUNK]


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


def environment(spec: Function, stage: StageConfig, data: Data) -> dict[str, str]:
    """The env contract of docs/cloud.md, derived from ``uses``."""
    env = {
        "POWERTOOLS_SERVICE_NAME": spec.name,
        "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
        "RAMPART_STAGE": stage.name,
    }
    if "postgres" in spec.uses:
        env |= {
            "RAMPART_DB_SECRET_ARN": data.db_secret.secret_arn,
            "RAMPART_DB_PROXY_ENDPOINT": data.proxy.endpoint,
            "RAMPART_DB_NAME": data.db_name,
            "RAMPART_DB_USER": data.db_user,
        }
    for resource, table in RESOURCE_TABLE.items():
        if resource in spec.uses:
            env[RESOURCE_ENV[resource]] = data.tables[table].table_name
    if "jwt_keys" in spec.uses:
        env[RESOURCE_ENV["jwt_keys"]] = data.jwt_keys.secret_arn
    if "admin_secret" in spec.uses:
        env[RESOURCE_ENV["admin_secret"]] = data.admin_secret.secret_arn
    for key, value in spec.env:
        if key in env or key in RESERVED_ENV:
            raise ValueError(f"function {spec.name}: env {key} is set by the CDK app from the manifest")
        env[key] = value
    return env


def grant(spec: Function, role: iam.Role, data: Data) -> None:
    """Least privilege from ``uses``: named actions on named resources, never a wildcard action."""
    uses: frozenset[Resource] = spec.uses
    if "postgres" in uses:
        data.proxy.grant_connect(role, data.db_user)
        data.db_secret.grant_read(role)
    for resource, table in RESOURCE_TABLE.items():
        if resource in uses:
            data.tables[table].grant(role, *TABLE_ACTIONS)
    if "jwt_keys" in uses:
        data.jwt_keys.grant_read(role)
    if "admin_secret" in uses:
        data.admin_secret.grant_read(role)


class Compute(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: StageConfig,
        network: Network,
        data: Data,
        functions: tuple[Function, ...] = FUNCTIONS,
    ) -> None:
        super().__init__(scope, construct_id)
        self.stage = stage
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
        for spec in functions:
            self.functions[spec.name] = self._function(spec, stage, network, data)

    def _function(self, spec: Function, stage: StageConfig, network: Network, data: Data) -> lambda_.Function:
        scope = Construct(self, spec.name)
        log_group = logs.LogGroup(scope, "Logs", retention=stage.log_retention, removal_policy=stage.removal_policy)
        role = iam.Role(
            scope,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Rampart {stage.name} function {spec.name}: what infra/manifest.py says it uses",
        )
        log_group.grant_write(role)
        grant(spec, role, data)
        in_vpc = "postgres" in spec.uses
        if in_vpc:
            role.add_to_policy(iam.PolicyStatement(actions=list(VPC_ACTIONS), resources=["*"]))
        fn = lambda_.Function(
            scope,
            "Function",
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler=spec.handler,
            code=lambda_.Code.from_asset(str(ROOT), exclude=function_code_excludes(spec.name)),
            layers=[self.rampart_layer, *(self.dependency_layers[name] for name in spec.layers)],
            role=role,
            description=spec.description,
            timeout=Duration.seconds(spec.timeout_seconds),
            memory_size=spec.memory_mb,
            environment=environment(spec, stage, data),
            tracing=lambda_.Tracing.ACTIVE,
            logging_format=lambda_.LoggingFormat.JSON,
            application_log_level_v2=lambda_.ApplicationLogLevel.INFO,
            system_log_level_v2=lambda_.SystemLogLevel.WARN,
            log_group=log_group,
            vpc=network.vpc if in_vpc else None,
            vpc_subnets=network.app_subnets if in_vpc else None,
            security_groups=[data.client_security_group] if in_vpc else None,
        )
        default_child = fn.node.default_child
        assert default_child is not None
        Tags.of(default_child).add(FUNCTION_TAG, spec.name)
        self.log_groups[spec.name] = log_group

        acknowledge(
            fn,
            "AwsSolutions-L1",
            f"Pinned to {RUNTIME.name}: the dependency layers are built for exactly this runtime "
            "(infra/layers.py PYTHON_VERSION); they move together.",
        )
        acknowledge(
            role,
            "AwsSolutions-IAM5[Resource::*]",
            "X-Ray PutTraceSegments/PutTelemetryRecords"
            + (" and the Lambda VPC ENI actions" if in_vpc else "")
            + " support no resource-level scoping.",
        )
        return fn
