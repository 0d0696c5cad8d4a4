"""The one list of Rampart's functions, routes, triggers, tables, queues, schedules and state
machines. The CDK app (``infra/stacks``) and the local twin (``infra/local``) are both built from
it, and tests assert that the two agree. Nothing about a route or a trigger is written twice.

Pure data: importing this module imports nothing heavy (no CDK, no boto3)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
# What a function may touch; the CDK app turns each into least-privilege grants and env vars.
Resource = Literal[
    "postgres",  # Aurora via RDS Proxy (in the VPC); DATABASE_URL / secret
    "idempotency_table",  # DynamoDB, Powertools idempotency records
    "rate_limit_table",  # DynamoDB, login throttling counters
    "jwt_keys",  # Secrets Manager: JWT signing keys (kid → secret)
    "admin_secret",  # Secrets Manager: the seeded admin's credentials (migrate only)
]
Layer = Literal["core", "chains"]


@dataclass(frozen=True)
class Route:
    method: Method
    path: str  # API Gateway style: /v1/accounts/{id}
    auth: bool = True  # behind the Lambda authorizer
    idempotent: bool = False  # a money-moving POST: Idempotency-Key required
    roles: tuple[str, ...] = ()  # roles allowed (empty: any authenticated principal)


@dataclass(frozen=True)
class Schedule:
    name: str
    rate: str  # EventBridge expression, e.g. "rate(1 minute)"
    function: str


@dataclass(frozen=True)
class Function:
    name: str
    handler: str  # module:function, importable from the bundle root
    description: str
    routes: tuple[Route, ...] = ()
    uses: frozenset[Resource] = frozenset()
    layers: tuple[Layer, ...] = ("core",)
    timeout_seconds: int = 10
    memory_mb: int = 512
    env: tuple[tuple[str, str], ...] = ()
    kind: Literal["api", "authorizer", "scheduled", "deploy"] = "api"

    @property
    def asynchronous(self) -> bool:
        """Invoked asynchronously (schedules, deploy triggers): failures go to a DLQ."""
        return self.kind in ("scheduled", "deploy")


@dataclass(frozen=True)
class Table:
    name: str
    partition_key: str
    ttl_attribute: str | None = None
    sort_key: str | None = None


@dataclass(frozen=True)
class Queue:
    name: str
    visibility_timeout_seconds: int = 60
    dead_letter: bool = True


@dataclass(frozen=True)
class StateMachine:
    name: str
    definition: str  # statemachines/<file>.asl.json
    substitutions: dict[str, str] = field(default_factory=dict)  # ${Placeholder} → function name


# How a function finds each resource it uses: the environment variable naming it. (PostgreSQL is
# DATABASE_URL in the twin; in the cloud the RAMPART_DB_* variables of docs/cloud.md.)
RESOURCE_ENV: dict[Resource, str] = {
    "postgres": "DATABASE_URL",
    "idempotency_table": "RAMPART_IDEMPOTENCY_TABLE",
    "rate_limit_table": "RAMPART_RATE_LIMIT_TABLE",
    "jwt_keys": "RAMPART_JWT_SECRET_ARN",
    "admin_secret": "RAMPART_ADMIN_SECRET_ARN",
}
# Resources that are DynamoDB tables: which table of TABLES each one means.
RESOURCE_TABLE: dict[Resource, str] = {"idempotency_table": "idempotency", "rate_limit_table": "rate_limits"}

API_ROLES = ("user", "business", "lender", "partner", "admin")
LEDGER: frozenset[Resource] = frozenset({"postgres"})
MONEY: frozenset[Resource] = frozenset({"postgres", "idempotency_table"})

FUNCTIONS: tuple[Function, ...] = (
    Function(
        name="health",
        handler="functions.health.handler.handler",
        description="GET /health: PostgreSQL, DynamoDB and queues reachable",
        routes=(Route("GET", "/health", auth=False),),
        uses=frozenset({"postgres", "idempotency_table", "rate_limit_table"}),
    ),
    Function(
        name="auth",
        handler="functions.auth.handler.handler",
        description="Register, login, refresh, logout, me",
        routes=(
            Route("POST", "/v1/auth/register", auth=False),
            Route("POST", "/v1/auth/login", auth=False),
            Route("POST", "/v1/auth/refresh", auth=False),
            Route("POST", "/v1/auth/logout", auth=False),
            Route("GET", "/v1/me"),
        ),
        uses=frozenset({"postgres", "rate_limit_table", "jwt_keys"}),
    ),
    Function(
        name="accounts",
        handler="functions.accounts.handler.handler",
        description="Ledger accounts, balances and entries",
        routes=(
            Route("POST", "/v1/accounts"),
            Route("GET", "/v1/accounts"),
            Route("GET", "/v1/accounts/{id}"),
            Route("GET", "/v1/accounts/{id}/entries"),
        ),
        uses=LEDGER,
    ),
    Function(
        name="transfers",
        handler="functions.transfers.handler.handler",
        description="Transfers, holds and atomic batches",
        routes=(
            Route("POST", "/v1/transfers", idempotent=True),
            Route("POST", "/v1/transfers/batch", idempotent=True),
            Route("POST", "/v1/transfers/{id}/post", idempotent=True),
            Route("POST", "/v1/transfers/{id}/void", idempotent=True),
            Route("GET", "/v1/transfers"),
            Route("GET", "/v1/transfers/{id}"),
        ),
        uses=MONEY,
    ),
    Function(
        name="admin",
        handler="functions.admin.handler.handler",
        description="Admin: partners and deposits",
        routes=(
            Route("POST", "/v1/admin/partners", roles=("admin",)),
            Route("POST", "/v1/admin/deposits", idempotent=True, roles=("admin",)),
        ),
        uses=frozenset({"postgres", "idempotency_table"}),
    ),
    Function(
        name="authorizer",
        handler="functions.authorizer.handler.handler",
        description="API Gateway Lambda authorizer: bearer tokens and partner API keys",
        uses=frozenset({"postgres", "jwt_keys"}),
        kind="authorizer",
        memory_mb=256,
    ),
    Function(
        name="ledger_sweep",
        handler="functions.ledger_sweep.handler.handler",
        description="Release ledger holds past their timeout",
        uses=LEDGER,
        kind="scheduled",
        timeout_seconds=60,
    ),
    Function(
        name="migrate",
        handler="functions.migrate.handler.handler",
        description="Apply database migrations and seed the admin (run on every deploy)",
        uses=frozenset({"postgres", "admin_secret"}),
        kind="deploy",
        timeout_seconds=300,
    ),
)

TABLES: tuple[Table, ...] = (
    Table("idempotency", partition_key="id", ttl_attribute="expiration"),
    Table("rate_limits", partition_key="pk", ttl_attribute="expires_at"),
)

QUEUES: tuple[Queue, ...] = ()  # per-function DLQs are implied by Function.asynchronous

SCHEDULES: tuple[Schedule, ...] = (Schedule("ledger-sweep", "rate(1 minute)", "ledger_sweep"),)

STATE_MACHINES: tuple[StateMachine, ...] = ()


def function(name: str) -> Function:
    for fn in FUNCTIONS:
        if fn.name == name:
            return fn
    raise KeyError(name)


def routes() -> list[tuple[Route, Function]]:
    """Every route with the function that serves it, in manifest order."""
    return [(route, fn) for fn in FUNCTIONS for route in fn.routes]


def check() -> None:
    """Consistency of the manifest itself (run by the tests and by both runtimes at start)."""
    names = [f.name for f in FUNCTIONS]
    assert len(names) == len(set(names)), "function names must be unique"
    seen = [(r.method, r.path) for r, _ in routes()]
    assert len(seen) == len(set(seen)), "a route belongs to exactly one function"
    assert set(RESOURCE_TABLE.values()) <= {t.name for t in TABLES}, "a table resource names a manifest table"
    for schedule in SCHEDULES:
        assert function(schedule.function).kind == "scheduled", schedule
    for route, fn in routes():
        assert fn.kind == "api", f"{fn.name} serves {route.path} but is not an api function"
        assert not (route.idempotent and route.method != "POST"), route
        assert set(route.roles) <= set(API_ROLES), route
