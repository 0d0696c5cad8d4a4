"""Ledger value objects. Amounts are integer base units here; ``rampart.core.money`` converts."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Generic, Literal, TypeVar

from rampart.core.money import to_decimal

TransferStatus = Literal["posted", "pending", "voided", "expired"]
T = TypeVar("T")
SYSTEM_OWNER = "system"
SYSTEM_ACCOUNT_NAMES = ("world", "fees", "settlement")


@dataclass(frozen=True, slots=True)
class Balance:
    debits_pending: int
    debits_posted: int
    credits_pending: int
    credits_posted: int

    @property
    def posted(self) -> int:
        return self.credits_posted - self.debits_posted

    @property
    def available(self) -> int:
        return self.posted - self.debits_pending


@dataclass(frozen=True, slots=True)
class Account:
    id: int
    owner_id: str
    currency: str
    name: str | None
    is_system: bool
    debits_must_not_exceed_credits: bool
    balance: Balance
    version: int
    created_at: datetime

    def decimal(self, units: int) -> Decimal:
        return to_decimal(units, self.currency)


@dataclass(frozen=True, slots=True)
class Transfer:
    id: int
    owner_id: str
    reference: str
    debit_account_id: int
    credit_account_id: int
    currency: str
    amount: int  # posted amount: 0 while a hold is pending
    hold_amount: int | None  # what a hold reserved; None for a plain posted transfer
    timeout_seconds: int | None
    status: TransferStatus
    created_at: datetime
    expires_at: datetime | None
    finalized_at: datetime | None
    replayed: bool = False  # True when the reference already existed with this content

    @property
    def is_hold(self) -> bool:
        return self.hold_amount is not None


@dataclass(frozen=True, slots=True)
class Entry:
    id: int
    account_id: int
    sequence: int
    transfer_id: int
    direction: Literal["debit", "credit"]
    amount: int
    balance_after: int
    created_at: datetime
    prev_hash: bytes
    hash: bytes


@dataclass(frozen=True, slots=True)
class TransferRequest:
    """One transfer to create. ``timeout_seconds`` set makes it a pending hold."""

    owner_id: str
    reference: str
    debit_account_id: int
    credit_account_id: int
    amount: int
    currency: str
    timeout_seconds: int | None = None


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None = None


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding of :meth:`Ledger.verify`."""

    check: str
    detail: str


@dataclass(slots=True)
class VerifyReport:
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems
