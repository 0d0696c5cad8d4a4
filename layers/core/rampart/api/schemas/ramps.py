"""Request and response models of the ramp endpoints (API.md, "Ramps"), and the mapping from the
domain's quotes and ramps. ``from`` is a Python keyword: the models name it ``source`` with the
alias ``from`` (replies are dumped by alias)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field

from rampart.api.inputs import RequestModel
from rampart.api.schemas.ledger import AmountIn
from rampart.core.money import format_amount
from rampart.ramps.models import PHASES, STATUSES, Corridor, Quote, Ramp

Network = Literal["base", "pendulum", "stellar"]
Place = Annotated[str, Field(min_length=1, max_length=20, examples=["pix", "base"])]
Currency = Annotated[str, Field(min_length=3, max_length=5, examples=["BRL"])]
Text = Annotated[str, Field(max_length=200)]
Phase = Literal[PHASES]  # type: ignore[valid-type]  # the served corridors' phases (the OpenAPI enum)
StatusName = Literal[STATUSES]  # type: ignore[valid-type]


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


class QuoteIn(RequestModel):
    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=False)

    ramp_type: Literal["on", "off"]
    source: Place = Field(alias="from")
    to: Place
    input_amount: AmountIn
    input_currency: Currency
    output_currency: Currency


class SigningAccountIn(RequestModel):
    network: Network
    address: Annotated[str, Field(min_length=1, max_length=100)]
    role: Literal["ephemeral", "user"]


class RampIn(RequestModel):
    quote_id: Annotated[str, Field(min_length=1, max_length=64)]
    signing_accounts: Annotated[list[SigningAccountIn], Field(min_length=1, max_length=8)]
    destination: Annotated[dict[str, Text], Field(max_length=8)]
    payer: Annotated[dict[str, Text], Field(max_length=8)] | None = None


class PresignedTxIn(RequestModel):
    network: Network
    phase: Annotated[str, Field(min_length=1, max_length=32)]
    nonce: Annotated[int, Field(ge=0, le=2**64 - 1)]
    signer: Annotated[str, Field(min_length=1, max_length=100)]
    tx_data: Annotated[str, Field(min_length=1, max_length=65_536)] | Annotated[dict[str, Text], Field(max_length=16)]


class PresignedIn(RequestModel):
    presigned_txs: Annotated[list[PresignedTxIn], Field(min_length=1, max_length=64)]


class FeesOut(BaseModel):
    network: str
    anchor: str
    platform: str
    partner: str
    total: str
    currency: str


class CorridorOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    source: str = Field(serialization_alias="from")
    to: str
    ramp_type: Literal["on", "off"]
    input_currency: str
    output_currency: str
    min_amount: str
    max_amount: str
    networks: list[str]
    phases: list[str]

    @classmethod
    def from_domain(cls, corridor: Corridor) -> Self:
        currency = corridor.input_currency
        return cls(
            source=corridor.source,
            to=corridor.destination,
            ramp_type=corridor.ramp_type,
            input_currency=corridor.input_currency,
            output_currency=corridor.output_currency,
            min_amount=format_amount(corridor.min_amount, currency),
            max_amount=format_amount(corridor.max_amount, currency),
            networks=list(corridor.networks),
            phases=list(corridor.phases),
        )


class CorridorList(BaseModel):
    items: list[CorridorOut]


class QuoteOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    id: str
    ramp_type: Literal["on", "off"]
    source: str = Field(serialization_alias="from")
    to: str
    input_amount: str
    input_currency: str
    output_amount: str
    output_currency: str
    rate: str
    fees: FeesOut
    expires_at: datetime
    created_at: datetime

    @classmethod
    def from_domain(cls, quote: Quote) -> Self:
        corridor = quote.corridor
        fees = quote.fees
        currency = corridor.input_currency
        return cls(
            id=quote.id,
            ramp_type=corridor.ramp_type,
            source=corridor.source,
            to=corridor.destination,
            input_amount=format_amount(quote.input_amount, currency),
            input_currency=corridor.input_currency,
            output_amount=format_amount(quote.output_amount, corridor.output_currency),
            output_currency=corridor.output_currency,
            rate=str(quote.rate),
            fees=FeesOut(
                network=format_amount(fees.network, currency),
                anchor=format_amount(fees.anchor, currency),
                platform=format_amount(fees.platform, currency),
                partner=format_amount(fees.partner, currency),
                total=format_amount(fees.total, currency),
                currency=fees.currency,
            ),
            expires_at=_utc(quote.expires_at),
            created_at=_utc(quote.created_at),
        )


class TxOut(BaseModel):
    network: str
    phase: str
    nonce: int
    signer: str
    tx_data: dict[str, Any]


class HistoryOut(BaseModel):
    phase: str
    entered_at: datetime


class ErrorOut(BaseModel):
    phase: str
    message: str
    recoverable: bool
    at: datetime


class RampStarted(BaseModel):
    id: str
    phase: Phase
    status: StatusName


class RampOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    id: str
    quote_id: str
    ramp_type: Literal["on", "off"]
    source: str = Field(serialization_alias="from")
    to: str
    input_amount: str
    input_currency: str
    output_amount: str
    output_currency: str
    fees: FeesOut
    phase: Phase
    status: StatusName
    destination: dict[str, str]
    payer: dict[str, str] | None = None
    payment_instructions: dict[str, str] | None = None
    refund: dict[str, str] | None = None
    signing_accounts: list[SigningAccountIn]
    unsigned_txs: list[TxOut]
    signed: int = Field(description="how many of unsigned_txs have a pre-signed transaction")
    start_deadline: datetime
    history: list[HistoryOut]
    errors: list[ErrorOut]
    transactions: dict[str, list[str]]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_domain(cls, ramp: Ramp) -> Self:
        quote = QuoteOut.from_domain(ramp.quote)
        return cls(
            id=ramp.id,
            quote_id=ramp.quote.id,
            ramp_type=quote.ramp_type,
            source=quote.source,
            to=quote.to,
            input_amount=quote.input_amount,
            input_currency=quote.input_currency,
            output_amount=quote.output_amount,
            output_currency=quote.output_currency,
            fees=quote.fees,
            phase=ramp.phase,
            status=ramp.status,
            destination={k: v for k, v in ramp.destination.items() if k != "pix_key_type"},
            payer=dict(ramp.payer) if ramp.payer is not None else None,
            payment_instructions=dict(ramp.payment_instructions) if ramp.payment_instructions else None,
            refund=dict(ramp.refund) if ramp.refund else None,
            signing_accounts=[
                SigningAccountIn.model_construct(network=a.network, address=a.address, role=a.role)
                for a in ramp.signing_accounts
            ],
            unsigned_txs=[
                TxOut(network=t.network, phase=t.phase, nonce=t.nonce, signer=t.signer, tx_data=dict(t.tx_data))
                for t in ramp.unsigned_txs
            ],
            signed=sum(1 for t in ramp.unsigned_txs if t.key in ramp.presigned),
            start_deadline=_utc(ramp.start_deadline),
            history=[HistoryOut(phase=h.phase, entered_at=_utc(h.entered_at)) for h in ramp.history],
            errors=[
                ErrorOut(phase=e.phase, message=e.message, recoverable=e.recoverable, at=_utc(e.at))
                for e in ramp.errors
            ],
            transactions={phase: list(hashes) for phase, hashes in ramp.transactions.items()},
            created_at=_utc(ramp.created_at),
            updated_at=_utc(ramp.updated_at),
        )


class RampList(BaseModel):
    items: list[RampOut]
    next_cursor: str | None


class DifferenceOut(BaseModel):
    account_id: int
    network: str
    asset: str
    address: str
    ledger: str
    actual: str


class ReconciliationOut(BaseModel):
    checked_at: datetime
    checked: int = Field(description="how many mirrored accounts were compared")
    differences: list[DifferenceOut]
