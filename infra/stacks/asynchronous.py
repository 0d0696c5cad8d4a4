"""Everything invoked asynchronously ends in a dead-letter queue: one SQS DLQ per scheduled or
deploy function (its on-failure destination and its schedule's target DLQ), one EventBridge rule
per manifest schedule, and the manifest's queues — each with its DLQ (the redrive policy moves a
message there after ``max_receive_count`` failed receives) and, when a ``queue`` function consumes
it, an event source mapping that reports partial batch failures. State machines imply one more:
the executions DLQ, where an EventBridge rule per state machine sends the Step Functions status
changes of its executions that end failed, timed out or aborted (the twin publishes those events
itself: infra/local/executions.py)."""

from __future__ import annotations

from aws_cdk import Duration, Tags
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.manifest import MANIFEST, Manifest, Queue
from infra.stacks.config import StageConfig
from infra.stacks.nag import acknowledge
from infra.stacks.readback import QUEUE_TAG, SCHEDULE_PREFIX
from infra.stacks.workflows import state_machine_arn

RETRY_ATTEMPTS = 2
# AWS's guidance for an SQS event source: a visibility timeout of at least six times the
# function's timeout, so that a batch still being retried is not handed to another poller.
VISIBILITY_FACTOR = 6
# Where executions that did not succeed end (the twin's infra/local/executions.py uses the same).
EXECUTIONS_DLQ = "executions-dlq"
EXECUTION_STATUS_CHANGE = "Step Functions Execution Status Change"
EXECUTION_FAILURES = ("FAILED", "TIMED_OUT", "ABORTED")
EXECUTION_RULE_PREFIX = "rampart executions of "


def dlq_name(name: str) -> str:
    """The manifest-level name of the DLQ of a function (implied by ``Function.asynchronous``) or
    of a manifest queue."""
    return f"{name}-dlq"


def expected_queues(manifest: Manifest = MANIFEST) -> set[str]:
    """Every queue the manifest implies: function DLQs, its queues and their DLQs, and the
    executions DLQ when it has state machines."""
    names = {dlq_name(fn.name) for fn in manifest.functions if fn.asynchronous}
    for queue in manifest.queues:
        names |= {queue.name, dlq_name(queue.name)}
    if manifest.state_machines:
        names.add(EXECUTIONS_DLQ)
    return names


def execution_failures_pattern(state_machine_arn: str) -> dict[str, object]:
    """The EventBridge pattern of one state machine's executions that end failed, timed out or
    aborted, as EventBridge's JSON (the twin matches the same pattern)."""
    return {
        "source": ["aws.states"],
        "detail-type": [EXECUTION_STATUS_CHANGE],
        "detail": {"status": list(EXECUTION_FAILURES), "stateMachineArn": [state_machine_arn]},
    }


def check_visibility(queue: Queue, manifest: Manifest) -> None:
    """A consumed queue's visibility timeout covers ``VISIBILITY_FACTOR`` × its consumer's timeout."""
    if queue.consumer is None:
        return
    needed = VISIBILITY_FACTOR * manifest.function(queue.consumer).timeout_seconds
    if queue.visibility_timeout_seconds < needed:
        raise ValueError(
            f"queue {queue.name}: visibility timeout {queue.visibility_timeout_seconds}s is under "
            f"{VISIBILITY_FACTOR} × the timeout of {queue.consumer} ({needed}s)"
        )


class Asynchronous(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: StageConfig,
        functions: dict[str, lambda_.Function],
        manifest: Manifest = MANIFEST,
    ) -> None:
        super().__init__(scope, construct_id)
        self.stage = stage
        self.queues: dict[str, sqs.Queue] = {}
        self.dead_letter_queues: dict[str, sqs.Queue] = {}
        self.function_dlqs: dict[str, sqs.Queue] = {}
        self.event_sources: dict[str, event_sources.SqsEventSource] = {}

        for spec in manifest.functions:
            if not spec.asynchronous:
                continue
            dlq = self._queue(dlq_name(spec.name), dead_letter_for=f"function {spec.name}")
            self.function_dlqs[spec.name] = dlq
            functions[spec.name].configure_async_invoke(
                on_failure=destinations.SqsDestination(dlq),
                retry_attempts=RETRY_ATTEMPTS,
                max_event_age=Duration.hours(6),
            )

        for queue in manifest.queues:
            check_visibility(queue, manifest)
            dead_letter = sqs.DeadLetterQueue(
                max_receive_count=queue.max_receive_count,
                queue=self._queue(dlq_name(queue.name), dead_letter_for=f"queue {queue.name}"),
            )
            self.queues[queue.name] = self._queue(
                queue.name, visibility=Duration.seconds(queue.visibility_timeout_seconds), dead_letter=dead_letter
            )
            if queue.consumer is not None:
                # Failed messages of a batch are named in the reply (batchItemFailures) and come
                # back alone; after max_receive_count receives the redrive policy moves them on.
                source = event_sources.SqsEventSource(
                    self.queues[queue.name], batch_size=queue.batch_size, report_batch_item_failures=True
                )
                functions[queue.consumer].add_event_source(source)
                self.event_sources[queue.name] = source
                acknowledge(
                    functions[queue.consumer],
                    "Serverless-LambdaEventSourceMappingDestination",
                    f"An SQS event source takes no on-failure destination: {queue.name}'s redrive policy moves a "
                    "message that keeps failing to its DLQ.",
                )

        self.rules: dict[str, events.Rule] = {}
        for schedule in manifest.schedules:
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

        # A failed execution is work an operator must see, as a failed invocation is: each state
        # machine's rule sends its executions that did not succeed to one queue (with a depth
        # alarm, as every DLQ here: observability.py), which only those rules may send to.
        self.executions_dlq: sqs.Queue | None = None
        self.execution_rules: dict[str, events.Rule] = {}
        if manifest.state_machines:
            self.executions_dlq = self._queue(
                EXECUTIONS_DLQ, dead_letter_for="every state machine's executions that fail, time out or are aborted"
            )
            for machine in manifest.state_machines:
                pattern = execution_failures_pattern(state_machine_arn(self, stage, machine.name))
                detail = pattern["detail"]
                assert isinstance(detail, dict)
                rule = events.Rule(
                    self,
                    f"ExecutionFailures-{machine.name}",
                    description=f"{EXECUTION_RULE_PREFIX}{machine.name} that fail, time out or are aborted",
                    event_pattern=events.EventPattern(
                        source=["aws.states"], detail_type=[EXECUTION_STATUS_CHANGE], detail=detail
                    ),
                    targets=[targets.SqsQueue(self.executions_dlq)],
                )
                acknowledge(
                    rule,
                    "Serverless-EventBusDLQ",
                    "This rule's target is itself the executions DLQ: a DLQ of its own would be that queue again. "
                    "EventBridge retries a delivery for 24 hours.",
                )
                self.execution_rules[machine.name] = rule

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
            for rule in ("AwsSolutions-SQS3", "Serverless-SQSRedrivePolicy"):
                acknowledge(
                    queue,
                    rule,
                    f"This queue is itself the dead-letter queue of {dead_letter_for}; an operator redrives it.",
                )
        return queue
