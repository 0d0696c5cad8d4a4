"""Opaque secrets: refresh tokens and partner API keys. Random (256 bits), prefixed so that
people and secret scanners recognise them, and stored only as their SHA-256 digest — a fast
hash suffices for secrets of that entropy, and it lets the store find a row by its digest."""

from __future__ import annotations

import hashlib
import re
import secrets

REFRESH_TOKEN_PREFIX = "rrt_"  # noqa: S105 - a prefix, not a secret
API_KEY_PREFIX = "rpk_"
_BODY = r"[A-Za-z0-9_-]{43}"  # token_urlsafe(32)
_REFRESH_TOKEN = re.compile(rf"^{REFRESH_TOKEN_PREFIX}{_BODY}$")
_API_KEY = re.compile(rf"^{API_KEY_PREFIX}{_BODY}$")
API_KEY_HINT_LENGTH = 12  # the prefix and 8 random characters, kept in clear for operators


def new_refresh_token() -> str:
    return REFRESH_TOKEN_PREFIX + secrets.token_urlsafe(32)


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def looks_like_refresh_token(value: str) -> bool:
    return bool(_REFRESH_TOKEN.match(value))


def looks_like_api_key(value: str) -> bool:
    return bool(_API_KEY.match(value))


def api_key_hint(key: str) -> str:
    return key[:API_KEY_HINT_LENGTH]
