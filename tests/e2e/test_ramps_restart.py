"""Never lost, never silent (ARCHITECTURE.md, "Ramps"): the backend twin's process is killed mid-ramp
(SIGKILL: moto, and with it the ramp's execution, is gone) and started again on the same database,
state dir and port while the world process runs on. The ramp is found still ``running`` with no
execution; the ``ramp-watch`` schedule pauses it with an error naming the lost execution; an
operator's resume completes it through a recovery execution ``{id}--r1``, and nothing is done twice
(the journal has each key once, confirmed; the ephemeral's nonce is its pre-signed count; the
destination got exactly ``output_amount``; reconciliation finds nothing).

This test has its own twin, not the session's: a world started here (the twin attaches to it
through ``RAMPART_WORLD_URL`` and never stops it) and a child twin it can kill, on a fresh
database of its own. Schedules are off in that twin so that the pause is the one asked for; its stage
is ``test`` (the watch's grace in seconds). When the kill lands inside a claim (it usually does: the
chain is slowed), the recovery waits out the dead worker's lease (``LEASE_SECONDS``) first."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from infra.local.child import ChildTwin
from infra.world.launcher import WorldProcess
from tests.e2e.api import Client, admin
from tests.e2e.conftest import _fresh_database
from tests.e2e.ramps import Ramps
from tests.support.waiting import eventually

pytestmark = pytest.mark.xdist_group("ramp-restart")  # its own twin and world: any worker

PAST_MINT = ("swap", "fees", "deliver", "sweep")  # on-ramp phases after mint, before complete
SLOW_CHAIN = {"delay_seconds": "0.5"}  # every base call waits: the kill lands between mint and complete


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorldProcess]:
    """The world, started by the test (a child of pytest, not of the twin): it outlives the twin.
    Webhooks that found the twin down are retried within 2 s once it is back."""
    process = WorldProcess(tmp_path_factory.mktemp("restart-world"), extra_args=["--webhook-max-delay", "2"])
    process.start()
    try:
        process.wait_ready()
        yield process
    finally:
        process.stop()


@pytest.fixture
def twin(tmp_path: Path, world: WorldProcess) -> Iterator[ChildTwin]:
    assert world.url is not None
    child = ChildTwin(
        _fresh_database("rampart_restart"),
        tmp_path / "twin",
        env={
            "RAMPART_WORLD_URL": world.url,
            "RAMPART_WORLD_DATA_DIR": str(world.data_dir),
            "RAMPART_DB_POOL_SIZE": "4",
            "RAMPART_SCHEDULES": "0",
            "RAMPART_STAGE": "test",  # the watch's grace is seconds
        },
        port=_free_port(),
    )
    child.start()
    try:
        yield child
    finally:
        child.stop()


def _metric(lines: list[str], name: str) -> list[int]:
    """Every value of ``name`` in the embedded-metric-format lines of a twin's log."""
    values: list[int] = []
    for line in lines:
        if '"_aws"' not in line or f'"{name}"' not in line:
            continue
        try:
            found = json.loads(line[line.index("{") :]).get(name)
        except ValueError:
            continue
        values += [int(v) for v in found] if isinstance(found, list) else [int(found)]
    return values


def _journal(database_url: str, ramp_id: str) -> list[tuple[str, str]]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        rows = conn.execute("SELECT key, status FROM journal.operations WHERE ramp_id = %s", (ramp_id,)).fetchall()
    return [(str(key), str(status)) for key, status in rows]


