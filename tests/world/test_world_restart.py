"""A restart of the world keeps every balance, nonce, charge, payment, mint, payout and its API key;
``/_sim`` for ``base`` (faucet, balances) answers as API.md says."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import requests

from tests.world.conftest import CNPJ, Http, Receiver, new_address, new_ramp_id, start_world


def test_the_faucet_and_balances(http: Http) -> None:
    address = new_address()
    reply = http.sim("POST", "/base/faucet", {"address": address, "asset": "USDC", "amount": "12.5"})
    assert reply.status_code == 200, reply.text
    balances = http.sim("GET", f"/base/balances/{address}").json()
    assert balances["balances"]["USDC"] == "12.5000000"  # printed at the ledger scale (7)
    assert Decimal(balances["balances"]["ETH"]) == 0
    assert balances["nonce"] == 0
    for body, field in [
        ({"address": "0x12", "asset": "USDC", "amount": "1"}, "/address"),
        ({"address": address, "asset": "DOGE", "amount": "1"}, "/asset"),
        ({"address": address, "asset": "USDC", "amount": "1.0000001"}, "/amount"),  # USDC has 6 decimals on base
        ({"address": address, "asset": "USDC", "amount": 1}, "/amount"),
    ]:
        refused = http.sim("POST", "/base/faucet", body)
        assert refused.status_code == 422, body
        assert refused.json()["errors"][0]["field"] == field, body
    assert http.sim("GET", "/base/balances/0xnope").status_code == 422
    assert http.sim("GET", "/stellar/balances/G").status_code == 404


@pytest.mark.slow
def test_a_restart_keeps_balances_nonces_charges_and_operations(
    tmp_path: Path, receiver: Receiver, secret_file: Path
) -> None:
    data = tmp_path / "world"
    world = start_world(data, receiver, secret_file)
    try:
        http = Http(world)
        address = new_address()
        http.sim("POST", "/base/faucet", {"address": address, "asset": "ETH", "amount": "1"})
        platform = http.platform()
        http.sim("POST", "/base/faucet", {"address": platform["provider_brla"], "asset": "BRLA", "amount": "30"})
        ramp = new_ramp_id()
        charge = http.charge(ramp, amount="20.00")
        payment = http.sim("POST", "/pix/payments", {"ramp_id": ramp}).json()
        mint = http.pix(
            "POST",
            "/mints",
            {"key": f"{ramp}:mint", "address": address, "amount": "20", "payment_id": payment["payment_id"]},
        ).json()
        payout = http.pix(
            "POST",
            "/payouts",
            {"key": f"{ramp}:payout", "pix_key": "a@b.c", "tax_id": CNPJ, "name": "A", "amount": "10.00"},
        ).json()
        open_ramp = new_ramp_id()
        open_charge = http.charge(open_ramp, amount="5.00")
        before = {a: http.sim("GET", f"/base/balances/{a}").json() for a in (address, *platform.values())}
        key, url = world.pix_api_key, world.url
    finally:
        world.stop()
    assert world.url == url
    again = start_world(data, receiver, secret_file)
    try:
        http = Http(again)
        assert http.key == key
        after = {a: http.sim("GET", f"/base/balances/{a}").json() for a in before}
        assert after == before
        assert http.pix("GET", f"/charges/{charge['charge_id']}").json()["status"] == "paid"
        assert http.pix("GET", f"/mints/{ramp}:mint").json() == mint
        assert http.pix("GET", f"/payouts/{ramp}:payout").json() == payout
        # Idempotency survives: the same keys are not acted on again.
        repeat = http.pix(
            "POST",
            "/mints",
            {"key": f"{ramp}:mint", "address": address, "amount": "20", "payment_id": payment["payment_id"]},
        )
        assert repeat.status_code == 200
        assert repeat.json() == mint
        assert http.balance(address, "BRLA") == Decimal("20")
        # The open charge is still payable after the restart.
        assert http.sim("POST", "/pix/payments", {"ramp_id": open_ramp}).json()["charge_id"] == open_charge["charge_id"]
        expires = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
        assert (
            http.pix(
                "POST",
                "/charges",
                {"reference": new_ramp_id(), "amount": "1.00", "payer_tax_id": CNPJ, "expires_at": expires},
            ).status_code
            == 201
        )
        assert requests.get(f"{again.url}/health", timeout=10).json()["status"] == "ok"
    finally:
        again.stop()
