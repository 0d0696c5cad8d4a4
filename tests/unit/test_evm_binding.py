"""Binding a signed EVM transaction to its blueprint, without a chain: every closed-list field,
the type, and what cannot be decoded."""

from __future__ import annotations

from typing import Any

import pytest
from eth_account import Account

from rampart.adapters.chains.evm.binding import bind, decode_signed
from rampart.ramps.chains import BINDING_FIELDS, Blueprint, BlueprintMismatch, UndecodableTransaction

KEY = "0x" + "42" * 32
SIGNER = Account.from_key(KEY).address
TX: dict[str, Any] = {
    "to": "0x" + "11" * 20,
    "data": "0xa9059cbb" + "00" * 64,
    "value": 0,
    "gas": 65_000,
    "maxFeePerGas": 3 * 10**9,
    "maxPriorityFeePerGas": 10**9,
    "nonce": 7,
    "chainId": 8453,
    "type": 2,
}
BLUEPRINT = Blueprint("base", SIGNER.lower(), TX)


def sign(tx: dict[str, Any], key: str = KEY) -> str:
    return "0x" + bytes(Account.sign_transaction(tx, key).raw_transaction).hex()


def test_the_exact_transaction_binds_with_its_hash() -> None:
    signed = bind(BLUEPRINT, sign(TX))
    assert signed.signer == BLUEPRINT.signer
    assert signed.tx_hash == decode_signed(signed.raw)["hash"]
    assert len(signed.tx_hash) == 66


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("chainId", 1),
        ("nonce", 8),
        ("to", "0x" + "12" * 20),
        ("data", "0xa9059cbb" + "00" * 63 + "01"),
        ("value", 1),
        ("gas", 65_001),
        ("maxFeePerGas", 3 * 10**9 + 1),
        ("maxPriorityFeePerGas", 10**9 + 1),
    ],
)
def test_a_changed_field_is_named(field: str, value: Any) -> None:
    with pytest.raises(BlueprintMismatch) as refused:
        bind(BLUEPRINT, sign({**TX, field: value}))
    assert refused.value.field == field


def test_signer_and_type() -> None:
    with pytest.raises(BlueprintMismatch) as refused:
        bind(BLUEPRINT, sign(TX, "0x" + "43" * 32))
    assert refused.value.field == "signer"
    legacy = {k: v for k, v in TX.items() if k not in ("type", "maxFeePerGas", "maxPriorityFeePerGas")}
    with pytest.raises(BlueprintMismatch) as refused:
        bind(BLUEPRINT, sign({**legacy, "gasPrice": 10**9}))
    assert refused.value.field == "type"
    assert decode_signed(sign({**legacy, "gasPrice": 10**9}))["chainId"] == 8453
    with pytest.raises(BlueprintMismatch) as refused:
        bind(BLUEPRINT, sign({**TX, "accessList": [{"address": TX["to"], "storageKeys": []}]}))
    assert refused.value.field == "type"
    assert set(BINDING_FIELDS["evm"]) == {
        "signer",
        "chainId",
        "nonce",
        "to",
        "data",
        "value",
        "gas",
        "maxFeePerGas",
        "maxPriorityFeePerGas",
        "type",
    }


@pytest.mark.parametrize("garbage", [None, 5, "", "0x", "abcd", "0xzz", "0x02", "0x02c0", "0xc0", "0x" + "00" * 100])
def test_undecodable(garbage: Any) -> None:
    with pytest.raises(UndecodableTransaction):
        bind(BLUEPRINT, garbage)
