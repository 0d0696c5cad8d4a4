"""Stateful resources: Aurora PostgreSQL Serverless v2 behind RDS Proxy, the manifest's DynamoDB
tables and secrets (each generated in the shape its ``twin`` kind names; a ``world`` secret, a
provider's credential for us, as a placeholder an operator replaces), and the documents bucket."""

from __future__ import annotations

import json
import string

from aws_cdk import Duration, Tags
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_logs as logs
from aws_cdk import aws_rds as rds
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.manifest import MANIFEST, OWNER_ROLE, Function, Manifest, Secret, TwinSecret
from infra.stacks.config import StageConfig
from infra.stacks.keys import Keys
from infra.stacks.nag import acknowledge
from infra.stacks.network import Network
from infra.stacks.readback import SECRET_TAG, TABLE_TAG

DB_NAME = "rampart"
DB_USER = OWNER_ROLE  # the cluster's master user: the manifest's owner role
DB_PORT = 5432  # Aurora PostgreSQL and RDS Proxy
ENGINE_VERSION = rds.AuroraPostgresEngineVersion.VER_16_13


def proxy_borrow_timeout(manifest: Manifest) -> int:
    """Seconds RDS Proxy waits for a free database connection before refusing a client: half the
    shortest timeout of the functions that connect, so a saturated database answers a clear error
    while the function can still reply (never a Lambda timeout)."""
    timeouts = [fn.timeout_seconds for fn in manifest.functions if "postgres" in fn.uses]
    return max(1, min(timeouts, default=10) // 2)


def db_login(fn: Function, manifest: Manifest = MANIFEST) -> str:
    """The database user ``fn`` connects as through the proxy: its role, the master user for the owner."""
    assert fn.db_role is not None, f"{fn.name} has no db_role"
    return DB_USER if manifest.db_role(fn.db_role).owner else fn.db_role


class Data(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: StageConfig,
        network: Network,
        keys: Keys,
        manifest: Manifest = MANIFEST,
    ) -> None:
        super().__init__(scope, construct_id)
        vpc = network.vpc
        self.keys = keys
        self.db_name = DB_NAME
        self.db_user = DB_USER

        # --- Aurora PostgreSQL Serverless v2 -------------------------------------------------
        cluster_id = f"rampart-{stage.name}"
        # RDS creates this group on first log line, without retention; owning it sets retention.
        db_logs = logs.LogGroup(
            self,
            "AuroraLogs",
            log_group_name=f"/aws/rds/cluster/{cluster_id}/postgresql",
            retention=stage.log_retention,
            removal_policy=stage.removal_policy,
            encryption_key=keys.logs,  # pgaudit and connection logs
        )
        generated = rds.DatabaseSecret(self, "AuroraSecret", username=DB_USER, encryption_key=keys.database)
        generated.apply_removal_policy(stage.removal_policy)  # prod keeps it beside the final snapshot
        self.db_security_group = ec2.SecurityGroup(
            self,
            "AuroraSecurityGroup",
            vpc=vpc,
            description="Aurora: reachable from RDS Proxy and secret rotation only",
            allow_all_outbound=False,  # it starts no connection
        )
        engine = rds.DatabaseClusterEngine.aurora_postgres(version=ENGINE_VERSION)
        self.parameter_group = rds.ParameterGroup(
            self,
            "AuroraParameters",
            engine=engine,
            description=f"Rampart {stage.name}: TLS only, connection and audit logging",
            parameters=DB_PARAMETERS,
        )
        self.cluster = rds.DatabaseCluster(
            self,
            "Aurora",
            cluster_identifier=cluster_id,
            engine=engine,
            parameter_group=self.parameter_group,
            credentials=rds.Credentials.from_secret(generated),
            default_database_name=DB_NAME,
            port=DB_PORT,
            writer=rds.ClusterInstance.serverless_v2("Writer", publicly_accessible=False),
            readers=[
                rds.ClusterInstance.serverless_v2(f"Reader{i + 1}", publicly_accessible=False, scale_with_writer=True)
                for i in range(stage.db_readers)
            ],
            serverless_v2_min_capacity=stage.db_min_acu,
            serverless_v2_max_capacity=stage.db_max_acu,
            vpc=vpc,
            vpc_subnets=network.data_subnets,
            security_groups=[self.db_security_group],
            storage_encrypted=True,
            storage_encryption_key=keys.database,
            iam_authentication=True,
            deletion_protection=stage.prod,
            removal_policy=stage.db_removal_policy,
            backup=rds.BackupProps(retention=Duration.days(stage.db_backup_days)),
            cloudwatch_logs_exports=["postgresql"],
            copy_tags_to_snapshot=True,
        )
        self.cluster.node.add_dependency(db_logs)
        secret = self.cluster.secret
        assert secret is not None, "generated credentials always come with a secret"
        self.db_secret: secretsmanager.ISecret = secret
        Tags.of(generated).add(SECRET_TAG, "postgres")

        rotation_security_group = ec2.SecurityGroup(
            self,
            "RotationSecurityGroup",
            vpc=vpc,
            description="Secrets Manager hosted rotation of the Aurora secret",
            allow_all_outbound=False,
        )
        self.db_secret.add_rotation_schedule(
            "Rotation",
            hosted_rotation=secretsmanager.HostedRotation.postgre_sql_single_user(
                vpc=vpc, vpc_subnets=network.app_subnets, security_groups=[rotation_security_group]
            ),
            automatically_after=Duration.days(30),
        )
        self.cluster.connections.allow_default_port_from(rotation_security_group, "secret rotation")

        # --- A login per database role of the manifest (migrations/0008.roles.sql) ------------
        # Each with its own generated secret, which the proxy logs in with (an auth entry each)
        # and the migrate function sets as the role's password; rotated like the cluster's.
        self.role_secrets: dict[str, secretsmanager.ISecret] = {}  # as generated (with their key)
        attached_secrets: list[secretsmanager.ISecret] = []  # with the cluster's host: what the proxy reads
        for db_role in manifest.login_roles():
            role_secret = rds.DatabaseSecret(
                self, f"DbRole-{db_role.name}", username=db_role.name, encryption_key=keys.database
            )
            role_secret.apply_removal_policy(stage.removal_policy)
            Tags.of(role_secret).add(SECRET_TAG, f"postgres:{db_role.name}")
            attached = role_secret.attach(self.cluster)
            attached.add_rotation_schedule(
                "Rotation",
                hosted_rotation=secretsmanager.HostedRotation.postgre_sql_single_user(
                    vpc=vpc, vpc_subnets=network.app_subnets, security_groups=[rotation_security_group]
                ),
                automatically_after=Duration.days(30),
            )
            self.role_secrets[db_role.name] = role_secret
            attached_secrets.append(attached)

        # --- RDS Proxy: what every function connects to, with IAM auth and TLS -----------------
        self.proxy_security_group = ec2.SecurityGroup(
            self,
            "ProxySecurityGroup",
            vpc=vpc,
            description="RDS Proxy: reachable from Rampart functions only",
            allow_all_outbound=False,  # its one egress rule: to Aurora (below)
        )
        self.proxy = self.cluster.add_proxy(
            "Proxy",
            secrets=[self.db_secret, *attached_secrets],  # one auth entry per login
            vpc=vpc,
            vpc_subnets=network.data_subnets,
            security_groups=[self.proxy_security_group],
            iam_auth=True,
            require_tls=True,
            borrow_timeout=Duration.seconds(proxy_borrow_timeout(manifest)),
        )
        self.cluster.connections.allow_default_port_from(self.proxy_security_group, "RDS Proxy")
        # The functions that use PostgreSQL wear this group; the proxy admits it.
        self.client_security_group = ec2.SecurityGroup(
            self,
            "ClientSecurityGroup",
            vpc=vpc,
            description="Rampart functions that reach PostgreSQL",
            allow_all_outbound=False,
        )
        self.proxy.connections.allow_from(self.client_security_group, ec2.Port.tcp(DB_PORT), "Rampart functions")
        network.sqs_endpoint.connections.allow_default_port_from(self.client_security_group, "sends to queues")
        network.states_endpoint.connections.allow_default_port_from(
            self.client_security_group, "starts and completes executions"
        )
        for reader in (self.client_security_group, rotation_security_group):
            network.secrets_endpoint.connections.allow_default_port_from(reader, "reads secrets")
            # DynamoDB and S3 through their gateway endpoints (no route leads anywhere else: no NAT,
            # no internet gateway). Their address ranges are regional prefix lists, which only a
            # lookup at synthesis would name; HTTPS to any address is the narrowest rule without one.
            reader.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "HTTPS to the gateway endpoints")

        if not stage.prod:
            acknowledge(
                self.cluster,
                "AwsSolutions-RDS10",
                f"{stage.name} is disposable; deletion protection is on in prod (StageConfig.prod).",
            )

        # --- DynamoDB tables from the manifest -------------------------------------------------
        self.tables: dict[str, dynamodb.Table] = {}
        for spec in manifest.tables:
            table = dynamodb.Table(
                self,
                f"Table-{spec.name}",
                partition_key=dynamodb.Attribute(name=spec.partition_key, type=dynamodb.AttributeType.STRING),
                sort_key=(
                    dynamodb.Attribute(name=spec.sort_key, type=dynamodb.AttributeType.STRING)
                    if spec.sort_key
                    else None
                ),
                billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
                point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                    point_in_time_recovery_enabled=True
                ),
                time_to_live_attribute=spec.ttl_attribute,
                encryption=dynamodb.TableEncryption.AWS_MANAGED,
                deletion_protection=stage.prod,
                removal_policy=stage.removal_policy,
            )
            Tags.of(table).add(TABLE_TAG, spec.name)
            self.tables[spec.name] = table

        # --- Documents bucket -------------------------------------------------------------------
        access_logs = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(365 if stage.prod else 30))],
            removal_policy=stage.removal_policy,
        )
        acknowledge(
            access_logs,
            "AwsSolutions-S1",
            "This bucket receives the documents bucket's server access logs; logging it too would only recurse.",
        )
        self.documents = s3.Bucket(
            self,
            "Documents",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=access_logs,
            server_access_logs_prefix="documents/",
            removal_policy=stage.removal_policy,
        )

        # --- Application secrets from the manifest, generated at deploy ----------------------------
        self.secrets: dict[str, secretsmanager.Secret] = {
            spec.name: self._secret(spec, stage) for spec in manifest.secrets
        }

    def _secret(self, spec: Secret, stage: StageConfig) -> secretsmanager.Secret:
        """A generated secret of the shape its ``twin`` kind names (the twin makes the same shape)."""
        generator, rotation = SECRET_SHAPES[spec.twin]
        secret = secretsmanager.Secret(
            self,
            SECRET_IDS.get(spec.name, f"Secret-{spec.name}"),
            description=f"Rampart {stage.name}: {SECRET_DESCRIPTIONS[spec.twin]}",
            generate_secret_string=generator,
            removal_policy=stage.removal_policy,
            encryption_key=self.keys.secrets,
        )
        acknowledge(secret, "AwsSolutions-SMG4", rotation)
        Tags.of(secret).add(SECRET_TAG, spec.name)
        return secret


