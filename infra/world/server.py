"""The world's HTTP server: one port for everything the backend and a client reach.

- ``GET /health`` → ``{"status": "ok", ...}`` once the world is up.
- ``POST /rpc/base`` → EVM JSON-RPC into :class:`~infra.world.base.BaseChain` (the ``base`` script).
- ``/pix/v1/…`` → the provider's API (:mod:`infra.world.pix`; bearer API key; the ``pix`` script).
- ``/_sim/…`` → API.md's "Twin only: simulators" for ``base`` and ``pix`` (the twin forwards its own
  ``/_sim/…`` here unchanged); errors as problem+json, as the twin's.

A scripted hang performs the call, then holds the connection ``hang_seconds`` and closes it without
a reply.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from infra.world.pix import Chain, PixError, PixRail
from infra.world.scripts import PROVIDERS, ScriptError, Scripts
from infra.world.store import kept_secret
from infra.world.webhooks import Outbox
from rampart.core.errors import DomainError
from rampart.core.money import format_units, scale_of, to_units

MAX_BODY = 1_000_000
CHAIN_DECIMALS = {"ETH": 18, "USDC": 6, "BRLA": 18}  # base's token decimals (API.md)
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")


class Hang(Exception):
    """The call took effect; its reply must never come."""


@dataclass
class Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"


def problem(status: int, slug: str, detail: str, *, instance: str, field_: str | None = None) -> Reply:
    body: dict[str, Any] = {
        "type": f"https://rampart.dev/problems/{slug}",
        "title": slug.replace("-", " ").capitalize(),
        "status": status,
        "detail": detail,
        "instance": instance,
    }
    if field_ is not None:
        body["errors"] = [{"field": field_ if field_.startswith("/") else f"/{field_}", "message": detail}]
    return Reply(status, body, content_type="application/problem+json")


class World:
    """Everything behind the server: the chain, the rail, the scripts, the webhook outbox."""

    def __init__(
        self,
        data_dir: Path,
        *,
        webhook_url: str | None = None,
        webhook_secret: Callable[[], str | None] | None = None,
        chain: Chain | None = None,
        webhook_base_delay: float = 1.0,
        webhook_max_delay: float = 60.0,
        hang_seconds: float = 60.0,
    ) -> None:
        self.data_dir = data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        self.webhook_url = webhook_url
        self.hang_seconds = hang_seconds
        self.scripts = Scripts()
        self.dropped: list[dict[str, Any]] = []  # webhooks a script dropped (the last 50), for /_sim
        self.pix_api_key = kept_secret(data_dir / "pix" / "api-key", lambda: "pixk_" + _token())
        default_secret = kept_secret(data_dir / "webhook-secret", lambda: "whsec_" + _b64_token())
        self._webhook_secret = webhook_secret or (lambda: default_secret)
        self.outbox = Outbox(
            data_dir / "webhooks" / "outbox.json",
            url=lambda: self.webhook_url,
            secret=lambda: self._webhook_secret(),  # late-bound: /_sim/world/webhook may change it
            base_delay=webhook_base_delay,
            max_delay=webhook_max_delay,
        )
        if chain is None:
            from infra.world.base import BaseChain

            chain = BaseChain(data_dir / "base")
        self.chain: Any = chain
        self.pix = PixRail(
            data_dir / "pix",
            chain=lambda: self.chain,
            emit=self._emit_pix,
            never_confirm=lambda operation, reference: self.scripts.take_never_confirm(
                "pix", {"operation": operation, "reference": reference}
            ),
        )

    def _emit_pix(self, event_type: str, data: dict[str, Any]) -> None:
        """Queue a webhook of the rail, unless the script drops it (never sent) or doubles it."""
        facts = _webhook_facts(event_type, data)
        if self.scripts.take_drop("pix", facts):
            self.dropped.append({"type": event_type, **facts})
            del self.dropped[:-50]
            return
        self.outbox.emit(event_type, data, copies=2 if self.scripts.take_duplicate("pix", facts) else 1)

    def start(self) -> None:
        self.outbox.start()

    def stop(self) -> None:
        self.outbox.stop()
        self.pix.save()
        save = getattr(self.chain, "save", None)
        if callable(save):
            save()

    # -- dispatch ---------------------------------------------------------------------------------

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Reply:
        split = urlsplit(target)
        path = unquote(split.path)
        query = {k: v[-1] for k, v in parse_qs(split.query).items()}
        if path == "/health" and method == "GET":
            return Reply(200, {"status": "ok", "providers": list(PROVIDERS)})
        if path == "/rpc/base":
            if method != "POST":
                return Reply(405, {"error": "POST JSON-RPC here"})
            return self._rpc(body)
        if path.startswith("/pix/v1/"):
            return self._pix(method, path, query, headers, body)
        if path.startswith("/_sim/"):
            try:
                return self._sim(method, path, query, body)
            except ScriptError as exc:
                return problem(422, "validation-error", str(exc), instance=path, field_=exc.field)
            except PixError as exc:
                slug = "validation-error" if exc.code == "invalid-field" else exc.code
                return problem(exc.status, slug, exc.message, instance=path, field_=exc.field)
        return problem(404, "not-found", f"no route for {path}", instance=path)

    def _script_gate(self, provider: str, *, submits: bool = False, facts: Any = None) -> tuple[str | None, bool]:
        """What the provider's script does to this call (``facts`` describe it for a ``match``)."""
        delay = self.scripts.delay(provider, facts)
        if delay > 0:
            time.sleep(float(delay))  # not money: seconds
        return self.scripts.take_call(provider, submits=submits, facts=facts)

    # -- base: JSON-RPC ---------------------------------------------------------------------------

    def _rpc(self, body: bytes) -> Reply:
        try:
            request = json.loads(body)
        except ValueError:
            return Reply(200, {"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "parse error"}})
        calls = request if isinstance(request, list) else [request]
        submissions = [c for c in calls if isinstance(c, dict) and c.get("method") == "eth_sendRawTransaction"]
        facts = [_submission_facts(c) for c in submissions]
        failure, hang = self._script_gate("base", submits=bool(submissions), facts=facts)
        first_id = calls[0].get("id") if calls and isinstance(calls[0], dict) else None
        if failure == "unavailable":
            error = {"code": -32603, "message": "base node unavailable (scripted)"}
            return Reply(503, {"jsonrpc": "2.0", "id": first_id, "error": error}, {"Retry-After": "1"})
        if failure is not None:
            message = "execution reverted (scripted)" if failure == "revert" else "transaction rejected (scripted)"
            code = 3 if failure == "revert" else -32003
            errors = [
                {
                    "jsonrpc": "2.0",
                    "id": c.get("id") if isinstance(c, dict) else None,
                    "error": {"code": code, "message": message},
                }
                for c in calls
            ]
            return Reply(200, errors if isinstance(request, list) else errors[0])
        result = self.chain.rpc(request)
        if hang:
            raise Hang()
        return Reply(200, result)

    # -- pix: the provider's API -----------------------------------------------------------------

    def _pix(self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes) -> Reply:
        given = headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {self.pix_api_key}".encode()):
            return Reply(401, {"error": {"code": "unauthorized", "message": "a valid Bearer API key is required"}})
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = ValueError  # answered below, once the script had its say
        failure, hang = self._script_gate("pix", facts=self._pix_facts(method, path, query, parsed))
        if failure == "unavailable":
            error = {"code": "unavailable", "message": "the provider is unavailable (scripted)"}
            return Reply(503, {"error": error}, {"Retry-After": "1"})
        if failure is not None:
            return Reply(422, {"error": {"code": "rejected", "message": "the provider refused the request (scripted)"}})
        if parsed is ValueError:
            return Reply(400, {"error": {"code": "malformed-request", "message": "the body is not valid JSON"}})
        try:
            reply = self._pix_route(method, path.removeprefix("/pix/v1"), query, parsed)
        except PixError as exc:
            reply = Reply(exc.status, exc.body())
        if hang:
            raise Hang()
        return reply

    def _pix_facts(self, method: str, path: str, query: dict[str, str], body: Any) -> dict[str, Any] | None:
        """A pix API call as a script's ``match`` sees it: ``{operation, reference}`` (None: neither)."""
        parts = [p for p in path.removeprefix("/pix/v1").split("/") if p]
        given = body if isinstance(body, dict) else {}
        if not parts or parts[0] not in ("charges", "mints", "payouts", "refunds"):
            return None
        operation = parts[0].removesuffix("s")
        reference: Any = None
        if operation == "charge":
            if len(parts) == 1:
                reference = given.get("reference") if method == "POST" else query.get("reference")
            else:
                reference = self.pix.charges.get(parts[1], {}).get("reference")
        else:
            key = given.get("key") if len(parts) == 1 else parts[1]
            reference = given.get("reference") if operation == "payout" else None
            if reference is None and isinstance(key, str):
                reference = key.split(":", 1)[0]
        return {"operation": operation, "reference": reference if isinstance(reference, str) else None}

    def _pix_route(self, method: str, path: str, query: dict[str, str], body: Any) -> Reply:
        parts = [p for p in path.split("/") if p]
        rail = self.pix
        match method, parts:
            case "POST", ["charges"]:
                return Reply(*rail.create_charge(body))
            case "GET", ["charges"]:
                reference = query.get("reference")
                if not reference:
                    raise PixError(422, "invalid-field", "reference is required", "reference")
                return Reply(200, {"items": rail.charges_of(reference)})
            case "GET", ["charges", charge_id]:
                return Reply(200, rail.get_charge(charge_id))
            case "GET", ["charges", charge_id, "payments"]:
                return Reply(200, {"items": rail.charge_payments(charge_id)})
            case "POST", ["charges", charge_id, "cancel"]:
                return Reply(200, rail.cancel_charge(charge_id))
            case "POST", ["mints"]:
                return Reply(*rail.create_mint(body))
            case "GET", ["mints", key]:
                return Reply(200, rail.get_mint(key))
            case "POST", ["payouts"]:
                return Reply(*rail.create_payout(body))
            case "GET", ["payouts", key]:
                return Reply(200, rail.get_payout(key))
            case "POST", ["refunds"]:
                return Reply(*rail.create_refund(body))
            case "GET", ["refunds", key]:
                return Reply(200, rail.get_refund(key))
        raise PixError(404, "not-found", f"no {method} {path}")

    # -- /_sim -----------------------------------------------------------------------------------

    def _sim(self, method: str, path: str, query: dict[str, str], body: bytes) -> Reply:
        parts = [p for p in path.split("/") if p][1:]
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            return problem(400, "malformed-request", "the body is not valid JSON", instance=path)
        match method, parts:
            case "POST", ["providers", name, "script"]:
                if name not in PROVIDERS:
                    return problem(404, "not-found", f"this world simulates no provider {name!r}", instance=path)
                return Reply(200, {"provider": name, "script": self.scripts.set(name, parsed)})
            case "GET", ["providers", name, "script"] if name in PROVIDERS:
                return Reply(200, {"provider": name, "script": self.scripts.get(name)})
            case "POST", ["base", "faucet"]:
                return self._faucet(path, parsed)
            case "GET", ["base", "balances", address]:
                return self._balances(path, address)
            case "POST", ["pix", "payments"]:
                return Reply(200, self.pix.pay(parsed))
            case "GET", ["pix", "payouts"]:
                return Reply(200, {"items": self.pix.paid_out(query.get("ramp_id"))})
            case "GET", ["pix", "charges"] if query.get("ramp_id"):
                return Reply(200, {"items": self.pix.charges_of(query["ramp_id"])})
            case "GET", ["webhooks"]:
                return Reply(
                    200,
                    {
                        "pending": self.outbox.pending(),
                        "delivered": self.outbox.delivered[-50:],
                        "dropped": list(self.dropped),
                    },
                )
            case "POST", ["world", "webhook"]:
                return self._attach_webhook(path, parsed)
            case "GET", ["world"]:
                return Reply(200, self.describe())
        return problem(404, "not-found", f"no {method} on {path} in this world", instance=path)

    def _attach_webhook(self, path: str, body: Any) -> Reply:
        """``{"url", "secret"}``: where provider webhooks go from now on, signed with that secret. A
        backend twin that attaches to a world it did not start (``RAMPART_WORLD_URL``) sends it at
        each start, so a restarted twin gets its webhooks, including those queued while it was down.
        Kept in memory only: the twin tells a restarted world again."""
        if not isinstance(body, dict):
            return problem(400, "malformed-request", "the body must be a JSON object", instance=path)
        url, secret = body.get("url"), body.get("secret")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            return problem(422, "validation-error", "url must be an http(s) URL", instance=path, field_="url")
        if not isinstance(secret, str) or not secret.startswith("whsec_"):
            return problem(422, "validation-error", "secret must be a whsec_ secret", instance=path, field_="secret")
        self.webhook_url = url
        self._webhook_secret = lambda: secret
        return Reply(200, {"webhook_url": url})

    def _faucet(self, path: str, body: Any) -> Reply:
        if not isinstance(body, dict):
            return problem(400, "malformed-request", "the body must be a JSON object", instance=path)
        address, asset = body.get("address"), body.get("asset")
        if not isinstance(address, str) or not _ADDRESS.match(address):
            return problem(
                422, "validation-error", "address must be a 20-byte hex address", instance=path, field_="address"
            )
        if asset not in CHAIN_DECIMALS:
            return problem(
                422, "validation-error", f"asset must be one of {sorted(CHAIN_DECIMALS)}", instance=path, field_="asset"
            )
        try:
            given: Any = body.get("amount")  # to_units refuses anything but a decimal string
            units = to_units(given, asset)
        except DomainError as exc:
            return problem(422, "validation-error", f"amount: {exc}", instance=path, field_="amount")
        if units % 10 ** (scale_of(asset) - CHAIN_DECIMALS[asset]):
            return problem(
                422,
                "validation-error",
                f"{asset} on base has {CHAIN_DECIMALS[asset]} decimals",
                instance=path,
                field_="amount",
            )
        amount = Decimal(format_units(units, asset))
        try:
            tx_hash = self.chain.faucet(address, asset, amount)
        except ValueError as exc:
            return problem(422, "validation-error", str(exc), instance=path, field_="address")
        return Reply(
            200, {"address": address, "asset": asset, "amount": format_units(units, asset), "tx_hash": tx_hash}
        )

    def _balances(self, path: str, address: str) -> Reply:
        if not _ADDRESS.match(address):
            return problem(
                422, "validation-error", "address must be a 20-byte hex address", instance=path, field_="address"
            )
        try:
            found = self.chain.balances(address)
        except ValueError as exc:
            return problem(422, "validation-error", str(exc), instance=path, field_="address")
        balances = {
            asset: format_units(to_units(Decimal(amount), asset, allow_zero=True), asset)
            for asset, amount in found["balances"].items()
        }
        return Reply(200, {"address": found["address"], "nonce": found["nonce"], "balances": balances})

    def describe(self) -> dict[str, Any]:
        described: dict[str, Any] = {"webhook_url": self.webhook_url, "providers": list(PROVIDERS)}
        with contextlib.suppress(AttributeError):  # a chain without these (a test's fake)
            described["base"] = {
                "chain_id": self.chain.chain_id,
                "addresses": self.chain.addresses(),
                "platform_accounts": self.chain.platform_accounts(),
            }
        return described


_TRANSFER, _TRANSFER_FROM = "a9059cbb", "23b872dd"  # ERC-20 transfer / transferFrom selectors


def _submission_facts(call: dict[str, Any]) -> dict[str, Any] | None:
    """An ``eth_sendRawTransaction`` call as a ``base`` script's ``match`` sees it: ``{from, to,
    nonce, recipient}`` of its transaction (None: not a signed transaction)."""
    from rampart.adapters.chains.evm.binding import decode_signed
    from rampart.ramps.chains import ChainError

    params = call.get("params")
    raw = params[0] if isinstance(params, list) and params else None
    try:
        tx = decode_signed(raw)
    except (ChainError, ValueError, TypeError):
        return None
    data = str(tx.get("data") or "0x")[2:].lower()
    words = data[8:]
    recipient = None
    if data[:8] == _TRANSFER and len(words) >= 64:
        recipient = "0x" + words[24:64]
    elif data[:8] == _TRANSFER_FROM and len(words) >= 128:
        recipient = "0x" + words[88:128]
    return {"from": tx["signer"], "to": tx.get("to"), "nonce": tx.get("nonce"), "recipient": recipient}


def _webhook_facts(event_type: str, data: dict[str, Any]) -> dict[str, Any]:
    """A webhook as a ``pix`` script's ``match`` sees it: the operation its type belongs to
    (``charge.*`` the charge's) and its reference (or the ramp id its ``key`` begins with)."""
    kind = event_type.split(".", 1)[0]
    operation = kind if kind in ("mint", "payout", "refund") else "charge"
    reference = data.get("reference")
    if not isinstance(reference, str) and isinstance(data.get("key"), str):
        reference = str(data["key"]).split(":", 1)[0]
    return {"operation": operation, "reference": reference}


def _token() -> str:
    import secrets

    return secrets.token_urlsafe(32)


def _b64_token() -> str:
    import base64
    import secrets

    return base64.b64encode(secrets.token_bytes(32)).decode()


class _Handler(BaseHTTPRequestHandler):
    server: WorldServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the world logs nothing per request
        pass

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self._send(Reply(413, {"error": "body too large"}))
            return
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        world = self.server.world
        try:
            reply = world.handle(self.command, self.path, headers, body)
        except Hang:
            time.sleep(world.hang_seconds)
            self.close_connection = True
            return
        except Exception as exc:  # a fault of the world itself: a 500, never a dropped connection
            reply = Reply(500, {"error": {"code": "internal", "message": f"{type(exc).__name__}: {exc}"}})
        self._send(reply)

    def _send(self, reply: Reply) -> None:
        payload = b"" if reply.body is None else json.dumps(reply.body, separators=(",", ":")).encode()
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve


class WorldServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, world: World, port: int = 0, host: str = "127.0.0.1") -> None:
        self.world = world
        super().__init__((host, port), _Handler)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        self.world.start()
        self._thread = threading.Thread(target=self.serve_forever, name="world-http", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.world.stop()
