"""The dedicated recording run of tests/infra/test_iam_coverage.py, in a process of its own:

    python -m tests.infra.iam_run --database-url URL --state-dir DIR --out calls.json

An in-process twin of Rampart's manifest (with its world: base and the PIX provider), driven
through :func:`representative_requests` while :mod:`tests.support.iam` records every AWS call of
every function (each invocation starting from a container's cold caches). Its own process,
because a twin leaves process-wide state behind (the handler modules' idempotency stores,
settings, moto) that would leak into the tests sharing a worker. Writes ``{"calls": [...],
"invoked": [...]}``."""

from __future__ import annotations

import argparse
import json
import os
import uuid
from pathlib import Path
from typing import Any

from infra import manifest
from tests.e2e.api import Client, admin, fund, new_user
from tests.support import iam

PASSWORD = "correct horse battery staple"
WEBHOOK_SECRET = "_webhook_secret"
# CPFs with valid check digits (the well-known test numbers), for PIX destinations and payers.
PAYEE_CPF = "529.982.247-25"
PAYER_CPF = "111.444.777-35"


def _ok(reply: Any, status: int = 200) -> Any:
    assert reply.status == status, reply
    return reply.body


def _signed(ramp: dict[str, Any], keys: dict[str, Any]) -> list[dict[str, Any]]:
    """Every blueprint of ``ramp`` signed by the key of its signer (EVM: a raw type-2 transaction)."""
    from eth_account import Account

    signed = []
    for tx in ramp["unsigned_txs"]:
        raw = Account.sign_transaction(tx["tx_data"], keys[tx["signer"].lower()].key).raw_transaction
        signed.append({**{k: tx[k] for k in ("network", "phase", "nonce", "signer")}, "tx_data": "0x" + raw.hex()})
    return signed


def _ramp(client: Client, ramp_type: str, corridor: dict[str, Any]) -> dict[str, Any]:
    """A quote and a ramp registered for it with fresh keys, every blueprint signed and submitted
    (a PIX on-ramp then carries its payment instructions: the rail's charge)."""
    from eth_account import Account

    quote = _ok(
        client.post(
            "/v1/quotes",
            {
                "ramp_type": ramp_type,
                "from": corridor["from"],
                "to": corridor["to"],
                "input_amount": corridor["min_amount"],
                "input_currency": corridor["input_currency"],
                "output_currency": corridor["output_currency"],
            },
        ),
        201,
    )
    ephemeral, user = Account.create(), Account.create()
    accounts = [{"network": "base", "address": ephemeral.address, "role": "ephemeral"}]
    if ramp_type == "on":
        destination = {"address": Account.create().address}
        payer: dict[str, str] | None = {"tax_id": PAYER_CPF, "name": "Bruna Payer"}
    else:
        accounts.append({"network": "base", "address": user.address, "role": "user"})
        destination = {"pix_key": "ana@example.com", "tax_id": PAYEE_CPF, "name": "Ana Payee"}
        payer = None
    body: dict[str, Any] = {"quote_id": quote["id"], "signing_accounts": accounts, "destination": destination}
    if payer is not None:
        body["payer"] = payer
    ramp = _ok(client.post("/v1/ramps", body, key=True), 201)
    keys = {ephemeral.address.lower(): ephemeral, user.address.lower(): user}
    if ramp_type == "off":  # the user's wallet pays the input and its own gas
        faucet = Client(client.base)
        for asset, amount in (("USDC", corridor["min_amount"]), ("ETH", "0.01")):
            _ok(faucet.post("/_sim/base/faucet", {"address": user.address, "asset": asset, "amount": amount}))
    return dict(_ok(client.post(f"/v1/ramps/{ramp['id']}/presigned", {"presigned_txs": _signed(ramp, keys)})))


