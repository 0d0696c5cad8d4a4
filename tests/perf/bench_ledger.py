"""Ledger throughput against ``pgbench`` TPC-B on the same server, in the same run (``make bench``).

Every scenario is driven by ``pgbench -M prepared`` with the same clients, threads and duration as
the TPC-B baseline, so the client overhead is identical and no Python sits in the hot loop:

- ``single``: one ``ledger.create_transfer`` per call between two distinct random wallets of 50;
- ``batch``: one ``ledger.create_transfers`` of 100 random transfers among 50 wallets per call,
  counted in transfers per second;
- ``hot``: as ``single`` with only 10 wallets (lock contention).

Each transfer has a fresh reference (``gen_random_uuid()``): a reused one would be a replay, not a
transfer, which the run checks by counting the rows each scenario wrote. Prints a table and writes
``.bench/ledger.json``; exits 0 even when a budget is missed (it is a benchmark, not a test).

Knobs (environment): ``BENCH_SECONDS`` (20 per scenario), ``BENCH_CLIENTS`` (8), ``BENCH_THREADS``
(2), ``BENCH_SCALE`` (TPC-B scale, 10), ``BENCH_SERVER`` (embedded server, ``pg-bench``),
``BENCH_DB_PREFIX`` (``rampart_bench``), ``BENCH_OUTPUT`` (``.bench/ledger.json``) and
``DATABASE_URL`` (an existing server to use instead of the embedded one).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil  # type: ignore[import-untyped]
import psycopg

from infra.local.postgres import bin_dir, embedded_server, ensure_database
from rampart.adapters.postgres.migrate import MIGRATIONS, migrate

Report = dict[str, Any]
ROOT = Path(__file__).resolve().parents[2]
BUDGETS = {"single": 0.7, "batch": 3.0, "hot": 0.5}
OTHER_LOAD = 0.25  # cores busy outside the server and pgbench that make a run suspect
FUNDING = 10**15  # base units per wallet: transfers of at most 1000 never run a wallet dry

# One transfer between two distinct wallets of :n consecutive ids from :first.
SINGLE_SCRIPT = r"""
\set d :first + random(0, :n - 1)
\set c :first + (:d - :first + random(1, :n - 1)) % :n
\set amount random(1, 1000)
SELECT error FROM ledger.create_transfer(:owner, gen_random_uuid()::text, :d, :c, :amount, 'USD');
"""

# One atomic batch of :size transfers, each between two distinct random wallets, built in SQL.
BATCH_SCRIPT = r"""
SELECT count(o.error)
  FROM (SELECT array_agg(gen_random_uuid()::text) AS refs,
               array_agg(:first + s.d) AS debits,
               array_agg(:first + (s.d + s.k) % :n) AS credits,
               array_agg(s.amount) AS amounts,
               array_agg('USD'::text) AS currencies,
               array_agg(NULL::integer) AS timeouts
          FROM (SELECT floor(random() * :n)::bigint AS d,
                       1 + floor(random() * (:n - 1))::bigint AS k,
                       1 + floor(random() * 1000)::numeric AS amount
                  FROM generate_series(1, :size)) s) b,
       ledger.create_transfers(:owner, b.refs, b.debits, b.credits, b.amounts, b.currencies, b.timeouts) o;
