"""Faults injected through ``/_sim`` scripts (issue 11, "Tests"), each landing on one phase of one
ramp (a script's ``match``: the transaction's sender and nonce, the provider operation and its
reference), set before the ramp starts. Every fault kind is met at least once per corridor and every
phase of both corridors is faulted at least once. Each test drives one ramp through the session's
twin and checks the final status (and the error where one is due), the money (the destination got
exactly ``output_amount``, or the refund came back), that nothing was paid twice (the rail's payouts
of the ramp, the journal's keys settled once, the ephemeral's nonce = its pre-signed transactions
that ran) and that reconciliation finds no difference afterwards.

The spec (what must happen) is the brief's; a test that fails shows where the backend differs.
A payment of the wrong amount is ``test_ramps_flow.py::test_a_payment_of_another_amount_fails_the
_ramp_and_is_refunded`` (not repeated here)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from tests.e2e.api import Client, admin
from tests.e2e.ramps import Ramps, Registered

# Their own group: another worker (its own twin and world) runs them beside the other ramp tests;
# every script they set and every reconciliation they check is that twin's alone.
pytestmark = pytest.mark.xdist_group("ramp-faults")

SETTLE = 180.0  # not money: seconds a ramp may take, its retries included
EPHEMERAL_TXS = 6  # both corridors: the ephemeral signs six blueprints (docs/ramps.md)

Setup = Callable[[Registered], dict[str, Any]]  # sets a ramp's script; returns the script set


# -- fixtures ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def carol(twin_url: str) -> Ramps:
    return Ramps(twin_url)


@pytest.fixture(scope="module")
def root(twin_url: str) -> Client:
    return admin(twin_url)


@pytest.fixture(scope="module")
def platform(carol: Ramps) -> dict[str, str]:
    reply = carol.anonymous.get("/_sim/world")
    assert reply.status == 200, reply
    return dict(reply.body["base"]["platform_accounts"])


@pytest.fixture(autouse=True)
def no_scripts(carol: Ramps) -> Iterator[None]:
    """Every test starts and ends with no script: a failing test must not poison the next ones."""
    _reset(carol)
    try:
        yield
    finally:
        _reset(carol)


def _reset(ramps: Ramps) -> None:
    for provider in ("base", "pix"):
        reply = ramps.anonymous.post(f"/_sim/providers/{provider}/script", {"reset": True})
        assert reply.status == 200, reply


# -- helpers ---------------------------------------------------------------------------------------


def script(ramps: Ramps, provider: str, **body: Any) -> dict[str, Any]:
    reply = ramps.anonymous.post(f"/_sim/providers/{provider}/script", {"reset": True, **body})
    assert reply.status == 200, reply
    return dict(reply.body["script"])


def script_now(ramps: Ramps, provider: str) -> dict[str, Any]:
    reply = ramps.anonymous.get(f"/_sim/providers/{provider}/script")
    assert reply.status == 200, reply
    return dict(reply.body["script"])


def nonce_of(registered: Registered, phase: str, role: str = "ephemeral") -> int:
    keys = registered.keys
    signer = (keys.ephemeral if role == "ephemeral" else keys.user).address  # type: ignore[union-attr]
    return int(
        next(tx["nonce"] for tx in registered.ramp["unsigned_txs"] if tx["phase"] == phase and tx["signer"] == signer)
    )


def submission(registered: Registered, phase: str, platform: dict[str, str]) -> dict[str, Any]:
    """A base ``match`` for ``phase``'s submission: the ephemeral's (or the user's) pre-signed
    transaction at its nonce; the gas funder's transfer to the ephemeral; the operator's sweep."""
    if phase == "fund":
        return {"from": platform["gas_funder"], "to": registered.keys.ephemeral.address}
    if phase == "sweep":
        return {"from": platform["operator"]}
    if phase == "receive":
        assert registered.keys.user is not None
        return {"from": registered.keys.user.address, "nonce": nonce_of(registered, "receive", "user")}
    return {"from": registered.keys.ephemeral.address, "nonce": nonce_of(registered, phase)}


def drive(
    ramps: Ramps, kind: str, setup: Setup | None = None, *, pay: bool = True
) -> tuple[Registered, dict[str, Any]]:
    """One ramp signed, its script set (``setup``), started, paid (on-ramp) and settled."""
    registered = ramps.signed(kind)
    if setup is not None:
        setup(registered)
    return registered, go(ramps, registered, pay=pay)


def go(ramps: Ramps, registered: Registered, *, pay: bool = True) -> dict[str, Any]:
    started = ramps.start(registered.id)
    assert started.status == 202, started
    if registered.kind == "on" and pay:
        paid = ramps.anonymous.post("/_sim/pix/payments", {"ramp_id": registered.id})
        assert paid.status == 200, paid
    return ramps.settled(registered.id, timeout=SETTLE)


def journal(database_url: str, ramp_id: str) -> dict[str, tuple[str, int]]:
    """The ramp's journal: key → (status, attempts). The key is unique: each side effect once."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT key, status, attempts FROM journal.operations WHERE ramp_id = %s", (ramp_id,)
        ).fetchall()
    keys = [row[0] for row in rows]
    assert len(keys) == len(set(keys)), keys
    return {str(key): (str(status), int(attempts)) for key, status, attempts in rows}