def _until(database_url: str, sql: str, ramp_id: str, what: str, timeout: float = 60.0) -> None:  # not money: s
    """Wait until ``sql`` (one ``%s``: the ramp id) finds a row."""
    import time

    import psycopg

    deadline = time.monotonic() + timeout
    with psycopg.connect(database_url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            if conn.execute(sql, (ramp_id,)).fetchone():
                return
            time.sleep(0.2)  # not money: seconds
    raise AssertionError(f"{ramp_id}: {what} within {timeout:.0f}s")


def _recorded(database_url: str, ramp_id: str) -> None:
    """Wait until the rail's webhook of the ramp's payment is applied (before the ramp starts)."""
    _until(database_url, "SELECT 1 FROM rails.payments WHERE reference = %s", ramp_id, "no payment recorded")


def _parked(database_url: str, ramp_id: str) -> None:
    """Wait until the ramp's execution waits for its payment (its task token kept in ``payment``)."""
    sql = "SELECT 1 FROM ramps.ramps WHERE id = %s AND task_phase = 'payment'"
    _until(database_url, sql, ramp_id, "never waited for its payment")


def _ended(client: Client, ramp_id: str, status: str, timeout: float = 90.0) -> None:  # not money: seconds
    """Wait for the ramp's execution to end it in ``status``."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        shown = _ok(client.get(f"/v1/ramps/{ramp_id}"))
        if shown["status"] not in ("initial", "running") and (shown["status"] != "paused" or status == "paused"):
            assert shown["status"] == status, (ramp_id, shown["status"], shown["errors"])
            return
        time.sleep(0.2)
    raise AssertionError(f"{ramp_id} did not end within {timeout:.0f}s")


def ramp_requests(base: str, database_url: str, client: Client, root: Client) -> str:
    """Corridors, quotes and ramps: each corridor's ramp started (Step Functions), one cancelled,
    one left to expire (the ramp-sweep run closes its PIX charge), the lists with a signed
    cursor. Returns the id of the ramp left to expire."""
    anonymous = Client(base)
    corridors = _ok(anonymous.get("/v1/corridors"))["items"]
    by_type = {c["ramp_type"]: c for c in corridors if "pix" in (c["from"], c["to"])}
    for ramp_type, corridor in sorted(by_type.items()):  # brl_off, brl_on: each starts its state machine
        ramp = _ramp(client, ramp_type, corridor)
        _ok(anonymous.get(f"/v1/quotes/{ramp['quote_id']}"))
        _ok(client.post(f"/v1/ramps/{ramp['id']}/start", key=True), 202)
        _ok(client.get(f"/v1/ramps/{ramp['id']}"))
        if ramp_type == "on":  # paid after start: the webhook path completes the payment wait
            _ok(anonymous.post("/_sim/pix/payments", {"ramp_id": ramp["id"]}))
        _ended(client, ramp["id"], "completed")  # the worker: platform keys, the PIX key (mint, payout)
    # Paid before start: the worker completes its own wait (SendTaskSuccess) …
    early = _ramp(client, "on", by_type["on"])
    _ok(anonymous.post("/_sim/pix/payments", {"ramp_id": early["id"]}))
    _recorded(database_url, early["id"])
    _ok(client.post(f"/v1/ramps/{early['id']}/start", key=True), 202)
    _ended(client, early["id"], "completed")
    # … or fails it (SendTaskFailure) for a payment of another amount; after start, the webhook path does.
    wrong = _ramp(client, "on", by_type["on"])
    _ok(anonymous.post("/_sim/pix/payments", {"ramp_id": wrong["id"], "amount": "11.00"}))
    _recorded(database_url, wrong["id"])
    _ok(client.post(f"/v1/ramps/{wrong['id']}/start", key=True), 202)
    _ended(client, wrong["id"], "failed")
    # Paused by an outcome nobody knows (planted: the mint's), resumed by an operator: the ramps
    # function sees the execution alive (DescribeExecution) and hands it the decision (SendTaskSuccess).
    paused = _ramp(client, "on", by_type["on"])
    _ok(client.post(f"/v1/ramps/{paused['id']}/start", key=True), 202)
    import uuid

    import psycopg

    mint_key = f"{paused['id']}:mint:brla"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO journal.operations (key, ramp_id, kind, request, request_hash, status, claim_id, lease_until)"
            " VALUES (%s, %s, 'mint', '{}', %s, 'unknown', %s, now())",
            (mint_key, paused["id"], b"\x00" * 32, str(uuid.uuid4())),
        )
    _ok(anonymous.post("/_sim/pix/payments", {"ramp_id": paused["id"]}))
    _ended(client, paused["id"], "paused")
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DELETE FROM journal.operations WHERE key = %s", (mint_key,))
    _ok(root.post(f"/v1/admin/ramps/{paused['id']}/resume"))
    _ended(client, paused["id"], "completed")
    late = _ramp(client, "on", by_type["on"])
    _ok(client.post(f"/v1/ramps/{late['id']}/start", key=True), 202)
    _ok(anonymous.post("/_sim/pix/payments", {"ramp_id": late["id"], "amount": "11.00"}))
    _ended(client, late["id"], "failed")
    # Paid, its webhook never sent: the ramp-watch run finds the payment at the rail (the PIX key)
    # and completes the wait (SendTaskSuccess). Its wait is aged past the watch's grace, not waited for.
    lost = _ramp(client, "on", by_type["on"])
    _ok(client.post(f"/v1/ramps/{lost['id']}/start", key=True), 202)
    _parked(database_url, lost["id"])
    script = {"drop_webhooks": 1, "match": {"operation": "charge", "reference": lost["id"]}}
    _ok(anonymous.post("/_sim/providers/pix/script", script))
    _ok(anonymous.post("/_sim/pix/payments", {"ramp_id": lost["id"]}))
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("UPDATE ramps.ramps SET updated_at = now() - interval '30 seconds' WHERE id = %s", (lost["id"],))
    found = _ok(anonymous.post("/_twin/schedules/ramp-watch/run"))["result"]
    assert lost["id"] in found["payments_found"], found
    _ended(client, lost["id"], "completed")
    _ok(anonymous.post("/_sim/providers/pix/script", {"reset": True}))
    cancelled = _ramp(client, "on", by_type["on"])
    _ok(client.post(f"/v1/ramps/{cancelled['id']}/cancel"))  # closes its charge at the rail
    # One left unstarted past its start deadline: moved there in the database rather than waited
    # for (15 minutes), so the ramp-sweep run below expires it and closes its charge.
    stale = _ramp(client, "on", by_type["on"])
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE ramps.ramps SET start_deadline = now() - interval '1 minute' WHERE id = %s", (stale["id"],)
        )
    page = _ok(client.get("/v1/ramps?limit=1"))  # a signed cursor (cursor_key)
    _ok(client.get(f"/v1/ramps?limit=1&cursor={page['next_cursor']}"))
    _ok(root.get("/v1/admin/ramps?status=running"))
    return str(stale["id"])


def partner_plan_keys() -> dict[str, str]:
    """The keys of the twin's partner plan (moto, in this process): name → value."""
    import boto3

    from infra.local import aws

    client = boto3.client("apigateway", region_name=aws.REGION)
    (plan,) = [p for p in client.get_usage_plans()["items"] if p["name"] == aws.usage_plan_name("partner_plan")]
    return {k["name"]: k["value"] for k in client.get_usage_plan_keys(usagePlanId=plan["id"])["items"]}


def representative_requests(base: str, database_url: str) -> None:
    """One request of every kind each function serves, successes and refusals alike."""
    anonymous = Client(base)
    _ok(anonymous.get("/health"))

    # auth: register, a failed and a good login (the rate limiter), me, refresh, logout
    email = f"iam-{uuid.uuid4().hex[:10]}@example.com"
    _ok(anonymous.post("/v1/auth/register", {"email": email, "password": PASSWORD, "role": "user"}), 201)
    _ok(anonymous.post("/v1/auth/login", {"email": email, "password": "wrong password!"}), 401)
    tokens = _ok(anonymous.post("/v1/auth/login", {"email": email, "password": PASSWORD}))
    alice = Client(base, token=tokens["access_token"])
    _ok(alice.get("/v1/me"))
    tokens = _ok(anonymous.post("/v1/auth/refresh", {"refresh_token": tokens["refresh_token"]}))
    _ok(anonymous.post("/v1/auth/logout", {"refresh_token": tokens["refresh_token"]}), 204)
    _ok(Client(base, token="not-a-token").get("/v1/me"), 401)  # the authorizer refuses

    # admin: a partner whose key authenticates (imported into the gateway's partner plan: the
    # admin function's API Gateway calls), deposits (one replayed)
    root = admin(base)
    partner = _ok(root.post("/v1/admin/partners", {"name": "IAM Pay", "markup_bps": 5}), 201)
    assert partner_plan_keys() == {partner["id"]: partner["api_key"]}
    _ok(Client(base).get("/v1/me", headers={"X-Api-Key": partner["api_key"]}))

    # accounts and transfers
    bob = new_user(base)
    src = _ok(alice.post("/v1/accounts", {"currency": "USD"}), 201)["id"]
    _ok(alice.post("/v1/accounts", {"currency": "EUR"}), 201)
    dst = _ok(bob.post("/v1/accounts", {"currency": "USD"}), 201)["id"]
    fund(root, src, "100.00")
    key = uuid.uuid4().hex
    deposit = {"account_id": src, "amount": "5.00"}
    _ok(root.post("/v1/admin/deposits", deposit, key=key), 201)
    _ok(root.post("/v1/admin/deposits", deposit, key=key), 201)  # the idempotent replay
    page = _ok(alice.get("/v1/accounts?limit=1"))  # a signed cursor (cursor_key)
    _ok(alice.get(f"/v1/accounts?limit=1&cursor={page['next_cursor']}"))
    _ok(alice.get(f"/v1/accounts/{src}"))
    _ok(alice.get(f"/v1/accounts/{src}/entries"))
    item = {"from_account_id": src, "to_account_id": dst, "currency": "USD"}
    sent = _ok(alice.post("/v1/transfers", {**item, "amount": "1.00"}, key=True), 201)
    _ok(alice.get(f"/v1/transfers/{sent['id']}"))
    hold = _ok(alice.post("/v1/transfers", {**item, "amount": "2.00", "hold": {"timeout_seconds": 600}}, key=True), 201)
    _ok(alice.post(f"/v1/transfers/{hold['id']}/post", {"amount": "1.00"}, key=True))
    hold = _ok(alice.post("/v1/transfers", {**item, "amount": "2.00", "hold": {"timeout_seconds": 600}}, key=True), 201)
    _ok(alice.post(f"/v1/transfers/{hold['id']}/void", key=True))
    batch = {"transfers": [{**item, "amount": "0.50"}, {**item, "amount": "0.25"}]}
    _ok(alice.post("/v1/transfers/batch", batch, key=True), 201)
    refused = alice.post("/v1/transfers", {**item, "amount": "100000.00"}, key=True)
    assert refused.status == 422, refused
    page = _ok(alice.get("/v1/transfers?limit=1"))
    _ok(alice.get(f"/v1/transfers?limit=1&cursor={page['next_cursor']}"))

    # webhooks: an unsigned delivery from each provider (``<provider>_webhook_secret``) is refused
    # once the function has read that provider's signing secrets
    for fn in manifest.MANIFEST.of_kind("webhook"):
        assert fn.path is not None
        providers = [u.removesuffix(WEBHOOK_SECRET) for u in sorted(fn.uses) if u.endswith(WEBHOOK_SECRET)]
        for provider in providers or ["unknown"]:
            headers = {"Content-Type": "application/json"}
            reply = anonymous.call("POST", f"{fn.path}/{provider}", raw=b"{}", headers=headers)
            assert 400 <= reply.status < 500, reply

    stale = ramp_requests(base, database_url, alice, root)

    # schedules, run now (the twin's schedules are off in this run)
    for schedule in manifest.SCHEDULES:
        _ok(anonymous.post(f"/_twin/schedules/{schedule.name}/run"))
    assert _ok(alice.get(f"/v1/ramps/{stale}"))["status"] == "expired", "the ramp sweep expired it"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--state-dir", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args()

    from infra.local import aws
    from infra.local.twin import Twin

    aws.isolate_environment()
    # A pool per database role (each function connects as its own): kept small, the test server
    # is shared with the other workers' suites.
    os.environ["RAMPART_DB_POOL_SIZE"] = "2"
    # Queues on: a PIX payment reaches the ramp through the webhook path (webhook_apply).
    twin = Twin(database_url=args.database_url, state_dir=args.state_dir, schedules=False)
    with iam.recording() as calls, iam.cold_containers():
        try:
            representative_requests(twin.start(port=0, timeout=120), args.database_url)
        finally:
            twin.stop()
    report: dict[str, Any] = {
        "calls": [json.loads(c.as_json()) for c in sorted(calls)],
        "invoked": sorted(iam.invoked),
    }
    args.out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