"""


@dataclass(frozen=True)
class Config:
    seconds: int
    clients: int
    threads: int
    scale: int
    server: str
    prefix: str
    output: Path

    @classmethod
    def from_env(cls) -> Config:
        env = os.environ.get
        return cls(
            seconds=int(env("BENCH_SECONDS", "20")),
            clients=int(env("BENCH_CLIENTS", "8")),
            threads=int(env("BENCH_THREADS", "2")),
            scale=int(env("BENCH_SCALE", "10")),
            server=env("BENCH_SERVER", "pg-bench"),
            prefix=env("BENCH_DB_PREFIX", "rampart_bench"),
            output=Path(env("BENCH_OUTPUT", str(ROOT / ".bench" / "ledger.json"))),
        )


@dataclass(frozen=True)
class Scenario:
    name: str
    wallets: int
    per_call: int  # transfers per pgbench transaction
    script: str


SCENARIOS = (
    Scenario("single", wallets=50, per_call=1, script=SINGLE_SCRIPT),
    Scenario("batch", wallets=50, per_call=100, script=BATCH_SCRIPT),
    Scenario("hot", wallets=10, per_call=1, script=SINGLE_SCRIPT),
)


@dataclass(frozen=True)
class Run:
    """One pgbench run: its throughput, and where the CPU went meanwhile (CPU seconds)."""

    tps: float  # pgbench transactions per second: calls, for the ledger scenarios
    calls: int
    latency_ms: float
    elapsed: float  # wall seconds, connections included
    server_cpu: float  # the PostgreSQL server's processes (0 when the server is not local)
    client_cpu: float  # pgbench
    machine_cpu: float  # every process on the machine: the rest is other load

    def cores(self, cpu: float) -> float:
        return cpu / self.elapsed

    @property
    def other_cpu(self) -> float:
        return max(self.machine_cpu - self.server_cpu - self.client_cpu, 0.0)


@dataclass(frozen=True)
class Result:
    name: str
    run: Run
    transfers: int  # rows the scenario wrote
    failed: int  # of which refused (status 'failed')
    tps: float  # transfers per second
    ratio: float  # to TPC-B's tps


# servers and databases ---------------------------------------------------------------------------


def admin_url(config: Config) -> str:
    return os.environ.get("DATABASE_URL") or str(embedded_server(config.server).get_uri())


def database_url(admin: str, database: str) -> str:
    """``admin`` (a postgresql:// URL, as the migrations need) pointed at another database."""
    return urlsplit(admin)._replace(path=f"/{database}").geturl()


def pgbench_path() -> str:
    bundled = bin_dir() / "pgbench"
    found = str(bundled) if bundled.exists() else shutil.which("pgbench")
    if not found:
        raise RuntimeError("pgbench not found: neither bundled with pgserver nor on PATH")
    return found


def query(url: str, sql: str, params: tuple[Any, ...] = ()) -> tuple[Any, ...]:
    """The first row of one statement, in autocommit."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(sql, params).fetchone()
    assert row is not None
    return tuple(row)


def cpu_model() -> str:
    """The machine's CPU model and core count: ratios differ between machines of one kind, so every
    report names the one it was measured on."""
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for row in Path("/proc/cpuinfo").read_text().splitlines():
            if row.startswith("model name"):
                model = row.split(":", 1)[1].strip()
                break
    return f"{model}, {os.cpu_count()} cores"


def server_facts(url: str) -> dict[str, str]:
    """The settings a throughput depends on most: the version, and whether commits wait for the disk."""
    settings = ("server_version", "synchronous_commit", "fsync")
    values = query(url, "SELECT " + ", ".join(f"current_setting('{name}')" for name in settings))
    return {"postgres_version": values[0], "synchronous_commit": values[1], "fsync": values[2]}


def checkpoint(url: str) -> None:
    """Start every run from the same place: no dirty buffers left over from the setup or the last run."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CHECKPOINT")


# pgbench -----------------------------------------------------------------------------------------


def pgbench(args: list[str]) -> str:
    """Run pgbench; its report (stdout) or an error with what it said."""
    done = subprocess.run([pgbench_path(), *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"pgbench {' '.join(args)} exited {done.returncode}:\n{done.stderr}{done.stdout}")
    return done.stdout


def parse_number(report: str, pattern: str) -> float:
    match = re.search(pattern, report)
    if not match:
        raise RuntimeError(f"pgbench report without {pattern!r}:\n{report}")
    return float(match.group(1))


def server_pid(url: str) -> int | None:
    """The postmaster's pid when the server runs on this machine and we may read its CPU times."""
    try:
        data_directory = Path(str(query(url, "SHOW data_directory")[0]))
        pid = int((data_directory / "postmaster.pid").read_text().split()[0])
        psutil.Process(pid).cpu_times()
    except (psycopg.Error, OSError, ValueError, psutil.Error):
        return None
    return pid


def server_cpu(pid: int | None) -> float:
    """CPU seconds of the server so far: the postmaster, its live children and the ones it has reaped (the
    backends of a finished pgbench run)."""
    if pid is None:
        return 0.0
    postmaster = psutil.Process(pid)
    own = postmaster.cpu_times()
    total = float(own.user + own.system + own.children_user + own.children_system)
    for child in postmaster.children():
        with contextlib.suppress(psutil.NoSuchProcess):
            times = child.cpu_times()
            total += times.user + times.system
    return total


def settle(url: str) -> None:
    """Wait (a few seconds at most) for pgbench's backends to exit, so the server's CPU account holds all
    their time: a backend is counted while it lives, then in its postmaster's reaped children."""
    deadline = time.monotonic() + 5
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            (others,) = conn.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
            ).fetchone() or (0,)
            if not others:
                return
            time.sleep(0.01)


def client_cpu() -> float:
    """CPU seconds of our finished child processes (pgbench)."""
    times = os.times()
    return times.children_user + times.children_system


