"""The client's side of a ramp (API.md, "Ramps"): corridors, quotes, registration with the
blueprints to sign, pre-signed transactions bound to them, start, cancel, read and list, and the
schedule that expires what was never started.

Order of work in each call: everything that can be refused is checked first (input, ownership,
the quote, the chain's view of the ephemerals); the store then writes in one transaction whose
conditions repeat the checks that race (a quote consumed once, an ephemeral claimed once, a ramp
started once); outside calls that follow a write (a PIX charge, the execution's start) are
idempotent and retried by the next call that needs them.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, cast

from rampart.core.cursors import Cursors
from rampart.core.errors import DomainError, NotFound, Transient
from rampart.core.money import to_units
from rampart.ramps import destinations as check
from rampart.ramps.blueprints import build, ephemeral_gas
from rampart.ramps.chains import (
    Blueprint,
    BlueprintMismatch,
    ChainError,
    ChainUnavailable,
    EvmChainPort,
    UndecodableTransaction,
)
from rampart.ramps.errors import (
    AmountOutOfRange,
    BlueprintMismatchError,
    EphemeralInUse,
    EphemeralNotFresh,
    InsufficientLiquidity,
    InvalidPhase,
    InvalidRamp,
    PresignedIncomplete,
    QuoteConsumed,
    QuoteExpired,
    ServiceUnavailable,
    StartDeadlinePassed,
    UnknownQuote,
    UnsupportedCorridor,
)
from rampart.ramps.models import (
    CORRIDORS,
    NETWORKS,
    RAILS,
    SERVED,
    Corridor,
    HistoryEntry,
    Quote,
    Ramp,
    SignerRole,
    SigningAccount,
    Status,
)
from rampart.ramps.ports import Prices, RampStore, Workflows
from rampart.ramps.pricing import at_scale, price
from rampart.ramps.rails import ChargeRequest, Rail, RailError, RailUnavailable, close_charge

log = logging.getLogger("rampart.ramps")

QUOTE_PREFIX, RAMP_PREFIX = "qt_", "rmp_"
MAX_ID = 64
QUOTE_GRACE_SECONDS = 24 * 3600  # an expired quote still answers quote-expired for a day, then is swept


@dataclass(frozen=True)
class Windows:
    """The stage's windows (the manifest's, per stage), in seconds."""

    quote_ttl: int = 600
    start_deadline: int = 900
    payment_window: int = 1800
    watch_grace: int = 120  # a running ramp this idle is looked at by the watch (rampart.ramps.watch)
    silence: int = 1800  # a running execution this silent is stopped and its ramp paused


@dataclass(frozen=True)
class QuoteRequest:
    ramp_type: str
    source: str
    destination: str
    input_amount: str
    input_currency: str
    output_currency: str


@dataclass(frozen=True)
class Caller:
    id: str
    role: str
    kind: str = "user"

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


@dataclass(frozen=True)
class Page:
    items: list[Ramp]
    next_cursor: str | None


def new_id(prefix: str) -> str:
    return prefix + uuid.uuid4().hex


def _valid_id(value: str, prefix: str) -> bool:
    return isinstance(value, str) and len(value) <= MAX_ID and value.startswith(prefix) and value.isascii()


class RampService:
    def __init__(
        self,
        store: RampStore,
        *,
        chains: Callable[[str], EvmChainPort],
        rails: Callable[[str], Rail],
        prices: Prices,
        workflows: Workflows,
        platform: Callable[[str], Mapping[str, str]],
        cursors: Cursors,
        windows: Windows = Windows(),
    ) -> None:
        self._store = store
        self._chains = chains
        self._rails = rails
        self._prices = prices
        self._workflows = workflows
        self._platform = platform
        self._cursors = cursors
        self.windows = windows

    # -- corridors and quotes -------------------------------------------------------------------
    @staticmethod
    def corridors() -> tuple[Corridor, ...]:
        return SERVED

    @staticmethod
    def find_corridor(request: QuoteRequest) -> Corridor:
        for corridor in CORRIDORS:
            if (
                corridor.served
                and corridor.ramp_type == request.ramp_type
                and corridor.source == request.source
                and corridor.destination == request.destination
                and corridor.input_currency == request.input_currency
                and corridor.output_currency == request.output_currency
            ):
                return corridor
        known = set(NETWORKS) | set(RAILS)
        field = "/from" if request.source not in known else "/to" if request.destination not in known else None
        raise UnsupportedCorridor(
            f"no corridor {request.ramp_type}: {request.source} {request.input_currency} → "
            f"{request.destination} {request.output_currency}; GET /v1/corridors lists those served",
            field=field,
        )

    def quote(self, who: Caller, request: QuoteRequest) -> Quote:
        if request.ramp_type not in ("on", "off"):
            raise InvalidRamp("ramp_type is on or off", [("/ramp_type", "expected on or off")])
        corridor = self.find_corridor(request)
        try:
            to_units(request.input_amount, corridor.input_currency)  # the format, the scale, > 0
        except DomainError as error:
            raise InvalidRamp(error.detail, [("/input_amount", error.detail)]) from None
        amount = Decimal(request.input_amount)
        if amount != round(amount, corridor.input_decimals):
            detail = f"{corridor.input_currency} on {corridor.source} has at most {corridor.input_decimals} decimals"
            raise InvalidRamp(detail, [("/input_amount", detail)])
        if not corridor.min_amount <= amount <= corridor.max_amount:
            raise AmountOutOfRange(
                f"{corridor.key}: the amount must be from {corridor.min_amount} to {corridor.max_amount} "
                f"{corridor.input_currency}; got {request.input_amount}"
            )
        markup = 0
        partner_id = None
        if who.kind == "partner":
            markup = self._store.partner_markup(who.id) or 0
            partner_id = who.id
        chain = self._chains(corridor.chain)
        try:
            fees = chain.fee_estimate()
            gas_wei = ephemeral_gas(corridor, chain.gas_table) * fees.max_fee_per_gas
            priced = price(
                corridor,
                amount,
                markup_bps=markup,
                swap=lambda asset_in, amount_in: self._prices.swap(
                    corridor.chain, asset_in, amount_in, corridor.swap[1]
                ),
                prices=self._prices.usd(),
                gas_wei=gas_wei,
            )
        except ChainUnavailable as error:
            raise ServiceUnavailable(f"the {corridor.chain} network did not answer; try again ({error})") from None
        except ChainError as error:  # the pool refused to price it (e.g. beyond its reserves)
            raise InsufficientLiquidity(f"the pool cannot price this amount ({error})") from None
        now = datetime.now(UTC)
        quote = Quote(
            id=new_id(QUOTE_PREFIX),
            owner_id=who.id,
            corridor=corridor,
            input_amount=at_scale(amount, corridor.input_currency),
            output_amount=priced.output_amount,
            rate=priced.rate,
            fees=priced.fees,
            snapshot=priced.snapshot,
            created_at=now,
            expires_at=now + timedelta(seconds=self.windows.quote_ttl),
            partner_id=partner_id,
        )
        return self._store.save_quote(quote, self.windows.quote_ttl)

    def get_quote(self, quote_id: str) -> Quote:
        quote = self._store.quote(quote_id) if _valid_id(quote_id, QUOTE_PREFIX) else None
        if quote is None:
            raise NotFound("no such quote", field="path:id")
        return quote

    # -- registration ---------------------------------------------------------------------------
    def register(
        self,
        who: Caller,
        quote_id: str,
        signing_accounts: Sequence[Mapping[str, Any]],
        destination: Mapping[str, Any],
        payer: Mapping[str, Any] | None,
    ) -> Ramp:
        quote = self._store.quote(quote_id) if _valid_id(quote_id, QUOTE_PREFIX) else None
        if quote is None or quote.owner_id != who.id:
            raise UnknownQuote("no such quote for this caller")
        if quote.consumed_by is not None:
            raise QuoteConsumed()
        if quote.expired:
            raise QuoteExpired()
        corridor = quote.corridor
        chain = self._chains(corridor.chain)
        errors: list[tuple[str, str]] = []
        dest = self._destination(corridor, chain, destination, errors)
        payer_checked = self._payer(corridor, payer, errors)
        accounts = self._signing_accounts(corridor, chain, signing_accounts, errors)
        if errors:
            raise InvalidRamp(errors[0][1], errors)
        signers: dict[str, str] = {account.role: account.address for account in accounts}
        user_nonce: int | None = None
        try:
            for index, account in enumerate(accounts):
                if account.role != "ephemeral":
                    continue
                field = f"/signing_accounts/{index}/address"
                if self._store.ephemeral_in_use(account.network, _address_key(account.address)):
                    raise EphemeralInUse(f"{account.address} is registered to another unfinished ramp", field=field)
                nonce = chain.nonce(account.address)
                held = {asset: chain.balance(account.address, asset) for asset in ("ETH", *corridor.swap)}
                if nonce != 0 or any(held.values()):
                    raise EphemeralNotFresh(
                        f"{account.address} has nonce {nonce} and holds "
                        + (", ".join(f"{asset}" for asset, units in held.items() if units) or "nothing")
                        + " on "
                        + account.network
                        + ": an ephemeral must be a fresh key",
                        field=field,
                    )
            if "user" in signers:
                user_nonce = chain.nonce(signers["user"])
            fees = chain.fee_estimate()
        except ChainUnavailable as error:
            raise ServiceUnavailable(f"the {corridor.chain} network did not answer; try again ({error})") from None
        unsigned = build(
            corridor,
            chain,
            snapshot=quote.snapshot,
            input_amount=quote.input_amount,
            signers=signers,
            destination=dest.get("address") if corridor.ramp_type == "on" else None,
            platform=self._platform(corridor.chain),
            fees=fees,
            user_nonce=user_nonce,
        )
        now = datetime.now(UTC)
        ramp = Ramp(
            id=new_id(RAMP_PREFIX),
            owner_id=who.id,
            quote=quote,
            status="initial",
            phase="initial",
            destination=dest,
            payer=payer_checked,
            signing_accounts=tuple(accounts),
            unsigned_txs=unsigned,
            start_deadline=now + timedelta(seconds=self.windows.start_deadline),
            created_at=now,
            updated_at=now,
            history=(HistoryEntry("initial", now),),
        )
        return self._store.register(ramp, self.windows.start_deadline)

    @staticmethod
    def _text(value: Any, field: str, errors: list[tuple[str, str]]) -> str | None:
        if not isinstance(value, str):
            errors.append((field, "expected a string"))
            return None
        return value

    def _destination(
        self, corridor: Corridor, chain: EvmChainPort, given: Any, errors: list[tuple[str, str]]
    ) -> dict[str, str]:
        if not isinstance(given, Mapping):
            errors.append(("/destination", "expected an object"))
            return {}
        if corridor.destination in NETWORKS:
            self._only(given, ("address",), "/destination", errors)
            address = self._text(given.get("address"), "/destination/address", errors)
            if address is None:
                return {}
            valid = chain.valid_address(address)
            if valid is None:
                errors.append(("/destination/address", "not a 20-byte hex address (mixed case must be EIP-55)"))
                return {}
            return {"address": address}
        if corridor.destination == "pix":
            self._only(given, ("pix_key", "tax_id", "name"), "/destination", errors)
            out: dict[str, str] = {}
            key = check.pix_key(given.get("pix_key"))
            if key is None:
                errors.append(("/destination/pix_key", "not a CPF, CNPJ, e-mail, +55 phone or random key"))
            else:
                out["pix_key"] = key[1]
                out["pix_key_type"] = key[0]
            return out | self._person(given, "/destination", errors)
        errors.append(("/destination", f"{corridor.destination} destinations are not served"))
        return {}

    def _payer(self, corridor: Corridor, given: Any, errors: list[tuple[str, str]]) -> dict[str, str] | None:
        needs = corridor.ramp_type == "on" and corridor.source == "pix"
        if not needs:
            if given is not None:
                errors.append(("/payer", f"a {corridor.key} ramp takes no payer"))
            return None
        if not isinstance(given, Mapping):
            errors.append(("/payer", "a PIX on-ramp needs payer: {tax_id, name}"))
            return None
        self._only(given, ("tax_id", "name"), "/payer", errors)
        return self._person(given, "/payer", errors)

    @staticmethod
    def _person(given: Mapping[str, Any], where: str, errors: list[tuple[str, str]]) -> dict[str, str]:
        """``{tax_id, name}`` of a PIX payer or payee: a CPF or CNPJ with valid check digits (as
        digits), a printable name."""
        out: dict[str, str] = {}
        tax = check.tax_id(given.get("tax_id"))
        if tax is None:
            errors.append((f"{where}/tax_id", "not a CPF or CNPJ with valid check digits"))
        else:
            out["tax_id"] = tax
        name = check.person_name(given.get("name"))
        if name is None:
            errors.append((f"{where}/name", "a name of 1 to 140 printable characters"))
        else:
            out["name"] = name
        return out

    @staticmethod
    def _only(given: Mapping[str, Any], allowed: tuple[str, ...], where: str, errors: list[tuple[str, str]]) -> None:
        for name in given:
            if name not in allowed:
                errors.append((f"{where}/{name}", f"unexpected field (allowed: {', '.join(allowed)})"))

    def _signing_accounts(
        self, corridor: Corridor, chain: EvmChainPort, given: Sequence[Mapping[str, Any]], errors: list[tuple[str, str]]
    ) -> list[SigningAccount]:
        wanted = [("ephemeral", network) for network in corridor.networks]
        if corridor.ramp_type == "off":
            wanted.append(("user", corridor.source))
        accounts: list[SigningAccount] = []
        seen: dict[tuple[Any, Any], int] = {}
        addresses: dict[str, int] = {}
        for index, item in enumerate(given):
            where = f"/signing_accounts/{index}"
            network, address, role = item.get("network"), item.get("address"), item.get("role")
            if (role, network) not in wanted:
                errors.append((where, f"a {corridor.key} ramp signs with {_describe(wanted)}; not {role} on {network}"))
                continue
            if (role, network) in seen:
                errors.append((where, f"a second {role} on {network}"))
                continue
            if not isinstance(address, str) or chain.valid_address(address) is None:
                errors.append((f"{where}/address", "not a 20-byte hex address (mixed case must be EIP-55)"))
                continue
            if address.lower() in addresses:
                errors.append((f"{where}/address", "the same address twice: every key signs once"))
                continue
            seen[(role, network)] = index
            addresses[address.lower()] = index
            accounts.append(SigningAccount(network=str(network), address=address, role=cast("SignerRole", role)))
        missing = [pair for pair in wanted if pair not in seen]
        if missing and not errors:
            errors.append(("/signing_accounts", f"missing {_describe(missing)}"))
        return accounts

    # -- pre-signed transactions ----------------------------------------------------------------
    def presign(self, who: Caller, ramp_id: str, items: Sequence[Mapping[str, Any]]) -> Ramp:
        ramp = self._own(who, ramp_id)
        if ramp.status != "initial":
            raise InvalidPhase(f"pre-signed transactions are taken only while initial; the ramp is {ramp.status}")
        errors: list[tuple[str, str]] = []
        accepted: dict[str, dict[str, Any]] = {}
        for index, item in enumerate(items):
            where = f"/presigned_txs/{index}"
            blueprint = ramp.blueprint(item["network"], item["phase"], item["nonce"], item["signer"])
            if blueprint is None:
                errors.append((where, "matches no blueprint of this ramp (network, phase, nonce, signer)"))
                continue
            chain = self._chains(blueprint.network)
            try:
                signed = chain.bind(_as_blueprint(blueprint), item["tx_data"])
            except BlueprintMismatch as error:
                errors.append((f"{where}/tx_data/{error.field}", error.message))
                continue
            except UndecodableTransaction as error:
                errors.append((f"{where}/tx_data", str(error)))
                continue
            accepted[blueprint.key] = {"tx_data": item["tx_data"], "tx_hash": signed.tx_hash}
        if errors:
            raise BlueprintMismatchError(
                f"{len(errors)} pre-signed transaction(s) differ from their blueprints; nothing was stored", errors
            )
        ramp = self._store.merge_presigned(ramp.id, accepted)
        if ramp.fully_signed and ramp.needs_payment_instructions:
            try:
                ramp = self._instruct(ramp)
            except ServiceUnavailable:
                log.warning("payment instructions deferred: the rail did not answer", extra={"ramp_id": ramp.id})
        return ramp

    def _instruct(self, ramp: Ramp) -> Ramp:
        """Create the rail's charge for exactly the input, payable only by the registered payer,
        until the payment window after the start deadline closes (idempotent per ramp id)."""
        corridor = ramp.corridor
        rail = self._rails(corridor.rail)
        assert ramp.payer is not None
        try:
            charge = rail.create_charge(
                ChargeRequest(
                    reference=ramp.id,
                    amount=ramp.quote.input_amount,
                    payer_tax_id=ramp.payer["tax_id"],
                    expires_at=ramp.start_deadline + timedelta(seconds=self.windows.payment_window),
                    currency=corridor.input_currency,
                )
            )
        except RailUnavailable as error:
            raise ServiceUnavailable(f"the {corridor.rail} rail did not answer; try again ({error.message})") from None
        except RailError as error:
            raise ServiceUnavailable(f"the {corridor.rail} rail refused the charge ({error.message})") from None
        return self._store.set_payment_instructions(
            ramp.id, charge.charge_id, charge.payment_instructions(corridor.rail)
        )

    # -- start, cancel --------------------------------------------------------------------------
    def start(self, who: Caller, ramp_id: str) -> Ramp:
        ramp = self._own(who, ramp_id)
        if ramp.status == "cancelled":
            raise InvalidPhase("the ramp was cancelled")
        if ramp.status == "expired":
            raise StartDeadlinePassed(f"the ramp expired: its start deadline was {_rfc3339(ramp.start_deadline)}")
        if ramp.status == "initial":
            if datetime.now(UTC) >= ramp.start_deadline:  # the store checks it again on the database's clock
                raise StartDeadlinePassed(f"the start deadline was {_rfc3339(ramp.start_deadline)}")
            if not ramp.fully_signed:
                missing = [tx for tx in ramp.unsigned_txs if tx.key not in ramp.presigned]
                raise PresignedIncomplete(
                    f"{len(missing)} of {len(ramp.unsigned_txs)} blueprints are not signed yet, first: "
                    f"{missing[0].network} {missing[0].phase} nonce {missing[0].nonce} by {missing[0].signer}"
                )
            if ramp.needs_payment_instructions:
                ramp = self._instruct(ramp)
            ramp, _started = self._store.start(ramp.id)
        if ramp.status == "running" and ramp.execution_arn is None:
            payload = {"ramp_id": ramp.id, "windows": {"payment_seconds": self.windows.payment_window}}
            try:
                arn = self._workflows.start(ramp.corridor.state_machine, ramp.id, payload)
            except Transient as error:
                raise ServiceUnavailable(f"the workflow engine did not answer; start again ({error.message})") from None
            ramp = self._store.set_execution(ramp.id, arn)
        return ramp

    def cancel(self, who: Caller, ramp_id: str) -> Ramp:
        ramp = self._own(who, ramp_id)
        if ramp.status == "cancelled":
            return ramp
        if ramp.status != "initial":
            raise InvalidPhase(f"only a ramp not yet started can be cancelled; this one is {ramp.status}")
        ramp = self._store.cancel(ramp.id)
        self._close_charge(ramp)
        return ramp

    def _close_charge(self, ramp: Ramp) -> None:
        """Best effort: a payment that still arrives for a closed ramp is refunded by the rail's
        path (API.md), so a charge left open costs nothing but a refund."""
        close_charge(self._rails(ramp.corridor.rail), ramp.charge_id, ramp.id)

    # -- read -----------------------------------------------------------------------------------
    def get(self, who: Caller, ramp_id: str) -> Ramp:
        """The ramp if the caller owns it or is an admin (who reads every ramp); 404 otherwise."""
        return self._visible(who, ramp_id, admin=True)

    def _own(self, who: Caller, ramp_id: str) -> Ramp:
        """The caller's own ramp: signing, starting and cancelling are its owner's acts alone (an
        admin reads every ramp but acts on none of another's keys); 404 otherwise."""
        return self._visible(who, ramp_id, admin=False)

    def _visible(self, who: Caller, ramp_id: str, *, admin: bool) -> Ramp:
        ramp = self._store.ramp(ramp_id) if _valid_id(ramp_id, RAMP_PREFIX) else None
        if ramp is None or not (ramp.owner_id == who.id or (admin and who.is_admin)):
            raise NotFound("no such ramp", field="path:id")
        return ramp

    def list(self, who: Caller, status: Status | None, limit: int, cursor: str | None, *, every: bool = False) -> Page:
        owner = None if every else who.id
        scope = f"ramps:{'*' if owner is None else owner}:{status or ''}"
        after = self._cursors.verify(scope, cursor)
        items = self._store.ramps(owner, status, limit + 1, after)
        more = len(items) > limit
        items = items[:limit]
        next_cursor = self._cursors.sign(scope, items[-1].seq) if more and items else None
        return Page(items=items, next_cursor=next_cursor)

    # -- operators: resume or fail a paused ramp ------------------------------------------------
    def operate(self, who: Caller, ramp_id: str, action: str) -> Ramp:
        """``resume`` (back into the phase it paused in) or ``fail`` a ``paused`` ramp (else 409
        ``invalid-phase``). The waiting execution gets the decision through its task token; when no
        execution is alive (the twin restarted, it was stopped), a recovery execution
        ``{ramp_id}--r{n}`` enters at that phase (or at ``failed``) — the journal guarantees that
        nothing done before is done again."""
        ramp = self.get(who, ramp_id)
        if ramp.status != "paused":
            raise InvalidPhase(f"only a paused ramp can be resumed or failed; this one is {ramp.status}")
        token, phase = self._store.task_token(ramp.id)
        alive = (
            token is not None
            and phase == "paused"
            and ramp.execution_arn is not None
            and self._workflows.alive(ramp.execution_arn)
        )
        resume_at = (ramp.resume_at or ramp.phase) if action == "resume" else "failed"
        ramp = self._store.unpause(ramp.id, recovery=not alive)
        if alive and token is not None:
            self._workflows.complete(token, {"action": action})
            return ramp
        payload = {
            "ramp_id": ramp.id,
            "resume_at": resume_at,
            "windows": {"payment_seconds": self.windows.payment_window},
        }
        arn = self._workflows.start(ramp.corridor.state_machine, f"{ramp.id}--r{ramp.recoveries}", payload)
        return self._store.set_execution(ramp.id, arn)

    # -- the schedule and the worker ------------------------------------------------------------
    def expire(self) -> dict[str, int]:
        """Unstarted ramps past their start deadline → ``expired`` (their charges closed); quotes
        expired for a day → deleted."""
        expired = self._store.expire_due()
        for ramp in expired:
            log.info("ramp expired before start", extra={"ramp_id": ramp.id})
            self._close_charge(ramp)
        swept = self._store.sweep_quotes(QUOTE_GRACE_SECONDS)
        return {"expired_ramps": len(expired), "swept_quotes": swept}

    def park(self, ramp_id: str, phase: str, task_token: str) -> Ramp:
        """The execution waits in ``phase`` on ``task_token``; the ramp keeps the token, so the
        event that ends the wait (a payment's webhook, an operator) can complete it."""
        return self._store.park(ramp_id, phase, task_token)


def _as_blueprint(tx: Any) -> Blueprint:
    return Blueprint(network=tx.network, signer=tx.signer, tx_data=tx.tx_data)


def _address_key(address: str) -> str:
    return address.lower() if address.startswith("0x") else address


def _describe(pairs: Sequence[tuple[Any, Any]]) -> str:
    return ", ".join(f"{role} on {network}" for role, network in pairs)


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


__all__ = ["Caller", "Page", "QuoteRequest", "RampService", "Windows", "new_id"]
