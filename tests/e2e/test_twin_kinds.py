"""Every new kind of function, executed in the twin: the twin is started (in this process, so the
test can reach its moto) with the fixture manifest (tests/support/fixture_manifest.py), whose
small functions go through the same entry stacks the ramps' functions will:

- ``webhook``: served on its own path (no authorizer), a function URL event (payload 2.0) in,
  the reply mapped back; bad bodies answered with problem+json;
- ``queue``: fed from moto's SQS by the twin's poller; successes deleted, a poison message
  reported in ``batchItemFailures`` until the redrive policy moves it to the queue's DLQ;
- ``worker``: a task of a real state machine run by moto's interpreter, through the LambdaBridge;
  its typed errors matched by the ASL's Retry/Catch by name;
- ``scheduled``: run by its schedule; a failure lands in the function's DLQ.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from infra.local import aws
from infra.local.twin import Twin
from tests.support.fixture_functions.tally_queue import handler as tally
from tests.support.fixture_manifest import (
    DOUBLE_MACHINE,
    ECHO_PATH,
    FIXTURE_MANIFEST,
    JOBS_QUEUE,
    TICK_SCHEDULE,
)
from tests.support.waiting import eventually

pytestmark = pytest.mark.xdist_group("twin_kinds")


@pytest.fixture(scope="module")
def twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Twin]:
    from infra.local import twin as twin_module

    if twin_module._active is not None:
        pytest.skip("a twin already runs in this process (RAMPART_E2E_TWIN=inprocess)")
    started = Twin(
        manifest=FIXTURE_MANIFEST,
        state_dir=tmp_path_factory.mktemp("twin-kinds"),
        schedules=False,
        queue_visibility_seconds=1,  # a failed message comes back after 1 s, not 30
    )
    started.start(port=0, timeout=60)
    try:
        yield started
    finally:
        started.stop()


def client(twin: Twin, service: str) -> Any:
    assert twin.aws is not None
    return twin.aws.client(service)


def problem_type(reply: requests.Response) -> str:
    assert reply.headers["Content-Type"].startswith("application/problem+json"), reply.headers
    return str(reply.json()["type"]).removeprefix("/problems/")


# webhook ---------------------------------------------------------------------------------------


def test_a_webhook_answers_on_its_own_path_without_credentials(twin: Twin) -> None:
    reply = requests.post(
        f"{twin.url}{ECHO_PATH}?source=test",
        data=json.dumps({"event": "paid", "amount": "1.50"}),
        headers={"Content-Type": "application/json", "X-Correlation-Id": "corr-echo-1"},
        timeout=10,
    )
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"echo": {"event": "paid", "amount": "1.50"}, "path": ECHO_PATH, "method": "POST"}
    assert reply.headers["X-Correlation-Id"] == "corr-echo-1"


@pytest.mark.parametrize(
    ("body", "status", "slug"),
    [
        (b'{"event": ', 400, "malformed-request"),  # not JSON
        (b"\xff\xfe{}", 400, "malformed-request"),  # not UTF-8: reaches the function base64-encoded
        (b"[" * 40 + b"]" * 40, 400, "malformed-request"),  # deeper than the bounded parser allows
        (b'{"n": 1' + b"0" * 200 + b"}", 400, "malformed-request"),  # a number literal too long
        (b"[1, 2]", 422, "validation-error"),  # JSON, but not what the function takes
    ],
    ids=["truncated", "not-utf8", "too-deep", "long-number", "not-an-object"],
)
def test_a_webhook_refuses_bad_bodies_with_problem_json(twin: Twin, body: bytes, status: int, slug: str) -> None:
    reply = requests.post(f"{twin.url}{ECHO_PATH}", data=body, headers={"Content-Type": "application/json"}, timeout=10)
    assert reply.status_code == status, reply.text
    assert problem_type(reply) == slug
    assert reply.json()["instance"] == ECHO_PATH
    assert "Traceback" not in reply.text


def test_api_paths_are_not_webhooks(twin: Twin) -> None:
    reply = requests.post(f"{twin.url}/webhooks/fixture/other", json={}, timeout=10)
    assert reply.status_code == 404
    assert problem_type(reply) == "not-found"


# queue -----------------------------------------------------------------------------------------


def queue_depth(sqs: Any, url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def test_a_queue_function_consumes_and_the_poison_ends_in_the_dlq(twin: Twin) -> None:
    assert twin.aws is not None
    sqs = client(twin, "sqs")
    url, dlq = twin.aws.deployment.queue_urls[JOBS_QUEUE], twin.aws.deployment.queue_dlqs[JOBS_QUEUE]
    base = 1000 + uuid.uuid4().int % 1_000_000 * 10
    good = [base + i for i in range(3)]
    for n in good:
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"n": n}))
    poison = json.dumps({"n": "not a number", "tag": str(base)})
    sqs.send_message(QueueUrl=url, MessageBody=poison)

    eventually(lambda: set(good) <= set(tally.TALLY), what="the good messages consumed")

    def dead_lettered() -> list[dict[str, Any]]:
        received = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, AttributeNames=["All"])
        return [m for m in received.get("Messages", []) if m["Body"] == poison]

    parked = eventually(dead_lettered, what="the poison message in the DLQ")
    max_receive_count = next(q.max_receive_count for q in FIXTURE_MANIFEST.queues if q.name == JOBS_QUEUE)
    assert int(parked[0]["Attributes"]["ApproximateReceiveCount"]) >= max_receive_count
    eventually(lambda: queue_depth(sqs, url) == 0, what="the source queue empty")
    assert sorted(n for n in tally.TALLY if n in good) == good  # each good message handled once


def test_a_queue_function_reports_only_its_failed_records(twin: Twin) -> None:
    """Invoked directly with an SQS event (as the event source mapping invokes it)."""
    from infra.local.queues import sqs_event

    messages = [
        {"MessageId": "ok-1", "ReceiptHandle": "r1", "Body": '{"n": 5}', "Attributes": {}},
        {"MessageId": "bad-1", "ReceiptHandle": "r2", "Body": '{"n": 5', "Attributes": {}},
        {"MessageId": "bad-2", "ReceiptHandle": "r3", "Body": '{"n": "5"}', "Attributes": {}},
    ]
    reply = client(twin, "lambda").invoke(
        FunctionName="tally_queue", Payload=json.dumps(sqs_event(messages, "arn:aws:sqs:us-east-1:1:q"))
    )
    assert "FunctionError" not in reply
    assert json.loads(reply["Payload"].read()) == {
        "batchItemFailures": [{"itemIdentifier": "bad-1"}, {"itemIdentifier": "bad-2"}]
    }


# worker ----------------------------------------------------------------------------------------


def execute(twin: Twin, payload: dict[str, Any]) -> dict[str, Any]:
    assert twin.aws is not None
    sfn = client(twin, "stepfunctions")
    arn = twin.aws.deployment.state_machines[DOUBLE_MACHINE]
    execution = sfn.start_execution(stateMachineArn=arn, name=uuid.uuid4().hex, input=json.dumps(payload))[
        "executionArn"
    ]

    def finished() -> dict[str, Any] | None:
        described: dict[str, Any] = sfn.describe_execution(executionArn=execution)
        return described if described["status"] != "RUNNING" else None

    result: dict[str, Any] = eventually(finished, what="the execution to finish")
    return result


def test_a_worker_runs_inside_a_real_state_machine(twin: Twin) -> None:
    described = execute(twin, {"n": 21})
    assert described["status"] == "SUCCEEDED", described
    assert json.loads(described["output"]) == {"n": 42}


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        ({"fail": "Permanent"}, "Permanent"),
        ({"fail": "Transient"}, "Transient"),  # retried once by the ASL, then caught
        ({"n": "twenty"}, "Permanent"),  # a DomainError in the worker leaves as Permanent
    ],
    ids=["permanent", "transient", "domain-error"],
)
def test_a_workers_typed_error_is_matched_by_the_asl_catch(twin: Twin, payload: dict[str, Any], error: str) -> None:
    described = execute(twin, payload)
    assert described["status"] == "SUCCEEDED", described
    output = json.loads(described["output"])
    assert output["outcome"] == "parked"
    assert output["error"]["Error"] == error
    message = json.loads(output["error"]["Cause"])["errorMessage"]
    assert "Traceback" not in message
    assert 'File "' not in message


def test_an_uncaught_typed_error_fails_the_execution_with_its_name(twin: Twin) -> None:
    described = execute(twin, {"fail": "ReconciliationRequired"})
    assert described["status"] == "FAILED", described
    history = client(twin, "stepfunctions").get_execution_history(executionArn=described["executionArn"])["events"]
    failed = next(e for e in history if e["type"] == "ExecutionFailed")["executionFailedEventDetails"]
    assert failed["error"] == "ReconciliationRequired"


# scheduled -------------------------------------------------------------------------------------


def test_a_scheduled_function_runs_and_its_failure_goes_to_its_dlq(twin: Twin) -> None:
    assert twin.aws is not None
    reply = requests.post(f"{twin.url}/_twin/schedules/{TICK_SCHEDULE}/run", timeout=30)
    assert reply.status_code == 200, reply.text
    assert reply.json()["result"]["ticks"] >= 1

    invoked = client(twin, "lambda").invoke(
        FunctionName="tick_scheduled", InvocationType="Event", Payload=json.dumps({"fail": True})
    )
    assert invoked["StatusCode"] == 202
    dlq = twin.aws.deployment.dlqs["tick_scheduled"]
    sqs = client(twin, "sqs")

    def dead_lettered() -> list[dict[str, Any]]:
        return list(sqs.receive_message(QueueUrl=dlq, MessageAttributeNames=["All"]).get("Messages", []))

    parked = eventually(dead_lettered, what="the failed event in the function's DLQ")
    assert json.loads(parked[0]["Body"]) == {"fail": True}
    assert parked[0]["MessageAttributes"]["ErrorMessage"]["StringValue"] == "Permanent: asked to fail"


# what the twin publishes -------------------------------------------------------------------------


def test_triggers_list_the_webhook_paths_and_queue_consumers(twin: Twin) -> None:
    triggers = requests.get(f"{twin.url}/_twin/triggers", timeout=10).json()
    assert [(w["function"], w["path"]) for w in triggers["webhooks"]] == [("echo_webhook", ECHO_PATH)]
    [consumer] = triggers["queue_consumers"]
    queue = next(q for q in FIXTURE_MANIFEST.queues if q.name == JOBS_QUEUE)
    assert (consumer["queue"], consumer["function"], consumer["max_receive_count"], consumer["batch_size"]) == (
        JOBS_QUEUE,
        "tally_queue",
        queue.max_receive_count,
        queue.batch_size,
    )
    queues = {q["name"]: q for q in triggers["queues"]}
    assert json.loads(queues[JOBS_QUEUE]["redrive_policy"])["maxReceiveCount"] == queue.max_receive_count
    assert queues[f"{JOBS_QUEUE}-dlq"]["dead_letter_queue_of"] == JOBS_QUEUE
    assert {m["name"] for m in triggers["state_machines"]} == {DOUBLE_MACHINE}
    assert {f["name"]: f["kind"] for f in triggers["functions"]} == {
        fn.name: fn.kind for fn in FIXTURE_MANIFEST.functions
    }
    assert aws.function_arn("double_worker") in {f["arn"] for f in triggers["functions"]}


def test_the_twin_needs_no_database_for_functions_that_use_none(twin: Twin) -> None:
    status = requests.get(f"{twin.url}/_twin/status", timeout=10).json()
    assert status["checks"]["database"] == "unused"
    assert status["ready"] is True


def test_random_shared_keys_survive_a_restart(tmp_path: Path) -> None:
    first = aws.random_key(tmp_path / "k.key")
    assert len(bytes.fromhex(first)) == 32
    assert aws.random_key(tmp_path / "k.key") == first
    assert (tmp_path / "k.key").stat().st_mode & 0o077 == 0
