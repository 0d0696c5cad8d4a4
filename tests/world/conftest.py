"""Fixtures for the world process: a real ``python -m infra.world`` on port 0 with a tmp data dir, a
webhook receiver that verifies what it gets, and small HTTP helpers.

The chain is :class:`infra.world.base.BaseChain` (a real py-evm); ``RAMPART_WORLD_TEST_CHAIN=fake``
(or a checkout without it) uses :class:`FakeChain`, a ledger of balances kept in a JSON file, for the
rail's tests that need no EVM.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from infra.world.launcher import WorldProcess
from infra.world.store import load_json, save_json

ROOT = Path(__file__).resolve().parents[2]
REAL_CHAIN = "infra.world.base:BaseChain"
FAKE_CHAIN = "tests.world.conftest:FakeChain"
# Valid check digits (API.md: a CPF or CNPJ with valid check digits).
PAYER = "529.982.247-25"
PAYER_DIGITS = "52998224725"
OTHER_PAYER = "11144477735"
CNPJ = "11.222.333/0001-81"


def chain_spec() -> str:
    if os.environ.get("RAMPART_WORLD_TEST_CHAIN") == "fake" or not (ROOT / "infra" / "world" / "base.py").exists():
        return FAKE_CHAIN
    return REAL_CHAIN


class FakeChain:
    """The subset of ``BaseChain`` the rail uses, as balances in ``<data>/fake.json`` (no EVM)."""

    chain_id = 31337
    PROVIDER = "0x" + "b1" * 20

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / "fake.json"
        self._lock = threading.Lock()
        state = load_json(self.path, {"balances": {}, "nonces": {}, "txs": 0})
        self.state: dict[str, Any] = state

    def save(self) -> None:
        save_json(self.path, self.state)

    def _tx(self) -> str:
        self.state["txs"] += 1
        return "0x" + secrets.token_hex(32)

    def _credit(self, address: str, asset: str, amount: Decimal) -> None:
        balances = self.state["balances"].setdefault(address.lower(), {})
        balances[asset] = str(Decimal(balances.get(asset, "0")) + amount)

    def platform_accounts(self) -> dict[str, str]:
        return {
            "gas_funder": "0x" + "a1" * 20,
            "fee_collector": "0x" + "a2" * 20,
            "liquidity": "0x" + "a3" * 20,
            "provider_brla": self.PROVIDER,
        }

    def addresses(self) -> dict[str, str]:
        return {"USDC": "0x" + "c1" * 20, "BRLA": "0x" + "c2" * 20, "pool": "0x" + "c3" * 20}

    def faucet(self, address: str, asset: str, amount: Decimal) -> str:
        with self._lock:
            self._credit(address, asset, amount)
            tx = self._tx()
            self.save()
            return tx

    def balances(self, address: str) -> dict[str, Any]:
        with self._lock:
            held = self.state["balances"].get(address.lower(), {})
            return {
                "address": address,
                "nonce": self.state["nonces"].get(address.lower(), 0),
                "balances": {a: Decimal(held.get(a, "0")) for a in ("ETH", "USDC", "BRLA")},
            }

    def mint_brla(self, to: str, amount: Decimal) -> str:
        return self.faucet(to, "BRLA", amount)

    def burn_brla_from_provider(self, amount: Decimal) -> str:
        with self._lock:
            if self.brla_balance(self.PROVIDER, locked=True) < amount:
                raise ValueError("the provider's account holds too little BRLA")
            self._credit(self.PROVIDER, "BRLA", -amount)
            tx = self._tx()
            self.save()
            return tx

    def brla_balance(self, address: str, *, locked: bool = False) -> Decimal:
        return Decimal(self.state["balances"].get(address.lower(), {}).get("BRLA", "0"))

    def rpc(self, request: Any) -> Any:
        calls = request if isinstance(request, list) else [request]
        replies = []
        with self._lock:
            for call in calls:
                if call.get("method") == "eth_sendRawTransaction":
                    self.state["nonces"]["raw"] = self.state["nonces"].get("raw", 0) + 1
                    self.save()
                    result: Any = self._tx()
                elif call.get("method") == "eth_chainId":
                    result = hex(self.chain_id)
                else:
                    result = hex(self.state["txs"])
                replies.append({"jsonrpc": "2.0", "id": call.get("id"), "result": result})
        return replies if isinstance(request, list) else replies[0]


# -- a webhook receiver --------------------------------------------------------------------------


@dataclass
class Receiver:
    url: str = ""
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    fail_next: int = 0  # answer 500 to the next N deliveries
    fail_matching: dict[str, int] = field(default_factory=dict)  # body substring → 500s left for it
    lock: threading.Lock = field(default_factory=threading.Lock)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    def events(self, *, ok_only: bool = True) -> list[dict[str, Any]]:
        with self.lock:
            return [json.loads(d["body"]) for d in self.deliveries if d["status"] == 200 or not ok_only]

    def of(self, event_type: str, **data: Any) -> list[dict[str, Any]]:
        return [
            e for e in self.events() if e["type"] == event_type and all(e["data"].get(k) == v for k, v in data.items())
        ]

    def wait_for(self, event_type: str, count: int = 1, timeout: float = 90.0, **data: Any) -> list[dict[str, Any]]:
        deadline = datetime.now(UTC) + timedelta(seconds=timeout)
        with self.arrived:
            while len(self.of(event_type, **data)) < count:
                left = (deadline - datetime.now(UTC)).total_seconds()
                if left <= 0:
                    raise AssertionError(f"{count} {event_type} {data} not delivered; got {self.events(ok_only=False)}")
                self.arrived.wait(min(left, 0.2))
        return self.of(event_type, **data)


@pytest.fixture(scope="session")
def webhook_secrets() -> list[str]:
    """Two secrets, newest first (a rotation in progress): the world signs with the first."""
    from rampart.adapters.webhooks.standard import new_secret

    return [new_secret(), new_secret()]


@pytest.fixture(scope="session")
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with state.lock:
                text = body.decode()
                match = next((m for m, left in state.fail_matching.items() if left > 0 and m in text), None)
                status = 500 if state.fail_next > 0 or match is not None else 200
                if match is not None:
                    state.fail_matching[match] -= 1
                elif state.fail_next > 0:
                    state.fail_next -= 1
                state.deliveries.append(
                    {
                        "path": self.path,
                        "headers": {k.lower(): v for k, v in self.headers.items()},
                        "body": body.decode(),
                        "status": status,
                    }
                )
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()
            with state.arrived:
                state.arrived.notify_all()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/webhooks/providers/pix"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def start_world(
    data_dir: Path,
    receiver: Receiver | None,
    secret_file: Path | None,
    *,
    chain: str | None = None,
    hang_seconds: float = 3.0,
) -> WorldProcess:
    world = WorldProcess(
        data_dir,
        webhook_url=receiver.url if receiver else None,
        webhook_secret_file=secret_file,
        extra_args=[
            "--chain",
            chain or chain_spec(),
            "--webhook-base-delay",
            "0.05",
            "--webhook-max-delay",
            "0.5",
            "--hang-seconds",
            str(hang_seconds),
        ],
    )
    world.start()
    try:
        world.wait_ready(timeout=180)
    except BaseException:
        world.stop()
        raise
    return world


@pytest.fixture(scope="module")
def secret_file(tmp_path_factory: pytest.TempPathFactory, webhook_secrets: list[str]) -> Path:
    path = tmp_path_factory.mktemp("secret") / "pix-webhook-secret"
    path.write_text(" ".join(webhook_secrets))
    return path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, receiver: Receiver, secret_file: Path) -> Iterator[WorldProcess]:
    """One world per test module (scripts are reset before each test by ``sim``)."""
    process = start_world(tmp_path_factory.mktemp("world"), receiver, secret_file)
    yield process
    process.stop()


class Http:
    """requests against the world: ``sim`` for /_sim, ``pix`` for the provider API (with its key)."""

    def __init__(self, world: WorldProcess) -> None:
        assert world.url is not None
        self.url = world.url
        self.key = world.pix_api_key

    def sim(self, method: str, path: str, body: Any = None, **params: str) -> requests.Response:
        return requests.request(method, f"{self.url}/_sim{path}", json=body, params=params or None, timeout=30)

    def pix(self, method: str, path: str, body: Any = None) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.key}"}
        return requests.request(method, f"{self.url}/pix/v1{path}", json=body, headers=headers, timeout=30)

    def script(self, provider: str, **script: Any) -> dict[str, Any]:
        reply = self.sim("POST", f"/providers/{provider}/script", {"reset": True, **script})
        assert reply.status_code == 200, reply.text
        return dict(reply.json())

    def balance(self, address: str, asset: str) -> Decimal:
        reply = self.sim("GET", f"/base/balances/{address}")
        assert reply.status_code == 200, reply.text
        return Decimal(reply.json()["balances"][asset])

    def platform(self) -> dict[str, str]:
        return dict(self.sim("GET", "/world").json()["base"]["platform_accounts"])

    def charge(
        self, ramp_id: str | None = None, amount: str = "100.00", payer: str = PAYER, expires_in: float = 1800
    ) -> dict[str, Any]:
        expires = (datetime.now(UTC) + timedelta(seconds=expires_in)).isoformat()
        reply = self.pix(
            "POST",
            "/charges",
            {"reference": ramp_id or new_ramp_id(), "amount": amount, "payer_tax_id": payer, "expires_at": expires},
        )
        assert reply.status_code == 201, reply.text
        return dict(reply.json())


def new_ramp_id() -> str:
    return f"ramp_{secrets.token_hex(8)}"


def new_address() -> str:
    return "0x" + secrets.token_hex(20)


@pytest.fixture
def http(world: WorldProcess) -> Http:
    client = Http(world)
    client.script("pix")
    client.script("base")
    return client