def payouts(ramps: Ramps, ramp_id: str) -> list[tuple[str, str, str]]:
    reply = ramps.anonymous.get(f"/_sim/pix/payouts?ramp_id={ramp_id}")
    assert reply.status == 200, reply
    return [(p["kind"], p["amount"], p["status"]) for p in reply.body["items"]]


def reconciled(root: Client) -> None:
    report = root.get("/v1/admin/reconciliation")
    assert report.status == 200, report
    assert report.body["differences"] == [], [
        (d["address"], d["asset"], d["ledger"], d["actual"]) for d in report.body["differences"]
    ]


def ephemeral_nonce(ramps: Ramps, registered: Registered) -> int:
    return int(ramps.balances(registered.keys.ephemeral.address)["nonce"])


def usdc(ramps: Ramps, address: str) -> Decimal:
    return Decimal(ramps.balances(address)["balances"]["USDC"])


def no_trace(error: dict[str, Any]) -> None:
    assert error["message"], error
    assert "Traceback" not in error["message"], error
    assert 'File "' not in error["message"], error


def completed_once(
    ramps: Ramps, root: Client, database_url: str, registered: Registered, done: dict[str, Any]
) -> dict[str, tuple[str, int]]:
    """``completed``: exactly the output delivered once, every side effect settled once, the
    ephemeral's six transactions run, nothing else paid, reconciliation clean. The journal back."""
    assert (done["status"], done["phase"], done["errors"]) == ("completed", "complete", []), done
    phases = [h["phase"] for h in done["history"]]
    assert len(phases) == len(set(phases)), phases
    output = registered.ramp["output_amount"]
    if registered.kind == "on":
        assert usdc(ramps, registered.ramp["destination"]["address"]) == Decimal(output)
        assert payouts(ramps, registered.id) == []
    else:
        assert payouts(ramps, registered.id) == [("payout", output, "completed")]
    ops = journal(database_url, registered.id)
    assert ops, registered.id
    assert {key: status for key, (status, _) in ops.items() if status != "confirmed"} == {}
    assert ephemeral_nonce(ramps, registered) == EPHEMERAL_TXS
    reconciled(root)
    return ops


