"""A started ramp's phases, one Step Functions task each (``ramp_worker``): every external side
effect claimed in the journal first, looked up before it is repeated, and settled with the ledger
transfers that mirror it (ARCHITECTURE.md, "Journal, then act" and "The ledger mirrors the world").

A phase is idempotent: run again (a retry, a recovery), it finds its operations in the journal —
settled ones are skipped, unsettled ones looked up in the world (a receipt by hash, a mint or a
payout by its key) and only then submitted again, with the same bytes or the same key.

Errors are typed for the state machine's Retry and Catch (rampart.core.errors): a node or provider
that does not answer, or a transaction not mined yet, is ``Transient``; a refused or reverted
transaction, a wrong payment, a failed mint or payout is ``Permanent``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from rampart.core.errors import Permanent, ReconciliationRequired, Transient
from rampart.core.money import scale_of
from rampart.journal.models import Holder, Movement, operation_key
from rampart.journal.ports import JournalStore
from rampart.ramps.chains import (
    Blueprint,
    ChainUnavailable,
    EvmChainPort,
    FeeEstimate,
    Receipt,
    SignedTransaction,
    TransactionRejected,
    TransactionReverted,
)
from rampart.ramps.models import NETWORK_DECIMALS, Ramp
from rampart.ramps.pricing import to_chain
from rampart.ramps.rails import (
    MintRequest,
    PayoutRequest,
    Rail,
    RailError,
    RailUnavailable,
    RefundRequest,
    close_charge,
)

log = logging.getLogger("rampart.ramps.execution")

# A claim's lease: longer than the worker may run (its timeout, 60 s: Lambda kills it then), so a
# live worker is never overtaken; no longer than that needs, since a killed worker's operation waits
# out the lease before its retry (``Busy``, retried for longer than this in every stage) takes over.
LEASE_SECONDS = 90


class ExecutionStore(Protocol):
    def ramp(self, ramp_id: str) -> Ramp | None: ...
    def enter(self, ramp_id: str, phase: str) -> Ramp: ...
    def finish(self, ramp_id: str, status: Any, phase: str) -> Ramp: ...
    def record_error(self, ramp_id: str, phase: str, message: str, recoverable: bool) -> None: ...
    def add_transaction(self, ramp_id: str, phase: str, tx_hash: str) -> None: ...
    def transaction_recorder(self, ramp_id: str, phase: str, tx_hash: str) -> Callable[[Any], None]: ...
    def park(self, ramp_id: str, phase: str, task_token: str) -> Ramp: ...
    def set_refund(self, ramp_id: str, refund: Mapping[str, str]) -> None: ...
    def pause(self, ramp_id: str, resume_at: str, task_token: str, message: str) -> Ramp: ...


class Tasks(Protocol):
    """Completes a waiting task of an execution (Step Functions' SendTaskSuccess / Failure)."""

    def success(self, token: str, output: Mapping[str, Any]) -> None: ...
    def failure(self, token: str, error: str, cause: str) -> None: ...


class Payments(Protocol):
    """What the rail's webhooks recorded: payments by charge reference (the ramp id)."""

    def payments_for(self, provider: str, reference: str) -> list[Any]: ...


@dataclass(frozen=True)
class PaymentVerdict:
    """``accepted`` (the payment id to mint against), ``refused`` (why), or neither (none yet)."""

    payment_id: str | None = None
    refused: str | None = None


def payment_verdict(payments: Sequence[Any], ramp: Ramp) -> PaymentVerdict:
    """The ramp's payment as the rail recorded it: exactly the input, accepted → mint against it; a
    payment the rail is refunding (another amount, another payer) → the ramp fails."""
    for payment in payments:
        if payment.status == "accepted" and Decimal(payment.amount) == ramp.quote.input_amount:
            return PaymentVerdict(payment_id=payment.payment_id)
    for payment in payments:
        if payment.status in ("refunding", "refunded") or Decimal(payment.amount) != ramp.quote.input_amount:
            return PaymentVerdict(
                refused=f"a payment of {payment.amount} {payment.currency} was refused (expected "
                f"{ramp.quote.input_amount}); the rail returns it"
            )
    return PaymentVerdict()


class Executor:
    def __init__(
        self,
        store: ExecutionStore,
        journal: JournalStore,
        *,
        chains: Callable[[str], EvmChainPort],
        rails: Callable[[str], Rail],
        payments: Payments,
        tasks: Tasks,
        platform: Callable[[str], Mapping[str, str]],
        keys: Callable[[str, str], str],
        receipt_wait_seconds: float = 10.0,  # not money: seconds
    ) -> None:
        self._store = store
        self._journal = journal
        self._chains = chains
        self._rails = rails
        self._payments = payments
        self._tasks = tasks
        self._platform = platform
        self._keys = keys
        self._receipt_wait = receipt_wait_seconds
        self._opened: set[tuple[str, str, str]] = set()  # mirrors known open (this container)

    # -- the entry ------------------------------------------------------------------------------
    def run(
        self,
        ramp_id: str,
        phase: str,
        *,
        task_token: str | None = None,
        error: Any = None,
        resume_at: str | None = None,
    ) -> dict[str, Any]:
        ramp = self._store.ramp(ramp_id)
        if ramp is None:
            raise Permanent(f"no ramp {ramp_id}")
        if phase == "failed":
            return self._failed(ramp, error)
        if phase == "paused":
            if task_token is None or resume_at is None:
                raise Permanent("the pause waits on a task token and names the phase to resume")
            message, name = error_message(error)
            self._store.pause(ramp_id, resume_at, task_token, f"paused in {resume_at} ({name}): {message}")
            log.warning(
                "ramp paused: an operator resumes or fails it",
                extra={"ramp_id": ramp_id, "phase": resume_at, "error": name},
            )
            return {"ramp_id": ramp_id, "phase": "paused", "resume_at": resume_at}
        if phase not in ramp.corridor.phases:
            raise Permanent(f"{ramp.corridor.key} has no phase {phase}")
        if ramp.status not in ("running", "paused"):
            raise Permanent(f"ramp {ramp_id} is {ramp.status}: no phase runs")
        ramp = self._store.enter(ramp_id, phase)
        handler = getattr(self, f"_{phase}", None)
        if handler is None:
            raise Permanent(f"no handler for phase {phase}")
        if phase == "payment":
            if task_token is None:
                raise Permanent("the payment phase waits on a task token")
            handler(ramp, task_token)
        else:
            handler(ramp)
        return {"ramp_id": ramp_id, "phase": phase}

    # -- helpers --------------------------------------------------------------------------------
    def _chain(self, ramp: Ramp) -> EvmChainPort:
        return self._chains(ramp.corridor.chain)

    def _ledger_units(self, network: str, asset: str, units: int) -> int:
        shift: int = scale_of(asset) - NETWORK_DECIMALS[network][asset]
        factor: int = 10**shift
        return int(units) * factor

    def _ephemeral(self, ramp: Ramp) -> Holder:
        account = next(a for a in ramp.signing_accounts if a.role == "ephemeral" and a.network == ramp.corridor.chain)
        return Holder(account.network, account.address, "ephemeral")

    def _platform_holder(self, ramp: Ramp, role: str) -> Holder:
        return Holder(ramp.corridor.chain, self._platform(ramp.corridor.chain)[role], "platform")

    def _signed(self, ramp: Ramp, phase: str, nonce: int, signer: str | None = None) -> SignedTransaction:
        """The pre-signed transaction of ``phase`` at ``nonce``, bound again to its blueprint."""
        for tx in ramp.unsigned_txs:
            if tx.phase == phase and tx.nonce == nonce and (signer is None or tx.signer == signer):
                raw = ramp.presigned[tx.key]["tx_data"]
                return self._chain(ramp).bind(Blueprint(tx.network, tx.signer, tx.tx_data), raw)
        raise Permanent(f"no pre-signed transaction for {phase} at nonce {nonce}")

    def _receipt(self, chain: EvmChainPort, tx_hash: str) -> Receipt:
        deadline = time.monotonic() + self._receipt_wait
        while True:
            receipt = chain.receipt(tx_hash)
            if receipt is not None:
                return receipt
            if time.monotonic() >= deadline:
                raise Transient(f"{tx_hash} is not mined yet")
            time.sleep(0.2)  # not money: seconds

    @contextmanager
    def _releasing(self, key: str, claim_id: str) -> Iterator[None]:
        """A failure after a claim that will be retried (a transient one, or an unexpected fault —
        in the act, or in the settlement that records it, whose transaction then rolled back) ends
        the claim's lease: the retry takes over at once (looking the operation up first) instead of
        waiting out the lease. Wraps everything from the claim to its settlement."""
        try:
            yield
        except (Permanent, ReconciliationRequired):
            raise
        except Exception:  # Transient, or a fault the entry stack turns into one: both are retried
            self._journal.release(key, claim_id)
            raise

    def _gas(self, key: str, payer: Holder, receipt: Receipt) -> Movement:
        return Movement(f"{key}:gas", "ETH", receipt.fee, payer, None)

    def _settle_receipt(
        self,
        ramp: Ramp,
        phase: str,
        key: str,
        claim_id: str,
        receipt: Receipt,
        payer: Holder | None,
        movements: Callable[[Receipt], list[Movement]],
    ) -> Receipt:
        recorded = self._store.transaction_recorder(ramp.id, phase, receipt.tx_hash)  # in the settlement
        if not receipt.success:
            gas = [self._gas(key, payer, receipt)] if payer is not None and receipt.fee else []
            self._journal.settle(
                key,
                claim_id,
                "confirmed",
                outcome={"tx_hash": receipt.tx_hash, "reverted": True},
                movements=gas,
                also=recorded,
            )
            raise Permanent(f"{phase}: transaction {receipt.tx_hash} reverted ({receipt.revert_reason or 'no reason'})")
        moved = movements(receipt)
        if payer is not None and receipt.fee:
            moved.append(self._gas(key, payer, receipt))
        self._journal.settle(
            key,
            claim_id,
            "confirmed",
            outcome={"tx_hash": receipt.tx_hash, "block": receipt.block_number},
            movements=moved,
            also=recorded,
        )
        return receipt

    def _own(
        self,
        ramp: Ramp,
        phase: str,
        signed: SignedTransaction,
        payer: Holder | None,
        movements: Callable[[Receipt], list[Movement]],
    ) -> None:
        """Submit a pre-signed transaction (its hash known before): claim, look up, submit, mirror."""
        chain = self._chain(ramp)
        key = operation_key(ramp.id, phase, f"tx{signed.blueprint.nonce}-{signed.signer.lower()[:10]}")
        held = self._journal.claim(
            key,
            ramp_id=ramp.id,
            kind="submit_tx",
            request={"tx_hash": signed.tx_hash},
            external_id=signed.tx_hash,
            lease_seconds=LEASE_SECONDS,
        )
        if held.done:
            return
        with self._releasing(key, held.claim_id):
            receipt = chain.receipt(signed.tx_hash) if held.look_up else None
            if receipt is None:
                try:
                    chain.submit(signed)
                except (TransactionRejected, TransactionReverted) as refused:
                    # Refused at the door (a bad nonce, or it would revert): nothing was mined, so
                    # the operation is settled failed — never left claimed for a later look-up.
                    reason = str(refused)
                    self._journal.settle(key, held.claim_id, "failed", error=reason)
                    raise Permanent(f"{phase}: the node refused {signed.tx_hash}: {reason}") from None
                receipt = self._receipt(chain, signed.tx_hash)
            self._settle_receipt(ramp, phase, key, held.claim_id, receipt, payer, movements)

    def _platform_tx(
        self,
        ramp: Ramp,
        phase: str,
        step: str,
        role: str,
        request: Mapping[str, Any],
        build: Callable[[str, int, FeeEstimate], Blueprint],
        movements: Callable[[Receipt], list[Movement]],
    ) -> None:
        """A transaction the platform signs (gas, a top-up, a sweep): its nonce taken under the
        account's lock inside the claim, the signed bytes kept to send again."""
        chain = self._chain(ramp)
        holder = self._platform_holder(ramp, role)
        self._open(ramp, holder, ("ETH", *([str(request["asset"])] if "asset" in request else [])))
        key = operation_key(ramp.id, phase, step)
        lock = f"{holder.network}:{holder.key}"
        submitted: dict[str, bool] = {}

        def prepare() -> tuple[str, Mapping[str, Any]]:
            blueprint = build(holder.address, chain.nonce(holder.address), chain.fee_estimate())
            raw = chain.sign(blueprint, self._keys(holder.network, role))
            signed = chain.bind(blueprint, raw)
            try:
                chain.submit(signed)
                submitted["sent"] = True
            except ChainUnavailable:
                submitted["sent"] = False  # it may have gone: kept, looked up next time
            return signed.tx_hash, {"raw": raw, "nonce": blueprint.nonce}

        try:
            held = self._journal.claim(
                key,
                ramp_id=ramp.id,
                kind=f"platform_{role}",
                request=request,
                external_id=None,
                lease_seconds=LEASE_SECONDS,
                prepare=prepare,
                serialize_on=lock,
            )
        except TransactionRejected as rejected:
            raise Permanent(f"{phase}: the node refused the platform's transaction: {rejected.reason}") from None
        if held.done:
            return
        tx_hash = held.operation.external_id
        if tx_hash is None:
            raise Permanent(f"{key}: claimed without a transaction")
        with self._releasing(key, held.claim_id):
            if held.act and not submitted.get("sent", True):
                raise Transient(f"{phase}: the node did not answer; {tx_hash} is looked up next time")
            receipt = chain.receipt(tx_hash)
            if receipt is None and held.look_up and held.operation.evidence:
                raw = str(held.operation.evidence["raw"])
                chain.submit(SignedTransaction(holder.network, holder.address, tx_hash, raw, _NO_BLUEPRINT))
            receipt = receipt or self._receipt(chain, tx_hash)
            self._settle_receipt(ramp, phase, key, held.claim_id, receipt, holder, movements)

    def _open(self, ramp: Ramp, holder: Holder, assets: Sequence[str]) -> None:
        """Mirror ``holder``'s ``assets`` from now on (opened with their balance the first time).
        Only what our movements touch is mirrored: e.g. the anchor's own gas is the anchor's."""
        chain = self._chain(ramp)
        for asset in assets:
            mirror = (holder.network, holder.key, asset)
            if mirror in self._opened:  # once open, a mirror stays open: no transaction for it again
                continue
            self._journal.open_mirror(
                holder,
                asset,
                lambda asset=asset: self._ledger_units(holder.network, asset, chain.balance(holder.address, asset)),  # type: ignore[misc]
                serialize_on=f"{holder.network}:{holder.key}",
            )
            self._opened.add(mirror)

    def _received(self, ramp: Ramp, receipt: Receipt, asset: str, to: str) -> int:
        return int(self._chain(ramp).received(receipt, asset, to))

    # -- phases ---------------------------------------------------------------------------------
    def _payment(self, ramp: Ramp, token: str) -> None:
        """Keep the token, then look at what the rail recorded: a payment that came before the wait
        completes it at once (the webhook completes it otherwise)."""
        self._store.park(ramp.id, "payment", token)
        verdict = payment_verdict(self._payments.payments_for(ramp.corridor.rail, ramp.id), ramp)
        complete_payment_wait(self._tasks, token, verdict)

    def _fund(self, ramp: Ramp) -> None:
        ephemeral = self._ephemeral(ramp)
        gas = sum(
            int(tx.tx_data["gas"]) * int(tx.tx_data["maxFeePerGas"])
            for tx in ramp.unsigned_txs
            if tx.signer == ephemeral.address
        )
        chain = self._chain(ramp)
        key = operation_key(ramp.id, "fund", "eth")
        self._platform_tx(
            ramp,
            "fund",
            "eth",
            "gas_funder",
            {"to": ephemeral.key, "wei": str(gas)},
            lambda signer, nonce, fees: chain.transfer_blueprint(
                signer, "ETH", ephemeral.address, gas, nonce=nonce, fees=fees
            ),
            lambda receipt: [Movement(f"{key}:eth", "ETH", gas, self._platform_holder(ramp, "gas_funder"), ephemeral)],
        )

    def _approve(self, ramp: Ramp) -> None:
        ephemeral = self._ephemeral(ramp)
        for tx in ramp.unsigned_txs:
            if tx.phase == "approve":
                self._own(ramp, "approve", self._signed(ramp, "approve", tx.nonce, tx.signer), ephemeral, lambda r: [])

    def _mint(self, ramp: Ramp) -> None:
        ephemeral = self._ephemeral(ramp)
        verdict = payment_verdict(self._payments.payments_for(ramp.corridor.rail, ramp.id), ramp)
        payment_id = verdict.payment_id
        if payment_id is None:
            raise Permanent(verdict.refused or "no accepted payment to mint against")
        token = ramp.corridor.swap[0]
        units = to_chain(ramp.quote.input_amount, NETWORK_DECIMALS[ramp.corridor.chain][token])
        key = operation_key(ramp.id, "mint", token.lower())
        held = self._journal.claim(
            key,
            ramp_id=ramp.id,
            kind="mint",
            request={"address": ephemeral.key, "amount": str(ramp.quote.input_amount), "payment": payment_id},
            external_id=None,
            lease_seconds=LEASE_SECONDS,
        )
        if held.done:
            return
        rail = self._rails(ramp.corridor.rail)
        minted = self._ledger_units(ramp.corridor.chain, token, units)
        self._provider_operation(
            ramp,
            "mint",
            key,
            held.claim_id,
            lambda: rail.get_mint(key) if held.look_up else None,
            lambda: rail.request_mint(
                MintRequest(key=key, address=ephemeral.address, amount=ramp.quote.input_amount, payment_id=payment_id)
            ),
            lambda mint: self._journal.settle(
                key,
                held.claim_id,
                "confirmed",
                outcome={"mint_id": mint.mint_id, "tx_hash": mint.tx_hash},
                movements=[Movement(f"{key}:mint", token, minted, None, ephemeral)],
            ),
        )

    def _swap(self, ramp: Ramp) -> None:
        ephemeral = self._ephemeral(ramp)
        asset_in, asset_out = ramp.corridor.swap
        network = ramp.corridor.chain
        swap_in = int(ramp.quote.snapshot["swap"]["amount_in"])
        key_prefix = operation_key(ramp.id, "swap", "mirror")

        def moved(receipt: Receipt) -> list[Movement]:
            out = self._received(ramp, receipt, asset_out, ephemeral.address)
            return [
                Movement(f"{key_prefix}:in", asset_in, self._ledger_units(network, asset_in, swap_in), ephemeral, None),
                Movement(f"{key_prefix}:out", asset_out, self._ledger_units(network, asset_out, out), None, ephemeral),
            ]

        tx = next(t for t in ramp.unsigned_txs if t.phase == "swap")
        self._own(ramp, "swap", self._signed(ramp, "swap", tx.nonce, tx.signer), ephemeral, moved)

    def _fees(self, ramp: Ramp) -> None:
        ephemeral = self._ephemeral(ramp)
        token = ramp.corridor.swap[0]
        units = int(ramp.quote.snapshot["fee_units"]["total"])
        fee_collector = self._platform_holder(ramp, "fee_collector")
        self._open(ramp, fee_collector, (token,))
        tx = next(t for t in ramp.unsigned_txs if t.phase == "fees")
        key = operation_key(ramp.id, "fees", "mirror")
        self._own(
            ramp,
            "fees",
            self._signed(ramp, "fees", tx.nonce, tx.signer),
            ephemeral,
            lambda r: [
                Movement(key, token, self._ledger_units(ramp.corridor.chain, token, units), ephemeral, fee_collector)
            ],
        )

    def _top_up(self, ramp: Ramp, phase: str, asset: str, needed: int) -> None:
        """A shortfall of the swap (above its minimum) topped up from the liquidity account."""
        ephemeral = self._ephemeral(ramp)
        chain = self._chain(ramp)
        held = chain.balance(ephemeral.address, asset)
        key = operation_key(ramp.id, phase, "topup")
        existing = self._journal.operation(key)
        if held >= needed and existing is None:
            return
        shortfall = max(needed - held, 0)
        if existing is not None:
            shortfall = int(existing.request["units"])
        liquidity = self._platform_holder(ramp, "liquidity")
        network = ramp.corridor.chain
        self._platform_tx(
            ramp,
            phase,
            "topup",
            "liquidity",
            {"asset": asset, "units": str(shortfall), "to": ephemeral.key},
            lambda signer, nonce, fees: chain.transfer_blueprint(
                signer, asset, ephemeral.address, shortfall, nonce=nonce, fees=fees
            ),
            lambda r: [
                Movement(f"{key}:subsidy", asset, self._ledger_units(network, asset, shortfall), liquidity, ephemeral)
            ],
        )

    def _deliver(self, ramp: Ramp) -> None:
        self._hand_over(ramp, "deliver", None)

    def _handoff(self, ramp: Ramp) -> None:
        self._hand_over(ramp, "handoff", self._platform_holder(ramp, "provider_brla"))

    def _hand_over(self, ramp: Ramp, phase: str, to: Holder | None) -> None:
        """Exactly the output to its recipient (the destination, or the anchor for a payout)."""
        ephemeral = self._ephemeral(ramp)
        asset = ramp.corridor.swap[1]
        output = int(ramp.quote.snapshot["swap"]["output"])
        tx = next(t for t in ramp.unsigned_txs if t.phase == phase)
        if self._journal.operation(operation_key(ramp.id, phase, f"tx{tx.nonce}-{tx.signer.lower()[:10]}")) is None:
            self._top_up(ramp, phase, asset, output)
        if to is not None:
            self._open(ramp, to, (asset,))
        key = operation_key(ramp.id, phase, "mirror")
        units = self._ledger_units(ramp.corridor.chain, asset, output)
        self._own(
            ramp,
            phase,
            self._signed(ramp, phase, tx.nonce, tx.signer),
            ephemeral,
            lambda r: [Movement(key, asset, units, ephemeral, to)],
        )

    def _provider_operation(
        self,
        ramp: Ramp,
        phase: str,
        key: str,
        claim_id: str,
        look_up: Callable[[], Any],
        request: Callable[[], Any],
        settle: Callable[[Any], object],
    ) -> Any:
        """A provider's operation (a mint, a payout) by our key: looked up first when someone may
        have asked before, else asked for (the provider acts on a key once). Unreachable or not
        done yet → Transient (the claim released); refused or failed → settled failed, Permanent.
        Completed: its transaction recorded on the ramp and ``settle`` called (inside the claim's
        release scope, like the act). Returns the completed operation."""
        with self._releasing(key, claim_id):
            try:
                operation = look_up() or request()
            except RailUnavailable as error:
                raise Transient(f"{phase}: {error.message}") from None
            except RailError as error:
                self._journal.settle(key, claim_id, "failed", error=error.message)
                raise Permanent(f"{phase} refused: {error.message}") from None
            if operation.status == "pending":
                raise Transient(f"{phase}: not done yet")
            if operation.tx_hash:
                self._store.add_transaction(ramp.id, phase, operation.tx_hash)
            if operation.status == "failed":
                self._journal.settle(key, claim_id, "failed", error=operation.reason or f"the {phase} failed")
                raise Permanent(f"{phase} failed: {operation.reason}")
            settle(operation)
        return operation

    def _receive(self, ramp: Ramp) -> None:
        ephemeral = self._ephemeral(ramp)
        user = next(a for a in ramp.signing_accounts if a.role == "user")
        tx = next(t for t in ramp.unsigned_txs if t.phase == "receive")
        asset = ramp.corridor.swap[0]
        units = to_chain(ramp.quote.input_amount, NETWORK_DECIMALS[ramp.corridor.chain][asset])
        key = operation_key(ramp.id, "receive", "mirror")
        self._own(
            ramp,
            "receive",
            self._signed(ramp, "receive", tx.nonce, user.address),
            None,  # the user's wallet pays its own gas and is not mirrored
            lambda r: [Movement(key, asset, self._ledger_units(ramp.corridor.chain, asset, units), None, ephemeral)],
        )

    def _payout(self, ramp: Ramp) -> None:
        anchor = self._platform_holder(ramp, "provider_brla")
        token = ramp.corridor.swap[1]
        output_units = int(ramp.quote.snapshot["swap"]["output"])
        key = operation_key(ramp.id, "payout", "pix")
        destination = {k: v for k, v in ramp.destination.items() if k in ("pix_key", "tax_id", "name")}
        held = self._journal.claim(
            key,
            ramp_id=ramp.id,
            kind="payout",
            request={"amount": str(ramp.quote.output_amount), "destination": destination},
            external_id=None,
            lease_seconds=LEASE_SECONDS,
        )
        if held.done:
            return
        rail = self._rails(ramp.corridor.rail)
        token_amount = Decimal(output_units).scaleb(-NETWORK_DECIMALS[ramp.corridor.chain][token])
        burnt = self._ledger_units(ramp.corridor.chain, token, output_units)
        self._provider_operation(
            ramp,
            "payout",
            key,
            held.claim_id,
            lambda: rail.get_payout(key) if held.look_up else None,
            lambda: rail.request_payout(
                PayoutRequest(
                    key=key,
                    amount=ramp.quote.output_amount,
                    destination=destination,
                    token_amount=token_amount,
                    reference=ramp.id,
                )
            ),
            lambda payout: self._journal.settle(
                key,
                held.claim_id,
                "confirmed",
                outcome={"payout_id": payout.payout_id, "tx_hash": payout.tx_hash},
                movements=[Movement(f"{key}:burn", token, burnt, anchor, None)],
            ),
        )

    def _sweep(self, ramp: Ramp) -> None:
        """Every token left on the ephemeral goes to the treasury through the sweeper (the
        ephemeral approved it first); leftover gas stays, the network fee's exception."""
        ephemeral = self._ephemeral(ramp)
        chain = self._chain(ramp)
        treasury = self._platform_holder(ramp, "fee_collector")
        network = ramp.corridor.chain
        for asset in ramp.corridor.swap:
            key = operation_key(ramp.id, "sweep", asset.lower())
            self._open(ramp, treasury, (asset,))
            existing = self._journal.operation(key)
            left = int(existing.request["units"]) if existing is not None else chain.balance(ephemeral.address, asset)
            if left <= 0:
                continue
            self._platform_tx(
                ramp,
                "sweep",
                asset.lower(),
                "operator",
                {"asset": asset, "units": str(left), "from": ephemeral.key},
                lambda signer, nonce, fees, asset=asset, left=left: chain.sweep_blueprint(  # type: ignore[misc]
                    signer, asset, ephemeral.address, left, refund_to=None, nonce=nonce, fees=fees
                ),
                lambda r, asset=asset, left=left, key=key: [  # type: ignore[misc]
                    Movement(f"{key}:left", asset, self._ledger_units(network, asset, left), ephemeral, treasury)
                ],
            )

    def _complete(self, ramp: Ramp) -> None:
        self._store.finish(ramp.id, "completed", "complete")

    def _failed(self, ramp: Ramp, error: Any) -> dict[str, Any]:
        """The execution caught an error: record it (a sentence, never a stack trace), give back
        what the user paid, and end the ramp."""
        message, name = error_message(error)
        if ramp.status in ("running", "paused") and name == "States.Timeout" and ramp.phase == "payment":
            # Closed first: a payment after this goes back by the rail itself; one that came at
            # the last moment (accepted, the wait already over) is refunded here.
            close_charge(self._rails(ramp.corridor.rail), ramp.charge_id, ramp.id)
            refund = self._refund(ramp)
            self._store.record_error(ramp.id, "payment", "no payment came within the payment window", False)
            if refund is not None:
                self._store.set_refund(ramp.id, refund)
            self._store.finish(ramp.id, "expired", "payment")
            return {"ramp_id": ramp.id, "phase": "payment", "error": name}
        if ramp.status in ("running", "paused"):
            refund = self._refund(ramp)
            if name == "PaymentRefused" and message == name:  # the task failure's cause did not come through
                verdict = payment_verdict(self._payments.payments_for(ramp.corridor.rail, ramp.id), ramp)
                message = verdict.refused or "the payment was refused; the rail returns it"
            self._store.record_error(ramp.id, ramp.phase, message, recoverable=name == "Transient")
            if refund is not None:
                self._store.set_refund(ramp.id, refund)
            self._store.finish(ramp.id, "failed", "failed")
        return {"ramp_id": ramp.id, "phase": "failed", "error": name}

    def _refund(self, ramp: Ramp) -> dict[str, str] | None:
        """What goes back to the user. An on-ramp's payment: see :meth:`_refund_payment`. An
        off-ramp whose input reached the ephemeral and was not swapped yet gets exactly its
        ``input_amount`` back to the user's wallet: what the ephemeral holds through the sweeper it
        approved, the fees it already paid from the platform's liquidity account; swapped and not
        paid out, see :meth:`_refund_swapped`. A swap or payout whose outcome is not known is left
        for an operator: the error says where it stopped."""
        corridor = ramp.corridor
        if corridor.ramp_type == "on":
            return self._refund_payment(ramp)
        if not self._done(ramp, "receive"):
            return None
        ephemeral = self._ephemeral(ramp)
        user = next(a for a in ramp.signing_accounts if a.role == "user")
        asset = corridor.swap[0]
        chain = self._chain(ramp)
        network = corridor.chain
        units = to_chain(ramp.quote.input_amount, NETWORK_DECIMALS[network][asset])
        if self._done(ramp, "swap"):
            return self._refund_swapped(ramp, asset, units)
        # The fees went before the swap: the ephemeral holds the input less them, and the platform
        # gives them back from its liquidity account, so the user gets exactly the input.
        fee_units = int(ramp.quote.snapshot["fee_units"]["total"]) if self._done(ramp, "fees") else 0
        held = units - fee_units
        if self._swapped(ramp, asset, held):
            return None
        key = operation_key(ramp.id, "failed", "refund")
        self._platform_tx(
            ramp,
            "failed",
            "refund",
            "operator",
            {"asset": asset, "units": str(held), "from": ephemeral.key, "to": user.address.lower()},
            lambda signer, nonce, fees: chain.sweep_blueprint(
                signer, asset, ephemeral.address, held, refund_to=user.address, nonce=nonce, fees=fees
            ),
            lambda r: [Movement(f"{key}:back", asset, self._ledger_units(network, asset, held), ephemeral, None)],
        )
        if fee_units:
            self._to_user_from_liquidity(ramp, "refund-fees", asset, fee_units)
        return {"amount": f"{ramp.quote.input_amount}", "currency": asset, "status": "completed"}

    def _to_user_from_liquidity(self, ramp: Ramp, step: str, asset: str, units: int) -> None:
        """The platform's liquidity account pays the user's wallet ``units`` (journal
        ``{id}:failed:{step}``; mirrored liquidity → the world)."""
        user = next(a for a in ramp.signing_accounts if a.role == "user")
        chain = self._chain(ramp)
        network = ramp.corridor.chain
        liquidity = self._platform_holder(ramp, "liquidity")
        key = operation_key(ramp.id, "failed", step)
        self._platform_tx(
            ramp,
            "failed",
            step,
            "liquidity",
            {"asset": asset, "units": str(units), "to": user.address.lower()},
            lambda signer, nonce, fees: chain.transfer_blueprint(
                signer, asset, user.address, units, nonce=nonce, fees=fees
            ),
            lambda r: [Movement(f"{key}:back", asset, self._ledger_units(network, asset, units), liquidity, None)],
        )

    def _refund_swapped(self, ramp: Ramp, asset: str, units: int) -> dict[str, str] | None:
        """An off-ramp that failed after its swap and before any payout: the platform takes the
        swapped BRLA (left on the ephemeral, swept to the treasury, or already at the anchor, its
        own account) and gives the user exactly ``input_amount`` from its liquidity account. A
        payout asked for and not refused may still pay: left for an operator, never both."""
        payout = self._journal.operation(operation_key(ramp.id, "payout", "pix"))
        if payout is not None and payout.status != "failed":
            log.warning(
                "off-ramp not refunded: its payout was asked for and may pay; an operator must look",
                extra={"ramp_id": ramp.id, "payout": payout.status},
            )
            return None
        self._to_user_from_liquidity(ramp, "buy-back", asset, units)
        self._sweep(ramp)  # what the ephemeral still holds (the BRLA, if not handed over) to the treasury
        return {"amount": f"{ramp.quote.input_amount}", "currency": asset, "status": "completed"}

    def _done(self, ramp: Ramp, phase: str) -> bool:
        """Whether every transaction of ``phase`` was mined and did not revert."""
        operations = [self._journal.operation(key) for key in self._keys_of(ramp, phase)]
        return bool(operations) and all(
            op is not None and op.status == "confirmed" and not (op.outcome or {}).get("reverted") for op in operations
        )

    def _refund_payment(self, ramp: Ramp) -> dict[str, str] | None:
        """An on-ramp's BRL back to its payer. A payment the rail did not accept (another amount)
        the rail refunds itself: shown as it reports it. An accepted payment is refunded by the
        rail at our request (journal ``{id}:failed:refund``): at once when no mint used it; when
        the mint confirmed and no swap took the BRLA, the BRLA first goes back from the ephemeral to
        the provider's account (the operator, through the sweeper the ephemeral approved), where
        the issuer burns it for the refund. Swapped — or a mint or swap whose outcome the journal
        does not know — is left for an operator (None: the error says where the ramp stopped)."""
        corridor = ramp.corridor
        payments = self._payments.payments_for(corridor.rail, ramp.id)
        key = operation_key(ramp.id, "failed", "refund")
        asked = self._journal.operation(key)
        accepted = payment_verdict(payments, ramp).payment_id
        payment_id = str(asked.request["payment"]) if asked is not None else accepted
        if payment_id is None:
            for payment in payments:
                if payment.status in ("refunding", "refunded"):
                    return {
                        "amount": str(payment.amount),
                        "currency": str(payment.currency),
                        "status": "completed" if payment.status == "refunded" else "pending",
                    }
            return None
        token = corridor.swap[0]
        mint = self._journal.operation(operation_key(ramp.id, "mint", token.lower()))
        units = to_chain(ramp.quote.input_amount, NETWORK_DECIMALS[corridor.chain][token])
        burnt: int | None = None
        if mint is not None and mint.status != "failed":
            if mint.status != "confirmed" or self._swapped(ramp, token, units):
                log.warning(
                    "on-ramp not refunded: its BRLA was swapped, or a mint or swap has no known outcome; an operator "
                    "must refund it",
                    extra={"ramp_id": ramp.id},
                )
                return None
            self._return_minted(ramp, token, units)
            burnt = self._ledger_units(corridor.chain, token, units)
        return self._rail_refund(ramp, key, payment_id, burnt)

    def _swapped(self, ramp: Ramp, token: str, units: int) -> bool:
        """Whether a swap may have taken the ephemeral's ``token`` (the swap's input; ``units`` of
        it held before the swap): any swap operation but one the node refused or one that reverted
        (the token is still there then). A swap claimed but never settled (a worker that stopped
        after submitting) counts as not swapped only when no receipt of it exists and the token is
        still on the ephemeral; should it be mined later, it reverts, the token being gone."""
        chain = self._chain(ramp)
        for op in (self._journal.operation(k) for k in self._keys_of(ramp, "swap")):
            if op is None or op.status == "failed":
                continue
            if op.status == "confirmed":
                if (op.outcome or {}).get("reverted"):
                    continue
                return True
            if op.status == "unknown" or op.external_id is None:
                return True
            receipt = chain.receipt(op.external_id)
            if receipt is not None:
                if receipt.success:
                    return True
                continue
            if chain.balance(self._ephemeral(ramp).address, token) < units:
                return True
        return False

    def _return_minted(self, ramp: Ramp, token: str, units: int) -> None:
        """The minted BRLA from the ephemeral back to the provider's account (journal
        ``{id}:failed:return``), so the issuer can burn it for the refund."""
        ephemeral = self._ephemeral(ramp)
        provider = self._platform_holder(ramp, "provider_brla")
        chain = self._chain(ramp)
        self._open(ramp, provider, (token,))
        key = operation_key(ramp.id, "failed", "return")
        back = self._ledger_units(ramp.corridor.chain, token, units)
        self._platform_tx(
            ramp,
            "failed",
            "return",
            "operator",
            {"asset": token, "units": str(units), "from": ephemeral.key, "to": provider.key},
            lambda signer, nonce, fees: chain.sweep_blueprint(
                signer, token, ephemeral.address, units, refund_to=provider.address, nonce=nonce, fees=fees
            ),
            lambda r: [Movement(f"{key}:back", token, back, ephemeral, provider)],
        )

    def _rail_refund(self, ramp: Ramp, key: str, payment_id: str, burnt: int | None) -> dict[str, str]:
        """The rail refunds the accepted payment in full, by our key; the provider's BRLA it burns
        for it (``burnt`` ledger units, when the payment was minted) leaves the mirror. The ramp
        shows the refund ``pending`` while it is asked for (the ``refund.completed`` webhook, or
        this settlement, makes it ``completed``); a refund the rail refuses shows ``failed``."""
        token = ramp.corridor.swap[0]
        shown = {"amount": f"{ramp.quote.input_amount}", "currency": ramp.corridor.input_currency}
        held = self._journal.claim(
            key,
            ramp_id=ramp.id,
            kind="refund",
            request={"payment": payment_id, "amount": shown["amount"], "burn": str(burnt or 0)},
            external_id=None,
            lease_seconds=LEASE_SECONDS,
        )
        if held.done:
            return {**shown, "status": "completed" if held.operation.status == "confirmed" else "failed"}
        self._store.set_refund(ramp.id, {**shown, "status": "pending"})
        provider = self._platform_holder(ramp, "provider_brla")
        burn = [Movement(f"{key}:burn", token, burnt, provider, None)] if burnt else []
        rail = self._rails(ramp.corridor.rail)
        try:
            self._provider_operation(
                ramp,
                "failed",
                key,
                held.claim_id,
                lambda: rail.get_refund(key) if held.look_up else None,
                lambda: rail.request_refund(RefundRequest(key=key, payment_id=payment_id)),
                lambda refund: self._journal.settle(
                    key,
                    held.claim_id,
                    "confirmed",
                    outcome={"refund_id": refund.refund_id, "tx_hash": refund.tx_hash},
                    movements=burn,
                ),
            )
        except Permanent as refused:  # settled failed: the ramp still ends, its refund for an operator
            log.warning("on-ramp refund refused by the rail", extra={"ramp_id": ramp.id, "reason": str(refused)})
            return {**shown, "status": "failed"}
        return {**shown, "status": "completed"}

    @staticmethod
    def _keys_of(ramp: Ramp, phase: str) -> list[str]:
        return [
            operation_key(ramp.id, phase, f"tx{tx.nonce}-{tx.signer.lower()[:10]}")
            for tx in ramp.unsigned_txs
            if tx.phase == phase
        ]


_NO_BLUEPRINT = Blueprint(network="", signer="", tx_data={})


def refund_completed(ramp: Ramp) -> dict[str, str] | None:
    """The ramp's refund once the rail's ``refund.completed`` came (the webhook path): a refund shown
    ``pending`` becomes ``completed``; None when there is nothing to change."""
    if ramp.refund is None or ramp.refund.get("status") != "pending":
        return None
    return {**ramp.refund, "status": "completed"}


def complete_payment_wait(tasks: Tasks, token: str | None, verdict: PaymentVerdict) -> bool:
    """Complete the payment wait when the rail's record decides it: accepted → success; refused →
    failure. Another completion having come first is not an error."""
    if token is None or (verdict.payment_id is None and verdict.refused is None):
        return False
    try:
        if verdict.payment_id is not None:
            tasks.success(token, {"payment_id": verdict.payment_id})
        else:
            tasks.failure(token, "PaymentRefused", verdict.refused or "refused")
    except Exception as error:  # a token already used or timed out: someone completed it first
        log.info("payment wait not completed", extra={"reason": str(error)})
        return False
    return True


def error_message(error: Any) -> tuple[str, str]:
    """A Catch's ``{"Error", "Cause"}`` → (a sentence, the error's name). The cause of a Lambda
    error is its JSON payload, with a stack trace: only its ``errorMessage`` is kept."""
    import json

    if not isinstance(error, Mapping):
        return "the ramp failed", "Unknown"
    name = str(error.get("Error") or "Unknown")
    cause = error.get("Cause")
    message = name
    if isinstance(cause, str):
        try:
            parsed = json.loads(cause)
        except ValueError:
            parsed = None
        if isinstance(parsed, Mapping) and isinstance(parsed.get("errorMessage"), str):
            message = parsed["errorMessage"]
        elif parsed is None and "Traceback" not in cause and 'File "' not in cause:
            message = cause
    return message.splitlines()[0][:500] if message else name, name
