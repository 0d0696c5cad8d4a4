"""API.md "Ramps" end to end over HTTP, as a client drives a ramp: quote → register → sign every
blueprint with eth_account → submit (in parts) → start, for both BRL corridors; exactly one Step
Functions execution per ramp, named after it; start, cancel and the expiry schedule refusing what
API.md refuses; reading and listing (another's → 404, newest first, cursors, the admin list)."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from eth_utils.address import to_checksum_address

from tests.e2e.api import Client, admin, new_user
from tests.e2e.ramps import (
    CPF_DIGITS,
    FIRST_PHASE,
    STATE_MACHINE,
    Keys,
    Ramps,
    age_ramp,
    payment_window_seconds,
    problem,
    sign_all,
)

pytestmark = pytest.mark.xdist_group("ramps")

# docs/ramps.md's blueprint table: (phase, signer role) in submission order.
PLAN = {
    "on": [
        ("approve", "ephemeral"),
        ("approve", "ephemeral"),
        ("approve", "ephemeral"),
        ("swap", "ephemeral"),
        ("fees", "ephemeral"),
        ("deliver", "ephemeral"),
    ],
    "off": [
        ("approve", "ephemeral"),
        ("approve", "ephemeral"),
        ("approve", "ephemeral"),
        ("receive", "user"),
        ("fees", "ephemeral"),
        ("swap", "ephemeral"),
        ("handoff", "ephemeral"),
    ],
}
EVM_FIELDS = {"to", "data", "value", "gas", "maxFeePerGas", "maxPriorityFeePerGas", "nonce", "chainId", "type"}
TRANSFER = "0xa9059cbb"  # ERC-20 transfer(address,uint256)


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _transfer_args(data: str) -> tuple[str, int]:
    """(recipient, amount) of an ERC-20 ``transfer`` call's data."""
    assert data[:10] == TRANSFER, data
    words = data[10:]
    return to_checksum_address("0x" + words[24:64]), int(words[64:128], 16)


@pytest.fixture(scope="module")
def alice(twin_url: str) -> Ramps:
    return Ramps(twin_url)


@pytest.fixture(scope="module")
def world(alice: Ramps) -> dict[str, Any]:
    reply = alice.anonymous.get("/_sim/world")
    assert reply.status == 200, reply
    return dict(reply.body["base"])


# -- both corridors, start to first phase ----------------------------------------------------------


