"""Decode a signed EVM raw transaction and bind it to its blueprint, field by field.

The blueprint's ``tx_data`` is ``{to, data, value, gas, maxFeePerGas, maxPriorityFeePerGas, nonce,
chainId, type: 2}``; the signed transaction is the ``0x…`` raw bytes the client's
``Account.sign_transaction(tx_data, key)`` produced. Binding checks the type first (only an
EIP-1559 transaction without an access list can match), then API.md's closed list in its order:
``signer`` (the recovered sender), ``chainId``, ``nonce``, ``to``, ``data``, ``value``, ``gas``,
``maxFeePerGas``, ``maxPriorityFeePerGas``. The first difference raises
:class:`~rampart.ramps.chains.BlueprintMismatch` naming its field; bytes that are not a signed
transaction raise :class:`~rampart.ramps.chains.UndecodableTransaction`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rampart.ramps.chains import Blueprint, BlueprintMismatch, SignedTransaction, UndecodableTransaction

EIP1559 = 2


def _raw_bytes(signed: Any) -> bytes:
    if not isinstance(signed, str) or not signed.startswith("0x") or len(signed) < 4:
        raise UndecodableTransaction("expected the signed raw transaction as 0x-prefixed hex")
    try:
        return bytes.fromhex(signed[2:])
    except ValueError:
        raise UndecodableTransaction("the signed raw transaction is not valid hex") from None


def decode_signed(signed: Any) -> dict[str, Any]:
    """The fields of a signed raw transaction: the closed list's names, plus ``hash`` and ``raw``.
    Legacy and access-list transactions decode with their ``type`` (0 or 1) and no EIP-1559 caps."""
    from eth_account import Account
    from eth_utils.address import to_checksum_address
    from eth_utils.crypto import keccak

    raw = _raw_bytes(signed)
    try:
        signer = Account.recover_transaction(raw)
    except Exception as error:
        raise UndecodableTransaction(f"not a signed transaction ({type(error).__name__})") from None
    fields: dict[str, Any] = {
        "signer": to_checksum_address(signer),
        "hash": "0x" + bytes(keccak(raw)).hex(),
        "raw": signed,
    }
    if raw[0] >= 0xC0:  # an RLP list: a legacy transaction
        import rlp  # type: ignore[import-untyped]

        nonce, gas_price, gas, to, value, data, v, _r, _s = rlp.decode(raw)
        v_int = int.from_bytes(v, "big")
        fields.update(
            type=0,
            chainId=(v_int - 35) // 2 if v_int >= 35 else None,
            nonce=int.from_bytes(nonce, "big"),
            to=to_checksum_address(to) if to else None,
            data="0x" + bytes(data).hex(),
            value=int.from_bytes(value, "big"),
            gas=int.from_bytes(gas, "big"),
            gasPrice=int.from_bytes(gas_price, "big"),
        )
        return fields
    from eth_account.typed_transactions.typed_transaction import TypedTransaction
    from hexbytes import HexBytes

    try:
        decoded = TypedTransaction.from_bytes(HexBytes(raw))
        tx = decoded.as_dict()
    except Exception as error:
        raise UndecodableTransaction(f"not a signed transaction ({type(error).__name__})") from None
    to_raw = tx.get("to")
    fields.update(
        type=int(decoded.transaction_type),
        chainId=tx.get("chainId"),
        nonce=tx.get("nonce"),
        to=to_checksum_address(bytes(to_raw)) if to_raw else None,
        data="0x" + bytes(tx.get("data", b"")).hex(),
        value=tx.get("value"),
        gas=tx.get("gas"),
        maxFeePerGas=tx.get("maxFeePerGas"),
        maxPriorityFeePerGas=tx.get("maxPriorityFeePerGas"),
        accessList=tuple(tx.get("accessList", ())),
    )
    return fields


def _same_address(a: Any, b: Any) -> bool:
    return isinstance(a, str) and isinstance(b, str) and a.lower() == b.lower()


def bind(blueprint: Blueprint, signed: Any) -> SignedTransaction:
    """``signed`` decoded and checked against ``blueprint``; raises on the first difference."""
    fields = decode_signed(signed)
    expected: Mapping[str, Any] = blueprint.tx_data
    if fields["type"] != EIP1559 or int(expected.get("type", EIP1559)) != EIP1559:
        raise BlueprintMismatch("type", f"expected an EIP-1559 transaction (type 2), got type {fields['type']}")
    if fields["accessList"]:
        raise BlueprintMismatch("type", "the blueprint has no access list; the signed transaction has one")
    if not _same_address(fields["signer"], blueprint.signer):
        raise BlueprintMismatch("signer", f"signed by {fields['signer']}, expected {blueprint.signer}")
    for name in ("chainId", "nonce"):
        if fields[name] != int(expected[name]):
            raise BlueprintMismatch(name, f"expected {expected[name]}, got {fields[name]}")
    if not _same_address(fields["to"], expected.get("to")):
        raise BlueprintMismatch("to", f"expected {expected.get('to')}, got {fields['to']}")
    if str(fields["data"]).lower() != str(expected.get("data") or "0x").lower():
        raise BlueprintMismatch("data", "the call data differs from the blueprint's")
    for name in ("value", "gas", "maxFeePerGas", "maxPriorityFeePerGas"):
        if fields[name] != int(expected[name]):
            raise BlueprintMismatch(name, f"expected {expected[name]}, got {fields[name]}")
    return SignedTransaction(
        network=blueprint.network,
        signer=blueprint.signer,
        tx_hash=fields["hash"],
        raw=fields["raw"],
        blueprint=blueprint,
    )