def refunded_at_most_once(ramps: Ramps, registered: Registered, done: dict[str, Any]) -> None:
    """A failed on-ramp paid nothing out; if the user's BRL went back, it went back once, in full."""
    paid = payouts(ramps, registered.id)
    assert [p for p in paid if p[0] == "payout"] == [], paid
    refunds = [p for p in paid if p[0] == "refund"]
    assert refunds in ([], [("refund", registered.ramp["input_amount"], "completed")]), refunds
    if refunds:
        assert done.get("refund") is not None, done
        assert (done["refund"]["amount"], done["refund"]["currency"]) == (registered.ramp["input_amount"], "BRL")


def key_of(ops: dict[str, tuple[str, int]], ramp_id: str, phase: str) -> list[str]:
    return [key for key in ops if key.startswith(f"{ramp_id}:{phase}:")]


# -- the chain unavailable: retried, then completed ---------------------------------------------------

CHAIN_PHASES = [
    ("on", "fund"),
    ("on", "approve"),
    ("on", "swap"),
    ("on", "fees"),
    ("on", "deliver"),
    ("off", "fund"),
    ("off", "approve"),
    ("off", "receive"),
    ("off", "fees"),
    ("off", "swap"),
    ("off", "handoff"),
]


@pytest.mark.parametrize(("kind", "phase"), CHAIN_PHASES)
def test_the_chain_unavailable_twice_at_a_phase_is_retried_and_completes(
    carol: Ramps, root: Client, twin_database_url: str, platform: dict[str, str], kind: str, phase: str
) -> None:
    registered, done = drive(
        carol,
        kind,
        lambda r: script(carol, "base", fail_next=2, failure="unavailable", match=submission(r, phase, platform)),
    )
    assert script_now(carol, "base")["fail_next"] == 0, "the fault never landed on its submission"
    ops = completed_once(carol, root, twin_database_url, registered, done)
    assert key_of(ops, registered.id, phase), ops


@pytest.mark.parametrize(("kind", "other"), [("on", "off"), ("off", "on")])
def test_the_chain_unavailable_twice_at_the_sweep_is_retried_and_completes(
    carol: Ramps, root: Client, twin_database_url: str, platform: dict[str, str], kind: str, other: str
) -> None:
    """A sweep runs only when something is left on the ephemeral: a ramp of the other corridor runs
    between this one's quote and its swap, so the pool gives this swap more than quoted (the
    delivery is exactly the output; the rest is swept)."""
    registered = carol.signed(kind)
    _, between = drive(carol, other)
    assert between["status"] == "completed", between
    script(carol, "base", fail_next=2, failure="unavailable", match=submission(registered, "sweep", platform))
    done = go(carol, registered)
    assert script_now(carol, "base")["fail_next"] == 0, "no sweep was submitted"
    ops = completed_once(carol, root, twin_database_url, registered, done)
    assert key_of(ops, registered.id, "sweep"), ops
    left = carol.balances(registered.keys.ephemeral.address)["balances"]
    assert Decimal(left["USDC"]) == Decimal(left["BRLA"]) == 0, left


# -- the PIX provider unavailable: retried, then completed ---------------------------------------------


@pytest.mark.parametrize(("kind", "operation"), [("on", "mint"), ("off", "payout")])
def test_the_provider_unavailable_twice_is_retried_and_completes(
    carol: Ramps, root: Client, twin_database_url: str, kind: str, operation: str
) -> None:
    registered, done = drive(
        carol,
        kind,
        lambda r: script(carol, "pix", fail_next=2, match={"operation": operation, "reference": r.id}),
    )
    assert script_now(carol, "pix")["fail_next"] == 0, f"the {operation} was never asked for"
    ops = completed_once(carol, root, twin_database_url, registered, done)
    assert key_of(ops, registered.id, operation), ops


# -- a worker that hangs after submitting: the retry finds it, nothing is submitted twice ---------------


