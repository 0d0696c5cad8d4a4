"""A failed on-ramp gives the user's BRL back (API.md "Ramps"; issue 11, "BRL on … refunds").

The payment is accepted, then a later phase fails for good, forced through the world's scripts:
the gas funder's transaction refused (nothing minted: the rail refunds the payment at once), the
mint refused (likewise), the swap reverted after the mint (the operator first sends the BRLA back
from the ephemeral to the provider's account, where the issuer burns it for the refund). Each ends
``failed`` with ``refund: {amount: input_amount, currency: "BRL", status: "completed"}``, exactly
one refund payout of ``input_amount`` to the payer, no BRLA left on the ephemeral, and
reconciliation clean. A ramp whose BRLA was swapped already is left for an operator: no refund.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from tests.e2e.api import admin
from tests.e2e.ramps import CPF_DIGITS, Ramps, Registered
from tests.support.waiting import eventually

pytestmark = pytest.mark.xdist_group("ramps")


@pytest.fixture(scope="module")
def carol(twin_url: str) -> Ramps:
    return Ramps(twin_url)


@pytest.fixture
def scripts(carol: Ramps) -> Iterator[Any]:
    """Sets a provider's script; every script is reset afterwards, whatever the test did."""

    def script(provider: str, **body: Any) -> None:
        reply = carol.anonymous.post(f"/_sim/providers/{provider}/script", {"reset": True, **body})
        assert reply.status == 200, reply

    try:
        yield script
    finally:
        for provider in ("base", "pix"):
            carol.anonymous.post(f"/_sim/providers/{provider}/script", {"reset": True})


def _pay_and_settle(carol: Ramps, registered: Registered) -> dict[str, Any]:
    paid = carol.anonymous.post("/_sim/pix/payments", {"ramp_id": registered.id})
    assert paid.status == 200, paid
    done = carol.settled(registered.id)
    assert (done["status"], done["phase"]) == ("failed", "failed"), done
    (error,) = done["errors"]
    assert "Traceback" not in error["message"]
    return done


def _refunded(carol: Ramps, registered: Registered, done: dict[str, Any]) -> dict[str, Any]:
    """The refund as the ramp shows it once the rail's webhook came, and the rail's payouts."""
    amount = registered.ramp["input_amount"]

    def completed() -> dict[str, Any] | None:
        shown = carol.get(registered.id)
        return shown if (shown["refund"] or {}).get("status") == "completed" else None

    shown = eventually(completed, timeout=30, what="the refund completed")
    assert shown["refund"] == {"amount": amount, "currency": "BRL", "status": "completed"}
    payouts = carol.anonymous.get(f"/_sim/pix/payouts?ramp_id={registered.id}").body["items"]
    assert [(p["kind"], p["amount"], p["status"], p["pix_key"]) for p in payouts] == [
        ("refund", amount, "completed", CPF_DIGITS)
    ]
    return shown


def _clean(carol: Ramps, registered: Registered) -> None:
    left = carol.balances(registered.keys.ephemeral.address)["balances"]
    assert Decimal(left["BRLA"]) == 0, left
    report = admin(carol.base).get("/v1/admin/reconciliation")
    assert report.status == 200, report
    assert report.body["differences"] == [], report.body["differences"]


def test_the_gas_funders_transaction_refused_the_rail_refunds_the_payment(carol: Ramps, scripts: Any) -> None:
    registered = carol.started("on")
    ephemeral = registered.keys.ephemeral.address
    scripts("base", fail_next=1, failure="reject", match={"to": ephemeral})  # fund: the ETH to the ephemeral
    done = _pay_and_settle(carol, registered)
    assert done["errors"][0]["phase"] == "fund"
    assert [h["phase"] for h in done["history"]] == ["initial", "payment", "fund", "failed"]
    _refunded(carol, registered, done)
    assert carol.balances(ephemeral)["nonce"] == 0  # nothing was minted, nothing moved
    _clean(carol, registered)


def test_a_refused_mint_the_rail_refunds_the_payment(carol: Ramps, scripts: Any) -> None:
    registered = carol.started("on")
    scripts("pix", fail_next=1, failure="reject", match={"operation": "mint", "reference": registered.id})
    done = _pay_and_settle(carol, registered)
    assert done["errors"][0]["phase"] == "mint"
    _refunded(carol, registered, done)
    _clean(carol, registered)


def test_a_swap_reverted_after_the_mint_returns_the_brla_and_the_rail_refunds(carol: Ramps, scripts: Any) -> None:
    registered = carol.started("on")
    ephemeral = registered.keys.ephemeral.address
    swap = next(tx for tx in registered.ramp["unsigned_txs"] if tx["phase"] == "swap")
    scripts("base", fail_next=1, failure="revert", match={"from": ephemeral, "nonce": swap["nonce"]})
    provider = carol.anonymous.get("/_sim/world").body["base"]["platform_accounts"]["provider_brla"]
    before = Decimal(carol.balances(provider)["balances"]["BRLA"])
    done = _pay_and_settle(carol, registered)
    assert done["errors"][0]["phase"] == "swap"
    assert "mint" in done["transactions"]
    assert len(done["transactions"]["failed"]) == 2  # the BRLA back to the provider, then its burn
    _refunded(carol, registered, done)
    # The BRLA went back to the provider's account and the issuer burnt it there: nothing else moved.
    assert Decimal(carol.balances(provider)["balances"]["BRLA"]) == before
    _clean(carol, registered)


def test_brla_already_swapped_is_left_for_an_operator(carol: Ramps, scripts: Any) -> None:
    registered = carol.started("on")
    ephemeral = registered.keys.ephemeral.address
    fees = next(tx for tx in registered.ramp["unsigned_txs"] if tx["phase"] == "fees")
    scripts("base", fail_next=1, failure="reject", match={"from": ephemeral, "nonce": fees["nonce"]})
    done = _pay_and_settle(carol, registered)
    assert done["errors"][0]["phase"] == "fees"
    assert done["refund"] is None
    assert carol.anonymous.get(f"/_sim/pix/payouts?ramp_id={registered.id}").body["items"] == []
    report = admin(carol.base).get("/v1/admin/reconciliation")
    assert report.body["differences"] == [], report.body["differences"]
