"""The environment a function runs with: read and validated once per container (its cold start),
then read from this model, never from ``os.environ`` again. This is the only module of Rampart
that reads the environment.

Each resource of the manifest (``infra/manifest.py``) names a field here as its ``setting``; the
field's alias is the environment variable that carries the resource to a function. Which
resources a function uses reaches it the same way: ``RAMPART_USES`` lists them as
``name=setting`` pairs (``postgres=database_url,idempotency=idempotency_table``), written by the
deployment from the manifest (the CDK app per function; the twin, whose functions share one
environment, the union of all). So there is no second list here to drift from the manifest's:
the entry stack checks that every setting named there is present.

A misconfigured function fails its first invocation with a clear error naming the missing
variables (logged; the caller gets a 500 problem without detail), never later halfway through
a request."""

from __future__ import annotations

import threading
from collections.abc import Iterable

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_ADMIN_EMAIL = "admin@rampart.example"
DEFAULT_ADMIN_PASSWORD = "rampart-admin-local"  # noqa: S105 - API.md's documented twin default


class ConfigurationError(RuntimeError):
    """The function's environment lacks something it needs."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    stage: str = Field("local", alias="RAMPART_STAGE", min_length=1)
    uses: str = Field("", alias="RAMPART_USES")  # name=setting pairs of the resources this function uses

    # The resources of the manifest (each one's ``setting``).
    database_url: str | None = Field(None, alias="DATABASE_URL")
    idempotency_table: str | None = Field(None, alias="RAMPART_IDEMPOTENCY_TABLE")
    rate_limit_table: str | None = Field(None, alias="RAMPART_RATE_LIMIT_TABLE")
    jwt_secret_arn: str | None = Field(None, alias="RAMPART_JWT_SECRET_ARN")
    admin_secret_arn: str | None = Field(None, alias="RAMPART_ADMIN_SECRET_ARN")
    cursor_key_arn: str | None = Field(None, alias="RAMPART_CURSOR_KEY_ARN")  # signs pagination cursors
    pix_webhook_secret_arn: str | None = Field(None, alias="RAMPART_PIX_WEBHOOK_SECRET_ARN")  # PIX's whsec_ secrets
    provider_events_queue_url: str | None = Field(None, alias="RAMPART_PROVIDER_EVENTS_QUEUE_URL")  # webhooks in
    pix_api_key_arn: str | None = Field(None, alias="RAMPART_PIX_API_KEY_ARN")  # the PIX provider's API key
    platform_keys_arn: str | None = Field(None, alias="RAMPART_PLATFORM_KEYS_ARN")  # {network: {role: key}}
    brl_on_state_machine_arn: str | None = Field(None, alias="RAMPART_BRL_ON_STATE_MACHINE_ARN")
    brl_off_state_machine_arn: str | None = Field(None, alias="RAMPART_BRL_OFF_STATE_MACHINE_ARN")
    # API Gateway's usage plans (manifest ``UsagePlan``), by name: the partner plan (the admin
    # function imports each new partner's key there) and the users plan (its one key is the
    # deployment's; no function uses it now). And the users' shared key (the authorizer names it
    # as the usageIdentifierKey of every bearer token).
    partner_usage_plan: str | None = Field(None, alias="RAMPART_PARTNER_USAGE_PLAN")
    users_usage_plan: str | None = Field(None, alias="RAMPART_USERS_USAGE_PLAN")
    users_api_key_arn: str | None = Field(None, alias="RAMPART_USERS_API_KEY_ARN")
    # The outside world (manifest ``External`` resources): where each chain and provider answers.
    base_rpc_url: str | None = Field(None, alias="RAMPART_BASE_RPC_URL")  # EVM JSON-RPC of base
    base_contracts: str | None = Field(None, alias="RAMPART_BASE_CONTRACTS")  # USDC=0x…,BRLA=0x…,pool=0x…,sweeper=0x…
    base_accounts: str | None = Field(None, alias="RAMPART_BASE_ACCOUNTS")  # the platform's addresses: role=0x…
    pix_base_url: str | None = Field(None, alias="RAMPART_PIX_BASE_URL")  # the PIX provider's API

    # The ramps' windows in seconds, the manifest's per stage (StageSetting ramp_windows):
    # quote_ttl=600,start_deadline=900,payment_window=1800 (API.md's values).
    ramp_windows: str | None = Field(None, alias="RAMPART_RAMP_WINDOWS")
    fx_usd: str = Field("ETH=2500,BRL=0.18,EUR=1.08", alias="RAMPART_FX_USD")  # USD per unit (quotes' FX table)

    # Other ways to meet a resource, and how to reach it.
    db_proxy_endpoint: str | None = Field(None, alias="RAMPART_DB_PROXY_ENDPOINT")  # cloud: RDS Proxy, IAM auth
    db_user: str | None = Field(None, alias="RAMPART_DB_USER")  # the function's database role (login)
    # The owner (migrate) in the cloud: role=secret ARN pairs of the login roles whose passwords it sets.
    db_role_secrets: str = Field("", alias="RAMPART_DB_ROLE_SECRETS")
    db_name: str = Field("rampart", alias="RAMPART_DB_NAME", min_length=1)
    db_secret_arn: str | None = Field(None, alias="RAMPART_DB_SECRET_ARN")  # the cluster's credentials (CDK)
    db_pool: bool = Field(True, alias="RAMPART_DB_POOL")  # False: one connection, as in Lambda
    db_pool_size: int = Field(10, alias="RAMPART_DB_POOL_SIZE", ge=1, le=1000)
    lambda_function_name: str | None = Field(None, alias="AWS_LAMBDA_FUNCTION_NAME")  # set by Lambda itself
    jwt_keys: str | None = Field(None, alias="RAMPART_JWT_KEYS")  # the key ring itself (tests, the twin)
    admin_email: str = Field(DEFAULT_ADMIN_EMAIL, alias="RAMPART_ADMIN_EMAIL", min_length=1)  # the twin's seed
    admin_password: str = Field(DEFAULT_ADMIN_PASSWORD, alias="RAMPART_ADMIN_PASSWORD", min_length=1)

    @property
    def in_lambda(self) -> bool:
        return self.lambda_function_name is not None

    def used(self) -> dict[str, str]:
        """``RAMPART_USES`` as resource name → setting."""
        pairs: dict[str, str] = {}
        for item in self.uses.split(","):
            name, _, setting = item.strip().partition("=")
            if name:
                pairs[name] = setting or name
        return pairs

    def role_secrets(self) -> dict[str, str]:
        """``RAMPART_DB_ROLE_SECRETS`` as role → secret ARN."""
        pairs: dict[str, str] = {}
        for item in self.db_role_secrets.split(","):
            role, _, arn = item.strip().partition("=")
            if role and arn:
                pairs[role] = arn
        return pairs

    def missing(self, settings: Iterable[str]) -> list[str]:
        """The environment variables absent for ``settings`` (field names)."""
        absent: list[str] = []
        for name in sorted(set(settings)):
            field = type(self).model_fields.get(name)
            if field is None:
                absent.append(f"{name} (not a setting of rampart.core.settings.Settings)")
                continue
            if getattr(self, name) not in (None, ""):
                continue
            alternative = _ALTERNATIVES.get(name)
            if alternative is not None and all(getattr(self, other) for other in alternative[0]):
                continue
            absent.append(field.alias + (f" (or {alternative[1]})" if alternative else "") if field.alias else name)
        return absent


# A setting that may be met another way: the database through the RDS Proxy (the cloud), the JWT
# key ring given inline (tests, the twin).
_ALTERNATIVES: dict[str, tuple[tuple[str, ...], str]] = {
    "database_url": (("db_proxy_endpoint", "db_user"), "RAMPART_DB_PROXY_ENDPOINT and RAMPART_DB_USER"),
    "jwt_secret_arn": (("jwt_keys",), "RAMPART_JWT_KEYS"),
}

_settings: Settings | None = None
_lock = threading.Lock()


def settings() -> Settings:
    """The process's settings, read from the environment on first use and kept."""
    global _settings
    current = _settings
    if current is None:
        with _lock:
            if _settings is None:
                try:
                    _settings = Settings()  # type: ignore[call-arg]  # pydantic-settings reads the environment
                except ValidationError as exc:
                    fields = ", ".join(str(e["loc"][0]) for e in exc.errors() if e.get("loc"))
                    raise ConfigurationError(f"invalid settings in the environment: {fields}") from None
            current = _settings
    return current


def reset_settings() -> None:
    """Forget the settings: the next :func:`settings` reads the environment again (tests, the
    twin after it set the functions' environment)."""
    global _settings
    with _lock:
        _settings = None


def validated(requires: Iterable[str] = ()) -> Settings:
    """The settings, checked for every resource this function uses (``RAMPART_USES``) and for
    the settings in ``requires`` (what an entry stack needs on its own, e.g. the idempotency
    table of an API function with idempotent routes). Raises :class:`ConfigurationError` naming
    what is missing, and forgets the settings so the next call reads the environment again."""
    try:
        current = settings()
        absent = current.missing({*current.used().values(), *requires})
    except ConfigurationError:
        reset_settings()
        raise
    if absent:
        reset_settings()
        raise ConfigurationError("this function's environment lacks " + ", ".join(absent))
    return current