@pytest.mark.parametrize("kind", ["on", "off"])
def test_a_swap_whose_reply_never_comes_is_found_not_submitted_again(
    carol: Ramps, root: Client, twin_database_url: str, platform: dict[str, str], kind: str
) -> None:
    registered, done = drive(
        carol, kind, lambda r: script(carol, "base", hang_next=1, match=submission(r, "swap", platform))
    )
    assert script_now(carol, "base")["hang_next"] == 0, "the swap's submission never hung"
    ops = completed_once(carol, root, twin_database_url, registered, done)
    (swap,) = key_of(ops, registered.id, "swap")
    assert ops[swap][0] == "confirmed"
    assert len(set(done["transactions"]["swap"])) == 1, done["transactions"]  # one swap transaction


# -- a reverted pre-signed transaction: failed, the user's money where the spec says ------------------


def test_a_reverted_swap_fails_the_on_ramp_and_delivers_nothing(
    carol: Ramps, root: Client, twin_database_url: str, platform: dict[str, str]
) -> None:
    registered, done = drive(
        carol,
        "on",
        lambda r: script(carol, "base", fail_next=1, failure="revert", match=submission(r, "swap", platform)),
    )
    assert script_now(carol, "base")["fail_next"] == 0
    assert (done["status"], done["phase"]) == ("failed", "failed"), done
    (error,) = done["errors"]
    assert error["phase"] == "swap", error
    no_trace(error)
    assert usdc(carol, registered.ramp["destination"]["address"]) == 0
    refunded_at_most_once(carol, registered, done)
    assert ephemeral_nonce(carol, registered) == nonce_of(registered, "swap")  # the approvals ran, not the swap
    reconciled(root)


@pytest.mark.parametrize("phase", ["fees", "swap"])
def test_a_revert_after_receive_fails_the_off_ramp_and_refunds_the_input(
    carol: Ramps, root: Client, twin_database_url: str, platform: dict[str, str], phase: str
) -> None:
    registered, done = drive(
        carol,
        "off",
        lambda r: script(carol, "base", fail_next=1, failure="revert", match=submission(r, phase, platform)),
    )
    assert script_now(carol, "base")["fail_next"] == 0
    assert (done["status"], done["phase"]) == ("failed", "failed"), done
    (error,) = done["errors"]
    assert error["phase"] == phase, error
    no_trace(error)
    input_amount = registered.ramp["input_amount"]
    assert done.get("refund") == {"amount": input_amount, "currency": "USDC", "status": "completed"}, (
        done.get("refund"),
        journal(twin_database_url, registered.id),
    )
    assert registered.keys.user is not None
    assert usdc(carol, registered.keys.user.address) == Decimal("100")  # the faucet's 100, all back
    assert payouts(carol, registered.id) == []
    assert ephemeral_nonce(carol, registered) == nonce_of(registered, phase)
    reconciled(root)


@pytest.mark.parametrize("fault", ["handoff reverted", "payout refused"])
def test_a_failure_after_the_swap_gives_the_off_ramps_input_back_from_liquidity(
    carol: Ramps, root: Client, twin_database_url: str, platform: dict[str, str], fault: str
) -> None:
    """Swapped, never paid out: the platform keeps the BRLA and gives the user exactly its input
    from the liquidity account; what the ephemeral still holds goes to the treasury."""

    def aim(r: Registered) -> dict[str, Any]:
        if fault == "handoff reverted":
            return script(carol, "base", fail_next=1, failure="revert", match=submission(r, "handoff", platform))
        return script(carol, "pix", fail_next=1, failure="reject", match={"operation": "payout", "reference": r.id})

    registered, done = drive(carol, "off", aim)
    assert (done["status"], done["phase"]) == ("failed", "failed"), done
    (error,) = done["errors"]
    assert error["phase"] == fault.split()[0], error
    no_trace(error)
    input_amount = registered.ramp["input_amount"]
    assert done.get("refund") == {"amount": input_amount, "currency": "USDC", "status": "completed"}, done
    assert registered.keys.user is not None
    assert usdc(carol, registered.keys.user.address) == Decimal("100")  # the faucet's 100, all back
    assert payouts(carol, registered.id) == []  # never both
    left = carol.balances(registered.keys.ephemeral.address)["balances"]
    assert Decimal(left["USDC"]) == Decimal(left["BRLA"]) == 0, left  # taken by the treasury
    ops = journal(twin_database_url, registered.id)
    assert ops[f"{registered.id}:failed:buy-back"] == ("confirmed", 1), ops
    reconciled(root)


