"""The webhook service's order of checks and its queueing decisions, on in-memory fakes (the
PostgreSQL inbox is tested in tests/integration/test_webhook_inbox.py)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from rampart.adapters.webhooks.standard import StandardWebhooksVerifier, new_secret, sign
from rampart.core.errors import Permanent
from rampart.webhooks import InboxEvent, MalformedDelivery, QueueUnavailable, Recorded, UnknownProvider
from rampart.webhooks.errors import InvalidSignature
from rampart.webhooks.providers import PROVIDERS, Provider, provider_from_path
from rampart.webhooks.service import WebhookService

SECRET = new_secret()
BODY = json.dumps({"id": "evt_1", "type": "charge.paid", "data": {}}).encode()


class FakeStore:
    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], InboxEvent] = {}
        self.released: list[int] = []

    def record(self, provider: str, webhook_id: str, event_type: str, body: bytes) -> Recorded:
        now = datetime.now(UTC)
        known = self.rows.get((provider, webhook_id))
        if known is None:
            event = InboxEvent(len(self.rows) + 1, provider, webhook_id, event_type, body, now, queued_at=now)
            self.rows[(provider, webhook_id)] = event
            return Recorded(event, new=True, claimed=True)
        if known.queued_at is None:
            claimed = InboxEvent(**{**known.__dict__, "queued_at": now})
            self.rows[(provider, webhook_id)] = claimed
            return Recorded(claimed, new=False, claimed=True)
        return Recorded(known, new=False, claimed=False)

    def release(self, inbox_id: int) -> None:
        self.released.append(inbox_id)
        for key, event in self.rows.items():
            if event.id == inbox_id:
                self.rows[key] = InboxEvent(**{**event.__dict__, "queued_at": None})

    def claim_due(self, **kwargs: Any) -> list[InboxEvent]:
        return [e for e in self.rows.values() if e.queued_at is None]

    def prune(self, horizon: timedelta) -> int:
        return 0

    def apply(self, inbox_id: int, applier: Any) -> Any:
        raise AssertionError("not used here")


class FakeQueue:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.down = False

    def send(self, message: dict[str, Any]) -> None:
        if self.down:
            raise QueueUnavailable("down")
        self.sent.append(message)


class CountingVerifier:
    def __init__(self) -> None:
        self.asked: list[str] = []

    def __call__(self, provider: Provider) -> Any:
        self.asked.append(provider.name)
        return StandardWebhooksVerifier.from_secret(SECRET)


def build() -> tuple[WebhookService, FakeStore, FakeQueue, CountingVerifier]:
    store, queue, verifiers = FakeStore(), FakeQueue(), CountingVerifier()
    return WebhookService(store, queue, verifiers), store, queue, verifiers  # type: ignore[arg-type]


def headers(webhook_id: str = "evt_1", body: bytes = BODY) -> Mapping[str, str]:
    return sign(SECRET, webhook_id, body)


@pytest.mark.parametrize(
    "path",
    ["/webhooks/providers/stripe", "/webhooks/providers", "/webhooks/providers/pix/x", "/webhooks/providers/PIX"],
)
def test_an_unknown_provider_is_refused_before_any_signature_is_looked_at(path: str) -> None:
    webhooks, store, _, verifiers = build()
    with pytest.raises(UnknownProvider) as refused:
        webhooks.receive(path, {}, b"not even json")
    assert refused.value.status == 404
    assert verifiers.asked == []
    assert store.rows == {}


def test_provider_paths_with_and_without_the_prefix() -> None:
    assert provider_from_path("/webhooks/providers/pix", "/webhooks/providers").name == "pix"
    assert provider_from_path("/webhooks/providers/pix/", "/webhooks/providers").name == "pix"
    assert provider_from_path("/pix", "/webhooks/providers").name == "pix"  # a function URL's root
    assert set(PROVIDERS) == {"pix"}


def test_a_bad_signature_is_refused_before_the_body_is_parsed() -> None:
    webhooks, store, queue, _ = build()
    with pytest.raises(InvalidSignature):
        webhooks.receive("/webhooks/providers/pix", sign(new_secret(), "evt_1", b"{"), b"{")
    assert store.rows == {}
    assert queue.sent == []


@pytest.mark.parametrize("body", [b"[1]", b'{"type": 5}', b"{", b'{"id": "x"}', b'{"type": ""}'])
def test_a_verified_body_that_is_no_event_is_refused_unrecorded(body: bytes) -> None:
    webhooks, store, _, _ = build()
    with pytest.raises(MalformedDelivery):
        webhooks.receive("/webhooks/providers/pix", headers(body=body), body)
    assert store.rows == {}


def test_a_delivery_is_recorded_then_queued_and_a_duplicate_does_nothing() -> None:
    webhooks, _, queue, _ = build()
    first = webhooks.receive("/webhooks/providers/pix", headers(), BODY)
    assert (first.duplicate, first.queued) == (False, True)
    again = webhooks.receive("/webhooks/providers/pix", headers(), BODY)
    assert (again.duplicate, again.queued, again.inbox_id) == (True, True, first.inbox_id)
    assert queue.sent == [{"inbox_id": first.inbox_id, "provider": "pix", "webhook_id": "evt_1"}]


def test_a_queue_failure_releases_the_claim_and_the_retry_queues_it() -> None:
    webhooks, store, queue, _ = build()
    queue.down = True
    first = webhooks.receive("/webhooks/providers/pix", headers(), BODY)
    assert (first.duplicate, first.queued) == (False, False)
    assert store.released == [first.inbox_id]
    queue.down = False
    retry = webhooks.receive("/webhooks/providers/pix", headers(), BODY)
    assert (retry.duplicate, retry.queued) == (True, True)
    assert len(queue.sent) == 1


def test_a_message_naming_no_inbox_row_is_permanent() -> None:
    webhooks, _, _, _ = build()
    for body in ({}, {"inbox_id": "1"}, {"inbox_id": 0}, [], {"inbox_id": True}):
        with pytest.raises(Permanent):
            webhooks.apply_message(body, lambda event, tx: "")
