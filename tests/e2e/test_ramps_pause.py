"""Paused is a state, not a silence (ARCHITECTURE.md, "Ramps"): an outcome nobody knows pauses the
ramp at once, with its error; an operator resumes it (back into the phase it paused in) or fails
it; with no live execution to resume, a recovery execution ``{ramp_id}--r{n}`` enters at that phase
and the journal keeps anything from being done twice.

The unknown outcome is planted the way the journal records one (an operation of the next phase
marked ``unknown``): the mint's, before the PIX payment arrives."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest

from tests.e2e.api import Client, admin
from tests.e2e.ramps import Ramps, execute
from tests.support.waiting import eventually

pytestmark = pytest.mark.xdist_group("ramps")


@pytest.fixture(scope="module")
def bob(twin_url: str) -> Ramps:
    return Ramps(twin_url)


def _plant_unknown_mint(database_url: str, ramp_id: str) -> str:
    key = f"{ramp_id}:mint:brla"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO journal.operations (key, ramp_id, kind, request, request_hash, status, claim_id, lease_until)"
            " VALUES (%s, %s, 'mint', '{}', %s, 'unknown', %s, now())",
            (key, ramp_id, b"\x00" * 32, str(uuid.uuid4())),
        )
    return key


def _reconcile_by_hand(database_url: str, key: str) -> None:
    """The operator found that the mint never happened: the unknown operation goes."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DELETE FROM journal.operations WHERE key = %s", (key,))


def _paused(bob: Ramps, twin_database_url: str) -> tuple[Any, str]:
    registered = bob.started("on")
    key = _plant_unknown_mint(twin_database_url, registered.id)
    assert bob.anonymous.post("/_sim/pix/payments", {"ramp_id": registered.id}).status == 200

    def paused() -> dict[str, Any] | None:
        shown = bob.get(registered.id)
        return shown if shown["status"] == "paused" else None

    shown = eventually(paused, timeout=60, what="the ramp paused")
    assert shown["phase"] == "mint"
    (error,) = shown["errors"]
    assert (error["phase"], error["recoverable"]) == ("mint", True)
    assert "unknown" in error["message"]
    assert "Traceback" not in error["message"]
    return registered, key


def test_an_unknown_outcome_pauses_and_a_resume_completes_it(bob: Ramps, twin_url: str, twin_database_url: str) -> None:
    registered, key = _paused(bob, twin_database_url)
    root = admin(twin_url)
    paused = root.get("/v1/admin/ramps?status=paused").body["items"]
    assert registered.id in [r["id"] for r in paused]
    assert bob.client.post(f"/v1/admin/ramps/{registered.id}/resume").status == 403  # an operator's act
    _reconcile_by_hand(twin_database_url, key)
    resumed = root.post(f"/v1/admin/ramps/{registered.id}/resume")
    assert resumed.status == 200, resumed
    assert resumed.body["status"] == "running"
    done = bob.settled(registered.id)
    assert (done["status"], done["phase"]) == ("completed", "complete")
    assert [h["phase"] for h in done["history"]].count("mint") == 1
    assert (
        bob.balances(registered.ramp["destination"]["address"])["balances"]["USDC"] == registered.ramp["output_amount"]
    )
    assert [e["name"] for e in bob.executions(registered.id)] == [registered.id]  # resumed, not recovered
    assert root.get("/v1/admin/reconciliation").body["differences"] == []
    problem = root.post(f"/v1/admin/ramps/{registered.id}/resume")
    assert (problem.status, problem.body["type"]) == (409, "/problems/invalid-phase")


def test_a_paused_ramp_an_operator_fails_ends_failed(bob: Ramps, twin_url: str, twin_database_url: str) -> None:
    registered, _key = _paused(bob, twin_database_url)
    failed = admin(twin_url).post(f"/v1/admin/ramps/{registered.id}/fail")
    assert failed.status == 200, failed
    done = bob.settled(registered.id)
    assert (done["status"], done["phase"]) == ("failed", "failed")
    assert bob.balances(registered.keys.ephemeral.address)["balances"]["BRLA"].strip("0.") == ""  # nothing minted


