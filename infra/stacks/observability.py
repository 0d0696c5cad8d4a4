"""Alarms (the depth of every DLQ > 0, function errors, API 5xx and p99 latency, state machine
failures) to one encrypted SNS topic, and one CloudWatch dashboard for the stage."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.stacks.config import StageConfig

ALARM_EMAIL_CONTEXT = "rampart:alarmEmail"
FIVE_MINUTES = Duration.minutes(5)


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
    ) -> None:
        super().__init__(scope, construct_id)
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
        email = self.node.try_get_context(ALARM_EMAIL_CONTEXT)
        if email:
            self.topic.add_subscription(subscriptions.EmailSubscription(str(email)))
        action = cw_actions.SnsAction(self.topic)
        self.alarms: list[cloudwatch.Alarm] = []

        def alarm(name: str, metric: cloudwatch.IMetric, threshold: float, description: str, periods: int = 1) -> None:
            created = cloudwatch.Alarm(
                self,
                name,
                metric=metric,
                threshold=threshold,
                evaluation_periods=periods,
                datapoints_to_alarm=periods,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                alarm_description=description,
            )
            created.add_alarm_action(action)
            self.alarms.append(created)

        for name, queue in dead_letter_queues.items():
            alarm(
                f"Dlq-{name}",
                queue.metric_approximate_number_of_messages_visible(period=Duration.minutes(1), statistic="Maximum"),
                0,
                f"{name} holds failed work: inspect and redrive (docs/cloud.md)",
            )
        for name, fn in functions.items():
            alarm(f"Errors-{name}", fn.metric_errors(period=FIVE_MINUTES, statistic="Sum"), 0, f"{name} failed")
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
