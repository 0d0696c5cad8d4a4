"""Provider webhooks end to end through the twin, over HTTP: Rampart's own manifest served by a
twin in this process (so the test reaches its moto and its database), the webhook on its function
URL path, the provider-events queue polled into ``webhook_apply``, the requeue schedule run on
demand. A signed delivery reaches the rail state; forged, stale and unknown-provider deliveries are
refused with problem+json; a replay is acknowledged and nothing happens twice; an event that keeps
failing lands in the queue's DLQ."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
import requests

from infra.local.twin import Twin
from infra.manifest import MANIFEST
from rampart.adapters.webhooks.standard import new_secret, sign
from tests.support.waiting import eventually

pytestmark = [pytest.mark.xdist_group("provider_webhooks"), pytest.mark.slow]

URL_PATH = "/webhooks/providers/pix"


@pytest.fixture(scope="module")
def twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Twin]:
    from infra.local import twin as twin_module
    from tests.e2e.conftest import DB_POOL_SIZE, _fresh_database

    if twin_module._active is not None:
        pytest.skip("a twin already runs in this process (RAMPART_E2E_TWIN=inprocess)")
    saved = os.environ.get("RAMPART_DB_POOL_SIZE")
    os.environ["RAMPART_DB_POOL_SIZE"] = DB_POOL_SIZE
    started = Twin(
        database_url=_fresh_database("rampart_webhooks"),
        state_dir=tmp_path_factory.mktemp("twin-webhooks"),
        schedules=False,  # run on demand below
        world=False,  # the deliveries here are the test's own (the world's are tested with the world)
        queue_visibility_seconds=1,  # a failed message comes back after 1 s, not 60
    )
    try:
        started.start(port=0, timeout=120)
        yield started
    finally:
        started.stop()
        if saved is None:
            os.environ.pop("RAMPART_DB_POOL_SIZE", None)
        else:
            os.environ["RAMPART_DB_POOL_SIZE"] = saved


@pytest.fixture(scope="module")
def secret(twin: Twin) -> str:
    assert twin.aws is not None
    spec = next(s for s in MANIFEST.secrets if s.name == "pix_webhook_secret")
    value = twin.aws.secret_value(spec)
    return value.split()[0]  # the newest: what the provider signs with


def rows(twin: Twin, query: str, *params: Any) -> list[tuple[Any, ...]]:
    assert twin.database_url is not None
    with psycopg.connect(twin.database_url, autocommit=True) as conn:
        return conn.execute(query, params).fetchall()


def charge_paid(reference: str, amount: str = "150.00") -> dict[str, Any]:
    return {
        "id": f"evt_{uuid.uuid4().hex}",
        "type": "charge.paid",
        "created_at": "2025-06-01T12:00:00Z",
        "data": {
            "charge_id": f"chg_{reference}",
            "reference": reference,
            "payment_id": f"pay_{uuid.uuid4().hex[:12]}",
            "amount": amount,
            "currency": "BRL",
            "payer_tax_id": "12345678900",
            "paid_at": "2025-06-01T11:59:00Z",
            "outcome": "accepted",
        },
    }


def post(twin: Twin, body: bytes, headers: dict[str, str], path: str = URL_PATH) -> requests.Response:
    return requests.post(
        f"{twin.url}{path}", data=body, headers={"Content-Type": "application/json", **headers}, timeout=15
    )


def problem(reply: requests.Response) -> str:
    assert reply.headers["Content-Type"].startswith("application/problem+json"), reply.headers
    assert "Traceback" not in reply.text
    return str(reply.json()["type"]).removeprefix("/problems/")


def payments(twin: Twin, reference: str) -> list[tuple[Any, ...]]:
    return rows(twin, "SELECT payment_id, amount::text, status FROM rails.payments WHERE reference = %s", reference)


def test_a_signed_delivery_is_acknowledged_and_reaches_the_rail_state(twin: Twin, secret: str) -> None:
    reference = f"ramp_{uuid.uuid4().hex[:12]}"
    event = charge_paid(reference)
    body = json.dumps(event).encode()
    reply = post(twin, body, sign(secret, event["id"], body))
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"received": True, "id": event["id"], "duplicate": False}
    found = eventually(lambda: payments(twin, reference), what="the payment in the rail state")
    assert [(p[0], p[2]) for p in found] == [(event["data"]["payment_id"], "accepted")]
    assert rows(twin, "SELECT outcome IS NOT NULL FROM webhooks.inbox WHERE webhook_id = %s", event["id"]) == [(True,)]


def test_a_replay_is_acknowledged_and_nothing_happens_twice(twin: Twin, secret: str) -> None:
    reference = f"ramp_{uuid.uuid4().hex[:12]}"
    event = charge_paid(reference)
    body = json.dumps(event).encode()
    headers = sign(secret, event["id"], body)
    first = post(twin, body, headers)
    assert first.status_code == 200, first.text
    eventually(lambda: payments(twin, reference), what="the payment applied")
    for _ in range(3):
        again = post(twin, body, headers)
        assert again.status_code == 200, again.text
        assert again.json()["duplicate"] is True
    time.sleep(1.0)  # give a wrongly queued duplicate the time to be applied: none may be
    assert len(payments(twin, reference)) == 1
    assert rows(twin, "SELECT count(*) FROM webhooks.inbox WHERE webhook_id = %s", event["id"]) == [(1,)]


@pytest.mark.parametrize(
    "forge",
    [
        lambda secret, event, body: sign(new_secret(), event["id"], body),  # another secret
        lambda secret, event, body: sign(secret, "evt_other", body),  # signed for another id
        lambda secret, event, body: sign(secret, event["id"], body, timestamp=int(time.time()) - 301),  # stale
        lambda secret, event, body: sign(secret, event["id"], body, timestamp=int(time.time()) + 301),  # future
        lambda secret, event, body: {},  # unsigned
    ],
    ids=["other-secret", "other-id", "stale", "future", "unsigned"],
)
def test_a_delivery_that_does_not_verify_is_refused_401_and_recorded_nowhere(
    twin: Twin, secret: str, forge: Callable[..., dict[str, str]]
) -> None:
    event = charge_paid(f"ramp_{uuid.uuid4().hex[:12]}")
    body = json.dumps(event).encode()
    headers = forge(secret, event, body)
    if "webhook-id" in headers:
        headers["webhook-id"] = event["id"]
    reply = post(twin, body, headers)
    assert reply.status_code == 401, reply.text
    assert problem(reply) == "unauthorized"
    assert rows(twin, "SELECT count(*) FROM webhooks.inbox WHERE webhook_id = %s", event["id"]) == [(0,)]


@pytest.mark.parametrize("path", ["/webhooks/providers/stripe", "/webhooks/providers", "/webhooks/providers/pix/extra"])
def test_an_unknown_provider_is_404_before_anything_else(twin: Twin, secret: str, path: str) -> None:
    reply = post(twin, b"{not json", {}, path)  # neither signed nor JSON: the provider is refused first
    assert reply.status_code == 404, reply.text
    assert problem(reply) == "not-found"
    assert reply.json()["instance"] == path


def test_a_verified_body_that_is_no_event_is_422(twin: Twin, secret: str) -> None:
    body = b"[1, 2]"
    reply = post(twin, body, sign(secret, f"evt_{uuid.uuid4().hex}", body))
    assert reply.status_code == 422, reply.text
    assert problem(reply) == "validation-error"


def test_an_event_that_keeps_failing_lands_in_the_dlq(twin: Twin, secret: str) -> None:
    assert twin.aws is not None
    reference = f"ramp_{uuid.uuid4().hex[:12]}"
    event = charge_paid(reference, amount="150.001")  # beyond BRL's scale: never appliable
    body = json.dumps(event).encode()
    reply = post(twin, body, sign(secret, event["id"], body))
    assert reply.status_code == 200, reply.text  # recorded and queued: the provider is done
    [(inbox_id,)] = rows(twin, "SELECT id FROM webhooks.inbox WHERE webhook_id = %s", event["id"])
    sqs = twin.aws.client("sqs")
    dlq = twin.aws.deployment.queue_dlqs["provider_events"]

    def dead_lettered() -> list[dict[str, Any]]:
        received = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, AttributeNames=["All"])
        return [m for m in received.get("Messages", []) if json.loads(m["Body"])["inbox_id"] == inbox_id]

    parked = eventually(dead_lettered, timeout=60, what="the failing event in the DLQ")
    max_receive_count = next(q.max_receive_count for q in MANIFEST.queues if q.name == "provider_events")
    assert int(parked[0]["Attributes"]["ApproximateReceiveCount"]) >= max_receive_count
    [(applied, attempts, error)] = rows(
        twin, "SELECT applied_at IS NOT NULL, attempts, last_error FROM webhooks.inbox WHERE id = %s", inbox_id
    )
    assert (applied, attempts >= max_receive_count) == (False, True)
    assert "amount" in error
    assert payments(twin, reference) == []


def test_the_requeue_schedule_runs(twin: Twin) -> None:
    reply = requests.post(f"{twin.url}/_twin/schedules/webhook-requeue/run", timeout=30)
    assert reply.status_code == 200, reply.text
    result = reply.json()["result"]
    assert set(result) == {"requeued", "pruned"}


def test_the_webhook_path_and_the_consumer_are_wired_from_the_manifest(twin: Twin) -> None:
    triggers = requests.get(f"{twin.url}/_twin/triggers", timeout=10).json()
    assert ("provider_webhook", "/webhooks/providers") in [(w["function"], w["path"]) for w in triggers["webhooks"]]
    consumers = {c["queue"]: c["function"] for c in triggers["queue_consumers"]}
    assert consumers["provider_events"] == "webhook_apply"
