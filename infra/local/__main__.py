"""`make run`: start the local twin.

Today the twin is the ledger's database: the embedded PostgreSQL (or ``DATABASE_URL``) with every
migration applied, and the expired-hold sweep on its schedule. It prints where the database is
and runs until Ctrl-C / SIGTERM. The HTTP API joins it with the API issue.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time
from types import FrameType

SWEEP_EVERY_SECONDS = int(os.environ.get("RAMPART_SWEEP_SECONDS", "60"))


def _log(message: str, **fields: object) -> None:
    print(json.dumps({"level": "INFO", "message": message, **fields}), flush=True)


def main() -> int:
    logging.basicConfig(level=logging.WARNING)
    started = time.monotonic()
    url = os.environ.get("DATABASE_URL")
    embedded = not url
    if embedded:
        from infra.local.postgres import embedded_url

        url = embedded_url()
        os.environ["DATABASE_URL"] = url
    assert url is not None

    from rampart.db.migrate import migrate

    applied = migrate(url)
    _log(
        "database ready",
        database_url=url,
        embedded=embedded,
        migrations_applied=applied,
        seconds=round(time.monotonic() - started, 2),
    )

    from functions.ledger_sweep.handler import handler as sweep

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    print(
        f"\nRampart local twin is up.\n  PostgreSQL: {url}\n  psql:       psql '{url}'\n"
        f"  Expired holds are swept every {SWEEP_EVERY_SECONDS}s. Ctrl-C stops.\n",
        flush=True,
    )
    while not stop.is_set():
        try:
            result = sweep({"source": "local.schedule"}, None)
            if result.get("released"):
                _log("swept expired holds", **result)
        except Exception as exc:  # the twin keeps running; the error is logged
            _log("sweep failed", error=repr(exc))
        stop.wait(SWEEP_EVERY_SECONDS)
    _log("stopping")
    return 0


if __name__ == "__main__":
    sys.exit(main())
