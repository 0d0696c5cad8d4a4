"""JWT access tokens (PyJWT, HS256) signed with rotatable keys.

Keys come as JSON ``{"current": "<kid>", "keys": {"<kid>": "<secret>", ...}}`` or in the flat
shape the CDK app has Secrets Manager generate, ``{"active_kid": "<kid>", "<kid>": "<secret>"}``.
Signing uses ``current`` and names it in the ``kid`` header;
verification accepts any listed kid. A rotation has three steps: list the new key (not current)
and let the containers' caches age (5 minutes); make it current; drop the old key once the last
token it signed has expired (15 minutes later). A container meeting a kid it does not know
reloads the keys early all the same (at most every 30 s), as a safety net.

Verification accepts HS256 only (never ``none``, never another algorithm chosen by the token),
checks signature, ``exp``, ``iat``, ``iss`` and ``aud``, and requires ``sub`` and ``role``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import jwt

from rampart.auth.errors import InvalidToken
from rampart.auth.models import ROLES, Identity, Role

ALGORITHM = "HS256"
ACCESS_TOKEN_SECONDS = 15 * 60
ISSUER = "rampart"
AUDIENCE = "rampart-api"
MIN_KEY_BYTES = 32  # HS256 wants a key at least as long as its output
MAX_TOKEN_LENGTH = 4096
_KID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_HEX = re.compile(r"^(?:[0-9a-fA-F]{2})+$")


def decode_secret(value: str) -> bytes:
    """A key as the secret holds it: ``hex:…`` or ``base64:…`` explicitly, else hex when it
    reads as hex, else base64 (standard or URL-safe, padding optional)."""
    if value.startswith("hex:"):
        return bytes.fromhex(value[4:])
    if value.startswith("base64:"):
        value = value[7:]
    elif _HEX.match(value):
        return bytes.fromhex(value)
    padded = value + "=" * (-len(value) % 4)
    try:
        return base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("a JWT key is neither hex nor base64") from None


@dataclass(frozen=True, slots=True)
class KeyRing:
    current: str
    keys: Mapping[str, bytes]

    def __post_init__(self) -> None:
        if not self.keys:
            raise ValueError("the JWT key ring is empty")
        for kid, key in self.keys.items():
            if not _KID.match(kid):
                raise ValueError(f"JWT kid {kid!r} must be 1 to 64 of [A-Za-z0-9._-]")
            if len(key) < MIN_KEY_BYTES:
                raise ValueError(f"JWT key {kid!r} is shorter than {MIN_KEY_BYTES} bytes")
        if self.current not in self.keys:
            raise ValueError(f"the current JWT kid {self.current!r} is not among the keys")

    @classmethod
    def from_json(cls, text: str) -> KeyRing:
        try:
            data = json.loads(text)
            if isinstance(data, dict) and "active_kid" in data:
                # The flat shape Secrets Manager can generate (the cloud): {"active_kid": kid, kid: secret}.
                current, keys = data["active_kid"], {k: v for k, v in data.items() if k != "active_kid"}
            else:
                current, keys = data["current"], data["keys"]
        except (ValueError, KeyError, TypeError):
            raise ValueError('JWT keys must be JSON {"current": kid, "keys": {kid: secret}}') from None
        if not isinstance(current, str) or not isinstance(keys, dict):
            raise ValueError('JWT keys must be JSON {"current": kid, "keys": {kid: secret}}')
        decoded: dict[str, bytes] = {}
        for kid, secret in keys.items():
            if not isinstance(secret, str):
                raise ValueError(f"JWT key {kid!r} must be a string")
            decoded[str(kid)] = decode_secret(secret)
        return cls(current=current, keys=decoded)

    def __repr__(self) -> str:  # never print key material
        return f"KeyRing(current={self.current!r}, kids={sorted(self.keys)!r})"


class KeySource(Protocol):
    def ring(self) -> KeyRing:
        """The key ring, possibly cached."""
        ...

    def refreshed(self) -> KeyRing:
        """The key ring reloaded now if allowed (a token named a kid we do not know)."""
        ...


class StaticKeys:
    def __init__(self, ring: KeyRing) -> None:
        self._ring = ring

    def ring(self) -> KeyRing:
        return self._ring

    def refreshed(self) -> KeyRing:
        return self._ring


class CachedKeys:
    """Keys loaded by ``load`` (returns the JSON text), kept ``max_age`` seconds per container.
    An unknown kid reloads early, at most once every ``min_reload`` seconds, so a key added
    by a rotation is picked up at once while forged kids cannot hammer Secrets Manager."""

    def __init__(
        self,
        load: Callable[[], str],
        *,
        max_age: float = 300.0,  # not money: seconds
        min_reload: float = 30.0,  # not money: seconds
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load, self._max_age, self._min_reload, self._clock = load, max_age, min_reload, clock
        self._ring: KeyRing | None = None
        self._loaded_at = 0.0
        self._lock = threading.Lock()

    def _reload(self) -> KeyRing:
        ring = KeyRing.from_json(self._load())
        self._ring, self._loaded_at = ring, self._clock()
        return ring

    def ring(self) -> KeyRing:
        with self._lock:
            if self._ring is None or self._clock() - self._loaded_at >= self._max_age:
                return self._reload()
            return self._ring

    def refreshed(self) -> KeyRing:
        with self._lock:
            if self._ring is None or self._clock() - self._loaded_at >= self._min_reload:
                return self._reload()
            return self._ring


class AccessTokens:
    def __init__(
        self, keys: KeySource, *, ttl_seconds: int = ACCESS_TOKEN_SECONDS, clock: Callable[[], float] = time.time
    ) -> None:
        self._keys, self.ttl_seconds, self._clock = keys, ttl_seconds, clock

    def issue(self, subject: str, role: Role) -> str:
        ring = self._keys.ring()
        now = int(self._clock())
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": subject,
            "role": role,
            "iat": now,
            "nbf": now,
            "exp": now + self.ttl_seconds,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, ring.keys[ring.current], algorithm=ALGORITHM, headers={"kid": ring.current})

    def verify(self, token: str) -> Identity:
        """The identity a valid token carries; :class:`InvalidToken` for anything else."""
        if not token or len(token) > MAX_TOKEN_LENGTH:
            raise InvalidToken("no token or an oversized one")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidToken("not a JWT") from None
        kid = header.get("kid")
        if header.get("alg") != ALGORITHM or not isinstance(kid, str):
            raise InvalidToken("wrong algorithm or no kid")
        key = self._keys.ring().keys.get(kid)
        if key is None:
            key = self._keys.refreshed().keys.get(kid)
        if key is None:
            raise InvalidToken("unknown kid")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=ISSUER,
                options={"require": ["exp", "iat", "iss", "aud", "sub", "role"]},
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(f"rejected: {type(exc).__name__}") from None
        subject, role = claims["sub"], claims["role"]
        if not isinstance(subject, str) or not subject or role not in ROLES:
            raise InvalidToken("bad subject or role")
        return Identity(id=subject, role=role, kind="user")
