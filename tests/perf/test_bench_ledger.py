"""Smoke test of the ledger benchmark (``make bench``): every scenario for one second against its own
embedded server and databases. No timing assertions: only that it measures real, valid work."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from tests.perf import bench_ledger

SCENARIOS = ("single", "batch", "hot")
POSITIVE = ("pgbench_tps", *(f"{s}_{k}" for s in SCENARIOS for k in ("tps", "ratio", "transfers")))
KEYS = {*POSITIVE, *(f"{s}_failed" for s in SCENARIOS), "verify_problems", "clients", "seconds"}
KEYS |= {"threads", "scale", "postgres_version", "synchronous_commit", "fsync", "schema_digest", "timestamp"}
KEYS |= {"budgets", "missed", "runs"}


@pytest.fixture
def bench_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """One-second scenarios at TPC-B scale 1, on databases no other test (or xdist worker) uses."""
    prefix = f"rampart_bench_smoke_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
    output = tmp_path / "ledger.json"
    settings = {"BENCH_SECONDS": "1", "BENCH_SCALE": "1", "BENCH_CLIENTS": "8", "BENCH_THREADS": "2"}
    settings["BENCH_SERVER"] = "pg-bench-smoke"
    for key, value in (settings | {"BENCH_DB_PREFIX": prefix, "BENCH_OUTPUT": str(output)}).items():
        monkeypatch.setenv(key, value)
    if os.environ.get("TEST_DATABASE_URL"):
        monkeypatch.setenv("DATABASE_URL", os.environ["TEST_DATABASE_URL"])
    else:
        monkeypatch.delenv("DATABASE_URL", raising=False)
    yield output
    admin = bench_ledger.admin_url(bench_ledger.Config.from_env())
    with psycopg.connect(admin, autocommit=True) as conn:
        for database in (f"{prefix}_tpcb", f"{prefix}_ledger"):
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))


def test_every_scenario_does_real_valid_work(bench_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_ledger.main() == 0

    data = json.loads(bench_env.read_text())
    assert KEYS - data.keys() == set()
    assert all(data[key] > 0 for key in POSITIVE), {key: data[key] for key in POSITIVE}
    assert (data["clients"], data["seconds"], data["scale"]) == (8, 1, 1)
    assert data["verify_problems"] == 0
    assert [data[f"{s}_failed"] for s in SCENARIOS] == [0, 0, 0]
    # Every call wrote fresh transfers: no reference was replayed.
    per_call = {s.name: s.per_call for s in bench_ledger.SCENARIOS}
    assert all(data[f"{s}_transfers"] == data["runs"][s]["calls"] * per_call[s] for s in SCENARIOS)
    table = capsys.readouterr().out
    assert all(f"\n{name} " in table for name in ("pgbench", *SCENARIOS))
