"""`make run`: start the local twin on 127.0.0.1:$RAMPART_PORT (default 3000).

Environment: ``RAMPART_PORT``; ``DATABASE_URL`` (else the embedded PostgreSQL under ``.data/pg``);
``RAMPART_ADMIN_EMAIL`` / ``RAMPART_ADMIN_PASSWORD`` (the admin seeded at every start);
``RAMPART_SCHEDULES=0`` (no schedules); ``RAMPART_TWIN_CONTAINERS`` (containers per function,
default 16); ``RAMPART_TWIN_STATE_DIR`` (JWT keys, default ``.data/twin``).
Runs until Ctrl-C / SIGTERM, then stops cleanly.
"""

from __future__ import annotations

import errno
import os
import signal
import sys
import threading
import time
from types import FrameType


def main() -> int:
    from infra.local.twin import Twin, TwinError

    started = time.monotonic()
    port = int(os.environ.get("RAMPART_PORT") or 3000)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    twin = Twin()
    try:
        try:
            url = twin.start(port=port, wait=False)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                print(f"port {port} is in use: set RAMPART_PORT to another one", file=sys.stderr)
                return 1
            raise
        print(f"Rampart local twin starting on {url} (/health answers 503 until ready)", flush=True)
        while not stop.is_set():
            try:
                twin.wait_ready(timeout=0.2)
                break
            except TwinError:
                if twin.failure is not None:
                    print(f"start-up failed: {twin.failure!r}", file=sys.stderr, flush=True)
                    return 1
        if stop.is_set():
            return 0
        admin = twin.admin_email if twin.checks["admin"] == "ok" else f"(not seeded: {twin.checks['admin']})"
        print(
            f"\nRampart local twin is up in {time.monotonic() - started:.1f}s.\n"
            f"  API:        {url}\n"
            f"  Docs:       {url}/docs   OpenAPI: {url}/openapi.json\n"
            f"  Admin:      {admin}\n"
            f"  PostgreSQL: {twin.database_url}\n"
            + (f"  World:      {twin.world.url} (data: {twin.world.data_dir})\n" if twin.world else "")
            + "  Ctrl-C stops.\n",
            flush=True,
        )
        stop.wait()
        return 0
    finally:
        print("stopping", flush=True)
        twin.stop()


if __name__ == "__main__":
    sys.exit(main())
