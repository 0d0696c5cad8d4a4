"""The events a rail provider (PIX and its BRLA issuer now, SEPA later) reports by webhook, parsed
strictly from the JSON body of each delivery::

    {"id": "evt_…", "type": "charge.paid", "created_at": "2025-01-01T12:00:00Z", "data": {...}}

:func:`parse_event` returns one frozen dataclass per type, amounts as ``Decimal`` at the
currency's scale (``rampart.core.money``: a decimal string with at most the scale's decimals,
greater than zero; never a float or a JSON number), timestamps as aware ``datetime``. Anything
else raises :class:`MalformedEvent` naming the field as a JSON pointer (``/data/amount``).
Fields the provider adds beyond these are ignored (a provider may add fields without notice).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar, Literal

from rampart.core.errors import DomainError
from rampart.core.money import to_decimal, to_units

MAX_TEXT = 256


class MalformedEvent(DomainError):
    """A provider's event that does not have the shape its type promises."""

    slug = "validation-error"
    title = "Malformed provider event"


class UnknownEventType(MalformedEvent):
    title = "Unknown provider event type"


@dataclass(frozen=True)
class ChargePaid:
    """A payment was received for a charge. ``outcome`` is ``refunding`` when the provider will
    refund it in full (another amount, or a charge that is cancelled, expired or failed)."""

    TYPE: ClassVar[str] = "charge.paid"
    id: str
    created_at: datetime
    charge_id: str
    reference: str  # what the charge was created with: the ramp id
    payment_id: str
    amount: Decimal
    currency: str
    payer_tax_id: str
    paid_at: datetime
    outcome: Literal["accepted", "refunding"]


@dataclass(frozen=True)
class RefundCompleted:
    TYPE: ClassVar[str] = "refund.completed"
    id: str
    created_at: datetime
    refund_id: str
    payment_id: str
    charge_id: str
    reference: str
    amount: Decimal
    currency: str
    pix_key: str | None


@dataclass(frozen=True)
class MintCompleted:
    TYPE: ClassVar[str] = "mint.completed"
    id: str
    created_at: datetime
    key: str  # our idempotency key
    address: str
    amount: Decimal
    currency: str
    tx_hash: str


@dataclass(frozen=True)
class MintFailed:
    TYPE: ClassVar[str] = "mint.failed"
    id: str
    created_at: datetime
    key: str
    address: str
    amount: Decimal
    currency: str
    reason: str


@dataclass(frozen=True)
class PayoutCompleted:
    TYPE: ClassVar[str] = "payout.completed"
    id: str
    created_at: datetime
    key: str
    pix_key: str
    amount: Decimal
    currency: str
    burn_tx_hash: str


@dataclass(frozen=True)
class PayoutFailed:
    TYPE: ClassVar[str] = "payout.failed"
    id: str
    created_at: datetime
    key: str
    pix_key: str
    amount: Decimal
    currency: str
    reason: str


RailEvent = ChargePaid | RefundCompleted | MintCompleted | MintFailed | PayoutCompleted | PayoutFailed
EVENT_TYPES: tuple[type[RailEvent], ...] = (
    ChargePaid,
    RefundCompleted,
    MintCompleted,
    MintFailed,
    PayoutCompleted,
    PayoutFailed,
)
_BY_TYPE: dict[str, type[RailEvent]] = {cls.TYPE: cls for cls in EVENT_TYPES}
TYPES: frozenset[str] = frozenset(_BY_TYPE)

_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_TX_HASH = re.compile(r"^0x[0-9a-fA-F]{64}$")


