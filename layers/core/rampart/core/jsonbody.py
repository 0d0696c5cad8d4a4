"""The one bounded JSON body parser (API.md, Conventions): every function that takes a JSON body
parses it here, never with a bare ``json.loads``.

A body is refused (:class:`MalformedBody`, answered 400 ``malformed-request``) when it

- is not UTF-8 (a base64 body, API Gateway's form for bytes that are not text, included);
- nests arrays/objects deeper than :data:`MAX_DEPTH` levels;
- holds a number literal longer than :data:`MAX_NUMBER_LENGTH` characters;
- is not strict JSON: ``NaN``/``Infinity`` literals, control characters in strings, a key given
  twice in one object (parsers disagree on which one wins), or a ``\\ud800``-style escape of a
  lone surrogate (I-JSON, RFC 7493: such a string is no text, and no store can hold it).

Depth and number length are checked by one linear scan (no recursion) before ``json.loads`` runs,
so neither ``RecursionError`` nor Python's int-digit limit can ever be reached. Pure Python.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any, Final

MAX_DEPTH: Final = 32
MAX_NUMBER_LENGTH: Final = 100

# One token at a time: a whole string (closing quote optional, so an unterminated one runs to the
# end instead of exposing its content to the scan), a bracket, or a run of number characters.
_TOKEN: Final = re.compile(r'"[^"\\]*(?:\\[\s\S][^"\\]*)*"?|[\[\]{}]|[-+0-9.eE]+')
_OPEN: Final = frozenset("[{")
_CLOSE: Final = frozenset("]}")


class MalformedBody(json.JSONDecodeError):
    """The body is not one this API parses. A ``JSONDecodeError`` so that Powertools' validation
    maps it like any other bad JSON when this parser is the resolver's deserializer."""

    def __init__(self, message: str, doc: str = "", pos: int = 0) -> None:
        super().__init__(message, doc, pos)
        self.message = message

    def __str__(self) -> str:
        return self.message


def decode(body: str | bytes | None, *, base64_encoded: bool = False) -> str:
    """The body as text: bytes and base64 bodies must be UTF-8; a ``str`` must be encodable as
    UTF-8 (a lone surrogate is not)."""
    if body is None:
        return ""
    raw: bytes
    if base64_encoded:
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise MalformedBody("the body is not valid base64") from None
    elif isinstance(body, bytes):
        raw = body
    else:
        try:
            body.encode("utf-8")
        except UnicodeEncodeError:
            raise MalformedBody("the body is not UTF-8 text") from None
        return body
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedBody("the body is not UTF-8 text") from None


def check_shape(text: str) -> None:
    """The linear scan: nesting depth and number literal length, without parsing."""
    depth = 0
    for match in _TOKEN.finditer(text):
        token = match.group()
        first = token[0]
        if first == '"':
            continue
        if first in _OPEN:
            depth += 1
            if depth > MAX_DEPTH:
                raise MalformedBody(f"the body nests deeper than {MAX_DEPTH} levels", text, match.start())
        elif first in _CLOSE:
            depth -= 1
        elif len(token) > MAX_NUMBER_LENGTH:
            raise MalformedBody(
                f"the body holds a number literal longer than {MAX_NUMBER_LENGTH} characters", text, match.start()
            )


def _no_constants(name: str) -> Any:
    raise MalformedBody(f"{name} is not JSON")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise MalformedBody(f"the key {key[:50]!r} appears twice in one object")
            seen.add(key)
    return result


def _check_text(value: Any) -> None:
    """Every string (keys included) is text: no lone surrogates. Iterative: depth is already bounded,
    but a walk never needs the stack."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            strings: list[str] = [item]
        elif isinstance(item, dict):
            strings = list(item)
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
            continue
        else:
            continue
        for text in strings:
            if not text.isascii():
                try:
                    text.encode("utf-8")
                except UnicodeEncodeError:
                    raise MalformedBody("the body holds a lone surrogate escape (\\ud800-\\udfff)") from None


def loads(text: str | bytes) -> Any:
    """Parse a JSON document under the limits above; raises :class:`MalformedBody`."""
    if isinstance(text, bytes):
        text = decode(text)
    check_shape(text)
    try:
        value = json.loads(text, parse_constant=_no_constants, object_pairs_hook=_unique_keys)
    except MalformedBody:
        raise
    except json.JSONDecodeError as exc:
        raise MalformedBody(f"the body is not valid JSON ({exc.msg})", text, exc.pos) from None
    except (ValueError, RecursionError):  # belt and braces: the scan above rules both out
        raise MalformedBody("the body is not valid JSON") from None
    _check_text(value)
    return value


def parse(body: str | bytes | None, *, base64_encoded: bool = False) -> Any:
    """Decode (UTF-8, base64 when flagged) and parse a request body."""
    return loads(decode(body, base64_encoded=base64_encoded))


__all__ = ["MAX_DEPTH", "MAX_NUMBER_LENGTH", "MalformedBody", "check_shape", "decode", "loads", "parse"]