def test_a_twin_killed_mid_ramp_finds_pauses_and_recovers_it(twin: ChildTwin, world: WorldProcess) -> None:
    url = twin.url
    assert url is not None
    assert world.url is not None
    the_world = Client(world.url)
    bob = Ramps(url)
    registered = bob.started("on")
    ramp_id = registered.id
    # 1. Paid, then killed past mint and before complete.
    assert the_world.post("/_sim/providers/base/script", {"reset": True, **SLOW_CHAIN}).status == 200
    assert bob.anonymous.post("/_sim/pix/payments", {"ramp_id": ramp_id}).status == 200

    def past_mint() -> dict[str, Any] | None:
        shown = bob.get(ramp_id)
        assert shown["status"] == "running", shown  # completed this fast: slow the chain more
        return shown if shown["phase"] in PAST_MINT else None

    before = eventually(past_mint, timeout=90, what="the ramp past mint")
    twin.kill()
    assert the_world.post("/_sim/providers/base/script", {"reset": True}).status == 200

    # 2. Started again on the same database, state dir and port: the ramp is there, its execution is not.
    assert twin.start() == url
    found = bob.get(ramp_id)  # the same token: the JWT keys live in the state dir
    assert found["status"] == "running", found
    assert found["phase"] in PAST_MINT, (before, found)
    assert bob.executions(ramp_id) == []

    # 3. The watch finds it once it has been idle for the grace period: paused, with an error naming
    # the lost execution, a log line and the RampsPaused metric.
    logged_from = twin.log_path.stat().st_size

    def watched() -> dict[str, Any] | None:
        run = bob.anonymous.post("/_twin/schedules/ramp-watch/run")
        assert run.status == 200, run
        return dict(run.body["result"]) if ramp_id in run.body["result"]["paused"] else None

    found_by = eventually(watched, timeout=60, what="the watch pausing the ramp")
    assert found_by["paused_total"] >= 1, found_by
    with twin.log_path.open("rb") as log:
        log.seek(logged_from)
        lines = log.read().decode(errors="replace").splitlines()
    assert any("ramp paused by the watch" in line for line in lines), lines[-20:]
    assert 1 in _metric(lines, "RampsPaused"), lines[-20:]
    paused = bob.get(ramp_id)
    assert (paused["status"], paused["phase"]) == ("paused", found["phase"]), paused
    error = paused["errors"][-1]
    assert error["recoverable"] is True, error
    assert "execution" in error["message"], error
    assert "Traceback" not in error["message"], error
    root = admin(url)
    listed = root.get("/v1/admin/ramps?status=paused")
    assert listed.status == 200, listed
    assert ramp_id in [r["id"] for r in listed.body["items"]]

    # 4. Resumed: a recovery execution completes it, nothing done twice.
    resumed = root.post(f"/v1/admin/ramps/{ramp_id}/resume")
    assert resumed.status == 200, resumed
    assert resumed.body["status"] == "running", resumed
    # The killed worker's claim holds its operation until its lease (LEASE_SECONDS) runs out: nobody can
    # know a worker is dead, so the recovery retries Busy until then, looks the operation up and goes on.
    done = bob.settled(ramp_id, timeout=240)
    assert (done["status"], done["phase"]) == ("completed", "complete"), done
    recovery = bob.executions(f"{ramp_id}--r1")
    assert [e["status"] for e in recovery] == ["SUCCEEDED"], recovery
    assert all(e["status"] == "SUCCEEDED" for e in bob.executions(ramp_id))  # gone with moto, or finished
    destination = registered.ramp["destination"]["address"]
    assert bob.balances(destination)["balances"]["USDC"] == registered.ramp["output_amount"]
    journal = _journal(twin.database_url, ramp_id)
    keys = [key for key, _status in journal]
    assert len(keys) == len(set(keys)), journal
    assert {status for _key, status in journal} == {"confirmed"}, journal
    ephemeral = registered.keys.ephemeral.address
    presigned = [tx for tx in registered.ramp["unsigned_txs"] if tx["signer"].lower() == ephemeral.lower()]
    assert bob.balances(ephemeral)["nonce"] == len(presigned)
    reconciliation = root.get("/v1/admin/reconciliation")
    assert reconciliation.status == 200, reconciliation
    assert reconciliation.body["differences"] == [], reconciliation
