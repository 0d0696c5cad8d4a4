"""A restart of the `base` chain on the same data dir keeps every balance, nonce, contract and receipt;
a torn write at the end of the log is dropped, never a corrupt chain."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from infra.world.base import BaseChain
from rampart.adapters.chains.evm.client import EvmChain
from tests.support.evm import new_account, serve


def test_restart_keeps_balances_nonces_contracts_and_receipts(tmp_path: Path) -> None:
    first = BaseChain(tmp_path)
    address, key = new_account()
    first.faucet(address, "ETH", Decimal("0.5"))
    first.faucet(address, "USDC", Decimal("10"))
    first.mint_brla(first.platform_accounts()["provider_brla"], Decimal("3"))
    first.burn_brla_from_provider(Decimal("1.25"))
    with serve(first) as url:
        chain = EvmChain(url, first.addresses())
        to, _ = new_account()
        blueprint = chain.transfer_blueprint(address, "USDC", to, 2_500_000, nonce=0, fees=chain.fee_estimate())
        tx_hash = chain.submit(chain.bind(blueprint, chain.sign(blueprint, key)))
        receipt = chain.receipt(tx_hash)
        code = {name: chain.w3.eth.get_code(a) for name, a in first.addresses().items()}
        head = chain.w3.eth.block_number
    accounts = [address, to, *first.platform_accounts().values()]
    state = {a: first.balances(a) for a in accounts}
    reserves = first.pool_reserves()

    second = BaseChain(tmp_path)
    assert second.addresses() == first.addresses()
    assert second.platform_accounts() == first.platform_accounts()
    assert {a: second.balances(a) for a in accounts} == state
    assert second.balances(address)["nonce"] == 1
    assert second.brla_balance(first.platform_accounts()["provider_brla"]) == Decimal("1.75")
    assert second.pool_reserves() == reserves
    with serve(second) as url:
        chain = EvmChain(url, second.addresses())
        assert chain.receipt(tx_hash) == receipt
        assert chain.w3.eth.block_number == head
        assert {name: chain.w3.eth.get_code(a) for name, a in second.addresses().items()} == code
        # and it goes on: the next transaction takes the next nonce
        blueprint = chain.transfer_blueprint(
            address, "USDC", to, 1, nonce=chain.nonce(address), fees=chain.fee_estimate()
        )
        assert blueprint.nonce == 1
        chain.submit(chain.bind(blueprint, chain.sign(blueprint, key)))
    assert BaseChain(tmp_path).balances(to)["balances"]["USDC"] == Decimal("2.500001")


def test_a_torn_last_write_is_dropped(tmp_path: Path) -> None:
    chain = BaseChain(tmp_path)
    address, _ = new_account()
    chain.faucet(address, "USDC", Decimal("1"))
    log = tmp_path / "base" / "chain.log"
    size = log.stat().st_size
    chain.faucet(address, "USDC", Decimal("2"))
    with open(log, "r+b") as f:  # the second faucet's record, cut in the middle
        f.truncate(size + (log.stat().st_size - size) // 2)
    again = BaseChain(tmp_path)
    assert again.balances(address)["balances"]["USDC"] == Decimal("1")
    again.faucet(address, "USDC", Decimal("4"))
    assert BaseChain(tmp_path).balances(address)["balances"]["USDC"] == Decimal("5")
