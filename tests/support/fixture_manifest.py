"""A test manifest: one small fixture function of each kind the ramps will bring (never deployed).

The twin is started with it (tests/e2e/test_twin_kinds.py) and the CDK app synthesizes it
(tests/infra), so each kind's entry stack and both runtimes' wiring of it are proven before a
real function of that kind exists. Keep the names stable: both sides refer to them."""

from __future__ import annotations

from infra.manifest import Function, Manifest, Queue, Schedule, StateMachine

FIXTURES = "tests.support.fixture_functions"

ECHO_PATH = "/webhooks/fixture/echo"
JOBS_QUEUE = "fixture-jobs"  # its DLQ: the twin calls it "fixture-jobs-dlq"
DOUBLE_MACHINE = "fixture-double"
TICK_SCHEDULE = "fixture-tick"

FIXTURE_FUNCTIONS: tuple[Function, ...] = (
    Function(
        name="echo_webhook",
        handler=f"{FIXTURES}.echo_webhook.handler.handler",
        description="Fixture webhook: answers with the JSON body it got",
        kind="webhook",
        path=ECHO_PATH,
    ),
    Function(
        name="tally_queue",
        handler=f"{FIXTURES}.tally_queue.handler.handler",
        description="Fixture queue consumer: accepts {'n': int}, fails anything else (poison)",
        kind="queue",
    ),
    Function(
        name="double_worker",
        handler=f"{FIXTURES}.double_worker.handler.handler",
        description="Fixture Step Functions task: {'n': x} -> {'n': 2x}; typed errors on demand",
        kind="worker",
    ),
    Function(
        name="tick_scheduled",
        handler=f"{FIXTURES}.tick_scheduled.handler.handler",
        description="Fixture schedule: counts its ticks",
        kind="scheduled",
    ),
)

FIXTURE_MANIFEST = Manifest(
    functions=FIXTURE_FUNCTIONS,
    queues=(
        Queue(JOBS_QUEUE, consumer="tally_queue", visibility_timeout_seconds=60, max_receive_count=2, batch_size=5),
    ),
    schedules=(Schedule(TICK_SCHEDULE, "rate(1 minute)", "tick_scheduled"),),
    state_machines=(
        StateMachine(
            DOUBLE_MACHINE,
            definition="tests/support/fixture_functions/double.asl.json",
            substitutions={"DoubleWorker": "double_worker"},
        ),
    ),
)
