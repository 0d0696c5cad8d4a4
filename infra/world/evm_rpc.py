"""EVM JSON-RPC over eth-tester's py-evm backend: the methods web3 and eth_account clients use.

``EvmRpc.handle(request)`` answers one JSON-RPC 2.0 request object with its response object. The
caller (``BaseChain``) serializes calls: py-evm is not thread-safe. Results are JSON-RPC's hex
quantities and camelCase objects, as a real node (geth) writes them; refusals are JSON-RPC error
objects with geth's messages (``nonce too low``, ``insufficient funds for gas * price + value``,
``invalid chain id``, ``execution reverted: <reason>`` with the revert data) so that the adapter's
classification is the same here and against a real node.

Two things py-evm does not do and a node does, done here: a transaction for another chain id is
refused (py-evm applies a typed transaction whatever its chain id), and ``eth_call`` /
``eth_estimateGas`` need no balance for gas from the caller (geth's behaviour).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from eth.abc import SignedTransactionAPI
from eth.exceptions import Revert as EVMRevert
from eth.vm.spoof import SpoofTransaction
from eth_bloom.bloom import BloomFilter
from eth_tester import EthereumTester  # type: ignore[import-untyped]
from eth_tester.backends.pyevm.main import _get_vm_for_block_number  # type: ignore[import-untyped]
from eth_tester.exceptions import BlockNotFound, TransactionNotFound  # type: ignore[import-untyped]
from eth_utils.address import to_checksum_address
from eth_utils.exceptions import ValidationError
from eth_utils.hexadecimal import decode_hex

from rampart.adapters.chains.evm.abi import revert_reason

JSON = dict[str, Any]
PRIORITY_FEE = 10**7  # what eth_maxPriorityFeePerGas suggests (0.01 gwei, a busy hour on Base)
CALL_BALANCE = 10**30  # the balance an eth_call / eth_estimateGas sender is lent for gas


class RpcError(Exception):
    def __init__(self, code: int, message: str, data: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.data = code, message, data

    def as_json(self) -> JSON:
        error: JSON = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


def invalid_params(message: str) -> RpcError:
    return RpcError(-32602, message)


def _hex(value: int) -> str:
    return hex(value)


def _quantity(value: Any, name: str) -> int:
    if isinstance(value, str) and value.startswith("0x"):
        try:
            return int(value, 16)
        except ValueError:
            pass
    raise invalid_params(f"{name}: expected a hex quantity, got {value!r}")


def _bytes(value: Any, name: str) -> bytes:
    if isinstance(value, str) and value.startswith("0x"):
        try:
            return decode_hex(value)
        except ValueError:
            pass
    raise invalid_params(f"{name}: expected 0x-prefixed hex data, got {value!r}")


def _address(value: Any, name: str) -> bytes:
    raw = _bytes(value, name)
    if len(raw) != 20:
        raise invalid_params(f"{name}: expected a 20-byte address, got {value!r}")
    return raw


def _param(params: list[Any], index: int, name: str, default: Any = ...) -> Any:
    if index < len(params):
        return params[index]
    if default is ...:
        raise invalid_params(f"missing parameter {index}: {name}")
    return default


def revert_error(data: bytes) -> RpcError:
    """geth's reply to a call that reverts: code 3, the reason in the message, the data."""
    reason = revert_reason(data)
    message = f"execution reverted: {reason}" if reason is not None else "execution reverted"
    return RpcError(3, message, "0x" + data.hex())


def _node_message(error: ValidationError) -> str:
    """py-evm's validation message, prefixed the way geth words the same refusal."""
    text = str(error)
    if "Invalid transaction nonce" in text:
        expected, got = _nonces(text)
        prefix = "nonce too low" if got < expected else "nonce too high"
        return f"{prefix}: {text}"
    if "enough balance" in text:
        return f"insufficient funds for gas * price + value: {text}"
    if "lower than block's base fee" in text:
        return f"max fee per gas less than block base fee: {text}"
    if "intrinsic gas" in text.lower():
        return f"intrinsic gas too low: {text}"
    return f"invalid transaction: {text}"


def _nonces(text: str) -> tuple[int, int]:
    # "Invalid transaction nonce: Expected 1, but got 0"
    try:
        expected = int(text.split("Expected", 1)[1].split(",", 1)[0])
        got = int(text.rsplit("got", 1)[1].strip().rstrip("."))
    except (IndexError, ValueError):
        return (1, 0)
    return expected, got


