"""The ramps' figures (ARCHITECTURE.md, "Performance budgets"; issue 11), measured in one run
(``make bench``) against a local twin (``python -m infra.local``, a child process on its own fresh
database, simulators without delay):

- **start → completed** for each BRL corridor (the median of ``BENCH_RAMP_REPEATS`` ramps, one at a
  time): from ``POST /start`` to the ramp's ``completed`` (the on-ramp's PIX payment is made right
  after start);
- **ramps completed per minute** with ``BENCH_RAMP_CONCURRENCY`` (8) running at once, both corridors;
- **PostgreSQL transactions per side effect** during that concurrent run: the database's committed
  transactions (``pg_stat_database.xact_commit``, everything: the API's requests, the worker, the
  webhook path, one status poll per second) divided by the journal's operations; and the journal's
  own (its claims, retries included, and settlements) per side effect — what the budget of two
  counts: everything around them (the phase entry, reads, polls) is in the first figure.

Prints a table with the CPU model and writes ``.bench/ramps.json``. Exits 1 when a ramp does not
complete (the figures would mean nothing)."""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 180.0  # not money: seconds


def env(name: str, default: str) -> str:
    return os.environ.get(name) or default


def _ramp(url: str, kind: str, corridor: dict[str, Any], client: Any) -> tuple[str, Any]:
    """A quote, a registration with fresh keys, every blueprint signed: ready to start (the
    demo's client: infra/local/demo.py)."""
    from infra.local.demo import Client, prepare

    return str(prepare(client, kind, corridor).ramp["id"]), Client(url)


def _run(url: str, client: Any, ramp_id: str, kind: str, sim: Any, poll: float) -> float:
    """Start it (and pay, for an on-ramp); seconds until it completed."""
    started = time.monotonic()
    client.call("POST", f"/v1/ramps/{ramp_id}/start", status=202, key=True)
    if kind == "on":
        sim.call("POST", "/_sim/pix/payments", {"ramp_id": ramp_id})
    while True:
        shown = client.call("GET", f"/v1/ramps/{ramp_id}")
        if shown["status"] == "completed":
            return time.monotonic() - started
        if shown["status"] not in ("running", "initial"):
            raise RuntimeError(f"{ramp_id} ended {shown['status']}: {shown['errors']}")
        if time.monotonic() - started > TIMEOUT:
            raise RuntimeError(f"{ramp_id} did not complete within {TIMEOUT:.0f}s")
        time.sleep(poll)


def measure(url: str, database_url: str, repeats: int, concurrency: int) -> dict[str, Any]:
    import psycopg

    from infra.local.demo import Client

    client = Client(url)
    email = f"bench-{uuid.uuid4().hex[:8]}@example.com"
    client.call(
        "POST", "/v1/auth/register", {"email": email, "password": "bench password 123", "role": "user"}, status=201
    )
    client.login(email, "bench password 123")
    corridors = {c["ramp_type"]: c for c in client.call("GET", "/v1/corridors")["items"]}
    figures: dict[str, Any] = {}
    for kind in ("on", "off"):
        times = []
        for _ in range(repeats):
            ramp_id, sim = _ramp(url, kind, corridors[kind], client)
            times.append(_run(url, client, ramp_id, kind, sim, poll=0.05))
        figures[f"brl_{kind}_start_to_completed_s"] = round(statistics.median(times), 2)
    prepared = [
        (kind, *_ramp(url, kind, corridors[kind], client)) for kind in (["on", "off"] * concurrency)[:concurrency]
    ]

    def commits() -> int:
        with psycopg.connect(database_url, autocommit=True) as conn:
            row = conn.execute("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()").fetchone()
        assert row is not None
        return int(row[0])

    before = commits()
    errors: list[BaseException] = []
    started = time.monotonic()

    def one(kind: str, ramp_id: str, sim: Any) -> None:
        try:
            _run(url, client, ramp_id, kind, sim, poll=1.0)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=one, args=item) for item in prepared]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    committed = commits() - before
    if errors:
        raise RuntimeError(f"{len(errors)} of {concurrency} ramps did not complete: {errors[0]}")
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*), COALESCE(sum(attempts), 0), count(settled_at) FROM journal.operations "
            "WHERE ramp_id = ANY(%s)",
            ([r for _, r, _ in prepared],),
        ).fetchone()
    operations = int(row[0]) if row else 0
    # The journal's own transactions: each claim (an attempt) and each settlement is one.
    journal_transactions = int(row[1]) + int(row[2]) if row else 0
    figures |= {
        "concurrent_ramps": concurrency,
        "concurrent_seconds": round(elapsed, 2),
        "ramps_per_minute": round(concurrency / elapsed * 60, 1),
        "side_effects": operations,
        "pg_transactions": committed,
        "pg_transactions_per_side_effect": round(committed / operations, 1) if operations else None,
        "journal_transactions_per_side_effect": round(journal_transactions / operations, 2) if operations else None,
    }
    return figures


def main() -> int:
    from infra.local.child import child_twin
    from infra.local.postgres import embedded_server, ensure_database, with_database
    from tests.perf.bench_ledger import cpu_model

    repeats = int(env("BENCH_RAMP_REPEATS", "3"))
    concurrency = int(env("BENCH_RAMP_CONCURRENCY", "8"))
    base = os.environ.get("DATABASE_URL")
    admin_url = base if base else embedded_server(env("BENCH_SERVER", "pg-bench-ramps")).get_uri()
    name = f"{env('BENCH_DB_PREFIX', 'rampart_bench_ramps')}_{uuid.uuid4().hex[:6]}"
    ensure_database(admin_url, name, fresh=True)
    database_url = with_database(admin_url, name)
    output = Path(env("BENCH_OUTPUT", str(ROOT / ".bench" / "ramps.json")))
    with (
        tempfile.TemporaryDirectory() as state,
        child_twin(database_url, Path(state), env={"RAMPART_SCHEDULES": "0"}, timeout=180) as url,
    ):
        try:
            figures = measure(url, database_url, repeats, concurrency)
        except RuntimeError as error:
            print(f"ramps benchmark failed: {error}", file=sys.stderr)
            return 1
    figures["cpu"] = cpu_model()
    print(f"Ramps on {figures['cpu']} (twin, simulators without delay)")
    width = max(len(k) for k in figures)
    for key, value in figures.items():
        if key != "cpu":
            print(f"  {key:<{width}}  {value}")
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
