"""The world beside the twin, as ``make run`` starts it (``python -m infra.local`` as a child): the
twin forwards ``/_sim/…`` to it unchanged, hands the functions its URLs, and the world's signed
webhooks reach the backend's ``POST /webhooks/providers/pix`` and are acknowledged."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from infra.local.child import child_twin
from tests.world.conftest import PAYER, Http, Receiver, new_address, new_ramp_id, start_world

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("world_twin")]


@pytest.fixture(scope="module")
def twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    from tests.e2e.conftest import _fresh_database

    state = tmp_path_factory.mktemp("twin")
    with child_twin(_fresh_database("rampart_world"), state, env={"RAMPART_DB_POOL_SIZE": "4"}) as url:
        yield url, state


def world_of(state: Path) -> tuple[str, str]:
    """The world's URL (its log's ready line) and provider API key, as the twin gave them."""
    log = (state / "world" / "world.log").read_text()
    url = re.findall(r"Rampart world listening on (http://127\.0\.0\.1:\d+)", log)[-1]
    return url, (state / "world" / "pix" / "api-key").read_text().strip()


def test_the_twin_forwards_sim_to_its_world(twin: tuple[str, Path]) -> None:
    url, _ = twin
    address = new_address()
    reply = requests.post(
        f"{url}/_sim/base/faucet", json={"address": address, "asset": "ETH", "amount": "0.5"}, timeout=60
    )
    assert reply.status_code == 200, reply.text
    balances = requests.get(f"{url}/_sim/base/balances/{address}", timeout=60).json()
    assert balances["balances"]["ETH"] == "0.500000000000000000"
    refused = requests.post(
        f"{url}/_sim/base/faucet", json={"address": "0x1", "asset": "ETH", "amount": "1"}, timeout=60
    )
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "/address"
    script = requests.post(f"{url}/_sim/providers/pix/script", json={"fail_next": 0}, timeout=60)
    assert script.status_code == 200
    assert requests.get(f"{url}/_sim/pix/payouts", params={"ramp_id": "nope"}, timeout=60).json() == {"items": []}


def test_world_webhooks_reach_the_backend_signed(twin: tuple[str, Path]) -> None:
    url, state = twin
    world, key = world_of(state)
    ramp = new_ramp_id()
    charge = requests.post(
        f"{world}/pix/v1/charges",
        json={"reference": ramp, "amount": "10.00", "payer_tax_id": PAYER, "expires_at": "2099-01-01T00:00:00Z"},
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    assert charge.status_code == 201, charge.text
    paid = requests.post(f"{url}/_sim/pix/payments", json={"ramp_id": ramp}, timeout=60)
    assert paid.status_code == 200
    assert paid.json()["outcome"] == "accepted"
    deadline = time.monotonic() + 60
    while True:
        outbox = requests.get(f"{url}/_sim/webhooks", timeout=60).json()
        mine = [d for d in outbox["delivered"] if d["type"] == "charge.paid"]
        if mine and not outbox["pending"]:
            break
        assert time.monotonic() < deadline, f"not acknowledged by the backend: {outbox}"
        time.sleep(0.2)


def test_the_twin_never_forwards_a_new_webhook_target(twin: tuple[str, Path]) -> None:
    """Where the world's webhooks go is the twin's to set (an attaching twin tells its world directly):
    a client of the twin cannot redirect them through ``/_sim``."""
    url, _ = twin
    body = {"url": "http://127.0.0.1:9/webhooks/providers/pix", "secret": "whsec_" + "A" * 32}
    refused = requests.post(f"{url}/_sim/world/webhook", json=body, timeout=60)
    assert refused.status_code == 403, refused.text
    odd = requests.post(f"{url}/_sim//world/webhook/", json=body, timeout=60)  # the world would read it so
    assert odd.status_code in (403, 404), odd.text
    assert requests.get(f"{url}/_sim/world", timeout=60).json()["webhook_url"].startswith(url)


def test_a_world_takes_the_webhook_target_of_a_twin_that_attaches(tmp_path: Path, receiver: Receiver) -> None:
    """``POST /_sim/world/webhook {url, secret}`` (what a twin with ``RAMPART_WORLD_URL`` sends at each
    start): what waited in the outbox, and everything after, goes there, signed with that secret."""
    from rampart.adapters.webhooks.standard import StandardWebhooksVerifier, new_secret

    world = start_world(tmp_path / "world", None, None)
    try:
        http = Http(world)
        ramp = new_ramp_id()
        http.charge(ramp)
        assert http.sim("POST", "/pix/payments", {"ramp_id": ramp}).status_code == 200
        assert [e["type"] for e in http.sim("GET", "/webhooks").json()["pending"]] == ["charge.paid"]  # nowhere to go
        for bad, field in [
            ({"url": "ftp://x", "secret": new_secret()}, "/url"),
            ({"url": receiver.url, "secret": "plain"}, "/secret"),
            ({"url": receiver.url}, "/secret"),
        ]:
            refused = http.sim("POST", "/world/webhook", bad)
            assert refused.status_code == 422, refused.text
            assert refused.json()["errors"][0]["field"] == field
        secret = new_secret()
        taken = http.sim("POST", "/world/webhook", {"url": receiver.url, "secret": secret})
        assert taken.status_code == 200, taken.text
        assert taken.json() == {"webhook_url": receiver.url}  # the secret is never echoed
        assert http.sim("GET", "/world").json()["webhook_url"] == receiver.url
        [event] = receiver.wait_for("charge.paid", reference=ramp)
        delivery = next(d for d in receiver.deliveries if d["headers"]["webhook-id"] == event["id"])
        headers, body = delivery["headers"], str(delivery["body"]).encode()
        assert isinstance(headers, dict)
        assert StandardWebhooksVerifier.from_secret(secret).verify(headers, body) == event["id"]
    finally:
        world.stop()
