"""``make demo``: both BRL corridors driven against a running twin the way a client drives them —
keys made here, blueprints signed here with eth_account, the PIX payment made through ``/_sim`` —
with each ramp's phases shown live as they advance, then the amounts, the fees and the
reconciliation. Exits 1 if a corridor does not complete.

``RAMPART_URL`` (default http://127.0.0.1:3000) names the twin; when nothing answers there, the
demo starts one (``make run``'s, on its ``.data``) and stops it afterwards.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import requests

DEFAULT_URL = "http://127.0.0.1:3000"
PAYER = {"tax_id": "529.982.247-25", "name": "Ana Pagadora"}
PAYEE = {"pix_key": "ana@example.com", "tax_id": "52998224725", "name": "Ana Recebedora"}
AMOUNTS = {"on": "250.00", "off": "40"}
TIMEOUT = 120.0  # not money: seconds a ramp may take

Say = Callable[[str], None]


class DemoFailed(RuntimeError):
    pass


class Client:
    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self.http = requests.Session()

    def call(self, method: str, path: str, body: Any = None, *, status: int = 200, key: bool = False) -> Any:
        headers = {"Idempotency-Key": str(uuid.uuid4())} if key else {}
        reply = self.http.request(method, self.url + path, json=body, headers=headers, timeout=60)
        if reply.status_code != status:
            raise DemoFailed(f"{method} {path} answered {reply.status_code}: {reply.text[:400]}")
        return reply.json() if reply.content else None

    def login(self, email: str, password: str) -> None:
        token = self.call("POST", "/v1/auth/login", {"email": email, "password": password})["access_token"]
        self.http.headers["Authorization"] = f"Bearer {token}"


def _signed(ramp: dict[str, Any], keys: dict[str, Any]) -> list[dict[str, Any]]:
    from eth_account import Account

    items = []
    for tx in ramp["unsigned_txs"]:
        raw = Account.sign_transaction(tx["tx_data"], keys[tx["signer"]].key).raw_transaction
        items.append({**{k: tx[k] for k in ("network", "phase", "nonce", "signer")}, "tx_data": "0x" + raw.hex()})
    return items


def _bar(done: int, total: int, width: int = 24) -> str:
    filled = round(width * done / total)
    return "[" + "#" * filled + "." * (width - filled) + f"] {done}/{total}"


@dataclass
class Prepared:
    """A ramp ready to start: its quote, the ramp as registered and signed, the registration's body."""

    quote: dict[str, Any]
    ramp: dict[str, Any]
    body: dict[str, Any]


def prepare(client: Client, kind: str, corridor: dict[str, Any], say: Say = lambda _: None) -> Prepared:
    """A quote, a registration with keys made here (an off-ramp's wallet funded through ``/_sim``),
    every blueprint signed here and submitted."""
    from eth_account import Account

    sim = Client(client.url)
    quote = client.call(
        "POST",
        "/v1/quotes",
        {
            "ramp_type": kind,
            "from": corridor["from"],
            "to": corridor["to"],
            "input_amount": AMOUNTS[kind],
            "input_currency": corridor["input_currency"],
            "output_currency": corridor["output_currency"],
        },
        status=201,
    )
    fees = quote["fees"]
    say(
        f"  quote {quote['id']}: {quote['input_amount']} {quote['input_currency']} → "
        f"{quote['output_amount']} {quote['output_currency']} at {quote['rate']}; fees {fees['total']} "
        f"{fees['currency']} (network {fees['network']}, anchor {fees['anchor']}, platform {fees['platform']}, "
        f"partner {fees['partner']})"
    )
    ephemeral = Account.create()
    keys = {ephemeral.address: ephemeral}
    accounts = [{"network": "base", "address": ephemeral.address, "role": "ephemeral"}]
    body: dict[str, Any] = {"quote_id": quote["id"], "signing_accounts": accounts}
    if kind == "on":
        body |= {"destination": {"address": Account.create().address}, "payer": PAYER}
    else:
        user = Account.create()
        keys[user.address] = user
        accounts.append({"network": "base", "address": user.address, "role": "user"})
        body["destination"] = PAYEE
        for asset, amount in (("USDC", quote["input_amount"]), ("ETH", "0.01")):
            sim.call("POST", "/_sim/base/faucet", {"address": user.address, "asset": asset, "amount": amount})
        say(f"  the user's wallet {user.address} holds {quote['input_amount']} USDC (and gas)")
    ramp = client.call("POST", "/v1/ramps", body, status=201, key=True)
    say(f"  ramp {ramp['id']} registered: {len(ramp['unsigned_txs'])} blueprints to sign")
    ramp = client.call("POST", f"/v1/ramps/{ramp['id']}/presigned", {"presigned_txs": _signed(ramp, keys)})
    say(f"  signed here, submitted: {ramp['signed']}/{len(ramp['unsigned_txs'])}")
    return Prepared(quote, ramp, body)


