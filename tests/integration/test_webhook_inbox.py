"""The webhook inbox and the rail state on PostgreSQL: concurrent deliveries of one id recorded
and queued once; applying idempotent (also concurrently); the requeue schedule's picks; pruning
of delivery ids; failures noted and nothing applied; the rail state's rules."""

from __future__ import annotations

import json
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from rampart.adapters.postgres.db import PooledDatabase
from rampart.adapters.postgres.rail_store import PostgresRailReader
from rampart.adapters.postgres.webhook_store import PostgresWebhookStore
from rampart.adapters.webhooks.standard import StandardWebhooksVerifier, new_secret, sign
from rampart.core.errors import Transient
from rampart.rails import MalformedEvent, RailConflict
from rampart.webhooks import QueueUnavailable, WebhookService
from rampart.webhooks.models import DEDUP_HORIZON, MAX_REQUEUES
from rampart.wiring.webhooks import apply_to_rails

SECRET = new_secret()
PATH = "/webhooks/providers/pix"
ADDRESS = "0x" + "12" * 20
TX = "0x" + "ab" * 32


class Queue:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.down = False
        self._lock = threading.Lock()

    def send(self, message: dict[str, Any]) -> None:
        if self.down:
            raise QueueUnavailable("down")
        with self._lock:
            self.sent.append(message)


@pytest.fixture
def queue() -> Queue:
    return Queue()


@pytest.fixture
def webhooks(db: PooledDatabase, queue: Queue) -> WebhookService:
    return WebhookService(
        PostgresWebhookStore(db), queue, lambda provider: StandardWebhooksVerifier.from_secret(SECRET)
    )


@pytest.fixture
def rails(db: PooledDatabase) -> PostgresRailReader:
    return PostgresRailReader(db)


def uid(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:16]}"


def charge_paid(reference: str, payment_id: str, amount: str = "150.00", outcome: str = "accepted") -> dict[str, Any]:
    return {
        "id": uid("evt"),
        "type": "charge.paid",
        "created_at": "2025-06-01T12:00:00Z",
        "data": {
            "charge_id": f"chg_{reference}",
            "reference": reference,
            "payment_id": payment_id,
            "amount": amount,
            "currency": "BRL",
            "payer_tax_id": "12345678900",
            "paid_at": "2025-06-01T11:59:00Z",
            "outcome": outcome,
        },
    }


def refund(reference: str, payment_id: str, refund_id: str, amount: str = "150.00") -> dict[str, Any]:
    return {
        "id": uid("evt"),
        "type": "refund.completed",
        "created_at": "2025-06-01T12:05:00Z",
        "data": {
            "refund_id": refund_id,
            "payment_id": payment_id,
            "charge_id": f"chg_{reference}",
            "reference": reference,
            "amount": amount,
            "currency": "BRL",
        },
    }


def mint(key: str, status: str = "completed", amount: str = "150") -> dict[str, Any]:
    data: dict[str, Any] = {"key": key, "address": ADDRESS, "amount": amount, "currency": "BRLA"}
    data.update({"tx_hash": TX} if status == "completed" else {"reason": "refused"})
    return {"id": uid("evt"), "type": f"mint.{status}", "created_at": "2025-06-01T12:06:00Z", "data": data}


def deliver(webhooks: WebhookService, event: dict[str, Any], webhook_id: str | None = None) -> Any:
    body = json.dumps(event).encode()
    return webhooks.receive(PATH, sign(SECRET, webhook_id or event["id"], body), body)


def apply_all(webhooks: WebhookService, queue: Queue) -> list[Any]:
    applied = [webhooks.apply_message(m, apply_to_rails) for m in queue.sent]
    queue.sent.clear()
    return applied


