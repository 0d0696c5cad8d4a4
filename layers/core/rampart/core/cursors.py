"""Pagination cursors the server issued and can verify (API.md: a cursor is opaque, and anything
the server did not issue → 422 ``validation-error`` on ``query:cursor``).

A cursor is ``base64url(position) "." base64url(HMAC-SHA256(key, scope NUL position)[:16])``: the
position is the last item's key on the page (a positive 64-bit integer), the scope names the list
and whose it is (``accounts:<owner>``, ``entries:<account>``…), so a cursor of another list or
another caller never verifies. The key is a secret of the manifest (``cursor_key``). Pure Python:
``hmac`` and ``base64`` only.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from typing import Final, Protocol

from rampart.core.errors import ValidationFailed

MAX_POSITION: Final = 2**63 - 1  # PostgreSQL bigint: ids and sequences
MAX_CURSOR_LENGTH: Final = 200
_TAG_BYTES: Final = 16
_FIELD: Final = "query:cursor"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Cursors(Protocol):
    """What the services need: sign a position for a scope, verify a cursor back."""

    def sign(self, scope: str, position: int) -> str: ...

    def verify(self, scope: str, cursor: str | None) -> int | None: ...


class CursorSigner:
    """Signs and verifies cursors with one key (bytes; a secret's text is used as it is)."""

    def __init__(self, key: bytes | str) -> None:
        raw = key.encode("utf-8") if isinstance(key, str) else bytes(key)
        if len(raw) < 16:
            raise ValueError("a cursor key needs at least 16 bytes")
        self._key = raw

    @classmethod
    def ephemeral(cls) -> CursorSigner:
        """A random key of this process only: its cursors verify nowhere else (tests, tools)."""
        return cls(secrets.token_bytes(32))

    def _tag(self, scope: str, payload: bytes) -> bytes:
        message = scope.encode("utf-8", "surrogatepass") + b"\x00" + payload
        return hmac.new(self._key, message, hashlib.sha256).digest()[:_TAG_BYTES]

    def sign(self, scope: str, position: int) -> str:
        if isinstance(position, bool) or not 0 < position <= MAX_POSITION:
            raise ValueError(f"a cursor position is 1 to {MAX_POSITION}")
        payload = str(position).encode("ascii")
        return f"{_b64(payload)}.{_b64(self._tag(scope, payload))}"

    def verify(self, scope: str, cursor: str | None) -> int | None:
        """The position behind ``cursor`` (None for none), or 422 naming ``query:cursor``."""
        if cursor is None:
            return None
        refused = ValidationFailed("cursor is not one this API returned for this list", field=_FIELD)
        if not isinstance(cursor, str) or not cursor.isascii() or len(cursor) > MAX_CURSOR_LENGTH:
            raise refused
        encoded, dot, signature = cursor.partition(".")
        if not dot or not encoded or not signature:
            raise refused
        try:
            payload, tag = _unb64(encoded), _unb64(signature)
        except (binascii.Error, ValueError):
            raise refused from None
        if not hmac.compare_digest(tag, self._tag(scope, payload)):
            raise refused
        # Signed by us, so well formed; checked anyway (a key shared by mistake must not reach SQL).
        text = payload.decode("ascii", "replace")
        if not (text.isdigit() and len(text) <= 19 and 0 < int(text) <= MAX_POSITION):
            raise refused
        return int(text)


__all__ = ["MAX_POSITION", "CursorSigner", "Cursors"]