def test_a_revert_before_receive_fails_the_off_ramp_and_the_input_never_left(
    carol: Ramps, root: Client, platform: dict[str, str]
) -> None:
    def at_approve(r: Registered) -> dict[str, Any]:
        match = {"from": r.keys.ephemeral.address, "nonce": 0}
        return script(carol, "base", fail_next=1, failure="revert", match=match)

    registered, done = drive(carol, "off", at_approve)
    assert (done["status"], done["phase"]) == ("failed", "failed"), done
    (error,) = done["errors"]
    assert error["phase"] == "approve", error
    no_trace(error)
    assert done.get("refund") is None, done
    assert registered.keys.user is not None
    assert usdc(carol, registered.keys.user.address) == Decimal("100")
    assert ephemeral_nonce(carol, registered) == 0
    assert payouts(carol, registered.id) == []
    reconciled(root)


# -- a rejected platform transaction: failed ----------------------------------------------------------


@pytest.mark.parametrize("kind", ["on", "off"])
def test_a_rejected_fund_fails_the_ramp(carol: Ramps, root: Client, platform: dict[str, str], kind: str) -> None:
    registered, done = drive(
        carol,
        kind,
        lambda r: script(carol, "base", fail_next=1, failure="reject", match=submission(r, "fund", platform)),
    )
    assert script_now(carol, "base")["fail_next"] == 0
    assert (done["status"], done["phase"]) == ("failed", "failed"), done
    (error,) = done["errors"]
    assert error["phase"] == "fund", error
    no_trace(error)
    assert ephemeral_nonce(carol, registered) == 0
    if kind == "on":
        assert usdc(carol, registered.ramp["destination"]["address"]) == 0
        refunded_at_most_once(carol, registered, done)
    else:
        assert registered.keys.user is not None
        assert usdc(carol, registered.keys.user.address) == Decimal("100")
        assert done.get("refund") is None, done
        assert payouts(carol, registered.id) == []
    reconciled(root)


# -- the payment and its webhook -------------------------------------------------------------------------


def test_a_payment_webhook_sent_twice_completes_once(carol: Ramps, root: Client, twin_database_url: str) -> None:
    registered, done = drive(
        carol,
        "on",
        lambda r: script(carol, "pix", duplicate_webhooks=True, match={"operation": "charge", "reference": r.id}),
    )
    ops = completed_once(carol, root, twin_database_url, registered, done)
    assert len(key_of(ops, registered.id, "mint")) == 1


def test_a_payment_made_before_start_completes(carol: Ramps, root: Client, twin_database_url: str) -> None:
    registered = carol.signed("on")
    paid = carol.anonymous.post("/_sim/pix/payments", {"ramp_id": registered.id})
    assert paid.status == 200, paid
    done = go(carol, registered, pay=False)
    completed_once(carol, root, twin_database_url, registered, done)


def test_no_payment_within_the_window_expires_the_ramp_and_a_late_payment_goes_back(
    carol: Ramps, root: Client, twin_database_url: str
) -> None:
    """The payment window (the ``test`` stage's seconds) runs out: ``expired`` at ``payment``,
    nothing minted, its charge closed — so a payment that still comes is returned by the rail."""
    registered, done = drive(carol, "on", pay=False)
    assert (done["status"], done["phase"]) == ("expired", "payment"), done
    assert [e["message"] for e in done["errors"]] == ["no payment came within the payment window"]
    assert done["refund"] is None
    assert journal(twin_database_url, registered.id) == {}  # nothing was done for it
    (charge,) = carol.charges(registered.id)
    assert charge["status"] == "cancelled", charge
    late = carol.anonymous.post("/_sim/pix/payments", {"ramp_id": registered.id})
    assert late.status == 200, late
    assert payouts(carol, registered.id) == [("refund", registered.ramp["input_amount"], "completed")]
    assert carol.get(registered.id)["status"] == "expired"
    reconciled(root)


