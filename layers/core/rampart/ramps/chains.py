"""The chain port: what a ramp needs from a chain, whatever its kind (EVM now; Stellar and
Substrate fit the same shapes later). Value types and errors only; no SDK is imported here.

A *blueprint* is a transaction the backend built and a signer (an ephemeral, the user's wallet, a
platform account) signs: ``Blueprint.tx_data`` is exactly what API.md's ``unsigned_txs[].tx_data``
carries for its network (EVM: ``{to, data, value, gas, maxFeePerGas, maxPriorityFeePerGas, nonce,
chainId, type: 2}``). A signed transaction comes back as ``presigned_txs[].tx_data`` (EVM: the
``0x…`` raw transaction) and is *bound* to its blueprint field by field: any difference raises
:class:`BlueprintMismatch` naming the field from the chain's closed list (:data:`BINDING_FIELDS`).

Amounts here are integers in the chain's base units (USDC 6 decimals on ``base``, …); converting
to and from ``Decimal`` at the ledger scale is the ramp service's job (rampart.core.money).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from rampart.core.errors import Permanent, Transient

ChainKind = Literal["evm", "stellar", "substrate"]

# API.md's closed list of fields a signed transaction is bound on, per kind of chain.
BINDING_FIELDS: dict[str, tuple[str, ...]] = {
    "evm": ("signer", "chainId", "nonce", "to", "data", "value", "gas", "maxFeePerGas", "maxPriorityFeePerGas", "type"),
    "stellar": ("signer", "network", "source", "sequence", "operations", "time_bounds", "memo", "fee"),
    "substrate": ("signer", "signature", "payload", "nonce", "era", "genesis_hash", "call"),
}


# -- errors ------------------------------------------------------------------------------------
class ChainError(Exception):
    """Base of the chain port's errors."""


class BlueprintMismatch(ChainError):
    """A signed transaction differs from its blueprint; ``field`` is from :data:`BINDING_FIELDS`."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class UndecodableTransaction(ChainError):
    """The signed transaction cannot be decoded at all (not hex, not a transaction, bad signature)."""


class ChainUnavailable(Transient, ChainError):
    """The node did not answer, or answered 5xx / garbage: retry with backoff."""


class TransactionRejected(Permanent, ChainError):
    """The node refused the transaction (``reason``: nonce too low, insufficient funds, wrong chain…);
    nothing changed on chain."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TransactionReverted(Permanent, ChainError):
    """A call or a mined transaction reverted; ``reason`` is its ``Error(string)`` when it had one."""

    def __init__(self, reason: str | None, tx_hash: str | None = None) -> None:
        super().__init__(f"reverted: {reason}" if reason else "reverted")
        self.reason = reason
        self.tx_hash = tx_hash


# -- value types -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Blueprint:
    """One transaction to sign: ``network`` (``base``, ``stellar``, ``pendulum``), the ``signer``'s
    address as registered, and the chain-specific ``tx_data`` (API.md's ``unsigned_txs[].tx_data``)."""

    network: str
    signer: str
    tx_data: Mapping[str, Any]

    @property
    def nonce(self) -> int:
        return int(self.tx_data["nonce"])


@dataclass(frozen=True)
class SignedTransaction:
    """A signed transaction bound to its blueprint: ready to submit. ``tx_hash`` is known before
    submission (EVM: keccak of ``raw``), so the journal records it first."""

    network: str
    signer: str
    tx_hash: str
    raw: str
    blueprint: Blueprint


@dataclass(frozen=True)
class FeeEstimate:
    """EIP-1559 fee caps (wei per gas) for a blueprint: ``max_fee_per_gas`` ≥ ``base_fee`` +
    ``max_priority_fee_per_gas``; Stellar and Substrate fill ``max_fee_per_gas`` with their flat fee."""

    base_fee: int
    max_fee_per_gas: int
    max_priority_fee_per_gas: int


