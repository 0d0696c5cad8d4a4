"""parse_event (rampart.rails.events): each event type of the contract parsed into its dataclass,
amounts as Decimal at the currency's scale, and every malformed field named."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from rampart.rails.events import (
    ChargePaid,
    MalformedEvent,
    MintCompleted,
    MintFailed,
    PayoutCompleted,
    PayoutFailed,
    RefundCompleted,
    UnknownEventType,
    parse_event,
)

ADDRESS = "0x" + "ab" * 20
TX = "0x" + "cd" * 32


def envelope(event_type: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"id": "evt_1", "type": event_type, "created_at": "2025-06-01T12:00:00Z", "data": data}


CHARGE_PAID = envelope(
    "charge.paid",
    {
        "charge_id": "chg_1",
        "reference": "ramp_1",
        "payment_id": "pay_1",
        "amount": "150.00",
        "currency": "BRL",
        "payer_tax_id": "12345678900",
        "paid_at": "2025-06-01T11:59:00+00:00",
        "outcome": "accepted",
    },
)
EVENTS: dict[str, dict[str, Any]] = {
    "charge.paid": CHARGE_PAID,
    "refund.completed": envelope(
        "refund.completed",
        {
            "refund_id": "ref_1",
            "payment_id": "pay_1",
            "charge_id": "chg_1",
            "reference": "ramp_1",
            "amount": "150.00",
            "currency": "BRL",
        },
    ),
    "mint.completed": envelope(
        "mint.completed",
        {"key": "k1", "address": ADDRESS, "amount": "1.000000000000000001", "currency": "BRLA", "tx_hash": TX},
    ),
    "mint.failed": envelope(
        "mint.failed", {"key": "k1", "address": ADDRESS, "amount": "5", "currency": "BRLA", "reason": "no payment"}
    ),
    "payout.completed": envelope(
        "payout.completed",
        {"key": "k2", "pix_key": "a@b.c", "amount": "7.10", "currency": "BRL", "burn_tx_hash": TX},
    ),
    "payout.failed": envelope(
        "payout.failed", {"key": "k2", "pix_key": "a@b.c", "amount": "7.10", "currency": "BRL", "reason": "bad key"}
    ),
}


def test_charge_paid_parses_into_its_dataclass() -> None:
    event = parse_event(CHARGE_PAID)
    assert event == ChargePaid(
        id="evt_1",
        created_at=datetime(2025, 6, 1, 12, 0, tzinfo=UTC),
        charge_id="chg_1",
        reference="ramp_1",
        payment_id="pay_1",
        amount=Decimal("150.00"),
        currency="BRL",
        payer_tax_id="12345678900",
        paid_at=datetime(2025, 6, 1, 11, 59, tzinfo=UTC),
        outcome="accepted",
    )
    assert str(event.amount) == "150.00"


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("refund.completed", RefundCompleted),
        ("mint.completed", MintCompleted),
        ("mint.failed", MintFailed),
        ("payout.completed", PayoutCompleted),
        ("payout.failed", PayoutFailed),
    ],
)
def test_every_type_of_the_contract_parses(name: str, cls: type) -> None:
    event = parse_event(EVENTS[name])
    assert type(event) is cls
    assert name == event.TYPE
    assert isinstance(event.amount, Decimal)


def test_amounts_come_at_exactly_the_currency_scale() -> None:
    minted = parse_event(EVENTS["mint.completed"])
    assert str(minted.amount) == "1.000000000000000001"
    failed = parse_event(EVENTS["mint.failed"])
    assert str(failed.amount) == "5.000000000000000000"
    refund = parse_event(EVENTS["refund.completed"])
    assert isinstance(refund, RefundCompleted)
    assert refund.pix_key is None


def test_fields_the_provider_adds_are_ignored() -> None:
    payload = copy.deepcopy(CHARGE_PAID)
    payload["data"]["new_field"] = {"x": 1}
    payload["extra"] = True
    assert parse_event(payload) == parse_event(CHARGE_PAID)


def broken(event: str, path: str, value: Any) -> dict[str, Any]:
    payload = copy.deepcopy(EVENTS[event])
    target = payload
    *parents, last = path.strip("/").split("/")
    for part in parents:
        target = target[part]
    if value is KeyError:
        del target[last]
    else:
        target[last] = value
    return payload


@pytest.mark.parametrize(
    ("event", "path", "value"),
    [
        ("charge.paid", "/data/amount", "150.001"),  # beyond BRL's scale
        ("charge.paid", "/data/amount", 150),  # a JSON number
        ("charge.paid", "/data/amount", 150.5),  # a float
        ("charge.paid", "/data/amount", "-1.00"),
        ("charge.paid", "/data/amount", "0.00"),
        ("charge.paid", "/data/amount", "1e3"),
        ("charge.paid", "/data/amount", KeyError),
        ("charge.paid", "/data/currency", "USD"),
        ("charge.paid", "/data/outcome", "maybe"),
        ("charge.paid", "/data/paid_at", "yesterday"),
        ("charge.paid", "/data/paid_at", "2025-06-01T11:59:00"),  # no time zone
        ("charge.paid", "/data/payment_id", ""),
        ("charge.paid", "/data/payment_id", 7),
        ("charge.paid", "/data/reference", "r" * 257),
        ("charge.paid", "/id", KeyError),
        ("charge.paid", "/created_at", None),
        ("charge.paid", "/data", ["not", "an", "object"]),
        ("mint.completed", "/data/amount", "1.0000000000000000001"),  # 19 decimals: beyond BRLA's 18
        ("mint.completed", "/data/currency", "BRL"),
        ("mint.completed", "/data/address", "0x1234"),
        ("mint.completed", "/data/tx_hash", "0x" + "z" * 64),
        ("mint.failed", "/data/reason", KeyError),
        ("payout.completed", "/data/burn_tx_hash", KeyError),
        ("payout.failed", "/data/pix_key", None),
        ("refund.completed", "/data/pix_key", 5),
    ],
)
def test_a_malformed_field_is_named(event: str, path: str, value: Any) -> None:
    with pytest.raises(MalformedEvent) as refused:
        parse_event(broken(event, path, value))
    assert refused.value.field == path


@pytest.mark.parametrize("payload", [None, [], "charge.paid", 5])
def test_a_payload_that_is_no_object_is_refused(payload: Any) -> None:
    with pytest.raises(MalformedEvent) as refused:
        parse_event(payload)
    assert refused.value.field == "/"


def test_an_unknown_type_is_its_own_error() -> None:
    with pytest.raises(UnknownEventType) as refused:
        parse_event(envelope("charge.exploded", {}))
    assert refused.value.field == "/type"
    with pytest.raises(MalformedEvent) as missing:
        parse_event({"id": "x", "data": {}})
    assert missing.value.field == "/type"
