"""Authentication and authorization: users with argon2id passwords, JWT access tokens with
rotatable keys, rotating refresh tokens with reuse detection, partner API keys, login throttling.
Storage and counters are ports (:mod:`rampart.auth.ports`); adapters live in ``rampart.adapters``."""

from rampart.auth.errors import EmailTaken, InvalidCredentials, InvalidToken, RateLimited
from rampart.auth.models import ROLES, SELF_SERVICE_ROLES, Identity, Partner, Role, TokenPair, User
from rampart.auth.service import AuthService
from rampart.auth.throttle import LoginThrottle
from rampart.auth.tokens import AccessTokens, CachedKeys, KeyRing, StaticKeys


def seed_admin(email: str | None = None, password: str | None = None) -> User:
    """Upsert the admin through the default adapters (the twin at every start, the migrate
    function on deploy); the given password wins over the stored one. Without arguments, from
    ``RAMPART_ADMIN_EMAIL`` / ``RAMPART_ADMIN_PASSWORD`` with API.md's defaults. A shortcut to
    :func:`rampart.auth_wiring.seed_admin`, imported only when called: the domain itself stays
    free of drivers."""
    from rampart import auth_wiring

    return auth_wiring.seed_admin(email, password)


__all__ = [
    "ROLES",
    "SELF_SERVICE_ROLES",
    "AccessTokens",
    "AuthService",
    "CachedKeys",
    "EmailTaken",
    "Identity",
    "InvalidCredentials",
    "InvalidToken",
    "KeyRing",
    "LoginThrottle",
    "Partner",
    "RateLimited",
    "Role",
    "StaticKeys",
    "TokenPair",
    "User",
    "seed_admin",
]
