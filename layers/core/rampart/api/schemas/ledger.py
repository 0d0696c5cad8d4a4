"""Request and response models of the Ledger endpoints (API.md, "Ledger"), and the mapping from
domain objects. Amounts are decimal strings in and out; ids are opaque strings.

Each reply shape is written once, as its output model: ``XOut.from_domain(...)`` maps a domain
object onto it, and a handler that builds its own ``Response`` sends
``model.model_dump(mode="json")``, the same JSON Powertools makes of a returned model."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal, Self

from pydantic import BaseModel, Field

from rampart.api.inputs import RequestModel
from rampart.core.money import format_units
from rampart.ledger.models import Account, Balance, Entry, Transfer

AmountIn = Annotated[
    str,
    Field(
        pattern=r"^[0-9]+(\.[0-9]+)?$",
        max_length=100,
        description="Decimal string, > 0, at most the asset's scale in decimals",
        examples=["10.50"],
    ),
]
Id = Annotated[str, Field(min_length=1, max_length=40, examples=["42"])]
Currency = Annotated[str, Field(min_length=3, max_length=5, examples=["USD"])]
Reference = Annotated[str, Field(min_length=1, max_length=200)]


class _In(RequestModel):
    pass  # strict, no extra fields, no NUL in text: see rampart.api.inputs


class AccountIn(_In):
    currency: Currency
    name: Annotated[str, Field(min_length=1, max_length=100)] | None = None


class HoldIn(_In):
    timeout_seconds: Annotated[int, Field(ge=1, le=2_592_000)]


class TransferIn(_In):
    from_account_id: Id
    to_account_id: Id
    amount: AmountIn
    currency: Currency
    reference: Reference | None = None
    hold: HoldIn | None = None


class BatchIn(_In):
    transfers: Annotated[list[TransferIn], Field(min_length=1, max_length=100)]


class PostIn(_In):
    amount: AmountIn | None = None


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)  # serialized as RFC 3339 with "Z"


class BalanceOut(BaseModel):
    posted: str
    pending_debits: str
    pending_credits: str
    available: str

    @classmethod
    def from_domain(cls, balance: Balance, currency: str) -> Self:
        return cls(
            posted=format_units(balance.posted, currency),
            pending_debits=format_units(balance.debits_pending, currency),
            pending_credits=format_units(balance.credits_pending, currency),
            available=format_units(balance.available, currency),
        )


class AccountOut(BaseModel):
    id: str
    currency: str
    name: str | None
    owner_id: str
    balance: BalanceOut
    created_at: datetime

    @classmethod
    def from_domain(cls, account: Account) -> Self:
        return cls(
            id=str(account.id),
            currency=account.currency,
            name=account.name,
            owner_id=account.owner_id,
            balance=BalanceOut.from_domain(account.balance, account.currency),
            created_at=_utc(account.created_at),
        )


class AccountList(BaseModel):
    items: list[AccountOut]
    next_cursor: str | None


class TransferOut(BaseModel):
    id: str
    status: Literal["posted", "pending", "voided", "expired"]
    from_account_id: str
    to_account_id: str
    amount: str
    hold_amount: str | None = None
    currency: str
    reference: str
    created_at: datetime
    expires_at: datetime | None = None

    @classmethod
    def from_domain(cls, transfer: Transfer) -> Self:
        c = transfer.currency
        return cls(
            id=str(transfer.id),
            status=transfer.status,
            from_account_id=str(transfer.debit_account_id),
            to_account_id=str(transfer.credit_account_id),
            amount=format_units(transfer.amount, c),
            hold_amount=None if transfer.hold_amount is None else format_units(transfer.hold_amount, c),
            currency=c,
            reference=transfer.reference,
            created_at=_utc(transfer.created_at),
            expires_at=None if transfer.expires_at is None else _utc(transfer.expires_at),
        )


class TransferList(BaseModel):
    items: list[TransferOut]
    next_cursor: str | None


class TransferBatchOut(BaseModel):
    """A batch's transfers, in the order of the request (not a page: no cursor)."""

    items: list[TransferOut]


class EntryOut(BaseModel):
    id: str
    sequence: int
    transfer_id: str
    direction: Literal["debit", "credit"]
    amount: str
    balance_after: str
    created_at: datetime

    @classmethod
    def from_domain(cls, entry: Entry, currency: str) -> Self:
        return cls(
            id=str(entry.id),
            sequence=entry.sequence,
            transfer_id=str(entry.transfer_id),
            direction=entry.direction,
            amount=format_units(entry.amount, currency),
            balance_after=format_units(entry.balance_after, currency),
            created_at=_utc(entry.created_at),
        )


class EntryList(BaseModel):
    items: list[EntryOut]
    next_cursor: str | None
