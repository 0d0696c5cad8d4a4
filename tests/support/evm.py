"""A real `base` chain for tests: :class:`infra.world.base.BaseChain` (py-evm) served over HTTP at
``/rpc/base`` by a tiny threaded server on port 0, so the EVM adapter really goes over JSON-RPC."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from infra.world.base import BaseChain
from rampart.adapters.chains.evm.client import EvmChain


@contextmanager
def serve(chain: BaseChain) -> Iterator[str]:
    """``POST /rpc/base`` → ``chain.rpc``; yields the URL."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            if self.path != "/rpc/base":
                self.send_error(404)
                return
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                request = json.loads(body)
            except ValueError:
                reply: Any = {"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "parse error"}}
            else:
                reply = chain.rpc(request)
            data = json.dumps(reply).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/rpc/base"
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Served:
    """A chain, its URL and an adapter pointed at it."""

    chain: BaseChain
    url: str
    adapter: EvmChain


@contextmanager
def served_chain(data_dir: Path) -> Iterator[Served]:
    chain = BaseChain(data_dir)
    with serve(chain) as url:
        yield Served(chain, url, EvmChain(url, chain.addresses()))


def new_account() -> tuple[str, str]:
    """(address, private key) of a fresh account."""
    from eth_account import Account

    account = Account.create()
    return str(account.address), "0x" + bytes(account.key).hex()
