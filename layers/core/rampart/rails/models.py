"""What the backend knows of a rail, learned from the provider's events: payments received against
a charge (by the charge's reference, the ramp id) and the mints and payouts asked for by key."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Literal

PaymentStatus = Literal["accepted", "refunding", "refunded"]
OperationKind = Literal["mint", "payout"]
OperationStatus = Literal["completed", "failed"]


@dataclass(frozen=True)
class Payment:
    provider: str
    payment_id: str
    charge_id: str
    reference: str
    amount: Decimal
    currency: str
    payer_tax_id: str
    paid_at: datetime
    status: PaymentStatus
    refund_id: str | None = None
    refunded_at: datetime | None = None


@dataclass(frozen=True)
class Operation:
    """A mint (the issuer's BRLA to an address) or a payout (BRLA burnt, BRL paid to a PIX key),
    as the provider last reported it under our idempotency ``key``. ``destination`` is the
    address of a mint, the PIX key of a payout; ``tx_hash`` the mint's or the burn's."""

    provider: str
    kind: OperationKind
    key: str
    status: OperationStatus
    amount: Decimal
    currency: str
    destination: str
    tx_hash: str | None = None
    reason: str | None = None
    event_id: str | None = None
