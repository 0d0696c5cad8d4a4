"""Failed executions reach the executions DLQ in the twin (ARCHITECTURE.md, Ramps: "Executions that
end failed, timed out or aborted reach a DLQ through an EventBridge rule"; moto emits no status
events, so the twin's watcher, infra/local/executions.py, publishes them).

The twin runs in this process with the fixture manifest (tests/support/fixture_manifest.py), as in
test_twin_kinds.py, its watcher polling every 0.2 s; the fixture's ``fixture-double`` machine is
executed for real by moto's interpreter: an uncaught typed error (``ReconciliationRequired``: the
fixture ASL catches ``Permanent`` and ``Transient``) fails it; StopExecution aborts it."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from infra.local import executions
from infra.local.twin import Twin
from tests.support.fixture_manifest import DOUBLE_MACHINE, FIXTURE_MANIFEST
from tests.support.waiting import eventually

pytestmark = pytest.mark.xdist_group("twin_executions")


@pytest.fixture(scope="module")
def twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Twin]:
    from infra.local import twin as twin_module

    if twin_module._active is not None:
        pytest.skip("a twin already runs in this process (RAMPART_E2E_TWIN=inprocess)")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(executions.POLL_ENV, "0.2")
        started = Twin(manifest=FIXTURE_MANIFEST, state_dir=tmp_path_factory.mktemp("twin-executions"), schedules=False)
        started.start(port=0, timeout=60)
        try:
            yield started
        finally:
            started.stop()


def client(twin: Twin, service: str) -> Any:
    assert twin.aws is not None
    return twin.aws.client(service)


def start(twin: Twin, payload: dict[str, Any]) -> str:
    assert twin.aws is not None
    arn = twin.aws.deployment.state_machines[DOUBLE_MACHINE]
    started = client(twin, "stepfunctions").start_execution(
        stateMachineArn=arn, name=uuid.uuid4().hex, input=json.dumps(payload)
    )
    return str(started["executionArn"])


def finished(twin: Twin, execution_arn: str) -> dict[str, Any]:
    sfn = client(twin, "stepfunctions")

    def done() -> dict[str, Any] | None:
        described: dict[str, Any] = sfn.describe_execution(executionArn=execution_arn)
        return described if described["status"] != "RUNNING" else None

    result: dict[str, Any] = eventually(done, what=f"{execution_arn} to finish")
    return result


def drain(twin: Twin) -> list[dict[str, Any]]:
    """Every message in the executions DLQ now, parsed, deleted as read."""
    assert twin.aws is not None
    assert twin.aws.deployment.executions_dlq is not None
    sqs, url = client(twin, "sqs"), twin.aws.deployment.executions_dlq
    bodies = []
    while True:
        received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not received:
            return bodies
        for message in received:
            bodies.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def landed(twin: Twin, execution_arn: str) -> list[dict[str, Any]]:
    """Waits for the watcher (its own thread) to publish ``execution_arn``; then polls once more
    and drains: everything that reached the DLQ for it."""
    seen: list[dict[str, Any]] = []

    def arrived() -> bool:
        seen.extend(drain(twin))
        return any(event["detail"]["executionArn"] == execution_arn for event in seen)

    eventually(arrived, what=f"{execution_arn} in the executions DLQ")
    assert twin.executions is not None
    twin.executions.poll()  # a second look publishes nothing again
    seen.extend(drain(twin))
    return [event for event in seen if event["detail"]["executionArn"] == execution_arn]


def assert_status_change(event: dict[str, Any], described: dict[str, Any], status: str) -> None:
    assert event["source"] == "aws.states"
    assert event["detail-type"] == "Step Functions Execution Status Change"
    assert event["account"] == described["executionArn"].split(":")[4]
    assert event["region"] == described["executionArn"].split(":")[3]
    assert event["resources"] == [described["executionArn"]]
    detail = event["detail"]
    assert set(detail) >= {
        "executionArn",
        "stateMachineArn",
        "name",
        "status",
        "startDate",
        "stopDate",
        "input",
        "output",
        "error",
        "cause",
    }
    assert detail["status"] == status
    assert detail["stateMachineArn"] == described["stateMachineArn"]
    assert detail["name"] == described["name"]
    assert json.loads(detail["input"]) == json.loads(described["input"])
    assert isinstance(detail["startDate"], int)
    assert isinstance(detail["stopDate"], int)
    assert detail["startDate"] <= detail["stopDate"]


def test_a_failed_execution_lands_once_with_its_error(twin: Twin) -> None:
    execution_arn = start(twin, {"fail": "ReconciliationRequired"})
    described = finished(twin, execution_arn)
    assert described["status"] == "FAILED", described

    [event] = landed(twin, execution_arn)

    assert_status_change(event, described, "FAILED")
    assert event["detail"]["error"] == "ReconciliationRequired"
    assert json.loads(event["detail"]["cause"])["errorType"] == "ReconciliationRequired"
    assert event["detail"]["output"] is None


def test_a_stopped_execution_lands_as_aborted(twin: Twin) -> None:
    # The fixture ASL retries Transient after 1 s: stopped in that wait (moto's interpreter, stopped
    # while a task is in flight, may record the task's failure instead).
    execution_arn = start(twin, {"fail": "Transient"})
    sfn = client(twin, "stepfunctions")

    def first_attempt_failed() -> bool:
        events = sfn.get_execution_history(executionArn=execution_arn)["events"]
        return any(e["type"] in ("TaskFailed", "LambdaFunctionFailed") for e in events)

    eventually(first_attempt_failed, what="the first attempt's failure")
    sfn.stop_execution(executionArn=execution_arn)
    described = finished(twin, execution_arn)
    assert described["status"] == "ABORTED", described

    [event] = landed(twin, execution_arn)

    assert_status_change(event, described, "ABORTED")
    assert event["detail"]["error"] is None


def test_a_succeeded_execution_never_lands(twin: Twin) -> None:
    execution_arn = start(twin, {"n": 4})
    described = finished(twin, execution_arn)
    assert described["status"] == "SUCCEEDED", described
    assert twin.executions is not None

    published = twin.executions.poll()  # whatever ended by now is published by this poll at the latest

    assert execution_arn not in {event["detail"]["executionArn"] for event in published}
    assert execution_arn not in {event["detail"]["executionArn"] for event in drain(twin)}
    assert execution_arn not in twin.executions.published


def test_the_rule_matches_only_its_machines_bad_endings() -> None:
    arn = "arn:aws:states:us-east-1:123456789012:stateMachine:m"
    pattern = executions.failures_pattern(arn)

    def event(status: str, machine: str = arn) -> dict[str, Any]:
        return {
            "source": "aws.states",
            "detail-type": "Step Functions Execution Status Change",
            "detail": {"status": status, "stateMachineArn": machine},
        }

    assert [
        s for s in ("FAILED", "TIMED_OUT", "ABORTED", "SUCCEEDED", "RUNNING") if executions.matches(pattern, event(s))
    ] == [
        "FAILED",
        "TIMED_OUT",
        "ABORTED",
    ]
    assert not executions.matches(pattern, event("FAILED", arn + "-other"))
    assert not executions.matches(pattern, {**event("FAILED"), "source": "aws.events"})
    with pytest.raises(ValueError, match="exact values only"):
        executions.matches({"detail": {"status": [{"prefix": "F"}]}}, event("FAILED"))


def test_triggers_list_the_executions_dlq_and_its_rule(twin: Twin) -> None:
    import requests

    triggers = requests.get(f"{twin.url}/_twin/triggers", timeout=10).json()
    assert executions.EXECUTIONS_DLQ in {q["name"] for q in triggers["queues"]}
    assert twin.aws is not None
    [rule] = triggers["execution_rules"]
    assert rule["state_machine"] == DOUBLE_MACHINE
    assert rule["queues"] == [executions.EXECUTIONS_DLQ]
    assert rule["event_pattern"] == executions.failures_pattern(twin.aws.deployment.state_machines[DOUBLE_MACHINE])
