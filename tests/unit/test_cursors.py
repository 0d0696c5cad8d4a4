"""Pagination cursors: only what the server signed, for this list, verifies."""

from __future__ import annotations

import base64

import pytest

from rampart.core.cursors import MAX_POSITION, CursorSigner
from rampart.core.errors import ValidationFailed

SIGNER = CursorSigner(b"k" * 32)


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize("position", [1, 42, MAX_POSITION])
def test_round_trip(position: int) -> None:
    cursor = SIGNER.sign("accounts:u1", position)
    assert cursor.isascii()
    assert len(cursor) <= 200
    assert SIGNER.verify("accounts:u1", cursor) == position


def test_none_is_the_first_page() -> None:
    assert SIGNER.verify("accounts:u1", None) is None


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "%%",
        b64("42"),  # the old unsigned format
        b64("99999999999999999999999"),
        f"{b64('42')}.",
        f".{b64('x' * 16)}",
        f"{b64('42')}.{b64('x' * 16)}",  # forged tag
        f"{b64(str(2**63))}.{b64('x' * 16)}",
        "a" * 201,
        "é.é",
        "\x00.\x00",
        "a.b.c",
        "!!!.???",
    ],
)
def test_anything_not_issued_is_refused(cursor: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        SIGNER.verify("accounts:u1", cursor)
    assert (info.value.status, info.value.field) == (422, "query:cursor")


def test_another_scope_or_key_does_not_verify() -> None:
    cursor = SIGNER.sign("accounts:u1", 7)
    with pytest.raises(ValidationFailed):
        SIGNER.verify("accounts:u2", cursor)
    with pytest.raises(ValidationFailed):
        SIGNER.verify("transfers:u1:None", cursor)
    with pytest.raises(ValidationFailed):
        CursorSigner(b"other-key-of-32-bytes-0123456789").verify("accounts:u1", cursor)


def test_a_tampered_position_does_not_verify() -> None:
    cursor = SIGNER.sign("accounts:u1", 7)
    tag = cursor.split(".")[1]
    with pytest.raises(ValidationFailed):
        SIGNER.verify("accounts:u1", f"{b64('8')}.{tag}")


@pytest.mark.parametrize("position", [0, -1, MAX_POSITION + 1, True])
def test_only_bigint_positions_are_signed(position: int) -> None:
    with pytest.raises(ValueError):
        SIGNER.sign("s", position)


def test_short_keys_are_refused() -> None:
    with pytest.raises(ValueError):
        CursorSigner(b"short")
