"""The twin's AWS side in this process: moto serialized, lambda:Invoke answered by our handlers,
and a Step Functions state machine executing against the real ledger_sweep handler."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from infra import manifest
from infra.local import aws
from infra.local.lambdas import LambdaBridge, LambdaRegistry
from rampart.ledger import Ledger
from tests.conftest import WalletFactory, pay

BOOM = manifest.Function(
    name="boom",
    handler="tests.e2e.test_twin_aws.failing_handler",
    description="test: always fails",
    kind="scheduled",
)


def failing_handler(event: dict[str, Any], context: Any) -> None:
    raise ValueError(f"boom: {event.get('n')}")


@dataclass
class Local:
    aws: aws.LocalAws
    registry: LambdaRegistry
    boom_dlq: str

    def client(self, service: str) -> Any:
        return self.aws.client(service)


@pytest.fixture
def local(tmp_path: Any, pg_url: str) -> Iterator[Local]:
    from infra.local import twin
    from rampart.adapters.postgres import db
    from rampart.core.settings import reset_settings
    from rampart.wiring import ledger as wiring

    if twin._active is not None:
        pytest.skip("a twin runs in this process (RAMPART_E2E_TWIN=inprocess): its moto is the one to use")
    saved = dict(os.environ)
    started = aws.LocalAws(state_dir=tmp_path, admin_email="admin@example.com", admin_password="x" * 12)
    started.start()
    os.environ["DATABASE_URL"] = pg_url
    reset_settings()
    db.reset_database()
    wiring.reset()
    boom_dlq = started.client("sqs").create_queue(QueueName="rampart-local-boom-dlq")["QueueUrl"]
    registry = LambdaRegistry((*manifest.FUNCTIONS, BOOM), dlqs={"boom": boom_dlq})
    bridge = LambdaBridge(registry)
    bridge.install()
    try:
        yield Local(started, registry, boom_dlq)
    finally:
        bridge.uninstall()
        registry.close()
        db.reset_database()
        wiring.reset()
        started.stop()
        os.environ.clear()
        os.environ.update(saved)


def backdate(pg_url: str, transfer_id: int) -> None:
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE ledger.transfers SET expires_at = now() - interval '1 second' WHERE id = %s", (transfer_id,)
        )


def run_to_end(local: Local, definition: dict[str, Any], name: str) -> dict[str, Any]:
    sfn = local.client("stepfunctions")
    machine = sfn.create_state_machine(
        name=name, definition=json.dumps(definition), roleArn=f"arn:aws:iam::{aws.ACCOUNT}:role/test"
    )["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=machine, input=json.dumps({"n": 1}))["executionArn"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        described: dict[str, Any] = sfn.describe_execution(executionArn=execution)
        if described["status"] != "RUNNING":
            return described
        time.sleep(0.05)
    raise AssertionError("the execution did not finish")


def test_a_state_machine_runs_the_real_ledger_sweep_handler(
    local: Local, pg_url: str, ledger: Ledger, owner: str, wallet: WalletFactory
) -> None:
    source, target = wallet(), wallet()
    hold = ledger.transfer(owner, pay(source, target, "1.00", timeout=60))
    backdate(pg_url, hold.id)
    definition = {
        "StartAt": "Sweep",
        "States": {
            "Sweep": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": aws.function_arn("ledger_sweep"), "Payload.$": "$"},
                "ResultSelector": {"released.$": "$.Payload.released"},
                "End": True,
            }
        },
    }
    described = run_to_end(local, definition, "sweep-test")
    assert described["status"] == "SUCCEEDED", described
    assert json.loads(described["output"])["released"] >= 1
    assert ledger.transfer_by_id(hold.id).status == "expired"
    assert local.registry.runtime("ledger_sweep").containers == 1


def test_a_failing_task_fails_the_execution_with_the_handlers_error(local: Local) -> None:
    definition = {
        "StartAt": "Boom",
        "States": {
            "Boom": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": aws.function_name("boom"), "Payload.$": "$"},
                "End": True,
            }
        },
    }
    described = run_to_end(local, definition, "boom-test")
    assert described["status"] == "FAILED", described
    history = local.client("stepfunctions").get_execution_history(executionArn=described["executionArn"])["events"]
    failed = next(e for e in history if e["type"] == "ExecutionFailed")["executionFailedEventDetails"]
    assert failed["error"] == "ValueError"
    assert "boom: 1" in failed["cause"]


def test_lambda_invoke_through_boto3_runs_our_handler(local: Local) -> None:
    client = local.client("lambda")
    for name in ("ledger_sweep", aws.function_name("ledger_sweep"), aws.function_arn("ledger_sweep")):
        reply = client.invoke(FunctionName=name, Payload=b"{}")
        assert reply["StatusCode"] == 200
        assert "FunctionError" not in reply
        assert set(json.loads(reply["Payload"].read())) == {"released"}
    failed = client.invoke(FunctionName="boom", Payload=json.dumps({"n": 7}))
    assert failed["FunctionError"] == "Unhandled"
    payload = json.loads(failed["Payload"].read())
    assert (payload["errorType"], payload["errorMessage"]) == ("ValueError", "boom: 7")


def test_an_asynchronous_failure_lands_in_the_functions_dlq(local: Local) -> None:
    reply = local.client("lambda").invoke(FunctionName="boom", InvocationType="Event", Payload=b'{"n": 3}')
    assert reply["StatusCode"] == 202
    messages = local.client("sqs").receive_message(
        QueueUrl=local.boom_dlq, WaitTimeSeconds=5, MessageAttributeNames=["All"]
    )["Messages"]
    assert json.loads(messages[0]["Body"]) == {"n": 3}
    assert "boom: 3" in messages[0]["MessageAttributes"]["ErrorMessage"]["StringValue"]


def test_functions_that_are_not_ours_go_on_to_moto(local: Local) -> None:
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError) as raised:
        local.client("lambda").invoke(FunctionName="somebody-else", Payload=b"{}")
    assert raised.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_manifest_resources_exist(local: Local) -> None:
    dynamodb = local.client("dynamodb")
    for table in manifest.TABLES:
        described = dynamodb.describe_table(TableName=aws.table_name(table.name))["Table"]
        assert described["KeySchema"][0] == {"AttributeName": table.partition_key, "KeyType": "HASH"}
        ttl = dynamodb.describe_time_to_live(TableName=aws.table_name(table.name))["TimeToLiveDescription"]
        assert ttl.get("AttributeName") == table.ttl_attribute
    secret = local.client("secretsmanager").get_secret_value(SecretId=local.aws.deployment.secrets["jwt_keys"])
    keys = json.loads(secret["SecretString"])
    assert keys["current"] in keys["keys"]
    assert json.loads((local.aws.state_dir / "jwt-keys.json").read_text()) == keys


def test_jwt_keys_survive_a_restart(tmp_path: Any) -> None:
    first = aws.jwt_keys(tmp_path / "jwt-keys.json")
    assert aws.jwt_keys(tmp_path / "jwt-keys.json") == first
    assert (tmp_path / "jwt-keys.json").stat().st_mode & 0o077 == 0


def test_conditional_writes_are_atomic_under_concurrency(local: Local) -> None:
    dynamodb = local.client("dynamodb")
    table = aws.table_name("idempotency")
    winners: list[int] = []
    barrier = threading.Barrier(24)

    def claim(n: int) -> None:
        barrier.wait()
        try:
            dynamodb.put_item(
                TableName=table,
                Item={"id": {"S": "race"}, "by": {"N": str(n)}},
                ConditionExpression="attribute_not_exists(id)",
            )
            winners.append(n)
        except dynamodb.exceptions.ConditionalCheckFailedException:
            pass

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(winners) == 1
    stored = dynamodb.get_item(TableName=table, Key={"id": {"S": "race"}})["Item"]
    assert stored["by"]["N"] == str(winners[0])


def test_a_long_poll_does_not_hold_the_moto_lock(local: Local) -> None:
    sqs, dynamodb = local.client("sqs"), local.client("dynamodb")
    url = sqs.create_queue(QueueName="long-poll-test")["QueueUrl"]
    got: list[Any] = []
    poller = threading.Thread(
        target=lambda: got.append(sqs.receive_message(QueueUrl=url, WaitTimeSeconds=5).get("Messages"))
    )
    started = time.monotonic()
    poller.start()
    time.sleep(0.2)
    for _ in range(5):
        dynamodb.describe_table(TableName=aws.table_name("idempotency"))
    assert time.monotonic() - started < 2, "other calls waited for the long poll"
    sqs.send_message(QueueUrl=url, MessageBody="hello")
    poller.join(timeout=10)
    assert got
    assert got[0]
    assert got[0][0]["Body"] == "hello"
    assert time.monotonic() - started < 4, "the poll did not return when the message came"


def test_state_machine_definitions_get_function_arns_and_queue_urls(tmp_path: Any) -> None:
    (tmp_path / "statemachines").mkdir()
    (tmp_path / "statemachines" / "x.asl.json").write_text('{"a": "${Fn}", "b": "${Q}"}')
    machine = manifest.StateMachine("x", "statemachines/x.asl.json", {"Fn": "ledger_sweep", "Q": "work"})
    rendered = aws.render_definition(machine, {"rampart-local-work": "https://sqs/work"}, root=tmp_path)
    assert json.loads(rendered) == {"a": aws.function_arn("ledger_sweep"), "b": "https://sqs/work"}
    unbound = manifest.StateMachine("x", "statemachines/x.asl.json", {"Fn": "ledger_sweep"})
    with pytest.raises(ValueError, match="no substitution for Q"):
        aws.render_definition(unbound, {}, root=tmp_path)
    dangling = manifest.StateMachine("x", "statemachines/x.asl.json", {"Fn": "ledger_sweep", "Q": "nope"})
    with pytest.raises(ValueError, match="no function or queue"):
        aws.render_definition(dangling, {}, root=tmp_path)
