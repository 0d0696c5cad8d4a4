"""Authentication and authorization: users with argon2id passwords, JWT access tokens with
rotatable keys, rotating refresh tokens with reuse detection, partner API keys, login throttling.
Storage, counters and the gateway's API keys are ports (:mod:`rampart.auth.ports`); adapters
live in ``rampart.adapters``."""

from rampart.auth.errors import ApiKeysUnavailable, EmailTaken, InvalidCredentials, InvalidToken, RateLimited
from rampart.auth.models import ROLES, SELF_SERVICE_ROLES, Identity, Partner, Role, TokenPair, User
from rampart.auth.ports import ApiKeyRegistry
from rampart.auth.service import AuthService
from rampart.auth.throttle import LoginThrottle
from rampart.auth.tokens import AccessTokens, CachedKeys, KeyRing, StaticKeys

__all__ = [
    "ROLES",
    "SELF_SERVICE_ROLES",
    "AccessTokens",
    "ApiKeyRegistry",
    "ApiKeysUnavailable",
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
]
