"""The migrate function runs on every deploy, after the database and before the API: a CDK
Trigger (a custom resource that invokes the function synchronously, so a failed migration fails
the deployment and CloudFormation rolls back).

A trigger re-runs when its properties change: when the function changes (new version), and when
``DeployId`` does — the fingerprint of the migration files by default, or ``-c
rampart:deployId=<anything new>`` to force a run on a deploy that changes neither."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

from aws_cdk import CfnResource, CustomResource, Duration, triggers
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

ROOT = Path(__file__).resolve().parents[2]
MIGRATIONS = ROOT / "layers" / "core" / "rampart" / "adapters" / "postgres" / "migrations"
DEPLOY_ID_CONTEXT = "rampart:deployId"


def migrations_fingerprint(folder: Path = MIGRATIONS) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.glob("*.sql")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


class Migrations(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        handler: lambda_.Function,
        timeout: Duration,
        after: Sequence[Construct],
        before: Sequence[Construct],
    ) -> None:
        super().__init__(scope, construct_id)
        self.trigger = triggers.Trigger(
            self,
            "Run",
            handler=handler,
            invocation_type=triggers.InvocationType.REQUEST_RESPONSE,
            timeout=timeout,
            execute_on_handler_change=True,
            execute_after=list(after),
            execute_before=list(before),
        )
        custom = self.trigger.node.find_child("Default")
        assert isinstance(custom, CustomResource)
        cfn = custom.node.default_child
        assert isinstance(cfn, CfnResource)
        self.deploy_id = str(self.node.try_get_context(DEPLOY_ID_CONTEXT) or migrations_fingerprint())
        cfn.add_property_override("DeployId", self.deploy_id)
        self.custom_resource = cfn
