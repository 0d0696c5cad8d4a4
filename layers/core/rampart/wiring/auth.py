"""The auth service assembled from its adapters: per-container singletons, built on first use
(kept apart from :mod:`rampart.wiring` so that the ledger functions never import auth).

Settings (:mod:`rampart.core.settings`, validated at cold start):
- ``jwt_keys``: the key ring JSON itself (twin, tests), else ``jwt_secret_arn`` (Secrets
  Manager, cached per container, reloaded early for an unknown kid);
- ``rate_limit_table``: the DynamoDB table of login-failure counters (login only);
- ``admin_secret_arn``: the admin's credentials (the deploy step seeds it);
  ``admin_email`` / ``admin_password``: the defaults of :func:`seed_admin`.
"""

from __future__ import annotations

from functools import cache

from rampart.auth import AccessTokens, AuthService, CachedKeys, KeyRing, LoginThrottle, StaticKeys, User
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
    """Without login throttling: the authorizer, the admin function, seeding."""
    from rampart.adapters.postgres.auth_store import PostgresAuthStore
    from rampart.adapters.postgres.db import get_database

    return AuthService(PostgresAuthStore(get_database()), access_tokens())


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
    for function in (keys, access_tokens, authenticator, auth):
        function.cache_clear()
