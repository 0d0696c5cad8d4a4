"""Webhooks out: signed per Standard Webhooks with the newest secret (the backend's verifier and the
pix adapter accept them), retried after a failure, kept across a restart until delivered."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from rampart.adapters.rails.pix import PixRail
from rampart.adapters.webhooks.standard import StandardWebhooksVerifier, sign
from rampart.rails.events import ChargePaid
from rampart.ramps.rails import WebhookRejected
from rampart.webhooks.errors import InvalidSignature
from tests.world.conftest import Http, Receiver, new_ramp_id, start_world


def delivery_of(receiver: Receiver, event_id: str) -> dict[str, object]:
    return next(d for d in receiver.deliveries if d["headers"]["webhook-id"] == event_id and d["status"] == 200)


def test_webhooks_are_signed_with_the_newest_secret(http: Http, receiver: Receiver, webhook_secrets: list[str]) -> None:
    ramp = new_ramp_id()
    http.charge(ramp)
    http.sim("POST", "/pix/payments", {"ramp_id": ramp})
    [event] = receiver.wait_for("charge.paid", reference=ramp)
    delivery = delivery_of(receiver, event["id"])
    headers, body = delivery["headers"], str(delivery["body"]).encode()
    assert isinstance(headers, dict)
    assert delivery["path"] == "/webhooks/providers/pix"
    newest, oldest = webhook_secrets
    assert StandardWebhooksVerifier.from_secret(newest).verify(headers, body) == event["id"]
    assert StandardWebhooksVerifier.from_secret(" ".join(webhook_secrets)).verify(headers, body) == event["id"]
    with pytest.raises(InvalidSignature):
        StandardWebhooksVerifier.from_secret(oldest).verify(headers, body)  # signed by the first only

    rail = PixRail(http.url, api_key=http.key, webhook_secret=" ".join(webhook_secrets))
    parsed = rail.parse_webhook(headers, body)
    assert isinstance(parsed, ChargePaid)
    assert parsed.reference == ramp
    assert parsed.id == event["id"]
    forged = {**headers, "webhook-signature": sign(oldest, event["id"], body + b" ")["webhook-signature"]}
    with pytest.raises(WebhookRejected):
        rail.verify_webhook(forged, body)
    stale = sign(newest, event["id"], body, timestamp=int(headers["webhook-timestamp"]) - 3600)
    with pytest.raises(WebhookRejected):
        rail.verify_webhook(stale, body)
    with pytest.raises(WebhookRejected):
        PixRail(http.url, api_key=http.key, webhook_secret=oldest).verify_webhook(headers, body)


def test_a_failed_delivery_is_retried_until_acknowledged(http: Http, receiver: Receiver) -> None:
    ramp = new_ramp_id()
    with receiver.lock:
        receiver.fail_matching[ramp] = 2  # the first two deliveries of this ramp's event are refused
    http.charge(ramp)
    http.sim("POST", "/pix/payments", {"ramp_id": ramp})
    [event] = receiver.wait_for("charge.paid", reference=ramp)
    attempts = [d["status"] for d in receiver.deliveries if d["headers"]["webhook-id"] == event["id"]]
    assert attempts == [500, 500, 200]


@pytest.mark.slow
def test_undelivered_webhooks_survive_a_restart(tmp_path: Path, receiver: Receiver, secret_file: Path) -> None:
    data = tmp_path / "world"
    first = start_world(data, None, secret_file)  # no webhook URL: everything waits in the outbox
    try:
        client = Http(first)
        ramp = new_ramp_id()
        client.charge(ramp)
        client.sim("POST", "/pix/payments", {"ramp_id": ramp, "amount": "1.00"})
        pending = client.sim("GET", "/webhooks").json()["pending"]
        assert sorted(p["type"] for p in pending) == ["charge.paid", "refund.completed"]
    finally:
        first.stop()
    second = start_world(data, receiver, secret_file)
    try:
        receiver.wait_for("charge.paid", reference=ramp)
        receiver.wait_for("refund.completed", reference=ramp)
        assert requests.get(f"{second.url}/_sim/webhooks", timeout=10).json()["pending"] == []
    finally:
        second.stop()
