"""A hostile client against the running twin: where the schema does not go. Every row asserts the
exact status and problem type; every reply of the table is checked for a leaked traceback, and
every 4xx for ``application/problem+json``.

Requests are sent byte for byte (``http.client``): duplicate headers, raw bodies that are not
UTF-8, header values that are not ASCII. The limit rows fill this session's PEN world account
(the twin's database is fresh per session; no other e2e test uses PEN)."""

from __future__ import annotations

import base64
import http.client
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import pytest

from rampart.core.money import MAX_UNITS, format_units
from tests.e2e.api import Client, admin, fund, new_user

pytestmark = pytest.mark.xdist_group("hostile")

TRACEBACK_MARKS = ("Traceback", 'File "', '.py", line')
Ctx = dict[str, Any]
Body = Callable[[Ctx], Any]


@dataclass(frozen=True)
class Sent:
    status: int
    headers: dict[str, str]
    raw: bytes

    @property
    def body(self) -> Any:
        try:
            return json.loads(self.raw)
        except ValueError:
            return None

    @property
    def problem(self) -> str | None:
        if not self.headers.get("content-type", "").startswith("application/problem+json"):
            return None
        return str(self.body["type"]).removeprefix("/problems/")

    @property
    def fields(self) -> list[str]:
        body = self.body
        return [e["field"] for e in body.get("errors", [])] if isinstance(body, dict) else []


def send(base: str, method: str, path: str, body: bytes | None, headers: list[tuple[str, str | bytes]]) -> Sent:
    """One request exactly as given: header values may be bytes (sent as they are) and repeat."""
    url = urlsplit(base)
    conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=60)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for name, value in headers:
            conn.putheader(name, value)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        reply = conn.getresponse()
        return Sent(reply.status, {k.lower(): v for k, v in reply.getheaders()}, reply.read())
    finally:
        conn.close()


SEEN: list[tuple[str, Sent]] = []  # every reply of this module, for the table-wide checks


def check_reply(name: str, reply: Sent) -> None:
    SEEN.append((name, reply))
    clean(name, reply)


def clean(name: str, reply: Sent) -> None:
    """No traceback in the body, never a 5xx, every 4xx a problem+json."""
    text = reply.raw.decode("utf-8", "replace")
    for mark in TRACEBACK_MARKS:
        assert mark not in text, (name, text[:500])
    assert reply.status < 500, (name, reply.status, text[:500])
    if 400 <= reply.status < 500:
        assert reply.headers.get("content-type", "").startswith("application/problem+json"), (name, reply.headers)


# The session's actors and accounts ---------------------------------------------------------


def b64(data: str | bytes) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.fixture(scope="module")
def ctx(twin_url: str) -> Ctx:
    user, other, boss = new_user(twin_url), new_user(twin_url), admin(twin_url)
    opened = {name: user.post("/v1/accounts", {"currency": cur}).body["id"] for name, cur in _ACCOUNTS}
    fund(boss, opened["src"], "1000.00")
    fund(boss, opened["usdc_src"], "100.0000000")
    posted = user.post(
        "/v1/transfers",
        {"from_account_id": opened["src"], "to_account_id": opened["dst"], "amount": "1.00", "currency": "USD"},
        key=True,
    )
    assert posted.status == 201, posted
    hold = user.post(
        "/v1/transfers",
        {
            "from_account_id": opened["src"],
            "to_account_id": opened["dst"],
            "amount": "5.00",
            "currency": "USD",
            "hold": {"timeout_seconds": 3600},
        },
        key=True,
    )
    assert hold.status == 201, hold
    # The ledger limit: one PEN account filled to 2^256 - 1 base units (and the PEN world account
    # with it, on its debit side).
    full = boss.post(
        "/v1/admin/deposits", {"account_id": opened["pen_full"], "amount": format_units(MAX_UNITS, "PEN")}, key=True
    )
    assert full.status == 201, full
    accounts_page = user.get("/v1/accounts?limit=1")
    entries_page = user.get(f"/v1/accounts/{opened['src']}/entries?limit=1")
    transfers_page = user.get("/v1/transfers?limit=1")
    for page in (accounts_page, entries_page, transfers_page):
        assert page.status == 200, page
        assert page.body["next_cursor"], page
    return {
        **opened,
        "base": twin_url,
        "token": user.token,
        "other_token": other.token,
        "admin_token": boss.token,
        "hold": hold.body["id"],
        "accounts_cursor": accounts_page.body["next_cursor"],
        "entries_cursor": entries_page.body["next_cursor"],
        "transfers_cursor": transfers_page.body["next_cursor"],
    }


