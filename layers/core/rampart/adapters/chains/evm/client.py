"""The EVM chain adapter: web3 over HTTP (``Web3(HTTPProvider(url))``), the same code for the twin
world's ``/rpc/base`` and a real RPC URL. web3 and eth_account are imported inside the methods.

Errors map to the port's: no answer / 5xx / a timeout → :class:`ChainUnavailable`; a node's refusal
of a transaction → :class:`TransactionRejected` with the node's reason; a revert (an ``eth_call``,
a gas estimate) → :class:`TransactionReverted` with the decoded ``Error(string)``. Submitting is
idempotent: a transaction the node already knows, or already mined, returns its hash.

Gas limits of the blueprints come from :data:`GAS` (measured against the contracts in
tests/world/test_base_adapter.py), not from an estimate: an ephemeral's blueprints are built before
it holds anything to estimate with.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from rampart.adapters.chains.evm import abi
from rampart.adapters.chains.evm.binding import bind as bind_signed
from rampart.ramps.chains import (
    Blueprint,
    ChainUnavailable,
    FeeEstimate,
    Log,
    Receipt,
    SignedTransaction,
    TransactionRejected,
    TransactionReverted,
)

# Gas limits per kind of call: what the contracts use, measured, with a margin (see the tests).
GAS: dict[str, int] = {"transfer": 65_000, "approve": 55_000, "swap": 130_000, "collect": 90_000, "refund": 90_000}
NATIVE = "ETH"
# Node refusals that mean "already there": submitting again is a success.
_ALREADY = ("already known", "known transaction", "nonce too low: already mined")


class EvmChain:
    """The chain port for an EVM network (``base``). ``contracts`` maps ``USDC``, ``BRLA`` (tokens
    by symbol), ``pool`` and ``sweeper`` to their addresses."""

    kind: Literal["evm"] = "evm"
    gas_table: Mapping[str, int] = GAS

    def __init__(
        self,
        rpc_url: str,
        contracts: Mapping[str, str],
        *,
        network: str = "base",
        timeout: float = 10.0,  # not money: seconds
    ) -> None:
        self.rpc_url = rpc_url
        self.network = network
        self.timeout = timeout
        self._contracts = {name: self._checksum(address, name) for name, address in contracts.items()}
        self._chain_id: int | None = None
        self._web3: Any = None

    # -- plumbing ---------------------------------------------------------------------------
    @property
    def w3(self) -> Any:
        if self._web3 is None:
            from web3 import Web3
            from web3.providers import HTTPProvider

            self._web3 = Web3(HTTPProvider(self.rpc_url, request_kwargs={"timeout": self.timeout}))
        return self._web3

    @staticmethod
    def _checksum(address: str, field: str = "address") -> str:
        from eth_utils.address import is_hex_address, to_checksum_address

        if not isinstance(address, str) or not is_hex_address(address):
            raise ValueError(f"{field}: not a 20-byte hex address: {address!r}")
        return str(to_checksum_address(address))

    def _do(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run one web3 call, mapping its failures to the port's errors."""
        import requests
        from web3.exceptions import ContractLogicError, Web3RPCError

        try:
            return fn(*args, **kwargs)
        except ContractLogicError as error:
            raise TransactionReverted(_reason_of(error)) from None
        except Web3RPCError as error:
            message = _rpc_message(error)
            if "execution reverted" in message:
                raise TransactionReverted(message.removeprefix("execution reverted").lstrip(": ") or None) from None
            raise TransactionRejected(f"{what}: {message}") from None
        except (requests.ConnectionError, requests.Timeout) as error:
            raise ChainUnavailable(
                f"{self.network}: {what}: the node did not answer ({type(error).__name__})"
            ) from None
        except requests.HTTPError as error:
            status = error.response.status_code if error.response is not None else 0
            if status >= 500 or status == 429:
                raise ChainUnavailable(f"{self.network}: {what}: the node answered HTTP {status}") from None
            raise TransactionRejected(f"{what}: the node answered HTTP {status}") from None
        except ValueError as error:  # undecodable replies
            raise ChainUnavailable(f"{self.network}: {what}: unreadable reply ({error})") from None

    @property
    def chain_id(self) -> int:
        if self._chain_id is None:
            self._chain_id = int(self._do("eth_chainId", lambda: self.w3.eth.chain_id))
        return self._chain_id

    def contract(self, name: str) -> str:
        try:
            return self._contracts[name]
        except KeyError:
            raise ValueError(f"unknown contract or asset {name!r} on {self.network}") from None

    def native_asset(self) -> str:
        return NATIVE

    def valid_address(self, address: str) -> str | None:
        """The EIP-55 form of a 20-byte hex address; None for anything else, and for a mixed-case
        address whose case is not its checksum (a typo the checksum exists to catch)."""
        from eth_utils.address import is_checksum_address, is_hex_address, to_checksum_address

        if (
            not isinstance(address, str)
            or len(address) != 42
            or not address.startswith("0x")
            or not is_hex_address(address)
        ):
            return None
        body = address[2:]
        if body != body.lower() and body != body.upper() and not is_checksum_address(address):
            return None
        return str(to_checksum_address(address))

    # -- reads ------------------------------------------------------------------------------
    def _call(self, to: str, data: bytes, *, sender: str | None = None, block: Any = "latest") -> bytes:
        call: dict[str, Any] = {"to": to, "data": "0x" + data.hex()}
        if sender is not None:
            call["from"] = sender
        return bytes(self._do("eth_call", lambda: self.w3.eth.call(call, block)))

    def balance(self, address: str, asset: str) -> int:
        owner = self._checksum(address)
        if asset == NATIVE:
            return int(self._do("eth_getBalance", lambda: self.w3.eth.get_balance(owner)))
        out = self._call(self.contract(asset), abi.encode_call("Token", "balanceOf", [owner]))
        return int(abi.decode_output("Token", "balanceOf", out)[0])

    def balances(self, address: str, assets: tuple[str, ...] = ("ETH", "USDC", "BRLA")) -> dict[str, int]:
        return {asset: self.balance(address, asset) for asset in assets}

    def allowance(self, owner: str, asset: str, spender: str) -> int:
        data = abi.encode_call("Token", "allowance", [self._checksum(owner), self._checksum(spender)])
        return int(abi.decode_output("Token", "allowance", self._call(self.contract(asset), data))[0])

    def nonce(self, address: str) -> int:
        owner = self._checksum(address)
        return int(self._do("eth_getTransactionCount", lambda: self.w3.eth.get_transaction_count(owner, "pending")))

    def fee_estimate(self) -> FeeEstimate:
        """EIP-1559: the latest base fee, the node's suggested tip, and a cap of 2 × base fee + tip
        (room for six full blocks of base-fee rises)."""
        block = self._do("eth_getBlockByNumber", lambda: self.w3.eth.get_block("latest"))
        base_fee = int(block["baseFeePerGas"])
        tip = int(self._do("eth_maxPriorityFeePerGas", lambda: self.w3.eth.max_priority_fee))
        return FeeEstimate(base_fee=base_fee, max_fee_per_gas=2 * base_fee + tip, max_priority_fee_per_gas=tip)

    def quote_swap(self, token_in: str, amount_in: int) -> int:
        data = abi.encode_call("Pool", "getAmountOut", [self.contract(token_in), amount_in])
        return int(abi.decode_output("Pool", "getAmountOut", self._call(self.contract("pool"), data))[0])

    def pool_reserves(self) -> dict[str, int]:
        out = self._call(self.contract("pool"), abi.encode_call("Pool", "getReserves", []))
        token0 = abi.decode_output(
            "Pool", "token0", self._call(self.contract("pool"), abi.encode_call("Pool", "token0", []))
        )[0]
        reserve0, reserve1 = abi.decode_output("Pool", "getReserves", out)
        symbols = {
            address.lower(): name for name, address in self._contracts.items() if name not in ("pool", "sweeper")
        }
        first = symbols[str(token0).lower()]
        second = next(name for name in symbols.values() if name != first)
        return {first: int(reserve0), second: int(reserve1)}

    # -- blueprints -------------------------------------------------------------------------
    def _blueprint(
        self, signer: str, to: str, data: bytes, *, nonce: int, fees: FeeEstimate, gas: int, value: int = 0
    ) -> Blueprint:
        if nonce < 0 or gas <= 0 or value < 0:
            raise ValueError("nonce, gas and value must be non-negative (gas positive)")
        tx_data = {
            "to": self._checksum(to, "to"),
            "data": "0x" + data.hex(),
            "value": int(value),
            "gas": int(gas),
            "maxFeePerGas": int(fees.max_fee_per_gas),
            "maxPriorityFeePerGas": int(fees.max_priority_fee_per_gas),
            "nonce": int(nonce),
            "chainId": self.chain_id,
            "type": 2,
        }
        self._checksum(signer, "signer")
        return Blueprint(network=self.network, signer=signer, tx_data=tx_data)

    @staticmethod
    def _positive(amount: int, field: str = "amount") -> int:
        if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0 or amount >= 2**256:
            raise ValueError(f"{field}: expected a positive integer of base units below 2^256, got {amount!r}")
        return amount

    def transfer_blueprint(
        self, signer: str, asset: str, to: str, amount: int, *, nonce: int, fees: FeeEstimate, gas: int | None = None
    ) -> Blueprint:
        """An ERC-20 ``transfer(to, amount)`` of ``asset``, or a plain ETH transfer for ``ETH``."""
        self._positive(amount)
        if asset == NATIVE:
            return self._blueprint(signer, to, b"", nonce=nonce, fees=fees, gas=gas or 21_000, value=amount)
        data = abi.encode_call("Token", "transfer", [self._checksum(to, "to"), amount])
        return self._blueprint(signer, self.contract(asset), data, nonce=nonce, fees=fees, gas=gas or GAS["transfer"])

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
    ) -> Blueprint:
        """ERC-20 ``approve(spender, amount)``; ``spender`` may be a contract name (``pool``, ``sweeper``)."""
        target = self._contracts.get(spender) or self._checksum(spender, "spender")
        if not isinstance(amount, int) or amount < 0 or amount >= 2**256:
            raise ValueError(f"amount: expected an integer of base units in [0, 2^256), got {amount!r}")
        data = abi.encode_call("Token", "approve", [target, amount])
        return self._blueprint(signer, self.contract(asset), data, nonce=nonce, fees=fees, gas=gas or GAS["approve"])

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
    ) -> Blueprint:
        """The pool's ``swap(tokenIn, amountIn, minAmountOut, to)`` (the signer approved the pool first)."""
        self._positive(amount_in, "amount_in")
        if not isinstance(min_amount_out, int) or min_amount_out < 0:
            raise ValueError(f"min_amount_out: expected a non-negative integer, got {min_amount_out!r}")
        data = abi.encode_call(
            "Pool", "swap", [self.contract(asset_in), amount_in, min_amount_out, self._checksum(to, "to")]
        )
        return self._blueprint(signer, self.contract("pool"), data, nonce=nonce, fees=fees, gas=gas or GAS["swap"])

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
    ) -> Blueprint:
        """The sweeper's ``collect(token, owner, amount)`` (to the treasury) or, with ``refund_to``,
        ``refund(token, owner, refund_to, amount)``; signed by the operator."""
        self._positive(amount)
        token, source = self.contract(asset), self._checksum(owner, "owner")
        if refund_to is None:
            data, kind = abi.encode_call("Sweeper", "collect", [token, source, amount]), "collect"
        else:
            data = abi.encode_call("Sweeper", "refund", [token, source, self._checksum(refund_to, "refund_to"), amount])
            kind = "refund"
        return self._blueprint(operator, self.contract("sweeper"), data, nonce=nonce, fees=fees, gas=gas or GAS[kind])

    def sign(self, blueprint: Blueprint, private_key: str) -> str:
        from eth_account import Account

        return "0x" + bytes(Account.sign_transaction(dict(blueprint.tx_data), private_key).raw_transaction).hex()

    def received(self, receipt: Receipt, asset: str, to: str) -> int:
        """The sum of the token's ``Transfer(from, to, value)`` events to ``to`` in ``receipt``."""
        token = self.contract(asset).lower()
        topic = abi.event_topic("Token", "Transfer")
        target = "0x" + "0" * 24 + self._checksum(to)[2:].lower()
        total = 0
        for log in receipt.logs:
            ours = log.address.lower() == token and len(log.topics) == 3 and log.topics[0] == topic
            if ours and log.topics[2].lower() == target:
                total += int(log.data, 16)
        return total

    # -- binding, submission, receipts ------------------------------------------------------
    def bind(self, blueprint: Blueprint, signed: Any) -> SignedTransaction:
        return bind_signed(blueprint, signed)

    def submit(self, signed: SignedTransaction) -> str:
        """Send the raw transaction; its hash (known before: keccak of the raw bytes)."""
        try:
            self._do("eth_sendRawTransaction", lambda: self.w3.eth.send_raw_transaction(signed.raw))
        except TransactionRejected as error:
            if any(marker in error.reason for marker in _ALREADY) or self.receipt(signed.tx_hash) is not None:
                return signed.tx_hash
            raise
        return signed.tx_hash

    def receipt(self, tx_hash: str) -> Receipt | None:
        from web3.exceptions import TransactionNotFound

        def fetch() -> Any:
            try:
                return self.w3.eth.get_transaction_receipt(tx_hash)
            except TransactionNotFound:
                return None

        found = self._do("eth_getTransactionReceipt", fetch)
        if found is None or found.get("blockNumber") is None:
            return None
        success = int(found["status"]) == 1
        logs = tuple(
            Log(
                address=str(log["address"]),
                topics=tuple("0x" + bytes(t).hex() for t in log["topics"]),
                data="0x" + bytes(log["data"]).hex(),
            )
            for log in found["logs"]
        )
        return Receipt(
            tx_hash=tx_hash,
            success=success,
            block_number=int(found["blockNumber"]),
            gas_used=int(found["gasUsed"]),
            effective_gas_price=int(found.get("effectiveGasPrice") or 0),
            logs=logs,
            revert_reason=None if success else self.revert_reason(tx_hash),
        )

    def revert_reason(self, tx_hash: str) -> str | None:
        """Why a mined transaction reverted: it is replayed as a call on the state before its block."""
        tx = self._do("eth_getTransactionByHash", lambda: self.w3.eth.get_transaction(tx_hash))
        call = {
            "from": tx["from"],
            "to": tx["to"],
            "data": "0x" + bytes(tx["input"]).hex(),
            "value": int(tx["value"]),
            "gas": int(tx["gas"]),
        }
        try:
            self._do("eth_call", lambda: self.w3.eth.call(call, int(tx["blockNumber"]) - 1))
        except TransactionReverted as reverted:
            return reverted.reason
        return None


def _rpc_message(error: Any) -> str:
    response = getattr(error, "rpc_response", None) or {}
    inner = response.get("error") if isinstance(response, Mapping) else None
    if isinstance(inner, Mapping) and inner.get("message"):
        return str(inner["message"])
    return str(getattr(error, "message", None) or error)


def _reason_of(error: Any) -> str | None:
    data = getattr(error, "data", None)
    if isinstance(data, str) and data.startswith("0x"):
        try:
            reason = abi.revert_reason(bytes.fromhex(data[2:]))
        except ValueError:
            reason = None
        if reason is not None:
            return reason
    message = str(getattr(error, "message", None) or error)
    return message.removeprefix("execution reverted").lstrip(": ") or None
