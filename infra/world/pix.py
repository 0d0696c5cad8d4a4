"""The ``pix`` rail and its BRLA issuer, modelled on Avenia (BRLA's provider).

- **Charges** (``POST /pix/v1/charges``): a BR code for an amount, payable only by one payer tax id
  until ``expires_at``; one open charge per ``reference`` (our ramp id: a repeat with the same terms
  returns it). ``POST /pix/v1/charges/{id}/cancel`` cancels an unpaid one.
- **Payments** come only through ``/_sim/pix/payments`` (``GET /pix/v1/charges/{id}/payments`` lists a
  charge's, as their webhooks carry them): from another payer → refused, nothing
  recorded; another amount, or a charge cancelled / expired / already paid → accepted, then
  refunded in full (a ``refund`` payout). Every payment received → webhook ``charge.paid``
  (``outcome`` ``accepted`` or ``refunding``), every refund → ``refund.completed``.
- **Mints** (``POST /pix/v1/mints``): BRLA minted on ``base`` to an address, only against a payment
  received, accepted and not used by another mint, of at least that value (1 BRL = 1 BRLA).
- **Payouts** (``POST /pix/v1/payouts``): BRLA received at the provider's ``base`` account is burnt
  and the PIX key paid.
- **Refunds** (``POST /pix/v1/refunds {key, payment_id}``): an accepted payment returned in full to
  its payer (a ``refund`` payout, webhook ``refund.completed``) — when no mint used it, or, when one
  did, once the minted BRLA is back at the provider's ``base`` account: the issuer burns it there, as
  a payout burns what it received. A refunded payment backs no mint.

Mints, payouts and refunds carry our idempotency ``key``: one key is acted on once; a repeat (concurrent ones
too: one lock serializes the rail) returns the first result, a repeat with other terms → 409. A
refused request records nothing. State: ``<data>/pix/state.json``, written after every change.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from infra.world.brcode import br_code, tax_id
from infra.world.store import load_json, save_json
from infra.world.webhooks import utc_now
from rampart.core.errors import DomainError
from rampart.core.money import format_units, to_units

_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
OPEN, PAID, CANCELLED, EXPIRED = "pending", "paid", "cancelled", "expired"
# What a ``charge.paid`` webhook carries of a payment (and ``GET /pix/v1/charges/{id}/payments``).
PAID_FIELDS = ("charge_id", "reference", "payment_id", "amount", "currency", "payer_tax_id", "paid_at", "outcome")


class Chain(Protocol):
    """What the issuer needs of ``base`` (:class:`infra.world.base.BaseChain`)."""

    def platform_accounts(self) -> dict[str, str]: ...
    def mint_brla(self, to: str, amount: Decimal) -> str: ...
    def burn_brla_from_provider(self, amount: Decimal) -> str: ...
    def brla_balance(self, address: str) -> Decimal: ...


class PixError(Exception):
    """A refusal of the provider: answered as ``{"error": {"code", "message", "field"?}}``."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field:
            error["field"] = self.field
        return {"error": error}


def _new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(10)}"


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise PixError(400, "malformed-request", "the body must be a JSON object")
    return body


def _text(body: dict[str, Any], name: str, *, max_length: int = 200, required: bool = True) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > max_length:
        raise PixError(422, "invalid-field", f"{name} must be a non-empty string of at most {max_length}", name)
    return value


def _amount(body: dict[str, Any], name: str, currency: str, *, required: bool = True) -> int | None:
    value: Any = body.get(name)
    if value is None and not required:
        return None
    try:
        return to_units(value, currency)
    except DomainError as exc:
        raise PixError(422, "invalid-field", f"{name}: {exc}", name) from None


def _tax_id(body: dict[str, Any], name: str) -> str:
    digits = tax_id(body.get(name))
    if digits is None:
        raise PixError(422, "invalid-field", f"{name} must be a CPF or CNPJ with valid check digits", name)
    return digits


