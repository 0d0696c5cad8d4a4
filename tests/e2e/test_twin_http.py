"""The local twin over real HTTP: health, the gateway's own answers, the route table, concurrency."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from infra import manifest
from tests.e2e.api import Client


def test_health_is_ok_with_its_checks(client: Client) -> None:
    reply = client.get("/health")
    assert reply.status == 200, reply
    assert reply.body["status"] == "ok"
    assert reply.body["checks"]["postgres"] == "ok"
    assert reply.body["checks"]["dynamodb"] == "ok"
    assert reply.headers["x-correlation-id"]


def test_status_says_migrated_and_ready(twin_status: dict[str, Any]) -> None:
    assert twin_status["ready"] is True
    assert twin_status["checks"]["migrations"] == "ok"
    assert twin_status["checks"]["admin"] == "ok"
    assert set(twin_status["deployed"]) == {fn.name for fn in manifest.FUNCTIONS if fn.kind == "deploy"}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/nope"),
        ("GET", "/v1"),
        ("GET", "/v1/accounts/1/entries/2"),
        ("POST", "/v1/accounts/1/entries/"),
    ],
)
def test_unknown_route_is_a_not_found_problem(client: Client, method: str, path: str) -> None:
    reply = client.call(method, path)
    assert reply.status == 404, reply
    assert reply.problem == "not-found"
    assert reply.body["instance"] == path
    assert reply.body["correlation_id"] == reply.headers["x-correlation-id"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("DELETE", "/health"),
        ("PUT", "/v1/accounts"),
        ("PATCH", "/v1/accounts/1"),
        ("GET", "/v1/transfers/batch"),  # the resource /v1/transfers/batch wins over /{id}, and has POST only
        ("OPTIONS", "/v1/transfers"),
        ("TRACE", "/v1/accounts"),  # a method http.server has no handler for
    ],
)
def test_known_path_with_another_method_is_a_not_found_problem(client: Client, method: str, path: str) -> None:
    reply = client.call(method, path)
    assert reply.status == 404, reply
    assert reply.problem == "not-found"


def test_the_gateway_echoes_a_given_correlation_id(client: Client) -> None:
    given = f"test-{uuid.uuid4().hex}"
    for path in ("/nope", "/health"):
        reply = client.get(path, headers={"X-Correlation-Id": given})
        assert reply.headers["x-correlation-id"] == given


def test_protected_route_without_credentials_is_unauthorized(client: Client) -> None:
    reply = client.get("/v1/accounts")
    assert reply.status == 401, reply
    assert reply.problem == "unauthorized"


def test_protected_route_with_forged_token_is_unauthorized(client: Client) -> None:
    reply = client.get("/v1/accounts", headers={"Authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.e30.forged"})
    assert reply.status == 401, reply
    assert reply.problem == "unauthorized"


def test_a_body_over_api_gateways_limit_is_refused_before_any_function(twin_url: str) -> None:
    reply = requests.post(
        f"{twin_url}/v1/auth/login",
        data=b"x" * (10 * 1024 * 1024 + 1),
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert reply.status_code == 413
    assert reply.headers["content-type"].startswith("application/problem+json")
    assert reply.json()["type"] == "/problems/payload-too-large"


@pytest.mark.parametrize(
    ("raw", "content_type", "status", "slug"),
    [
        (b'{"email": "a@b.example", "password": "x"}', "text/plain", 415, "unsupported-media-type"),
        (b'{"email": "' + b"a" * (256 * 1024) + b'"}', "application/json", 413, "payload-too-large"),
        (b'{"email": ', "application/json", 400, "malformed-request"),
        (b"[1, 2]", "application/json", 400, "malformed-request"),
    ],
)
def test_bad_bodies_through_the_gateway_are_problems(
    client: Client, raw: bytes, content_type: str, status: int, slug: str
) -> None:
    reply = client.post("/v1/auth/login", raw=raw, headers={"Content-Type": content_type})
    assert reply.status == status, reply
    assert reply.problem == slug
    assert reply.headers["x-correlation-id"]


def test_route_table_is_the_manifest(client: Client) -> None:
    reply = client.get("/_twin/routes")
    assert reply.status == 200
    served = {(r["method"], r["path"]): (r["function"], r["auth"]) for r in reply.body}
    expected = {(r.method, r.path): (fn.name, r.auth) for r, fn in manifest.routes()}
    assert served == expected
    assert len(reply.body) == len(expected)


def test_triggers_are_the_manifest(client: Client) -> None:
    """What the twin runs, read back from it, in the shapes of the CDK read-back (test_parity)."""
    triggers = client.get("/_twin/triggers").body
    schedules = {(s["name"], s["rate"], s["function"]) for s in triggers["schedules"]}
    assert schedules == {(s.name, s.rate, s.function) for s in manifest.SCHEDULES}
    assert set(triggers["deploy"]) == {fn.name for fn in manifest.FUNCTIONS if fn.kind == "deploy"}
    expected_queues = {f"{fn.name}-dlq" for fn in manifest.FUNCTIONS if fn.asynchronous}
    for queue in manifest.QUEUES:
        expected_queues |= {queue.name, f"{queue.name}-dlq"}  # every queue has its DLQ
    if manifest.STATE_MACHINES:
        expected_queues.add("executions-dlq")  # failed, timed-out and aborted executions
    queues = {q["name"]: q for q in triggers["queues"]}
    assert set(queues) == expected_queues
    for fn in manifest.FUNCTIONS:
        if fn.asynchronous:
            assert queues[f"{fn.name}-dlq"]["dead_letter_queue_of"] == fn.name
    for queue in manifest.QUEUES:
        assert queues[f"{queue.name}-dlq"]["dead_letter_queue_of"] == queue.name
    tables = {t["name"]: (t["partition_key"], t["sort_key"], t["ttl_attribute"]) for t in triggers["tables"]}
    assert tables == {t.name: (t.partition_key, t.sort_key, t.ttl_attribute) for t in manifest.TABLES}
    assert {m["name"] for m in triggers["state_machines"]} == {sm.name for sm in manifest.STATE_MACHINES}
    assert {f["name"] for f in triggers["functions"]} == {fn.name for fn in manifest.FUNCTIONS}


def test_a_schedule_can_be_run_now(client: Client) -> None:
    reply = client.post("/_twin/schedules/ledger-sweep/run")
    assert reply.status == 200, reply
    assert reply.body["result"]["released"] >= 0
    assert client.post("/_twin/schedules/nope/run").status == 404


def test_twenty_parallel_requests_are_all_answered(twin_url: str) -> None:
    paths = ["/health", "/nope", "/v1/accounts", "/_twin/routes"] * 5

    def call(path: str) -> int:
        return Client(twin_url).get(path).status

    with ThreadPoolExecutor(max_workers=20) as pool:
        statuses = list(pool.map(call, paths))
    assert statuses == [200, 404, 401, 200] * 5


def test_parallel_requests_to_one_function_run_concurrently(twin_url: str) -> None:
    """Each concurrent request gets a container of its own: never another request's event."""
    ids = [f"c-{i}-{uuid.uuid4().hex[:8]}" for i in range(20)]

    def call(correlation_id: str) -> str:
        reply = Client(twin_url).get("/health", headers={"X-Correlation-Id": correlation_id})
        assert reply.status == 200, reply
        return reply.headers["x-correlation-id"]

    with ThreadPoolExecutor(max_workers=20) as pool:
        assert list(pool.map(call, ids)) == ids