@pytest.mark.parametrize("kind", ["on", "off"])
def test_quote_register_sign_start(alice: Ramps, world: dict[str, Any], kind: str) -> None:
    quote = alice.quote(kind)
    keys = alice.keys(kind)
    body = alice.body(kind, quote["id"], keys)
    created = alice.register_reply(body)
    assert created.status == 201, created
    ramp = created.body
    assert (ramp["phase"], ramp["status"], ramp["quote_id"]) == ("initial", "initial", quote["id"])
    for name in ("input_amount", "output_amount", "fees", "input_currency", "output_currency"):
        assert ramp[name] == quote[name], name
    assert [h["phase"] for h in ramp["history"]] == ["initial"]
    assert ramp["signed"] == 0
    assert ramp["payment_instructions"] is None
    assert ramp["signing_accounts"] == keys.signing_accounts()
    assert timedelta(0) < _moment(ramp["start_deadline"]) - _moment(ramp["created_at"]) <= timedelta(minutes=15)

    # The blueprints: docs/ramps.md's table, every field API.md names, signed by whom it says.
    txs = ramp["unsigned_txs"]
    signer_of = {"ephemeral": keys.ephemeral.address, "user": keys.user.address if keys.user else None}
    assert [(tx["phase"], tx["signer"]) for tx in txs] == [(p, signer_of[role]) for p, role in PLAN[kind]]
    assert [tx["nonce"] for tx in txs if tx["signer"] == keys.ephemeral.address] == list(range(6))
    for tx in txs:
        assert tx["network"] == "base"
        assert set(tx["tx_data"]) == EVM_FIELDS, tx
        assert tx["tx_data"]["type"] == 2
        assert tx["tx_data"]["chainId"] == world["chain_id"]
        assert tx["tx_data"]["to"] == to_checksum_address(tx["tx_data"]["to"])
        assert tx["tx_data"]["nonce"] == tx["nonce"]
    usdc = world["addresses"]["USDC"]
    if kind == "on":  # the destination gets exactly output_amount USDC (6 decimals on base)
        deliver = txs[-1]["tx_data"]
        assert deliver["to"] == usdc
        assert _transfer_args(deliver["data"]) == (
            to_checksum_address(body["destination"]["address"]),
            int(Decimal(quote["output_amount"]).scaleb(6)),
        )
    else:  # the user's wallet sends exactly input_amount USDC to the ephemeral, at its nonce (0)
        receive = txs[3]
        assert (receive["nonce"], receive["tx_data"]["to"]) == (0, usdc)
        assert _transfer_args(receive["tx_data"]["data"]) == (
            keys.ephemeral.address,
            int(Decimal(quote["input_amount"]).scaleb(6)),
        )

    # Submitted in parts: they merge; an item sent again replaces its earlier one.
    signed = sign_all(ramp, keys)
    half = len(signed) // 2
    first = alice.submit(ramp["id"], signed[:half])
    assert first.status == 200, first
    assert first.body["signed"] == half
    assert first.body["payment_instructions"] is None
    again = alice.submit(ramp["id"], signed[half - 1 : half + 1])
    assert again.status == 200, again
    assert again.body["signed"] == half + 1
    assert again.body["payment_instructions"] is None
    rest = alice.submit(ramp["id"], signed[half + 1 :])
    assert rest.status == 200, rest
    assert rest.body["signed"] == len(txs)
    assert rest.body["status"] == "initial"
    instructions = rest.body["payment_instructions"]
    if kind == "on":
        assert instructions is not None, rest
        assert instructions["rail"] == "pix"
        assert instructions["br_code"]
        assert (instructions["amount"], instructions["currency"]) == (quote["input_amount"], "BRL")
        deadline = _moment(ramp["start_deadline"])
        assert _moment(instructions["expires_at"]) == deadline + timedelta(seconds=payment_window_seconds())
        # The rail's charge: for the ramp, exactly the input, payable only by the registered payer.
        (charge,) = alice.charges(ramp["id"])
        assert (charge["amount"], charge["payer_tax_id"], charge["status"]) == (
            quote["input_amount"],
            CPF_DIGITS,
            "pending",
        )
        assert charge["br_code"] == instructions["br_code"]
    else:
        assert instructions is None
    assert alice.executions(ramp["id"]) == []

    # Start: 202 in the corridor's first phase, one execution named after the ramp.
    key = "start-" + ramp["id"]
    started = alice.client.post(f"/v1/ramps/{ramp['id']}/start", key=key)
    assert started.status == 202, started
    assert started.body == {"id": ramp["id"], "phase": FIRST_PHASE[kind], "status": "running"}
    executions = alice.executions(ramp["id"])
    assert len(executions) == 1, executions
    assert executions[0]["name"] == ramp["id"]
    assert executions[0]["state_machine"] == STATE_MACHINE[kind]
    assert executions[0]["status"] == "RUNNING"

    problem(alice.client.post(f"/v1/ramps/{ramp['id']}/start"), 400, "idempotency-key-required")
    # Again (a new key, and the same key replayed): 202, the same phase and status, no second execution.
    repeat = alice.start(ramp["id"])
    assert repeat.status == 202, repeat
    assert repeat.body == started.body
    replay = alice.client.post(f"/v1/ramps/{ramp['id']}/start", key=key)
    assert (replay.status, replay.body, replay.headers.get("idempotent-replayed")) == (202, started.body, "true")
    executions = alice.executions(ramp["id"])
    assert [(e["name"], e["status"]) for e in executions] == [(ramp["id"], "RUNNING")]

    shown = alice.get(ramp["id"])
    assert shown["signed"] == len(txs)
    if kind == "on":
        # The on-ramp waits for its PIX payment.
        assert (shown["status"], shown["phase"]) == ("running", FIRST_PHASE[kind])
        assert [h["phase"] for h in shown["history"]] == ["initial", FIRST_PHASE[kind]]
        assert shown["payment_instructions"] == instructions

    # Started: no more signatures, no cancel.
    problem(alice.submit(ramp["id"], signed[:1]), 409, "invalid-phase")
    problem(alice.cancel(ramp["id"]), 409, "invalid-phase")

    # Executed (Ramps III): the PIX payment comes, every phase runs once, the destination gets
    # exactly output_amount, nothing is left on the ephemeral but gas.
    if kind == "on":
        paid = alice.anonymous.post("/_sim/pix/payments", {"ramp_id": ramp["id"]})
        assert paid.status == 200, paid
    done = alice.settled(ramp["id"])
    assert (done["status"], done["phase"], done["errors"]) == ("completed", "complete", [])
    phases = next(c["phases"] for c in alice.anonymous.get("/v1/corridors").body["items"] if c["ramp_type"] == kind)
    assert [h["phase"] for h in done["history"]] == phases
    assert [(e["name"], e["status"]) for e in alice.executions(ramp["id"])] == [(ramp["id"], "SUCCEEDED")]
    left = alice.balances(keys.ephemeral.address)["balances"]
    assert Decimal(left["USDC"]) == Decimal(left["BRLA"]) == 0, left
    if kind == "on":
        received = alice.balances(body["destination"]["address"])["balances"]["USDC"]
        assert received == quote["output_amount"]
    else:
        payouts = alice.anonymous.get(f"/_sim/pix/payouts?ramp_id={ramp['id']}").body["items"]
        assert [(p["kind"], p["amount"], p["status"]) for p in payouts] == [
            ("payout", quote["output_amount"], "completed")
        ]
    assert set(done["transactions"]) >= {"fund", "approve", "swap", "fees"}  # sweep: only when something is left
    # The ledger mirrors the world: every mirrored account equals its chain balance.
    report = admin(alice.client.base).get("/v1/admin/reconciliation")
    assert report.status == 200, report
    assert report.body["checked"] >= 4  # the ephemeral's ETH and tokens, the platform's accounts
    assert report.body["differences"] == [], [
        (d["address"], d["asset"], d["ledger"], d["actual"]) for d in report.body["differences"]
    ]


