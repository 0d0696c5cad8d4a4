"""The PostgreSQL auth store and the auth schema's own guarantees."""

from __future__ import annotations

import threading
import uuid

import psycopg
import pytest

from rampart.adapters.postgres.auth_store import PostgresAuthStore
from rampart.adapters.postgres.db import PooledDatabase
from rampart.auth.opaque import digest, new_api_key, new_refresh_token
from rampart.auth.passwords import PasswordHasher

HASH = PasswordHasher().hash("correct horse battery staple")


@pytest.fixture
def store(db: PooledDatabase) -> PostgresAuthStore:
    return PostgresAuthStore(db)


def uid() -> str:
    return f"usr_{uuid.uuid4().hex}"


def address() -> str:
    return f"{uuid.uuid4().hex[:10]}@Example.com"


def test_create_user_and_find_by_email_in_any_case(store: PostgresAuthStore) -> None:
    email = address()
    user = store.create_user(uid(), email, HASH, "lender")
    assert user is not None
    assert user.email == email  # kept as given
    found = store.credentials(email.lower())
    assert found is not None
    assert found.user == user
    assert found.password_hash == HASH
    assert store.user(user.id) == user
    assert store.create_user(uid(), email.upper(), HASH, "user") is None


def test_a_password_is_never_stored_in_clear(store: PostgresAuthStore) -> None:
    with pytest.raises(psycopg.errors.CheckViolation):
        store.create_user(uid(), address(), "correct horse battery staple", "user")


def test_unknown_roles_are_refused_by_the_schema(store: PostgresAuthStore) -> None:
    with pytest.raises(psycopg.errors.CheckViolation):
        store.create_user(uid(), address(), HASH, "root")  # type: ignore[arg-type]


def test_upsert_user_updates_password_and_role(store: PostgresAuthStore) -> None:
    email = address()
    user = store.create_user(uid(), email, HASH, "user")
    assert user is not None
    other_hash = PasswordHasher().hash("another password entirely")
    upserted = store.upsert_user(uid(), email.lower(), other_hash, "admin")
    assert upserted.id == user.id
    assert upserted.role == "admin"
    found = store.credentials(email)
    assert found is not None
    assert found.password_hash == other_hash


def _user(store: PostgresAuthStore) -> str:
    user = store.create_user(uid(), address(), HASH, "user")
    assert user is not None
    return user.id


def test_rotation_outcomes(store: PostgresAuthStore) -> None:
    user_id = _user(store)
    first, second, third = new_refresh_token(), new_refresh_token(), new_refresh_token()
    store.start_family(f"fam_{uuid.uuid4().hex}", user_id, digest(first), 3600)

    ok = store.rotate_refresh_token(digest(first), digest(second), 3600)
    assert (ok.outcome, ok.user_id, ok.role) == ("ok", user_id, "user")
    reused = store.rotate_refresh_token(digest(first), digest(third), 3600)
    assert reused.outcome == "reused"
    assert reused.family_id == ok.family_id
    assert store.rotate_refresh_token(digest(second), digest(third), 3600).outcome == "revoked"
    assert store.rotate_refresh_token(digest(new_refresh_token()), digest(third), 3600).outcome == "unknown"


def test_expired_refresh_token(store: PostgresAuthStore) -> None:
    user_id = _user(store)
    token = new_refresh_token()
    store.start_family(f"fam_{uuid.uuid4().hex}", user_id, digest(token), 0)
    assert store.rotate_refresh_token(digest(token), digest(new_refresh_token()), 3600).outcome == "expired"


def test_concurrent_use_of_one_token_has_exactly_one_winner(store: PostgresAuthStore) -> None:
    user_id = _user(store)
    token = new_refresh_token()
    store.start_family(f"fam_{uuid.uuid4().hex}", user_id, digest(token), 3600)
    barrier = threading.Barrier(8)
    outcomes: list[str] = []
    successors: list[str] = []

    def use() -> None:
        successor = new_refresh_token()
        barrier.wait()
        outcome = store.rotate_refresh_token(digest(token), digest(successor), 3600).outcome
        outcomes.append(outcome)
        if outcome == "ok":
            successors.append(successor)

    threads = [threading.Thread(target=use) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes).count("ok") == 1
    assert set(outcomes) <= {"ok", "reused", "revoked"}
    # The losers count as a reuse: the family, the winner's successor included, is revoked.
    assert store.rotate_refresh_token(digest(successors[0]), digest(new_refresh_token()), 3600).outcome == "revoked"


def test_revoke_family_and_all_of_a_user(store: PostgresAuthStore) -> None:
    user_id = _user(store)
    one, two = new_refresh_token(), new_refresh_token()
    store.start_family(f"fam_{uuid.uuid4().hex}", user_id, digest(one), 3600)
    store.start_family(f"fam_{uuid.uuid4().hex}", user_id, digest(two), 3600)
    assert store.revoke_family_of(digest(one), "logout")
    assert store.revoke_family_of(digest(one), "logout")  # still ours, already revoked
    assert not store.revoke_family_of(digest(new_refresh_token()), "logout")
    assert store.rotate_refresh_token(digest(two), digest(new_refresh_token()), 3600).outcome == "ok"
    assert store.revoke_families_of_user(user_id, "password-change") == 1
    assert store.revoke_families_of_user(user_id, "password-change") == 0


def test_refresh_tokens_are_stored_as_digests(store: PostgresAuthStore, db: PooledDatabase) -> None:
    user_id = _user(store)
    token = new_refresh_token()
    store.start_family(f"fam_{uuid.uuid4().hex}", user_id, digest(token), 3600)
    with db.connection() as conn:
        dump = conn.execute(
            "SELECT string_agg(t::text, ' ') FROM auth.refresh_tokens t WHERE user_id = %s", (user_id,)
        ).fetchone()
    assert dump is not None
    assert token not in dump[0]
    assert token.encode().hex() not in dump[0]


def test_partners(store: PostgresAuthStore) -> None:
    key = new_api_key()
    partner = store.create_partner(f"prt_{uuid.uuid4().hex}", "Acme", 250, digest(key), key[:12])
    assert store.partner_by_key_hash(digest(key)) == partner
    assert store.partner_by_key_hash(digest(new_api_key())) is None
    with pytest.raises(psycopg.errors.UniqueViolation):
        store.create_partner(f"prt_{uuid.uuid4().hex}", "Copy", 0, digest(key), key[:12])
    with pytest.raises(psycopg.errors.CheckViolation):
        store.create_partner(f"prt_{uuid.uuid4().hex}", "Greedy", 10_001, digest(new_api_key()), "rpk_")
