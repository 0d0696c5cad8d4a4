"""The world as a child process: what the twin (``make run``) and the tests start.

    world = WorldProcess(data_dir, webhook_url=..., webhook_secret_file=...)
    world.start()          # returns at once: the world loads its chain meanwhile
    url = world.wait_ready()
    world.pix_api_key      # the provider API key the world made and keeps
    world.stop()           # SIGTERM: the world saves its state and exits

Its output goes to ``<data>/world.log``; a world that fails to start raises with the end of it.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_READY = re.compile(r"Rampart world listening on (http://127\.0\.0\.1:\d+)")


class WorldError(RuntimeError):
    pass


class WorldProcess:
    def __init__(
        self,
        data_dir: Path,
        *,
        webhook_url: str | None = None,
        webhook_secret_file: Path | None = None,
        webhook_secret: str | None = None,
        port: int = 0,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.data_dir = Path(data_dir)
        self.webhook_url = webhook_url
        self.webhook_secret_file = webhook_secret_file
        self.webhook_secret = webhook_secret
        self.port = port
        self.extra_args = list(extra_args)
        self.log_path = self.data_dir / "world.log"
        self.url: str | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self._log_start = 0

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [sys.executable, "-m", "infra.world", "--data-dir", str(self.data_dir), "--port", str(self.port)]
        args += ["--parent-pid", str(os.getpid())]
        if self.webhook_url:
            args += ["--webhook-url", self.webhook_url]
        if self.webhook_secret_file is not None:
            args += ["--webhook-secret-file", str(self.webhook_secret_file)]
        args += self.extra_args
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        for name in (
            "RAMPART_WORLD_WEBHOOK_URL",
            "RAMPART_WORLD_WEBHOOK_SECRET_FILE",
            "RAMPART_WORLD_PORT",
            "RAMPART_WORLD_WEBHOOK_SECRET",
        ):
            env.pop(name, None)
        if self.webhook_secret:
            env["RAMPART_WORLD_WEBHOOK_SECRET"] = self.webhook_secret  # not on the command line (ps shows it)
        self.url = None
        self._log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
            )

    def wait_ready(self, timeout: float = 120.0) -> str:
        assert self.process is not None, "start() first"
        deadline = time.monotonic() + timeout
        while self.url is None:
            with self.log_path.open("rb") as log:
                log.seek(self._log_start)
                text = log.read().decode(errors="replace")
            found = list(_READY.finditer(text))
            if found and self.process.poll() is None:
                self.url = found[-1].group(1)
                break
            if self.process.poll() is not None:
                raise WorldError(f"the world exited with {self.process.returncode}; its log ends with:\n{text[-4000:]}")
            if time.monotonic() > deadline:
                raise WorldError(f"the world did not start within {timeout:.0f}s; its log ends with:\n{text[-4000:]}")
            time.sleep(0.05)
        return self.url

    @property
    def pix_api_key(self) -> str:
        return (self.data_dir / "pix" / "api-key").read_text().strip()

    def healthy(self) -> bool:
        if self.url is None:
            return False
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=5) as reply:  # noqa: S310 - loopback
                return bool(reply.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def stop(self, timeout: float = 30.0) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def kill(self) -> None:
        """Stop it without letting it save (a crash)."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()


@contextmanager
def running_world(data_dir: Path, **kwargs: object) -> Iterator[WorldProcess]:
    world = WorldProcess(data_dir, **kwargs)  # type: ignore[arg-type]
    world.start()
    try:
        world.wait_ready()
        yield world
    finally:
        world.stop()
