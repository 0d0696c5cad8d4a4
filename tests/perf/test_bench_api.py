"""Smoke test of the API benchmark (``make bench``): its cold-start and round-trip parts in a reduced mode,
in a child process (the benchmark sets process-wide state: environment, moto, the database singleton).

Counts are asserted — PostgreSQL round trips and DynamoDB calls of a warm ``POST /v1/transfers`` within
their budgets, no chain SDK in a function without the chains layer — timings never are."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from infra import manifest
from tests.perf import bench_api

KEYS = {"import_ms", "import_floor_ms", "pg_round_trips", "dynamodb_calls", "p50_ms", "p99_ms", "rps"}
KEYS |= {"import_ratio", "chain_sdks", "authorizer", "pg_round_trips_per_request", "dynamodb_calls_per_request"}
KEYS |= {"call_sites", "budgets", "missed"}
# Past psycopg's prepare threshold (5 executions on one connection), so a prepare on the wire is seen.
REQUESTS = 8


@pytest.fixture
def bench_env(tmp_path: Path) -> Iterator[tuple[dict[str, str], Path]]:
    """A reduced run on a database no other test (or xdist worker) uses, on the test server."""
    prefix = f"rampart_bench_api_smoke_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
    output = tmp_path / "api.json"
    env = {key: value for key, value in os.environ.items() if not key.startswith("BENCH_")}
    env |= {
        "BENCH_PARTS": "cold,trips",
        "BENCH_IMPORT_REPEATS": "1",
        "BENCH_REQUESTS": str(REQUESTS),
        "BENCH_SERVER": "pg-test",
        "BENCH_DB_PREFIX": prefix,
        "BENCH_OUTPUT": str(output),
    }
    base = os.environ.get("TEST_DATABASE_URL")
    if base:
        env["DATABASE_URL"] = base
    else:
        env.pop("DATABASE_URL", None)
    yield env, output
    from infra.local.postgres import embedded_server

    admin = base or embedded_server("pg-test").get_uri()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(f"{prefix}_rt")))


def run_bench(env: dict[str, str], output: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "tests.perf.bench_api"],
        cwd=bench_api.ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    data: dict[str, Any] = json.loads(output.read_text())
    data["_table"] = done.stdout
    return data


def test_cold_start_and_round_trips_within_their_counted_budgets(bench_env: tuple[dict[str, str], Path]) -> None:
    data = run_bench(*bench_env)

    assert KEYS - data.keys() == set()
    names = {fn.name for fn in manifest.FUNCTIONS}
    assert set(data["import_ms"]) == set(data["import_ratio"]) == set(data["chain_sdks"]) == names
    assert data["import_floor_ms"] > 0
    assert all(ms > 0 for ms in data["import_ms"].values())
    assert (data["p50_ms"], data["p99_ms"], data["rps"]) == (None, None, None)  # latency not run here
    # No chain SDK where the chains layer is not: not even an attempt to import one.
    assert bench_api.chain_violations(data) == {}

    over = json.dumps(data["requests_over_budget"], indent=1)
    pg, dynamodb = data["pg_round_trips_per_request"], data["dynamodb_calls_per_request"]
    assert len(pg) == len(dynamodb) == REQUESTS
    # At least one each (the counters count), at most the budget: the ledger work and the idempotency record.
    assert all(1 <= n <= bench_api.PG_BUDGET for n in pg), f"PostgreSQL round trips per request {pg}:\n{over}"
    assert all(1 <= n <= bench_api.DYNAMODB_BUDGET for n in dynamodb), f"DynamoDB calls {dynamodb}:\n{over}"
    assert data["other_aws_calls"] == []
    # A bearer token is checked without the database.
    assert data["authorizer"]["bearer_pg_round_trips"] == 0
    assert data["authorizer"]["bearer_aws_calls"] == 0
    table = data["_table"]
    assert "cold start" in table
    assert "round trips" in table
