"""Request and response models of the Ledger endpoints (API.md, "Ledger"), and the mapping from
domain objects. Amounts are decimal strings in and out; ids are opaque strings."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from rampart.api.inputs import RequestModel
from rampart.core.money import format_units
from rampart.ledger.models import Account, Entry, Transfer

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


class BalanceOut(BaseModel):
    posted: str
    pending_debits: str
    pending_credits: str
    available: str


class AccountOut(BaseModel):
    id: str
    currency: str
    name: str | None
    owner_id: str
    balance: BalanceOut
    created_at: datetime


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


class EntryList(BaseModel):
    items: list[EntryOut]
    next_cursor: str | None


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def account_out(account: Account) -> dict[str, object]:
    c, b = account.currency, account.balance
    return {
        "id": str(account.id),
        "currency": c,
        "name": account.name,
        "owner_id": account.owner_id,
        "balance": {
            "posted": format_units(b.posted, c),
            "pending_debits": format_units(b.debits_pending, c),
            "pending_credits": format_units(b.credits_pending, c),
            "available": format_units(b.available, c),
        },
        "created_at": rfc3339(account.created_at),
    }


def transfer_out(transfer: Transfer) -> dict[str, object]:
    c = transfer.currency
    out: dict[str, object] = {
        "id": str(transfer.id),
        "status": transfer.status,
        "from_account_id": str(transfer.debit_account_id),
        "to_account_id": str(transfer.credit_account_id),
        "amount": format_units(transfer.amount, c),
        "currency": c,
        "reference": transfer.reference,
        "created_at": rfc3339(transfer.created_at),
        "hold_amount": None if transfer.hold_amount is None else format_units(transfer.hold_amount, c),
        "expires_at": None if transfer.expires_at is None else rfc3339(transfer.expires_at),
    }
    return out


def entry_out(entry: Entry, currency: str) -> dict[str, object]:
    return {
        "id": str(entry.id),
        "sequence": entry.sequence,
        "transfer_id": str(entry.transfer_id),
        "direction": entry.direction,
        "amount": format_units(entry.amount, currency),
        "balance_after": format_units(entry.balance_after, currency),
        "created_at": rfc3339(entry.created_at),
    }
