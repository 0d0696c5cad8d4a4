"""Everything invoked asynchronously ends in a dead-letter queue: one SQS DLQ per scheduled or
deploy function (its on-failure destination and its schedule's target DLQ), the manifest's queues
with their redrive DLQs, and one EventBridge rule per manifest schedule."""

from __future__ import annotations

from aws_cdk import Duration, Tags
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.manifest import FUNCTIONS, QUEUES, SCHEDULES, Function, Queue, Schedule
from infra.stacks.config import StageConfig
from infra.stacks.nag import acknowledge
from infra.stacks.readback import QUEUE_TAG, SCHEDULE_PREFIX

RETRY_ATTEMPTS = 2


def dlq_name(function_name: str) -> str:
    """The manifest-level name of a function's DLQ (implied by ``Function.asynchronous``)."""
    return f"{function_name}-dlq"


def expected_queues(functions: tuple[Function, ...] = FUNCTIONS, queues: tuple[Queue, ...] = QUEUES) -> set[str]:
    """Every queue the manifest implies: function DLQs, its queues and their DLQs."""
    names = {dlq_name(fn.name) for fn in functions if fn.asynchronous}
    for queue in queues:
        names.add(queue.name)
        if queue.dead_letter:
            names.add(f"{queue.name}-dlq")
    return names


class Asynchronous(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: StageConfig,
        functions: dict[str, lambda_.Function],
        specs: tuple[Function, ...] = FUNCTIONS,
        schedules: tuple[Schedule, ...] = SCHEDULES,
        queues: tuple[Queue, ...] = QUEUES,
    ) -> None:
        super().__init__(scope, construct_id)
        self.stage = stage
        self.queues: dict[str, sqs.Queue] = {}
        self.dead_letter_queues: dict[str, sqs.Queue] = {}
        self.function_dlqs: dict[str, sqs.Queue] = {}

        for spec in specs:
            if not spec.asynchronous:
                continue
            dlq = self._queue(dlq_name(spec.name), dead_letter_for=f"function {spec.name}")
            self.function_dlqs[spec.name] = dlq
            functions[spec.name].configure_async_invoke(
                on_failure=destinations.SqsDestination(dlq),
                retry_attempts=RETRY_ATTEMPTS,
                max_event_age=Duration.hours(6),
            )

        for queue in queues:
            dead_letter = None
            if queue.dead_letter:
                dead_letter = sqs.DeadLetterQueue(
                    max_receive_count=5, queue=self._queue(f"{queue.name}-dlq", dead_letter_for=f"queue {queue.name}")
                )
            self.queues[queue.name] = self._queue(
                queue.name, visibility=Duration.seconds(queue.visibility_timeout_seconds), dead_letter=dead_letter
            )

        self.rules: dict[str, events.Rule] = {}
        for schedule in schedules:
            self.rules[schedule.name] = events.Rule(
                self,
                f"Schedule-{schedule.name}",
                description=f"{SCHEDULE_PREFIX}{schedule.name}",
                schedule=events.Schedule.expression(schedule.rate),
                targets=[
                    targets.LambdaFunction(
                        functions[schedule.function],
                        dead_letter_queue=self.function_dlqs[schedule.function],
                        retry_attempts=RETRY_ATTEMPTS,
                        max_event_age=Duration.hours(1),
                    )
                ],
            )

    def _queue(
        self,
        name: str,
        *,
        dead_letter_for: str | None = None,
        visibility: Duration | None = None,
        dead_letter: sqs.DeadLetterQueue | None = None,
    ) -> sqs.Queue:
        queue = sqs.Queue(
            self,
            f"Queue-{name}",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=self.stage.dlq_retention if dead_letter_for else Duration.days(4),
            visibility_timeout=visibility,
            dead_letter_queue=dead_letter,
            removal_policy=self.stage.removal_policy,
        )
        Tags.of(queue).add(QUEUE_TAG, name)
        if dead_letter_for:
            self.dead_letter_queues[name] = queue
            acknowledge(
                queue,
                "AwsSolutions-SQS3",
                f"This queue is itself the dead-letter queue of {dead_letter_for}; an operator redrives it.",
            )
        return queue
