"""The ramps' value types: corridors with their phases and limits, quotes, ramps, blueprints.

Amounts are ``Decimal`` at the asset's ledger scale (:mod:`rampart.core.money`); chain amounts
are integers of the chain's base units and live only in the quote's snapshot and the blueprints.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

RampType = Literal["on", "off"]
Status = Literal["initial", "running", "paused", "completed", "failed", "cancelled", "expired"]
STATUSES: tuple[Status, ...] = ("initial", "running", "paused", "completed", "failed", "cancelled", "expired")
UNFINISHED: frozenset[str] = frozenset({"initial", "running", "paused"})
SignerRole = Literal["ephemeral", "user"]

# Decimals of each asset on each network (API.md, "Ramps"); fiat rails carry their currency's cents.
NETWORK_DECIMALS: dict[str, dict[str, int]] = {
    "base": {"USDC": 6, "BRLA": 18, "EURC": 6, "ETH": 18},
    "pendulum": {"USDC": 6, "EURC": 7, "PEN": 12},
    "stellar": {"EURC": 7, "XLM": 7},
    "pix": {"BRL": 2},
    "sepa": {"EUR": 2},
}
NETWORKS = ("base", "pendulum", "stellar")
RAILS = ("pix", "sepa")


@dataclass(frozen=True)
class Fees:
    """A corridor's fee schedule: the anchor's fixed part (in the rail's fiat) plus basis points,
    the platform's basis points; the partner's markup comes from the partner."""

    anchor_fixed: Decimal
    anchor_bps: int
    platform_bps: int


@dataclass(frozen=True)
class Corridor:
    """One way through the world (API.md's corridor table). ``phases`` run from ``initial`` to
    ``complete``; ``networks`` need an ephemeral each; ``swap`` is (asset in, asset out) on the
    corridor's pool; limits are in the input currency."""

    key: str
    ramp_type: RampType
    source: str  # a rail (on) or a network (off)
    destination: str
    input_currency: str
    output_currency: str
    min_amount: Decimal
    max_amount: Decimal
    networks: tuple[str, ...]
    phases: tuple[str, ...]
    rail: str
    chain: str  # the network the swap and the blueprints run on
    swap: tuple[str, str]
    fees: Fees
    state_machine: str  # the manifest's state machine
    served: bool = True
    max_slippage_bps: int = 100  # min_out = output less this; a shortfall above it is subsidised
    max_price_impact_bps: int = 300  # beyond it: insufficient-liquidity

    @property
    def input_decimals(self) -> int:
        """Decimals the input may carry: those of its source (a rail's cents, a token's decimals)."""
        return NETWORK_DECIMALS[self.source][self.input_currency]

    @property
    def output_decimals(self) -> int:
        return NETWORK_DECIMALS[self.destination][self.output_currency]

    def first_phase(self) -> str:
        return self.phases[1]


BRL_ON_PHASES = ("initial", "payment", "fund", "approve", "mint", "swap", "fees", "deliver", "sweep", "complete")
BRL_OFF_PHASES = ("initial", "fund", "approve", "receive", "fees", "swap", "handoff", "payout", "sweep", "complete")
EUR_ON_PHASES = ("initial", "payment", "mint", "bridge", "swap", "deliver", "sweep", "complete")
EUR_OFF_PHASES = ("initial", "receive", "swap", "bridge", "payout", "sweep", "complete")

CORRIDORS: tuple[Corridor, ...] = (
    Corridor(
        key="brl_on",
        ramp_type="on",
        source="pix",
        destination="base",
        input_currency="BRL",
        output_currency="USDC",
        min_amount=Decimal("10.00"),
        max_amount=Decimal("50000.00"),
        networks=("base",),
        phases=BRL_ON_PHASES,
        rail="pix",
        chain="base",
        swap=("BRLA", "USDC"),
        fees=Fees(anchor_fixed=Decimal("0.50"), anchor_bps=0, platform_bps=25),
        state_machine="brl_on",
    ),
    Corridor(
        key="brl_off",
        ramp_type="off",
        source="base",
        destination="pix",
        input_currency="USDC",
        output_currency="BRL",
        min_amount=Decimal("2"),
        max_amount=Decimal("10000"),
        networks=("base",),
        phases=BRL_OFF_PHASES,
        rail="pix",
        chain="base",
        swap=("USDC", "BRLA"),
        fees=Fees(anchor_fixed=Decimal("0.50"), anchor_bps=0, platform_bps=25),
        state_machine="brl_off",
    ),
    # Declared so their shape is fixed; not served until the EUR corridors are built.
    Corridor(
        key="eur_on",
        ramp_type="on",
        source="sepa",
        destination="base",
        input_currency="EUR",
        output_currency="USDC",
        min_amount=Decimal("10.00"),
        max_amount=Decimal("20000.00"),
        networks=("stellar", "pendulum", "base"),
        phases=EUR_ON_PHASES,
        rail="sepa",
        chain="base",
        swap=("EURC", "USDC"),
        fees=Fees(anchor_fixed=Decimal("0.50"), anchor_bps=0, platform_bps=25),
        state_machine="eur_on",
        served=False,
    ),
    Corridor(
        key="eur_off",
        ramp_type="off",
        source="base",
        destination="sepa",
        input_currency="USDC",
        output_currency="EUR",
        min_amount=Decimal("2"),
        max_amount=Decimal("20000"),
        networks=("base", "pendulum", "stellar"),
        phases=EUR_OFF_PHASES,
        rail="sepa",
        chain="base",
        swap=("USDC", "EURC"),
        fees=Fees(anchor_fixed=Decimal("0.50"), anchor_bps=0, platform_bps=25),
        state_machine="eur_off",
        served=False,
    ),
)
SERVED: tuple[Corridor, ...] = tuple(c for c in CORRIDORS if c.served)
# Every phase name a ramp of a served corridor can be in (the OpenAPI enum): theirs, and ``failed``.
PHASES: tuple[str, ...] = tuple(dict.fromkeys([p for c in SERVED for p in c.phases] + ["failed"]))


def corridor(key: str) -> Corridor:
    for item in CORRIDORS:
        if item.key == key:
            return item
    raise KeyError(key)


@dataclass(frozen=True)
class FeeBreakdown:
    """In the input currency, at its ledger scale; ``total`` is exactly the sum of the parts."""

    network: Decimal
    anchor: Decimal
    platform: Decimal
    partner: Decimal
    currency: str

    @property
    def total(self) -> Decimal:
        return self.network + self.anchor + self.platform + self.partner


@dataclass(frozen=True)
class Quote:
    id: str
    owner_id: str
    corridor: Corridor
    input_amount: Decimal
    output_amount: Decimal
    rate: Decimal
    fees: FeeBreakdown
    snapshot: Mapping[str, Any]  # the immutable pricing detail the blueprints are built from
    created_at: datetime
    expires_at: datetime
    partner_id: str | None = None
    consumed_by: str | None = None
    expired: bool = False  # past expires_at by the database's clock, when read


@dataclass(frozen=True)
class SigningAccount:
    network: str
    address: str  # as registered (the blueprints echo it)
    role: SignerRole


@dataclass(frozen=True)
class UnsignedTx:
    """API.md's ``unsigned_txs[]`` item: a blueprint with the phase that submits it."""

    network: str
    phase: str
    nonce: int
    signer: str
    tx_data: Mapping[str, Any]

    @property
    def key(self) -> str:
        return presigned_key(self.network, self.phase, self.nonce, self.signer)


def presigned_key(network: str, phase: str, nonce: int, signer: str) -> str:
    """What a pre-signed transaction replaces an earlier one by: network, phase, nonce, signer
    (EVM addresses compared case-insensitively)."""
    return f"{network}|{phase}|{nonce}|{signer.lower() if signer.startswith('0x') else signer}"


@dataclass(frozen=True)
class HistoryEntry:
    phase: str
    entered_at: datetime


@dataclass(frozen=True)
class RampError:
    phase: str
    message: str
    recoverable: bool
    at: datetime


@dataclass(frozen=True)
class Ramp:
    id: str
    owner_id: str
    quote: Quote
    status: Status
    phase: str
    destination: Mapping[str, str]
    signing_accounts: tuple[SigningAccount, ...]
    unsigned_txs: tuple[UnsignedTx, ...]
    start_deadline: datetime
    created_at: datetime
    updated_at: datetime
    payer: Mapping[str, str] | None = None
    presigned: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # key → {tx_data, tx_hash}
    payment_instructions: Mapping[str, str] | None = None
    charge_id: str | None = None
    refund: Mapping[str, str] | None = None
    history: tuple[HistoryEntry, ...] = ()
    errors: tuple[RampError, ...] = ()
    transactions: Mapping[str, list[str]] = field(default_factory=dict)
    execution_arn: str | None = None
    seq: int = 0  # the list position (newest first)
    resume_at: str | None = None  # a paused ramp: the phase an operator's resume goes back to
    recoveries: int = 0  # recovery executions started ({id}--r{n})

    @property
    def corridor(self) -> Corridor:
        return self.quote.corridor

    @property
    def fully_signed(self) -> bool:
        return all(tx.key in self.presigned for tx in self.unsigned_txs)

    def blueprint(self, network: str, phase: str, nonce: int, signer: str) -> UnsignedTx | None:
        wanted = presigned_key(network, phase, nonce, signer)
        return next((tx for tx in self.unsigned_txs if tx.key == wanted), None)

    @property
    def needs_payment_instructions(self) -> bool:
        return self.corridor.ramp_type == "on" and self.payment_instructions is None
