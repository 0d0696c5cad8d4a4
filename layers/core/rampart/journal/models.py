"""Operations of the journal and the claims a worker gets on them.

An operation is keyed ``ramp:phase:step`` (:func:`operation_key`) and carries the hash of its
request (:func:`request_hash`: canonical JSON, SHA-256), its status
(``not_started → submitted → confirmed | failed | unknown``), and the external id that finds it
in the world: a transaction hash (known before submission) or the provider's id (requested with
the key as its idempotency key).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

OperationStatus = Literal["not_started", "submitted", "confirmed", "failed", "unknown"]
SETTLED: frozenset[str] = frozenset({"confirmed", "failed"})
MAX_KEY = 200


def operation_key(ramp_id: str, phase: str, step: str) -> str:
    """``ramp:phase:step``: the journal's key, and the idempotency key a provider sees."""
    key = f"{ramp_id}:{phase}:{step}"
    if not ramp_id or not phase or not step or len(key) > MAX_KEY:
        raise ValueError(f"an operation key needs a ramp, a phase and a step, at most {MAX_KEY} characters: {key!r}")
    return key


def request_hash(request: Mapping[str, Any]) -> bytes:
    """SHA-256 of the request as canonical JSON (sorted keys, no spaces): what a repeat must match."""
    text = json.dumps(request, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).digest()


@dataclass(frozen=True)
class Operation:
    key: str
    ramp_id: str
    kind: str
    request: Mapping[str, Any]
    status: OperationStatus
    claim_id: str
    attempts: int
    claimed_at: datetime
    lease_until: datetime
    external_id: str | None = None
    evidence: Mapping[str, Any] | None = None
    outcome: Mapping[str, Any] | None = None
    error: str | None = None

    @property
    def settled(self) -> bool:
        return self.status in SETTLED


HolderKind = Literal["ephemeral", "user", "platform"]


@dataclass(frozen=True)
class Holder:
    """An address whose balance the ledger mirrors (``network`` a chain or a rail). EVM addresses
    are compared in lower case."""

    network: str
    address: str
    kind: HolderKind

    @property
    def key(self) -> str:
        return self.address.lower() if self.address.startswith("0x") else self.address


@dataclass(frozen=True)
class Movement:
    """One confirmed movement in the world, mirrored by one ledger transfer (same PostgreSQL
    transaction as the operation's settlement): ``units`` of ``asset`` at its ledger scale, from
    ``source`` to ``target`` (None: the world outside — the pool, the issuer, a bank, the user's
    own wallet when it is not mirrored). ``reference`` is unique per movement (the operation key
    and a leg), so settling again finds the same transfer."""

    reference: str
    asset: str
    units: int
    source: Holder | None
    target: Holder | None


@dataclass(frozen=True)
class Mirrored:
    """A mirrored account and its ledger balance (ledger units)."""

    holder: Holder
    asset: str
    account_id: int
    balance: int


@dataclass(frozen=True)
class Claim:
    """What a worker may do with an operation after claiming it:

    - ``act``: nobody acted before (a first claim): act now;
    - ``look_up``: someone may have acted (a claim taken over after its lease ran out, or an
      operation already ``submitted``): look ``operation.external_id`` (or the key, at a provider)
      up first, and act — with the same request — only when the world has no trace of it;
    - ``done``: settled (``confirmed`` or ``failed``): use ``operation.outcome``, never act.

    A claim holds the operation until ``lease_until``; settling needs its ``claim_id``."""

    operation: Operation
    act: bool = False
    look_up: bool = False

    @property
    def done(self) -> bool:
        return self.operation.settled

    @property
    def claim_id(self) -> str:
        return self.operation.claim_id
