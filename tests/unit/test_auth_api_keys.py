"""Partner API keys and refresh tokens: random, recognisable, stored only as SHA-256 digests; a
partner's key imported into the gateway's usage plan before the partner is stored."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from rampart.auth import AccessTokens, ApiKeysUnavailable, AuthService, InvalidToken, KeyRing, Partner, StaticKeys
from rampart.auth.opaque import (
    API_KEY_PREFIX,
    REFRESH_TOKEN_PREFIX,
    api_key_hint,
    digest,
    looks_like_api_key,
    looks_like_refresh_token,
    new_api_key,
    new_refresh_token,
)
from rampart.core.errors import ValidationFailed


@dataclass
class PartnerStore:
    """Just the partner half of an AuthStore, in memory."""

    rows: dict[bytes, tuple[Partner, str]] = field(default_factory=dict)

    def create_partner(
        self, partner_id: str, name: str, markup_bps: int, api_key_hash: bytes, api_key_prefix: str
    ) -> Partner:
        partner = Partner(partner_id, name, markup_bps, datetime.now(UTC))
        self.rows[api_key_hash] = (partner, api_key_prefix)
        return partner

    def partner_by_key_hash(self, api_key_hash: bytes) -> Partner | None:
        row = self.rows.get(api_key_hash)
        return row[0] if row else None


@pytest.fixture
def store() -> PartnerStore:
    return PartnerStore()


@pytest.fixture
def service(store: PartnerStore) -> AuthService:
    keys = StaticKeys(KeyRing("k", {"k": secrets.token_bytes(32)}))
    return AuthService(store, AccessTokens(keys))  # type: ignore[arg-type]


def test_api_keys_are_prefixed_random_and_recognised() -> None:
    keys = {new_api_key() for _ in range(200)}
    assert len(keys) == 200
    for key in keys:
        assert key.startswith(API_KEY_PREFIX)
        assert len(key) == len(API_KEY_PREFIX) + 43  # 32 random bytes, base64url
        assert looks_like_api_key(key)
        assert not looks_like_refresh_token(key)


def test_refresh_tokens_are_prefixed_random_and_recognised() -> None:
    token = new_refresh_token()
    assert token.startswith(REFRESH_TOKEN_PREFIX)
    assert looks_like_refresh_token(token)
    assert not looks_like_api_key(token)
    assert new_refresh_token() != token


@pytest.mark.parametrize(
    "value",
    [
        "",
        "rpk_",
        "rpk_short",
        "rpk_" + "a" * 42,
        "rpk_" + "a" * 44,
        "xpk_" + "a" * 43,
        "rpk_" + "a" * 42 + "!",
        "rpk_" + "a" * 42 + "\n",
    ],
)
def test_malformed_api_keys_are_not_recognised(value: str) -> None:
    assert not looks_like_api_key(value)


def test_digest_is_sha256() -> None:
    key = new_api_key()
    assert digest(key) == hashlib.sha256(key.encode()).digest()
    assert len(digest(key)) == 32
    assert digest(key) != digest(new_api_key())


def test_create_partner_returns_the_key_once_and_stores_only_its_digest(
    service: AuthService, store: PartnerStore
) -> None:
    partner, key = service.create_partner("Acme Pay", 150)
    assert partner.id.startswith("prt_")
    assert (partner.name, partner.markup_bps) == ("Acme Pay", 150)
    assert looks_like_api_key(key)
    [(stored_hash, (_, hint))] = store.rows.items()
    assert stored_hash == hashlib.sha256(key.encode()).digest()
    assert hint == api_key_hint(key)
    assert len(hint) < len(key)
    assert key not in repr(store.rows)


def test_api_key_authenticates_its_partner(service: AuthService) -> None:
    partner, key = service.create_partner("Acme Pay", 0)
    identity = service.authenticate_api_key(key)
    assert (identity.id, identity.role, identity.kind, identity.partner_id) == (
        partner.id,
        "partner",
        "partner",
        partner.id,
    )


@pytest.mark.parametrize("key", ["", "nope", "rpk_" + "A" * 43, "fresh"])
def test_unknown_or_malformed_api_keys_are_refused(service: AuthService, key: str) -> None:
    service.create_partner("Acme Pay", 0)
    with pytest.raises(InvalidToken):
        service.authenticate_api_key(new_api_key() if key == "fresh" else key)


@pytest.mark.parametrize(
    ("name", "bps", "field"),
    [
        ("", 0, "/name"),
        ("   ", 0, "/name"),
        ("x" * 101, 0, "/name"),
        ("Acme", -1, "/markup_bps"),
        ("Acme", 10_001, "/markup_bps"),
        ("Acme", True, "/markup_bps"),
    ],
)
def test_partner_rules(service: AuthService, name: str, bps: int, field: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        service.create_partner(name, bps)
    assert refused.value.field == field


# The gateway's partner usage plan (issue 12 §3): the key is imported before the partner exists.


@dataclass
class Gateway:
    """An ApiKeyRegistry in memory, which records what the store held when it was called."""

    store: PartnerStore
    fail: bool = False
    keys: dict[str, str] = field(default_factory=dict)  # name → key
    stored_before: list[int] = field(default_factory=list)

    def register(self, name: str, key: str) -> None:
        self.stored_before.append(len(self.store.rows))
        if self.fail:
            raise ApiKeysUnavailable("API Gateway did not answer")
        self.keys[name] = key


def _with_gateway(store: PartnerStore, gateway: Gateway) -> AuthService:
    keys = StaticKeys(KeyRing("k", {"k": secrets.token_bytes(32)}))
    return AuthService(store, AccessTokens(keys), api_keys=gateway)  # type: ignore[arg-type]


def test_a_partners_key_is_imported_into_the_gateway_before_the_partner_is_stored(store: PartnerStore) -> None:
    gateway = Gateway(store)
    partner, key = _with_gateway(store, gateway).create_partner("Acme Pay", 150)
    assert gateway.keys == {partner.id: key}, "the gateway key is named after the partner and holds its key"
    assert gateway.stored_before == [0], "imported before the partner row exists"
    assert len(store.rows) == 1


def test_a_gateway_that_does_not_take_the_key_leaves_no_partner(store: PartnerStore) -> None:
    gateway = Gateway(store, fail=True)
    with pytest.raises(ApiKeysUnavailable) as refused:
        _with_gateway(store, gateway).create_partner("Acme Pay", 150)
    assert (refused.value.status, refused.value.slug) == (503, "service-unavailable")
    assert refused.value.headers["Retry-After"] == "2"
    assert store.rows == {}


def test_a_refused_body_never_reaches_the_gateway(store: PartnerStore) -> None:
    gateway = Gateway(store)
    with pytest.raises(ValidationFailed):
        _with_gateway(store, gateway).create_partner("", 0)
    assert gateway.stored_before == []
