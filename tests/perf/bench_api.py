"""The API's budgets (ARCHITECTURE.md, "Performance budgets"), measured in one run (``make bench``):

- **Cold start.** Each function of the manifest imports its handler in a fresh interpreter, against the
  platform floor (a fresh interpreter importing only boto3, psycopg, pydantic and the Powertools parts the
  functions use, X-Ray's recorder included since Tracer loads it), interleaved, ``BENCH_IMPORT_REPEATS``
  times each; the ratio of medians must stay ≤ 1.2. Each interpreter sees what Lambda would give it:
  only the distributions of its layers (``infra.layers``' requirements and their dependencies) can be
  imported — what the virtualenv holds besides (twin, dev, infra packages; the chain SDKs without the chains
  layer) raises ModuleNotFoundError, so optional imports (PyJWT's of cryptography, X-Ray's patching of
  requests) go as in the cloud; ``LAMBDA_TASK_ROOT`` is set, so Tracer is active and patches at import; the
  cloud's env vars carry dummy values and ``AWS_ENDPOINT_URL`` a closed local port, so nothing could reach
  AWS; byte code comes from ``BENCH_PYCACHE`` (filled by an untimed first pass), so no side pays for
  compiling. A function without the chains layer must not even try to import a chain SDK.
- **Round trips.** The transfers function, in process, under moto and on a fresh migrated database (one
  connection, as in Lambda), warm, handles ``POST /v1/transfers``: PostgreSQL round trips are counted on the
  wire (a proxy in front of the server: each time the client sends after it last heard from the server is
  one round trip — connection set-up, prepares and statements alike) and named from psycopg (every
  statement, with the call site); DynamoDB calls by a botocore ``before-call`` handler on every client.
  Budget: 1 and 2 per request. The authorizer, which API Gateway caches, is counted apart (bearer token and
  API key).
- **Latency.** ``POST /v1/transfers`` through a local twin (``python -m infra.local``, a child process on its
  own fresh database) by ``BENCH_CLIENTS`` concurrent clients, each its own user, token and accounts and a
  fresh Idempotency-Key per request: p50, p99 and requests per second after a warm-up. Figures only: moto
  and the local gateway dominate them.

Prints a table and writes ``.bench/api.json``; exits 0 even when a budget is missed (a benchmark, not a
test: ``tests/perf/test_bench_api.py`` asserts the counts), 1 when the twin could not be measured (what the
other parts measured is still written).

Knobs (environment): ``BENCH_PARTS`` (``cold,trips,latency``), ``BENCH_IMPORT_REPEATS`` (15),
``BENCH_REQUESTS`` (measured warm requests, 10), ``BENCH_SECONDS`` (15), ``BENCH_WARMUP_SECONDS`` (3),
``BENCH_CLIENTS`` (8), ``BENCH_SERVER`` (embedded server, ``pg-bench-api``), ``BENCH_DB_PREFIX``
(``rampart_bench_api``), ``BENCH_OUTPUT`` (``.bench/api.json``), ``BENCH_PYCACHE`` (``.bench/pycache``) and
``DATABASE_URL`` (an existing server to use instead of the embedded one).
"""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from infra import manifest
from infra.local.postgres import embedded_server, ensure_database, with_database

Report = dict[str, Any]
ROOT = Path(__file__).resolve().parents[2]
PARTS = ("cold", "trips", "latency")
IMPORT_RATIO_BUDGET = 1.2
PG_BUDGET = 1
DYNAMODB_BUDGET = 2
# Chain SDKs (and py-evm, ``eth``): only a function with the chains layer may load one.
CHAIN_SDKS = ("web3", "stellar_sdk", "substrateinterface", "eth_tester", "scalecodec", "eth", "eth_account")
# The platform floor: what every API function stands on, imported and nothing else ("module:attribute").
FLOOR = (
    "boto3",
    "psycopg",
    "pydantic:BaseModel",
    "aws_lambda_powertools:Logger",
    "aws_lambda_powertools:Tracer",
    "aws_lambda_powertools:Metrics",
    "aws_xray_sdk.core:xray_recorder",  # what Tracer loads as its provider
    "aws_lambda_powertools.event_handler:APIGatewayRestResolver",
    "aws_lambda_powertools.event_handler.openapi.params:Body",  # enable_validation's machinery
    "aws_lambda_powertools.utilities.idempotency:idempotent_function",
    "aws_lambda_powertools.utilities.idempotency:DynamoDBPersistenceLayer",
)
# Run by each fresh interpreter: only the function's layers are importable (what they do not ship raises
# ModuleNotFoundError, as in Lambda), chain SDKs are watched (an attempt counts), then the targets are
# imported and timed.
IMPORT_SCRIPT = """
import importlib, json, sys, time
targets, watched, hidden = (json.loads(arg) for arg in sys.argv[1:4])
hidden, attempted = frozenset(hidden), []

class Layers:
    @staticmethod
    def find_spec(name, path=None, target=None):
        top = name.partition(".")[0]
        if top in watched and top not in attempted:
            attempted.append(top)
        if top in hidden:
            raise ModuleNotFoundError(f"No module named {top!r} (not in this function's layers)", name=top)
        return None

sys.meta_path.insert(0, Layers)
started = time.perf_counter()
try:
    for target in targets:
        module, _, attribute = target.partition(":")
        loaded = importlib.import_module(module)
        if attribute:
            getattr(loaded, attribute)
except Exception as exc:
    print(json.dumps({"error": f"{type(exc).__name__}: {exc}", "chains": attempted}))
    sys.exit(3)
elapsed = time.perf_counter() - started
print(json.dumps({"ms": elapsed * 1000, "modules": len(sys.modules), "chains": attempted}))
"""
# Our own top-level packages: never hidden (the bundle root and the rampart layer).
OURS = frozenset({"rampart", "functions", "infra", "tests"})
# Where the layer closure is resolved: the Lambda runtime's environment markers.
LAMBDA_MARKERS = {
    "python_version": "3.12",
    "python_full_version": "3.12.0",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "aarch64",
    "os_name": "posix",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
}
# PostgreSQL in the cloud (docs/cloud.md): the RDS Proxy and its secret, not DATABASE_URL. Values lead nowhere.
CLOUD_DB_ENV = {
    "RAMPART_DB_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:bench-db",
    "RAMPART_DB_PROXY_ENDPOINT": "127.0.0.1",
    "RAMPART_DB_NAME": "rampart",
    "RAMPART_DB_USER": "rampart",
}
FAKE_AWS = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}
TRANSFER_AMOUNT = "0.01"
FUNDING = "1000000.00"


