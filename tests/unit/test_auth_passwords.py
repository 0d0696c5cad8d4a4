"""Password hashing (argon2id) and the rules on emails and passwords."""

from __future__ import annotations

import pytest

from rampart.auth.passwords import MEMORY_COST_KIB, PARALLELISM, TIME_COST, PasswordHasher
from rampart.auth.service import check_email, check_password
from rampart.core.errors import ValidationFailed

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def hasher() -> PasswordHasher:
    return PasswordHasher()


def test_hash_is_argon2id_with_our_parameters_and_never_the_password(hasher: PasswordHasher) -> None:
    hashed = hasher.hash(PASSWORD)
    assert hashed.startswith(f"$argon2id$v=19$m={MEMORY_COST_KIB},t={TIME_COST},p={PARALLELISM}$")
    assert PASSWORD not in hashed


def test_salted_every_time(hasher: PasswordHasher) -> None:
    assert hasher.hash(PASSWORD) != hasher.hash(PASSWORD)


def test_verify(hasher: PasswordHasher) -> None:
    hashed = hasher.hash(PASSWORD)
    assert hasher.verify(hashed, PASSWORD)
    assert not hasher.verify(hashed, PASSWORD + " ")
    assert not hasher.verify(hashed, PASSWORD.upper())
    assert not hasher.verify(hashed, "")


@pytest.mark.parametrize("stored", ["", "plaintext", "$argon2id$garbage", "$2b$12$abcdefghijklmnopqrstuv"])
def test_unreadable_hash_never_verifies(hasher: PasswordHasher, stored: str) -> None:
    assert not hasher.verify(stored, PASSWORD)


def test_needs_rehash_when_parameters_change(hasher: PasswordHasher) -> None:
    weaker = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1)
    assert hasher.needs_rehash(weaker.hash(PASSWORD))
    assert not hasher.needs_rehash(hasher.hash(PASSWORD))


def test_burn_costs_a_verification_and_accepts_anything(hasher: PasswordHasher) -> None:
    hasher.burn(PASSWORD)
    hasher.burn("")


def test_unicode_passwords(hasher: PasswordHasher) -> None:
    hashed = hasher.hash("pässwörd-ünïcødé-🔐")
    assert hasher.verify(hashed, "pässwörd-ünïcødé-🔐")
    assert not hasher.verify(hashed, "passwörd-ünïcødé-🔐")


@pytest.mark.parametrize("password", ["x" * 12, "correct horse", "🔐" * 12, "x" * 1024])
def test_password_rule_accepts(password: str) -> None:
    assert check_password(password) == password


@pytest.mark.parametrize("password", ["", "x" * 11, "x" * 1025])
def test_password_rule_refuses(password: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        check_password(password)
    assert refused.value.field == "/password"


@pytest.mark.parametrize(
    "email", ["ada@example.com", "Ada.Lovelace+tag@Example.CO.uk", "a@b.io", "x_y-z@sub-domain.example.org"]
)
def test_email_rule_accepts(email: str) -> None:
    assert check_email(email) == email


@pytest.mark.parametrize(
    "email",
    [
        "",
        "plain",
        "@example.com",
        "ada@",
        "ada@localhost",
        "ada@@example.com",
        "ada @example.com",
        " ada@example.com",
        "ada@example.com ",
        "ada@-example.com",
        "ada@example..com",
        "adä@example.com",
        "x" * 65 + "@example.com",
        "a@" + "b" * 250 + ".com",
    ],
)
def test_email_rule_refuses(email: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        check_email(email)
    assert refused.value.field == "/email"
