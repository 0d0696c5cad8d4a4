"""The authorizer's partner usage key and its in-container cache of verified API keys."""

from __future__ import annotations

import pytest

from rampart.api.authorizer import IdentityCache, policy, usage_key
from rampart.auth import Identity
from rampart.auth.errors import InvalidToken
from tests.support.events import authorizer_event, method_arn

PARTNER = Identity("prt_1", "partner", "partner", "prt_1")
USER = Identity("usr_1", "user")


def test_a_partners_policy_names_its_key_for_the_usage_plan() -> None:
    event = authorizer_event({"X-Api-Key": "rk_secret"})
    answer = policy(PARTNER, method_arn("GET", "/v1/me"), usage_key(event, PARTNER))
    assert answer["usageIdentifierKey"] == "rk_secret"


def test_a_users_policy_has_no_usage_key() -> None:
    event = authorizer_event({"Authorization": "Bearer abc"})
    assert usage_key(event, USER) is None
    assert "usageIdentifierKey" not in policy(USER, method_arn("GET", "/v1/me"), usage_key(event, USER))


class Clock:
    def __init__(self) -> None:
        self.now = 0.0  # not money: seconds

    def __call__(self) -> float:
        return self.now


def test_a_verified_key_is_looked_up_once_per_ttl_and_per_key() -> None:
    clock = Clock()
    cache = IdentityCache(ttl_seconds=60, clock=clock)
    looked_up: list[str] = []

    def load(key: str) -> Identity:
        looked_up.append(key)
        return Identity(f"prt_{key}", "partner", "partner", f"prt_{key}")

    assert cache.get("a", load).id == "prt_a"
    assert cache.get("a", load).id == "prt_a"
    assert cache.get("b", load).id == "prt_b"  # another caller's key is never served a's identity
    assert looked_up == ["a", "b"]
    clock.now = 61
    cache.get("a", load)
    assert looked_up == ["a", "b", "a"]


def test_refusals_are_never_cached() -> None:
    cache = IdentityCache()
    calls = 0

    def refuse(key: str) -> Identity:
        nonlocal calls
        calls += 1
        raise InvalidToken("unknown API key")

    for _ in range(2):
        with pytest.raises(InvalidToken):
            cache.get("rk_x", refuse)
    assert calls == 2


def test_the_cache_is_bounded_and_keeps_no_key() -> None:
    cache = IdentityCache(max_entries=2)
    for key in ("k1", "k2", "k3"):
        cache.get(key, lambda k: PARTNER)
    assert len(cache._entries) == 2
    assert all(len(entry) == 64 and set(entry) <= set("0123456789abcdef") for entry in cache._entries)