def test_a_payment_of_another_amount_fails_the_ramp_and_is_refunded(alice: Ramps, twin_url: str) -> None:
    registered = alice.started("on")
    paid = alice.anonymous.post("/_sim/pix/payments", {"ramp_id": registered.id, "amount": "11.00"})
    assert paid.status == 200, paid
    done = alice.settled(registered.id)
    assert (done["status"], done["phase"]) == ("failed", "failed")
    assert [h["phase"] for h in done["history"]] == ["initial", "payment", "failed"]
    (error,) = done["errors"]
    assert error["phase"] == "payment"
    assert "11.00" in error["message"]
    assert "Traceback" not in error["message"]
    assert 'File "' not in error["message"]
    assert done["refund"]["amount"] == "11.00"
    assert done["refund"]["currency"] == "BRL"
    assert done["refund"]["status"] in ("pending", "completed")
    # nothing was minted or moved: the ephemeral holds nothing, the ledger agrees with the chain
    left = alice.balances(registered.keys.ephemeral.address)
    assert (left["nonce"], Decimal(left["balances"]["BRLA"]), Decimal(left["balances"]["USDC"])) == (0, 0, 0)
    payouts = alice.anonymous.get(f"/_sim/pix/payouts?ramp_id={registered.id}").body["items"]
    assert [(p["kind"], p["amount"]) for p in payouts] == [("refund", "11.00")]
    assert admin(twin_url).get("/v1/admin/reconciliation").body["differences"] == []
    assert [(e["status"]) for e in alice.executions(registered.id)] == ["FAILED"]


# -- start and cancel refusals -----------------------------------------------------------------------


def test_start_before_every_blueprint_is_signed(alice: Ramps) -> None:
    registered = alice.register("off")
    problem(alice.start(registered.id), 409, "presigned-incomplete")
    partly = alice.submit(registered.id, sign_all(registered.ramp, registered.keys)[:-1])
    assert partly.status == 200, partly
    problem(alice.start(registered.id), 409, "presigned-incomplete")
    shown = alice.get(registered.id)
    assert (shown["status"], shown["phase"], shown["signed"]) == ("initial", "initial", 6)
    assert alice.executions(registered.id) == []


def test_start_after_the_deadline(alice: Ramps, twin_database_url: str) -> None:
    signed = alice.signed("on")
    age_ramp(twin_database_url, signed.id)
    problem(alice.start(signed.id), 409, "start-deadline-passed")
    assert alice.get(signed.id)["phase"] == "initial"
    assert alice.executions(signed.id) == []


def test_cancel_before_start(alice: Ramps) -> None:
    signed = alice.signed("on")
    cancelled = alice.cancel(signed.id)
    assert cancelled.status == 200, cancelled
    assert (cancelled.body["status"], cancelled.body["phase"]) == ("cancelled", "initial")
    assert [h["phase"] for h in cancelled.body["history"]] == ["initial"]
    twice = alice.cancel(signed.id)
    assert twice.status == 200, twice
    assert (twice.body["status"], twice.body["phase"]) == ("cancelled", "initial")
    assert [c["status"] for c in alice.charges(signed.id)] == ["cancelled"]  # its PIX charge is closed
    problem(alice.start(signed.id), 409, "invalid-phase")
    problem(alice.submit(signed.id, sign_all(signed.ramp, signed.keys)[:1]), 409, "invalid-phase")
    assert alice.executions(signed.id) == []