def sql(pg_url: str, query: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        cur = conn.execute(query, params)
        return cur.fetchall() if cur.description else []


# recording -------------------------------------------------------------------------------------


def test_concurrent_deliveries_of_one_id_are_recorded_once_and_queued_once(
    webhooks: WebhookService, queue: Queue, pg_url: str
) -> None:
    event = charge_paid(uid("ramp"), uid("pay"))
    body = json.dumps(event).encode()
    headers = sign(SECRET, event["id"], body)
    barrier = threading.Barrier(12)

    def one(_: int) -> Any:
        barrier.wait()
        return webhooks.receive(PATH, headers, body)

    with ThreadPoolExecutor(12) as pool:
        receipts = list(pool.map(one, range(12)))
    assert sum(not r.duplicate for r in receipts) == 1
    assert all(r.queued for r in receipts)
    assert len({r.inbox_id for r in receipts}) == 1
    assert [m["webhook_id"] for m in queue.sent] == [event["id"]]
    rows = sql(pg_url, "SELECT count(*) FROM webhooks.inbox WHERE webhook_id = %s", event["id"])
    assert rows == [(1,)]


def test_the_raw_body_and_type_are_recorded(webhooks: WebhookService, db: PooledDatabase) -> None:
    event = charge_paid(uid("ramp"), uid("pay"))
    body = json.dumps(event, indent=3).encode()  # not what a re-serialization would give
    receipt = webhooks.receive(PATH, sign(SECRET, event["id"], body), body)
    stored = PostgresWebhookStore(db).get(receipt.inbox_id)
    assert stored is not None
    assert (stored.body, stored.event_type, stored.provider) == (body, "charge.paid", "pix")
    assert stored.queued_at is not None
    assert stored.applied_at is None


# applying --------------------------------------------------------------------------------------


def test_applying_is_idempotent_even_when_concurrent(
    webhooks: WebhookService, queue: Queue, rails: PostgresRailReader, pg_url: str
) -> None:
    reference, payment_id = uid("ramp"), uid("pay")
    deliver(webhooks, charge_paid(reference, payment_id))
    [message] = queue.sent
    barrier = threading.Barrier(8)

    def one(_: int) -> Any:
        barrier.wait()
        return webhooks.apply_message(message, apply_to_rails)

    with ThreadPoolExecutor(8) as pool:
        applied = list(pool.map(one, range(8)))
    assert sum(not a.already for a in applied) == 1
    assert {a.outcome for a in applied} == {f"payment {payment_id} recorded for {reference} (accepted)"}
    [payment] = rails.payments_for("pix", reference)
    assert (payment.payment_id, payment.amount, payment.status) == (payment_id, Decimal("150.00"), "accepted")
    assert str(payment.amount) == "150.00"
    rows = sql(pg_url, "SELECT applied_at IS NOT NULL, attempts FROM webhooks.inbox WHERE id = %s", message["inbox_id"])
    assert rows == [(True, 0)]


def test_a_malformed_event_raises_is_noted_and_applies_nothing(
    webhooks: WebhookService, queue: Queue, rails: PostgresRailReader, db: PooledDatabase
) -> None:
    reference = uid("ramp")
    event = charge_paid(reference, uid("pay"), amount="150.001")
    deliver(webhooks, event)
    [message] = queue.sent
    for attempt in (1, 2):
        with pytest.raises(MalformedEvent) as refused:
            webhooks.apply_message(message, apply_to_rails)
        assert refused.value.field == "/data/amount"
        stored = PostgresWebhookStore(db).get(message["inbox_id"])
        assert stored is not None
        assert (stored.applied_at, stored.attempts) == (None, attempt)
        assert stored.last_error is not None
        assert "amount" in stored.last_error
    assert rails.payments_for("pix", reference) == []


def test_a_refund_marks_the_payment_refunded_once(
    webhooks: WebhookService, queue: Queue, rails: PostgresRailReader
) -> None:
    reference, payment_id, refund_id = uid("ramp"), uid("pay"), uid("rfd")
    deliver(webhooks, charge_paid(reference, payment_id, amount="149.00", outcome="refunding"))
    apply_all(webhooks, queue)
    assert [p.status for p in rails.payments_for("pix", reference)] == ["refunding"]
    deliver(webhooks, refund(reference, payment_id, refund_id, amount="149.00"))
    deliver(webhooks, refund(reference, payment_id, refund_id, amount="149.00"))  # another id, same refund
    first, second = apply_all(webhooks, queue)
    assert first.outcome == f"payment {payment_id} refunded ({refund_id})"
    assert second.outcome == f"payment {payment_id} already refunded"
    [payment] = rails.payments_for("pix", reference)
    assert (payment.status, payment.refund_id) == ("refunded", refund_id)
    assert payment.refunded_at is not None


def test_a_refund_before_its_payment_is_retried_later(
    webhooks: WebhookService, queue: Queue, rails: PostgresRailReader
) -> None:
    reference, payment_id = uid("ramp"), uid("pay")
    deliver(webhooks, refund(reference, payment_id, uid("rfd")))
    [early] = queue.sent
    with pytest.raises(Transient):
        webhooks.apply_message(early, apply_to_rails)
    queue.sent.clear()
    deliver(webhooks, charge_paid(reference, payment_id))
    apply_all(webhooks, queue)
    assert not webhooks.apply_message(early, apply_to_rails).already  # the retry applies it
    assert [p.status for p in rails.payments_for("pix", reference)] == ["refunded"]


def test_a_partial_refund_or_another_amount_for_a_payment_is_a_conflict(
    webhooks: WebhookService, queue: Queue, rails: PostgresRailReader
) -> None:
    reference, payment_id = uid("ramp"), uid("pay")
    deliver(webhooks, charge_paid(reference, payment_id))
    apply_all(webhooks, queue)
    deliver(webhooks, refund(reference, payment_id, uid("rfd"), amount="100.00"))
    deliver(webhooks, charge_paid(reference, payment_id, amount="151.00"))
    for message in list(queue.sent):
        with pytest.raises(RailConflict):
            webhooks.apply_message(message, apply_to_rails)
    [payment] = rails.payments_for("pix", reference)
    assert (payment.amount, payment.status) == (Decimal("150.00"), "accepted")


def test_mints_by_key_same_fact_twice_is_nothing_a_contradiction_is_a_conflict(
    webhooks: WebhookService, queue: Queue, rails: PostgresRailReader
) -> None:
    key = uid("mint")
    deliver(webhooks, mint(key))
    deliver(webhooks, mint(key))  # the provider reports it again under another id
    first, second = apply_all(webhooks, queue)
    assert (first.outcome, second.outcome) == (f"mint {key} completed", f"mint {key} already completed")
    deliver(webhooks, mint(key, "failed"))
    [message] = queue.sent
    with pytest.raises(RailConflict):
        webhooks.apply_message(message, apply_to_rails)
    operation = rails.operation("pix", "mint", key)
    assert operation is not None
    assert (operation.status, operation.amount, operation.tx_hash) == ("completed", Decimal("150"), TX)
    assert str(operation.amount) == "150.000000000000000000"


def test_payouts_by_key(webhooks: WebhookService, queue: Queue, rails: PostgresRailReader) -> None:
    key = uid("payout")
    event = {
        "id": uid("evt"),
        "type": "payout.failed",
        "created_at": "2025-06-01T12:00:00Z",
        "data": {"key": key, "pix_key": "a@b.c", "amount": "7.10", "currency": "BRL", "reason": "bad key"},
    }
    deliver(webhooks, event)
    apply_all(webhooks, queue)
    operation = rails.operation("pix", "payout", key)
    assert operation is not None
    assert (operation.kind, operation.status, operation.destination, operation.reason) == (
        "payout",
        "failed",
        "a@b.c",
        "bad key",
    )


# the requeue schedule ---------------------------------------------------------------------------


def test_requeue_picks_up_what_was_recorded_but_never_queued(
    webhooks: WebhookService, queue: Queue, pg_url: str, rails: PostgresRailReader
) -> None:
    reference = uid("ramp")
    queue.down = True
    receipt = deliver(webhooks, charge_paid(reference, uid("pay")))
    assert (receipt.duplicate, receipt.queued) == (False, False)
    queue.down = False
    sql(pg_url, "UPDATE webhooks.inbox SET received_at = now() - interval '1 minute' WHERE id = %s", receipt.inbox_id)
    assert webhooks.requeue() >= 1
    [message] = [m for m in queue.sent if m["inbox_id"] == receipt.inbox_id]
    assert all(m["inbox_id"] != receipt.inbox_id for m in _requeued_now(webhooks, queue))  # claimed: not twice
    webhooks.apply_message(message, apply_to_rails)
    assert [p.status for p in rails.payments_for("pix", reference)] == ["accepted"]
    assert all(m["inbox_id"] != receipt.inbox_id for m in _requeued_now(webhooks, queue))  # applied: never again


def _requeued_now(webhooks: WebhookService, queue: Queue) -> list[dict[str, Any]]:
    queue.sent.clear()
    webhooks.requeue()
    sent = list(queue.sent)
    queue.sent.clear()
    return sent


def test_requeue_skips_recent_rows_and_caps_stale_ones(webhooks: WebhookService, queue: Queue, pg_url: str) -> None:
    receipt = deliver(webhooks, mint(uid("mint")))
    queue.sent.clear()
    assert all(m["inbox_id"] != receipt.inbox_id for m in _requeued_now(webhooks, queue))  # just queued
    for round_ in range(MAX_REQUEUES + 2):
        sql(
            pg_url,
            "UPDATE webhooks.inbox SET received_at = now() - interval '1 hour', "
            "queued_at = now() - interval '20 minutes' WHERE id = %s",
            receipt.inbox_id,
        )
        picked = [m for m in _requeued_now(webhooks, queue) if m["inbox_id"] == receipt.inbox_id]
        assert len(picked) == (1 if round_ < MAX_REQUEUES else 0), round_
    assert sql(pg_url, "SELECT requeues FROM webhooks.inbox WHERE id = %s", receipt.inbox_id) == [(MAX_REQUEUES,)]


def test_pruning_forgets_delivery_ids_after_the_horizon_only(
    webhooks: WebhookService, queue: Queue, pg_url: str
) -> None:
    old, recent = mint(uid("mint")), mint(uid("mint"))
    first = deliver(webhooks, old)
    deliver(webhooks, recent)
    hours = int(DEDUP_HORIZON / timedelta(hours=1)) + 1
    sql(
        pg_url,
        "UPDATE webhooks.deliveries SET received_at = now() - make_interval(hours => %s) WHERE webhook_id = %s",
        hours,
        old["id"],
    )
    assert webhooks.prune() >= 1
    remaining = sql(
        pg_url, "SELECT webhook_id FROM webhooks.deliveries WHERE webhook_id = ANY(%s)", [old["id"], recent["id"]]
    )
    assert remaining == [(recent["id"],)]
    assert sql(pg_url, "SELECT count(*) FROM webhooks.inbox WHERE id = %s", first.inbox_id) == [(1,)]  # kept
    assert deliver(webhooks, recent).duplicate
    assert not deliver(webhooks, old).duplicate  # past the horizon: a new delivery