class _Fields:
    """Reads the fields of one JSON object, each error naming its pointer."""

    def __init__(self, data: Any, pointer: str) -> None:
        if not isinstance(data, dict):
            raise MalformedEvent(f"{pointer or '/'} must be a JSON object", field=pointer or "/")
        self.data, self.pointer = data, pointer

    def at(self, name: str) -> str:
        return f"{self.pointer}/{name}"

    def text(self, name: str, *, optional: bool = False) -> Any:
        value = self.data.get(name)
        if value is None and optional:
            return None
        if not isinstance(value, str) or not value.strip():
            raise MalformedEvent(f"{name} must be a non-empty string", field=self.at(name))
        if len(value) > MAX_TEXT:
            raise MalformedEvent(f"{name} is longer than {MAX_TEXT} characters", field=self.at(name))
        return value

    def choice(self, name: str, allowed: tuple[str, ...]) -> Any:
        value = self.text(name)
        if value not in allowed:
            raise MalformedEvent(f"{name} must be one of {', '.join(allowed)}", field=self.at(name))
        return value

    def pattern(self, name: str, regex: re.Pattern[str], what: str) -> str:
        value: str = self.text(name)
        if not regex.match(value):
            raise MalformedEvent(f"{name} must be {what}", field=self.at(name))
        return value

    def moment(self, name: str) -> datetime:
        value = self.text(name)
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise MalformedEvent(f"{name} must be an ISO-8601 timestamp", field=self.at(name)) from None
        if parsed.tzinfo is None or parsed.utcoffset() is None:
            raise MalformedEvent(f"{name} must carry a time zone (e.g. Z)", field=self.at(name))
        return parsed

    def amount(self, currency: str) -> Decimal:
        value = self.data.get("amount")
        if not isinstance(value, str):
            raise MalformedEvent('amount must be a decimal string like "10.50"', field=self.at("amount"))
        try:
            return to_decimal(to_units(value, currency), currency)
        except DomainError as exc:
            raise MalformedEvent(f"amount: {exc.detail}", field=self.at("amount")) from None


def parse_event(payload: Any) -> RailEvent:
    """The typed event of a webhook body (already JSON-decoded); :class:`MalformedEvent` naming
    the field on anything else, :class:`UnknownEventType` for a type this backend does not know."""
    top = _Fields(payload, "")
    event_type = top.text("type")
    cls = _BY_TYPE.get(event_type)
    if cls is None:
        raise UnknownEventType(f"unknown event type {event_type[:64]!r}", field="/type")
    common: dict[str, Any] = {"id": top.text("id"), "created_at": top.moment("created_at")}
    data = _Fields(payload.get("data"), "/data")
    if cls is ChargePaid:
        currency = data.choice("currency", ("BRL",))
        return ChargePaid(
            **common,
            charge_id=data.text("charge_id"),
            reference=data.text("reference"),
            payment_id=data.text("payment_id"),
            amount=data.amount(currency),
            currency=currency,
            payer_tax_id=data.text("payer_tax_id"),
            paid_at=data.moment("paid_at"),
            outcome=data.choice("outcome", ("accepted", "refunding")),
        )
    if cls is RefundCompleted:
        currency = data.choice("currency", ("BRL",))
        return RefundCompleted(
            **common,
            refund_id=data.text("refund_id"),
            payment_id=data.text("payment_id"),
            charge_id=data.text("charge_id"),
            reference=data.text("reference"),
            amount=data.amount(currency),
            currency=currency,
            pix_key=data.text("pix_key", optional=True),
        )
    if cls is MintCompleted or cls is MintFailed:
        currency = data.choice("currency", ("BRLA",))
        fields: dict[str, Any] = {
            **common,
            "key": data.text("key"),
            "address": data.pattern("address", _ADDRESS, "a 0x-prefixed 20-byte hex address"),
            "amount": data.amount(currency),
            "currency": currency,
        }
        if cls is MintCompleted:
            return MintCompleted(**fields, tx_hash=data.pattern("tx_hash", _TX_HASH, "a 0x-prefixed 32-byte hex hash"))
        return MintFailed(**fields, reason=data.text("reason"))
    currency = data.choice("currency", ("BRL",))
    fields = {
        **common,
        "key": data.text("key"),
        "pix_key": data.text("pix_key"),
        "amount": data.amount(currency),
        "currency": currency,
    }
    if cls is PayoutCompleted:
        return PayoutCompleted(
            **fields, burn_tx_hash=data.pattern("burn_tx_hash", _TX_HASH, "a 0x-prefixed 32-byte hex hash")
        )
    return PayoutFailed(**fields, reason=data.text("reason"))