def measure(config: Config, url: str, extra: list[str]) -> Run:
    """One timed pgbench run at the configured clients, threads and duration."""
    checkpoint(url)
    pid = server_pid(url)
    psutil.cpu_percent()  # starts the interval the next call reports on
    started, server, client = time.monotonic(), server_cpu(pid), client_cpu()
    run = ["-M", "prepared", "-c", str(config.clients), "-j", str(config.threads), "-T", str(config.seconds)]
    report = pgbench([*run, *extra, url])
    busy = psutil.cpu_percent() / 100 * (psutil.cpu_count() or 1)
    elapsed = time.monotonic() - started
    settle(url)
    return Run(
        tps=parse_number(report, r"tps = ([\d.]+) \(without initial connection time\)"),
        calls=int(parse_number(report, r"number of transactions actually processed: (\d+)")),
        latency_ms=parse_number(report, r"latency average = ([\d.]+) ms"),
        elapsed=elapsed,
        server_cpu=server_cpu(pid) - server,
        client_cpu=client_cpu() - client,
        machine_cpu=busy * elapsed,
    )


# TPC-B -------------------------------------------------------------------------------------------


def tpcb(config: Config, admin: str) -> str:
    """A fresh TPC-B database at the configured scale; returns its URL."""
    database = f"{config.prefix}_tpcb"
    ensure_database(admin, database, fresh=True)
    url = database_url(admin, database)
    pgbench(["-i", "-q", "-s", str(config.scale), url])
    return url


# ledger ------------------------------------------------------------------------------------------