_ACCOUNTS = (
    ("src", "USD"),
    ("dst", "USD"),
    ("usdc_src", "USDC"),
    ("usdc_dst", "USDC"),
    ("pen_full", "PEN"),
    ("pen_other", "PEN"),
)


# The table -----------------------------------------------------------------------------------

NOBODY = object()


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    path: str  # formatted with the ctx: {src}, {hold}, {accounts_cursor}…
    status: int
    slug: str | None  # None: a success, no problem
    body: Body | None = None  # a JSON value from the ctx
    raw: bytes | None = None  # or exactly these bytes (with a JSON Content-Type unless given)
    headers: tuple[tuple[str, str | bytes], ...] = ()
    who: str = "token"  # token | other_token | admin_token | nobody
    key: bool = True  # an Idempotency-Key on POSTs, unless the headers carry one
    field_: str | None = None  # a field errors[] must name
    extra: dict[str, Any] = field(default_factory=dict)


def transfer(**changes: Any) -> Body:
    def make(ctx: Ctx) -> dict[str, Any]:
        body: dict[str, Any] = {
            "from_account_id": ctx["src"],
            "to_account_id": ctx["dst"],
            "amount": "0.01",
            "currency": "USD",
        }
        for key, value in changes.items():
            body[key] = value(ctx) if callable(value) else value
        return body

    return make


def usdc(amount: str) -> Body:
    return transfer(
        from_account_id=lambda c: c["usdc_src"], to_account_id=lambda c: c["usdc_dst"], amount=amount, currency="USDC"
    )


def deposit(account: str, amount: str) -> Body:
    return lambda c: {"account_id": c[account], "amount": amount}


def batch(*items: Body) -> Body:
    return lambda c: {"transfers": [item(c) for item in items]}


def raw_transfer(amount_literal: str) -> bytes:
    """A transfer body (the ids are filled at run time) with a raw JSON literal as amount."""
    return (
        '{"from_account_id":"{src}","to_account_id":"{dst}","currency":"USD","amount":' + amount_literal + "}"
    ).encode()


def nested(depth: int, inner: str = "1") -> str:
    return "[" * depth + inner + "]" * depth


def deep_hold(depth: int) -> bytes:
    """A transfer whose ``hold`` nests so that the document is ``depth`` levels deep."""
    return (
        '{"from_account_id":"{src}","to_account_id":"{dst}","amount":"0.01","currency":"USD","hold":'
        + nested(depth - 1)
        + "}"
    ).encode()


def quote_body(**changes: Any) -> Body:
    body = {
        "ramp_type": "on",
        "from": "pix",
        "to": "base",
        "input_amount": "100.00",
        "input_currency": "BRL",
        "output_currency": "USDC",
    }
    return lambda c: {**body, **changes}


def raw_quote(amount_literal: str) -> bytes:
    return (
        '{"ramp_type":"on","from":"pix","to":"base","input_currency":"BRL","output_currency":"USDC","input_amount":'
        + amount_literal
        + "}"
    ).encode()


def register(**changes: Any) -> Body:
    body = {
        "quote_id": "qt_" + "0" * 32,
        "signing_accounts": [{"network": "base", "address": "0x" + "2" * 40, "role": "ephemeral"}],
        "destination": {"address": "0x" + "3" * 40},
        "payer": {"tax_id": "52998224725", "name": "Ana"},
    }
    return lambda c: {**body, **changes}


USD_BEYOND = format_units(MAX_UNITS + 1, "USD")
JSON_CT = ("Content-Type", "application/json")
T, B, D, A = "/v1/transfers", "/v1/transfers/batch", "/v1/admin/deposits", "/v1/accounts"
Q, R = "/v1/quotes", "/v1/ramps"
V, M, L, U, N = "validation-error", "malformed-request", "limit-exceeded", "unknown-account", "not-found"
FORGED_TAG = b64(b"\x00" * 16)

