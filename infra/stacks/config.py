"""Per-stage settings: dev and staging are cheap and disposable, prod keeps its data and pages
someone. Everything else about the app comes from ``infra/manifest.py``."""

from __future__ import annotations

from dataclasses import dataclass

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
    ),
}
