"""The local twin: Rampart's cloud, in one process, built from the manifest.

    twin = Twin()
    url = twin.start(port=3000)   # returns once migrations ran and the admin is seeded
    ...
    twin.stop()

``start`` brings up, in order: moto with the manifest's tables, queues, secrets, schedule rules
and state machines (:mod:`infra.local.aws`); the Lambda registry and the botocore bridge for
``lambda:Invoke`` (:mod:`infra.local.lambdas`); the gateway on 127.0.0.1 (:mod:`infra.local.gateway`),
which answers 503 until the twin is ready; then, on a thread, PostgreSQL (embedded unless a URL
is given), the functions' environment and the deploy step (the manifest's ``deploy`` functions:
``migrate`` applies the migrations and seeds the admin); then the schedules, the queue consumers
and the watcher that publishes failed executions to the executions DLQ (:mod:`infra.local.executions`).

A twin owns process-wide things (``os.environ``, moto, the database pool of
``rampart.adapters.postgres.db``): one per process at a time. ``stop`` gives them back.

Introspection for tests and the CDK parity test: ``GET /_twin/routes`` (the gateway's route table),
``GET /_twin/triggers`` (schedules, queues, tables, functions, state machines, webhook paths,
queue consumers and the rules of failed executions as running) and ``GET /_twin/status`` (start-up checks);
``POST /_twin/schedules/{name}/run`` runs a schedule now; ``GET /_twin/executions?name=`` lists the
state machines' executions.

A twin is built from a :class:`~infra.manifest.Manifest`: Rampart's ``MANIFEST`` unless one is
given (tests start it with a fixture manifest of their own). Without a function that uses
PostgreSQL it starts no database and needs no deploy function.

Rampart's twin starts the outside world (:mod:`infra.world`) as its child, or, with ``world_url`` /
``RAMPART_WORLD_URL``, attaches to one already running and leaves it running at ``stop``: the
backend can then be killed and started again while the world runs on.
"""

from __future__ import annotations

import importlib
import os
import threading
import time
from pathlib import Path
from typing import Any

from infra.local import aws, openapi
from infra.local.executions import ExecutionWatcher
from infra.local.gateway import Gateway, GatewayServer, HttpReply, HttpRequest, InternalHandler, json_reply
from infra.local.lambdas import DEFAULT_MAX_CONTAINERS, LambdaBridge, LambdaRegistry, function_environment
from infra.local.logs import get_logger
from infra.local.queues import QueuePoller
from infra.local.routing import Router
from infra.local.schedules import Scheduler
from infra.local.sim import SIMULATORS, SimRegistry
from infra.manifest import MANIFEST, Manifest

log = get_logger("rampart.twin")

DEFAULT_ADMIN_EMAIL = "admin@rampart.example"
DEFAULT_ADMIN_PASSWORD = "rampart-admin-local"  # noqa: S105 - API.md's documented local default

_active: Twin | None = None
_active_lock = threading.Lock()


class TwinError(RuntimeError):
    pass


