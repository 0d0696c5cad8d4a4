"""The one list of Rampart's functions, routes, triggers, tables, queues, schedules and state
machines. The CDK app (``infra/stacks``) and the local twin (``infra/local``) are both built from
it, and tests assert that the two agree. Nothing about a route or a trigger is written twice.

Pure data: importing this module imports nothing heavy (no CDK, no boto3)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
Layer = Literal["core", "chains"]
# Every function is of one kind, and every kind has one entry stack in rampart (observability,
# settings validated once, errors mapped one way) that both runtimes honour:
#   api         API Gateway proxy events, routed by Route (rampart.api.app.lambda_entry)
#   authorizer  the API Gateway REQUEST authorizer
#   worker      a Step Functions task (lambda:invoke from a state machine)
#   queue       an SQS consumer (event source mapping, partial batch failures reported)
#   webhook     a provider's callback on a Lambda function URL (the twin: its own URL path)
#   scheduled   an EventBridge schedule (asynchronous: failures go to the function's DLQ)
#   deploy      run once per deploy (a CDK Trigger; the twin runs it at start)
Kind = Literal["api", "authorizer", "worker", "queue", "webhook", "scheduled", "deploy"]
ASYNCHRONOUS_KINDS: frozenset[Kind] = frozenset({"scheduled", "deploy"})


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


# Resources: each declared once, with what carries it to a function (``env``: the field of
# rampart.core.settings.Settings whose alias is the environment variable), what a function that
# uses it is granted, and what the twin puts there. A function names what it ``uses`` by name.


@dataclass(frozen=True)
class Postgres:
    """Aurora through RDS Proxy in the cloud (IAM auth); the embedded PostgreSQL in the twin."""

    name: str = "postgres"
    setting: str = "database_url"


@dataclass(frozen=True)
class Table:
    """A DynamoDB table."""

    name: str
    setting: str  # rampart.core.settings.Settings field (its alias is the env var: the table name)
    partition_key: str
    ttl_attribute: str | None = None
    sort_key: str | None = None
    actions: tuple[str, ...] = ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem")


@dataclass(frozen=True)
class Queue:
    """An SQS queue with its DLQ (the redrive policy moves a message there after
    ``max_receive_count`` failed receives). ``consumer`` names the ``queue`` function fed by it."""

    name: str
    setting: str | None = None  # for functions that send to it: the Settings field carrying its URL
    consumer: str | None = None
    visibility_timeout_seconds: int = 60
    max_receive_count: int = 5
    batch_size: int = 10
    actions: tuple[str, ...] = ("sqs:SendMessage",)  # granted to functions that use it (to send)


TwinSecret = Literal["jwt_keys", "admin", "random_key", "webhook_secret", "world"]


@dataclass(frozen=True)
class Secret:
    """A Secrets Manager secret: the env var carries its ARN. ``twin``: how the twin makes its
    value (``jwt_keys``: a key ring kept under the state folder; ``admin``: the seeded admin's
    credentials; ``random_key``: 32 random bytes, hex, kept under the state folder;
    ``webhook_secret``: a Standard Webhooks ``whsec_<base64 of 24 random bytes>``, kept under the
    state folder, which the twin's world signs its webhooks with; ``world``: what the twin's world
    process made (a provider's API key), written into the secret once the world is up)."""

    name: str
    setting: str
    twin: TwinSecret
    actions: tuple[str, ...] = ("secretsmanager:GetSecretValue",)  # nothing describes a secret


@dataclass(frozen=True)
class RetryPolicy:
    """A state machine's Retry for one error name, as ASL writes it (seconds; ``backoff`` a decimal
    string: the definitions carry it as a JSON number)."""

    error: str
    interval_seconds: int
    max_attempts: int
    backoff: str

    def waits(self) -> list[Decimal]:
        """The waits before each retry, in seconds (what a test compares with a claim's lease)."""
        return [self.interval_seconds * Decimal(self.backoff) ** i for i in range(self.max_attempts)]


@dataclass(frozen=True)
class StateMachine:
    name: str
    definition: str  # statemachines/<file>.asl.json
    substitutions: dict[str, str] = field(default_factory=dict)  # ${Placeholder} → function name
    setting: str | None = None  # for functions that start executions: the Settings field carrying its ARN
    actions: tuple[str, ...] = ("states:StartExecution", "states:DescribeExecution", "states:SendTaskSuccess")
    # Per stage, the Retry of each named error in every state that retries it (the committed file
    # carries ``prod``'s; the CDK app and the twin render the stage's): (stage, policies) pairs.
    retries: tuple[tuple[str, tuple[RetryPolicy, ...]], ...] = ()

    def retry_policies(self, stage: str) -> tuple[RetryPolicy, ...]:
        found = dict(self.retries)
        if self.retries and stage not in found:
            raise KeyError(f"{self.name}: no retries for stage {stage!r} (declared: {', '.join(found)})")
        return found.get(stage, ())


@dataclass(frozen=True)
class External:
    """A place in the outside world a function reaches (a chain's RPC, a provider's API) or a fact
    about it (contract addresses, the platform's addresses): plain configuration, no secret and no
    grant. The cloud takes its value from the stage configuration (``infra/stacks/config.py``
    ``StageConfig.externals``); the twin from its world process (``infra/world/twin.py``)."""

    name: str
    setting: str
    description: str
    actions: tuple[str, ...] = ()


@dataclass(frozen=True)
class StageSetting:
    """Configuration declared here with a value per stage (``values``: stage → value; ``local`` is
    the twin's, ``test`` a test suite's shorter one): the env var of ``setting`` carries the stage's
    value to each function that uses it, in the cloud and in the twin alike. No grant."""

    name: str
    setting: str
    values: tuple[tuple[str, str], ...]
    actions: tuple[str, ...] = ()

    def value(self, stage: str) -> str:
        found = dict(self.values)
        if stage not in found:
            raise KeyError(f"{self.name}: no value for stage {stage!r} (declared: {', '.join(found)})")
        return found[stage]


UsagePlanLimits = Literal["partner", "stage"]


@dataclass(frozen=True)
class UsagePlan:
    """An API Gateway usage plan of the REST API: the methods with ``auth=True`` require an API
    key (``apiKeyRequired``), which the authorizer supplies as ``usageIdentifierKey`` (API key
    source ``AUTHORIZER``), and API Gateway throttles and meters each key by the plan it is in.

    ``limits``: ``partner`` (per key: ``StageConfig.partner_rate_limit``/``partner_burst_limit``
    and ``partner_daily_quota``) or ``stage`` (``StageConfig.api_rate_limit``/``api_burst_limit``,
    no quota). ``shared_key``: a ``Secret`` whose value is the plan's one key, imported by the
    deployment itself (CDK: an ``AWS::ApiGateway::ApiKey`` whose value is a dynamic reference to
    the secret, so no plaintext in the template; the twin: from the secret it made).

    A function that ``uses`` a plan adds keys to it: ``setting`` carries the plan's *name* (its
    id would make the function depend on the API that invokes it, a cycle in CloudFormation), and
    ``actions`` are granted on the gateway's paths: ``apigateway:GET`` on ``/usageplans`` (find
    the plan by name), ``apigateway:POST`` on ``/apikeys`` (import a key) and on
    ``/usageplans/<id>/keys`` (put it in this plan). API Gateway's management API has no VPC
    endpoint: a function in the VPC that uses a plan reaches it through the NAT."""

    name: str
    description: str
    limits: UsagePlanLimits
    setting: str
    shared_key: str | None = None
    actions: tuple[str, ...] = ("apigateway:GET", "apigateway:POST")


Resource = Postgres | Table | Queue | Secret | StateMachine | External | StageSetting | UsagePlan


@dataclass(frozen=True)
class DbRole:
    """A PostgreSQL role a function connects as (``Function.db_role``). Its privileges are written
    once, in the migration that creates it (``layers/core/rampart/adapters/postgres/migrations/
    0008.roles.sql``); the roles test checks that the migrations create exactly the manifest's
    roles. ``owner``: the role that owns the schema and runs the migrations, the cluster's master
    user in the cloud (its credentials are the cluster's secret) and the server's superuser in the
    twin. Every other role logs in with its own secret through the proxy in the cloud (one proxy
    auth entry and one ``rds-db:connect`` resource each) and as itself in the twin."""

    name: str
    description: str
    owner: bool = False


@dataclass(frozen=True)
class MetricAlarm:
    """An alarm when a function's own metric (a count, summed over ``minutes``) exceeds
    ``threshold`` for ``periods`` periods in a row."""

    metric: str
    threshold: int
    description: str
    minutes: int = 5
    periods: int = 1


@dataclass(frozen=True)
class Function:
    name: str
    handler: str  # module:function, importable from the bundle root
    description: str
    kind: Kind = "api"
    routes: tuple[Route, ...] = ()  # api functions only
    uses: frozenset[str] = frozenset()  # resource names
    layers: tuple[Layer, ...] = ("core",)
    timeout_seconds: int = 10
    memory_mb: int = 512
    env: tuple[tuple[str, str], ...] = ()
    path: str | None = None  # webhook functions: the twin's URL path (the cloud gives a function URL)
    # Reserved concurrency: at most this many run at once, and this many are always available to
    # it (a login flood cannot starve the authorizer). None: 1 for scheduled and deploy functions
    # (a run never overlaps the previous one), unreserved otherwise.
    reserved_concurrency: int | None = None
    # Per used resource, the actions this function is granted instead of the resource's own
    # ``actions`` (e.g. health only describes the tables): (resource name, actions) pairs.
    grants: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # The database role it connects as (a DB_ROLES name): required exactly when it uses postgres.
    db_role: str | None = None
    # Alarms on the metrics it publishes itself (rampart.core.entry.count), beside the alarms every
    # function gets (errors, throttles, its DLQ, a schedule's heartbeat).
    alarms: tuple[MetricAlarm, ...] = ()

    @property
    def asynchronous(self) -> bool:
        """Invoked asynchronously (schedules, deploy triggers): failures go to a DLQ."""
        return self.kind in ASYNCHRONOUS_KINDS

    @property
    def concurrency(self) -> int | None:
        """The reserved concurrency the cloud sets (see ``reserved_concurrency``)."""
        if self.reserved_concurrency is None and self.kind in ASYNCHRONOUS_KINDS:
            return 1
        return self.reserved_concurrency

    def actions_on(self, resource: Resource) -> tuple[str, ...]:
        """What this function may do to ``resource``: its own ``grants`` entry, else the resource's ``actions``."""
        own = dict(self.grants)
        if resource.name in own:
            return own[resource.name]
        actions: tuple[str, ...] = getattr(resource, "actions", ())
        return actions


API_ROLES = ("user", "business", "lender", "partner", "admin")
LEDGER: frozenset[str] = frozenset({"postgres"})
MONEY: frozenset[str] = frozenset({"postgres", "idempotency"})
TASK_COMPLETION = ("states:SendTaskSuccess", "states:SendTaskFailure")  # a waiting task, by its token
OPERATE = ("states:StartExecution", "states:DescribeExecution", "states:SendTaskSuccess")
WATCH = ("states:DescribeExecution", "states:StopExecution")  # an execution's status; a silent one stopped
WORLD: frozenset[str] = frozenset({"base_rpc", "base_contracts", "base_accounts", "pix_api"})  # chains, providers

FUNCTIONS: tuple[Function, ...] = (
    Function(
        name="health",
        handler="functions.health.handler.handler",
        description="GET /health: PostgreSQL, DynamoDB and queues reachable",
        routes=(Route("GET", "/health", auth=False),),
        uses=frozenset({"postgres", "idempotency", "rate_limits"}),
        # It only checks that the tables answer: no item access (deleting idempotency records
        # would enable replays).
        grants=(("idempotency", ("dynamodb:DescribeTable",)), ("rate_limits", ("dynamodb:DescribeTable",))),
        reserved_concurrency=5,
        db_role="rampart_health",
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
        uses=frozenset({"postgres", "rate_limits", "jwt_keys"}),
        reserved_concurrency=20,  # argon2 is memory- and CPU-hungry: a login flood stays within this
        db_role="rampart_auth",
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
        uses=LEDGER | {"cursor_key"},
        reserved_concurrency=50,
        db_role="rampart_accounts",
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
        uses=MONEY | {"cursor_key"},
        reserved_concurrency=50,
        db_role="rampart_transfers",
    ),
    Function(
        name="admin",
        handler="functions.admin.handler.handler",
        description="Admin: partners and deposits",
        routes=(
            Route("POST", "/v1/admin/partners", roles=("admin",)),
            Route("POST", "/v1/admin/deposits", idempotent=True, roles=("admin",)),
        ),
        # partner_plan: a new partner's key is imported into API Gateway's partner usage plan
        uses=frozenset({"postgres", "idempotency", "partner_plan"}),
        reserved_concurrency=10,
        db_role="rampart_admin",
    ),
    Function(
        name="authorizer",
        handler="functions.authorizer.handler.handler",
        description="API Gateway Lambda authorizer: bearer tokens and partner API keys",
        uses=frozenset({"postgres", "jwt_keys", "users_api_key"}),  # users_api_key: users' usageIdentifierKey
        kind="authorizer",
        memory_mb=256,
        reserved_concurrency=100,  # always available: every authenticated request runs it (uncached)
        db_role="rampart_authorizer",
    ),
    Function(
        name="ledger_sweep",
        handler="functions.ledger_sweep.handler.handler",
        description="Release ledger holds past their timeout",
        uses=LEDGER,
        kind="scheduled",
        timeout_seconds=60,
        db_role="rampart_ledger_sweep",
    ),
    Function(
        name="migrate",
        handler="functions.migrate.handler.handler",
        description="Apply database migrations and seed the admin (run on every deploy)",
        uses=frozenset({"postgres", "admin"}),
        kind="deploy",
        timeout_seconds=300,
        db_role="rampart",
    ),
    Function(
        name="provider_webhook",
        handler="functions.provider_webhook.handler.handler",
        description="POST /webhooks/providers/{provider}: verify, dedup, record and queue a provider's event",
        kind="webhook",
        path="/webhooks/providers",
        uses=frozenset({"postgres", "provider_events", "pix_webhook_secret"}),
        reserved_concurrency=10,  # a delivery flood (signed or not) stays within this
        db_role="rampart_webhook_receiver",
    ),
    Function(
        name="ramps",
        handler="functions.ramps.handler.handler",
        description="Corridors, quotes, and ramps: register, pre-signed, start, cancel, read",
        routes=(
            Route("GET", "/v1/corridors", auth=False),
            Route("POST", "/v1/quotes"),
            Route("GET", "/v1/quotes/{id}", auth=False),
            Route("POST", "/v1/ramps", idempotent=True),
            Route("GET", "/v1/ramps"),
            Route("GET", "/v1/ramps/{id}"),
            Route("POST", "/v1/ramps/{id}/presigned"),
            Route("POST", "/v1/ramps/{id}/start", idempotent=True),
            Route("POST", "/v1/ramps/{id}/cancel"),
            Route("GET", "/v1/admin/ramps", roles=("admin",)),
            Route("GET", "/v1/admin/reconciliation", roles=("admin",)),
            Route("POST", "/v1/admin/ramps/{id}/resume", roles=("admin",)),
            Route("POST", "/v1/admin/ramps/{id}/fail", roles=("admin",)),
        ),
        uses=MONEY | {"cursor_key", "pix_api_key", "brl_on", "brl_off", "ramp_windows"} | WORLD,
        # start (and recover) executions, see whether one is alive, hand a paused one its decision
        grants=(("brl_on", OPERATE), ("brl_off", OPERATE)),
        layers=("core", "chains"),
        timeout_seconds=29,
        reserved_concurrency=50,
        db_role="rampart_ramps",
    ),
    Function(
        name="ramp_worker",
        handler="functions.ramp_worker.handler.handler",
        description="A ramp's phase, as a Step Functions task",
        kind="worker",
        uses=frozenset({"postgres", "platform_keys", "pix_api_key", "brl_on"}) | WORLD,
        # It completes the payment wait it started when the payment came first (the on-ramp's only
        # wait; nothing else of Step Functions).
        grants=(("brl_on", TASK_COMPLETION),),
        layers=("core", "chains"),
        timeout_seconds=60,
        db_role="rampart_ramp_worker",
    ),
    Function(
        name="ramp_sweep",
        handler="functions.ramp_sweep.handler.handler",
        description="Expire unstarted ramps past their start deadline; delete long-expired unused quotes",
        kind="scheduled",
        uses=frozenset({"postgres", "pix_api_key", "pix_api", "ramp_windows"}),
        timeout_seconds=60,
        db_role="rampart_ramp_sweep",
    ),
    Function(
        name="ramp_watch",
        handler="functions.ramp_watch.handler.handler",
        description="Find lost payments; pause ramps whose execution is gone, ended or silent; reconcile",
        kind="scheduled",
        uses=frozenset({"postgres", "brl_on", "brl_off", "ramp_windows", "pix_api_key"}) | WORLD,
        # It reads a ramp's execution and stops a silent one before pausing its ramp; it completes
        # an on-ramp's payment wait with a payment whose webhook never came.
        grants=(("brl_on", WATCH + TASK_COMPLETION), ("brl_off", WATCH)),
        layers=("core", "chains"),
        timeout_seconds=120,
        db_role="rampart_ramp_watch",
        alarms=(
            MetricAlarm("PaymentsFound", 0, "a payment's webhook never came: check the provider's deliveries"),
            MetricAlarm("RampsPaused", 0, "the ramp watch paused a ramp whose execution was gone, ended or silent"),
            MetricAlarm("PausedRamps", 0, "ramps are paused: an operator resumes or fails each (docs/ramps.md)"),
            MetricAlarm("RampWatchStopFailed", 0, "a silent ramp's execution could not be stopped: left running"),
            # A ramp in flight differs for a moment (the chain moved, its settlement not yet written):
            # only a difference that stays for 3 runs in a row is one.
            MetricAlarm(
                "ReconciliationDifferences",
                0,
                "the ledger's mirrors and the chains disagree: GET /v1/admin/reconciliation",
                minutes=1,
                periods=3,
            ),
        ),
    ),
    Function(
        name="webhook_apply",
        handler="functions.webhook_apply.handler.handler",
        description="Apply queued provider events to the rail state, once each; complete a ramp's payment wait",
        kind="queue",
        uses=frozenset({"postgres", "brl_on"}),
        grants=(("brl_on", TASK_COMPLETION),),  # the on-ramp's payment wait
        db_role="rampart_webhook_apply",
    ),
    Function(
        name="webhook_requeue",
        handler="functions.webhook_requeue.handler.handler",
        description="Queue again provider events recorded but not applied; forget delivery ids after 72 h",
        kind="scheduled",
        uses=frozenset({"postgres", "provider_events"}),
        timeout_seconds=60,
        db_role="rampart_webhook_requeue",
    ),
)

POSTGRES = Postgres()
# The database roles: the privileges of each are in migrations/0008.roles.sql, the one place.
OWNER_ROLE = "rampart"  # the cluster's master user (infra/stacks/data.py DB_USER)
DB_ROLES: tuple[DbRole, ...] = (
    DbRole(OWNER_ROLE, "owns the schema: runs the migrations, seeds the admin", owner=True),
    DbRole("rampart_health", "reads one row of ledger.assets"),
    DbRole("rampart_auth", "users, refresh token families and tokens (rotation through its function)"),
    DbRole("rampart_authorizer", "reads partners by API key digest"),
    DbRole("rampart_accounts", "opens accounts (no balance columns), reads accounts and entries"),
    DbRole("rampart_transfers", "executes the ledger's transfer functions, reads accounts, transfers, entries"),
    DbRole("rampart_admin", "creates partners, deposits through the ledger's create_transfer"),
    DbRole("rampart_ledger_sweep", "executes ledger.expire_holds"),
    DbRole("rampart_webhook_receiver", "records and claims provider deliveries (webhooks schema)"),
    DbRole("rampart_webhook_apply", "applies inbox events to the rail state (webhooks, rails)"),
    DbRole("rampart_webhook_requeue", "re-claims unapplied inbox rows, forgets old delivery ids"),
    DbRole("rampart_ramps", "quotes and ramps (0009.ramps.sql): prices, registers, signs, starts, reads"),
    DbRole("rampart_ramp_worker", "a ramp's execution: reads it, keeps its waiting task's token"),
    DbRole("rampart_ramp_sweep", "expires unstarted ramps, deletes long-expired unused quotes"),
    DbRole("rampart_ramp_watch", "pauses lost running ramps, records lost payments; reads the mirrors"),
)
TABLES: tuple[Table, ...] = (
    Table("idempotency", setting="idempotency_table", partition_key="id", ttl_attribute="expiration"),
    Table(
        "rate_limits",
        setting="rate_limit_table",
        partition_key="pk",
        ttl_attribute="expires_at",
        actions=("dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"),  # no PutItem: counters update
    ),
)
SECRETS: tuple[Secret, ...] = (
    Secret("jwt_keys", setting="jwt_secret_arn", twin="jwt_keys"),  # JWT signing keys: kid → secret
    Secret("admin", setting="admin_secret_arn", twin="admin"),  # the seeded admin's credentials (migrate)
    Secret("cursor_key", setting="cursor_key_arn", twin="random_key"),  # signs pagination cursors (HMAC)
    # PIX's Standard Webhooks secrets, newest first (rampart.webhooks.providers maps pix to it)
    Secret("pix_webhook_secret", setting="pix_webhook_secret_arn", twin="webhook_secret"),
    Secret("pix_api_key", setting="pix_api_key_arn", twin="world"),  # our key at the PIX provider
    # The platform's private keys (gas funder, liquidity, operator…) as {network: {role: key}}: the
    # worker signs the platform's own transactions with them.
    Secret("platform_keys", setting="platform_keys_arn", twin="world"),
    # The API key every user (bearer token) is metered by in the users' usage plan: the authorizer
    # returns it as usageIdentifierKey; the deployment imports it into API Gateway. No client ever
    # presents it (presented as X-Api-Key, it is no partner's: refused).
    Secret("users_api_key", setting="users_api_key_arn", twin="random_key"),
)
# API Gateway's usage plans: every authenticated method requires a key, which the authorizer
# names (a partner's own, or the users' shared one).
USAGE_PLANS: tuple[UsagePlan, ...] = (
    UsagePlan(
        "partner_plan",
        description="Partner API keys: per-key throttle and daily quota (each partner's key, imported at creation)",
        limits="partner",
        setting="partner_usage_plan",
    ),
    UsagePlan(
        "users_plan",
        description="Users (bearer tokens): one shared key, throttled at the stage's API limits",
        limits="stage",
        setting="users_usage_plan",
        shared_key="users_api_key",
    ),
)
# The ramps' windows per stage, as rampart.wiring.ramps reads them (quote TTL, start deadline,
# payment window, in seconds). API.md's values everywhere; the watch's shorter for a laptop and a suite.
# The watch (rampart.ramps.watch): ``watch_grace`` before a running ramp's execution is looked at,
# ``silence`` before a running execution that makes no progress is stopped and its ramp paused
# (longer than every Retry of infra/asl.py together, the Busy one included).
_API_WINDOWS = "quote_ttl=600,start_deadline=900,payment_window=1800,watch_grace=120,silence=1800"
STAGE_SETTINGS: tuple[StageSetting, ...] = (
    StageSetting(
        "ramp_windows",
        setting="ramp_windows",
        values=(
            ("local", "quote_ttl=600,start_deadline=900,payment_window=1800,watch_grace=20,silence=900"),
            ("test", "quote_ttl=600,start_deadline=900,payment_window=30,watch_grace=5,silence=600"),
            ("dev", _API_WINDOWS),
            ("staging", _API_WINDOWS),
            ("prod", _API_WINDOWS),
        ),
    ),
)
EXTERNALS: tuple[External, ...] = (
    External("base_rpc", setting="base_rpc_url", description="base's EVM JSON-RPC endpoint"),
    External("base_contracts", setting="base_contracts", description="USDC, BRLA, pool and sweeper on base"),
    External("base_accounts", setting="base_accounts", description="the platform's addresses on base"),
    External("pix_api", setting="pix_base_url", description="the PIX provider's API"),
)
# Per-function DLQs of asynchronous functions are implied by their kind.
QUEUES: tuple[Queue, ...] = (
    # Recorded provider events (a message names an inbox row); what keeps failing goes to its DLQ.
    Queue(
        "provider_events",
        setting="provider_events_queue_url",
        consumer="webhook_apply",
        visibility_timeout_seconds=60,
        max_receive_count=5,
        batch_size=10,
    ),
)

SCHEDULES: tuple[Schedule, ...] = (
    Schedule("ledger-sweep", "rate(1 minute)", "ledger_sweep"),
    Schedule("webhook-requeue", "rate(1 minute)", "webhook_requeue"),
    Schedule("ramp-sweep", "rate(1 minute)", "ramp_sweep"),
    Schedule("ramp-watch", "rate(1 minute)", "ramp_watch"),
)

# The ramps' Retry per stage (infra/asl.py writes prod's into the definitions). ``Transient``: a node
# or provider that did not answer, a transaction not mined yet — in the cloud about 8 minutes of
# retries before a ramp pauses, in the twin and a suite about one. ``Busy``: an operation whose
# journal claim another attempt holds (a worker that hung) — always longer than a claim's lease
# (rampart.ramps.execution.LEASE_SECONDS, 90 s), so its retry takes the operation over.
_CLOUD_RETRIES = (RetryPolicy("Transient", 2, 8, "2"), RetryPolicy("Busy", 30, 6, "1"))
_TWIN_RETRIES = (RetryPolicy("Transient", 1, 6, "2"), RetryPolicy("Busy", 15, 10, "1"))  # about a minute
RAMP_RETRIES: tuple[tuple[str, tuple[RetryPolicy, ...]], ...] = (
    ("local", _TWIN_RETRIES),
    ("test", _TWIN_RETRIES),
    ("dev", _CLOUD_RETRIES),
    ("staging", _CLOUD_RETRIES),
    ("prod", _CLOUD_RETRIES),
)

# A ramp's execution per corridor (named after the ramp; the ramps function starts it).
STATE_MACHINES: tuple[StateMachine, ...] = (
    StateMachine(
        "brl_on",
        definition="statemachines/brl_on.asl.json",
        substitutions={"RampWorker": "ramp_worker"},
        setting="brl_on_state_machine_arn",
        actions=("states:StartExecution",),
        retries=RAMP_RETRIES,
    ),
    StateMachine(
        "brl_off",
        definition="statemachines/brl_off.asl.json",
        substitutions={"RampWorker": "ramp_worker"},
        setting="brl_off_state_machine_arn",
        actions=("states:StartExecution",),
        retries=RAMP_RETRIES,
    ),
)


@dataclass(frozen=True)
class Manifest:
    """A whole deployment's declarations. ``MANIFEST`` is Rampart's; tests build small ones of
    their own (fixture functions of each kind, never deployed) and hand them to the twin and the
    CDK app, which take a manifest rather than reading these module constants."""

    functions: tuple[Function, ...]
    tables: tuple[Table, ...] = ()
    queues: tuple[Queue, ...] = ()
    secrets: tuple[Secret, ...] = ()
    schedules: tuple[Schedule, ...] = ()
    state_machines: tuple[StateMachine, ...] = ()
    db_roles: tuple[DbRole, ...] = DB_ROLES
    externals: tuple[External, ...] = ()
    stage_settings: tuple[StageSetting, ...] = ()
    usage_plans: tuple[UsagePlan, ...] = ()

    def resources(self) -> dict[str, Resource]:
        """Every resource a function may name in ``uses``, by name."""
        listed: tuple[Resource, ...] = (
            POSTGRES,
            *self.tables,
            *self.queues,
            *self.secrets,
            *self.state_machines,
            *self.externals,
            *self.stage_settings,
            *self.usage_plans,
        )
        return {r.name: r for r in listed}

    def function(self, name: str) -> Function:
        for fn in self.functions:
            if fn.name == name:
                return fn
        raise KeyError(name)

    def db_role(self, name: str) -> DbRole:
        for role in self.db_roles:
            if role.name == name:
                return role
        raise KeyError(name)

    def login_roles(self) -> list[DbRole]:
        """The roles that log in with their own secret (every role but the owner), in order."""
        return [role for role in self.db_roles if not role.owner]

    def of_kind(self, *kinds: Kind) -> list[Function]:
        return [fn for fn in self.functions if fn.kind in kinds]

    def routes(self) -> list[tuple[Route, Function]]:
        """Every route with the function that serves it, in manifest order."""
        return [(route, fn) for fn in self.functions for route in fn.routes]

    def check(self) -> None:
        """Consistency of the manifest itself (run by the tests and by both runtimes at start)."""
        names = [f.name for f in self.functions]
        assert len(names) == len(set(names)), "function names must be unique"
        declared = self.resources()
        assert len(declared) == 1 + len(self.tables) + len(self.queues) + len(self.secrets) + len(
            self.state_machines
        ) + len(self.externals) + len(self.stage_settings) + len(self.usage_plans), "resource names must be unique"
        seen = [(r.method, r.path) for r, _ in self.routes()]
        assert len(seen) == len(set(seen)), "a route belongs to exactly one function"
        paths = [fn.path for fn in self.functions if fn.path is not None]
        assert len(paths) == len(set(paths)), "a webhook path belongs to exactly one function"
        role_names = [r.name for r in self.db_roles]
        assert len(role_names) == len(set(role_names)), "database role names must be unique"
        assert len([r for r in self.db_roles if r.owner]) <= 1, "one owner role"
        for fn in self.functions:
            assert (fn.db_role is not None) == ("postgres" in fn.uses), f"{fn.name}: a db_role exactly with postgres"
            assert fn.db_role is None or fn.db_role in role_names, f"{fn.name}: undeclared db_role {fn.db_role}"
            assert fn.uses <= declared.keys(), f"{fn.name} uses undeclared {sorted(fn.uses - declared.keys())}"
            granted = [name for name, _ in fn.grants]
            assert set(granted) <= fn.uses, f"{fn.name}: grants only on what it uses"
            assert len(granted) == len(set(granted)), f"{fn.name}: one grants entry per resource"
            assert fn.concurrency is None or fn.concurrency >= 1, f"{fn.name}: reserved concurrency of at least 1"
            assert fn.kind != "scheduled" or fn.concurrency == 1, f"{fn.name}: a schedule never overlaps itself (1)"
            assert (fn.path is not None) == (fn.kind == "webhook"), f"{fn.name}: a path exactly for webhooks"
            assert not fn.routes or fn.kind == "api", f"{fn.name} has routes but is not an api function"
        for schedule in self.schedules:
            assert self.function(schedule.function).kind == "scheduled", schedule
        for queue in self.queues:
            if queue.consumer is not None:
                assert self.function(queue.consumer).kind == "queue", queue
        for fn in self.of_kind("queue"):
            assert [q for q in self.queues if q.consumer == fn.name], f"{fn.name}: a queue function needs a queue"
        for machine in self.state_machines:
            for target in machine.substitutions.values():
                assert self.function(target).kind == "worker", f"{machine.name} invokes {target}: not a worker"
        for route, _ in self.routes():
            assert not (route.idempotent and route.method != "POST"), route
            assert set(route.roles) <= set(API_ROLES), route
        assert len(self.of_kind("authorizer")) <= 1, "one authorizer"
        secret_names = {secret.name for secret in self.secrets}
        for plan in self.usage_plans:
            assert plan.shared_key is None or plan.shared_key in secret_names, f"{plan.name}: undeclared shared_key"
            assert self.routes(), f"{plan.name}: a usage plan meters the REST API, and the manifest has no routes"


MANIFEST = Manifest(
    functions=FUNCTIONS,
    tables=TABLES,
    queues=QUEUES,
    secrets=SECRETS,
    schedules=SCHEDULES,
    state_machines=STATE_MACHINES,
    db_roles=DB_ROLES,
    externals=EXTERNALS,
    stage_settings=STAGE_SETTINGS,
    usage_plans=USAGE_PLANS,
)


def resources() -> dict[str, Resource]:
    return MANIFEST.resources()


def env_var(resource: Resource) -> str:
    """The environment variable that carries ``resource`` to a function: the alias of its
    Settings field (declared once, in rampart.core.settings)."""
    from rampart.core.settings import Settings

    setting = resource.setting
    if setting is None:
        raise ValueError(f"{resource.name} is not carried to functions (no setting)")
    alias = Settings.model_fields[setting].alias
    assert alias is not None, setting
    return alias


USES_SETTING = "uses"  # the Settings field (alias RAMPART_USES) that tells a function what it uses


def uses_value(functions: Iterable[Function], manifest: Manifest = MANIFEST) -> str:
    """The value of ``RAMPART_USES`` for ``functions`` (one in the cloud; every function in the
    twin, which shares one environment): the resources they use that reach a function through
    a setting, as sorted ``name=setting`` pairs. The entry stack checks at cold start that each
    of those settings is present, so a function learns what it must have from the manifest."""
    declared = manifest.resources()
    pairs = set()
    for fn in functions:
        for name in fn.uses:
            setting = declared[name].setting
            if setting is not None:
                pairs.add(f"{name}={setting}")
    return ",".join(sorted(pairs))


def environment(fn: Function, values: Mapping[str, str], manifest: Manifest = MANIFEST) -> dict[str, str]:
    """A function's environment from its ``uses``: each used resource's env var (the alias of
    its setting) set to ``values[resource name]``, ``RAMPART_USES``, then the function's own
    ``env``. ``values`` gives the deployment's value of each resource (a table name, a secret ARN,
    a queue URL…); resources without a setting reach no function."""
    declared = manifest.resources()
    env: dict[str, str] = {}
    for name in sorted(fn.uses):
        resource = declared[name]
        if resource.setting is not None:
            env[env_var(resource)] = values[name]
    from rampart.core.settings import Settings

    alias = Settings.model_fields[USES_SETTING].alias
    assert alias is not None
    env[alias] = uses_value([fn], manifest)
    env.update(dict(fn.env))
    return env


def function(name: str) -> Function:
    return MANIFEST.function(name)


def routes() -> list[tuple[Route, Function]]:
    """Every route with the function that serves it, in manifest order."""
    return MANIFEST.routes()


def check() -> None:
    MANIFEST.check()
