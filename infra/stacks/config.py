"""Per-stage settings: dev and staging are cheap and disposable, prod keeps its data and pages
someone. Everything else about the app comes from ``infra/manifest.py``.

``externals`` holds each stage's value of every manifest ``External`` resource (base's RPC, its
contract and platform addresses, the PIX provider's URL). The values here are placeholders on
reserved ``.example`` hosts and obviously fake addresses (``0x00…01``): a human sets the real ones
before a first deploy (docs/cloud.md, "Before a first production deploy")."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_logs as logs


@dataclass(frozen=True)
class StageConfig:
    name: str
    prod: bool
    # The account and region the stage deploys to, and only there: a deploy with credentials of
    # another account fails instead of creating a second copy. Placeholders until the accounts exist
    # (docs/cloud.md, "Before a first production deploy").
    account: str
    region: str
    log_retention: logs.RetentionDays
    db_min_acu: float
    db_max_acu: float
    db_readers: int
    db_backup_days: int
    api_rate_limit: int  # requests per second, whole stage
    api_burst_limit: int
    partner_rate_limit: int  # per partner key (usage plan)
    partner_burst_limit: int
    partner_daily_quota: int
    api_p99_latency_ms: int  # alarm threshold
    # The edge (WAF, per 5 minutes per client IP): any request, and the auth routes and webhook paths.
    waf_ip_limit: int
    waf_sensitive_ip_limit: int
    # API Gateway per-method throttles (requests per second, burst): the public routes (register,
    # login, refresh, logout, health) and the money-moving POSTs.
    public_method_rate: int
    public_method_burst: int
    money_method_rate: int
    money_method_burst: int
    alarm_emails: tuple[str, ...]  # who the alarm topic mails (each confirms the subscription once)
    # NAT gateways for the functions that reach the outside world (those using an External):
    # one per availability zone in prod (a zone's outage leaves the other's egress up), one in
    # dev and staging (cheaper; both zones' egress subnets route through it).
    nat_gateways: int
    # The value of each manifest External (by name) in this stage: see the module docstring.
    # Not hashed (a dict); a StageConfig is compared, never used as a key.
    externals: dict[str, str] = field(hash=False)

    def __post_init__(self) -> None:
        if not 1 <= self.nat_gateways <= len(self.availability_zones):
            raise ValueError(
                f"stage {self.name}: nat_gateways must be 1 to {len(self.availability_zones)} (one per zone)"
            )

    def external_values(self, names: Iterable[str]) -> dict[str, str]:
        """The stage's value of each External in ``names``; a missing or empty one fails synthesis
        here, naming the stage and the External, instead of deploying a function whose cold start
        would fail on the missing setting."""
        wanted = sorted(set(names))
        missing = [name for name in wanted if not self.externals.get(name, "").strip()]
        if missing:
            raise ValueError(
                f"stage {self.name}: no value for External resource(s) {', '.join(missing)}; set "
                f"StageConfig.externals in infra/stacks/config.py (docs/cloud.md, 'Before a first production deploy')"
            )
        return {name: self.externals[name] for name in wanted}

    @property
    def availability_zones(self) -> list[str]:
        """Written out (not looked up), so that synthesis needs no AWS account."""
        return [f"{self.region}a", f"{self.region}b"]

    @property
    def removal_policy(self) -> RemovalPolicy:
        """Stateful resources: kept (with a snapshot for Aurora) in prod, deleted elsewhere."""
        return RemovalPolicy.RETAIN if self.prod else RemovalPolicy.DESTROY

    @property
    def db_removal_policy(self) -> RemovalPolicy:
        return RemovalPolicy.SNAPSHOT if self.prod else RemovalPolicy.DESTROY

    @property
    def dlq_retention(self) -> Duration:
        return Duration.days(14)


def _fake_address(n: int) -> str:
    """An obviously fake EVM address (``0x`` and 40 hex digits, only the last ones set): valid
    syntax, so a function's cold start accepts it, but owned by no one."""
    return f"0x{n:040x}"


def placeholder_externals(network: str) -> dict[str, str]:
    """Placeholders for every External of Rampart's manifest, on ``network`` (``base-sepolia`` for
    dev and staging, ``base-mainnet`` for prod): reserved ``.example`` hosts and fake addresses
    that a human replaces before a first deploy (docs/cloud.md)."""
    contracts = {"USDC": 0xC1, "BRLA": 0xC2, "pool": 0xC3, "sweeper": 0xC4}
    accounts = {"fee_collector": 0xA1, "liquidity": 0xA2, "provider_brla": 0xA3, "operator": 0xA4, "gas_funder": 0xA5}
    pix = "sandbox.pix-provider.example" if network != "base-mainnet" else "pix-provider.example"
    return {
        "base_rpc": f"https://{network}.example/rpc",
        "base_contracts": ",".join(f"{name}={_fake_address(n)}" for name, n in contracts.items()),
        "base_accounts": ",".join(f"{name}={_fake_address(n)}" for name, n in accounts.items()),
        "pix_api": f"https://{pix}/api",
    }


STAGES: dict[str, StageConfig] = {
    "dev": StageConfig(
        name="dev",
        prod=False,
        account="111111111111",
        region="us-east-1",
        log_retention=logs.RetentionDays.ONE_WEEK,
        db_min_acu=0.5,
        db_max_acu=2,
        db_readers=0,
        db_backup_days=1,
        api_rate_limit=50,
        api_burst_limit=100,
        partner_rate_limit=10,
        partner_burst_limit=20,
        partner_daily_quota=10_000,
        api_p99_latency_ms=3000,
        waf_ip_limit=1000,
        waf_sensitive_ip_limit=100,
        public_method_rate=10,
        public_method_burst=20,
        money_method_rate=20,
        money_method_burst=40,
        alarm_emails=("rampart-dev-alarms@example.com",),
        nat_gateways=1,
        externals=placeholder_externals("base-sepolia"),
    ),
    "staging": StageConfig(
        name="staging",
        prod=False,
        account="222222222222",
        region="us-east-1",
        log_retention=logs.RetentionDays.ONE_MONTH,
        db_min_acu=0.5,
        db_max_acu=4,
        db_readers=0,
        db_backup_days=7,
        api_rate_limit=200,
        api_burst_limit=400,
        partner_rate_limit=50,
        partner_burst_limit=100,
        partner_daily_quota=100_000,
        api_p99_latency_ms=2000,
        waf_ip_limit=2000,
        waf_sensitive_ip_limit=200,
        public_method_rate=50,
        public_method_burst=100,
        money_method_rate=100,
        money_method_burst=200,
        alarm_emails=("rampart-staging-alarms@example.com",),
        nat_gateways=1,
        externals=placeholder_externals("base-sepolia"),
    ),
    "prod": StageConfig(
        name="prod",
        prod=True,
        account="333333333333",
        region="us-east-1",
        log_retention=logs.RetentionDays.ONE_YEAR,
        db_min_acu=1,
        db_max_acu=16,
        db_readers=1,
        db_backup_days=35,
        api_rate_limit=1000,
        api_burst_limit=2000,
        partner_rate_limit=100,
        partner_burst_limit=200,
        partner_daily_quota=1_000_000,
        api_p99_latency_ms=1500,
        waf_ip_limit=3000,
        waf_sensitive_ip_limit=300,
        public_method_rate=100,
        public_method_burst=200,
        money_method_rate=500,
        money_method_burst=1000,
        alarm_emails=("rampart-oncall@example.com", "rampart-payments-ops@example.com"),
        nat_gateways=2,  # one per availability zone
        externals=placeholder_externals("base-mainnet"),
    ),
}
