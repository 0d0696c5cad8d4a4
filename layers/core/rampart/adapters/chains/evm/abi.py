"""The committed contract artifacts (``artifacts/<Name>.json``, compiled by ``make contracts``) and
the little ABI work the adapter and the world need: call data, outputs, constructor data, revert
reasons. Contract function names are unique in our contracts, so a name picks its function."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
ERROR_SELECTOR = bytes.fromhex("08c379a0")  # Error(string)


@cache
def artifact(name: str) -> dict[str, Any]:
    """``{abi, bytecode, deployedBytecode, compiler, ...}`` of contract ``name`` (Token, Pool, Sweeper)."""
    path = ARTIFACTS / f"{name}.json"
    if not path.exists():
        raise KeyError(f"no artifact for contract {name!r} in {ARTIFACTS}")
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def _entry(contract: str, function: str) -> dict[str, Any]:
    for entry in artifact(contract)["abi"]:
        if entry.get("type") == "function" and entry["name"] == function:
            return dict(entry)
    raise KeyError(f"{contract} has no function {function!r}")


def _types(params: list[dict[str, Any]]) -> list[str]:
    return [str(p["type"]) for p in params]


def signature(contract: str, function: str) -> str:
    return f"{function}({','.join(_types(_entry(contract, function)['inputs']))})"


def selector(contract: str, function: str) -> bytes:
    from eth_utils.crypto import keccak

    return bytes(keccak(text=signature(contract, function))[:4])


def encode_call(contract: str, function: str, args: list[Any]) -> bytes:
    from eth_abi.abi import encode

    types = _types(_entry(contract, function)["inputs"])
    if len(args) != len(types):
        raise ValueError(f"{contract}.{function} takes {len(types)} arguments, got {len(args)}")
    return selector(contract, function) + encode(types, args)


def decode_call(contract: str, function: str, data: bytes) -> tuple[Any, ...]:
    """The arguments of call data for ``function`` (ValueError when it is another call)."""
    from eth_abi.abi import decode

    if data[:4] != selector(contract, function):
        raise ValueError(f"not a call of {contract}.{function}")
    return tuple(decode(_types(_entry(contract, function)["inputs"]), data[4:]))


def decode_output(contract: str, function: str, data: bytes) -> tuple[Any, ...]:
    from eth_abi.abi import decode

    return tuple(decode(_types(_entry(contract, function)["outputs"]), data))


def deploy_data(contract: str, args: list[Any]) -> bytes:
    """Creation code + ABI-encoded constructor arguments."""
    from eth_abi.abi import encode

    entries = artifact(contract)["abi"]
    constructor: dict[str, Any] = next((e for e in entries if e.get("type") == "constructor"), {"inputs": []})
    code = bytes.fromhex(artifact(contract)["bytecode"][2:])
    return code + encode(_types(constructor["inputs"]), args)


def event_topic(contract: str, event: str) -> str:
    from eth_utils.crypto import keccak

    for entry in artifact(contract)["abi"]:
        if entry.get("type") == "event" and entry["name"] == event:
            text = f"{event}({','.join(_types(entry['inputs']))})"
            return "0x" + bytes(keccak(text=text)).hex()
    raise KeyError(f"{contract} has no event {event!r}")


def revert_reason(data: bytes) -> str | None:
    """The message of a revert with ``Error(string)``; None for any other revert data."""
    from eth_abi.abi import decode

    if data[:4] != ERROR_SELECTOR:
        return None
    try:
        (reason,) = decode(["string"], data[4:])
    except Exception:
        return None
    return str(reason)
