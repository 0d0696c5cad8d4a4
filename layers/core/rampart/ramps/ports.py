"""What the ramp service needs from the outside: its store (PostgreSQL), prices, the workflow
engine (Step Functions), and — in :mod:`rampart.ramps.chains` / :mod:`rampart.ramps.rails` — the
chains and rails. Protocols only."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from rampart.ramps.models import Quote, Ramp, Status


@dataclass(frozen=True)
class SwapPrice:
    """A pool's answer for ``amount_in`` (chain units): ``amount_out`` after its fee, and
    ``spot_out``: what the reserves' ratio alone would give (no fee, no impact)."""

    amount_out: int
    spot_out: int


class RampStore(Protocol):
    def partner_markup(self, partner_id: str) -> int | None: ...

    def save_quote(self, quote: Quote, ttl_seconds: int) -> Quote:
        """Insert the quote with ``created_at`` = now and ``expires_at`` = now + ttl (the database's clock)."""
        ...

    def quote(self, quote_id: str) -> Quote | None: ...

    def ephemeral_in_use(self, network: str, address: str) -> bool: ...

    def register(self, ramp: Ramp, start_deadline_seconds: int) -> Ramp:
        """Atomically: consume the quote (a conditional update: unconsumed and unexpired, else
        QuoteConsumed / QuoteExpired), insert the ramp, and claim its ephemerals (EphemeralInUse
        when one is active elsewhere). Nothing is written when any of it fails."""
        ...

    def ramp(self, ramp_id: str) -> Ramp | None: ...

    def merge_presigned(self, ramp_id: str, signed: Mapping[str, Mapping[str, Any]]) -> Ramp:
        """Merge ``signed`` (key → {tx_data, tx_hash}) while the ramp is ``initial`` (else InvalidPhase)."""
        ...

    def set_payment_instructions(self, ramp_id: str, charge_id: str, instructions: Mapping[str, str]) -> Ramp: ...

    def start(self, ramp_id: str) -> tuple[Ramp, bool]:
        """``initial`` → ``running`` at the corridor's first phase, before the start deadline
        (StartDeadlinePassed after it); the ramp and whether this call started it."""
        ...

    def set_execution(self, ramp_id: str, execution_arn: str) -> Ramp: ...

    def cancel(self, ramp_id: str) -> Ramp:
        """``initial`` → ``cancelled``, its ephemerals released (InvalidPhase from any other status)."""
        ...

    def ramps(self, owner_id: str | None, status: Status | None, limit: int, after: int | None) -> list[Ramp]:
        """Newest first; ``after``: the last ``seq`` of the previous page."""
        ...

    def expire_due(self) -> list[Ramp]:
        """Every ``initial`` ramp past its start deadline → ``expired``, ephemerals released."""
        ...

    def sweep_quotes(self, grace_seconds: int) -> int:
        """Delete the unconsumed quotes expired more than ``grace_seconds`` ago; how many."""
        ...

    def task_token(self, ramp_id: str) -> tuple[str | None, str | None]: ...

    def unpause(self, ramp_id: str, *, recovery: bool) -> Ramp: ...

    def park(self, ramp_id: str, phase: str, task_token: str) -> Ramp:
        """Keep the token of the execution's task waiting in ``phase``."""
        ...


class Prices(Protocol):
    """The price port: the pools' answers and a USD FX table."""

    def swap(self, network: str, asset_in: str, amount_in: int, asset_out: str) -> SwapPrice:
        """The pool's answer for ``amount_in`` chain units of ``asset_in``."""
        ...

    def usd(self) -> Mapping[str, Decimal]:
        """USD per unit of each listed asset (ETH, BRL, EUR, …)."""
        ...


class Workflows(Protocol):
    def start(self, state_machine: str, name: str, payload: Mapping[str, Any]) -> str:
        """Start (or find, when it already exists) the execution ``name``: its ARN."""
        ...

    def alive(self, execution_arn: str) -> bool:
        """Whether the execution is still running."""
        ...

    def complete(self, task_token: str, output: Mapping[str, Any]) -> None:
        """Complete the waiting task of ``task_token`` with ``output``."""
        ...


class Clock(Protocol):
    def __call__(self) -> datetime: ...
