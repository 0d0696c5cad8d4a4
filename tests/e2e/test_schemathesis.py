"""schemathesis against the twin's own ``/openapi.json`` (issue 3, Tests): every operation, as a
user and as an admin with funded accounts, positive and negative cases. At least 500 cases, at
least 100 answered 2xx, no 5xx, and no reply that breaks the document (status code, content type,
body schema, documented headers).

Cases come from schemathesis' Hypothesis strategies (``APIOperation.as_strategy``), seeded
(``derandomize``) and without shrinking: nothing raises inside the run, every outcome is tallied
and asserted on at the end, so one report lists every failure at once. Most positive cases are
made *realistic* before they are sent — the caller's real account and transfer ids, a held
transfer to post or void, a matching currency, a small amount, a fresh refresh token — so that
money-moving routes succeed as well as fail; the rest go out as generated. A money-moving POST
gets a fresh ``Idempotency-Key`` (the document requires one) unless a negative case left it out.

``RAMPART_SCHEMATHESIS_SCALE=10`` multiplies the examples for a deeper run.
"""

from __future__ import annotations

import contextlib
import os
import random
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.e2e.api import ADMIN_EMAIL, ADMIN_PASSWORD, Client, admin, fund, new_user

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
SCALE = float(os.environ.get("RAMPART_SCHEMATHESIS_SCALE", "1"))
# Examples per operation, principal and mode. An operation without parameters (GET /health,
# GET /v1/me) has one positive case and no negative one; the others make up for them.
EXAMPLES = {GenerationMode.POSITIVE: round(10 * SCALE), GenerationMode.NEGATIVE: round(6 * SCALE)}
REALISTIC = 0.7  # the share of positive cases given real ids, amounts and tokens
SEED = 20240611
MIN_CASES, MIN_2XX = 500, 100
USER_PASSWORD = "correct horse battery staple"  # what tests.e2e.api.new_user registers
MONEY_ROUTES = ("POST /v1/transfers", "POST /v1/transfers/batch")


@dataclass
class Principal:
    name: str
    client: Client
    email: str
    password: str
    own_usd: list[str]  # funded USD accounts it may debit
    payee_usd: list[str]  # USD accounts of someone else
    eur: str
    transfers: list[str] = field(default_factory=list)  # transfers it may read

    @property
    def auth(self) -> dict[str, str]:
        assert self.client.token
        return {"Authorization": f"Bearer {self.client.token}"}


@dataclass
class Tally:
    statuses: Counter[int] = field(default_factory=Counter)
    by_route: Counter[tuple[str, int]] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)

    @property
    def cases(self) -> int:
        return sum(self.statuses.values())

    def between(self, low: int, high: int) -> int:
        return sum(n for status, n in self.statuses.items() if low <= status < high)

    def summary(self) -> str:
        return (
            f"{self.cases} cases, {self.between(200, 300)} 2xx, {self.between(500, 600)} 5xx; "
            f"statuses {dict(sorted(self.statuses.items()))}"
        )


def _open(client: Client, currency: str) -> str:
    reply = client.post("/v1/accounts", {"currency": currency, "name": f"schemathesis {currency}"})
    assert reply.status == 201, reply
    return str(reply.body["id"])


def principals(twin_url: str) -> list[Principal]:
    """A user and the admin, each with three funded USD accounts and an EUR one; a payee."""
    root = admin(twin_url)
    payee = new_user(twin_url)
    payee_usd = [_open(payee, "USD") for _ in range(2)]
    user = new_user(twin_url)
    user_email = user.headers.pop("X-Test-Email")
    found = []
    for name, client, email, password in (
        ("user", user, user_email, USER_PASSWORD),
        ("admin", root, ADMIN_EMAIL, ADMIN_PASSWORD),
    ):
        own = [_open(client, "USD") for _ in range(3)]
        for account_id in own:
            fund(root, account_id, "5000.00")
        found.append(Principal(name, client, email, password, own, payee_usd, _open(client, "EUR")))
    return found


