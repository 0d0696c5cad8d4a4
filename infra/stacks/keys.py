"""Customer-managed KMS keys, one per kind of data (rotated yearly by KMS):

- ``database``: Aurora's storage and snapshots, and the cluster's credentials secret;
- ``secrets``: the manifest's secrets (JWT signing keys, the admin's credentials, the cursor key,
  webhook signing secrets, providers' credentials for us such as the PIX API key);
- ``logs``: the log groups that hold payment data (every function's logs, the API's access logs,
  state machine executions, Aurora's PostgreSQL and audit logs). CloudWatch Logs of this account
  and region may use it for its own log groups only (the encryption context names the log group).

With a key we own, the key policy (not only IAM) decides who can read the data, CloudTrail
records every use of it, and disabling it makes the data unreadable at once."""

from __future__ import annotations

from aws_cdk import Stack, Tags
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from infra.stacks.config import StageConfig
from infra.stacks.readback import KEY_TAG


class Keys(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, stage: StageConfig) -> None:
        super().__init__(scope, construct_id)
        self.database = self._key(
            "Database", "database", f"Rampart {stage.name}: Aurora storage and credentials", stage
        )
        self.secrets = self._key("Secrets", "secrets", f"Rampart {stage.name}: application secrets", stage)
        self.logs = self._key("Logs", "logs", f"Rampart {stage.name}: log groups holding payment data", stage)
        stack = Stack.of(self)
        self.logs.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchLogsOfThisAccountAndRegion",
                principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
                actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
                resources=["*"],
                conditions={
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": (
                            f"arn:{stack.partition}:logs:{stack.region}:{stack.account}:log-group:*"
                        )
                    }
                },
            )
        )

    def _key(self, construct_id: str, purpose: str, description: str, stage: StageConfig) -> kms.Key:
        key = kms.Key(
            self,
            construct_id,
            description=description,
            enable_key_rotation=True,
            removal_policy=stage.removal_policy,
            alias=f"alias/rampart-{stage.name}-{purpose}",
        )
        Tags.of(key).add(KEY_TAG, purpose)
        return key
