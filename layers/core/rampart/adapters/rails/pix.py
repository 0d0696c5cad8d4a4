"""The ``pix`` rail over its provider's HTTP API (modelled on Avenia, BRLA's provider): the same
code for the twin's world (``http://127.0.0.1:<port>``) and a real base URL.

    rail = PixRail("http://127.0.0.1:8545", api_key="pixk_…", webhook_secret="whsec_…")
    charge = rail.create_charge(ChargeRequest(reference=ramp_id, amount=Decimal("100.00"), ...))
    mint = rail.request_mint(MintRequest(key="ramp:mint:1", address="0x…", amount=..., payment_id=...))

The API (docs/world.md): ``POST /pix/v1/charges``, ``GET /pix/v1/charges/{id}``, ``POST
/pix/v1/charges/{id}/cancel``, ``POST /pix/v1/mints``, ``GET /pix/v1/mints/{key}``, ``POST
/pix/v1/payouts``, ``GET /pix/v1/payouts/{key}``, ``POST /pix/v1/refunds``, ``GET
/pix/v1/refunds/{key}``; ``Authorization: Bearer <api key>``; refusals as ``{"error": {"code",
"message", "field"?}}``. HTTP with the standard library (no SDK to load).

Errors: a refused connection, a 5xx or a 429 → :class:`RailUnavailable` (nothing happened); a
timeout or a connection closed before the reply → :class:`RailTimeout` (it may have happened:
retry with the same key); any other 4xx → :class:`RailRejected` with the provider's code and field.
"""

from __future__ import annotations

import http.client
import json
import socket
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from rampart.core.money import format_amount
from rampart.ramps.rails import (
    Charge,
    ChargeRequest,
    Mint,
    MintRequest,
    Payout,
    PayoutRequest,
    RailRejected,
    RailTimeout,
    RailUnavailable,
    Refund,
    RefundRequest,
    WebhookRejected,
)

if TYPE_CHECKING:
    from rampart.rails.events import RailEvent

