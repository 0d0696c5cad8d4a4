"""The world's `base` chain: a real EVM (py-evm through eth-tester's PyEVMBackend), served as JSON-RPC.

``BaseChain(data_dir)`` keeps everything under ``<data_dir>/base/``:

- ``chain.snap`` + ``chain.log`` — py-evm's key-value database (:mod:`infra.world.evm_store`),
  flushed after every call that changed it, so a restart keeps every balance, nonce, contract
  and receipt;
- ``keys.json`` (0600) — the platform accounts' private keys, generated on first start;
- ``contracts.json`` — the deployed contracts' addresses, written last on first start (a first
  start that died half-way is started again from genesis).

First start: fund the platform accounts with ETH, deploy USDC (6 decimals, issued by ``issuer``),
BRLA (18, issued by ``provider_brla``, the BRLA issuer's account), the USDC/BRLA pool (owned by
``liquidity``, 30 bps) and the sweeper (``operator`` moves what ephemerals approved, to
``fee_collector`` or back to the user), and seed the pool with 1,000,000 USDC against 5,500,000
BRLA. Every call is serialized by one lock (py-evm is not thread-safe); the world's own
transactions take their nonces from one allocator. docs/chains.md describes it.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from eth.db.atomic import AtomicDB
from eth_tester import EthereumTester, PyEVMBackend  # type: ignore[import-untyped]
from eth_utils.address import is_hex_address, to_checksum_address

from infra.world.evm_rpc import PRIORITY_FEE, EvmRpc
from infra.world.evm_store import ChainStore, RecordingDB
from rampart.adapters.chains.evm import abi

DECIMALS = {"ETH": 18, "USDC": 6, "BRLA": 18}
POOL_FEE_BPS = 30
POOL_USDC = Decimal("1000000")
POOL_BRLA = Decimal("5500000")  # ~5.5 BRL per USD
RESERVE_USDC = Decimal("1000000")  # held by `liquidity` beside the pool, for top-ups
RESERVE_BRLA = Decimal("5500000")
ROLE_ETH = {"gas_funder": Decimal("10000")}  # every other role gets DEFAULT_ROLE_ETH
DEFAULT_ROLE_ETH = Decimal("1000")
PLATFORM_ROLES = ("gas_funder", "fee_collector", "liquidity", "provider_brla")
ROLES = (*PLATFORM_ROLES, "issuer", "operator")
# eth-tester's first genesis account (private key 0x…01, 1,000,000 ETH): the world's ETH tap.
GENESIS_KEY = "0x" + "00" * 31 + "01"


def keys_file(world_data_dir: Path) -> Path:
    """Where the world's ``base`` keeps the platform's keys (the server gives the chain
    ``<world data>/base`` as its data dir, and the chain keeps its files under ``base/`` of that)."""
    return Path(world_data_dir) / "base" / "base" / "keys.json"


class ChainOperationFailed(RuntimeError):
    """A transaction of the world's own was refused or would revert (the message says why)."""


def to_chain_units(amount: Decimal, asset: str, field: str = "amount") -> int:
    """An exact, positive Decimal amount of ``asset`` in on-chain base units; ValueError names the field."""
    if asset not in DECIMALS:
        raise ValueError(f"asset: expected one of {', '.join(DECIMALS)}, got {asset!r}")
    try:
        value = Decimal(amount)
        if not value.is_finite() or value <= 0:
            raise ValueError(f"{field}: must be a positive amount, got {amount!r}")
        units = value.scaleb(DECIMALS[asset])
        if units != units.to_integral_value():
            raise ValueError(f"{field}: {asset} has at most {DECIMALS[asset]} decimals, got {amount}")
    except (InvalidOperation, TypeError):
        raise ValueError(f"{field}: not a decimal amount: {amount!r}") from None
    return int(units)


def from_chain_units(units: int, asset: str) -> Decimal:
    """Base units → an exact Decimal with exactly the asset's on-chain decimals (``Decimal("12.500000")``)."""
    places = DECIMALS[asset]
    return Decimal(f"{units // 10**places}.{units % 10**places:0{places}d}")


def checksum(address: str, field: str = "address") -> str:
    """EIP-55 form of a 20-byte hex address; mixed case must already be a valid checksum."""
    if not isinstance(address, str) or not is_hex_address(address):
        raise ValueError(f"{field}: not a 20-byte hex address: {address!r}")
    body = address[2:]
    if body != body.lower() and body != body.upper() and to_checksum_address(address) != address:
        raise ValueError(f"{field}: invalid EIP-55 checksum: {address!r}")
    return str(to_checksum_address(address))


class NonceAllocator:
    """One allocator for every account the world signs for: the next nonce is never handed twice."""

    def __init__(self, read: Callable[[str], int]) -> None:
        self._read = read
        self._next: dict[str, int] = {}

    def take(self, address: str) -> int:
        nonce = max(self._next.get(address, 0), self._read(address))
        self._next[address] = nonce + 1
        return nonce

    def give_back(self, address: str, nonce: int) -> None:
        """A refused transaction: its nonce is free again if nothing was taken after it."""
        if self._next.get(address) == nonce + 1:
            self._next[address] = nonce


