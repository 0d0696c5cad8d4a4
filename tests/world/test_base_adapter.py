"""The EVM adapter against the world's chain over HTTP: reads, fee estimates, the sweeper's collect
and refund, the gas table, and how an unreachable node is reported."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest

from rampart.adapters.chains.evm.client import GAS, EvmChain
from rampart.ramps.chains import Chain, ChainUnavailable, EvmChainPort, TransactionReverted
from tests.support.evm import Served, new_account, served_chain


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with served_chain(tmp_path_factory.mktemp("base")) as s:
        yield s


def test_it_is_the_port(served: Served) -> None:
    assert isinstance(served.adapter, Chain)
    assert isinstance(served.adapter, EvmChainPort)


def test_reads(served: Served) -> None:
    chain = served.adapter
    assert chain.chain_id == served.chain.chain_id
    address, _ = new_account()
    served.chain.faucet(address, "ETH", Decimal("0.25"))
    served.chain.faucet(address, "USDC", Decimal("1.5"))
    served.chain.faucet(address, "BRLA", Decimal("0.000000000000000001"))
    assert chain.balances(address) == {"ETH": 25 * 10**16, "USDC": 1_500_000, "BRLA": 1}
    assert chain.nonce(address) == 0
    fees = chain.fee_estimate()
    assert fees.max_fee_per_gas == 2 * fees.base_fee + fees.max_priority_fee_per_gas
    assert fees.max_priority_fee_per_gas > 0
    with pytest.raises(ValueError, match="address"):
        chain.balance("0xnot", "USDC")
    with pytest.raises(ValueError, match="DOGE"):
        chain.balance(address, "DOGE")


def _apply(served: Served, blueprint: object, key: str) -> int:
    chain = served.adapter
    signed = chain.bind(blueprint, chain.sign(blueprint, key))  # type: ignore[arg-type]
    chain.submit(signed)
    receipt = chain.receipt(signed.tx_hash)
    assert receipt is not None
    assert receipt.success, receipt
    return receipt.gas_used


def test_sweeper_collects_and_refunds_what_an_ephemeral_approved_and_the_gas_table_covers_it(served: Served) -> None:
    chain, world = served.adapter, served.chain
    ephemeral, key = new_account()
    user, _ = new_account()
    operator_key = world.platform_keys()["operator"]
    operator = world.platform_accounts()["operator"]
    treasury = world.platform_accounts()["fee_collector"]
    world.faucet(ephemeral, "ETH", Decimal("0.1"))
    world.faucet(ephemeral, "USDC", Decimal("10"))
    fees = chain.fee_estimate()
    used: dict[str, int] = {}
    used["approve"] = _apply(
        served, chain.approve_blueprint(ephemeral, "USDC", "sweeper", 2**256 - 1, nonce=0, fees=fees), key
    )
    used["transfer"] = _apply(
        served, chain.transfer_blueprint(ephemeral, "USDC", user, 1_000_000, nonce=1, fees=fees), key
    )
    treasury_before = chain.balance(treasury, "USDC")
    collect = chain.sweep_blueprint(
        operator, "USDC", ephemeral, 3_000_000, refund_to=None, nonce=chain.nonce(operator), fees=fees
    )
    used["collect"] = _apply(served, collect, operator_key)
    refund = chain.sweep_blueprint(
        operator, "USDC", ephemeral, 6_000_000, refund_to=user, nonce=chain.nonce(operator), fees=fees
    )
    used["refund"] = _apply(served, refund, operator_key)
    assert chain.balance(ephemeral, "USDC") == 0
    assert chain.balance(user, "USDC") == 7_000_000
    assert chain.balance(treasury, "USDC") - treasury_before == 3_000_000
    # a swap, measured too
    world.faucet(ephemeral, "USDC", Decimal("10"))
    used["approve"] = max(
        used["approve"],
        _apply(served, chain.approve_blueprint(ephemeral, "USDC", "pool", 10_000_000, nonce=2, fees=fees), key),
    )
    used["swap"] = _apply(
        served, chain.swap_blueprint(ephemeral, "USDC", 10_000_000, 1, ephemeral, nonce=3, fees=fees), key
    )
    for kind, gas in used.items():
        assert GAS[kind] >= gas * 11 // 10, f"GAS[{kind!r}] = {GAS[kind]} leaves under 10% over the {gas} measured"
    # only the operator may sweep: anyone else's call reverts with the reason
    with pytest.raises(TransactionReverted, match="Sweeper: caller is not the operator"):
        chain._call(chain.contract("sweeper"), bytes.fromhex(collect.tx_data["data"][2:]), sender=ephemeral)


def test_an_unreachable_node_is_transient() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    chain = EvmChain(f"http://127.0.0.1:{port}/rpc/base", {"USDC": "0x" + "11" * 20}, timeout=2)
    with pytest.raises(ChainUnavailable):
        chain.nonce("0x" + "22" * 20)
