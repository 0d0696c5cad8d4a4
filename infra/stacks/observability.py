"""Alarms to one encrypted SNS topic that CloudWatch may publish to and the stage's subscribers
(``StageConfig.alarm_emails``, plus ``-c rampart:alarmEmail=…``) receive, and one CloudWatch
dashboard for the stage.

Alarms: every DLQ's depth > 0; every function's errors > 0 (the authorizer's refusals, which it
must raise for API Gateway to answer 401, are subtracted: they are counted as its
``AuthorizerRefused`` metric); every function's throttles > 0; every scheduled function's
heartbeat (no invocation in 5 minutes); each function's own metric alarms (``Function.alarms``:
the ramp watch's paused ramps and reconciliation differences); API 5xx and p99 latency; state machine failures and
time-outs; RDS Proxy borrow latency and client connections; Aurora capacity; DynamoDB system
errors and throttles per table."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_rds as rds
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.manifest import MANIFEST, Manifest
from infra.stacks.compute import METRICS_NAMESPACE
from infra.stacks.config import StageConfig
from infra.stacks.nag import acknowledge

ALARM_EMAIL_CONTEXT = "rampart:alarmEmail"
FIVE_MINUTES = Duration.minutes(5)
REFUSED_METRIC = "AuthorizerRefused"  # rampart.api.authorizer counts each refused credential
PROXY_BORROW_P99_MICROSECONDS = 500_000  # RDS Proxy reports borrow latency in microseconds
AURORA_ACU_UTILIZATION_PERCENT = 90
DYNAMODB_ITEM_OPERATIONS = (
    dynamodb.Operation.GET_ITEM,
    dynamodb.Operation.PUT_ITEM,
    dynamodb.Operation.UPDATE_ITEM,
    dynamodb.Operation.DELETE_ITEM,
)


def function_errors(name: str, fn: lambda_.IFunction, kind: str) -> cloudwatch.IMetric:
    """A function's errors; for the authorizer, its errors less its refusals (a refused credential
    must be raised as ``Unauthorized`` for API Gateway to answer 401, so Lambda counts it as an
    error; the authorizer also counts it as ``AuthorizerRefused``)."""
    errors = fn.metric_errors(period=FIVE_MINUTES, statistic="Sum")
    if kind != "authorizer":
        return errors
    refused = cloudwatch.Metric(
        namespace=METRICS_NAMESPACE,
        metric_name=REFUSED_METRIC,
        dimensions_map={"service": name},
        period=FIVE_MINUTES,
        statistic="Sum",
    )
    return cloudwatch.MathExpression(
        expression="FILL(errors, 0) - FILL(refused, 0)",
        using_metrics={"errors": errors, "refused": refused},
        label=f"{name} faults (errors less refusals)",
        period=FIVE_MINUTES,
    )


class Observability(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: StageConfig,
        functions: Mapping[str, lambda_.Function],
        dead_letter_queues: Mapping[str, sqs.Queue],
        api: apigw.RestApi | None,
        state_machines: Mapping[str, sfn.StateMachine],
        manifest: Manifest = MANIFEST,
        proxy: rds.IDatabaseProxy | None = None,
        cluster: rds.DatabaseCluster | None = None,
        tables: Mapping[str, dynamodb.ITable] | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        key = kms.Key(
            self,
            "AlarmTopicKey",
            description=f"Rampart {stage.name}: alarm topic encryption",
            enable_key_rotation=True,
            removal_policy=stage.removal_policy,
        )
        key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=["*"],
            )
        )
        self.topic = sns.Topic(
            self, "Alarms", display_name=f"Rampart {stage.name} alarms", master_key=key, enforce_ssl=True
        )
        # CloudWatch alarms of this account may publish; nothing else (the topic has no other Allow
        # for a service, and enforce_ssl denies plain HTTP).
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsOfThisAccount",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnLike": {
                        "aws:SourceArn": f"arn:{stack.partition}:cloudwatch:{stack.region}:{stack.account}:alarm:*"
                    },
                },
            )
        )
        extra = self.node.try_get_context(ALARM_EMAIL_CONTEXT)
        self.subscribers = sorted({*stage.alarm_emails, *([str(extra)] if extra else [])})
        # An alarm mail SNS could not deliver is kept (14 days) rather than lost, and alarms itself.
        self.undelivered = sqs.Queue(
            self,
            "UndeliveredAlarms",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
            removal_policy=stage.removal_policy,
        )
        acknowledge(
            self.undelivered,
            "AwsSolutions-SQS3",
            "This queue is itself the dead-letter queue of the alarm topic's subscriptions.",
        )
        acknowledge(
            self.undelivered,
            "Serverless-SQSRedrivePolicy",
            "This queue is itself the dead-letter queue of the alarm topic's subscriptions.",
        )
        for email in self.subscribers:
            self.topic.add_subscription(subscriptions.EmailSubscription(email, dead_letter_queue=self.undelivered))
        action = cw_actions.SnsAction(self.topic)
        self.alarms: list[cloudwatch.Alarm] = []

        def alarm(
            name: str,
            metric: cloudwatch.IMetric,
            threshold: float,
            description: str,
            periods: int = 1,
            *,
            below: bool = False,
        ) -> None:
            created = cloudwatch.Alarm(
                self,
                name,
                metric=metric,
                threshold=threshold,
                evaluation_periods=periods,
                datapoints_to_alarm=periods,
                comparison_operator=(
                    cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD
                    if below
                    else cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD
                ),
                # A heartbeat's silence is the alarm; anything else missing is quiet.
                treat_missing_data=(
                    cloudwatch.TreatMissingData.BREACHING if below else cloudwatch.TreatMissingData.NOT_BREACHING
                ),
                alarm_description=description,
            )
            created.add_alarm_action(action)
            self.alarms.append(created)

        for name, queue in {**dead_letter_queues, "undelivered-alarms": self.undelivered}.items():
            alarm(
                f"Dlq-{name}",
                queue.metric_approximate_number_of_messages_visible(period=Duration.minutes(1), statistic="Maximum"),
                0,
                f"{name} holds failed work: inspect and redrive (docs/cloud.md)",
            )
        kinds = {spec.name: spec.kind for spec in manifest.functions}
        for name, fn in functions.items():
            alarm(f"Errors-{name}", function_errors(name, fn, kinds.get(name, "api")), 0, f"{name} failed")
            alarm(
                f"Throttles-{name}",
                fn.metric_throttles(period=FIVE_MINUTES, statistic="Sum"),
                0,
                f"{name} was throttled: its reserved concurrency (infra/manifest.py) is exhausted",
            )
        for spec in manifest.functions:
            for own in spec.alarms:
                alarm(
                    f"{own.metric}-{spec.name}",
                    cloudwatch.Metric(
                        namespace=METRICS_NAMESPACE,
                        metric_name=own.metric,
                        dimensions_map={"service": spec.name},
                        period=Duration.minutes(own.minutes),
                        statistic="Sum",
                    ),
                    own.threshold,
                    own.description,
                    periods=own.periods,
                )
        for spec in manifest.of_kind("scheduled"):
            alarm(
                f"Heartbeat-{spec.name}",
                functions[spec.name].metric_invocations(period=FIVE_MINUTES, statistic="Sum"),
                1,
                f"{spec.name} has not run for 5 minutes: its schedule stopped or it cannot start",
                below=True,
            )
        if proxy is not None:
            proxy_name = {"ProxyName": proxy.db_proxy_name}
            alarm(
                "ProxyBorrowLatency",
                cloudwatch.Metric(
                    namespace="AWS/RDS",
                    metric_name="DatabaseConnectionsBorrowLatency",
                    dimensions_map=proxy_name,
                    period=FIVE_MINUTES,
                    statistic="p99",
                ),
                PROXY_BORROW_P99_MICROSECONDS,
                "RDS Proxy waits for free database connections (p99 borrow > 0.5 s): the database is saturated",
                periods=3,
            )
            connectors = sum(s.concurrency or 0 for s in manifest.functions if "postgres" in s.uses)
            alarm(
                "ProxyClientConnections",
                cloudwatch.Metric(
                    namespace="AWS/RDS",
                    metric_name="ClientConnections",
                    dimensions_map=proxy_name,
                    period=FIVE_MINUTES,
                    statistic="Maximum",
                ),
                max(connectors, 1),
                f"more client connections than the functions' reserved concurrency allows ({connectors}): a leak",
            )
        if cluster is not None:
            alarm(
                "AuroraCapacity",
                cloudwatch.Metric(
                    namespace="AWS/RDS",
                    metric_name="ACUUtilization",
                    dimensions_map={"DBClusterIdentifier": cluster.cluster_identifier},
                    period=FIVE_MINUTES,
                    statistic="Maximum",
                ),
                AURORA_ACU_UTILIZATION_PERCENT,
                f"Aurora above {AURORA_ACU_UTILIZATION_PERCENT}% of its maximum capacity for 15 minutes: raise "
                "db_max_acu (infra/stacks/config.py)",
                periods=3,
            )
        for name, table in (tables or {}).items():
            alarm(
                f"DynamoDbSystemErrors-{name}",
                table.metric_system_errors_for_operations(
                    operations=list(DYNAMODB_ITEM_OPERATIONS), period=FIVE_MINUTES
                ),
                0,
                f"DynamoDB answered 5xx on table {name}",
            )
            alarm(
                f"DynamoDbThrottles-{name}",
                table.metric_throttled_requests_for_operations(
                    operations=list(DYNAMODB_ITEM_OPERATIONS), period=FIVE_MINUTES
                ),
                0,
                f"DynamoDB throttled requests on table {name}",
            )
        if api is not None:
            api_stage = api.deployment_stage
            alarm("Api5xx", api_stage.metric_server_error(period=FIVE_MINUTES, statistic="Sum"), 0, "API answered 5xx")
            alarm(
                "ApiLatencyP99",
                api_stage.metric_latency(period=FIVE_MINUTES, statistic="p99"),
                stage.api_p99_latency_ms,
                f"API p99 latency above {stage.api_p99_latency_ms} ms for 15 minutes",
                periods=3,
            )
        for name, machine in state_machines.items():
            alarm(f"Failed-{name}", machine.metric_failed(period=FIVE_MINUTES, statistic="Sum"), 0, f"{name} failed")
            alarm(
                f"TimedOut-{name}",
                machine.metric_timed_out(period=FIVE_MINUTES, statistic="Sum"),
                0,
                f"{name} timed out",
            )

        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=f"rampart-{stage.name}")
        if api is not None:
            api_stage = api.deployment_stage
            self.dashboard.add_widgets(
                cloudwatch.GraphWidget(
                    title="API requests and errors",
                    left=[api_stage.metric_count(period=FIVE_MINUTES)],
                    right=[
                        api_stage.metric_client_error(period=FIVE_MINUTES),
                        api_stage.metric_server_error(period=FIVE_MINUTES),
                    ],
                    width=12,
                ),
                cloudwatch.GraphWidget(
                    title="API latency",
                    left=[api_stage.metric_latency(period=FIVE_MINUTES, statistic=s) for s in ("p50", "p90", "p99")],
                    width=12,
                ),
            )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Function errors",
                left=[fn.metric_errors(period=FIVE_MINUTES, label=name) for name, fn in functions.items()],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Function duration p99",
                left=[
                    fn.metric_duration(period=FIVE_MINUTES, statistic="p99", label=name)
                    for name, fn in functions.items()
                ],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Dead-letter queues",
                left=[
                    q.metric_approximate_number_of_messages_visible(period=Duration.minutes(1), label=name)
                    for name, q in dead_letter_queues.items()
                ],
                width=12,
            ),
            cloudwatch.AlarmStatusWidget(title="Alarms", alarms=list(self.alarms), width=12),
        )
        if state_machines:
            self.dashboard.add_widgets(
                cloudwatch.GraphWidget(
                    title="State machines",
                    left=[m.metric_succeeded(period=FIVE_MINUTES, label=f"{n} ok") for n, m in state_machines.items()],
                    right=[
                        m.metric_failed(period=FIVE_MINUTES, label=f"{n} failed") for n, m in state_machines.items()
                    ],
                    width=24,
                )
            )