# Aurora's cluster parameters: TLS required for every connection (RDS Proxy's own included), each
# connection and disconnection logged, and pgaudit's session audit of DDL, role and privilege
# changes and data writes outside the ledger's functions. Statements' parameters are not logged
# (they would put e-mails and password hashes into the logs).
DB_PARAMETERS = {
    "rds.force_ssl": "1",
    "log_connections": "1",
    "log_disconnections": "1",
    "shared_preload_libraries": "pg_stat_statements,pgaudit",
    "pgaudit.log": "ddl,role,write",
    "pgaudit.log_parameter": "0",
    "pgaudit.log_catalog": "0",
    "pgaudit.role": "rds_pgaudit",
}

# Construct ids of the secrets that predate the manifest's Secret: a new logical id would replace
# the secret, and with it every signing key and the admin's password.
SECRET_IDS = {"jwt_keys": "JwtKeys", "admin": "AdminSecret"}
SECRET_DESCRIPTIONS: dict[TwinSecret, str] = {
    "jwt_keys": "JWT signing keys by kid",
    "admin": "credentials of the seeded admin",
    "random_key": "a generated key, 64 hex characters",
    "webhook_secret": "a provider's Standard Webhooks signing secrets (whsec_..., newest first)",
    "world": "a provider's credential for us (e.g. our API key at the PIX provider), set by an operator",
}
HEX_DIGITS = frozenset("0123456789abcdef")
SECRET_SHAPES: dict[TwinSecret, tuple[secretsmanager.SecretStringGenerator, str]] = {
    # {"active_kid": kid, kid: secret, …}; adding a kid and moving active_kid rotates without
    # invalidating tokens signed with the previous key.
    "jwt_keys": (
        secretsmanager.SecretStringGenerator(
            secret_string_template=json.dumps({"active_kid": "k1"}),
            generate_string_key="k1",
            password_length=64,
            exclude_punctuation=True,
        ),
        "Signing keys rotate by adding a kid and moving active_kid (docs/cloud.md, 'Set secrets'); a "
        "single-value rotation Lambda would invalidate every live token.",
    ),
    # The admin the migrate function seeds: {"email": …, "password": …}.
    "admin": (
        secretsmanager.SecretStringGenerator(
            secret_string_template=json.dumps({"email": "admin@rampart.example"}),
            generate_string_key="password",
            password_length=32,
            exclude_punctuation=True,
        ),
        "Operator-held credentials: an operator changes them (docs/cloud.md, 'Set secrets') and the next "
        "deploy's migrate run applies them.",
    ),
    # 64 lowercase hex characters (32 random bytes), the shape the twin generates.
    "random_key": (
        secretsmanager.SecretStringGenerator(
            password_length=64,
            exclude_characters="".join(sorted(set(string.ascii_lowercase) - HEX_DIGITS)),
            exclude_uppercase=True,
            exclude_punctuation=True,
            include_space=False,
            require_each_included_type=False,
        ),
        "A random key with no external counterpart: an operator replaces it with put-secret-value "
        "(docs/cloud.md, 'Set secrets'); a rotation Lambda would only do the same on a timer.",
    ),
    # A placeholder of 32 base64 characters (24 bytes; the whsec_ prefix is optional to the
    # verifier) until an operator puts the provider's own secret (docs/webhooks.md).
    "webhook_secret": (
        secretsmanager.SecretStringGenerator(
            password_length=32,
            exclude_punctuation=True,
            include_space=False,
        ),
        "The provider issues this secret and rotates it on its side: an operator puts the new one in "
        "front of the old (docs/webhooks.md, 'Rotation'); we cannot rotate it alone.",
    ),
    # What a provider issued to us (the twin takes it from its world process). Deployed with a
    # random placeholder of 48 letters and digits, which the provider refuses (so a function fails
    # loudly, not silently), until an operator puts the provider's value (docs/cloud.md, "Set secrets").
    "world": (
        secretsmanager.SecretStringGenerator(
            password_length=48,
            exclude_punctuation=True,
            include_space=False,
        ),
        "The provider issues this credential and rotates it on its side: an operator puts the new value "
        "(docs/cloud.md, 'Set secrets'); a rotation Lambda cannot mint a provider's key.",
    ),
}