CASES: list[Case] = [
    # huge numbers: number literals past 100 characters never reach json.loads
    Case("amount number of 5000 digits", "POST", T, 400, M, raw=raw_transfer("9" * 5000), field_="/"),
    Case("amount number of 101 digits", "POST", T, 400, M, raw=raw_transfer("9" * 101), field_="/"),
    Case(
        "amount number of 100 digits is a number, not a string",
        "POST",
        T,
        422,
        V,
        raw=raw_transfer("9" * 100),
        field_="/amount",
    ),
    Case("negative number of 4301 digits", "POST", T, 400, M, raw=raw_transfer("-" + "1" * 4301)),
    Case("fraction of 200 digits", "POST", T, 400, M, raw=raw_transfer("0." + "0" * 200 + "1")),
    Case("exponent of 200 digits", "POST", T, 400, M, raw=raw_transfer("1e" + "9" * 200)),
    Case(
        "float overflow 1e400 in a timeout",
        "POST",
        T,
        422,
        V,
        raw=raw_transfer('"0.01","hold":{"timeout_seconds":1e400}'),
        field_="/hold/timeout_seconds",
    ),
    Case(
        "timeout of 51 digits",
        "POST",
        T,
        422,
        V,
        body=transfer(hold={"timeout_seconds": 10**50}),
        field_="/hold/timeout_seconds",
    ),
    Case(
        "5000-digit number in an extra field",
        "POST",
        A,
        400,
        M,
        raw=('{"currency":"USD","x":' + "7" * 5000 + "}").encode(),
    ),
    Case(
        "5000-digit number deep in a batch",
        "POST",
        B,
        400,
        M,
        raw=('{"transfers":[{"amount":' + "1" * 5000 + "}]}").encode(),
    ),
    Case(
        "amount string of 5000 digits (over the schema's 100)",
        "POST",
        T,
        422,
        V,
        body=transfer(amount="9" * 5000),
        field_="/amount",
    ),
    # amounts beyond 2^256 - 1 base units
    Case("amount of 100 nines", "POST", T, 422, L, body=transfer(amount="9" * 100), field_="/amount"),
    Case("amount of 2^256 base units", "POST", T, 422, L, body=transfer(amount=USD_BEYOND), field_="/amount"),
    Case(
        "amount 10^77 with leading zeros",
        "POST",
        T,
        422,
        L,
        body=transfer(amount="000" + "1" + "0" * 77),
        field_="/amount",
    ),
    Case(
        "batch item beyond the limit",
        "POST",
        B,
        422,
        L,
        body=batch(transfer(), transfer(amount=USD_BEYOND)),
        field_="/transfers/1/amount",
    ),
    Case(
        "deposit beyond the limit",
        "POST",
        D,
        422,
        L,
        body=deposit("dst", USD_BEYOND),
        who="admin_token",
        field_="/amount",
    ),
    Case(
        "post a hold with an amount beyond the limit",
        "POST",
        T + "/{hold}/post",
        422,
        L,
        body=lambda c: {"amount": "9" * 90},
        field_="/amount",
    ),
    Case(
        "deposit past a full balance",
        "POST",
        D,
        422,
        L,
        body=deposit("pen_full", "0.000000000001"),
        who="admin_token",
        field_="/amount",
    ),
    Case(
        "deposit past the full world account",
        "POST",
        D,
        422,
        L,
        body=deposit("pen_other", "1"),
        who="admin_token",
        field_="/amount",
    ),
    Case(
        "spending from a full account works",
        "POST",
        T,
        201,
        None,
        body=transfer(
            from_account_id=lambda c: c["pen_full"], to_account_id=lambda c: c["pen_other"], currency="PEN", amount="1"
        ),
    ),
    # Spent from, the full account's credit side stays full: the limit holds each side the ledger stores.
    Case(
        "transfer back into a full balance",
        "POST",
        T,
        422,
        L,
        body=transfer(
            from_account_id=lambda c: c["pen_other"], to_account_id=lambda c: c["pen_full"], currency="PEN", amount="1"
        ),
        who="admin_token",
    ),
    # too many decimals, trailing zeros included (API.md: more decimals than the scale → 422)
    Case("USD with three decimals of zeros", "POST", T, 422, V, body=transfer(amount="1.000"), field_="/amount"),
    Case("USDC 1.000000000 (scale 7)", "POST", T, 422, V, body=usdc("1.000000000"), field_="/amount"),
    Case("USDC 1.0000000 is exactly the scale", "POST", T, 201, None, body=usdc("1.0000000")),
    Case("deposit 1.000 USD", "POST", D, 422, V, body=deposit("dst", "1.000"), who="admin_token", field_="/amount"),
    Case(
        "post a hold with 0.500",
        "POST",
        T + "/{hold}/post",
        422,
        V,
        body=lambda c: {"amount": "0.500"},
        field_="/amount",
    ),
    Case(
        "batch item with 0.010", "POST", B, 422, V, body=batch(transfer(amount="0.010")), field_="/transfers/0/amount"
    ),
    # deep nesting: checked by a scan before parsing
    Case("nesting 33 levels", "POST", T, 400, M, raw=deep_hold(33), field_="/"),
    Case("nesting 32 levels is JSON (the hold is no object)", "POST", T, 422, V, raw=deep_hold(32), field_="/hold"),
    Case("nesting 1000 levels", "POST", T, 400, M, raw=deep_hold(1000)),
    Case("nesting 100000 levels", "POST", T, 400, M, raw=nested(100_000).encode()),
    Case("objects nested 5000 levels", "POST", A, 400, M, raw=('{"a":' * 5000 + "1" + "}" * 5000).encode()),
    Case("100000 opening brackets, never closed", "POST", A, 400, M, raw=b"[" * 100_000),
    # invalid UTF-8 and lone surrogates
    Case("latin-1 bytes", "POST", A, 400, M, raw='{"currency":"USD","name":"café"}'.encode("latin-1"), field_="/"),
    Case("overlong encoding of /", "POST", A, 400, M, raw=b'{"currency":"USD","name":"\xc0\xaf"}'),
    Case("UTF-8 encoded surrogate", "POST", A, 400, M, raw=b'{"currency":"USD","name":"\xed\xa0\x80"}'),
    Case("truncated multibyte character", "POST", A, 400, M, raw=b'{"currency":"USD","name":"\xe2\x82"}'),
    Case("UTF-16 body", "POST", A, 400, M, raw='{"currency":"USD"}'.encode("utf-16")),
    Case("UTF-8 byte order mark", "POST", A, 400, M, raw=b'\xef\xbb\xbf{"currency":"USD"}'),
    Case(
        "lone high surrogate escape in a value",
        "POST",
        A,
        400,
        M,
        raw=b'{"currency":"USD","name":"\\ud800"}',
        field_="/",
    ),
    Case("lone low surrogate escape in a key", "POST", A, 400, M, raw=b'{"currency":"USD","\\udc00":"x"}'),
    Case("a surrogate pair is one character", "POST", A, 201, None, raw=b'{"currency":"USD","name":"\\ud83d\\ude00"}'),
    # control characters and strict JSON
    Case("raw control character in a string", "POST", A, 400, M, raw=b'{"currency":"USD","name":"a\x01b"}'),
    Case(
        "escaped NUL in a name",
        "POST",
        A,
        422,
        V,
        body=lambda c: {"currency": "USD", "name": "a\u0000b"},
        field_="/name",
    ),
    Case("NaN literal", "POST", T, 400, M, raw=raw_transfer("NaN")),
    Case("Infinity literal", "POST", T, 400, M, raw=raw_transfer("-Infinity")),
    Case("duplicate key", "POST", A, 400, M, raw=b'{"currency":"USD","currency":"EUR"}'),
    Case("control characters in a cursor", "GET", A + "?cursor=%01%02%7f", 422, V, field_="query:cursor"),
    Case("NUL in an account_id query", "GET", T + "?account_id=%00", 404, N, field_="query:account_id"),
    Case("NUL after a limit", "GET", A + "?limit=5%00", 422, V, field_="query:limit"),
    Case(
        "control character in Idempotency-Key",
        "POST",
        T,
        422,
        V,
        body=transfer(),
        headers=(("Idempotency-Key", "abc\x01def"),),
        field_="header:Idempotency-Key",
    ),
    Case(
        "control character in Authorization",
        "GET",
        A,
        401,
        "unauthorized",
        headers=(("Authorization", "Bearer \x01\x02"),),
        who="nobody",
    ),
    Case("control character in X-Correlation-Id", "GET", A, 200, None, headers=(("X-Correlation-Id", "a\x01b"),)),
    # huge strings and giant ids in paths and queries
    Case("account id 10^40", "GET", A + "/1" + "0" * 40, 404, N, field_="path:id"),
    Case("account id of 10000 digits", "GET", A + "/" + "9" * 10_000, 404, N, field_="path:id"),
    Case("transfer id past bigint", "GET", T + "/9223372036854775808", 404, N, field_="path:id"),
    Case("negative transfer id", "GET", T + "/-1", 404, N, field_="path:id"),
    Case("entries of an account id of 5000 characters", "GET", A + "/" + "x" * 5000 + "/entries", 404, N),
    Case("post a hold with id 10^40", "POST", T + "/1" + "0" * 40 + "/post", 404, N, body=lambda c: {}),
    Case("account_id query of 40 digits", "GET", T + "?account_id=" + "9" * 40, 404, N, field_="query:account_id"),
    Case(
        "account_id query of 10000 digits", "GET", T + "?account_id=" + "9" * 10_000, 422, V, field_="query:account_id"
    ),
    Case(
        "to_account_id of 40 digits", "POST", T, 422, U, body=transfer(to_account_id="9" * 40), field_="/to_account_id"
    ),
    Case(
        "to_account_id of 10000 characters",
        "POST",
        T,
        422,
        V,
        body=transfer(to_account_id="9" * 10_000),
        field_="/to_account_id",
    ),
    Case(
        "deposit to account 10^39",
        "POST",
        D,
        422,
        U,
        body=lambda c: {"account_id": "1" + "0" * 39, "amount": "1.00"},
        who="admin_token",
        field_="/account_id",
    ),
    Case(
        "reference of 10000 characters", "POST", T, 422, V, body=transfer(reference="r" * 10_000), field_="/reference"
    ),
    Case(
        "account name of 200000 characters",
        "POST",
        A,
        422,
        V,
        body=lambda c: {"currency": "USD", "name": "n" * 200_000},
        field_="/name",
    ),
    Case("extra key of 10000 characters", "POST", A, 422, V, body=lambda c: {"currency": "USD", "k" * 10_000: 1}),
    Case("limit of 10000 digits", "GET", A + "?limit=" + "9" * 10_000, 422, V, field_="query:limit"),
    # cursors: only what the server issued, for this list and caller
    Case("garbage cursor", "GET", A + "?cursor=%25%25%25", 422, V, field_="query:cursor"),
    Case("unsigned base64 number (the old format)", "GET", A + "?cursor=" + b64("42"), 422, V, field_="query:cursor"),
    Case("base64 number out of bigint range", "GET", A + "?cursor=" + b64("9" * 30), 422, V, field_="query:cursor"),
    Case("forged signature", "GET", A + "?cursor=" + b64("1") + "." + FORGED_TAG, 422, V, field_="query:cursor"),
    Case(
        "forged, out of range",
        "GET",
        T + "?cursor=" + b64("99999999999999999999") + "." + FORGED_TAG,
        422,
        V,
        field_="query:cursor",
    ),
    Case("cursor of 5000 characters", "GET", A + "?cursor=" + "A" * 5000, 422, V, field_="query:cursor"),
    Case("non-ASCII cursor", "GET", A + "?cursor=" + quote("é.é"), 422, V, field_="query:cursor"),
    Case(
        "accounts cursor on the transfers list", "GET", T + "?cursor={accounts_cursor}", 422, V, field_="query:cursor"
    ),
    Case(
        "another caller's cursor",
        "GET",
        A + "?cursor={accounts_cursor}",
        422,
        V,
        who="other_token",
        field_="query:cursor",
    ),
    Case(
        "another account's entries cursor",
        "GET",
        A + "/{dst}/entries?cursor={entries_cursor}",
        422,
        V,
        field_="query:cursor",
    ),
    Case("the issued cursor works", "GET", A + "?cursor={accounts_cursor}", 200, None),
    Case("the issued transfers cursor works", "GET", T + "?cursor={transfers_cursor}", 200, None),
    # header abuse
    Case(
        "Idempotency-Key of 256 characters",
        "POST",
        T,
        422,
        V,
        body=transfer(),
        headers=(("Idempotency-Key", "k" * 256),),
        field_="header:Idempotency-Key",
    ),
    Case(
        "Idempotency-Key of 8000 characters",
        "POST",
        T,
        422,
        V,
        body=transfer(),
        headers=(("Idempotency-Key", "k" * 8000),),
        field_="header:Idempotency-Key",
    ),
    Case(
        "non-ASCII Idempotency-Key",
        "POST",
        T,
        422,
        V,
        body=transfer(),
        headers=(("Idempotency-Key", "clé-ü".encode()),),
        field_="header:Idempotency-Key",
    ),
    Case(
        "empty Idempotency-Key",
        "POST",
        T,
        400,
        "idempotency-key-required",
        body=transfer(),
        headers=(("Idempotency-Key", ""),),
    ),
    Case(
        "two Content-Types that disagree",
        "POST",
        A,
        415,
        "unsupported-media-type",
        body=lambda c: {"currency": "USD"},
        headers=(JSON_CT, ("Content-Type", "text/plain")),
    ),
    Case(
        "the same Content-Type twice",
        "POST",
        A,
        201,
        None,
        body=lambda c: {"currency": "USD"},
        headers=(JSON_CT, JSON_CT),
    ),
    Case(
        "JSON in latin-1",
        "POST",
        A,
        415,
        "unsupported-media-type",
        body=lambda c: {"currency": "USD"},
        headers=(("Content-Type", "application/json; charset=latin-1"),),
    ),
    Case(
        "JSON in UTF-8, said so",
        "POST",
        A,
        201,
        None,
        body=lambda c: {"currency": "USD"},
        headers=(("Content-Type", "application/json; charset=UTF-8"),),
    ),
    Case(
        "application/jsonx",
        "POST",
        A,
        415,
        "unsupported-media-type",
        body=lambda c: {"currency": "USD"},
        headers=(("Content-Type", "application/jsonx"),),
    ),
    Case("X-Correlation-Id of 8000 characters", "GET", A, 200, None, headers=(("X-Correlation-Id", "c" * 8000),)),
    Case("non-ASCII X-Correlation-Id", "GET", A, 200, None, headers=(("X-Correlation-Id", "é€".encode()),)),
    Case(
        "Authorization of 8000 characters",
        "GET",
        A,
        401,
        "unauthorized",
        headers=(("Authorization", "Bearer " + "a" * 8000),),
        who="nobody",
    ),
    Case(
        "non-ASCII bearer token",
        "GET",
        A,
        401,
        "unauthorized",
        headers=(("Authorization", "Bearer é.€.ü".encode()),),
        who="nobody",
    ),
    Case(
        "forged three-part token",
        "GET",
        A,
        401,
        "unauthorized",
        headers=(("Authorization", "Bearer " + b64("{}") + "." + b64("{}") + ".x"),),
        who="nobody",
    ),
    Case("non-ASCII X-Api-Key", "GET", A, 401, "unauthorized", headers=(("X-Api-Key", "ключ".encode()),), who="nobody"),
    Case(
        "media type in capitals",
        "POST",
        A,
        201,
        None,
        body=lambda c: {"currency": "USD"},
        headers=(("Content-Type", "Application/JSON; Charset=UTF-8"),),
    ),
    Case(
        "empty body as text/plain",
        "POST",
        A,
        415,
        "unsupported-media-type",
        raw=b"",
        headers=(("Content-Type", "text/plain"),),
    ),
    Case("empty body as JSON", "POST", A, 400, M, raw=b""),
    # numbers where strings belong, and the reverse
    Case("currency as a number", "POST", A, 422, V, body=lambda c: {"currency": 840}, field_="/currency"),
    Case(
        "account id as a number",
        "POST",
        T,
        422,
        V,
        body=transfer(from_account_id=lambda c: int(c["src"])),
        field_="/from_account_id",
    ),
    Case("reference as a number", "POST", T, 422, V, body=transfer(reference=12345), field_="/reference"),
    Case("amount as a float", "POST", T, 422, V, body=transfer(amount=0.1), field_="/amount"),
    Case(
        "timeout as a float",
        "POST",
        T,
        422,
        V,
        body=transfer(hold={"timeout_seconds": 60.0}),
        field_="/hold/timeout_seconds",
    ),
    Case(
        "timeout as a string",
        "POST",
        T,
        422,
        V,
        body=transfer(hold={"timeout_seconds": "60"}),
        field_="/hold/timeout_seconds",
    ),
    Case("name as a number", "POST", A, 422, V, body=lambda c: {"currency": "USD", "name": 7}, field_="/name"),
    Case("limit as a decimal", "GET", A + "?limit=1.5", 422, V, field_="query:limit"),
    # booleans, null and arrays where objects belong
    Case("null body", "POST", A, 400, M, raw=b"null"),
    Case("true body", "POST", A, 400, M, raw=b"true"),
    Case("number body", "POST", A, 400, M, raw=b"42"),
    Case("array body", "POST", T, 400, M, raw=b"[]"),
    Case("batch transfers as an object", "POST", B, 422, V, body=lambda c: {"transfers": {}}, field_="/transfers"),
    Case("batch item null", "POST", B, 422, V, body=lambda c: {"transfers": [None]}),
    Case("batch item an array", "POST", B, 422, V, body=lambda c: {"transfers": [[]]}),
    Case("hold as an array", "POST", T, 422, V, body=transfer(hold=[]), field_="/hold"),
    Case("hold as true", "POST", T, 422, V, body=transfer(hold=True), field_="/hold"),
    Case("currency as null", "POST", A, 422, V, body=lambda c: {"currency": None}, field_="/currency"),
    Case("currency as an object", "POST", A, 422, V, body=lambda c: {"currency": {"code": "USD"}}, field_="/currency"),
    Case("amount as an array", "POST", T, 422, V, body=transfer(amount=["1.00"]), field_="/amount"),
    # the ramps (API.md, "Ramps"): quotes, registrations, pre-signed items, ids, cursors
    Case("quote input of 5000 digits", "POST", Q, 400, M, raw=raw_quote("9" * 5000), field_="/"),
    Case("quote input as a number", "POST", Q, 422, V, raw=raw_quote("100"), field_="/input_amount"),
    Case(
        "quote input of 100 nines", "POST", Q, 422, V, body=quote_body(input_amount="9" * 100), field_="/input_amount"
    ),
    Case(
        "quote input of 101 digits", "POST", Q, 422, V, body=quote_body(input_amount="9" * 101), field_="/input_amount"
    ),
    Case("quote input with 3 decimals of BRL", "POST", Q, 422, V, body=quote_body(input_amount="10.001")),
    Case("quote from as an object", "POST", Q, 422, V, body=quote_body(**{"from": {"x": 1}}), field_="/from"),
    Case("quote unknown rail", "POST", Q, 422, "unsupported-corridor", body=quote_body(**{"from": "ted"})),
    Case("quote with NUL in a currency", "POST", Q, 422, V, body=quote_body(input_currency="BR\u0000L")),
    Case("quote nested 40 deep", "POST", Q, 400, M, raw=('{"ramp_type":' + nested(39) + "}").encode()),
    Case("quote not UTF-8", "POST", Q, 400, M, raw=b'{"ramp_type":"on","from":"\xff\xfe"}'),
    Case("quote id of 10000 characters", "GET", "/v1/quotes/qt_" + "a" * 10_000, 404, N, who="nobody"),
    Case("quote id with a NUL", "GET", "/v1/quotes/qt_%00", 404, N, who="nobody"),
    Case("ramp id of 10000 characters", "GET", "/v1/ramps/rmp_" + "f" * 10_000, 404, N),
    Case("ramp id in unicode", "GET", "/v1/ramps/" + quote("rmp_ü"), 404, N),
    Case("start of a giant ramp id", "POST", "/v1/ramps/rmp_" + "0" * 5000 + "/start", 404, N),
    Case(
        "ramps forged cursor", "GET", "/v1/ramps?cursor=" + FORGED_TAG + "." + FORGED_TAG, 422, V, field_="query:cursor"
    ),
    Case("ramps status unknown", "GET", "/v1/ramps?status=lost", 422, V, field_="query:status"),
    Case("register with a giant quote id", "POST", R, 422, V, body=register(quote_id="qt_" + "a" * 5000)),
    Case("register an unknown quote", "POST", R, 422, "unknown-quote", body=register(), field_="/quote_id"),
    Case(
        "register with 1000 signing accounts",
        "POST",
        R,
        422,
        V,
        body=register(signing_accounts=[{"network": "base", "address": "0x" + "1" * 40, "role": "ephemeral"}] * 1_000),
        field_="/signing_accounts",
    ),
    Case(
        "register with a nonce of 100 digits in an account",
        "POST",
        R,
        422,
        V,
        body=register(signing_accounts=[{"network": "base", "address": 10**99, "role": "ephemeral"}]),
        field_="/signing_accounts/0/address",
    ),
    Case(
        "presigned with a nonce beyond 2^64",
        "POST",
        "/v1/ramps/rmp_" + "0" * 32 + "/presigned",
        422,
        V,
        body=lambda c: {
            "presigned_txs": [{"network": "base", "phase": "swap", "nonce": 2**64, "signer": "0x1", "tx_data": "0x00"}]
        },
        field_="/presigned_txs/0/nonce",
    ),
    Case(
        "presigned with 1 MB of tx_data",
        "POST",
        "/v1/ramps/rmp_" + "0" * 32 + "/presigned",
        413,
        "payload-too-large",
        body=lambda c: {
            "presigned_txs": [
                {"network": "base", "phase": "swap", "nonce": 0, "signer": "0x1", "tx_data": "0x" + "ab" * 500_000}
            ]
        },
    ),
]