DEFAULT_TIMEOUT = 10.0


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class PixRail:
    name = "pix"

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str,
        webhook_secret: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,  # not money: seconds
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.webhook_secret = webhook_secret
        self.timeout = timeout

    # -- HTTP ----------------------------------------------------------------------------------

    def _call(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body, separators=(",", ":")).encode()
        request = urllib.request.Request(  # noqa: S310 - the provider's configured URL
            f"{self.base_url}/pix/v1{path}",
            data=data,
            method=method,
            headers={
                "Authorization": f"Bearer {self.api_key}",
                "Accept": "application/json",
                **({"Content-Type": "application/json"} if data is not None else {}),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as reply:  # noqa: S310
                status, raw = int(reply.status), reply.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        except TimeoutError as exc:
            raise RailTimeout(f"pix {method} {path}: no reply within {self.timeout}s") from exc
        except (http.client.RemoteDisconnected, ConnectionResetError) as exc:
            raise RailTimeout(f"pix {method} {path}: the connection closed before the reply") from exc
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, (TimeoutError, socket.timeout)):
                raise RailTimeout(f"pix {method} {path}: no reply within {self.timeout}s") from exc
            raise RailUnavailable(f"pix {method} {path}: {exc.reason}") from exc
        except OSError as exc:
            raise RailUnavailable(f"pix {method} {path}: {exc}") from exc
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        if status >= 500 or status == 429:
            raise RailUnavailable(f"pix {method} {path}: HTTP {status}", status=status)
        return status, parsed

    def _ok(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> dict[str, Any]:
        status, parsed = self._call(method, path, body)
        if 200 <= status < 300 and isinstance(parsed, dict):
            return parsed
        error = parsed.get("error") if isinstance(parsed, dict) else None
        error = error if isinstance(error, dict) else {}
        code = str(error.get("code") or f"http-{status}")
        message = str(error.get("message") or f"HTTP {status}")
        field = error.get("field")
        raise RailRejected(
            f"pix {method} {path}: {code}: {message}", status=status, code=code, field=str(field) if field else None
        )

    def _found(self, method: str, path: str) -> dict[str, Any] | None:
        try:
            return self._ok(method, path)
        except RailRejected as exc:
            if exc.status == 404:
                return None
            raise

    # -- charges -------------------------------------------------------------------------------

    @staticmethod
    def _charge(body: dict[str, Any]) -> Charge:
        return Charge(
            charge_id=body["charge_id"],
            reference=body["reference"],
            amount=Decimal(body["amount"]),
            currency=body["currency"],
            status=body["status"],
            expires_at=_moment(body["expires_at"]),
            payer_tax_id=body.get("payer_tax_id"),
            br_code=body.get("br_code"),
        )

    def create_charge(self, request: ChargeRequest) -> Charge:
        body = {
            "reference": request.reference,
            "amount": format_amount(request.amount, request.currency),
            "currency": request.currency,
            "payer_tax_id": request.payer_tax_id,
            "expires_at": request.expires_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        }
        return self._charge(self._ok("POST", "/charges", body))

    def get_charge(self, charge_id: str) -> Charge | None:
        found = self._found("GET", f"/charges/{urllib.parse.quote(charge_id, safe='')}")
        return None if found is None else self._charge(found)

    def charge_payments(self, charge_id: str) -> list[Mapping[str, Any]]:
        items = self._ok("GET", f"/charges/{urllib.parse.quote(charge_id, safe='')}/payments").get("items")
        if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
            raise RailUnavailable("the provider answered its charge's payments with something else than a list")
        return list(items)

    def cancel_charge(self, charge_id: str) -> Charge:
        return self._charge(self._ok("POST", f"/charges/{urllib.parse.quote(charge_id, safe='')}/cancel", {}))

    # -- mints ---------------------------------------------------------------------------------

    @staticmethod
    def _mint(body: dict[str, Any]) -> Mint:
        return Mint(
            key=body["key"],
            mint_id=body["mint_id"],
            address=body["address"],
            amount=Decimal(body["amount"]),
            currency=body["currency"],
            payment_id=body["payment_id"],
            status=body["status"],
            tx_hash=body.get("tx_hash"),
            reason=body.get("reason"),
        )

    def request_mint(self, request: MintRequest) -> Mint:
        body = {
            "key": request.key,
            "address": request.address,
            "amount": format_amount(request.amount, "BRLA"),
            "payment_id": request.payment_id,
        }
        return self._mint(self._ok("POST", "/mints", body))

    def get_mint(self, key: str) -> Mint | None:
        found = self._found("GET", f"/mints/{urllib.parse.quote(key, safe='')}")
        return None if found is None else self._mint(found)

    # -- payouts -------------------------------------------------------------------------------

    @staticmethod
    def _payout(body: dict[str, Any]) -> Payout:
        return Payout(
            key=body["key"],
            payout_id=body["id"],
            amount=Decimal(body["amount"]),
            currency=body["currency"],
            destination={k: body[k] for k in ("pix_key", "tax_id", "name") if body.get(k) is not None},
            status=body["status"],
            tx_hash=body.get("burn_tx_hash"),
            reason=body.get("reason"),
            extra={"brla_amount": body.get("brla_amount"), "reference": body.get("reference")},
        )

    def request_payout(self, request: PayoutRequest) -> Payout:
        destination = request.destination
        missing = [name for name in ("pix_key", "tax_id", "name") if not destination.get(name)]
        if missing:
            raise RailRejected(f"a pix payout needs {', '.join(missing)}", code="invalid-field", field=missing[0])
        body: dict[str, Any] = {
            "key": request.key,
            "pix_key": destination["pix_key"],
            "tax_id": destination["tax_id"],
            "name": destination["name"],
            "amount": format_amount(request.amount, request.currency),
        }
        if request.token_amount is not None:
            body["brla_amount"] = format_amount(request.token_amount, "BRLA")
        if request.reference is not None:
            body["reference"] = request.reference
        return self._payout(self._ok("POST", "/payouts", body))

    def get_payout(self, key: str) -> Payout | None:
        found = self._found("GET", f"/payouts/{urllib.parse.quote(key, safe='')}")
        return None if found is None else self._payout(found)

    # -- refunds -------------------------------------------------------------------------------

    @staticmethod
    def _refund(body: dict[str, Any]) -> Refund:
        burnt = body.get("brla_amount")
        return Refund(
            key=body["key"],
            refund_id=body["id"],
            payment_id=body["payment_id"],
            amount=Decimal(body["amount"]),
            currency=body["currency"],
            status=body["status"],
            tx_hash=body.get("burn_tx_hash"),
            reason=body.get("reason"),
            token_amount=Decimal(burnt) if burnt is not None else None,
        )

    def request_refund(self, request: RefundRequest) -> Refund:
        return self._refund(self._ok("POST", "/refunds", {"key": request.key, "payment_id": request.payment_id}))

    def get_refund(self, key: str) -> Refund | None:
        found = self._found("GET", f"/refunds/{urllib.parse.quote(key, safe='')}")
        return None if found is None else self._refund(found)

    # -- webhooks ------------------------------------------------------------------------------

    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
        """The JSON payload of a delivery signed with one of ``webhook_secret`` (space-separated,
        newest first) within 5 minutes of now; :class:`WebhookRejected` otherwise."""
        from rampart.adapters.webhooks.standard import StandardWebhooksVerifier, WebhookSecretError
        from rampart.webhooks.errors import InvalidSignature

        if not self.webhook_secret:
            raise WebhookRejected("no webhook secret is configured for pix")
        try:
            StandardWebhooksVerifier.from_secret(self.webhook_secret).verify(headers, body)
        except (InvalidSignature, WebhookSecretError) as exc:
            raise WebhookRejected(f"pix webhook refused: {exc}", code=getattr(exc, "reason", "secret")) from exc
        try:
            payload = json.loads(body)
        except ValueError as exc:
            raise WebhookRejected("pix webhook body is not JSON", code="malformed") from exc
        if not isinstance(payload, dict):
            raise WebhookRejected("pix webhook body is not a JSON object", code="malformed")
        return payload

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> RailEvent:
        """A verified delivery as its typed event (:func:`rampart.rails.events.parse_event`)."""
        from rampart.rails.events import MalformedEvent, parse_event

        payload = self.verify_webhook(headers, body)
        try:
            return parse_event(payload)
        except MalformedEvent as exc:
            raise WebhookRejected(
                f"pix webhook malformed: {exc}", code="malformed", field=getattr(exc, "field", None)
            ) from exc
