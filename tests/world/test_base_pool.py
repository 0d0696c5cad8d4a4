"""The USDC/BRLA pool on a real py-evm: its math against a hand-computed table, its minimum output,
and the token and pool invariants under many concurrent swaps (over JSON-RPC, from threads)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from decimal import Decimal

import pytest

from rampart.adapters.chains.evm import abi
from rampart.ramps.chains import TransactionReverted
from tests.support.evm import Served, new_account, served_chain

USDC, BRLA = 10**6, 10**18


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with served_chain(tmp_path_factory.mktemp("base")) as s:
        yield s


def _swap(served: Served, address: str, key: str, asset: str, amount: int, minimum: int) -> tuple[str, bool]:
    chain = served.adapter
    fees = chain.fee_estimate()
    approve = chain.approve_blueprint(address, asset, "pool", amount, nonce=chain.nonce(address), fees=fees)
    chain.submit(chain.bind(approve, chain.sign(approve, key)))
    swap = chain.swap_blueprint(address, asset, amount, minimum, address, nonce=chain.nonce(address), fees=fees)
    signed = chain.bind(swap, chain.sign(swap, key))
    chain.submit(signed)
    receipt = chain.receipt(signed.tx_hash)
    assert receipt is not None
    return signed.tx_hash, receipt.success


# Seeded with 1,000,000 USDC against 5,500,000 BRLA, fee 30 bps. Each row, applied in order:
# out = in·9970·R_out // (R_in·10000 + in·9970) — the fee-less x·y=k output of (in − fee) — and the
# reserves after. (asset in, amount in, fee kept, output, USDC reserve after, BRLA reserve after)
TABLE = [
    ("USDC", 100 * USDC, 300_000, 548_295_334_955_104_976_033, 1_000_100_000_000, 5_499_451_704_665_044_895_023_967),
    (
        "USDC",
        250_000 * USDC,
        750_000_000,
        1_097_161_193_730_950_046_091_746,
        1_250_100_000_000,
        4_402_290_510_934_094_848_932_221,
    ),
    (
        "BRLA",
        5_500 * BRLA,
        16_500_000_000_000_000_000,
        1_555_189_384,
        1_248_544_810_616,
        4_407_790_510_934_094_848_932_221,
    ),
]


def test_pool_math_matches_the_hand_computed_table(served: Served) -> None:
    chain = served.adapter
    assert chain.pool_reserves() == {"USDC": 1_000_000 * USDC, "BRLA": 5_500_000 * BRLA}
    address, key = new_account()
    served.chain.faucet(address, "ETH", Decimal("1"))
    served.chain.faucet(address, "USDC", Decimal("250100"))
    served.chain.faucet(address, "BRLA", Decimal("5500"))
    for asset, amount, fee, output, usdc_after, brla_after in TABLE:
        (reserve_in, reserve_out) = (
            (chain.pool_reserves()["USDC"], chain.pool_reserves()["BRLA"])
            if asset == "USDC"
            else (chain.pool_reserves()["BRLA"], chain.pool_reserves()["USDC"])
        )
        assert amount * 30 // 10_000 == fee
        assert (amount - fee) * reserve_out // (reserve_in + amount - fee) == output  # the fee stays in the pool
        assert chain.quote_swap(asset, amount) == output
        other = "BRLA" if asset == "USDC" else "USDC"
        before = chain.balance(address, other)
        # one unit more than the output is below the minimum: reverts, nothing moves
        tx_hash, ok = _swap(served, address, key, asset, amount, output + 1)
        assert not ok
        receipt = chain.receipt(tx_hash)
        assert receipt is not None
        assert receipt.revert_reason == "Pool: output below minimum"
        tx_hash, ok = _swap(served, address, key, asset, amount, output)
        assert ok
        assert chain.balance(address, other) - before == output
        assert chain.pool_reserves() == {"USDC": usdc_after, "BRLA": brla_after}
    # one wei of BRLA buys nothing: refused, not a free transfer
    with pytest.raises(TransactionReverted, match="Pool: zero output"):
        served.adapter._call(
            chain.contract("pool"),
            abi.encode_call("Pool", "swap", [chain.contract("BRLA"), 1, 0, address]),
            sender=address,
        )


def _total_supply(served: Served, asset: str) -> int:
    out = served.adapter._call(served.adapter.contract(asset), abi.encode_call("Token", "totalSupply", []))
    return int(abi.decode_output("Token", "totalSupply", out)[0])


@pytest.mark.slow
def test_invariants_under_concurrent_swaps(served: Served) -> None:
    chain = served.adapter
    traders = [new_account() for _ in range(6)]
    for address, _ in traders:
        served.chain.faucet(address, "ETH", Decimal("1"))
        served.chain.faucet(address, "USDC", Decimal("5000"))
        served.chain.faucet(address, "BRLA", Decimal("30000"))
    supply = {asset: _total_supply(served, asset) for asset in ("USDC", "BRLA")}
    start = chain.pool_reserves()
    hashes: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def trade(address: str, key: str, index: int) -> None:
        try:
            for round_ in range(4):
                asset = "USDC" if (index + round_) % 2 == 0 else "BRLA"
                amount = (100 + 37 * index + round_) * (USDC if asset == "USDC" else BRLA)
                tx_hash, ok = _swap(served, address, key, asset, amount, 1)
                assert ok
                with lock:
                    hashes.append(tx_hash)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=trade, args=(a, k, i)) for i, (a, k) in enumerate(traders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert len(hashes) == 24
    # total supply conserved: swaps move tokens, never mint or burn
    assert {asset: _total_supply(served, asset) for asset in ("USDC", "BRLA")} == supply
    # reserves are exactly the pool's token balances
    reserves = chain.pool_reserves()
    pool = chain.contract("pool")
    assert reserves == {"USDC": chain.balance(pool, "USDC"), "BRLA": chain.balance(pool, "BRLA")}
    # k never decreased: along the swaps in block order (their Sync events), and overall
    sync = abi.event_topic("Pool", "Sync")
    receipts = sorted((r for r in (chain.receipt(h) for h in hashes) if r is not None), key=lambda r: r.block_number)
    k_values = [start["USDC"] * start["BRLA"]]
    for receipt in receipts:
        (log,) = [log for log in receipt.logs if log.topics[0] == sync]
        reserve0, reserve1 = int(log.data[2:66], 16), int(log.data[66:130], 16)
        k_values.append(reserve0 * reserve1)
    assert k_values == sorted(k_values)
    assert reserves["USDC"] * reserves["BRLA"] > start["USDC"] * start["BRLA"]
