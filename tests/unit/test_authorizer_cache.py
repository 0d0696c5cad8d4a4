"""The authorizer's usage plan key (a partner's own, the users' shared one) and its in-container
cache of verified API keys."""

from __future__ import annotations

from typing import Any

import pytest

from rampart.api.authorizer import IdentityCache, Unauthorized, authorizer_entry, policy, usage_key
from rampart.auth import Identity
from rampart.auth.errors import InvalidToken
from tests.support.events import LambdaContext, authorizer_event, method_arn

PARTNER = Identity("prt_1", "partner", "partner", "prt_1")
USER = Identity("usr_1", "user")
ADMIN = Identity("usr_9", "admin")
USERS_KEY = "users-shared-key-0123456789"

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")


def test_a_partners_policy_names_its_key_for_the_usage_plan() -> None:
    event = authorizer_event({"X-Api-Key": "rk_secret"})
    answer = policy(PARTNER, method_arn("GET", "/v1/me"), usage_key(event, PARTNER, USERS_KEY))
    assert answer["usageIdentifierKey"] == "rk_secret"


@pytest.mark.parametrize("who", [USER, ADMIN], ids=["user", "admin"])
def test_a_bearer_tokens_policy_names_the_users_shared_key(who: Identity) -> None:
    event = authorizer_event({"Authorization": "Bearer abc"})
    assert usage_key(event, who, USERS_KEY) == USERS_KEY
    assert policy(who, method_arn("GET", "/v1/me"), usage_key(event, who, USERS_KEY))["usageIdentifierKey"] == (
        USERS_KEY
    )


def test_without_a_users_key_a_users_policy_names_none() -> None:
    """A handler called with a partial environment (no users_api_key_arn): no key, no field."""
    event = authorizer_event({"Authorization": "Bearer abc"})
    assert usage_key(event, USER) is None
    assert "usageIdentifierKey" not in policy(USER, method_arn("GET", "/v1/me"), usage_key(event, USER))


def test_a_partner_never_gets_the_users_key() -> None:
    """Only the key the partner presented identifies it to its plan."""
    assert usage_key(authorizer_event({"Authorization": "Bearer abc"}), PARTNER, USERS_KEY) is None


# Through the entry stack: what API Gateway receives.


def _handler(identity: Identity | Exception, asked: list[str]) -> Any:
    def users_key() -> str:
        asked.append("users_key")
        return USERS_KEY

    @authorizer_entry("authorizer", users_key=users_key)
    def handler(event: dict[str, Any]) -> Identity:
        if isinstance(identity, Exception):
            raise identity
        return identity

    return handler


@pytest.mark.parametrize(
    ("identity", "headers", "expected", "asks"),
    [
        (PARTNER, {"X-Api-Key": "rpk_partners_own"}, "rpk_partners_own", []),
        (USER, {"Authorization": "Bearer abc"}, USERS_KEY, ["users_key"]),
        (ADMIN, {"Authorization": "Bearer abc"}, USERS_KEY, ["users_key"]),
    ],
    ids=["partner", "user", "admin"],
)
def test_the_authorizer_answers_each_callers_usage_key(
    identity: Identity, headers: dict[str, str], expected: str, asks: list[str]
) -> None:
    asked: list[str] = []
    answer = _handler(identity, asked)(authorizer_event(headers), LambdaContext())
    assert answer["usageIdentifierKey"] == expected
    assert answer["principalId"] == identity.id
    assert asked == asks, "the shared key is read for users only"


@pytest.mark.parametrize("refusal", [InvalidToken("unknown API key"), Unauthorized()])
def test_a_refused_caller_gets_no_policy_and_no_key(refusal: Exception) -> None:
    asked: list[str] = []
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        _handler(refusal, asked)(authorizer_event({"X-Api-Key": "rpk_unknown"}), LambdaContext())
    assert asked == []


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
