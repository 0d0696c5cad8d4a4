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
from tests.world.conftest import PAYER, new_address, new_ramp_id

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
