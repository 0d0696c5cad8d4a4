"""The auth use cases: register, login (throttled), refresh (rotating, reuse-detecting), logout,
me, partners and their API keys, the authorizer's checks, and seeding the admin.

Storage is an :class:`AuthStore`, the login counter a :class:`RateLimitCounter`, API Gateway's
partner usage plan an :class:`ApiKeyRegistry`; nothing here knows about PostgreSQL, DynamoDB,
API Gateway or HTTP."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

from rampart.auth.errors import EmailTaken, InvalidCredentials, InvalidToken
from rampart.auth.models import SELF_SERVICE_ROLES, Identity, Partner, Role, TokenPair, User
from rampart.auth.opaque import (
    api_key_hint,
    digest,
    looks_like_api_key,
    looks_like_refresh_token,
    new_api_key,
    new_refresh_token,
)
from rampart.auth.passwords import MAX_LENGTH, MIN_LENGTH, PasswordHasher
from rampart.auth.ports import ApiKeyRegistry, AuthStore
from rampart.auth.throttle import LoginThrottle
from rampart.auth.tokens import AccessTokens
from rampart.core.errors import ValidationFailed

REFRESH_TOKEN_SECONDS = 30 * 24 * 3600
MAX_EMAIL_LENGTH = 254
MAX_BPS = 10_000
# The WHATWG (HTML) e-mail grammar, with a dotted domain: ASCII only, no quoted local parts.
_EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}"
    r"@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def check_email(email: str, field: str = "/email") -> str:
    if not isinstance(email, str) or len(email) > MAX_EMAIL_LENGTH or not _EMAIL.match(email):
        raise ValidationFailed("email must be a valid address like name@example.com", field=field)
    return email


def check_password(password: str, field: str = "/password") -> str:
    if not isinstance(password, str) or not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        raise ValidationFailed(f"password must be {MIN_LENGTH} to {MAX_LENGTH} characters", field=field)
    return password


class AuthService:
    def __init__(
        self,
        store: AuthStore,
        tokens: AccessTokens,
        *,
        throttle: LoginThrottle | None = None,
        passwords: PasswordHasher | None = None,
        refresh_token_seconds: int = REFRESH_TOKEN_SECONDS,
        ids: Callable[[str], str] = new_id,
        api_keys: ApiKeyRegistry | None = None,
    ) -> None:
        """``api_keys``: where a new partner's key is imported before the partner is stored (the
        admin function's API Gateway usage plan); None imports it nowhere (the authorizer, seeding,
        tests and benchmarks that make partners directly)."""
        self._store = store
        self._api_keys = api_keys
        self.tokens = tokens
        self._throttle = throttle
        self._passwords = passwords or PasswordHasher()
        self._refresh_seconds = refresh_token_seconds
        self._new_id = ids

    # users ------------------------------------------------------------------------------------
    def register(self, email: str, password: str, role: str) -> User:
        check_email(email)
        check_password(password)
        if role not in SELF_SERVICE_ROLES:
            raise ValidationFailed(f"role must be one of {', '.join(SELF_SERVICE_ROLES)}", field="/role")
        password_hash = self._passwords.hash(password)
        user = self._store.create_user(self._new_id("usr"), email, password_hash, role)
        if user is None:
            raise EmailTaken("an account with this email already exists")
        return user

    def me(self, user_id: str) -> User:
        user = self._store.user(user_id)
        if user is None:
            raise InvalidCredentials("the account behind this token no longer exists")
        return user

    def seed_admin(self, email: str, password: str) -> User:
        """Make sure an admin with exactly these credentials exists (idempotent). The given
        password wins over what is stored; a change ends that user's sessions."""
        check_email(email)
        check_password(password)
        existing = self._store.credentials(email)
        if existing is not None:
            current = existing.user.role == "admin" and self._passwords.verify(existing.password_hash, password)
            if current and not self._passwords.needs_rehash(existing.password_hash):
                return existing.user
        user_id = existing.user.id if existing is not None else self._new_id("usr")
        user = self._store.upsert_user(user_id, email, self._passwords.hash(password), "admin")
        if existing is not None:
            self._store.revoke_families_of_user(user.id, "password-change")
        return user

    # sessions ---------------------------------------------------------------------------------
    def login(self, email: str, password: str) -> TokenPair:
        """Tokens for the right credentials. A wrong password and an unknown email are the same
        :class:`InvalidCredentials`; a locked-out email is :class:`RateLimited` whatever the password."""
        window = self._throttle.check(email) if self._throttle is not None else None
        credentials = self._store.credentials(email) if _EMAIL.match(email) and len(email) <= MAX_EMAIL_LENGTH else None
        if credentials is None:
            self._passwords.burn(password)
        if credentials is None or not self._passwords.verify(credentials.password_hash, password):
            if self._throttle is not None:
                self._throttle.failed(email)
            raise InvalidCredentials("wrong email or password")
        if window is not None and self._throttle is not None:
            self._throttle.succeeded(email)
        if self._passwords.needs_rehash(credentials.password_hash):
            self._store.set_password_hash(credentials.user.id, self._passwords.hash(password))
        user = credentials.user
        refresh_token = new_refresh_token()
        self._store.start_family(self._new_id("fam"), user.id, digest(refresh_token), self._refresh_seconds)
        return self._pair(user.id, user.role, refresh_token)

    def refresh(self, refresh_token: str) -> TokenPair:
        """A new pair for a live refresh token, which is used up. A token presented a second
        time revokes its whole family: whoever holds the newer tokens is logged out too."""
        if not looks_like_refresh_token(refresh_token):
            raise InvalidCredentials("not a refresh token")
        successor = new_refresh_token()
        rotation = self._store.rotate_refresh_token(digest(refresh_token), digest(successor), self._refresh_seconds)
        if rotation.outcome != "ok" or rotation.user_id is None or rotation.role is None:
            raise InvalidCredentials(_ROTATION_REFUSALS.get(rotation.outcome, "invalid refresh token"))
        return self._pair(rotation.user_id, rotation.role, successor)

    def logout(self, refresh_token: str) -> None:
        """Revoke the refresh token's family. Access tokens live on until they expire."""
        if not looks_like_refresh_token(refresh_token) or not self._store.revoke_family_of(
            digest(refresh_token), "logout"
        ):
            raise InvalidCredentials("not a refresh token of ours")

    def _pair(self, user_id: str, role: Role, refresh_token: str) -> TokenPair:
        return TokenPair(
            access_token=self.tokens.issue(user_id, role),
            refresh_token=refresh_token,
            expires_in=self.tokens.ttl_seconds,
        )

    # partners ---------------------------------------------------------------------------------
    def create_partner(self, name: str, markup_bps: int) -> tuple[Partner, str]:
        """A partner and its API key: the key is returned this once and stored as a digest.

        The key is imported into the gateway's partner plan (``api_keys``) *before* the partner is
        stored, so a stored partner always has its gateway key: every authenticated method
        requires one, and a partner without it would be refused everywhere. The other way round is
        harmless: a key imported for a partner that was then not stored (the database failed) has
        a value no one ever saw and no partner behind it, so the authorizer refuses it; a retry
        makes a new partner with a new key. An import that fails raises
        :class:`~rampart.auth.errors.ApiKeysUnavailable` (503) and stores nothing."""
        if not isinstance(name, str) or not 1 <= len(name.strip()) <= 100 or len(name) > 100:
            raise ValidationFailed("name must be 1 to 100 characters", field="/name")
        if isinstance(markup_bps, bool) or not isinstance(markup_bps, int) or not 0 <= markup_bps <= MAX_BPS:
            raise ValidationFailed(f"markup_bps must be an integer from 0 to {MAX_BPS}", field="/markup_bps")
        key = new_api_key()
        partner_id = self._new_id("prt")
        if self._api_keys is not None:
            self._api_keys.register(partner_id, key)
        partner = self._store.create_partner(partner_id, name, markup_bps, digest(key), api_key_hint(key))
        return partner, key

    # the authorizer ---------------------------------------------------------------------------
    def authenticate_bearer(self, token: str) -> Identity:
        """The identity of a valid access token; :class:`InvalidToken` otherwise."""
        return self.tokens.verify(token)

    def authenticate_api_key(self, key: str) -> Identity:
        """The partner behind an API key; :class:`InvalidToken` otherwise."""
        if not looks_like_api_key(key):
            raise InvalidToken("not an API key")
        partner = self._store.partner_by_key_hash(digest(key))
        if partner is None:
            raise InvalidToken("unknown API key")
        return Identity(id=partner.id, role="partner", kind="partner", partner_id=partner.id)


_ROTATION_REFUSALS = {
    "unknown": "unknown refresh token",
    "revoked": "this session was revoked",
    "reused": "this refresh token was already used; the session is revoked",
    "expired": "this refresh token has expired",
}
