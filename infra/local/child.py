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


class ChildTwin:
    """One ``python -m infra.local`` process on ``database_url`` and ``state_dir``; ``port`` 0: a
    free one. ``start`` returns its URL once ``/health`` answers 200; ``kill`` is a crash (SIGKILL:
    nothing stops cleanly), ``stop`` a Ctrl-C. Started again after either, on the same port, it is
    the same twin: same database, same state (keys, secrets), same URL."""

    def __init__(
        self,
        database_url: str,
        state_dir: Path,
        *,
        env: Mapping[str, str] | None = None,
        port: int = 0,
        timeout: float = 120.0,  # not money: seconds
    ) -> None:
        self.database_url = database_url
        self.state_dir = state_dir
        self.env = dict(env or {})
        self.port = port
        self.timeout = timeout
        self.log_path = state_dir / "twin.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.url: str | None = None

    def start(self) -> str:
        """Start it; its URL once healthy. A twin that fails to start raises with the end of its log
        (each start appends to the same log)."""
        child_env = {
            **os.environ,
            "DATABASE_URL": self.database_url,
            "RAMPART_PORT": str(self.port),
            "RAMPART_TWIN_STATE_DIR": str(self.state_dir),
            "PYTHONUNBUFFERED": "1",
            **self.env,
        }
        self.state_dir.mkdir(parents=True, exist_ok=True)
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "infra.local"], cwd=ROOT, env=child_env, stdout=log, stderr=subprocess.STDOUT
            )
        process = self.process
        deadline = time.monotonic() + self.timeout
        url = None
        try:
            while url is None and time.monotonic() < deadline and process.poll() is None:
                found = _URL.search(self._log_since(offset))
                url = found.group(1) if found else None
                time.sleep(0.05)
            if url is None:
                raise RuntimeError("the twin printed no URL")
            wait_healthy(url, max(deadline - time.monotonic(), 1.0), process)
        except RuntimeError as exc:
            self.stop()
            tail = self._log_since(offset)[-4000:]
            raise RuntimeError(f"{exc}; its log ({self.log_path}) ends with:\n{tail}") from None
        self.url = url
        return url

    def _log_since(self, offset: int) -> str:
        with self.log_path.open("rb") as log:
            log.seek(offset)
            return log.read().decode(errors="replace")

    def kill(self) -> None:
        """SIGKILL: the twin dies mid-whatever, as a crashed host does (moto's state goes with it)."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()

    def stop(self) -> None:
        """SIGINT, as Ctrl-C; SIGKILL if it has not stopped within 30 s."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def child_twin(
    database_url: str, state_dir: Path, *, env: Mapping[str, str] | None = None, timeout: float = 120.0
) -> Iterator[str]:
    """Start a twin on a free port, wait until ``/health`` answers 200, yield its URL; stop it
    (SIGINT, as Ctrl-C) afterwards. A twin that fails to start raises with the end of its log."""
    twin = ChildTwin(database_url, state_dir, env=env, timeout=timeout)
    try:
        yield twin.start()
    finally:
        twin.stop()
