"""Every transaction a ramp's keys sign, per corridor: built at registration from the quote's
snapshot, the registered accounts and the fee estimate, with nonces in order and gas from the
chain adapter's gas table. The platform's own transactions (gas funding, mint, payout, top-ups,
sweeps) are not here: it signs those itself when it submits them.

What lets the platform clean up after a ramp is in here too: the ephemeral's first transactions
approve the platform's sweeper contract for every token the ramp touches, so leftovers can be
swept and, after a failure, funds refunded, without another signature (ARCHITECTURE.md,
"Exactly ``output_amount``, nothing left behind").

BRL on (the ephemeral ``E`` signs, nonces 0–5):
  approve  0 BRLA.approve(sweeper, max) · 1 USDC.approve(sweeper, max) · 2 BRLA.approve(pool, swap_in)
  swap     3 pool.swap(BRLA, swap_in, min_out, E)
  fees     4 BRLA.transfer(fee_collector, fees)
  deliver  5 USDC.transfer(destination, output)

BRL off (``E`` nonces 0–5; the user's wallet ``U`` one transfer at its current nonce):
  approve  0 USDC.approve(sweeper, max) · 1 BRLA.approve(sweeper, max) · 2 USDC.approve(pool, swap_in)
  receive  U: USDC.transfer(E, input)
  fees     3 USDC.transfer(fee_collector, fees)
  swap     4 pool.swap(USDC, swap_in, min_out, E)
  handoff  5 BRLA.transfer(provider_brla, output)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from rampart.ramps.chains import Blueprint, EvmChainPort, FeeEstimate
from rampart.ramps.models import NETWORK_DECIMALS, Corridor, UnsignedTx
from rampart.ramps.pricing import to_chain

MAX_ALLOWANCE = 2**256 - 1


@dataclass(frozen=True)
class Step:
    """One transaction of the plan: who signs it, in which phase, and what it does."""

    phase: str
    signer: str  # "ephemeral" | "user"
    kind: str  # approve | swap | transfer
    args: tuple[Any, ...]


def plan(corridor: Corridor) -> tuple[Step, ...]:
    """The corridor's steps in submission order (arguments by name, resolved by :func:`build`)."""
    token_in, token_out = corridor.swap
    if corridor.key == "brl_on":
        return (
            Step("approve", "ephemeral", "approve", (token_in, "sweeper", "max")),
            Step("approve", "ephemeral", "approve", (token_out, "sweeper", "max")),
            Step("approve", "ephemeral", "approve", (token_in, "pool", "swap_in")),
            Step("swap", "ephemeral", "swap", (token_in, "swap_in", "min_out", "ephemeral")),
            Step("fees", "ephemeral", "transfer", (token_in, "fee_collector", "fees")),
            Step("deliver", "ephemeral", "transfer", (token_out, "destination", "output")),
        )
    if corridor.key == "brl_off":
        return (
            Step("approve", "ephemeral", "approve", (token_in, "sweeper", "max")),
            Step("approve", "ephemeral", "approve", (token_out, "sweeper", "max")),
            Step("approve", "ephemeral", "approve", (token_in, "pool", "swap_in")),
            Step("receive", "user", "transfer", (token_in, "ephemeral", "input")),
            Step("fees", "ephemeral", "transfer", (token_in, "fee_collector", "fees")),
            Step("swap", "ephemeral", "swap", (token_in, "swap_in", "min_out", "ephemeral")),
            Step("handoff", "ephemeral", "transfer", (token_out, "provider_brla", "output")),
        )
    raise KeyError(f"no blueprint plan for corridor {corridor.key}")


def ephemeral_gas(corridor: Corridor, gas_table: Mapping[str, int]) -> int:
    """The gas of the ephemeral's transactions: what the platform funds it with (the quote's
    network fee), from the adapter's gas table."""
    return sum(gas_table[step.kind] for step in plan(corridor) if step.signer == "ephemeral")


def build(
    corridor: Corridor,
    chain: EvmChainPort,
    *,
    snapshot: Mapping[str, Any],
    input_amount: Decimal,  # the quote's input
    signers: Mapping[str, str],  # "ephemeral" / "user" → address as registered
    destination: str | None,  # the on-ramp's destination address
    platform: Mapping[str, str],  # fee_collector, provider_brla, … → address
    fees: FeeEstimate,
    user_nonce: int | None,
) -> tuple[UnsignedTx, ...]:
    swap = snapshot["swap"]
    input_units = to_chain(input_amount, NETWORK_DECIMALS[corridor.chain][corridor.swap[0]])
    amounts = {
        "max": MAX_ALLOWANCE,
        "swap_in": int(swap["amount_in"]),
        "min_out": int(swap["min_out"]),
        "output": int(swap["output"]),
        "fees": int(snapshot["fee_units"]["total"]),
        "input": input_units,
    }
    parties = {**platform, "ephemeral": signers["ephemeral"]}
    if destination is not None:
        parties["destination"] = destination
    nonces = {"ephemeral": 0, "user": user_nonce if user_nonce is not None else 0}
    built: list[UnsignedTx] = []
    for step in plan(corridor):
        signer = signers[step.signer]
        nonce = nonces[step.signer]
        nonces[step.signer] += 1
        blueprint: Blueprint
        if step.kind == "approve":
            asset, spender, amount = step.args
            target = spender if spender in ("pool", "sweeper") else parties[spender]
            blueprint = chain.approve_blueprint(signer, asset, target, amounts[amount], nonce=nonce, fees=fees)
        elif step.kind == "swap":
            asset, amount_in, min_out, to = step.args
            blueprint = chain.swap_blueprint(
                signer, asset, amounts[amount_in], amounts[min_out], parties[to], nonce=nonce, fees=fees
            )
        else:
            asset, to, amount = step.args
            blueprint = chain.transfer_blueprint(signer, asset, parties[to], amounts[amount], nonce=nonce, fees=fees)
        built.append(
            UnsignedTx(network=corridor.chain, phase=step.phase, nonce=nonce, signer=signer, tx_data=blueprint.tx_data)
        )
    return tuple(built)