def _request(case: Case, ctx: Ctx) -> tuple[str, bytes | None, list[tuple[str, str | bytes]]]:
    fill = {k: v for k, v in ctx.items() if isinstance(v, str)}
    path = case.path.format(**fill) if "{" in case.path else case.path
    headers: list[tuple[str, str | bytes]] = [("Accept", "application/json")]
    if case.who != "nobody":
        headers.append(("Authorization", f"Bearer {ctx[case.who]}"))
    named = {name.lower() for name, _ in case.headers}
    body: bytes | None = None
    if case.raw is not None:
        body = case.raw
        for key, value in fill.items():  # the raw bodies' placeholders, without touching their bytes
            body = body.replace(("{" + key + "}").encode(), value.encode())
    elif case.body is not None:
        body = json.dumps(case.body(ctx)).encode()
    if body is not None and "content-type" not in named:
        headers.append(JSON_CT)
    if case.method == "POST" and case.key and "idempotency-key" not in named:
        headers.append(("Idempotency-Key", uuid.uuid4().hex))
    headers += list(case.headers)
    return path, body, headers


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile(ctx: Ctx, case: Case) -> None:
    path, body, headers = _request(case, ctx)
    reply = send(ctx["base"], case.method, path, body, headers)
    check_reply(case.name, reply)
    assert (reply.status, reply.problem) == (case.status, case.slug), (case.name, reply.status, reply.raw[:600])
    if case.field_ is not None:
        assert case.field_ in reply.fields, (case.name, reply.fields)
    if case.slug == M:
        assert reply.body["errors"][0]["field"] == "/", reply.body


def test_a_refused_limit_moves_nothing(ctx: Ctx) -> None:
    full = Client(ctx["base"], token=ctx["token"]).get(f"/v1/accounts/{ctx['pen_full']}")
    balance = full.body["balance"]
    # Filled to the limit; at most the 1 PEN of the "spending" row has left it since.
    assert balance["posted"] in (format_units(MAX_UNITS, "PEN"), format_units(MAX_UNITS - 10**12, "PEN")), balance
    assert balance["pending_credits"] == balance["pending_debits"] == "0.000000000000"


def test_the_table_is_large_and_never_leaks_a_traceback(ctx: Ctx) -> None:
    assert len(CASES) >= 60
    assert len({c.name for c in CASES}) == len(CASES)
    assert SEEN, "the table ran in this process"
    for name, reply in SEEN:
        clean(name, reply)