class BaseChain:
    """The world's `base` chain (see the module docstring). Every public method is thread-safe."""

    def __init__(self, data_dir: Path) -> None:
        from eth_account import Account

        self._lock = threading.RLock()
        self.directory = Path(data_dir) / "base"
        self.directory.mkdir(parents=True, exist_ok=True)
        self._store = ChainStore(self.directory)
        self._keys = self._load_or_create_keys()
        self._accounts = {role: Account.from_key(key).address for role, key in self._keys.items()}
        self._genesis = Account.from_key(GENESIS_KEY).address

        backend = PyEVMBackend()
        self.chain_id = int(backend.chain.chain_id)
        chain_class = type(backend.chain)
        contracts_file = self.directory / "contracts.json"
        fresh = not (contracts_file.exists() and self._store.exists())
        if fresh:
            self._store.wipe()
            db = RecordingDB(dict(backend.chain.chaindb.db.wrapped_db.kv_store))
            backend.chain = chain_class(AtomicDB(db))
            self._store.create(db)
        else:
            db = self._store.load()
            backend.chain = chain_class(AtomicDB(db))
        self._db = db
        self._tester = EthereumTester(backend)
        self._rpc = EvmRpc(self._tester, self.chain_id)
        self._nonces = NonceAllocator(lambda address: int(self._tester.get_nonce(address)))
        if fresh:
            self._contracts = self._bootstrap()
            tmp = contracts_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(self._contracts, indent=2, sort_keys=True) + "\n")
            os.replace(tmp, contracts_file)
        else:
            self._contracts = json.loads(contracts_file.read_text())

    # -- the contract of contract.md ---------------------------------------------------------
    def rpc(self, request: dict[str, Any] | list[Any]) -> dict[str, Any] | list[Any]:
        """One JSON-RPC request object, or a batch (a list), → its response(s)."""
        with self._lock:
            try:
                if isinstance(request, list):
                    if not request:
                        return {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "empty batch"}}
                    return [self._rpc.handle(item) for item in request]
                return self._rpc.handle(request)
            finally:
                self._store.flush(self._db)

    def save(self) -> None:
        with self._lock:
            self._store.flush(self._db)

    def addresses(self) -> dict[str, str]:
        return dict(self._contracts)

    def platform_accounts(self) -> dict[str, str]:
        """Addresses of the platform's accounts (and of the USDC issuer and the sweeper's operator)."""
        return dict(self._accounts)

    def platform_keys(self) -> dict[str, str]:
        """Twin only: the private keys the backend holds in Secrets Manager (role → 0x… key)."""
        return dict(self._keys)

    def faucet(self, address: str, asset: str, amount: Decimal) -> str:
        to = checksum(address)
        units = to_chain_units(amount, asset)
        with self._lock:
            if asset == "ETH":
                return self._send_as(self._genesis, GENESIS_KEY, to, b"", value=units)
            issuer = "issuer" if asset == "USDC" else "provider_brla"
            return self._transact(issuer, self._contracts[asset], abi.encode_call("Token", "mint", [to, units]))

    def balances(self, address: str) -> dict[str, Any]:
        owner = checksum(address)
        with self._lock:
            return {
                "address": owner,
                "nonce": int(self._tester.get_nonce(owner)),
                "balances": {
                    "ETH": from_chain_units(int(self._tester.get_balance(owner)), "ETH"),
                    "USDC": from_chain_units(self._token_balance("USDC", owner), "USDC"),
                    "BRLA": from_chain_units(self._token_balance("BRLA", owner), "BRLA"),
                },
            }

    def mint_brla(self, to: str, amount: Decimal) -> str:
        target = checksum(to, "to")
        units = to_chain_units(amount, "BRLA")
        with self._lock:
            return self._transact(
                "provider_brla", self._contracts["BRLA"], abi.encode_call("Token", "mint", [target, units])
            )

    def burn_brla_from_provider(self, amount: Decimal) -> str:
        units = to_chain_units(amount, "BRLA")
        with self._lock:
            return self._transact("provider_brla", self._contracts["BRLA"], abi.encode_call("Token", "burn", [units]))

    def brla_balance(self, address: str) -> Decimal:
        owner = checksum(address)
        with self._lock:
            return from_chain_units(self._token_balance("BRLA", owner), "BRLA")

    # -- helpers for tests and the world ------------------------------------------------------
    def pool_reserves(self) -> dict[str, Decimal]:
        with self._lock:
            out = self._call(self._contracts["pool"], abi.encode_call("Pool", "getReserves", []))
            reserve0, reserve1 = abi.decode_output("Pool", "getReserves", out)
            return {"USDC": from_chain_units(reserve0, "USDC"), "BRLA": from_chain_units(reserve1, "BRLA")}

    # -- internals ----------------------------------------------------------------------------
    def _load_or_create_keys(self) -> dict[str, str]:
        path = self.directory / "keys.json"
        keys: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
        missing = [role for role in ROLES if role not in keys]
        if missing:
            for role in missing:
                keys[role] = "0x" + secrets.token_bytes(32).hex()
            tmp = path.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump(keys, f, indent=2, sort_keys=True)
            os.replace(tmp, path)
        os.chmod(path, 0o600)
        return keys

    def _request(self, method: str, params: list[Any]) -> Any:
        reply = self._rpc.handle({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
        if "error" in reply:
            raise ChainOperationFailed(f"{method}: {reply['error']['message']}")
        return reply["result"]

    def _call(self, to: str, data: bytes) -> bytes:
        return bytes.fromhex(self._request("eth_call", [{"to": to, "data": "0x" + data.hex()}, "latest"])[2:])

    def _token_balance(self, asset: str, owner: str) -> int:
        (units,) = abi.decode_output(
            "Token", "balanceOf", self._call(self._contracts[asset], abi.encode_call("Token", "balanceOf", [owner]))
        )
        return int(units)

    def _transact(self, role: str, to: str | None, data: bytes, value: int = 0) -> str:
        return self._send_as(self._accounts[role], self._keys[role], to, data, value)

    def _send_as(self, sender: str, key: str, to: str | None, data: bytes, value: int = 0) -> str:
        """Sign and apply one transaction of the world's own; its hash. Refused or reverting → raises."""
        from eth_account import Account

        call: dict[str, Any] = {"from": sender, "data": "0x" + data.hex(), "value": hex(value)}
        if to is not None:
            call["to"] = to
        gas = int(self._request("eth_estimateGas", [call, "latest"]), 16)  # a revert raises here
        base_fee = int(self._tester.backend.chain.header.base_fee_per_gas)
        nonce = self._nonces.take(sender)
        tx = {
            "data": "0x" + data.hex(),
            "value": value,
            "gas": gas * 12 // 10 + 10_000,
            "maxFeePerGas": 2 * base_fee + PRIORITY_FEE,
            "maxPriorityFeePerGas": PRIORITY_FEE,
            "nonce": nonce,
            "chainId": self.chain_id,
            "type": 2,
        }
        if to is not None:
            tx["to"] = to
        raw = Account.sign_transaction(tx, key).raw_transaction
        try:
            tx_hash = str(self._request("eth_sendRawTransaction", ["0x" + raw.hex()]))
        except ChainOperationFailed:
            self._nonces.give_back(sender, nonce)
            raise
        finally:
            self._store.flush(self._db)
        receipt = self._request("eth_getTransactionReceipt", [tx_hash])
        if receipt is None or receipt["status"] != "0x1":
            raise ChainOperationFailed(f"transaction {tx_hash} reverted")
        return tx_hash

    def _deploy(self, role: str, name: str, args: list[Any]) -> str:
        tx_hash = self._transact(role, None, abi.deploy_data(name, args))
        receipt = self._request("eth_getTransactionReceipt", [tx_hash])
        return str(to_checksum_address(receipt["contractAddress"]))

    def _bootstrap(self) -> dict[str, str]:
        for role in ROLES:
            amount = ROLE_ETH.get(role, DEFAULT_ROLE_ETH)
            self._send_as(self._genesis, GENESIS_KEY, self._accounts[role], b"", to_chain_units(amount, "ETH"))
        usdc = self._deploy("issuer", "Token", ["USD Coin", "USDC", 6])
        brla = self._deploy("provider_brla", "Token", ["BRLA Token", "BRLA", 18])
        pool = self._deploy("liquidity", "Pool", [usdc, brla, POOL_FEE_BPS])
        sweeper = self._deploy("issuer", "Sweeper", [self._accounts["operator"], self._accounts["fee_collector"]])
        liquidity = self._accounts["liquidity"]
        usdc_units = to_chain_units(POOL_USDC + RESERVE_USDC, "USDC")
        brla_units = to_chain_units(POOL_BRLA + RESERVE_BRLA, "BRLA")
        self._transact("issuer", usdc, abi.encode_call("Token", "mint", [liquidity, usdc_units]))
        self._transact("provider_brla", brla, abi.encode_call("Token", "mint", [liquidity, brla_units]))
        pool_usdc, pool_brla = to_chain_units(POOL_USDC, "USDC"), to_chain_units(POOL_BRLA, "BRLA")
        self._transact("liquidity", usdc, abi.encode_call("Token", "approve", [pool, pool_usdc]))
        self._transact("liquidity", brla, abi.encode_call("Token", "approve", [pool, pool_brla]))
        self._transact("liquidity", pool, abi.encode_call("Pool", "addLiquidity", [pool_usdc, pool_brla]))
        return {"USDC": usdc, "BRLA": brla, "pool": pool, "sweeper": sweeper}