@dataclass(frozen=True)
class Config:
    parts: frozenset[str]
    import_repeats: int
    requests: int
    seconds: float
    warmup_seconds: float
    clients: int
    server: str
    prefix: str
    output: Path
    pycache: Path

    @classmethod
    def from_env(cls) -> Config:
        env = os.environ.get
        parts = frozenset(p.strip() for p in env("BENCH_PARTS", ",".join(PARTS)).split(",") if p.strip())
        if parts - set(PARTS):
            raise SystemExit(f"BENCH_PARTS: unknown part(s) {sorted(parts - set(PARTS))}; known: {', '.join(PARTS)}")
        return cls(
            parts=parts,
            import_repeats=max(1, int(env("BENCH_IMPORT_REPEATS", "15"))),
            requests=max(1, int(env("BENCH_REQUESTS", "10"))),
            seconds=float(env("BENCH_SECONDS", "15")),
            warmup_seconds=float(env("BENCH_WARMUP_SECONDS", "3")),
            clients=max(1, int(env("BENCH_CLIENTS", "8"))),
            server=env("BENCH_SERVER", "pg-bench-api"),
            prefix=env("BENCH_DB_PREFIX", "rampart_bench_api"),
            output=Path(env("BENCH_OUTPUT", str(ROOT / ".bench" / "api.json"))),
            pycache=Path(env("BENCH_PYCACHE", str(ROOT / ".bench" / "pycache"))),
        )


def admin_url(config: Config) -> str:
    return os.environ.get("DATABASE_URL") or str(embedded_server(config.server).get_uri())


def fresh_database(admin: str, name: str) -> str:
    """A new, migrated database on the bench server; its URL."""
    from rampart.adapters.postgres.migrate import migrate

    ensure_database(admin, name, fresh=True, settings={"synchronous_commit": "off"})
    url = with_database(admin, name)
    migrate(url)
    return url


@contextlib.contextmanager
def environment(values: dict[str, str | None]) -> Iterator[None]:
    """Set (or, for ``None``, remove) environment variables; restore them on the way out."""
    saved = {key: os.environ.get(key) for key in values}
    try:
        for key, value in values.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def percentile(values: list[float], q: int) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


# cold start --------------------------------------------------------------------------------------


def resource_env(name: str) -> dict[str, str]:
    """What the CDK app puts in a function's environment for a resource it uses, with dummy values."""
    resource = manifest.resources()[name]
    if isinstance(resource, manifest.Postgres):
        return CLOUD_DB_ENV
    if resource.setting is None:
        return {}
    if isinstance(resource, manifest.Table):
        return {manifest.env_var(resource): f"rampart-bench-{name}"}
    if isinstance(resource, manifest.Queue):
        return {manifest.env_var(resource): f"https://sqs.us-east-1.amazonaws.com/123456789012/rampart-bench-{name}"}
    if isinstance(resource, manifest.StateMachine):
        return {manifest.env_var(resource): f"arn:aws:states:us-east-1:123456789012:stateMachine:rampart-bench-{name}"}
    return {manifest.env_var(resource): f"arn:aws:secretsmanager:us-east-1:123456789012:secret:bench-{name}"}


