"""The auth service assembled from its adapters: per-container singletons, built on first use
(kept apart from :mod:`rampart.wiring` so that the ledger functions never import auth).

Environment:
- ``RAMPART_JWT_KEYS``: the key ring JSON itself (twin, tests), else ``RAMPART_JWT_SECRET_ARN``
  (Secrets Manager, cached per container, reloaded early for an unknown kid);
- ``RAMPART_RATE_LIMIT_TABLE``: the DynamoDB table of login-failure counters (login only);
- ``RAMPART_ADMIN_EMAIL`` / ``RAMPART_ADMIN_PASSWORD``: the admin the twin seeds at every start.
"""

from __future__ import annotations

import os
from functools import cache

from rampart.auth import AccessTokens, AuthService, CachedKeys, KeyRing, LoginThrottle, StaticKeys, User
from rampart.auth.tokens import KeySource

DEFAULT_ADMIN_EMAIL = "admin@rampart.example"
DEFAULT_ADMIN_PASSWORD = "rampart-admin-local"  # noqa: S105 - API.md's documented twin default


@cache
def keys() -> KeySource:
    inline = os.environ.get("RAMPART_JWT_KEYS")
    if inline:
        return StaticKeys(KeyRing.from_json(inline))
    arn = os.environ.get("RAMPART_JWT_SECRET_ARN")
    if not arn:
        raise RuntimeError("set RAMPART_JWT_SECRET_ARN (cloud) or RAMPART_JWT_KEYS (twin, tests)")

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

    table = os.environ.get("RAMPART_RATE_LIMIT_TABLE")
    if not table:
        raise RuntimeError("RAMPART_RATE_LIMIT_TABLE is not set: login cannot be throttled")
    return AuthService(
        PostgresAuthStore(get_database()),
        access_tokens(),
        throttle=LoginThrottle(DynamoDBRateLimitCounter(table)),
    )


def admin_credentials() -> tuple[str, str]:
    """The admin the twin seeds: the environment's values, else API.md's defaults."""
    return (
        os.environ.get("RAMPART_ADMIN_EMAIL") or DEFAULT_ADMIN_EMAIL,
        os.environ.get("RAMPART_ADMIN_PASSWORD") or DEFAULT_ADMIN_PASSWORD,
    )


def seed_admin(email: str | None = None, password: str | None = None) -> User:
    """Upsert the admin (the given password wins over the stored one). Without arguments, from
    ``RAMPART_ADMIN_EMAIL`` / ``RAMPART_ADMIN_PASSWORD`` with API.md's defaults."""
    default_email, default_password = admin_credentials()
    return authenticator().seed_admin(email or default_email, password or default_password)


def reset() -> None:
    """Forget every singleton (tests, twin restarts)."""
    for function in (keys, access_tokens, authenticator, auth):
        function.cache_clear()