def schema_digest() -> str:
    """Which ledger SQL was measured: a digest of the migrations."""
    digest = hashlib.sha256()
    for path in sorted(MIGRATIONS.glob("*.sql")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def ledger_database(config: Config, admin: str) -> str:
    database = f"{config.prefix}_ledger"
    ensure_database(admin, database, fresh=True)
    url = database_url(admin, database)
    migrate(url)
    return url


def open_wallets(url: str, owner: str, count: int) -> int:
    """``count`` USD wallets of ``owner`` (consecutive ids), each funded from the world account; the first id."""
    with psycopg.connect(url, autocommit=True) as conn:
        ids = [
            row[0]
            for row in conn.execute(
                "INSERT INTO ledger.accounts (owner_id, currency, name)"
                " SELECT %s, 'USD', 'wallet ' || g FROM generate_series(1, %s) g RETURNING id",
                (owner, count),
            )
        ]
        (world,) = conn.execute(
            "SELECT id FROM ledger.accounts WHERE is_system AND currency = 'USD' AND name = 'world'"
        ).fetchone() or (None,)
        errors = conn.execute(
            "SELECT error FROM ledger.create_transfers('bench-funding', %s, %s, %s, %s, %s, %s, false)"
            " WHERE error IS NOT NULL",
            (
                [f"{owner}-{i}" for i in ids],
                [world] * count,
                ids,
                [FUNDING] * count,
                ["USD"] * count,
                [None] * count,
            ),
        ).fetchall()
    if errors or ids != list(range(ids[0], ids[0] + count)):
        raise RuntimeError(f"could not open {count} consecutive funded wallets for {owner}: {errors}")
    return int(ids[0])


def vacuum(url: str) -> None:
    """Fresh statistics and no dead rows from the last scenario, as pgbench's TPC-B run has for its tables."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE) ledger.accounts, ledger.transfers, ledger.entries")


def ledger_scenario(config: Config, url: str, scenario: Scenario, workdir: Path) -> Run:
    owner = f"bench-{scenario.name}"
    first = open_wallets(url, owner, scenario.wallets)
    vacuum(url)
    script = workdir / f"{scenario.name}.sql"
    script.write_text(scenario.script)
    variables = {"owner": owner, "first": first, "n": scenario.wallets, "size": scenario.per_call}
    defines = [arg for key, value in variables.items() for arg in ("-D", f"{key}={value}")]
    return measure(config, url, ["-n", "-f", str(script), *defines])


def written(url: str, scenario: Scenario) -> tuple[int, int]:
    """Transfers the scenario wrote, and how many of them were refused."""
    total, failed = query(
        url,
        "SELECT count(*), count(*) FILTER (WHERE status = 'failed') FROM ledger.transfers WHERE owner_id = %s",
        (f"bench-{scenario.name}",),
    )
    return int(total), int(failed)


# report ------------------------------------------------------------------------------------------


def result(url: str, scenario: Scenario, run: Run, baseline: float) -> Result:
    transfers, failed = written(url, scenario)
    if transfers != run.calls * scenario.per_call:
        print(
            f"warning: {scenario.name} wrote {transfers} transfers for {run.calls} calls of {scenario.per_call}"
            " (replayed references, or refused batches)",
            file=sys.stderr,
        )
    tps = run.tps * scenario.per_call
    return Result(scenario.name, run, transfers, failed, tps, tps / baseline)


def rounded(run: Run) -> dict[str, float]:
    return {key: round(value, 3) for key, value in asdict(run).items()}


def summary(
    config: Config, facts: dict[str, str], baselines: list[Run], results: list[Result], problems: int
) -> Report:
    baseline = max(baselines, key=lambda run: run.tps)
    data: Report = {"pgbench_tps": baseline.tps, "pgbench_tps_runs": [run.tps for run in baselines]}
    data |= {f"{r.name}_tps": r.tps for r in results}
    data |= {f"{r.name}_ratio": r.ratio for r in results}
    data |= {f"{r.name}_failed": r.failed for r in results}
    data |= {f"{r.name}_transfers": r.transfers for r in results}
    return data | {
        "budgets": BUDGETS,
        "missed": [r.name for r in results if r.ratio < BUDGETS[r.name]],
        "verify_problems": problems,
        "clients": config.clients,
        "threads": config.threads,
        "seconds": config.seconds,
        "scale": config.scale,
        **facts,
        "runs": {"pgbench": rounded(baseline)} | {r.name: rounded(r.run) for r in results},
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
    }


HEADERS = (
    *("scenario", "tps", "ratio", "budget", "status", "transfers", "failed", "calls/s", "lat ms"),
    *("srv µs/op", "srv cores", "pgbench cores", "other cores"),
)


def line(cells: tuple[str, ...]) -> str:
    padded = (cell.rjust(max(len(head), 7) + 2) for cell, head in zip(cells[1:], HEADERS[1:], strict=True))
    return cells[0].ljust(8) + "".join(padded)


def load(run: Run, ops: int) -> tuple[str, ...]:
    """Where the time went: server CPU per operation (transaction or transfer), and cores kept busy."""
    return (
        f"{run.tps:.1f}",
        f"{run.latency_ms:.2f}",
        f"{run.server_cpu / max(ops, 1) * 1e6:.0f}",
        f"{run.cores(run.server_cpu):.2f}",
        f"{run.cores(run.client_cpu):.2f}",
        f"{run.cores(run.other_cpu):.2f}",
    )


def print_table(baseline: Run, results: list[Result]) -> None:
    print(line(HEADERS))
    print(line(("pgbench", f"{baseline.tps:.1f}", "1.00", "", "", "", "", *load(baseline, baseline.calls))))
    for r in results:
        status = "ok" if r.ratio >= BUDGETS[r.name] else "short"
        cells = (r.name, f"{r.tps:.1f}", f"{r.ratio:.2f}", f"{BUDGETS[r.name]:.2f}", status, str(r.transfers))
        print(line((*cells, str(r.failed), *load(r.run, r.transfers))))
    print(
        "srv µs/op: server CPU per TPC-B transaction or per transfer; cores: CPU kept busy by the server, by"
        " pgbench, and by everything else on the machine"
    )
    busiest = max(run.cores(run.other_cpu) for run in (baseline, *(r.run for r in results)))
    if busiest > OTHER_LOAD:
        print(f"warning: other load on the machine (up to {busiest:.2f} cores): these numbers are not comparable")


def main() -> int:
    config = Config.from_env()
    admin = admin_url(config)
    facts = server_facts(admin) | {"cpu": cpu_model()}
    print(f"CPU: {facts['cpu']}")
    print(
        f"PostgreSQL {facts['postgres_version']} (synchronous_commit {facts['synchronous_commit']},"
        f" fsync {facts['fsync']}); {config.clients} clients, {config.threads} threads,"
        f" {config.seconds} s per scenario, TPC-B scale {config.scale}",
        flush=True,
    )
    # TPC-B runs before and after the ledger scenarios; the ratios divide by the better of the two, so
    # a slow baseline (a checkpoint, a noisy neighbour) can only make the ledger look worse.
    tpcb_url = tpcb(config, admin)
    before = measure(config, tpcb_url, [])
    facts["schema_digest"] = schema_digest()
    url = ledger_database(config, admin)
    with tempfile.TemporaryDirectory(prefix="bench-ledger-") as workdir:
        runs = [(s, ledger_scenario(config, url, s, Path(workdir))) for s in SCENARIOS]
    after = measure(config, tpcb_url, [])
    baseline = max((before, after), key=lambda run: run.tps)
    results = [result(url, s, run, baseline.tps) for s, run in runs]
    verify_problems = int(query(url, "SELECT count(*) FROM ledger.verify()")[0])
    data = summary(config, facts, [before, after], results, verify_problems)
    print_table(baseline, results)
    print(f"pgbench TPC-B before / after the ledger: {before.tps:.1f} / {after.tps:.1f} tps (ratios use the better)")
    print(f"ledger.verify(): {verify_problems} problem(s)")
    if data["missed"]:
        print("budgets missed: " + ", ".join(f"{n} ({data[f'{n}_ratio']:.2f} < {BUDGETS[n]})" for n in data["missed"]))
    else:
        print("every budget met")
    config.output.parent.mkdir(parents=True, exist_ok=True)
    config.output.write_text(json.dumps(data, indent=2) + "\n")
    print(f"wrote {config.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
