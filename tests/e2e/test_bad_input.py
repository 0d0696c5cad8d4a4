"""Bad input never gets a 500: each case answers the right problem slug naming the field."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.e2e.api import Client, admin, fund, new_user


@pytest.fixture(scope="module")
def ctx(twin_url: str) -> dict[str, Any]:
    user = new_user(twin_url)
    src = user.post("/v1/accounts", {"currency": "USD"}).body["id"]
    dst = user.post("/v1/accounts", {"currency": "USD"}).body["id"]
    fund(admin(twin_url), src, "100.00")
    return {"user": user, "src": src, "dst": dst}


def good(ctx: dict[str, Any], **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "from_account_id": ctx["src"],
        "to_account_id": ctx["dst"],
        "amount": "1.00",
        "currency": "USD",
    }
    for key, value in changes.items():
        if value is ...:
            body.pop(key)
        else:
            body[key] = value
    return body


MISSING = ...
CASES: list[tuple[str, dict[str, Any], int, str, str | None]] = [
    # (name, transfer body changes, status, slug, field)
    ("float amount", {"amount": 1.5}, 422, "validation-error", "/amount"),
    ("integer amount", {"amount": 10}, 422, "validation-error", "/amount"),
    ("excess decimals", {"amount": "1.001"}, 422, "validation-error", "/amount"),
    ("negative", {"amount": "-1.00"}, 422, "validation-error", "/amount"),
    ("zero", {"amount": "0"}, 422, "validation-error", "/amount"),
    ("zero with decimals", {"amount": "0.00"}, 422, "validation-error", "/amount"),
    ("NaN", {"amount": "NaN"}, 422, "validation-error", "/amount"),
    ("Infinity", {"amount": "Infinity"}, 422, "validation-error", "/amount"),
    ("exponent", {"amount": "1e3"}, 422, "validation-error", "/amount"),
    ("plus sign", {"amount": "+1.00"}, 422, "validation-error", "/amount"),
    ("comma decimal", {"amount": "1,00"}, 422, "validation-error", "/amount"),
    ("spaces", {"amount": " 1.00"}, 422, "validation-error", "/amount"),
    ("huge number", {"amount": "9" * 90}, 422, "limit-exceeded", "/amount"),
    ("unicode digits", {"amount": "١٢"}, 422, "validation-error", "/amount"),
    ("null amount", {"amount": None}, 422, "validation-error", "/amount"),
    ("missing amount", {"amount": MISSING}, 422, "validation-error", "/amount"),
    ("missing currency", {"currency": MISSING}, 422, "validation-error", "/currency"),
    ("missing source", {"from_account_id": MISSING}, 422, "validation-error", "/from_account_id"),
    ("numeric account id", {"from_account_id": 5}, 422, "validation-error", "/from_account_id"),
    ("unknown account", {"to_account_id": "999999999999"}, 422, "unknown-account", "/to_account_id"),
    ("non-numeric account", {"to_account_id": "acc_zzz"}, 422, "unknown-account", "/to_account_id"),
    ("unknown currency", {"currency": "DOGE"}, 422, "validation-error", "/currency"),
    ("wrong currency", {"currency": "EUR"}, 422, "currency-mismatch", "/currency"),
    ("extra field", {"memo": "hi"}, 422, "validation-error", "/memo"),
    ("hold timeout zero", {"hold": {"timeout_seconds": 0}}, 422, "validation-error", "/hold/timeout_seconds"),
    ("hold timeout too long", {"hold": {"timeout_seconds": 2592001}}, 422, "validation-error", "/hold/timeout_seconds"),
    ("hold timeout string", {"hold": {"timeout_seconds": "60"}}, 422, "validation-error", "/hold/timeout_seconds"),
    ("hold not an object", {"hold": 60}, 422, "validation-error", "/hold"),
    ("empty reference", {"reference": ""}, 422, "validation-error", "/reference"),
    ("long reference", {"reference": "r" * 201}, 422, "validation-error", "/reference"),
    ("unicode reference ok-length", {"reference": "ü" * 201}, 422, "validation-error", "/reference"),
    ("boolean amount", {"amount": True}, 422, "validation-error", "/amount"),
    ("NUL in reference", {"reference": "a\u0000b"}, 422, "validation-error", "/reference"),
    ("superscript digit account", {"to_account_id": "\u00b2"}, 422, "unknown-account", "/to_account_id"),
]


@pytest.mark.parametrize(("name", "changes", "status", "slug", "field"), CASES, ids=[c[0] for c in CASES])
def test_bad_transfer_bodies(
    ctx: dict[str, Any], name: str, changes: dict[str, Any], status: int, slug: str, field: str | None
) -> None:
    reply = ctx["user"].post("/v1/transfers", good(ctx, **changes), key=True)
    assert (reply.status, reply.problem) == (status, slug), reply
    assert field in reply.fields, reply.fields


RAW: list[tuple[str, bytes, dict[str, str], int, str]] = [
    ("malformed json", b"{not json", {"Content-Type": "application/json"}, 400, "malformed-request"),
    ("json array", b"[1, 2]", {"Content-Type": "application/json"}, 400, "malformed-request"),
    ("json string", b'"hello"', {"Content-Type": "application/json"}, 400, "malformed-request"),
    ("empty body", b"", {"Content-Type": "application/json"}, 400, "malformed-request"),
    (
        "wrong content type",
        json.dumps({"a": 1}).encode(),
        {"Content-Type": "text/plain"},
        415,
        "unsupported-media-type",
    ),
    ("form encoded", b"a=1", {"Content-Type": "application/x-www-form-urlencoded"}, 415, "unsupported-media-type"),
    (
        "oversized",
        b'{"x":"' + b"a" * (300 * 1024) + b'"}',
        {"Content-Type": "application/json"},
        413,
        "payload-too-large",
    ),
    ("not utf-8", b'{"amount": "\xff\xfe"}', {"Content-Type": "application/json"}, 400, "malformed-request"),
]


@pytest.mark.parametrize(("name", "raw", "headers", "status", "slug"), RAW, ids=[c[0] for c in RAW])
def test_bad_raw_bodies(
    ctx: dict[str, Any], name: str, raw: bytes, headers: dict[str, str], status: int, slug: str
) -> None:
    reply = ctx["user"].call("POST", "/v1/transfers", raw=raw, headers=headers, key=True)
    assert (reply.status, reply.problem) == (status, slug), reply


@pytest.mark.parametrize(
    ("path", "status", "slug", "field"),
    [
        ("/v1/accounts/999999999999", 404, "not-found", "path:id"),
        ("/v1/accounts/not-an-id", 404, "not-found", "path:id"),
        ("/v1/accounts/%C2%B2", 404, "not-found", "path:id"),  # "²" passes str.isdigit, not int
        ("/v1/transfers?account_id=%C2%B2", 404, "not-found", "query:account_id"),
        ("/v1/transfers/123456789012", 404, "not-found", "path:id"),
        ("/v1/transfers?limit=0", 422, "validation-error", "query:limit"),
        ("/v1/transfers?limit=101", 422, "validation-error", "query:limit"),
        ("/v1/transfers?limit=abc", 422, "validation-error", "query:limit"),
        ("/v1/accounts?cursor=%25%25", 422, "validation-error", "query:cursor"),
    ],
)
def test_bad_paths_and_queries(ctx: dict[str, Any], path: str, status: int, slug: str, field: str) -> None:
    reply: Client = ctx["user"]
    got = reply.get(path)
    assert (got.status, got.problem) == (status, slug), got
    assert field in got.fields, got.fields


def test_unknown_route_and_method(ctx: dict[str, Any]) -> None:
    user: Client = ctx["user"]
    assert user.get("/v1/nowhere").problem == "not-found"
    wrong = user.call("DELETE", "/v1/accounts")
    assert (wrong.status, wrong.problem) == (404, "not-found")