class World:
    """Real ids, small amounts and fresh tokens for realistic cases; one seeded random source."""

    def __init__(self, base: str, database_url: str | None = None) -> None:
        self.base = base
        self.database_url = database_url
        self.rng = random.Random(SEED)
        self.http = requests.Session()

    def amount(self) -> str:
        return f"{self.rng.randint(1, 100) / 100:.2f}"

    def transfer(self, who: Principal, generated: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "from_account_id": self.rng.choice(who.own_usd),
            "to_account_id": self.rng.choice(who.payee_usd),
            "amount": self.amount(),
            "currency": "USD",
        }
        generated = generated if isinstance(generated, dict) else {}
        if "reference" in generated:
            body["reference"] = f"schemathesis-{uuid.uuid4().hex}"
        if "hold" in generated:
            body["hold"] = {"timeout_seconds": self.rng.randint(60, 3600)}
        return body

    def hold(self, who: Principal) -> str:
        reply = who.client.post("/v1/transfers", self.transfer(who, {"hold": {}}), key=True)
        assert reply.status == 201, reply
        return str(reply.body["id"])

    def refresh_token(self, who: Principal) -> str:
        reply = Client(self.base).post("/v1/auth/login", {"email": who.email, "password": who.password})
        assert reply.status == 200, reply
        return str(reply.body["refresh_token"])

    def realistic(self, case: Case[Any], who: Principal) -> None:
        """Turn a positive case into one that can succeed."""
        method, path = case.operation.method.upper(), case.operation.path
        body = case.body if isinstance(case.body, dict) else {}
        query = {k: v for k, v in (case.query or {}).items() if k == "limit"}  # no made-up cursors
        if path in ("/v1/accounts/{id}", "/v1/accounts/{id}/entries"):
            case.path_parameters = {"id": self.rng.choice([*who.own_usd, who.eur])}
            case.query = query
        elif path == "/v1/transfers/{id}" and who.transfers:
            case.path_parameters = {"id": self.rng.choice(who.transfers)}
        elif path in ("/v1/transfers/{id}/post", "/v1/transfers/{id}/void"):
            case.path_parameters = {"id": self.hold(who)}
            if path.endswith("/post"):
                bodies: list[Any] = [None, {}, {"amount": "0.01"}]  # the body is optional
                case.body = self.rng.choice(bodies)
        elif (method, path) == ("GET", "/v1/transfers"):
            if self.rng.random() < 0.5:
                query["account_id"] = self.rng.choice(who.own_usd)
            case.query = query
        elif (method, path) == ("GET", "/v1/accounts"):
            case.query = query
        elif (method, path) == ("POST", "/v1/accounts"):
            case.body = {**body, "currency": self.rng.choice(["USD", "EUR", "BRL"])}
        elif (method, path) == ("POST", "/v1/transfers"):
            case.body = self.transfer(who, body)
        elif path == "/v1/transfers/batch":
            items = body.get("transfers")
            count = min(len(items), 5) if isinstance(items, list) and items else 1
            case.body = {"transfers": [self.transfer(who, {}) for _ in range(count)]}
        elif path == "/v1/admin/deposits":
            case.body = {"account_id": self.rng.choice([*who.own_usd, *who.payee_usd]), "amount": self.amount()}
        elif path == "/v1/auth/register":
            email = f"schemathesis-{uuid.uuid4().hex[:12]}@example.com"
            case.body = {**body, "email": email, "password": USER_PASSWORD}
        elif path == "/v1/auth/login":
            case.body = {"email": who.email, "password": who.password}
        elif path in ("/v1/auth/refresh", "/v1/auth/logout"):
            case.body = {"refresh_token": self.refresh_token(who)}
        elif (method, path) == ("POST", "/v1/quotes"):
            case.body = dict(self.QUOTE)
        elif path == "/v1/quotes/{id}":
            case.path_parameters = {"id": self.quote(who)}
        elif (method, path) == ("POST", "/v1/ramps"):
            case.body = self.registration(who)[0]
        elif path in ("/v1/admin/ramps/{id}/resume", "/v1/admin/ramps/{id}/fail") and who.name == "admin":
            case.path_parameters = {"id": self.paused(who)}
        elif path in ("/v1/ramps/{id}", "/v1/ramps/{id}/cancel", "/v1/ramps/{id}/presigned", "/v1/ramps/{id}/start"):
            ramp, key = self.ramp(who)
            case.path_parameters = {"id": ramp["id"]}
            signed = [self.signed(tx, key) for tx in ramp["unsigned_txs"]]
            if path.endswith("/presigned"):
                case.body = {"presigned_txs": signed[: self.rng.randint(1, len(signed))]}
            elif path.endswith("/start"):
                reply = who.client.post(f"/v1/ramps/{ramp['id']}/presigned", {"presigned_txs": signed})
                assert reply.status == 200, reply

    QUOTE: ClassVar[dict[str, str]] = {
        "ramp_type": "on",
        "from": "pix",
        "to": "base",
        "input_amount": "100.00",
        "input_currency": "BRL",
        "output_currency": "USDC",
    }

    def quote(self, who: Principal) -> str:
        reply = who.client.post("/v1/quotes", dict(self.QUOTE))
        assert reply.status == 201, reply
        return str(reply.body["id"])

    def registration(self, who: Principal) -> tuple[dict[str, Any], Any]:
        """A valid registration body for a new quote, with a fresh ephemeral (and its key)."""
        from eth_account import Account

        ephemeral, destination = Account.create(), Account.create()
        body = {
            "quote_id": self.quote(who),
            "signing_accounts": [{"network": "base", "address": ephemeral.address, "role": "ephemeral"}],
            "destination": {"address": destination.address},
            "payer": {"tax_id": "52998224725", "name": "Maria Silva"},
        }
        return body, ephemeral.key

    def ramp(self, who: Principal) -> tuple[dict[str, Any], Any]:
        body, key = self.registration(who)
        reply = who.client.post("/v1/ramps", body, key=True)
        assert reply.status == 201, reply
        return reply.body, key

    def paused(self, who: Principal) -> str:
        """A started on-ramp paused by an outcome nobody knows (the mint's, planted in the journal as
        the journal records one), for an operator's resume or fail."""
        import psycopg

        from tests.support.waiting import eventually

        if self.database_url is None:
            return "rmp_" + "0" * 32  # no database to plant in: a 404, and no 2xx expected
        ramp, key = self.ramp(who)
        signed = [self.signed(tx, key) for tx in ramp["unsigned_txs"]]
        assert who.client.post(f"/v1/ramps/{ramp['id']}/presigned", {"presigned_txs": signed}).status == 200
        assert who.client.post(f"/v1/ramps/{ramp['id']}/start", key=True).status == 202
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO journal.operations (key, ramp_id, kind, request, request_hash, status, claim_id, "
                "lease_until) VALUES (%s, %s, 'mint', '{}', %s, 'unknown', %s, now())",
                (f"{ramp['id']}:mint:brla", ramp["id"], b"\x00" * 32, str(uuid.uuid4())),
            )
        assert Client(self.base).post("/_sim/pix/payments", {"ramp_id": ramp["id"]}).status == 200
        eventually(lambda: who.client.get(f"/v1/ramps/{ramp['id']}").body["status"] == "paused", timeout=60)
        return str(ramp["id"])

    @staticmethod
    def signed(tx: dict[str, Any], key: Any) -> dict[str, Any]:
        from eth_account import Account

        raw = Account.sign_transaction(tx["tx_data"], key).raw_transaction
        return {**{k: tx[k] for k in ("network", "phase", "nonce", "signer")}, "tx_data": "0x" + bytes(raw).hex()}


