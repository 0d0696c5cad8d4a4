"""The pix rail's charges and payments, over the world's HTTP API: exact, short, over, wrong payer,
cancelled and expired charges, refunds, and the webhooks each sends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from infra.world.brcode import br_code, crc16, parse_br_code, tax_id
from rampart.adapters.rails.pix import PixRail
from rampart.ramps.rails import ChargeRequest, RailRejected
from tests.world.conftest import CNPJ, OTHER_PAYER, PAYER, PAYER_DIGITS, Http, Receiver, new_ramp_id


def test_crc16_and_tax_ids() -> None:
    assert crc16("123456789") == "29B1"  # CRC-16/CCITT-FALSE check value
    code = br_code(charge_id="chg_1", amount="10.50")
    assert parse_br_code(code)["54"] == "10.50"
    with pytest.raises(ValueError, match="CRC"):
        parse_br_code(code[:-1] + ("0" if code[-1] != "0" else "1"))
    assert tax_id(PAYER) == PAYER_DIGITS
    assert tax_id(CNPJ) == "11222333000181"
    assert tax_id("529.982.247-24") is None
    assert tax_id("11111111111") is None
    assert tax_id(123) is None


def test_a_charge_carries_a_br_code_for_its_amount_and_one_reference_one_open_charge(http: Http) -> None:
    ramp = new_ramp_id()
    charge = http.charge(ramp, amount="123.45")
    assert charge["status"] == "pending"
    assert charge["reference"] == ramp
    assert charge["payer_tax_id"] == PAYER_DIGITS
    assert parse_br_code(charge["br_code"])["54"] == "123.45"
    again = http.pix("POST", "/charges", {k: charge[k] for k in ("reference", "amount", "payer_tax_id", "expires_at")})
    assert again.status_code == 200
    assert again.json()["charge_id"] == charge["charge_id"]
    other = http.pix(
        "POST", "/charges", {**{k: charge[k] for k in ("reference", "payer_tax_id", "expires_at")}, "amount": "1.00"}
    )
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "reference-in-use"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"amount": "10.505"}, "amount"),
        ({"amount": 10}, "amount"),
        ({"payer_tax_id": "123"}, "payer_tax_id"),
        ({"expires_at": "tomorrow"}, "expires_at"),
        ({"expires_at": "2030-01-01T00:00:00"}, "expires_at"),
        ({"reference": ""}, "reference"),
    ],
)
def test_a_malformed_charge_is_refused_naming_the_field(http: Http, body: dict[str, object], field: str) -> None:
    good = {"reference": new_ramp_id(), "amount": "10.00", "payer_tax_id": PAYER, "expires_at": "2030-01-01T00:00:00Z"}
    reply = http.pix("POST", "/charges", {**good, **body})
    assert reply.status_code == 422
    assert reply.json()["error"]["field"] == field


def test_the_provider_api_needs_its_key(http: Http) -> None:
    import requests

    reply = requests.get(f"{http.url}/pix/v1/charges/x", headers={"Authorization": "Bearer nope"}, timeout=10)
    assert reply.status_code == 401


def test_an_exact_payment_is_accepted_and_reported(http: Http, receiver: Receiver) -> None:
    ramp = new_ramp_id()
    charge = http.charge(ramp, amount="50.00")
    reply = http.sim("POST", "/pix/payments", {"ramp_id": ramp})
    assert reply.status_code == 200, reply.text
    payment = reply.json()
    assert payment["outcome"] == "accepted"
    assert payment["amount"] == "50.00"
    assert payment["refund"] is None
    assert http.pix("GET", f"/charges/{charge['charge_id']}").json()["status"] == "paid"
    [event] = receiver.wait_for("charge.paid", reference=ramp)
    assert event["data"] == {
        "charge_id": charge["charge_id"],
        "reference": ramp,
        "payment_id": payment["payment_id"],
        "amount": "50.00",
        "currency": "BRL",
        "payer_tax_id": PAYER_DIGITS,
        "paid_at": payment["paid_at"],
        "outcome": "accepted",
    }
    assert http.sim("GET", "/pix/payouts", ramp_id=ramp).json() == {"items": []}


@pytest.mark.parametrize("amount", ["49.99", "50.01", "0.01", "1000.00"])
def test_a_short_or_over_payment_is_refunded_in_full(http: Http, receiver: Receiver, amount: str) -> None:
    ramp = new_ramp_id()
    charge = http.charge(ramp, amount="50.00")
    payment = http.sim("POST", "/pix/payments", {"ramp_id": ramp, "amount": amount}).json()
    assert payment["outcome"] == "refunding"
    assert payment["amount"] == amount
    assert payment["refund"]["amount"] == amount
    assert payment["refund"]["status"] == "completed"
    [paid] = receiver.wait_for("charge.paid", reference=ramp)
    assert paid["data"]["outcome"] == "refunding"
    [refund] = receiver.wait_for("refund.completed", reference=ramp)
    assert refund["data"]["amount"] == amount
    assert refund["data"]["payment_id"] == payment["payment_id"]
    assert http.pix("GET", f"/charges/{charge['charge_id']}").json()["status"] == "pending"  # still payable
    items = http.sim("GET", "/pix/payouts", ramp_id=ramp).json()["items"]
    assert [(i["kind"], i["amount"], i["status"], i["ramp_id"]) for i in items] == [
        ("refund", amount, "completed", ramp)
    ]


def test_a_payment_from_another_payer_is_refused_and_nothing_recorded(http: Http, receiver: Receiver) -> None:
    ramp = new_ramp_id()
    charge = http.charge(ramp)
    reply = http.sim("POST", "/pix/payments", {"ramp_id": ramp, "payer_tax_id": OTHER_PAYER})
    assert reply.status_code == 422
    assert reply.json()["errors"][0]["field"] == "/payer_tax_id"
    assert http.pix("GET", f"/charges/{charge['charge_id']}").json()["payment_ids"] == []
    same_payer = http.sim("POST", "/pix/payments", {"ramp_id": ramp, "payer_tax_id": PAYER})
    assert same_payer.status_code == 200
    assert same_payer.json()["outcome"] == "accepted"
    receiver.wait_for("charge.paid", reference=ramp)
    assert len(receiver.of("charge.paid", reference=ramp)) == 1


def test_payments_to_unknown_ramps_or_malformed_are_refused(http: Http) -> None:
    assert http.sim("POST", "/pix/payments", {"ramp_id": new_ramp_id()}).status_code == 404
    reply = http.sim("POST", "/pix/payments", {"ramp_id": new_ramp_id(), "amount": "1.001"})
    assert reply.status_code == 422
    assert reply.json()["errors"][0]["field"] == "/amount"


def test_a_payment_for_a_cancelled_expired_or_paid_charge_is_refunded(http: Http, receiver: Receiver) -> None:
    cancelled = new_ramp_id()
    charge = http.charge(cancelled)
    assert http.pix("POST", f"/charges/{charge['charge_id']}/cancel", {}).json()["status"] == "cancelled"
    expired = new_ramp_id()
    http.charge(expired, expires_in=-1)
    paid = new_ramp_id()
    http.charge(paid)
    assert http.sim("POST", "/pix/payments", {"ramp_id": paid}).json()["outcome"] == "accepted"
    for ramp in (cancelled, expired, paid):
        payment = http.sim("POST", "/pix/payments", {"ramp_id": ramp}).json()
        assert payment["outcome"] == "refunding", ramp
        receiver.wait_for("refund.completed", reference=ramp)
    assert http.pix("GET", f"/charges/{charge['charge_id']}").json()["status"] == "cancelled"


def test_the_adapter_creates_reads_and_cancels_charges(http: Http) -> None:
    rail = PixRail(http.url, api_key=http.key)
    ramp = new_ramp_id()
    expires = datetime.now(UTC) + timedelta(minutes=30)
    charge = rail.create_charge(
        ChargeRequest(reference=ramp, amount=Decimal("10.5"), payer_tax_id=PAYER_DIGITS, expires_at=expires)
    )
    assert charge.amount == Decimal("10.50")
    assert charge.status == "pending"
    assert charge.br_code
    instructions = charge.payment_instructions("pix")
    assert instructions["rail"] == "pix"
    assert instructions["amount"] == "10.50"
    assert instructions["br_code"]
    assert rail.get_charge(charge.charge_id) == charge
    assert rail.get_charge("chg_nope") is None
    assert rail.cancel_charge(charge.charge_id).status == "cancelled"
    assert rail.cancel_charge(charge.charge_id).status == "cancelled"  # again: the same
    paid = rail.create_charge(
        ChargeRequest(reference=new_ramp_id(), amount=Decimal("1"), payer_tax_id=PAYER_DIGITS, expires_at=expires)
    )
    http.sim("POST", "/pix/payments", {"ramp_id": paid.reference})
    with pytest.raises(RailRejected) as refused:
        rail.cancel_charge(paid.charge_id)
    assert refused.value.code == "charge-paid"
    assert not refused.value.transient
