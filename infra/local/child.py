"""The twin as a child process: ``python -m infra.local`` (exactly what ``make run`` runs) on a
given database and state folder, for the e2e tests, the parity test and the API benchmark."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_URL = re.compile(r"starting on (http://127\.0\.0\.1:\d+)")


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=5) as reply:  # noqa: S310 - loopback only
            return bool(reply.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def wait_healthy(url: str, timeout: float, process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the twin exited with {process.returncode}")
        if healthy(url):
            return
        time.sleep(0.1)
    raise RuntimeError(f"the twin at {url} was not healthy within {timeout:.0f}s")


@contextmanager
def child_twin(
    database_url: str, state_dir: Path, *, env: Mapping[str, str] | None = None, timeout: float = 120.0
) -> Iterator[str]:
    """Start a twin on a free port, wait until ``/health`` answers 200, yield its URL; stop it
    (SIGINT, as Ctrl-C) afterwards. A twin that fails to start raises with the end of its log."""
    log_path = state_dir / "twin.log"
    child_env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "RAMPART_PORT": "0",
        "RAMPART_TWIN_STATE_DIR": str(state_dir),
        "PYTHONUNBUFFERED": "1",
        **(env or {}),
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "infra.local"], cwd=ROOT, env=child_env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + timeout
        url = None
        while url is None and time.monotonic() < deadline and process.poll() is None:
            found = _URL.search(log_path.read_text(errors="replace"))
            url = found.group(1) if found else None
            time.sleep(0.05)
        try:
            if url is None:
                raise RuntimeError("the twin printed no URL")
            wait_healthy(url, max(deadline - time.monotonic(), 1.0), process)
        except RuntimeError as exc:
            tail = log_path.read_text(errors="replace")[-4000:]
            raise RuntimeError(f"{exc}; its log ({log_path}) ends with:\n{tail}") from None
        yield url
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
