"""A signed transaction applies only when it is exactly its blueprint and the node accepts it.

Real py-evm (:class:`infra.world.base.BaseChain`) behind JSON-RPC over HTTP; the adapter is the
production one. Every refusal is checked to change nothing on chain (balances and nonce)."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from rampart.adapters.chains.evm.binding import decode_signed
from rampart.ramps.chains import (
    BINDING_FIELDS,
    Blueprint,
    BlueprintMismatch,
    TransactionRejected,
    UndecodableTransaction,
)
from tests.support.evm import Served, new_account, served_chain


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with served_chain(tmp_path_factory.mktemp("base")) as s:
        yield s


@pytest.fixture
def funded(served: Served) -> tuple[str, str]:
    address, key = new_account()
    served.chain.faucet(address, "ETH", Decimal("0.01"))
    served.chain.faucet(address, "USDC", Decimal("100"))
    return address, key


def _state(served: Served, address: str) -> dict[str, Any]:
    return served.chain.balances(address)


def _transfer(served: Served, signer: str, amount: int = 5_000_000, **overrides: Any) -> Blueprint:
    chain = served.adapter
    to, _ = new_account()
    blueprint = chain.transfer_blueprint(
        signer, "USDC", to, amount, nonce=chain.nonce(signer), fees=chain.fee_estimate()
    )
    return Blueprint(blueprint.network, blueprint.signer, {**blueprint.tx_data, **overrides})


def _sign(tx_data: dict[str, Any], key: str) -> str:
    from eth_account import Account

    return "0x" + bytes(Account.sign_transaction(tx_data, key).raw_transaction).hex()


def test_a_valid_signed_transaction_binds_and_applies(served: Served, funded: tuple[str, str]) -> None:
    address, key = funded
    blueprint = _transfer(served, address)
    signed = served.adapter.bind(blueprint, _sign(dict(blueprint.tx_data), key))  # eth_account takes it as is
    assert signed.tx_hash == decode_signed(signed.raw)["hash"]
    assert served.adapter.submit(signed) == signed.tx_hash  # the hash was known before submission
    receipt = served.adapter.receipt(signed.tx_hash)
    assert receipt is not None
    assert receipt.success
    assert served.chain.balances(address)["balances"]["USDC"] == Decimal("95")
    assert served.chain.balances(address)["nonce"] == 1
    assert served.adapter.submit(signed) == signed.tx_hash  # submitting again is a no-op, not an error
    assert served.chain.balances(address)["balances"]["USDC"] == Decimal("95")


CHANGED: dict[str, Any] = {
    "chainId": lambda tx: tx["chainId"] + 1,
    "nonce": lambda tx: tx["nonce"] + 1,
    "to": lambda tx: "0x" + "22" * 20,
    "data": lambda tx: tx["data"][:-2] + ("00" if not tx["data"].endswith("00") else "01"),
    "value": lambda tx: tx["value"] + 1,
    "gas": lambda tx: tx["gas"] + 1,
    "maxFeePerGas": lambda tx: tx["maxFeePerGas"] + 1,
    "maxPriorityFeePerGas": lambda tx: tx["maxPriorityFeePerGas"] - 1,
}


@pytest.mark.parametrize("field", sorted(CHANGED))
def test_each_field_changed_is_refused_naming_it(served: Served, funded: tuple[str, str], field: str) -> None:
    address, key = funded
    before = _state(served, address)
    blueprint = _transfer(served, address)
    tx = dict(blueprint.tx_data)
    tx[field] = CHANGED[field](tx)
    with pytest.raises(BlueprintMismatch) as refused:
        served.adapter.bind(blueprint, _sign(tx, key))
    assert refused.value.field == field
    assert field in BINDING_FIELDS["evm"]
    assert _state(served, address) == before


def test_another_signer_is_refused_as_signer(served: Served, funded: tuple[str, str]) -> None:
    address, _ = funded
    _, other_key = new_account()
    blueprint = _transfer(served, address)
    with pytest.raises(BlueprintMismatch) as refused:
        served.adapter.bind(blueprint, _sign(dict(blueprint.tx_data), other_key))
    assert refused.value.field == "signer"


def test_a_legacy_transaction_is_refused_as_type(served: Served, funded: tuple[str, str]) -> None:
    address, key = funded
    blueprint = _transfer(served, address)
    tx = {k: v for k, v in blueprint.tx_data.items() if k not in ("type", "maxFeePerGas", "maxPriorityFeePerGas")}
    tx["gasPrice"] = blueprint.tx_data["maxFeePerGas"]
    with pytest.raises(BlueprintMismatch) as refused:
        served.adapter.bind(blueprint, _sign(tx, key))
    assert refused.value.field == "type"


@pytest.mark.parametrize("garbage", ["", "0x", "0xzz", "0x02c0", "0x" + "ff" * 40, 12, None])
def test_undecodable_is_a_clear_error(served: Served, funded: tuple[str, str], garbage: Any) -> None:
    blueprint = _transfer(served, funded[0])
    with pytest.raises(UndecodableTransaction):
        served.adapter.bind(blueprint, garbage)


def _submit_raw(served: Served, blueprint: Blueprint, key: str) -> None:
    from rampart.ramps.chains import SignedTransaction

    raw = _sign(dict(blueprint.tx_data), key)
    served.adapter.submit(SignedTransaction("base", blueprint.signer, decode_signed(raw)["hash"], raw, blueprint))


def test_the_node_refuses_a_wrong_chain_id(served: Served, funded: tuple[str, str]) -> None:
    address, key = funded
    before = _state(served, address)
    blueprint = _transfer(served, address, chainId=served.adapter.chain_id + 1)
    with pytest.raises(TransactionRejected, match="invalid chain id"):
        _submit_raw(served, blueprint, key)
    assert _state(served, address) == before


def test_the_node_refuses_a_stale_nonce(served: Served, funded: tuple[str, str]) -> None:
    address, key = funded
    first = _transfer(served, address)
    _submit_raw(served, first, key)
    before = _state(served, address)
    stale = _transfer(served, address, nonce=0, value=0, data=first.tx_data["data"].replace("4c4b40", "4c4b41"))
    with pytest.raises(TransactionRejected, match="nonce too low"):
        _submit_raw(served, stale, key)
    assert _state(served, address) == before


def test_the_node_refuses_too_little_balance(served: Served, funded: tuple[str, str]) -> None:
    address, key = funded
    before = _state(served, address)
    chain = served.adapter
    to, _ = new_account()
    blueprint = chain.transfer_blueprint(address, "ETH", to, 10**18, nonce=0, fees=chain.fee_estimate())
    with pytest.raises(TransactionRejected, match="insufficient funds"):
        _submit_raw(served, blueprint, key)
    assert _state(served, address) == before
    assert served.chain.balances(to)["balances"]["ETH"] == 0


def test_a_token_transfer_beyond_the_balance_reverts_with_its_reason(served: Served, funded: tuple[str, str]) -> None:
    address, key = funded
    usdc_before = _state(served, address)["balances"]["USDC"]
    blueprint = _transfer(served, address, amount=500_000_000)  # 500 USDC, holds 100
    _submit_raw(served, blueprint, key)
    receipt = served.adapter.receipt(decode_signed(_sign(dict(blueprint.tx_data), key))["hash"])
    assert receipt is not None
    assert not receipt.success
    assert receipt.revert_reason == "Token: transfer exceeds balance"
    assert _state(served, address)["balances"]["USDC"] == usdc_before


def test_world_api_validates_its_input(served: Served) -> None:
    with pytest.raises(ValueError, match="address"):
        served.chain.faucet("0x1234", "USDC", Decimal("1"))
    with pytest.raises(ValueError, match="asset"):
        served.chain.faucet("0x" + "11" * 20, "DOGE", Decimal("1"))
    with pytest.raises(ValueError, match="amount"):
        served.chain.faucet("0x" + "11" * 20, "USDC", Decimal("0.0000001"))
    with pytest.raises(ValueError, match="amount"):
        served.chain.faucet("0x" + "11" * 20, "USDC", Decimal("-1"))
    with pytest.raises(ValueError, match="checksum"):
        served.chain.balances("0x" + "aB" * 20)


def test_rpc_errors_are_json_rpc_error_objects(served: Served) -> None:
    rpc = served.chain.rpc
    assert rpc({"jsonrpc": "2.0", "id": 1, "method": "eth_nope", "params": []})["error"]["code"] == -32601
    assert rpc({"jsonrpc": "2.0", "id": 2, "method": "eth_getBalance", "params": ["0x12"]})["error"]["code"] == -32602
    bad_raw = rpc({"jsonrpc": "2.0", "id": 3, "method": "eth_sendRawTransaction", "params": ["0x02deadbeef"]})
    assert bad_raw["error"]["code"] == -32602
    batch = rpc(
        [{"jsonrpc": "2.0", "id": 4, "method": "eth_chainId"}, {"jsonrpc": "2.0", "id": 5, "method": "net_version"}]
    )
    assert isinstance(batch, list)
    assert [r["id"] for r in batch] == [4, 5]
    assert int(batch[0]["result"], 16) == int(batch[1]["result"]) == served.chain.chain_id
    pool = served.chain.addresses()["pool"]
    from rampart.adapters.chains.evm import abi

    data = "0x" + abi.encode_call("Pool", "getAmountOut", [served.chain.addresses()["USDC"], 0]).hex()
    reverted = rpc({"jsonrpc": "2.0", "id": 6, "method": "eth_call", "params": [{"to": pool, "data": data}, "latest"]})
    assert reverted["error"]["code"] == 3
    assert reverted["error"]["message"] == "execution reverted: Pool: zero input"
    assert abi.revert_reason(bytes.fromhex(reverted["error"]["data"][2:])) == "Pool: zero input"


def test_the_keys_file_is_private(served: Served) -> None:
    keys = Path(served.chain.directory) / "keys.json"
    assert keys.stat().st_mode & 0o777 == 0o600
