"""Instructions per transfer, statement by statement (``make bench-count``): where the ledger
functions spend the server's work, in numbers that do not depend on the machine's load.

Throughput needs a quiet machine; instruction counts do not. This runs a fresh PostgreSQL (the
embedded build's binaries) in single-user mode under ``valgrind --tool=callgrind`` twice per
variant (a few calls, then many) and prints the difference per transfer, so start-up and the first
plans cancel out. A variant is the ledger as migrated, or the ledger with ``create_transfer`` /
``create_transfers`` cut short after one of its steps: the cost of a step is the difference
between two cuts (docs/ledger.md, "Performance", shows the table this prints).

Usage: ``python -m tests.perf.count_ledger [single|batch|hot ...]``. Needs valgrind. As root the
server runs as the embedded server's own user (``pgserver``). Writes nothing under the project.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import psycopg

from infra.local.postgres import bin_dir
from rampart.adapters.postgres.migrate import MIGRATIONS, migrate
from tests.perf.bench_ledger import open_wallets

PORT = 55999
OWNER = "bench-count"
RUNS = {"single": 300, "hot": 300, "batch": 5}  # calls in the measured run
WARM = {"single": 5, "hot": 5, "batch": 2}  # calls in the run subtracted from it
WALLETS = {"single": 50, "hot": 10, "batch": 50}

# Cut points: (label, function, the line before which the function returns).
SINGLE_CUTS = (
    ("call and argument checks", "create_transfer", "    -- Claim the reference first"),
    ("claim: INSERT the transfer", "create_transfer", "    -- Lock both accounts in ascending id order"),
    ("lock both accounts", "create_transfer", "    -- The ledger limit, on the rows already locked"),
    ("balance and limit checks", "create_transfer", "    IF p_timeout IS NULL THEN\n        -- Posted"),
    # (no cut between the entries and the account update: entries without their chain head would
    # collide with the next transfer's)
    (
        "entries (two hashes) and both accounts",
        "create_transfer",
        "    RETURN ledger.outcome_of(t, NULL, NULL, false);\nEND",
    ),
)
BATCH_CUTS = (
    ("call and validation", "create_transfers", "    IF v_err IS NULL THEN\n        -- The common case"),
    ("claim: INSERT 100 transfers", "create_transfers", "            -- What needs no lock comes first"),
    ("reply and plan (before the locks)", "create_transfers", "            v_state := ledger.lock_batch(v_plan);"),
    ("lock and read the accounts, totals fit", "create_transfers", "            IF NOT v_state.fits"),
    (
        "(the exact check, when totals do not fit)",
        "create_transfers",
        "            PERFORM ledger.apply_batch(v_plan, v_state);",
    ),
    ("entries, hash chains, account updates", "create_transfers", "            RETURN QUERY SELECT * FROM unnest"),
)


def function_source(name: str) -> str:
    """The last definition of ``ledger.<name>`` in the migrations, and the ALTERs that follow it."""
    text = ""
    for path in sorted(MIGRATIONS.glob("*.sql")):
        sql = path.read_text()
        start = sql.rfind(f"CREATE OR REPLACE FUNCTION ledger.{name}(")
        if start >= 0:
            end = sql.index("$$;", start) + 3
            text = sql[start:end]
            alter = re.search(rf"ALTER FUNCTION ledger\.{name}\([^)]*\)\s+SET [^;]+;", sql[end:])
            if alter:
                text += "\n" + alter.group(0)
    if not text:
        raise LookupError(name)
    return text


def cut(name: str, before: str) -> str:
    source = function_source(name)
    if before not in source:
        raise LookupError(f"{name}: no line {before!r}")
    stop = "    RETURN;\n" if name == "create_transfers" else "    RETURN NULL;\n"
    return source.replace(before, stop + before, 1)


def calls(scenario: str, count: int, first: int, prefix: str) -> str:
    rnd, wallets = random.Random(7), WALLETS[scenario]
    lines = []
    if scenario != "batch":
        lines.append(
            "PREPARE t(text, bigint, bigint, numeric) AS SELECT error FROM"
            f" ledger.create_transfer('{OWNER}', $1, $2, $3, $4, 'USD');"
        )
        for i in range(count):
            d = rnd.randrange(wallets)
            c = (d + rnd.randrange(1, wallets)) % wallets
            lines.append(f"EXECUTE t('{prefix}{i}', {first + d}, {first + c}, {rnd.randrange(1, 1000)});")
    else:
        lines.append(
            "PREPARE t(text[], bigint[], bigint[], numeric[]) AS SELECT count(o.error) FROM ledger.create_transfers("
            f"'{OWNER}', $1, $2, $3, $4, array_fill('USD'::text, ARRAY[100]), array_fill(NULL::integer, ARRAY[100])) o;"
        )
        for i in range(count):
            items = [(d := rnd.randrange(wallets), (d + rnd.randrange(1, wallets)) % wallets) for _ in range(100)]
            refs = ",".join(f"'{prefix}{i}-{k}'" for k in range(100))
            debits = ",".join(str(first + d) for d, _ in items)
            credits = ",".join(str(first + c) for _, c in items)
            amounts = ",".join(str(rnd.randrange(1, 1000)) for _ in items)
            lines.append(f"EXECUTE t(ARRAY[{refs}], ARRAY[{debits}], ARRAY[{credits}], ARRAY[{amounts}]);")
    return "\n\n".join(lines) + "\n\n"


class Server:
    """A throwaway cluster: a server for setting up, single-user runs for counting."""

    def __init__(self, root: Path) -> None:
        self.root, self.data = root, root / "data"
        self.user = ["runuser", "-u", "pgserver", "--"] if os.geteuid() == 0 else []
        if self.user:
            shutil.chown(root, "pgserver")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth", "trust", "-E", "UTF8")
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(f"port={PORT}\nunix_socket_directories='{root}'\nlisten_addresses=''\nautovacuum=off\n")

    def _run(self, program: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.user, str(bin_dir() / program), *args], input=stdin, capture_output=True, text=True, check=False
        )

    def url(self, database: str) -> str:
        return f"postgresql://postgres@/{database}?host={self.root}&port={PORT}"

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "log"), "-w", "start").check_returncode()

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-w", "stop")

    def count(self, database: str, script: str) -> int:
        out = self.root / "callgrind.out"
        done = subprocess.run(
            [*self.user, "valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", str(bin_dir() / "postgres"),
             "--single", "-j", "-D", str(self.data), database],
            input=script, capture_output=True, text=True, check=False,
        )  # fmt: skip
        found = re.search(r"Collected : (\d+)", done.stderr)
        if not found or "ERROR:" in done.stdout + done.stderr:
            raise RuntimeError(f"{database}: {done.stdout[-2000:]}{done.stderr[-2000:]}")
        return int(found.group(1))


def measure(scenario: str, variants: Sequence[tuple[str, str]]) -> list[tuple[str, float]]:
    """Instructions per transfer of each (label, SQL applied after the migrations) variant."""
    with tempfile.TemporaryDirectory(prefix="count-ledger-") as tmp:
        server = Server(Path(tmp))
        server.start()
        try:
            with psycopg.connect(server.url("postgres"), autocommit=True) as conn:
                conn.execute("CREATE DATABASE template_ledger")
            migrate(server.url("template_ledger"))
            first = open_wallets(server.url("template_ledger"), OWNER, WALLETS[scenario])
            for i, (_, sql) in enumerate(variants):
                with psycopg.connect(server.url("postgres"), autocommit=True) as conn:
                    conn.execute(f"CREATE DATABASE v{i} TEMPLATE template_ledger")
                with psycopg.connect(server.url(f"v{i}"), autocommit=True) as conn:
                    if sql:
                        conn.execute(sql)
                    conn.execute("VACUUM ANALYZE")
        finally:
            server.stop()
        per_call = 100 if scenario == "batch" else 1
        results = []
        for i, (label, _) in enumerate(variants):
            warm = server.count(f"v{i}", calls(scenario, WARM[scenario], first, "w-"))
            full = server.count(f"v{i}", calls(scenario, RUNS[scenario], first, "r-"))
            results.append((label, (full - warm) / ((RUNS[scenario] - WARM[scenario]) * per_call)))
        return results


def main(argv: Sequence[str]) -> int:
    if not shutil.which("valgrind"):
        print("count_ledger needs valgrind", file=sys.stderr)
        return 1
    for scenario in argv or ("single", "batch"):
        cuts = BATCH_CUTS if scenario == "batch" else SINGLE_CUTS
        variants = [(label, cut(name, before)) for label, name, before in cuts] + [("the rest of the call (reply)", "")]
        previous = 0.0
        print(f"{scenario}: instructions per transfer (callgrind), by step")
        for label, total in measure(scenario, variants):
            print(f"  {label:40s} {total - previous:>10,.0f}   cumulative {total:>10,.0f}")
            previous = total
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