def test_the_schedule_expires_an_unstarted_ramp(alice: Ramps, twin_database_url: str) -> None:
    registered = alice.signed("on")
    age_ramp(twin_database_url, registered.id)
    result = alice.run_sweep()
    assert result["expired_ramps"] >= 0  # the schedule's own run may have expired it first
    shown = alice.get(registered.id)
    assert (shown["status"], shown["phase"]) == ("expired", "initial")
    assert [h["phase"] for h in shown["history"]] == ["initial"]
    problem(alice.start(registered.id), 409, "start-deadline-passed")
    problem(alice.submit(registered.id, sign_all(registered.ramp, registered.keys)[:1]), 409, "invalid-phase")
    assert alice.executions(registered.id) == []
    assert [c["status"] for c in alice.charges(registered.id)] == ["cancelled"]  # its PIX charge is closed
    # Its ephemeral is free again: a new ramp registers it.
    reused = Keys(ephemeral=registered.keys.ephemeral)
    again = alice.register_reply(alice.body("on", alice.quote("on")["id"], reused))
    assert again.status == 201, again


# -- read and list -----------------------------------------------------------------------------------


def test_another_users_ramp_is_not_found(alice: Ramps, twin_url: str) -> None:
    registered = alice.register("on")
    mallory = Ramps(twin_url)
    for reply in (
        mallory.client.get(f"/v1/ramps/{registered.id}"),
        mallory.submit(registered.id, sign_all(registered.ramp, registered.keys)),
        mallory.start(registered.id),
        mallory.cancel(registered.id),
    ):
        problem(reply, 404, "not-found")
    shown = alice.get(registered.id)
    assert (shown["status"], shown["signed"]) == ("initial", 0)
    problem(mallory.client.get("/v1/ramps/rmp_nothing"), 404, "not-found")


def test_lists_newest_first_with_cursors(twin_url: str, admin_client: Client) -> None:
    bob = Ramps(twin_url)
    older = bob.started("on")
    waiting = bob.register("off")
    newer = bob.started("on")  # an on-ramp waits for its payment: still running when listed

    everything = bob.client.get("/v1/ramps")
    assert everything.status == 200, everything
    assert [r["id"] for r in everything.body["items"]] == [newer.id, waiting.id, older.id]
    assert everything.body["next_cursor"] is None

    running = bob.client.get("/v1/ramps?status=running")
    assert running.status == 200, running
    assert [r["id"] for r in running.body["items"]] == [newer.id, older.id]
    assert {r["status"] for r in running.body["items"]} == {"running"}

    page = bob.client.get("/v1/ramps?status=running&limit=1")
    assert [r["id"] for r in page.body["items"]] == [newer.id], page
    assert page.body["next_cursor"], page
    cursor = page.body["next_cursor"]
    last = bob.client.get(f"/v1/ramps?status=running&limit=1&cursor={cursor}")
    assert last.status == 200, last
    assert [r["id"] for r in last.body["items"]] == [older.id]
    assert last.body["next_cursor"] is None

    # A cursor the server did not issue, or one of another list, is refused.
    problem(
        bob.client.get("/v1/ramps?status=running&cursor=Zm9yZ2Vk.Zm9yZ2Vk"), 422, "validation-error", "query:cursor"
    )
    problem(bob.client.get(f"/v1/ramps?status=initial&cursor={cursor}"), 422, "validation-error", "query:cursor")
    stranger = new_user(twin_url)
    problem(stranger.get(f"/v1/ramps?status=running&cursor={cursor}"), 422, "validation-error", "query:cursor")
    assert stranger.get("/v1/ramps?status=running").body["items"] == []

    # The admin sees everyone's ramps; anyone else may not ask.
    seen: list[dict[str, Any]] = []
    path = "/v1/admin/ramps?status=running&limit=100"
    reply = admin_client.get(path)
    while True:
        assert reply.status == 200, reply
        seen += reply.body["items"]
        if reply.body["next_cursor"] is None:
            break
        reply = admin_client.get(f"{path}&cursor={reply.body['next_cursor']}")
    ids = [r["id"] for r in seen]
    assert newer.id in ids
    assert older.id in ids
    assert waiting.id not in ids
    assert ids.index(newer.id) < ids.index(older.id)
    assert {r["status"] for r in seen} == {"running"}
    problem(bob.client.get("/v1/admin/ramps?status=running"), 403, "forbidden")
    for query, field in (("limit=0", "query:limit"), ("limit=101", "query:limit"), ("status=done", "query:status")):
        problem(bob.client.get(f"/v1/ramps?{query}"), 422, "validation-error", field)
    problem(Client(twin_url).get("/v1/ramps"), 401, "unauthorized")