def exercise(world: World, tally: Tally, who: Principal, mode: GenerationMode) -> Callable[[Case[Any]], None]:
    def send(case: Case[Any]) -> None:
        route = f"{case.operation.method.upper()} {case.operation.path}"
        if mode is GenerationMode.POSITIVE and world.rng.random() < REALISTIC:
            world.realistic(case, who)
        if case.operation.get_parameter("Idempotency-Key", "header") is not None and (
            mode is GenerationMode.POSITIVE or "Idempotency-Key" in case.headers
        ):
            case.headers["Idempotency-Key"] = f"schemathesis-{uuid.uuid4().hex}"  # never a reuse by accident
        response = case.call(base_url=world.base, session=world.http, headers=who.auth, timeout=30)
        tally.statuses[response.status_code] += 1
        tally.by_route[(route, response.status_code)] += 1
        try:
            case.validate_response(response, checks=CHECKS, headers=who.auth)
        except FailureGroup as group:
            sent = case.as_curl_command(headers=who.auth)
            for failure in group.exceptions:
                tally.failures.append(
                    f"{who.name} {mode.value} {route} → {response.status_code}: {failure.title}: "
                    f"{failure.message[:600]}\n  sent: {sent[:600]}"
                )
            return
        if route in MONEY_ROUTES and response.status_code in (200, 201):
            reply = response.json()
            who.transfers.extend(str(t["id"]) for t in reply.get("items", [reply]))

    return send


def run(strategy: st.SearchStrategy[Case[Any]], examples: int, send: Callable[[Case[Any]], None]) -> None:
    @settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: nothing fails in here
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def each(case: Case[Any]) -> None:
        send(case)

    with contextlib.suppress(Unsatisfiable):  # nothing to break in an operation without parameters or body
        each()


def test_the_twin_conforms_to_its_openapi_document(twin_url: str, request: pytest.FixtureRequest) -> None:
    try:
        database_url: str | None = request.getfixturevalue("twin_database_url")
    except pytest.skip.Exception:
        database_url = None  # a twin that is already running: no paused ramps to resume
    schema = schemathesis.openapi.from_url(f"{twin_url}/openapi.json")
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result  # the document loads without an invalid operation
        operations.append(result.ok())
    assert len(operations) >= 18, [op.label for op in operations]
    world, tally = World(twin_url, database_url), Tally()
    for who in principals(twin_url):
        for operation in operations:
            for mode, examples in EXAMPLES.items():
                run(operation.as_strategy(generation_mode=mode), examples, exercise(world, tally, who, mode))

    print(tally.summary())
    for (route, status), count in sorted(tally.by_route.items()):
        print(f"  {route} {status}: {count}")
    assert not tally.failures, "\n\n".join([tally.summary(), *tally.failures[:40]])
    assert tally.between(500, 600) == 0, tally.summary()
    assert tally.cases >= MIN_CASES, tally.summary()
    assert tally.between(200, 300) >= MIN_2XX, tally.summary()
    served = {route for route, _ in tally.by_route}
    assert served == {op.label for op in operations}, "every operation was exercised"
    succeeded = {route for (route, status) in tally.by_route if 200 <= status < 300}
    if database_url is None:
        succeeded |= {"POST /v1/admin/ramps/{id}/resume", "POST /v1/admin/ramps/{id}/fail"}
    assert succeeded == served, f"never a 2xx: {sorted(served - succeeded)}"
