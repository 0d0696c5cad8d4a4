"""The port to a fiat rail and the issuer behind it (``pix`` with its BRLA issuer now, ``sepa``
with its EURC anchor later): charges the payer pays, mints against a payment received, payouts to
a bank destination, refunds of a payment received, and the provider's webhooks. No SDK here: adapters implement it
(:mod:`rampart.adapters.rails.pix`).

Every call that acts (a mint, a payout, a refund) carries our idempotency key (the journal's
``ramp:phase:step``): the provider acts on one key once and returns the first result to a repeat,
so a retry after a timeout is safe — look the key up first when the outcome is unknown.

Errors are typed for the worker's retry policy (ARCHITECTURE.md, "Errors"):
:class:`RailUnavailable` (and its :class:`RailTimeout`) are transient, :class:`RailRejected` is
final, :class:`WebhookRejected` is a delivery to refuse (401).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, Protocol

ChargeStatus = Literal["pending", "paid", "cancelled", "expired"]
OperationStatus = Literal["pending", "completed", "failed"]


class RailError(Exception):
    """A failed call to a rail. ``transient``: worth retrying with backoff."""

    transient = False

    def __init__(
        self, message: str, *, status: int | None = None, code: str | None = None, field: str | None = None
    ) -> None:
        super().__init__(message)
        self.message, self.status, self.code, self.field = message, status, code, field


class RailUnavailable(RailError):
    """Transient: the provider is unavailable (5xx, 429, a refused connection). Nothing happened."""

    transient = True


class RailTimeout(RailUnavailable):
    """Transient, outcome unknown: the request may have taken effect. Retry with the same key
    (the provider acts once), or look the key up."""


class RailRejected(RailError):
    """Final: the provider refused the request (a 4xx: bad terms, too little funds, a key reused
    with other terms). ``code`` is the provider's, ``field`` the request field it names."""


class WebhookRejected(RailError):
    """A webhook delivery that does not verify (signature, timestamp) or does not parse."""


@dataclass(frozen=True)
class ChargeRequest:
    reference: str  # our ramp id: the provider reports it back with every payment
    amount: Decimal  # in ``currency``, at its scale (BRL: 2 decimals)
    payer_tax_id: str  # only this payer may pay (pix: CPF/CNPJ digits)
    expires_at: datetime  # aware
    currency: str = "BRL"


@dataclass(frozen=True)
class Charge:
    charge_id: str
    reference: str
    amount: Decimal
    currency: str
    status: ChargeStatus
    expires_at: datetime
    payer_tax_id: str | None = None
    br_code: str | None = None  # pix: what the payer pastes or scans
    iban: str | None = None  # sepa (later): where to transfer, with ``bic`` and the reference
    bic: str | None = None

    def payment_instructions(self, rail: str) -> dict[str, str]:
        """API.md's ``payment_instructions`` for this charge (amounts and times as strings)."""
        shown = {
            "rail": rail,
            "amount": str(self.amount),
            "currency": self.currency,
            "expires_at": self.expires_at.isoformat().replace("+00:00", "Z"),
        }
        if self.br_code is not None:
            return {**shown, "br_code": self.br_code}
        return {**shown, "iban": self.iban or "", "bic": self.bic or "", "reference": self.reference}


@dataclass(frozen=True)
class MintRequest:
    key: str  # our idempotency key
    address: str  # the token's destination on the issuer's chain
    amount: Decimal  # of the issuer's token (BRLA, 18 decimals)
    payment_id: str  # the payment received that backs it


@dataclass(frozen=True)
class Mint:
    key: str
    mint_id: str
    address: str
    amount: Decimal
    currency: str
    payment_id: str
    status: OperationStatus
    tx_hash: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class PayoutRequest:
    key: str  # our idempotency key
    amount: Decimal  # fiat paid to the destination
    destination: Mapping[str, str]  # pix: {pix_key, tax_id, name}; sepa: {iban, name}
    token_amount: Decimal | None = None  # the issuer's token burnt for it (default: 1:1)
    reference: str | None = None  # our ramp id
    currency: str = "BRL"


@dataclass(frozen=True)
class Payout:
    key: str
    payout_id: str
    amount: Decimal
    currency: str
    destination: Mapping[str, str]
    status: OperationStatus
    tx_hash: str | None = None  # the burn of the issuer's token
    reason: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RefundRequest:
    """Give an accepted payment back to its payer, in full. When a mint used the payment, the
    minted token must be back at the provider's account first: the issuer burns it."""

    key: str  # our idempotency key
    payment_id: str


@dataclass(frozen=True)
class Refund:
    key: str
    refund_id: str
    payment_id: str
    amount: Decimal  # the payment's, in ``currency``
    currency: str
    status: OperationStatus
    tx_hash: str | None = None  # the burn of the returned token, when the payment was minted
    reason: str | None = None
    token_amount: Decimal | None = None  # the issuer's token burnt for it


class Rail(Protocol):
    """A fiat rail with its token issuer, as the ramps use it."""

    name: str

    def create_charge(self, request: ChargeRequest) -> Charge: ...
    def get_charge(self, charge_id: str) -> Charge | None: ...
    def cancel_charge(self, charge_id: str) -> Charge: ...
    def charge_payments(self, charge_id: str) -> list[Mapping[str, Any]]:
        """Every payment the charge received, each as its ``charge.paid`` webhook's ``data``
        (rampart.rails.events): what finds a payment whose webhook never came."""
        ...

    def request_mint(self, request: MintRequest) -> Mint: ...
    def get_mint(self, key: str) -> Mint | None: ...
    def request_payout(self, request: PayoutRequest) -> Payout: ...
    def get_payout(self, key: str) -> Payout | None: ...
    def request_refund(self, request: RefundRequest) -> Refund: ...
    def get_refund(self, key: str) -> Refund | None: ...

    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
        """The JSON payload of a delivery that verifies; :class:`WebhookRejected` otherwise."""
        ...


def close_charge(rail: Rail, charge_id: str | None, ramp_id: str) -> None:
    """Cancel a ramp's charge, best effort: a payment that still arrives for a closed ramp is
    refunded by the rail itself (API.md), so a charge left open costs a refund, never the money.
    A charge already paid cannot be cancelled: whoever closes the ramp looks at its payments."""
    import logging

    if charge_id is None:
        return
    try:
        rail.cancel_charge(charge_id)
    except RailError as error:
        logging.getLogger("rampart.ramps").warning(
            "charge not cancelled", extra={"ramp_id": ramp_id, "reason": error.message}
        )