def lambda_env(fn: manifest.Function | None, pycache: Path) -> dict[str, str]:
    """A Lambda-like environment for a fresh interpreter: the parent's minus anything of ours, AWS's or
    Python's, plus the runtime's variables, the function's cloud env and the byte-code cache."""
    ours = ("RAMPART_", "POWERTOOLS_", "AWS_", "DATABASE_URL", "PYTHON", "_X_AMZN", "LAMBDA_")
    env = {key: value for key, value in os.environ.items() if not key.startswith(ours)}
    name = fn.name if fn else "floor"
    env |= FAKE_AWS | {
        "LAMBDA_TASK_ROOT": str(ROOT),
        "AWS_LAMBDA_FUNCTION_NAME": f"rampart-bench-{name}",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory_mb if fn else 512),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",  # should anything call AWS at import, it fails here
        "POWERTOOLS_SERVICE_NAME": name,
        "POWERTOOLS_METRICS_NAMESPACE": "Rampart",
        "RAMPART_STAGE": "bench",
        "PYTHONPATH": str(ROOT),
        "PYTHONPYCACHEPREFIX": str(pycache),
    }
    if fn is not None:
        for resource in sorted(fn.uses):
            env |= resource_env(resource)
        env["RAMPART_USES"] = manifest.uses_value([fn])
        env |= dict(fn.env)
    return env


def layer_distributions(layer: str) -> set[str]:
    """The distributions a dependency layer ships: its requirements (``infra.layers``) and, transitively,
    theirs as installed here, with markers evaluated for the Lambda runtime (the same set as a built layer)."""
    from importlib import metadata

    from packaging.requirements import Requirement

    from infra.layers import normalize, requirements

    todo, seen = [Requirement(r) for r in requirements(layer)], dict[str, set[str]]()
    while todo:
        requirement = todo.pop()
        name, extras = normalize(requirement.name), set(requirement.extras)
        if name in seen and extras <= seen[name]:
            continue
        seen.setdefault(name, set()).update(extras)
        try:
            requires = metadata.distribution(name).requires or []
        except metadata.PackageNotFoundError:
            continue
        for text in requires:
            needed = Requirement(text)
            wanted = seen[name] | {""}
            if needed.marker is None or any(needed.marker.evaluate(LAMBDA_MARKERS | {"extra": e}) for e in wanted):
                todo.append(needed)
    return set(seen)


def hidden_modules(layers: tuple[str, ...]) -> list[str]:
    """Top-level modules installed here that ``layers`` do not ship (twin, dev and infra packages, and the
    chain SDKs for a function without the chains layer): a Lambda function could not import them."""
    from importlib import metadata

    from infra.layers import normalize

    shipped = set().union(*(layer_distributions(layer) for layer in layers))
    hidden = {
        module
        for module, distributions in metadata.packages_distributions().items()
        if module.isidentifier() and not any(normalize(d) in shipped for d in distributions)
    }
    return sorted(hidden - OURS - set(sys.stdlib_module_names))