def _address(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not _ADDRESS.match(value):
        raise PixError(422, "invalid-field", f"{name} must be a 20-byte hex address (0x…)", name)
    return value


def _fingerprint(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


class PixRail:
    def __init__(
        self,
        data_dir: Path,
        *,
        chain: Callable[[], Chain],
        emit: Callable[[str, dict[str, Any]], None],
        never_confirm: Callable[[str, str], bool] = lambda operation, reference: False,
    ) -> None:
        self.path = data_dir / "state.json"
        self._chain = chain
        self._emit = emit
        self._never_confirm = never_confirm
        self._lock = threading.RLock()
        state = load_json(self.path, {})
        self.charges: dict[str, dict[str, Any]] = state.get("charges", {})
        self.payments: dict[str, dict[str, Any]] = state.get("payments", {})
        self.payouts: dict[str, dict[str, Any]] = state.get("payouts", {})
        self.mints: dict[str, dict[str, Any]] = state.get("mints", {})

    def save(self) -> None:
        with self._lock:
            document = {
                "charges": self.charges,
                "payments": self.payments,
                "payouts": self.payouts,
                "mints": self.mints,
            }
            save_json(self.path, document)

    # -- charges ------------------------------------------------------------------------------

    def _current(self, charge: dict[str, Any]) -> dict[str, Any]:
        """The charge, an open one past its ``expires_at`` marked expired."""
        if charge["status"] == OPEN and datetime.fromisoformat(charge["expires_at"]) <= datetime.now(UTC):
            charge["status"] = EXPIRED
            self.save()
        return charge

    def create_charge(self, body: Any) -> tuple[int, dict[str, Any]]:
        body = _object(body)
        reference = _text(body, "reference", max_length=100)
        units = _amount(body, "amount", "BRL")
        payer = _tax_id(body, "payer_tax_id")
        expires = body.get("expires_at")
        try:
            expires_at = datetime.fromisoformat(expires) if isinstance(expires, str) else None
        except ValueError:
            expires_at = None
        if expires_at is None or expires_at.tzinfo is None:
            raise PixError(422, "invalid-field", "expires_at must be an ISO-8601 time with its offset", "expires_at")
        currency = body.get("currency", "BRL")
        if currency != "BRL":
            raise PixError(422, "invalid-field", "currency must be BRL", "currency")
        assert units is not None
        amount = format_units(units, "BRL")
        expires_text = expires_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
        with self._lock:
            for charge in self.charges.values():
                if charge["reference"] != reference or self._current(charge)["status"] in (CANCELLED, EXPIRED):
                    continue
                same = (charge["amount"], charge["payer_tax_id"], charge["expires_at"]) == (amount, payer, expires_text)
                if not same:
                    raise PixError(
                        409, "reference-in-use", f"reference {reference} has another open charge", "reference"
                    )
                return 200, dict(charge)
            charge_id = _new_id("chg")
            charge = {
                "charge_id": charge_id,
                "reference": reference,
                "amount": amount,
                "currency": "BRL",
                "payer_tax_id": payer,
                "br_code": br_code(charge_id=charge_id, amount=amount),
                "status": OPEN,
                "expires_at": expires_text,
                "created_at": utc_now(),
                "payment_ids": [],
            }
            self.charges[charge_id] = charge
            self.save()
            return 201, dict(charge)

    def get_charge(self, charge_id: str) -> dict[str, Any]:
        with self._lock:
            charge = self.charges.get(charge_id)
            if charge is None:
                raise PixError(404, "not-found", f"no charge {charge_id}")
            return dict(self._current(charge))

    def charge_payments(self, charge_id: str) -> list[dict[str, Any]]:
        """Every payment received for a charge, oldest first, as its ``charge.paid`` webhook
        carries it: what a backend whose webhook never came looks up."""
        with self._lock:
            charge = self.charges.get(charge_id)
            if charge is None:
                raise PixError(404, "not-found", f"no charge {charge_id}")
            return [{k: self.payments[p][k] for k in PAID_FIELDS} for p in charge["payment_ids"]]

    def charges_of(self, reference: str) -> list[dict[str, Any]]:
        with self._lock:
            found = [dict(self._current(c)) for c in self.charges.values() if c["reference"] == reference]
        return sorted(found, key=lambda c: c["created_at"])

    def cancel_charge(self, charge_id: str) -> dict[str, Any]:
        with self._lock:
            charge = self.charges.get(charge_id)
            if charge is None:
                raise PixError(404, "not-found", f"no charge {charge_id}")
            status = self._current(charge)["status"]
            if status == PAID:
                raise PixError(409, "charge-paid", f"charge {charge_id} is paid: it cannot be cancelled")
            if status == OPEN:
                charge["status"] = CANCELLED
                charge["cancelled_at"] = utc_now()
                self.save()
            return dict(charge)

    # -- payments (only through /_sim) ------------------------------------------------------------

    def pay(self, body: Any) -> dict[str, Any]:
        body = _object(body)
        ramp_id = _text(body, "ramp_id", max_length=100)
        given = _amount(body, "amount", "BRL", required=False)
        payer = _tax_id(body, "payer_tax_id") if body.get("payer_tax_id") is not None else None
        with self._lock:
            charges = self.charges_of(str(ramp_id))
            if not charges:
                raise PixError(404, "unknown-ramp", f"no charge has the reference {ramp_id}", "ramp_id")
            charge = self.charges[charges[-1]["charge_id"]]
            if payer is not None and payer != charge["payer_tax_id"]:
                raise PixError(
                    422, "payment-refused", "the charge accepts payments only from its payer", "payer_tax_id"
                )
            amount = format_units(given, "BRL") if given is not None else charge["amount"]
            accepted = charge["status"] == OPEN and amount == charge["amount"]
            payment_id = _new_id("pay")
            payment = {
                "payment_id": payment_id,
                "charge_id": charge["charge_id"],
                "reference": charge["reference"],
                "amount": amount,
                "currency": "BRL",
                "payer_tax_id": charge["payer_tax_id"],
                "paid_at": utc_now(),
                "outcome": "accepted" if accepted else "refunding",
                "minted_by": None,
                "refund_id": None,
            }
            self.payments[payment_id] = payment
            charge["payment_ids"].append(payment_id)
            if accepted:
                charge["status"] = PAID
                charge["paid_at"] = payment["paid_at"]
            self.save()
            self._emit("charge.paid", {k: payment[k] for k in PAID_FIELDS})
            refund = None if accepted else self._refund(payment)
            reply = {k: v for k, v in payment.items() if k != "minted_by"}
            return {**reply, "ramp_id": charge["reference"], "refund": refund}

    def _refund_record(self, payment: dict[str, Any], key: str | None) -> dict[str, Any]:
        """A refund of ``payment`` in full to its payer (pending), recorded as a ``refund`` payout."""
        refund_id = _new_id("rfd")
        refund: dict[str, Any] = {
            "id": refund_id,
            "kind": "refund",
            "key": key,
            "reference": payment["reference"],
            "payment_id": payment["payment_id"],
            "charge_id": payment["charge_id"],
            "amount": payment["amount"],
            "currency": "BRL",
            "pix_key": payment["payer_tax_id"],
            "tax_id": payment["payer_tax_id"],
            "status": "pending",
            "created_at": utc_now(),
        }
        self.payouts[refund_id] = refund
        payment["refund_id"] = refund_id
        return refund

    def _refund_completed(self, refund: dict[str, Any]) -> None:
        refund["status"], refund["completed_at"] = "completed", utc_now()
        self.save()
        self._emit(
            "refund.completed",
            {
                "refund_id": refund["id"],
                **{k: refund[k] for k in ("payment_id", "charge_id", "reference", "amount", "currency", "pix_key")},
            },
        )

    def _refund(self, payment: dict[str, Any]) -> dict[str, Any]:
        """The rail's own refund of a payment it did not accept (another amount, a closed charge)."""
        refund = self._refund_record(payment, None)
        self._refund_completed(refund)
        return dict(refund)

    # -- refunds we ask for -----------------------------------------------------------------------

    def create_refund(self, body: Any) -> tuple[int, dict[str, Any]]:
        """Return an accepted payment in full to its payer, by our ``key`` (a repeat returns the
        first result; the key with another payment → 409). A payment a mint used is refunded only
        once the minted BRLA is back at the provider's account (the issuer burns it, as a payout
        burns what it received); a mint still pending → refused. A refusal records nothing; a
        refund that fails (the burn refused) frees the payment again."""
        body = _object(body)
        key = str(_text(body, "key"))
        payment_id = str(_text(body, "payment_id", max_length=100))
        fingerprint = _fingerprint(payment_id)
        with self._lock:
            existing = next((p for p in self.payouts.values() if p["kind"] == "refund" and p["key"] == key), None)
            if existing is not None:
                return self._repeated(existing, fingerprint, "refund")
            payment = self._accepted_payment(payment_id)
            mint = self.mints.get(payment["minted_by"]) if payment["minted_by"] else None
            brla: Decimal | None = None
            chain = self._chain()
            if mint is not None:
                if mint["status"] != "completed":
                    raise PixError(422, "mint-pending", f"payment {payment_id} backs a mint not done yet", "payment_id")
                brla = Decimal(mint["amount"])
                held = chain.brla_balance(chain.platform_accounts()["provider_brla"])
                if held < brla:
                    raise PixError(
                        422,
                        "brla-not-returned",
                        f"payment {payment_id} was minted: its {brla} BRLA must be back at the provider's account "
                        f"(it holds {held})",
                        "payment_id",
                    )
            refund = self._refund_record(payment, key)
            refund.update(
                fingerprint=fingerprint,
                brla_amount=None if mint is None else mint["amount"],
                burn_tx_hash=None,
                reason=None,
            )
            self.save()
            if self._never_confirm("refund", payment["reference"]):
                return 201, self._public(refund)
            try:
                if brla is not None:
                    refund["burn_tx_hash"] = chain.burn_brla_from_provider(brla)
            except Exception as exc:  # the burn was refused: the refund failed, the payment is free again
                refund["status"], refund["reason"] = "failed", f"{type(exc).__name__}: {exc}"
                payment["refund_id"] = None
                self.save()
                return 201, self._public(refund)
            self._refund_completed(refund)
            return 201, self._public(refund)

    def get_refund(self, key: str) -> dict[str, Any]:
        with self._lock:
            for refund in self.payouts.values():
                if refund["kind"] == "refund" and refund["key"] is not None and key in (refund["key"], refund["id"]):
                    return self._public(refund)
        raise PixError(404, "not-found", f"no refund with key {key}")

    # -- mints ----------------------------------------------------------------------------------

    def create_mint(self, body: Any) -> tuple[int, dict[str, Any]]:
        body = _object(body)
        key = str(_text(body, "key"))
        address = _address(body, "address")
        units = _amount(body, "amount", "BRLA")
        payment_id = str(_text(body, "payment_id", max_length=100))
        assert units is not None
        amount = format_units(units, "BRLA")
        fingerprint = _fingerprint(address.lower(), amount, payment_id)
        with self._lock:
            existing = next((m for m in self.mints.values() if m["key"] == key), None)
            if existing is not None:
                return self._repeated(existing, fingerprint, "mint")
            payment = self._accepted_payment(payment_id)
            if payment["minted_by"] is not None:
                raise PixError(422, "payment-used", f"payment {payment_id} was used by another mint", "payment_id")
            if to_units(payment["amount"], "BRL") * 10**16 < units:
                raise PixError(422, "amount-exceeds-payment", f"the mint exceeds payment {payment_id}", "amount")
            mint: dict[str, Any] = {
                "mint_id": _new_id("mnt"),
                "key": key,
                "address": address,
                "amount": amount,
                "currency": "BRLA",
                "payment_id": payment_id,
                "status": "pending",
                "tx_hash": None,
                "reason": None,
                "created_at": utc_now(),
                "fingerprint": fingerprint,
            }
            self.mints[mint["mint_id"]] = mint
            payment["minted_by"] = mint["mint_id"]
            self.save()
            if self._never_confirm("mint", key.split(":", 1)[0]):
                return 201, self._public(mint)
            try:
                mint["tx_hash"] = self._chain().mint_brla(address, Decimal(amount))
                mint["status"] = "completed"
            except Exception as exc:  # the chain refused: the mint failed, the payment is free again
                mint["status"], mint["reason"] = "failed", f"{type(exc).__name__}: {exc}"
                payment["minted_by"] = None
            mint["updated_at"] = utc_now()
            self.save()
            data = {k: mint[k] for k in ("key", "address", "amount", "currency")}
            if mint["status"] == "completed":
                self._emit("mint.completed", {**data, "tx_hash": mint["tx_hash"]})
            else:
                self._emit("mint.failed", {**data, "reason": mint["reason"]})
            return 201, self._public(mint)

    def get_mint(self, key: str) -> dict[str, Any]:
        with self._lock:
            for mint in self.mints.values():
                if mint["key"] == key or mint["mint_id"] == key:
                    return self._public(mint)
        raise PixError(404, "not-found", f"no mint with key {key}")

    # -- payouts --------------------------------------------------------------------------------

    def create_payout(self, body: Any) -> tuple[int, dict[str, Any]]:
        body = _object(body)
        key = str(_text(body, "key"))
        pix_key = str(_text(body, "pix_key", max_length=77))
        payee = _tax_id(body, "tax_id")
        name = str(_text(body, "name", max_length=140))
        units = _amount(body, "amount", "BRL")
        assert units is not None
        amount = format_units(units, "BRL")
        brla_units = _amount(body, "brla_amount", "BRLA", required=False)
        brla = format_units(brla_units if brla_units is not None else units * 10**16, "BRLA")
        reference = _text(body, "reference", max_length=100, required=False) or key.split(":", 1)[0]
        fingerprint = _fingerprint(pix_key, payee, name, amount, brla, reference)
        with self._lock:
            existing = next((p for p in self.payouts.values() if p["key"] == key), None)
            if existing is not None:
                return self._repeated(existing, fingerprint, "payout")
            chain = self._chain()
            held = chain.brla_balance(chain.platform_accounts()["provider_brla"])
            if held < Decimal(brla):
                raise PixError(
                    422, "insufficient-funds", f"the provider's account holds {held} BRLA, not {brla}", "brla_amount"
                )
            payout: dict[str, Any] = {
                "id": _new_id("pyt"),
                "kind": "payout",
                "key": key,
                "reference": reference,
                "amount": amount,
                "currency": "BRL",
                "brla_amount": brla,
                "pix_key": pix_key,
                "tax_id": payee,
                "name": name,
                "status": "pending",
                "burn_tx_hash": None,
                "reason": None,
                "created_at": utc_now(),
                "fingerprint": fingerprint,
            }
            self.payouts[payout["id"]] = payout
            self.save()
            if self._never_confirm("payout", str(reference)):
                return 201, self._public(payout)
            try:
                payout["burn_tx_hash"] = chain.burn_brla_from_provider(Decimal(brla))
                payout["status"] = "completed"
            except Exception as exc:
                payout["status"], payout["reason"] = "failed", f"{type(exc).__name__}: {exc}"
            payout["updated_at"] = utc_now()
            self.save()
            data = {k: payout[k] for k in ("key", "pix_key", "amount", "currency")}
            if payout["status"] == "completed":
                self._emit("payout.completed", {**data, "burn_tx_hash": payout["burn_tx_hash"]})
            else:
                self._emit("payout.failed", {**data, "reason": payout["reason"]})
            return 201, self._public(payout)

    def get_payout(self, key: str) -> dict[str, Any]:
        with self._lock:
            for payout in self.payouts.values():
                if payout["kind"] == "payout" and (payout["key"] == key or payout["id"] == key):
                    return self._public(payout)
        raise PixError(404, "not-found", f"no payout with key {key}")

    def paid_out(self, ramp_id: str | None) -> list[dict[str, Any]]:
        """What the rail paid out (``/_sim/pix/payouts``), oldest first."""
        with self._lock:
            items = [
                {
                    "id": p["id"],
                    "ramp_id": p["reference"],
                    "key": p["key"],
                    "amount": p["amount"],
                    "currency": p["currency"],
                    "pix_key": p["pix_key"],
                    "kind": p["kind"],
                    "status": p["status"],
                    "created_at": p["created_at"],
                }
                for p in self.payouts.values()
                if ramp_id is None or p["reference"] == ramp_id
            ]
        return sorted(items, key=lambda item: item["created_at"])

    def _repeated(self, existing: dict[str, Any], fingerprint: str, what: str) -> tuple[int, dict[str, Any]]:
        """A key acted on before: the same terms → 200 its first result; others → 409."""
        if existing.get("fingerprint") != fingerprint:
            raise PixError(409, "key-reused", f"key {existing['key']} was used for another {what}", "key")
        return 200, self._public(existing)

    def _accepted_payment(self, payment_id: str) -> dict[str, Any]:
        """A payment the rail accepted and has not refunded (what a mint or a refund may use)."""
        payment = self.payments.get(payment_id)
        if payment is None:
            raise PixError(422, "unknown-payment", f"no payment {payment_id}", "payment_id")
        if payment["outcome"] != "accepted":
            raise PixError(422, "payment-not-accepted", f"payment {payment_id} is refunded by the rail", "payment_id")
        if payment["refund_id"] is not None:
            raise PixError(422, "payment-refunded", f"payment {payment_id} was refunded", "payment_id")
        return payment

    @staticmethod
    def _public(record: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in record.items() if k != "fingerprint"}
