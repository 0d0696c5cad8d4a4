"""The embedded PostgreSQL's first start, raced by several processes at once (as pytest-xdist
workers, the twin and the benchmark do on a fresh clone): one initializes, the others wait and
join, and every one of them gets a working server."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from infra.local.postgres import ROOT

RACERS = 6
# Each racer imports everything, says it is ready, then waits for the start signal, so that all
# of them call embedded_server within a millisecond or so of each other.
_PROBE = """
import pathlib, sys, time
import psycopg
import pgserver  # imported before the signal: the race is the start itself
from infra.local.postgres import embedded_server
signal = pathlib.Path(sys.argv[1])
pathlib.Path(sys.argv[2]).touch()
while not signal.exists():
    time.sleep(0.001)
server = embedded_server("pg-race")
with psycopg.connect(server.get_uri(), autocommit=True) as conn:
    row = conn.execute("SELECT current_setting('data_directory'), 6 * 7").fetchone()
print(row[0], row[1])
"""


@pytest.mark.slow
def test_racing_first_starts_on_a_new_data_folder_all_join_one_server(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert not data.exists()
    env = {**os.environ, "RAMPART_DATA_DIR": str(data), "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'layers/core'}"}

    go = tmp_path / "go"
    ready = [tmp_path / f"ready-{i}" for i in range(RACERS)]

    def racer(i: int) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", _PROBE, str(go), str(ready[i])],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )

    with ThreadPoolExecutor(RACERS) as pool:
        running = [pool.submit(racer, i) for i in range(RACERS)]
        deadline = time.monotonic() + 120
        while not all(r.exists() for r in ready) and time.monotonic() < deadline:
            time.sleep(0.01)
        go.touch()
        results = [r.result() for r in running]

    for result in results:
        assert result.returncode == 0, result.stderr[-2000:]
        directory, answer = result.stdout.split()
        assert answer == "42"
        assert Path(directory).resolve() == (data / "pg-race").resolve()
    assert (data / "pg-race" / "PG_VERSION").read_text().strip() == "16"