def import_once(targets: list[str], env: dict[str, str], hidden: list[str]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_SCRIPT, json.dumps(targets), json.dumps(CHAIN_SDKS), json.dumps(hidden)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        said = lines[-1] if lines else done.stderr[-3000:]
        raise RuntimeError(f"importing {targets} failed ({done.returncode}): {said}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


@dataclass
class Imports:
    name: str
    targets: list[str]
    env: dict[str, str]
    hidden: list[str]
    runs: list[float] = field(default_factory=list)
    modules: int = 0
    chains: list[str] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.runs)


def cold_start(config: Config) -> tuple[Imports, list[Imports]]:
    hidden = {layers: hidden_modules(layers) for layers in {("core",), *(fn.layers for fn in manifest.FUNCTIONS)}}
    floor = Imports("floor", list(FLOOR), lambda_env(None, config.pycache), hidden[("core",)])
    functions = [
        Imports(
            fn.name,
            [":".join(fn.handler.rsplit(".", 1))],
            lambda_env(fn, config.pycache),
            hidden[fn.layers],
        )
        for fn in manifest.FUNCTIONS
    ]
    every = [floor, *functions]
    config.pycache.mkdir(parents=True, exist_ok=True)
    for item in every:  # untimed: compiles into the byte-code cache, checks each target imports at all
        import_once(item.targets, item.env, item.hidden)
    order = random.Random(3)
    for _ in range(config.import_repeats):
        for item in order.sample(every, len(every)):  # interleaved: drifting load hits every side alike
            measured = import_once(item.targets, item.env, item.hidden)
            item.runs.append(float(measured["ms"]))
            item.modules, item.chains = int(measured["modules"]), sorted(measured["chains"])
    return floor, functions


# round trips -------------------------------------------------------------------------------------


class ClientMessages:
    """Reads the client's side of the PostgreSQL protocol as it streams by: the untyped start-up message, then
    typed messages (1-byte type, 4-byte length). Yields the named Parse messages: server-side prepares."""

    def __init__(self) -> None:
        self._buffer = b""
        self._started = False

    def feed(self, data: bytes) -> list[str]:
        self._buffer += data
        prepared: list[str] = []
        while True:
            if not self._started:
                if len(self._buffer) < 4:
                    return prepared
                size = int.from_bytes(self._buffer[:4], "big")
                if len(self._buffer) < size:
                    return prepared
                self._buffer, self._started = self._buffer[size:], True
                continue
            if len(self._buffer) < 5:
                return prepared
            kind, size = self._buffer[:1], int.from_bytes(self._buffer[1:5], "big")
            if len(self._buffer) < 1 + size:
                return prepared
            payload, self._buffer = self._buffer[5 : 1 + size], self._buffer[1 + size :]
            if kind == b"P":
                name, _, rest = payload.partition(b"\0")
                if name:
                    query = rest.partition(b"\0")[0].decode(errors="replace")
                    prepared.append(f"{name.decode(errors='replace')}: {' '.join(query.split())[:90]}")


class WireCounter:
    """A TCP proxy in front of PostgreSQL that counts round trips: every time a client sends after it last
    heard from the server (or for the first time) is one. Whatever psycopg does — connecting, preparing,
    executing, committing — is on the wire. It also notes every server-side prepare (a named Parse)."""

    def __init__(self, url: str) -> None:
        from psycopg.conninfo import conninfo_to_dict, make_conninfo

        params = conninfo_to_dict(url)
        host = str(params.get("host") or "/tmp").split(",")[0]
        port = int(str(params.get("port") or 5432).split(",")[0])
        self._unix = f"{host}/.s.PGSQL.{port}" if host.startswith("/") else None
        self._tcp = (host, port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        proxy_port = self._listener.getsockname()[1]
        self.url = make_conninfo(url, host="127.0.0.1", port=str(proxy_port), sslmode="disable", gssencmode="disable")
        self.round_trips = 0
        self.prepares: list[str] = []
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, name="wire-counter", daemon=True).start()

    def _upstream(self) -> socket.socket:
        if self._unix is not None:
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            upstream.connect(self._unix)
            return upstream
        upstream = socket.create_connection(self._tcp)
        upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return upstream

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            upstream = self._upstream()
            self._sockets += [client, upstream]
            last = ["server"]  # who spoke last on this connection
            messages = ClientMessages()
            for src, dst, side in ((client, upstream, "client"), (upstream, client, "server")):
                threading.Thread(target=self._pump, args=(src, dst, side, last, messages), daemon=True).start()

    def _pump(
        self, src: socket.socket, dst: socket.socket, side: str, last: list[str], messages: ClientMessages
    ) -> None:
        try:
            while data := src.recv(65536):
                with self._lock:
                    if side == "client":
                        self.round_trips += last[0] != "client"
                        self.prepares += messages.feed(data)
                    last[0] = side
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._listener.close()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()


def call_site(skip: tuple[str, ...] = ()) -> str:
    """Where a call comes from: the innermost library frame, then our frames (innermost first)."""
    mine = (str(ROOT / "functions"), str(ROOT / "layers" / "core"))
    skipped = (str(Path(__file__)), *skip)
    frames = [f for f in traceback.extract_stack()[:-2] if not f.filename.startswith(skipped)]
    ours = [f for f in frames if f.filename.startswith(mine)]
    library = [f for f in frames if not f.filename.startswith(mine)]
    chain = [f"{Path(f.filename).relative_to(ROOT)}:{f.lineno} {f.name}" for f in reversed(ours[-4:])]
    if library and (not ours or library[-1] is frames[-1]):
        inner = library[-1]
        parts = Path(inner.filename).parts
        short = "/".join(parts[parts.index("site-packages") + 1 :]) if "site-packages" in parts else inner.filename
        chain.insert(0, f"{short}:{inner.lineno} {inner.name}")
    return " < ".join(chain)


@dataclass
class Call:
    kind: str  # postgres | aws
    what: str  # the statement, or service.Operation
    site: str


class Recorder:
    """Names every psycopg statement and every botocore API call (any client, any session) with its call
    site, while installed."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self._undo: list[Callable[[], None]] = []

    def install(self) -> None:
        import botocore.session
        import psycopg

        recorder = self

        def wrap(owner: Any, name: str, describe: Callable[..., str]) -> None:
            original = getattr(owner, name)

            def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
                recorder.calls.append(Call("postgres", describe(*args, **kwargs), call_site()))
                return original(self, *args, **kwargs)

            setattr(owner, name, wrapper)
            self._undo.append(lambda: setattr(owner, name, original))

        def statement(query: Any = "", *args: Any, **kwargs: Any) -> str:
            text = query if isinstance(query, str) else getattr(query, "as_string", lambda _: repr(query))(None)
            return " ".join(str(text).split())[:110]

        for method in ("execute", "executemany", "stream"):
            wrap(psycopg.Cursor, method, statement)
        wrap(psycopg.Connection, "commit", lambda *a, **k: "COMMIT")
        wrap(psycopg.Connection, "rollback", lambda *a, **k: "ROLLBACK")

        botocore_dir = str(Path(botocore.session.__file__).parents[1])
        original_create = botocore.session.Session.create_client

        def on_call(model: Any, **kwargs: Any) -> None:
            service = model.service_model.service_name
            site = call_site(skip=(botocore_dir + "/botocore", botocore_dir + "/boto3", botocore_dir + "/moto"))
            recorder.calls.append(Call("aws", f"{service}.{model.name}", site))

        def create_client(self: Any, *args: Any, **kwargs: Any) -> Any:
            client = original_create(self, *args, **kwargs)
            client.meta.events.register("before-call", on_call)
            return client

        botocore.session.Session.create_client = create_client
        self._undo.append(lambda: setattr(botocore.session.Session, "create_client", original_create))

    def uninstall(self) -> None:
        while self._undo:
            self._undo.pop()()


@dataclass
class Measured:
    """What one handler invocation cost."""

    pg_round_trips: int
    pg_prepares: list[str]
    calls: list[Call]

    def of(self, kind: str, prefix: str = "") -> list[Call]:
        return [c for c in self.calls if c.kind == kind and c.what.startswith(prefix)]

    def summary(self) -> Report:
        return {
            "pg_round_trips": self.pg_round_trips,
            "pg_prepares": self.pg_prepares,
            "pg_statements": [c.what for c in self.of("postgres")],
            "aws_calls": [c.what for c in self.of("aws")],
        }


def measure_call(wire: WireCounter, recorder: Recorder, call: Callable[[], Any]) -> tuple[Any, Measured]:
    recorder.calls.clear()
    before, prepared = wire.round_trips, len(wire.prepares)
    with contextlib.redirect_stdout(io.StringIO()):  # Powertools Metrics prints its cold-start metric
        result = call()
    return result, Measured(wire.round_trips - before, wire.prepares[prepared:], list(recorder.calls))


def round_trips(config: Config, admin: str) -> Report:
    """The transfers function in process, warm: its PostgreSQL round trips and DynamoDB calls per
    ``POST /v1/transfers``, and the authorizer's apart."""
    import boto3
    from moto import mock_aws

    from rampart.adapters.aws.secrets import reset_secrets
    from rampart.adapters.postgres.db import SingleConnection, reset_database
    from rampart.adapters.postgres.ledger_store import PostgresLedgerStore
    from rampart.ledger import Ledger
    from rampart.wiring import auth as auth_wiring
    from rampart.wiring import ledger as wiring
    from tests.support.aws import IDEMPOTENCY_TABLE, RATE_LIMIT_TABLE, create_tables, new_key_ring
    from tests.support.events import LambdaContext, api_event, authorizer_event

    def reset() -> None:
        auth_wiring.reset()
        wiring.reset()
        reset_secrets()
        reset_database()

    url = fresh_database(admin, f"{config.prefix}_rt")
    owner = f"usr_bench_{uuid.uuid4().hex[:8]}"
    direct = SingleConnection(url)
    ledger = Ledger(PostgresLedgerStore(direct))
    source, target = (ledger.open_account(owner, "USD", name) for name in ("bench source", "bench target"))
    ledger.deposit(source.id, FUNDING, f"bench-funding-{owner}", owner_id="admin")
    direct.close()

    wire, recorder = WireCounter(url), Recorder()
    env: dict[str, str | None] = {
        **FAKE_AWS,
        "DATABASE_URL": wire.url,
        "RAMPART_DB_POOL": "0",  # one connection per container, as in Lambda
        "RAMPART_IDEMPOTENCY_TABLE": IDEMPOTENCY_TABLE,
        "RAMPART_RATE_LIMIT_TABLE": RATE_LIMIT_TABLE,
        "RAMPART_JWT_KEYS": json.dumps(new_key_ring()),
        "RAMPART_JWT_SECRET_ARN": None,
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "AWS_PROFILE": None,
    }
    try:
        with environment(env), mock_aws():
            create_tables(boto3.client("dynamodb"))
            reset()
            recorder.install()
            from functions.authorizer.handler import handler as authorizer
            from functions.transfers.handler import handler as transfers

            token = auth_wiring.access_tokens().issue(owner, "user")
            _, api_key = auth_wiring.authenticator().create_partner("bench partner", 0)
            body = {
                "from_account_id": str(source.id),
                "to_account_id": str(target.id),
                "amount": TRANSFER_AMOUNT,
                "currency": "USD",
            }

            def authorize(headers: dict[str, str]) -> dict[str, Any]:
                policy: dict[str, Any] = authorizer(
                    authorizer_event(headers, method="POST", path="/v1/transfers"), LambdaContext("authorizer")
                )
                statements = policy["policyDocument"]["Statement"]
                assert any(s["Effect"] == "Allow" for s in statements), policy
                return policy

            def transfer(principal: dict[str, str]) -> dict[str, Any]:
                event = api_event(
                    "POST",
                    "/v1/transfers",
                    headers={"Idempotency-Key": uuid.uuid4().hex},
                    body=body,
                    principal=principal,
                )
                response: dict[str, Any] = transfers(event, LambdaContext("transfers"))
                if response["statusCode"] != 201:
                    raise RuntimeError(f"POST /v1/transfers answered {response['statusCode']}: {response.get('body')}")
                return response

            bearer, key = {"Authorization": f"Bearer {token}"}, {"X-Api-Key": api_key}
            # The first invocation of each builds its state (transfers: the idempotency layer and its client);
            # the connection is open already (create_partner above).
            _, first_authorizer = measure_call(wire, recorder, lambda: authorize(bearer))
            principal = authorize(bearer)["context"]
            _, first = measure_call(wire, recorder, lambda: transfer(principal))
            warm: list[Measured] = []
            bearer_runs: list[Measured] = []
            key_runs: list[Measured] = []
            for _ in range(config.requests):
                bearer_runs.append(measure_call(wire, recorder, lambda: authorize(bearer))[1])
                key_runs.append(measure_call(wire, recorder, lambda: authorize(key))[1])
                warm.append(measure_call(wire, recorder, lambda: transfer(principal))[1])
            recorder.uninstall()
            reset()
    finally:
        recorder.uninstall()
        wire.close()

    pg = [m.pg_round_trips for m in warm]
    dynamodb = [len(m.of("aws", "dynamodb.")) for m in warm]
    sites: dict[str, Counter[str]] = {}
    for m in warm:
        for c in m.calls:
            sites.setdefault(f"{c.kind}: {c.what}", Counter())[c.site] += 1
    return {
        "pg_round_trips": max(pg),
        "dynamodb_calls": max(dynamodb),
        "pg_round_trips_per_request": pg,
        "dynamodb_calls_per_request": dynamodb,
        "pg_statements_per_request": [len(m.of("postgres")) for m in warm],
        "other_aws_calls": sorted({c.what for m in warm for c in m.of("aws") if not c.what.startswith("dynamodb.")}),
        "warm_requests": config.requests,
        "first_request": first.summary(),
        "warm_request": warm[0].summary(),
        "requests_over_budget": [
            {"index": i} | m.summary()
            for i, m in enumerate(warm)
            if m.pg_round_trips > PG_BUDGET or len(m.of("aws", "dynamodb.")) > DYNAMODB_BUDGET
        ],
        "call_sites": {what: dict(counter) for what, counter in sorted(sites.items())},
        "authorizer": {
            "bearer_pg_round_trips": max(m.pg_round_trips for m in bearer_runs),
            "bearer_aws_calls": max(len(m.of("aws")) for m in bearer_runs),
            "api_key_pg_round_trips": max(m.pg_round_trips for m in key_runs),
            "api_key_pg_round_trips_per_request": [m.pg_round_trips for m in key_runs],
            "api_key_pg_prepares": [p for m in key_runs for p in m.pg_prepares],
            "api_key_aws_calls": max(len(m.of("aws")) for m in key_runs),
            "first_bearer": first_authorizer.summary(),
            "api_key_request": key_runs[0].summary(),
        },
        "database": "one connection (RAMPART_DB_POOL=0), as in Lambda",
    }


# latency -----------------------------------------------------------------------------------------


def twin(database_url: str, state_dir: Path, timeout: float = 120.0) -> contextlib.AbstractContextManager[str]:
    """The twin as a child process (what ``make run`` runs), without schedules: no sweep in the
    middle of a measurement."""
    from infra.local.child import child_twin

    return child_twin(database_url, state_dir, env={"RAMPART_SCHEDULES": "0"}, timeout=timeout)


@dataclass
class Sample:
    started: float
    ended: float
    status: int


def client_loop(base: str, token: str, body: bytes, until: float, out: list[Sample]) -> None:
    """One client: back-to-back ``POST /v1/transfers`` on a keep-alive connection until ``until``."""
    split = urlsplit(base)
    connection: http.client.HTTPConnection | None = None
    while time.monotonic() < until:
        headers = {
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Accept": "application/json",
            "Idempotency-Key": uuid.uuid4().hex,
        }
        started = time.monotonic()
        try:
            if connection is None:
                connection = http.client.HTTPConnection(split.hostname or "127.0.0.1", split.port, timeout=60)
            connection.request("POST", "/v1/transfers", body=body, headers=headers)
            reply = connection.getresponse()
            reply.read()
            status = reply.status
            if reply.getheader("Connection", "").lower() == "close":
                connection.close()
                connection = None
        except (OSError, http.client.HTTPException):
            status = 0
            if connection is not None:
                connection.close()
            connection = None
        out.append(Sample(started, time.monotonic(), status))
    if connection is not None:
        connection.close()


def latency(config: Config, admin: str) -> Report:
    from tests.e2e.api import admin as admin_client
    from tests.e2e.api import fund, new_user

    url = fresh_database(admin, f"{config.prefix}_twin")
    with tempfile.TemporaryDirectory(prefix="bench-api-twin-") as state, twin(url, Path(state)) as base:
        root = admin_client(base)
        clients: list[tuple[str, bytes]] = []
        for _ in range(config.clients):
            user = new_user(base)
            assert user.token is not None
            accounts = [user.post("/v1/accounts", {"currency": "USD"}) for _ in range(2)]
            assert all(a.status == 201 for a in accounts), accounts
            source, target = (str(a.body["id"]) for a in accounts)
            fund(root, source, FUNDING)
            body = {"from_account_id": source, "to_account_id": target, "amount": TRANSFER_AMOUNT, "currency": "USD"}
            clients.append((user.token, json.dumps(body).encode()))
        started = time.monotonic()
        window_start = started + config.warmup_seconds
        window_end = window_start + config.seconds
        samples: list[list[Sample]] = [[] for _ in clients]
        threads = [
            threading.Thread(target=client_loop, args=(base, token, body, window_end, out), daemon=True)
            for (token, body), out in zip(clients, samples, strict=True)
        ]
        load_before = os.getloadavg()[0]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        load_after = os.getloadavg()[0]
    every = [s for out in samples for s in out]
    window = [s for s in every if window_start <= s.started and s.ended <= window_end]
    ok = [s for s in window if s.status == 201]
    latencies = sorted((s.ended - s.started) * 1000 for s in ok)
    statuses = Counter(str(s.status) for s in window)
    if not latencies:
        raise RuntimeError(f"no successful request in the measured window: {dict(statuses)}")
    return {
        "p50_ms": round(percentile(latencies, 50), 2),
        "p99_ms": round(percentile(latencies, 99), 2),
        "rps": round(len(ok) / config.seconds, 1),
        "latency": {
            "clients": config.clients,
            "seconds": config.seconds,
            "warmup_seconds": config.warmup_seconds,
            "requests": len(window),
            "ok": len(ok),
            "errors": len(window) - len(ok),
            "statuses": dict(statuses),
            "warmup_requests": sum(1 for s in every if s.started < window_start),
            "mean_ms": round(statistics.fmean(latencies), 2),
            "p90_ms": round(percentile(latencies, 90), 2),
            "max_ms": round(latencies[-1], 2),
            "loadavg_before": round(load_before, 2),
            "loadavg_after": round(load_after, 2),
        },
    }


# report ------------------------------------------------------------------------------------------


def cold_report(floor: Imports, functions: list[Imports]) -> Report:
    ratios = {f.name: round(f.median / floor.median, 3) for f in functions}
    return {
        "import_ms": {f.name: round(f.median, 1) for f in functions},
        "import_floor_ms": round(floor.median, 1),
        "import_ratio": ratios,
        "import_min_ms": {f.name: round(min(f.runs), 1) for f in functions},
        "import_floor_min_ms": round(min(floor.runs), 1),
        "import_modules": {f.name: f.modules for f in functions} | {"floor": floor.modules},
        "import_repeats": len(floor.runs),
        "import_floor_targets": list(FLOOR),
        "chain_sdks": {f.name: f.chains for f in functions},
        "import_hidden_modules": len(floor.hidden),
        "cold_start_env": "Lambda-like (LAMBDA_TASK_ROOT set: Tracer active), only the function's layers"
        " importable, byte code cached",
    }


def chain_violations(data: Report) -> dict[str, list[str]]:
    """Chain SDKs a function without the chains layer tried to import."""
    return {
        name: found
        for name, found in data["chain_sdks"].items()
        if found and "chains" not in manifest.function(name).layers
    }


def missed(data: Report) -> list[str]:
    out = [f"cold start {name} ({ratio:.2f} > {IMPORT_RATIO_BUDGET})" for name, ratio in data["import_ratio"].items()]
    out = [m for m, r in zip(out, data["import_ratio"].values(), strict=True) if r > IMPORT_RATIO_BUDGET]
    out += [f"chain SDK in {name}: {', '.join(found)}" for name, found in chain_violations(data).items()]
    if data["pg_round_trips"] is not None and data["pg_round_trips"] > PG_BUDGET:
        out.append(f"PostgreSQL round trips ({data['pg_round_trips']} > {PG_BUDGET})")
    if data["dynamodb_calls"] is not None and data["dynamodb_calls"] > DYNAMODB_BUDGET:
        out.append(f"DynamoDB calls ({data['dynamodb_calls']} > {DYNAMODB_BUDGET})")
    return out


def print_cold(data: Report) -> None:
    print(f"\ncold start: import in a fresh interpreter, median of {data['import_repeats']} (ms)")
    print(f"{'function':14}{'median':>9}{'min':>9}{'modules':>9}{'ratio':>8}{'budget':>8}  {'status':8}chain SDKs")
    print(f"{'floor':14}{data['import_floor_ms']:>9.1f}{data['import_floor_min_ms']:>9.1f}", end="")
    print(f"{data['import_modules']['floor']:>9}{'1.00':>8}")
    violations = chain_violations(data)
    for name, ms in data["import_ms"].items():
        ratio, chains = data["import_ratio"][name], data["chain_sdks"][name]
        status = "ok" if ratio <= IMPORT_RATIO_BUDGET and name not in violations else "MISS"
        cells = f"{name:14}{ms:>9.1f}{data['import_min_ms'][name]:>9.1f}{data['import_modules'][name]:>9}"
        print(f"{cells}{ratio:>8.2f}{IMPORT_RATIO_BUDGET:>8.2f}  {status:8}{', '.join(chains) or '-'}")


def print_trips(data: Report) -> None:
    print(f"\nround trips: warm POST /v1/transfers, in process, max of {data['warm_requests']} requests")
    print(f"{'':30}{'measured':>9}{'budget':>8}  status   per request")
    rows = (
        ("PostgreSQL round trips", data["pg_round_trips"], PG_BUDGET, data["pg_round_trips_per_request"]),
        ("DynamoDB calls", data["dynamodb_calls"], DYNAMODB_BUDGET, data["dynamodb_calls_per_request"]),
    )
    for label, value, budget, each in rows:
        status = "ok" if value <= budget else "MISS"
        print(f"{label:30}{value:>9}{budget:>8}  {status:9}{' '.join(map(str, each))}")
    auth = data["authorizer"]
    print(f"{'authorizer, bearer: PostgreSQL':30}{auth['bearer_pg_round_trips']:>9}{'(apart)':>8}")
    print(f"{'authorizer, API key: PostgreSQL':30}{auth['api_key_pg_round_trips']:>9}{'(apart)':>8}")
    for over in data["requests_over_budget"]:
        print(
            f"over budget: request {over['index']}: {over['pg_round_trips']} PostgreSQL round trips for"
            f" {len(over['pg_statements'])} statement(s), {len(over['aws_calls'])} AWS call(s)"
        )
        for prepared in over["pg_prepares"]:
            print(f"  a server-side prepare on the wire (psycopg's prepare_threshold): {prepared}")
    print("calls of a warm request:")
    for what, sites in data["call_sites"].items():
        for site, count in sites.items():
            print(f"  {count:>3} × {what}\n        at {site}")


def print_latency(data: Report) -> None:
    lat = data["latency"]
    print(f"\nlatency: POST /v1/transfers through the twin, {lat['clients']} clients, {lat['seconds']:g} s warm")
    print(f"{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'max ms':>9}{'rps':>9}{'requests':>10}{'errors':>8}")
    print(
        f"{data['p50_ms']:>9.1f}{lat['p90_ms']:>9.1f}{data['p99_ms']:>9.1f}{lat['max_ms']:>9.1f}{data['rps']:>9.1f}"
        f"{lat['requests']:>10}{lat['errors']:>8}"
    )
    if lat["errors"]:
        print(f"warning: {lat['errors']} request(s) did not answer 201: {lat['statuses']}")


def main() -> int:
    config = Config.from_env()
    started = time.monotonic()
    data: Report = {
        "import_ms": {},
        "import_floor_ms": None,
        "import_ratio": {},
        "chain_sdks": {},
        "pg_round_trips": None,
        "dynamodb_calls": None,
        "p50_ms": None,
        "p99_ms": None,
        "rps": None,
    }
    print(
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f};"
        f" parts: {', '.join(p for p in PARTS if p in config.parts)}",
        flush=True,
    )
    if "cold" in config.parts:
        data |= cold_report(*cold_start(config))
        print_cold(data)
    failed = False
    if config.parts & {"trips", "latency"}:
        admin = admin_url(config)
        if "trips" in config.parts:
            data |= round_trips(config, admin)
            print_trips(data)
        if "latency" in config.parts and config.seconds > 0:
            try:
                data |= latency(config, admin)
                print_latency(data)
            except Exception as exc:  # the twin may not start: keep what the other parts measured
                data["latency_error"] = f"{type(exc).__name__}: {exc}"
                print(f"\nlatency: not measured: {data['latency_error']}", file=sys.stderr)
                failed = True
    data["budgets"] = {
        "import_ratio": IMPORT_RATIO_BUDGET,
        "pg_round_trips": PG_BUDGET,
        "dynamodb_calls": DYNAMODB_BUDGET,
    }
    data["missed"] = missed(data)
    data["parts"] = sorted(config.parts)
    data["python"] = platform.python_version()
    data["cpus"] = os.cpu_count()
    data["seconds_total"] = round(time.monotonic() - started, 1)
    data["timestamp"] = datetime.now(UTC).isoformat(timespec="seconds")
    if data["missed"]:
        print("\nbudgets missed: " + "; ".join(data["missed"]))
    elif config.parts & {"cold", "trips"}:
        print("\nevery budget met")
    config.output.parent.mkdir(parents=True, exist_ok=True)
    config.output.write_text(json.dumps(data, indent=2) + "\n")
    print(f"wrote {config.output}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