def test_a_payment_webhook_never_sent_does_not_lose_the_ramp(
    carol: Ramps, root: Client, twin_database_url: str
) -> None:
    """The rail took the payment but its webhook never came: the ``ramp-watch`` schedule asks the
    rail for the charge's payments, records it as the webhook would have, and the ramp completes."""
    registered = carol.signed("on")
    script(carol, "pix", drop_webhooks=True, match={"operation": "charge", "reference": registered.id})
    started = carol.start(registered.id)
    assert started.status == 202, started
    assert carol.anonymous.post("/_sim/pix/payments", {"ramp_id": registered.id}).status == 200

    for _ in range(30):  # the wait parks, then its grace (the test stage's 5 s) runs out
        ran = carol.anonymous.post("/_twin/schedules/ramp-watch/run")  # (or the twin's own minute run)
        assert ran.status == 200, ran
        if registered.id in ran.body["result"]["payments_found"] or carol.get(registered.id)["phase"] != "payment":
            break
        time.sleep(2)
    else:
        raise AssertionError("the watch never found the payment whose webhook was dropped")
    done = carol.settled(registered.id, timeout=SETTLE)
    completed_once(carol, root, twin_database_url, registered, done)
    assert carol.anonymous.get("/_sim/webhooks").body.get("dropped"), "the payment's webhook was dropped"


@pytest.mark.parametrize(("kind", "operation"), [("on", "mint"), ("off", "payout")])
def test_provider_webhooks_sent_twice_or_never_complete_once(
    carol: Ramps, root: Client, twin_database_url: str, kind: str, operation: str
) -> None:
    """The mint's or payout's webhook twice, then (another ramp) never: neither pays twice nor stalls."""
    twice, done = drive(
        carol,
        kind,
        lambda r: script(carol, "pix", duplicate_webhooks=True, match={"operation": operation, "reference": r.id}),
    )
    assert script_now(carol, "pix")["duplicate_webhooks"] is True
    ops = completed_once(carol, root, twin_database_url, twice, done)
    assert len(key_of(ops, twice.id, operation)) == 1
    never, done = drive(
        carol,
        kind,
        lambda r: script(carol, "pix", drop_webhooks=True, match={"operation": operation, "reference": r.id}),
    )
    completed_once(carol, root, twin_database_url, never, done)


# -- a payout that never confirms: paused, nothing paid --------------------------------------------------


def test_a_payout_that_never_confirms_pauses_the_ramp(carol: Ramps, root: Client, twin_database_url: str) -> None:
    registered, done = drive(
        carol,
        "off",
        lambda r: script(carol, "pix", never_confirm=True, match={"operation": "payout", "reference": r.id}),
    )
    try:
        assert (done["status"], done["phase"]) == ("paused", "payout"), done
        (error,) = done["errors"]
        assert (error["phase"], error["recoverable"]) == ("payout", True), error
        assert "payout" in error["message"], error
        no_trace(error)
        assert [p for p in payouts(carol, registered.id) if p[2] == "completed"] == []
        ops = journal(twin_database_url, registered.id)
        assert [ops[k][0] for k in key_of(ops, registered.id, "payout")] != ["confirmed"], ops
        assert ephemeral_nonce(carol, registered) == EPHEMERAL_TXS  # everything up to the handoff ran once
        reconciled(root)
    finally:  # leave no paused ramp behind: an operator fails it
        if carol.get(registered.id)["status"] == "paused":
            root.post(f"/v1/admin/ramps/{registered.id}/fail")
