"""What the auth domain needs from the outside. PostgreSQL implements :class:`AuthStore`,
DynamoDB :class:`RateLimitCounter`, API Gateway :class:`ApiKeyRegistry`; the domain never
imports a driver or an SDK."""

from __future__ import annotations

from typing import Protocol

from rampart.auth.models import Credentials, Partner, Role, Rotation, User, Window


class AuthStore(Protocol):
    # users ------------------------------------------------------------------------------------
    def create_user(self, user_id: str, email: str, password_hash: str, role: Role) -> User | None:
        """Insert a user; ``None`` when the email (case-insensitive) is taken."""
        ...

    def upsert_user(self, user_id: str, email: str, password_hash: str, role: Role) -> User:
        """Insert, or update the password hash and role of the user with that email."""
        ...

    def credentials(self, email: str) -> Credentials | None:
        """The user with that email (case-insensitive) and their password hash."""
        ...

    def user(self, user_id: str) -> User | None: ...

    def set_password_hash(self, user_id: str, password_hash: str) -> None: ...

    # refresh tokens ---------------------------------------------------------------------------
    def start_family(self, family_id: str, user_id: str, token_hash: bytes, ttl_seconds: int) -> None:
        """A new refresh-token family holding its first token."""
        ...

    def rotate_refresh_token(self, old_hash: bytes, new_hash: bytes, ttl_seconds: int) -> Rotation:
        """Atomically: mark the old token used and store the new one in the same family — or,
        when the old one was already used, revoke its family (outcome ``reused``)."""
        ...

    def revoke_family_of(self, token_hash: bytes, reason: str) -> bool:
        """Revoke the family of this token; ``False`` when no such token exists."""
        ...

    def revoke_families_of_user(self, user_id: str, reason: str) -> int: ...

    # partners ---------------------------------------------------------------------------------
    def create_partner(
        self, partner_id: str, name: str, markup_bps: int, api_key_hash: bytes, api_key_prefix: str
    ) -> Partner: ...

    def partner_by_key_hash(self, api_key_hash: bytes) -> Partner | None: ...


class RateLimitCounter(Protocol):
    """Counters in fixed windows that start at their first event (DynamoDB in both runtimes)."""

    def current(self, key: str, now: float) -> Window | None:  # not money: epoch seconds
        """The key's live window, or ``None`` when there is none (or it has passed)."""
        ...

    def hit(self, key: str, now: float, window_seconds: int) -> Window:  # not money: epoch seconds
        """Count one event atomically; opens a new window when none is live."""
        ...

    def clear(self, key: str) -> None: ...


class ApiKeyRegistry(Protocol):
    """Where a partner's API key must be known besides our own store: API Gateway's partner usage
    plan, which meters and throttles each key the authorizer names (``usageIdentifierKey``)."""

    def register(self, name: str, key: str) -> None:
        """Import ``key`` (its plaintext; named ``name``, the partner's id) and put it in the
        partner plan. :class:`~rampart.auth.errors.ApiKeysUnavailable` when that did not happen;
        a key imported but never stored by us is harmless (no one knows its value)."""
        ...
