"""The auth service assembled from its adapters: per-container singletons, built on first use
(kept apart from :mod:`rampart.wiring` so that the ledger functions never import auth).

Settings (:mod:`rampart.core.settings`, validated at cold start):
- ``jwt_keys``: the key ring JSON itself (twin, tests), else ``jwt_secret_arn`` (Secrets
  Manager, cached per container, reloaded early for an unknown kid);
- ``rate_limit_table``: the DynamoDB table of login-failure counters (login only);
- ``admin_secret_arn``: the admin's credentials (the deploy step seeds it);
  ``admin_email`` / ``admin_password``: the defaults of :func:`seed_admin`;
- ``partner_usage_plan``: the name of API Gateway's partner usage plan, where the admin function
  imports each new partner's key (:func:`partners`);
- ``users_api_key_arn``: the users' shared API key, the authorizer's ``usageIdentifierKey`` for
  every bearer token (:func:`users_api_key`, cached per container like the other secrets).
"""

from __future__ import annotations

from functools import cache

from rampart.auth import (
    AccessTokens,
    ApiKeyRegistry,
    AuthService,
    CachedKeys,
    KeyRing,
    LoginThrottle,
    StaticKeys,
    User,
)
from rampart.auth.tokens import KeySource
from rampart.core.settings import ConfigurationError, settings


@cache
def keys() -> KeySource:
    current = settings()
    if current.jwt_keys:
        return StaticKeys(KeyRing.from_json(current.jwt_keys))
    arn = current.jwt_secret_arn
    if not arn:
        raise ConfigurationError("set RAMPART_JWT_SECRET_ARN (cloud) or RAMPART_JWT_KEYS (twin, tests)")

    def load() -> str:
        from rampart.adapters.aws.secrets import get_secret

        return get_secret(arn, max_age=0)  # CachedKeys decides when to reload

    return CachedKeys(load)


class _DeferredKeys:
    """The key source, resolved on first use: the admin and migrate functions build the service
    but never touch a token, and have no key secret in their environment."""

    def ring(self) -> KeyRing:
        return keys().ring()

    def refreshed(self) -> KeyRing:
        return keys().refreshed()


@cache
def access_tokens() -> AccessTokens:
    return AccessTokens(_DeferredKeys())


@cache
def authenticator() -> AuthService:
    """Without login throttling and without the gateway: the authorizer, seeding."""
    from rampart.adapters.postgres.auth_store import PostgresAuthStore
    from rampart.adapters.postgres.db import get_database

    return AuthService(PostgresAuthStore(get_database()), access_tokens())


@cache
def api_keys() -> ApiKeyRegistry:
    """API Gateway's partner usage plan (``partner_usage_plan``: its name)."""
    from rampart.adapters.aws.apigateway import ApiGatewayUsagePlanKeys

    plan = settings().partner_usage_plan
    if not plan:
        raise ConfigurationError("RAMPART_PARTNER_USAGE_PLAN is not set: a partner's key would not reach the gateway")
    return ApiGatewayUsagePlanKeys(plan)


@cache
def partners() -> AuthService:
    """The admin function's: partners are created with their key imported into the gateway's
    partner usage plan first (:meth:`AuthService.create_partner`)."""
    from rampart.adapters.postgres.auth_store import PostgresAuthStore
    from rampart.adapters.postgres.db import get_database

    return AuthService(PostgresAuthStore(get_database()), access_tokens(), api_keys=api_keys())


def users_api_key() -> str | None:
    """The users' shared API key (``users_api_key_arn``), read through the per-container secret
    cache. None when the environment names no such secret: a deployed authorizer always has it
    (its ``RAMPART_USES`` lists it, and the cold start refuses to run without it); a test or a
    benchmark that calls the handler with a partial environment gets policies without a key."""
    arn = settings().users_api_key_arn
    if not arn:
        return None
    from rampart.adapters.aws.secrets import get_secret

    return get_secret(arn).strip()


@cache
def auth() -> AuthService:
    """Everything, login throttling included (the auth function)."""
    from rampart.adapters.dynamodb.rate_limit import DynamoDBRateLimitCounter
    from rampart.adapters.postgres.auth_store import PostgresAuthStore
    from rampart.adapters.postgres.db import get_database

    table = settings().rate_limit_table
    if not table:
        raise ConfigurationError("RAMPART_RATE_LIMIT_TABLE is not set: login cannot be throttled")
    return AuthService(
        PostgresAuthStore(get_database()),
        access_tokens(),
        throttle=LoginThrottle(DynamoDBRateLimitCounter(table)),
    )


def admin_credentials() -> tuple[str, str]:
    """The default admin: the settings' ``RAMPART_ADMIN_EMAIL`` / ``RAMPART_ADMIN_PASSWORD``,
    else API.md's defaults."""
    current = settings()
    return current.admin_email, current.admin_password


def admin_secret() -> tuple[str, str]:
    """The admin's email and password from the admin secret (``admin_secret_arn``: JSON
    ``{"email", "password"}``), read fresh (the deploy step runs once)."""
    from rampart.adapters.aws.secrets import get_secret_json

    arn = settings().admin_secret_arn
    if not arn:
        raise ConfigurationError("RAMPART_ADMIN_SECRET_ARN is not set: cannot seed the admin")
    admin = get_secret_json(arn, max_age=0)
    email, password = admin.get("email"), admin.get("password")
    if not isinstance(email, str) or not isinstance(password, str):
        raise ConfigurationError("the admin secret must be JSON with string fields email and password")
    return email, password


def seed_admin(email: str | None = None, password: str | None = None) -> User:
    """Upsert the admin (the given password wins over the stored one). Without arguments, from
    ``RAMPART_ADMIN_EMAIL`` / ``RAMPART_ADMIN_PASSWORD`` with API.md's defaults."""
    default_email, default_password = admin_credentials()
    return authenticator().seed_admin(email or default_email, password or default_password)


def reset() -> None:
    """Forget every singleton (tests, twin restarts)."""
    for function in (keys, access_tokens, authenticator, auth, api_keys, partners):
        function.cache_clear()
