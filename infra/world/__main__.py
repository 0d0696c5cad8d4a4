"""``python -m infra.world``: the world process (docs/world.md).

Options (each also an environment variable):

- ``--data-dir`` / ``RAMPART_WORLD_DATA_DIR`` (default ``.data/world``): the world's state;
- ``--port`` / ``RAMPART_WORLD_PORT`` (default 0: a free port);
- ``--webhook-url`` / ``RAMPART_WORLD_WEBHOOK_URL``: where provider webhooks go (the backend's
  ``/webhooks/providers/pix``); none: they wait in the outbox;
- ``--webhook-secret-file`` / ``RAMPART_WORLD_WEBHOOK_SECRET_FILE``: a file holding the Standard
  Webhooks secrets (``whsec_…``, space-separated, newest first: the world signs with the first),
  read at each delivery so a rotation needs no restart; else ``RAMPART_WORLD_WEBHOOK_SECRET``;
  else a secret the world makes and keeps in ``<data>/webhook-secret``;
- ``--webhook-base-delay`` (seconds, default 1) and ``--webhook-max-delay`` (default 60): retries;
- ``--hang-seconds`` (default 60): how long a scripted hang holds a connection;
- ``--parent-pid``: stop when that process is gone (the twin that started it);
- ``--chain module:Class``: the ``base`` chain (default :class:`infra.world.base.BaseChain`).

Prints ``Rampart world listening on http://127.0.0.1:<port>`` when ready; SIGTERM / SIGINT stop it,
saving its state.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType

READY = "Rampart world listening on"


def _secret_reader(path: str | None, value: str | None) -> Callable[[], str | None] | None:
    if path:
        file = Path(path)

        def read() -> str | None:
            try:
                return file.read_text().strip() or None
            except FileNotFoundError:
                return None

        return read
    if value:
        return lambda: value
    return None


def main(argv: list[str] | None = None) -> int:
    env = os.environ
    parser = argparse.ArgumentParser(prog="python -m infra.world", description="The twin's outside world.")
    parser.add_argument("--data-dir", default=env.get("RAMPART_WORLD_DATA_DIR") or ".data/world")
    parser.add_argument("--port", type=int, default=int(env.get("RAMPART_WORLD_PORT") or 0))
    parser.add_argument("--webhook-url", default=env.get("RAMPART_WORLD_WEBHOOK_URL"))
    parser.add_argument("--webhook-secret-file", default=env.get("RAMPART_WORLD_WEBHOOK_SECRET_FILE"))
    parser.add_argument("--webhook-base-delay", type=float, default=1.0)
    parser.add_argument("--webhook-max-delay", type=float, default=60.0)
    parser.add_argument("--hang-seconds", type=float, default=60.0)
    parser.add_argument("--parent-pid", type=int, default=None)
    parser.add_argument("--chain", default="infra.world.base:BaseChain", help=argparse.SUPPRESS)  # tests: a fake
    args = parser.parse_args(argv)

    from infra.world.server import World, WorldServer

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    module, _, name = args.chain.partition(":")
    data_dir = Path(args.data_dir)
    chain = getattr(importlib.import_module(module), name)(data_dir / "base")
    world = World(
        data_dir,
        chain=chain,
        webhook_url=args.webhook_url,
        webhook_secret=_secret_reader(args.webhook_secret_file, env.get("RAMPART_WORLD_WEBHOOK_SECRET")),
        webhook_base_delay=args.webhook_base_delay,
        webhook_max_delay=args.webhook_max_delay,
        hang_seconds=args.hang_seconds,
    )
    server = WorldServer(world, port=args.port)
    server.start()
    print(f"{READY} {server.url}", flush=True)
    try:
        while not stop.wait(0.5):
            if args.parent_pid is not None and not _alive(args.parent_pid):
                break
    finally:
        server.stop()
        print("world stopped", flush=True)
    return 0


def _alive(parent: int) -> bool:
    """The parent is gone once this process was handed to another one."""
    return os.getppid() == parent


if __name__ == "__main__":
    sys.exit(main())
