"""The VPC. Aurora and its proxy live in the isolated ``data`` subnets, the functions that reach
PostgreSQL in the isolated ``app`` subnets: no route leads out of either. AWS services are reached
through VPC endpoints (DynamoDB and S3 gateways; Secrets Manager, SQS and Step Functions
interfaces), whose policies admit only requests for resources of this account (data cannot be
copied out to another account's table, bucket or secret through them). Their private DNS names
serve the whole VPC, so the functions in the ``egress`` subnets reach AWS through them too.

The functions that reach the outside world (a chain's RPC, a payment provider's API: those that
use a manifest ``External``) run in the ``egress`` subnets instead, whose one way out is a NAT
gateway in the ``public`` subnets (``StageConfig.nat_gateways``: one per zone in prod, one
elsewhere); they also wear :attr:`Network.egress_security_group` (HTTPS anywhere). The ``public``
subnets hold the NAT gateways and nothing else, and launch nothing with a public address.

Every security group of the stage is created without the implicit allow-all egress: each
egress rule is written where the connection is (here and in ``data.py``)."""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.stacks.config import StageConfig

APP_SUBNETS = "app"
DATA_SUBNETS = "data"
PUBLIC_SUBNETS = "public"  # the NAT gateways only
EGRESS_SUBNETS = "egress"  # the functions that use an External: out through the NAT


class Network(Construct):
    """``egress``: whether any function reaches the outside world. Without one (a manifest with no
    ``External`` user) there are no ``public`` or ``egress`` subnets, no NAT and no internet
    gateway: no route leaves the VPC at all."""

    def __init__(self, scope: Construct, construct_id: str, *, stage: StageConfig, egress: bool = True) -> None:
        super().__init__(scope, construct_id)
        self.egress = egress
        outside = [
            ec2.SubnetConfiguration(
                name=PUBLIC_SUBNETS,
                subnet_type=ec2.SubnetType.PUBLIC,
                cidr_mask=26,
                map_public_ip_on_launch=False,  # NAT gateways bring their own Elastic IP
            ),
            ec2.SubnetConfiguration(name=EGRESS_SUBNETS, subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS, cidr_mask=22),
        ]
        flow_logs = logs.LogGroup(self, "FlowLogs", retention=stage.log_retention, removal_policy=stage.removal_policy)
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr("10.40.0.0/16"),
            availability_zones=stage.availability_zones,
            nat_gateways=stage.nat_gateways if egress else 0,
            nat_gateway_subnets=ec2.SubnetSelection(subnet_group_name=PUBLIC_SUBNETS) if egress else None,
            # public and egress come after app and data, so that their address ranges stay what they were.
            subnet_configuration=[
                ec2.SubnetConfiguration(name=APP_SUBNETS, subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=22),
                ec2.SubnetConfiguration(name=DATA_SUBNETS, subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=24),
                *(outside if egress else []),
            ],
            flow_logs={
                "All": ec2.FlowLogOptions(
                    destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_logs),
                    traffic_type=ec2.FlowLogTrafficType.ALL,
                )
            },
        )
        self.app_subnets = ec2.SubnetSelection(subnet_group_name=APP_SUBNETS)
        self.data_subnets = ec2.SubnetSelection(subnet_group_name=DATA_SUBNETS)
        self.egress_subnets: ec2.SubnetSelection | None = None
        self.egress_security_group: ec2.SecurityGroup | None = None
        if egress:
            self.egress_subnets = ec2.SubnetSelection(subnet_group_name=EGRESS_SUBNETS)
            # Worn (beside the PostgreSQL clients' group) by the functions that use an External:
            # the chains' RPC and the providers' APIs are HTTPS on addresses we do not control.
            self.egress_security_group = ec2.SecurityGroup(
                self,
                "EgressSecurityGroup",
                vpc=self.vpc,
                description="Rampart functions that reach chains and providers: HTTPS out through the NAT",
                allow_all_outbound=False,
            )
            self.egress_security_group.add_egress_rule(
                ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "HTTPS to chains' RPC and providers' APIs"
            )
        account = Stack.of(self).account
        self.dynamodb_endpoint = self.vpc.add_gateway_endpoint(
            "DynamoDb", service=ec2.GatewayVpcEndpointAwsService.DYNAMODB
        )
        self.s3_endpoint = self.vpc.add_gateway_endpoint("S3", service=ec2.GatewayVpcEndpointAwsService.S3)
        for endpoint, service in ((self.dynamodb_endpoint, "dynamodb"), (self.s3_endpoint, "s3")):
            endpoint.add_to_policy(own_account_only(service, account))
        # Closed by default; the data construct admits exactly the security groups that read secrets.
        self.secrets_endpoint_security_group, self.secrets_endpoint = self._interface_endpoint(
            "SecretsManager",
            "SecretsEndpointSecurityGroup",
            "secretsmanager",
            ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
            "Secrets Manager endpoint: HTTPS from the groups that read secrets, no egress",
        )
        # Secret rotation asks for a random password, an action on no resource (so no resource account).
        self.secrets_endpoint.add_to_policy(
            iam.PolicyStatement(
                sid="RandomPasswordsForOurPrincipals",
                principals=[iam.AnyPrincipal()],
                actions=["secretsmanager:GetRandomPassword"],
                resources=["*"],
                conditions={"StringEquals": {"aws:PrincipalAccount": account}},
            )
        )
        # SQS for the functions in the VPC that send to a queue (the webhook path, its requeue schedule).
        self.sqs_endpoint_security_group, self.sqs_endpoint = self._interface_endpoint(
            "Sqs",
            "SqsEndpointSecurityGroup",
            "sqs",
            ec2.InterfaceVpcEndpointAwsService.SQS,
            "SQS endpoint: HTTPS from Rampart functions, no egress",
        )
        # Step Functions for the functions that start a ramp's execution (and, from the isolated
        # subnets, complete or stop one): AWS's API stays inside the VPC, for this account only.
        self.states_endpoint_security_group, self.states_endpoint = self._interface_endpoint(
            "StepFunctions",
            "StepFunctionsEndpointSecurityGroup",
            "states",
            ec2.InterfaceVpcEndpointAwsService.STEP_FUNCTIONS,
            "Step Functions endpoint: HTTPS from Rampart functions, no egress",
        )

    def _interface_endpoint(
        self,
        construct_id: str,
        group_id: str,
        service_prefix: str,
        service: ec2.InterfaceVpcEndpointAwsService,
        description: str,
    ) -> tuple[ec2.SecurityGroup, ec2.InterfaceVpcEndpoint]:
        """A closed interface endpoint in the app subnets (its group admits whom the data construct
        says) whose policy admits resources of this account only."""
        group = ec2.SecurityGroup(
            self,
            group_id,
            vpc=self.vpc,
            description=description,
            allow_all_outbound=False,
        )
        endpoint = self.vpc.add_interface_endpoint(
            construct_id,
            service=service,
            subnets=self.app_subnets,
            private_dns_enabled=True,
            open=False,
            security_groups=[group],
        )
        endpoint.add_to_policy(own_account_only(service_prefix, Stack.of(self).account))
        return group, endpoint


def own_account_only(service: str, account: str) -> iam.PolicyStatement:
    """An endpoint policy statement: any action of ``service``, on resources of ``account`` only."""
    return iam.PolicyStatement(
        sid=f"{service.capitalize()}OfThisAccountOnly".replace("manager", "Manager"),
        principals=[iam.AnyPrincipal()],
        actions=[f"{service}:*"],
        resources=["*"],
        conditions={"StringEquals": {"aws:ResourceAccount": account}},
    )