class EvmRpc:
    """The JSON-RPC methods over one EthereumTester (auto-mining: one transaction, one block)."""

    def __init__(self, tester: EthereumTester, chain_id: int) -> None:
        self.tester = tester
        self.chain_id = chain_id
        self.methods: dict[str, Callable[[list[Any]], Any]] = {
            "eth_chainId": lambda p: _hex(self.chain_id),
            "net_version": lambda p: str(self.chain_id),
            "web3_clientVersion": lambda p: "rampart-world/py-evm",
            "eth_syncing": lambda p: False,
            "eth_accounts": lambda p: [],
            "eth_blockNumber": lambda p: _hex(self._head_number()),
            "eth_getBalance": self._get_balance,
            "eth_getTransactionCount": self._get_transaction_count,
            "eth_getCode": self._get_code,
            "eth_call": self._call,
            "eth_estimateGas": self._estimate_gas,
            "eth_gasPrice": lambda p: _hex(self._next_base_fee() + PRIORITY_FEE),
            "eth_maxPriorityFeePerGas": lambda p: _hex(PRIORITY_FEE),
            "eth_feeHistory": self._fee_history,
            "eth_getBlockByNumber": self._get_block_by_number,
            "eth_getBlockByHash": self._get_block_by_hash,
            "eth_sendRawTransaction": self._send_raw_transaction,
            "eth_getTransactionReceipt": self._get_receipt,
            "eth_getTransactionByHash": self._get_transaction,
            "eth_getLogs": self._get_logs,
        }

    # -- dispatch ---------------------------------------------------------------------------
    def handle(self, request: Any) -> JSON:
        request_id = request.get("id") if isinstance(request, Mapping) else None
        try:
            if not isinstance(request, Mapping) or not isinstance(request.get("method"), str):
                raise RpcError(-32600, "invalid request: expected an object with a method")
            method = self.methods.get(request["method"])
            if method is None:
                raise RpcError(-32601, f"the method {request['method']} does not exist/is not available")
            params = request.get("params", [])
            if not isinstance(params, list):
                raise invalid_params("params: expected an array")
            result = method(params)
        except RpcError as error:
            return {"jsonrpc": "2.0", "id": request_id, "error": error.as_json()}
        return {"jsonrpc": "2.0", "id": request_id, "result": result}

    # -- blocks -----------------------------------------------------------------------------
    @property
    def _chain(self) -> Any:
        return self.tester.backend.chain

    def _head_number(self) -> int:
        return int(self._chain.get_canonical_head().block_number)

    def _next_base_fee(self) -> int:
        return int(self._chain.header.base_fee_per_gas)

    def _block_id(self, value: Any, name: str = "block") -> str | int:
        if value in ("latest", "pending", "safe", "finalized", "earliest"):
            return str(value)
        number = _quantity(value, name)
        if number > self._head_number():
            raise RpcError(-32000, f"header not found: block {number} is beyond the head")
        return number

    def _state_block(self, value: Any) -> str | int:
        """A block tag for state reads: 'pending' reads the latest state (every block is mined)."""
        block = self._block_id(value)
        return "latest" if block in ("pending", "safe", "finalized") else block

    def _format_block(self, block: Mapping[str, Any], full: bool) -> JSON:
        transactions = block["transactions"]
        return {
            "number": _hex(block["number"]),
            "hash": block["hash"],
            "parentHash": block["parent_hash"],
            "nonce": block["nonce"],
            "sha3Uncles": block["sha3_uncles"],
            "logsBloom": "0x" + int(block["logs_bloom"]).to_bytes(256, "big").hex(),
            "transactionsRoot": block["transactions_root"],
            "receiptsRoot": block["receipts_root"],
            "stateRoot": block["state_root"],
            "miner": block["coinbase"],
            "difficulty": _hex(block["difficulty"]),
            "totalDifficulty": _hex(block["total_difficulty"]),
            "mixHash": block["mix_hash"],
            "size": _hex(block["size"]),
            "extraData": block["extra_data"],
            "gasLimit": _hex(block["gas_limit"]),
            "gasUsed": _hex(block["gas_used"]),
            "timestamp": _hex(block["timestamp"]),
            "baseFeePerGas": _hex(block["base_fee_per_gas"]),
            "uncles": list(block["uncles"]),
            "withdrawals": [],
            "withdrawalsRoot": block["withdrawals_root"],
            "transactions": [self._format_transaction(t) for t in transactions] if full else list(transactions),
        }

    def _get_block_by_number(self, params: list[Any]) -> JSON | None:
        block_id = self._block_id(_param(params, 0, "block"))
        if block_id in ("safe", "finalized"):
            block_id = "latest"
        full = bool(_param(params, 1, "full transactions", False))
        try:
            return self._format_block(self.tester.get_block_by_number(block_id, full), full)
        except BlockNotFound:
            return None

    def _get_block_by_hash(self, params: list[Any]) -> JSON | None:
        block_hash = "0x" + _bytes(_param(params, 0, "block hash"), "block hash").hex()
        full = bool(_param(params, 1, "full transactions", False))
        try:
            return self._format_block(self.tester.get_block_by_hash(block_hash, full), full)
        except BlockNotFound:
            return None

    def _fee_history(self, params: list[Any]) -> JSON:
        count = _param(params, 0, "block count")
        count = _quantity(count, "block count") if isinstance(count, str) else int(count)
        newest = self._block_id(_param(params, 1, "newest block"))
        percentiles = [float(p) for p in _param(params, 2, "reward percentiles", [])]
        head = self._head_number()
        newest_number = newest if isinstance(newest, int) else (0 if newest == "earliest" else head)
        count = max(1, min(count, 1024, newest_number + 1))
        oldest = newest_number - count + 1
        base_fees, ratios, rewards = [], [], []
        for number in range(oldest, newest_number + 1):
            header = self._chain.get_canonical_block_header_by_number(number)
            base_fees.append(_hex(header.base_fee_per_gas))
            ratios.append(header.gas_used / header.gas_limit)
            if percentiles:
                block = self._chain.get_canonical_block_by_number(number)
                tips = sorted(
                    min(tx.max_priority_fee_per_gas, tx.max_fee_per_gas - header.base_fee_per_gas)
                    for tx in block.transactions
                )
                rewards.append(
                    [_hex(tips[min(len(tips) - 1, int(len(tips) * p / 100))] if tips else 0) for p in percentiles]
                )
        following = (
            self._next_base_fee()
            if newest_number == head
            else self._chain.get_canonical_block_header_by_number(newest_number + 1).base_fee_per_gas
        )
        base_fees.append(_hex(following))
        reply: JSON = {"oldestBlock": _hex(oldest), "baseFeePerGas": base_fees, "gasUsedRatio": ratios}
        if percentiles:
            reply["reward"] = rewards
        return reply

    # -- state ------------------------------------------------------------------------------
    def _get_balance(self, params: list[Any]) -> str:
        address = to_checksum_address(_address(_param(params, 0, "address"), "address"))
        return _hex(self.tester.get_balance(address, self._state_block(_param(params, 1, "block", "latest"))))

    def _get_transaction_count(self, params: list[Any]) -> str:
        address = to_checksum_address(_address(_param(params, 0, "address"), "address"))
        return _hex(self.tester.get_nonce(address, self._state_block(_param(params, 1, "block", "latest"))))

    def _get_code(self, params: list[Any]) -> str:
        address = to_checksum_address(_address(_param(params, 0, "address"), "address"))
        return str(self.tester.get_code(address, self._state_block(_param(params, 1, "block", "latest"))))

    def _spoof(self, call: Any, block: str | int, gas: int | None) -> tuple[Any, SpoofTransaction, bytes]:
        if not isinstance(call, Mapping):
            raise invalid_params("transaction: expected an object")
        vm = _get_vm_for_block_number(self._chain, block)
        sender = _address(call["from"], "from") if call.get("from") else b"\x00" * 20
        to = _address(call["to"], "to") if call.get("to") else b""
        data = call.get("input", call.get("data", "0x"))
        base_fee = int(vm.get_header().base_fee_per_gas)
        tx = {
            "from": sender,
            "to": to,
            "data": _bytes(data, "input"),
            "value": _quantity(call["value"], "value") if call.get("value") else 0,
            "gas": gas if gas is not None else (_quantity(call["gas"], "gas") if call.get("gas") else 30_000_000),
            "nonce": vm.state.get_nonce(sender),
            "max_fee_per_gas": base_fee,
            "max_priority_fee_per_gas": 0,
        }
        unsigned = self.tester.backend._get_normalized_and_unsigned_evm_transaction(tx, block)
        return vm, SpoofTransaction(unsigned, from_=sender), sender

    def _call(self, params: list[Any]) -> str:
        block = self._state_block(_param(params, 1, "block", "latest"))
        vm, spoof, sender = self._spoof(_param(params, 0, "transaction"), block, None)
        state = vm.state
        snapshot = state.snapshot()
        try:
            state.set_balance(sender, state.get_balance(sender) + CALL_BALANCE)
            computation = state.apply_transaction(spoof)
        except ValidationError as error:
            raise RpcError(-32000, f"invalid call: {error}") from None
        finally:
            state.revert(snapshot)
        if computation.is_error:
            failure = computation.error
            if isinstance(failure, EVMRevert):
                raise revert_error(bytes(failure.args[0]) if failure.args else b"")
            raise RpcError(-32000, f"execution failed: {type(failure).__name__} {failure}")
        return "0x" + bytes(computation.output).hex()

    def _estimate_gas(self, params: list[Any]) -> str:
        call = _param(params, 0, "transaction")
        block = self._state_block(_param(params, 1, "block", "latest"))
        self._call([{**call, "gas": None}, block if isinstance(block, str) else _hex(block)])  # reverts → its error
        vm, spoof, sender = self._spoof(call, block, None)
        state = vm.state
        snapshot = state.snapshot()
        try:
            state.set_balance(sender, state.get_balance(sender) + CALL_BALANCE)
            gas = self._chain.gas_estimator(state, spoof)
        except ValidationError as error:
            raise RpcError(-32000, f"invalid call: {error}") from None
        finally:
            state.revert(snapshot)
        return _hex(int(gas))

    # -- transactions -----------------------------------------------------------------------
    def _decode(self, raw: bytes) -> SignedTransactionAPI:
        builder = self._chain.get_vm().get_transaction_builder()
        try:
            return builder.decode(raw)  # type: ignore[no-any-return]
        except Exception as error:
            raise invalid_params(f"rlp: undecodable raw transaction ({type(error).__name__})") from None

    def _send_raw_transaction(self, params: list[Any]) -> str:
        raw = _bytes(_param(params, 0, "raw transaction"), "raw transaction")
        if not raw:
            raise invalid_params("raw transaction: empty")
        tx = self._decode(raw)
        chain_id = getattr(tx, "chain_id", None)
        if chain_id is None:  # legacy: EIP-155 encodes it in v
            v = int(getattr(tx, "v", 0))
            chain_id = (v - 35) // 2 if v >= 35 else None
        if chain_id != self.chain_id:
            raise RpcError(-32000, f"invalid chain id: expected {self.chain_id}, got {chain_id}")
        tx_hash = "0x" + tx.hash.hex()
        if self._receipt_or_none(tx_hash) is not None:
            raise RpcError(-32000, "already known")
        try:
            tx.sender  # noqa: B018 - recovers the signer: a bad signature is refused here
        except Exception as error:
            raise RpcError(-32000, f"invalid sender: {error}") from None
        try:
            return str(self.tester.send_raw_transaction("0x" + raw.hex()))
        except ValidationError as error:
            raise RpcError(-32000, _node_message(error)) from None

    def _receipt_or_none(self, tx_hash: str) -> Mapping[str, Any] | None:
        try:
            receipt: Mapping[str, Any] = self.tester.get_transaction_receipt(tx_hash)
        except TransactionNotFound:
            return None
        return receipt if receipt.get("block_number") is not None else None

    def _get_receipt(self, params: list[Any]) -> JSON | None:
        tx_hash = "0x" + _bytes(_param(params, 0, "transaction hash"), "transaction hash").hex()
        receipt = self._receipt_or_none(tx_hash)
        if receipt is None:
            return None
        logs = [self._format_log(log) for log in receipt["logs"]]
        bloom = BloomFilter()
        for log in receipt["logs"]:
            bloom.add(decode_hex(log["address"]))
            for topic in log["topics"]:
                bloom.add(decode_hex(topic))
        return {
            "transactionHash": receipt["transaction_hash"],
            "transactionIndex": _hex(receipt["transaction_index"]),
            "blockHash": receipt["block_hash"],
            "blockNumber": _hex(receipt["block_number"]),
            "from": receipt["from"],
            "to": receipt["to"],
            "cumulativeGasUsed": _hex(receipt["cumulative_gas_used"]),
            "gasUsed": _hex(receipt["gas_used"]),
            "effectiveGasPrice": _hex(receipt["effective_gas_price"]),
            "contractAddress": receipt["contract_address"],
            "logs": logs,
            "logsBloom": "0x" + int(bloom).to_bytes(256, "big").hex(),
            "status": _hex(receipt["status"]),
            "type": receipt["type"],
        }

    def _format_log(self, log: Mapping[str, Any]) -> JSON:
        return {
            "address": log["address"],
            "topics": list(log["topics"]),
            "data": log["data"],
            "blockNumber": _hex(log["block_number"]),
            "blockHash": log["block_hash"],
            "transactionHash": log["transaction_hash"],
            "transactionIndex": _hex(log["transaction_index"]),
            "logIndex": _hex(log["log_index"]),
            "removed": False,
        }

    def _format_transaction(self, tx: Mapping[str, Any]) -> JSON:
        formatted: JSON = {
            "hash": tx["hash"],
            "type": tx["type"],
            "nonce": _hex(tx["nonce"]),
            "blockHash": tx["block_hash"],
            "blockNumber": _hex(tx["block_number"]) if tx["block_number"] is not None else None,
            "transactionIndex": _hex(tx["transaction_index"]) if tx["transaction_index"] is not None else None,
            "from": tx["from"],
            "to": tx["to"] or None,
            "value": _hex(tx["value"]),
            "gas": _hex(tx["gas"]),
            "gasPrice": _hex(tx["gas_price"]),
            "input": tx["data"],
            "v": _hex(tx["v"]),
            "r": _hex(tx["r"]),
            "s": _hex(tx["s"]),
        }
        if "chain_id" in tx:
            formatted["chainId"] = _hex(tx["chain_id"])
        if "max_fee_per_gas" in tx:
            formatted["maxFeePerGas"] = _hex(tx["max_fee_per_gas"])
            formatted["maxPriorityFeePerGas"] = _hex(tx["max_priority_fee_per_gas"])
            formatted["yParity"] = _hex(tx.get("y_parity", tx["v"]))
        if "access_list" in tx:
            formatted["accessList"] = [
                {"address": a["address"], "storageKeys": list(a["storage_keys"])} for a in tx["access_list"]
            ]
        return formatted

    def _get_transaction(self, params: list[Any]) -> JSON | None:
        tx_hash = "0x" + _bytes(_param(params, 0, "transaction hash"), "transaction hash").hex()
        try:
            return self._format_transaction(self.tester.get_transaction_by_hash(tx_hash))
        except TransactionNotFound:
            return None

    def _get_logs(self, params: list[Any]) -> list[JSON]:
        query = _param(params, 0, "filter")
        if not isinstance(query, Mapping):
            raise invalid_params("filter: expected an object")
        if query.get("blockHash"):
            block = self._get_block_by_hash([query["blockHash"], False])
            if block is None:
                raise RpcError(-32000, "unknown block")
            from_block = to_block = int(block["number"], 16)
        else:
            from_raw = self._block_id(query.get("fromBlock", "latest"), "fromBlock")
            to_raw = self._block_id(query.get("toBlock", "latest"), "toBlock")
            from_block = from_raw if isinstance(from_raw, int) else self._tag_number(from_raw)
            to_block = to_raw if isinstance(to_raw, int) else self._tag_number(to_raw)
        address = query.get("address")
        if isinstance(address, str):
            address = [address]
        addresses = [to_checksum_address(_address(a, "address")) for a in address] if address else None
        topics = query.get("topics")
        topics = [t if (t is None or isinstance(t, list)) else [t] for t in topics] if topics else None
        found = []
        for number in range(from_block, to_block + 1):
            block = self.tester.get_block_by_number(number, False)
            for tx_hash in block["transactions"]:
                for log in self.tester.get_transaction_receipt(tx_hash)["logs"]:
                    if addresses and to_checksum_address(log["address"]) not in addresses:
                        continue
                    if topics and not _topics_match(topics, [t.lower() for t in log["topics"]]):
                        continue
                    found.append(self._format_log(log))
        return found

    def _tag_number(self, tag: str) -> int:
        return 0 if tag == "earliest" else self._head_number()


def _topics_match(wanted: list[list[str] | None], actual: list[str]) -> bool:
    if len(wanted) > len(actual):
        return False
    return all(
        alternatives is None or actual[i] in [a.lower() for a in alternatives] for i, alternatives in enumerate(wanted)
    )