class Twin:
    def __init__(
        self,
        *,
        database_url: str | None = None,
        state_dir: Path | None = None,
        admin_email: str | None = None,
        admin_password: str | None = None,
        schedules: bool | None = None,
        max_containers: int | None = None,
        manifest: Manifest = MANIFEST,
        queue_visibility_seconds: int | None = None,
        queues: bool = True,
        world: bool | None = None,
        world_url: str | None = None,
    ) -> None:
        from infra.local.postgres import DATA_DIR

        env = os.environ
        self.database_url = database_url or env.get("DATABASE_URL") or None
        self.state_dir = state_dir or Path(env.get("RAMPART_TWIN_STATE_DIR") or DATA_DIR / "twin")
        self.admin_email = admin_email or env.get("RAMPART_ADMIN_EMAIL") or DEFAULT_ADMIN_EMAIL
        self.admin_password = admin_password or env.get("RAMPART_ADMIN_PASSWORD") or DEFAULT_ADMIN_PASSWORD
        self.schedules_enabled = schedules if schedules is not None else env.get("RAMPART_SCHEDULES", "1") != "0"
        self.max_containers = max_containers or int(env.get("RAMPART_TWIN_CONTAINERS") or DEFAULT_MAX_CONTAINERS)
        self.manifest = manifest
        self.queue_visibility_seconds = queue_visibility_seconds
        self.queues_enabled = queues
        # The outside world (infra/world) beside Rampart's own manifest; RAMPART_WORLD=0: none.
        self.world_enabled = world if world is not None else manifest is MANIFEST and env.get("RAMPART_WORLD") != "0"
        # RAMPART_WORLD_URL: attach to a world already running there (not started, never stopped by us).
        self.world_url = world_url or env.get("RAMPART_WORLD_URL") or None
        self.world: Any = None  # infra.world.launcher.WorldProcess (or twin.AttachedWorld) once started
        self.queues: QueuePoller | None = None
        self.executions: ExecutionWatcher | None = None
        self.url: str | None = None
        self.ready = threading.Event()
        self.failure: BaseException | None = None
        self.checks: dict[str, str] = {"database": "pending", "migrations": "pending", "admin": "pending"}
        self.migrations_applied: list[str] = []
        self.deployed: dict[str, Any] = {}  # deploy function → its result
        self.aws: aws.LocalAws | None = None
        self.registry: LambdaRegistry | None = None
        self.gateway: Gateway | None = None
        self.scheduler: Scheduler | None = None
        self.sims = SimRegistry()
        self._bridge: LambdaBridge | None = None
        self._server: GatewayServer | None = None
        self._saved_env: dict[str, str] | None = None
        self._bootstrap_thread: threading.Thread | None = None
        self._openapi: dict[str, Any] | None = None

    # -- life cycle ----------------------------------------------------------------------------

    def start(self, port: int = 0, *, wait: bool = True, timeout: float = 120.0) -> str:
        """Start everything; returns the URL (once ready, unless ``wait=False``)."""
        global _active
        self.manifest.check()
        with _active_lock:
            if _active is not None:
                raise TwinError("a twin is already running in this process")
            _active = self
        started = time.monotonic()
        self._saved_env = dict(os.environ)
        try:
            self.aws = aws.LocalAws(
                state_dir=self.state_dir,
                admin_email=self.admin_email,
                admin_password=self.admin_password,
                manifest=self.manifest,
                queue_visibility_seconds=self.queue_visibility_seconds,
            )
            deployment = self.aws.start()
            self.registry = LambdaRegistry(
                self.manifest.functions, dlqs=deployment.dlqs, max_containers=self.max_containers, m=self.manifest
            )
            self._bridge = LambdaBridge(self.registry)
            self._bridge.install()
            self.scheduler = Scheduler(self.registry, self.manifest.schedules, rules=deployment.rules)
            self.queues = QueuePoller(self.registry, self.manifest, deployment, client=self.aws.client("sqs"))
            self.executions = ExecutionWatcher(self.aws, deployment)
            for module in SIMULATORS:
                importlib.import_module(module).register(self.sims, self)
            self.gateway = Gateway(
                self.registry,
                functions=self.manifest.functions,
                sims=self.sims,
                internal=self._internal_routes(),
                is_ready=self.ready.is_set,
                not_ready=self._starting,
            )
            self._server = GatewayServer(self.gateway, port=port)
            self._server.start()
            self.url = self._server.url
            log.info("gateway listening", extra={"url": self.url, "seconds": round(time.monotonic() - started, 2)})
            self._bootstrap_thread = threading.Thread(target=self._bootstrap, name="twin-bootstrap", daemon=True)
            self._bootstrap_thread.start()
            if wait:
                self.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self.url

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.ready.wait(0.05):
            if self.failure is not None:
                raise TwinError(f"the twin failed to start: {self.failure!r}") from self.failure
            if time.monotonic() > deadline:
                raise TwinError(f"the twin was not ready within {timeout:.0f}s: {self.checks}")

    def _bootstrap(self) -> None:
        """PostgreSQL, the functions' environment, then the deploy step: every ``deploy`` function
        of the manifest invoked synchronously, as the cloud's deploy trigger does (``migrate``
        applies the migrations and seeds the admin from the admin secret, which holds
        ``RAMPART_ADMIN_EMAIL`` / ``RAMPART_ADMIN_PASSWORD`` or API.md's defaults). A failure
        fails the start, as it fails a deployment."""
        started = time.monotonic()
        try:
            assert self.aws is not None
            assert self.registry is not None
            assert self.scheduler is not None
            if self.world_enabled:
                from infra.world import twin as world_twin

                self.world = world_twin.launch(self)  # loads its chain while PostgreSQL starts
            url = self.database_url
            embedded = not url
            uses_database = any("postgres" in fn.uses for fn in self.manifest.functions)
            if not uses_database:
                url = url or "postgresql://unused@127.0.0.1:9/unused"  # no function connects
                self.checks["database"] = "unused"
            elif not url:
                from infra.local.postgres import embedded_url

                url = embedded_url()
            if uses_database:
                self.checks["database"] = "embedded" if embedded else "given"
            self.database_url = url
            if self.world is not None:
                self.aws.deployment.externals.update(world_twin.externals(self.world))
                self.aws.put_world_secrets(world_twin.secrets(self.world))
            os.environ.update(function_environment(self.aws.deployment, url, self.manifest))
            os.environ.setdefault("RAMPART_DB_POOL_SIZE", "16")
            self._reset_singletons()
            deploy = [fn.name for fn in self.registry.functions.values() if fn.kind == "deploy"]
            if uses_database and not deploy:
                raise TwinError("the manifest has no deploy function: nothing migrates the database")
            if not deploy:
                self.checks["migrations"] = self.checks["admin"] = "none"
            for name in deploy:
                result = self.registry.invoke(name, {})
                if isinstance(result, dict) and isinstance(result.get("applied"), list):
                    self.migrations_applied += [str(m) for m in result["applied"]]
                self.deployed[name] = result
            if deploy:
                self.checks["migrations"] = self.checks["admin"] = "ok"
            self.ready.set()
            if self.schedules_enabled:
                self.scheduler.start()
            if self.queues_enabled and self.queues is not None:
                self.queues.start()
            if self.executions is not None:
                self.executions.start()
            log.info(
                "twin ready",
                extra={
                    "url": self.url,
                    "database_url": url,
                    "embedded_postgres": embedded,
                    "deployed": self.deployed,
                    "admin_email": self.admin_email,
                    "schedules": self.schedules_enabled,
                    "seconds": round(time.monotonic() - started, 2),
                },
            )
        except BaseException as exc:
            for key, value in self.checks.items():
                if value == "pending":
                    self.checks[key] = "failed"
            self.failure = exc
            log.exception("twin start-up failed")

    @staticmethod
    def _reset_singletons() -> None:
        from rampart.adapters.postgres.db import reset_database
        from rampart.core.settings import reset_settings
        from rampart.wiring import ledger as wiring
        from rampart.wiring import ramps as ramp_wiring

        reset_settings()  # the functions' environment changed: read it again
        reset_database()
        wiring.reset()
        ramp_wiring.reset()

    def stop(self) -> None:
        """Stop the server, the schedules and moto; close the database pool; give the process
        its environment back. Safe to call twice."""
        global _active
        if self.scheduler is not None:
            self.scheduler.stop()
        if self.queues is not None:
            self.queues.stop()
            self.queues = None
        if self.executions is not None:
            self.executions.stop()
            self.executions = None
        if self._server is not None:
            self._server.stop()
            self._server = None
        if self._bootstrap_thread is not None:
            self._bootstrap_thread.join(timeout=30)
            self._bootstrap_thread = None
        if self.world is not None:
            self.world.stop()
            self.world = None
        if self._bridge is not None:
            self._bridge.uninstall()
            self._bridge = None
        if self.registry is not None:
            self.registry.close()
            self.registry = None
        try:
            self._reset_singletons()
        except Exception:
            log.exception("closing the database pool failed")
        if self.aws is not None:
            self.aws.stop()
            self.aws = None
        if self._saved_env is not None:
            os.environ.clear()
            os.environ.update(self._saved_env)
            self._saved_env = None
            from rampart.core.settings import reset_settings

            reset_settings()
        self.ready.clear()
        with _active_lock:
            if _active is self:
                _active = None

    # -- the twin's own endpoints --------------------------------------------------------------

    def _starting(self) -> HttpReply:
        return json_reply(503, {"status": "starting", "checks": dict(self.checks)}, [("Retry-After", "1")])

    def _internal_routes(self) -> Router[InternalHandler]:
        router: Router[InternalHandler] = Router()
        router.add("GET", "/openapi.json", lambda request, params: json_reply(200, self.openapi()))
        router.add("GET", "/docs", self._docs)
        router.add("GET", "/docs/{asset}", self._docs_asset)
        router.add("GET", "/_twin/status", lambda request, params: json_reply(200, self.status()))
        router.add("GET", "/_twin/routes", lambda request, params: json_reply(200, self.routes()))
        router.add("GET", "/_twin/triggers", lambda request, params: json_reply(200, self.triggers()))
        router.add("POST", "/_twin/schedules/{name}/run", self._run_schedule)
        router.add("GET", "/_twin/executions", self._executions)
        return router

    def _executions(self, request: HttpRequest, params: dict[str, str]) -> HttpReply:
        """Every execution of the manifest's state machines (``?name=`` keeps those of that name):
        ``{"items": [{state_machine, name, status, execution_arn}]}`` — what the tests count."""
        assert self.aws is not None
        import urllib.parse

        query = urllib.parse.parse_qs(urllib.parse.urlsplit(request.target).query)
        wanted = query["name"][0] if query.get("name") else None
        stepfunctions = self.aws.client("stepfunctions")
        items = []
        for machine, arn in self.aws.deployment.state_machines.items():
            pages = stepfunctions.get_paginator("list_executions").paginate(stateMachineArn=arn)
            for page in pages:
                for execution in page["executions"]:
                    if wanted is None or execution["name"] == wanted:
                        items.append(
                            {
                                "state_machine": machine,
                                "name": execution["name"],
                                "status": execution["status"],
                                "execution_arn": execution["executionArn"],
                            }
                        )
        return json_reply(200, {"items": items})

    def openapi(self) -> dict[str, Any]:
        if self._openapi is not None:
            return self._openapi
        document = openapi.merged_openapi(strict=False)
        if document.get("x-rampart-missing"):
            log.warning("OpenAPI without some functions", extra={"missing": document["x-rampart-missing"]})
        else:
            self._openapi = document
        return document

    def _docs(self, request: HttpRequest, params: dict[str, str]) -> HttpReply:
        if openapi.swagger_ui_dir() is None:
            text = "Swagger UI is not installed: pip install swagger-ui-py (the twin group of pyproject.toml)"
            return HttpReply(503, [("Content-Type", "text/plain; charset=utf-8")], text.encode())
        return HttpReply(200, [("Content-Type", "text/html; charset=utf-8")], openapi.DOCS_HTML.encode())

    def _docs_asset(self, request: HttpRequest, params: dict[str, str]) -> HttpReply:
        folder = openapi.swagger_ui_dir()
        asset = params["asset"]
        if folder is None or asset not in openapi.DOCS_ASSETS:
            return HttpReply(404, [("Content-Type", "text/plain; charset=utf-8")], b"not found")
        return HttpReply(
            200,
            [("Content-Type", openapi.DOCS_ASSETS[asset]), ("Cache-Control", "public, max-age=3600")],
            (folder / asset).read_bytes(),
        )

    def _run_schedule(self, request: HttpRequest, params: dict[str, str]) -> HttpReply:
        assert self.scheduler is not None
        name = params["name"]
        if name not in self.scheduler.jobs:
            return json_reply(404, {"error": f"no schedule {name}"})
        future = self.scheduler.fire(name)
        try:
            return json_reply(200, {"schedule": name, "result": future.result(timeout=300)})
        except Exception as exc:
            return json_reply(500, {"schedule": name, "error": f"{type(exc).__name__}: {exc}"})

    def status(self) -> dict[str, Any]:
        return {
            "ready": self.ready.is_set(),
            "checks": dict(self.checks),
            "migrations_applied": self.migrations_applied,
            "deployed": self.deployed,
            "admin_email": self.admin_email,
            "schedules": self.schedules_enabled,
        }

    def routes(self) -> list[dict[str, Any]]:
        """The gateway's route table, as served."""
        assert self.gateway is not None
        return self.gateway.table()

    def triggers(self) -> dict[str, Any]:
        """Schedules, queues, tables, functions, state machines and the deploy step as they run (read
        back from the scheduler, the registry and moto, not from the manifest). ``name`` is the
        manifest-level name (a function's DLQ: ``<function>-dlq``), ``physical_name`` moto's."""
        assert self.aws is not None
        assert self.scheduler is not None
        assert self.registry is not None
        sqs, dynamodb = self.aws.client("sqs"), self.aws.client("dynamodb")
        dlq_of = {url: fn for fn, url in self.aws.deployment.dlqs.items()}
        dlq_of.update({url: queue for queue, url in self.aws.deployment.queue_dlqs.items()})
        queues = []
        for url in sqs.list_queues().get("QueueUrls", []):
            attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
            physical = url.rsplit("/", 1)[-1]
            queues.append(
                {
                    "name": physical.removeprefix(f"{aws.PREFIX}-"),
                    "physical_name": physical,
                    "url": url,
                    "arn": attributes.get("QueueArn"),
                    "visibility_timeout_seconds": int(attributes.get("VisibilityTimeout", 30)),
                    "redrive_policy": attributes.get("RedrivePolicy"),
                    "dead_letter_queue_of": dlq_of.get(url),
                }
            )
        tables = []
        for name in dynamodb.list_tables().get("TableNames", []):
            described = dynamodb.describe_table(TableName=name)["Table"]
            keys = {k["KeyType"]: k["AttributeName"] for k in described["KeySchema"]}
            ttl = dynamodb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
            tables.append(
                {
                    "name": name.removeprefix(f"{aws.PREFIX}-"),
                    "physical_name": name,
                    "partition_key": keys.get("HASH"),
                    "sort_key": keys.get("RANGE"),
                    "ttl_attribute": ttl.get("AttributeName") if ttl.get("TimeToLiveStatus") == "ENABLED" else None,
                }
            )
        machines: list[dict[str, str]] = []
        if self.aws.deployment.state_machines:
            listed = self.aws.client("stepfunctions").list_state_machines().get("stateMachines", [])
            for machine in listed:
                name, arn = machine["name"], machine["stateMachineArn"]
                machines.append({"name": name.removeprefix(f"{aws.PREFIX}-"), "physical_name": name, "arn": arn})
        return {
            "schedules": [
                {
                    "name": name,
                    "rate": job.schedule.rate,
                    "period_seconds": job.period,
                    "function": job.schedule.function,
                    "rule_arn": job.rule_arn,
                    "enabled": self.schedules_enabled,
                }
                for name, job in self.scheduler.jobs.items()
            ],
            "queues": queues,
            "tables": tables,
            "functions": [
                {
                    "name": fn.name,
                    "kind": fn.kind,
                    "handler": fn.handler,
                    "arn": aws.function_arn(fn.name),
                    "timeout_seconds": fn.timeout_seconds,
                    "memory_mb": fn.memory_mb,
                    "dead_letter_queue": self.aws.deployment.dlqs.get(fn.name),
                    "containers": self.registry.runtime(fn.name).containers,
                }
                for fn in self.registry.functions.values()
            ],
            "state_machines": machines,
            "deploy": list(self.deployed),
            "simulators": self.sims.routes(),
            "webhooks": [
                {"function": fn.name, "path": fn.path, "url": f"{self.url}{fn.path}"}
                for fn in self.manifest.of_kind("webhook")
            ],
            "queue_consumers": self.queues.describe() if self.queues is not None else [],
            "execution_rules": self.executions.describe() if self.executions is not None else [],
        }