@dataclass(frozen=True)
class Log:
    address: str
    topics: tuple[str, ...]
    data: str


@dataclass(frozen=True)
class Receipt:
    """A mined (included) transaction: ``success`` False means it reverted (``revert_reason`` when
    known) — the fee was still paid and the nonce used."""

    tx_hash: str
    success: bool
    block_number: int
    gas_used: int
    effective_gas_price: int
    logs: tuple[Log, ...] = field(default=())
    revert_reason: str | None = None

    @property
    def fee(self) -> int:
        return self.gas_used * self.effective_gas_price


# -- the port ----------------------------------------------------------------------------------
@runtime_checkable
class Chain(Protocol):
    """What every chain adapter does. Addresses are the chain's own text form; assets by symbol."""

    network: str
    kind: ChainKind

    def native_asset(self) -> str: ...

    def valid_address(self, address: str) -> str | None:
        """``address`` in the chain's canonical form when it is one (EVM: 20-byte hex, mixed
        case only as a valid EIP-55 checksum), else None."""
        ...

    def balance(self, address: str, asset: str) -> int:
        """Base units of ``asset`` (the native one or a token) held by ``address``."""
        ...

    def nonce(self, address: str) -> int:
        """The next nonce / sequence ``address`` will use (pending included)."""
        ...

    def bind(self, blueprint: Blueprint, signed: Any) -> SignedTransaction:
        """Decode ``signed`` (API.md's ``presigned_txs[].tx_data``) and check it against
        ``blueprint`` field by field: :class:`BlueprintMismatch` / :class:`UndecodableTransaction`."""
        ...

    def submit(self, signed: SignedTransaction) -> str:
        """Send it; the hash. Refused → :class:`TransactionRejected`; unreachable → :class:`ChainUnavailable`."""
        ...

    def receipt(self, tx_hash: str) -> Receipt | None:
        """The receipt once included, None while unknown or pending."""
        ...


@runtime_checkable
class EvmChainPort(Chain, Protocol):
    """An EVM chain: fee estimates and the blueprints the ramps need (ERC-20 transfer and approve,
    the pool's swap, the sweeper's collect and refund)."""

    chain_id: int
    gas_table: Mapping[str, int]  # gas limit per kind of call (transfer, approve, swap, collect, refund)

    def contract(self, name: str) -> str: ...

    def fee_estimate(self) -> FeeEstimate: ...

    def quote_swap(self, token_in: str, amount_in: int) -> int:
        """The pool's output for ``amount_in`` of ``token_in`` (its ``getAmountOut``)."""
        ...

    def transfer_blueprint(
        self, signer: str, asset: str, to: str, amount: int, *, nonce: int, fees: FeeEstimate, gas: int | None = None
    ) -> Blueprint: ...

    def approve_blueprint(
        self,
        signer: str,
        asset: str,
        spender: str,
        amount: int,
        *,
        nonce: int,
        fees: FeeEstimate,
        gas: int | None = None,
    ) -> Blueprint: ...

    def swap_blueprint(
        self,
        signer: str,
        asset_in: str,
        amount_in: int,
        min_amount_out: int,
        to: str,
        *,
        nonce: int,
        fees: FeeEstimate,
        gas: int | None = None,
    ) -> Blueprint: ...

    def sweep_blueprint(
        self,
        operator: str,
        asset: str,
        owner: str,
        amount: int,
        *,
        refund_to: str | None,
        nonce: int,
        fees: FeeEstimate,
        gas: int | None = None,
    ) -> Blueprint: ...

    def sign(self, blueprint: Blueprint, private_key: str) -> str:
        """A platform account's signature of its own blueprint: the ``0x…`` raw transaction."""
        ...

    def received(self, receipt: Receipt, asset: str, to: str) -> int:
        """Base units of token ``asset`` the transaction of ``receipt`` transferred to ``to`` (its
        ``Transfer`` events)."""
        ...