def run_ramp(client: Client, kind: str, corridor: dict[str, Any], say: Say) -> dict[str, Any]:
    """One ramp of ``kind`` from quote to its end, its phases shown as they come."""
    sim = Client(client.url)
    prepared = prepare(client, kind, corridor, say)
    quote, ramp, body = prepared.quote, prepared.ramp, prepared.body
    started = client.call("POST", f"/v1/ramps/{ramp['id']}/start", status=202, key=True)
    say(f"  started: {started['status']} in {started['phase']}")
    if kind == "on":
        instructions = ramp["payment_instructions"]
        say(
            f"  paying {instructions['amount']} {instructions['currency']} by PIX "
            f"(br_code {instructions['br_code'][:24]}…)"
        )
        sim.call("POST", "/_sim/pix/payments", {"ramp_id": ramp["id"]})
    phases = corridor["phases"]
    seen: list[str] = []
    deadline = time.monotonic() + TIMEOUT
    while True:
        shown = client.call("GET", f"/v1/ramps/{ramp['id']}")
        for entry in shown["history"][len(seen) :]:
            seen.append(entry["phase"])
            done = phases.index(entry["phase"]) + 1 if entry["phase"] in phases else len(phases)
            say(f"    {_bar(done, len(phases))} {entry['phase']}")
        if shown["status"] not in ("initial", "running"):
            break
        if time.monotonic() > deadline:
            raise DemoFailed(f"{ramp['id']} did not end within {TIMEOUT:.0f}s (phase {shown['phase']})")
        time.sleep(0.25)
    if kind == "on":
        received = sim.call("GET", f"/_sim/base/balances/{body['destination']['address']}")["balances"]["USDC"]
        say(f"  {shown['status']}: the wallet received {received} USDC (quoted {quote['output_amount']})")
    else:
        payouts = sim.call("GET", f"/_sim/pix/payouts?ramp_id={ramp['id']}")["items"]
        paid = ", ".join(f"{p['amount']} {p['currency']} to {p['pix_key']} ({p['status']})" for p in payouts)
        say(f"  {shown['status']}: PIX paid out {paid or 'nothing'} (quoted {quote['output_amount']} BRL)")
    for error in shown["errors"]:
        say(f"  error in {error['phase']}: {error['message']}")
    return {"ramp": shown, "quote": quote}


def run_demo(url: str, say: Say = print) -> bool:
    """Both BRL corridors against the twin at ``url``; True when both completed and the ledger
    agrees with the chain."""
    client = Client(url)
    email = f"demo-{uuid.uuid4().hex[:8]}@example.com"
    client.call(
        "POST", "/v1/auth/register", {"email": email, "password": "demo password 123", "role": "user"}, status=201
    )
    client.login(email, "demo password 123")
    corridors = {c["ramp_type"]: c for c in Client(url).call("GET", "/v1/corridors")["items"]}
    outcomes = {}
    for kind in ("on", "off"):
        corridor = corridors[kind]
        say(
            f"BRL {kind}-ramp: {corridor['from']} {corridor['input_currency']} → "
            f"{corridor['to']} {corridor['output_currency']}"
        )
        started = time.monotonic()
        outcomes[kind] = run_ramp(client, kind, corridor, say)
        say(f"  {time.monotonic() - started:.1f} s from quote to {outcomes[kind]['ramp']['status']}\n")
    admin = Client(url)
    admin.login(
        os.environ.get("RAMPART_ADMIN_EMAIL", "admin@rampart.example"),
        os.environ.get("RAMPART_ADMIN_PASSWORD", "rampart-admin-local"),
    )
    report = admin.call("GET", "/v1/admin/reconciliation")
    say(f"reconciliation: {report['checked']} mirrored accounts checked, {len(report['differences'])} differences")
    for difference in report["differences"]:
        say(
            f"  {difference['network']} {difference['address']} {difference['asset']}: "
            f"ledger {difference['ledger']}, chain {difference['actual']}"
        )
    completed = all(o["ramp"]["status"] == "completed" for o in outcomes.values())
    fees = sum(
        (Decimal(o["quote"]["fees"]["total"]) for o in outcomes.values() if o["quote"]["fees"]["currency"] == "BRL"),
        Decimal(0),
    )
    say(f"fees kept: {fees} BRL on the on-ramp, {outcomes['off']['quote']['fees']['total']} USDC on the off-ramp")
    return completed and not report["differences"]


def main() -> int:
    url = os.environ.get("RAMPART_URL", DEFAULT_URL).rstrip("/")
    from infra.local.child import healthy

    if healthy(url):
        return 0 if run_demo(url) else 1
    print(f"nothing answers at {url}: starting a twin (make run's, on .data) for the demo")
    from infra.local.child import child_twin
    from infra.local.postgres import DATA_DIR, embedded_url

    state = DATA_DIR / "twin"
    state.mkdir(parents=True, exist_ok=True)
    with child_twin(os.environ.get("DATABASE_URL") or embedded_url(), state, timeout=180) as started:
        print(f"twin at {started}")
        return 0 if run_demo(started) else 1


if __name__ == "__main__":
    sys.exit(main())