def test_without_a_live_execution_a_recovery_execution_completes_it(
    bob: Ramps, twin_url: str, twin_database_url: str
) -> None:
    """The twin lost the execution (as a restart does): resume starts ``{id}--r1`` at the paused
    phase; what was done before (gas, approvals) is found in the journal, not done again."""
    registered, key = _paused(bob, twin_database_url)
    _reconcile_by_hand(twin_database_url, key)
    with psycopg.connect(twin_database_url, autocommit=True) as conn:
        conn.execute("UPDATE ramps.ramps SET execution_arn = execution_arn || '-gone' WHERE id = %s", (registered.id,))
        funded_before = conn.execute(
            "SELECT count(*) FROM journal.operations WHERE ramp_id = %s AND key LIKE %s",
            (registered.id, f"{registered.id}:fund:%"),
        ).fetchone()
    resumed = admin(twin_url).post(f"/v1/admin/ramps/{registered.id}/resume")
    assert resumed.status == 200, resumed
    done = bob.settled(registered.id)
    assert (done["status"], done["phase"]) == ("completed", "complete")
    names = sorted(e["name"] for e in bob.executions(registered.id)) + sorted(
        e["name"] for e in bob.executions(f"{registered.id}--r1")
    )
    assert f"{registered.id}--r1" in names
    with psycopg.connect(twin_database_url, autocommit=True) as conn:
        funded_after = conn.execute(
            "SELECT count(*), sum(attempts) FROM journal.operations WHERE ramp_id = %s AND key LIKE %s",
            (registered.id, f"{registered.id}:fund:%"),
        ).fetchone()
    assert funded_before is not None
    assert funded_after is not None
    assert (funded_before[0], funded_after[0], funded_after[1]) == (1, 1, 1)  # the gas went once
    assert admin(twin_url).get("/v1/admin/reconciliation").body["differences"] == []


def test_only_a_paused_ramp_is_resumed_or_failed(bob: Ramps, twin_url: str) -> None:
    root: Client = admin(twin_url)
    waiting = bob.started("on")
    for action in ("resume", "fail"):
        reply = root.post(f"/v1/admin/ramps/{waiting.id}/{action}")
        assert (reply.status, reply.body["type"]) == (409, "/problems/invalid-phase")
    assert root.post("/v1/admin/ramps/rmp_missing/resume").status == 404


def test_the_watch_pauses_a_running_ramp_whose_execution_is_gone(
    bob: Ramps, twin_url: str, twin_database_url: str
) -> None:
    """Never lost, never silent: a running ramp whose execution is gone (what a restart of the twin
    does to moto's executions) is paused by the ``ramp-watch`` schedule, with an error naming the
    execution; resumed, a recovery execution completes it. A ramp that moves is left alone."""
    registered = bob.started("on")  # waits for its payment: running, its execution alive
    moving = bob.started("on")
    eventually(lambda: payment_wait_parked(twin_database_url, registered.id), timeout=60, what="the wait parked")
    gone = execute(
        twin_database_url,
        "UPDATE ramps.ramps SET execution_arn = execution_arn || '-gone', updated_at = now() - interval '1 hour' "
        "WHERE id = %s AND status = 'running'",
        registered.id,
    )
    assert gone == 1
    ran = bob.anonymous.post("/_twin/schedules/ramp-watch/run")
    assert ran.status == 200, ran
    # this run paused it — or the twin's own run of the minute did, just before
    assert registered.id in ran.body["result"]["paused"] or bob.get(registered.id)["status"] == "paused"
    assert moving.id not in ran.body["result"]["paused"]  # its execution is alive
    assert ran.body["result"]["paused_total"] >= 1
    shown = bob.get(registered.id)
    assert (shown["status"], shown["phase"]) == ("paused", "payment")
    error = shown["errors"][-1]
    assert (error["phase"], error["recoverable"]) == ("payment", True)
    assert f"{registered.id}-gone is gone" in error["message"]
    assert bob.get(moving.id)["status"] == "running"
    root = admin(twin_url)
    assert registered.id in [r["id"] for r in root.get("/v1/admin/ramps?status=paused").body["items"]]

    assert bob.anonymous.post("/_sim/pix/payments", {"ramp_id": registered.id}).status == 200
    resumed = root.post(f"/v1/admin/ramps/{registered.id}/resume")
    assert resumed.status == 200, resumed
    done = bob.settled(registered.id)
    assert (done["status"], done["phase"]) == ("completed", "complete")
    (recovery,) = bob.executions(f"{registered.id}--r1")
    assert recovery["status"] == "SUCCEEDED", recovery
    assert (
        bob.balances(registered.ramp["destination"]["address"])["balances"]["USDC"] == registered.ramp["output_amount"]
    )
    assert root.get("/v1/admin/reconciliation").body["differences"] == []


def payment_wait_parked(database_url: str, ramp_id: str) -> bool:
    """Whether the ramp's execution keeps a task token in ``payment`` (its wait has begun)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute("SELECT task_phase FROM ramps.ramps WHERE id = %s", (ramp_id,)).fetchone()
    return row is not None and row[0] == "payment"
