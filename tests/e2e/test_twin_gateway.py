"""The gateway's rules without HTTP or AWS: routing, the authorizer's policy and context, the
proxy event and reply, schedules, the Lambda context and environment."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from typing import Any, cast

import pytest

from infra import manifest
from infra.local import aws
from infra.local.gateway import (
    Gateway,
    HttpRequest,
    MalformedResponse,
    authorizer_context,
    evaluate_policy,
    method_arn,
    proxy_reply,
    wildcard_match,
)
from infra.local.lambdas import LambdaContext, LambdaRegistry, function_environment
from infra.local.routing import Router
from infra.local.schedules import rate_seconds, scheduled_event
from infra.local.sim import SimError, SimRegistry, SimReply, SimRequest

ARN = method_arn("GET", "/v1/accounts/42")


def allow(resource: str | list[str] = "*", effect: str = "Allow", action: str = "execute-api:Invoke") -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [{"Action": action, "Effect": effect, "Resource": resource}]}


# policy ---------------------------------------------------------------------------------------


def test_method_arn_has_api_gateways_shape() -> None:
    assert f"arn:aws:execute-api:{aws.REGION}:{aws.ACCOUNT}:rampartlcl/local/GET/v1/accounts/42" == ARN


@pytest.mark.parametrize(
    ("policy", "decision"),
    [
        (allow(), "allow"),
        (allow(ARN), "allow"),
        (allow(ARN.replace("/GET/", "/*/")), "allow"),
        (allow(ARN.replace("42", "4?")), "allow"),
        (allow(ARN.rsplit("/", 3)[0] + "/*"), "allow"),  # .../local/* covers every method and path
        (allow(ARN.replace("GET", "POST")), "implicit-deny"),
        (allow(ARN.replace("42", "4")), "implicit-deny"),
        (allow([ARN.replace("42", "1"), ARN]), "allow"),
        (allow(action="execute-api:*"), "allow"),
        (allow(action="EXECUTE-API:invoke"), "allow"),  # actions are case-insensitive
        (allow(ARN.upper()), "implicit-deny"),  # resources are not
        (allow(action="s3:GetObject"), "implicit-deny"),
        (allow(effect="Deny"), "deny"),
        (
            {"Statement": [allow()["Statement"][0], {"Action": "*", "Effect": "Deny", "Resource": ARN}]},
            "deny",
        ),  # an explicit Deny wins
        ({"Statement": allow()["Statement"][0]}, "allow"),  # a single statement object
        ({"Statement": []}, "implicit-deny"),
        ({}, "implicit-deny"),
    ],
)
def test_policy_evaluation(policy: dict[str, Any], decision: str) -> None:
    assert evaluate_policy(policy, ARN) == decision


def test_wildcards_cross_slashes_and_colons() -> None:
    assert wildcard_match("arn:*", ARN)
    assert not wildcard_match("arn:aws:execute-api:?", ARN)


def test_authorizer_context_is_stringified_like_api_gateway() -> None:
    result = {"principalId": "u1", "policyDocument": allow(), "context": {"role": "user", "n": 3, "ok": True}}
    assert authorizer_context(result, ARN) == {"principalId": "u1", "role": "user", "n": "3", "ok": "true"}
    assert authorizer_context({**result, "policyDocument": allow(effect="Deny")}, ARN) is None


@pytest.mark.parametrize(
    "result",
    [
        None,
        {},
        {"principalId": "u"},
        {"policyDocument": allow()},
        {"principalId": "u", "policyDocument": allow(), "context": {"x": {}}},
    ],
)
def test_malformed_authorizer_results_are_errors(result: Any) -> None:
    from infra.local.gateway import AuthorizerError

    with pytest.raises(AuthorizerError):
        authorizer_context(result, ARN)


# routing --------------------------------------------------------------------------------------


def test_the_most_specific_resource_wins_then_the_method() -> None:
    router: Router[str] = Router(
        [
            ("GET", "/v1/transfers/{id}", "get"),
            ("POST", "/v1/transfers/batch", "batch"),
            ("GET", "/files/{proxy+}", "files"),
        ]
    )
    found = router.resolve("GET", "/v1/transfers/7")
    assert found is not None
    assert (found.target, found.params) == ("get", {"id": "7"})
    refused = router.resolve("GET", "/v1/transfers/batch")
    assert refused is not None
    assert refused.target is None
    assert refused.methods == ("POST",)
    greedy = router.resolve("GET", "/files/a/b%20c")
    assert greedy is not None
    assert greedy.params == {"proxy": "a/b c"}
    assert router.resolve("GET", "/v1/transfers") is None
    assert router.resolve("GET", "/files") is None
    encoded = router.resolve("GET", "/v1/transfers/a%2Fb")
    assert encoded is not None
    assert encoded.params == {"id": "a/b"}


def test_a_route_declared_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="twice"):
        Router([("GET", "/a", 1), ("GET", "/a", 2)])


# the gateway with stand-in functions ----------------------------------------------------------


class FakeRegistry:
    def __init__(self, functions: dict[str, Callable[[dict[str, Any]], Any]]) -> None:
        self.functions = functions
        self.events: dict[str, list[dict[str, Any]]] = {}

    def invoke(self, name: str, event: dict[str, Any], request_id: str | None = None) -> Any:
        self.events.setdefault(name, []).append(event)
        return self.functions[name](event)


def echo(event: dict[str, Any]) -> dict[str, Any]:
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json", "X-Correlation-Id": "cid"},
        "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"]},
        "body": json.dumps({"authorizer": event["requestContext"].get("authorizer")}),
    }


def gateway(
    authorizer: Callable[[dict[str, Any]], Any], function: Callable[[dict[str, Any]], Any] = echo
) -> tuple[Gateway, FakeRegistry]:
    registry = FakeRegistry({"authorizer": authorizer, "accounts": function, "health": function})
    return Gateway(cast(LambdaRegistry, registry)), registry


def request(method: str, target: str, body: bytes = b"", **headers: str) -> HttpRequest:
    return HttpRequest(method, target, [(k.replace("_", "-"), v) for k, v in headers.items()], body)


def granting(context: dict[str, Any] | None = None, effect: str = "Allow") -> Callable[[dict[str, Any]], Any]:
    def authorize(event: dict[str, Any]) -> dict[str, Any]:
        return {
            "principalId": "user-1",
            "policyDocument": allow(event["methodArn"], effect=effect),
            "context": context or {"role": "user", "kind": "user"},
        }

    return authorize


def raising(message: str) -> Callable[[dict[str, Any]], Any]:
    def authorize(event: dict[str, Any]) -> Any:
        raise Exception(message)

    return authorize


def problem(reply: Any) -> str:
    assert reply.header("Content-Type") == "application/problem+json"
    return str(json.loads(reply.body)["type"]).removeprefix("/problems/")


def test_an_allowed_request_reaches_the_function_with_the_authorizers_context() -> None:
    gw, registry = gateway(granting({"role": "admin", "kind": "user", "level": 2}))
    reply = gw.handle(request("GET", "/v1/accounts/42?limit=5&x=1&x=2", Authorization="Bearer t"))
    assert reply.status == 200
    assert json.loads(reply.body)["authorizer"] == {
        "principalId": "user-1",
        "role": "admin",
        "kind": "user",
        "level": "2",
        "integrationLatency": json.loads(reply.body)["authorizer"]["integrationLatency"],
    }
    assert reply.headers.count(("Set-Cookie", "a=1")) == 1
    assert ("Set-Cookie", "b=2") in reply.headers
    auth_event = registry.events["authorizer"][0]
    assert auth_event["type"] == "REQUEST"
    assert auth_event["methodArn"] == method_arn("GET", "/v1/accounts/42")
    assert auth_event["resource"] == "/v1/accounts/{id}"
    assert "authorizer" not in auth_event["requestContext"]
    event = registry.events["accounts"][0]
    assert event["resource"] == "/v1/accounts/{id}"
    assert event["path"] == "/v1/accounts/42"
    assert event["pathParameters"] == {"id": "42"}
    assert event["queryStringParameters"] == {"limit": "5", "x": "2"}
    assert event["multiValueQueryStringParameters"] == {"limit": ["5"], "x": ["1", "2"]}
    assert event["headers"]["Authorization"] == "Bearer t"
    assert event["multiValueHeaders"]["Authorization"] == ["Bearer t"]
    assert event["body"] is None
    assert event["isBase64Encoded"] is False
    context = event["requestContext"]
    assert (context["resourcePath"], context["httpMethod"], context["stage"]) == ("/v1/accounts/{id}", "GET", "local")
    assert context["identity"]["sourceIp"] == "127.0.0.1"
    assert context["requestId"] == reply.header("x-amzn-RequestId")


def test_an_authorizer_raising_unauthorized_is_a_401() -> None:
    gw, registry = gateway(raising("Unauthorized"))
    reply = gw.handle(request("GET", "/v1/accounts"))
    assert (reply.status, problem(reply)) == (401, "unauthorized")
    assert "accounts" not in registry.events


def test_a_denying_policy_is_a_403() -> None:
    gw, registry = gateway(granting(effect="Deny"))
    reply = gw.handle(request("GET", "/v1/accounts"))
    assert (reply.status, problem(reply)) == (403, "forbidden")
    assert "accounts" not in registry.events


def test_a_policy_for_another_route_is_a_403() -> None:
    def other_route(event: dict[str, Any]) -> dict[str, Any]:
        return {"principalId": "u", "policyDocument": allow(method_arn("GET", "/v1/me"))}

    gw, _ = gateway(other_route)
    assert gw.handle(request("GET", "/v1/accounts")).status == 403


@pytest.mark.parametrize("authorizer", [raising("database down"), lambda event: {"principalId": "u"}])
def test_a_failing_or_malformed_authorizer_is_a_500(authorizer: Callable[[dict[str, Any]], Any]) -> None:
    gw, _ = gateway(authorizer)
    reply = gw.handle(request("GET", "/v1/accounts"))
    assert (reply.status, problem(reply)) == (500, "internal-error")


def test_public_routes_skip_the_authorizer() -> None:
    gw, registry = gateway(raising("Unauthorized"))
    assert gw.handle(request("GET", "/health")).status == 200
    assert "authorizer" not in registry.events
    assert registry.events["health"][0]["requestContext"].get("authorizer") is None


@pytest.mark.parametrize(
    "function",
    [
        lambda event: 1 / 0,
        lambda event: {"body": "no status"},
        lambda event: {"statusCode": 200, "body": {"not": "a string"}},
    ],
)
def test_a_failing_or_malformed_function_is_a_502(function: Callable[[dict[str, Any]], Any]) -> None:
    gw, _ = gateway(granting(), function)
    reply = gw.handle(request("GET", "/health"))
    assert (reply.status, problem(reply)) == (502, "internal-error")


def test_binary_bodies_travel_base64() -> None:
    gw, registry = gateway(granting())
    gw.handle(request("POST", "/v1/accounts", b"\xff\x00", Content_Type="application/octet-stream"))
    event = registry.events["accounts"][0]
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"\xff\x00"
    text = gw.handle(request("POST", "/v1/accounts", '{"é": 1}'.encode()))
    assert text.status == 200
    assert registry.events["accounts"][1]["body"] == '{"é": 1}'


def test_base64_replies_are_decoded_and_hop_by_hop_headers_dropped() -> None:
    reply = proxy_reply(
        {"statusCode": 201, "headers": {"Content-Length": "1", "X-A": 1}, "body": "AAE=", "isBase64Encoded": True}
    )
    assert (reply.status, reply.body, reply.headers) == (201, b"\x00\x01", [("X-A", "1")])
    with pytest.raises(MalformedResponse):
        proxy_reply("nope")


def test_not_ready_answers_503_and_health_its_checks() -> None:
    from infra.local.gateway import json_reply

    registry = FakeRegistry({"health": echo})
    gw = Gateway(
        cast(LambdaRegistry, registry),
        is_ready=lambda: False,
        not_ready=lambda: json_reply(503, {"status": "starting"}),
    )
    assert gw.handle(request("GET", "/health")).status == 503
    reply = gw.handle(request("GET", "/v1/accounts"))
    assert (reply.status, problem(reply), reply.header("Retry-After")) == (503, "service-unavailable", "1")
    assert not registry.events


def test_simulators_are_consulted_before_the_manifest() -> None:
    sims = SimRegistry()

    @sims.route("POST", "/_sim/pix/payments")
    def pay(request: SimRequest) -> SimReply:
        body = request.json()
        if not body.get("ramp_id"):
            raise SimError(422, "validation-error", "ramp_id is required")
        return SimReply(200, {"paid": body["ramp_id"]})

    gw = Gateway(cast(LambdaRegistry, FakeRegistry({})), sims=sims)
    ok = gw.handle(request("POST", "/_sim/pix/payments", b'{"ramp_id": "r1"}'))
    assert (ok.status, json.loads(ok.body)) == (200, {"paid": "r1"})
    refused = gw.handle(request("POST", "/_sim/pix/payments", b"{}"))
    assert (refused.status, problem(refused)) == (422, "validation-error")
    assert gw.handle(request("GET", "/_sim/pix/payments")).status == 404
    with pytest.raises(ValueError, match="_sim"):
        sims.add("GET", "/v1/elsewhere", pay)


def test_the_route_table_is_built_from_the_manifest_only() -> None:
    gw = Gateway(cast(LambdaRegistry, FakeRegistry({})))
    assert {(r["method"], r["path"], r["function"]) for r in gw.table()} == {
        (r.method, r.path, fn.name) for r, fn in manifest.routes()
    }


# schedules, context, environment --------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "seconds"),
    [("rate(1 minute)", 60), ("rate(5 minutes)", 300), ("rate(30 seconds)", 30), ("rate(2 hours)", 7200)],
)
def test_rate_expressions(expression: str, seconds: float) -> None:
    assert rate_seconds(expression) == seconds


@pytest.mark.parametrize("expression", ["rate(1 minutes)", "rate(5 minute)", "rate(0 minutes)", "cron(0 * * * ? *)"])
def test_bad_rate_expressions(expression: str) -> None:
    with pytest.raises(ValueError):
        rate_seconds(expression)


def test_every_manifest_schedule_parses() -> None:
    for schedule in manifest.SCHEDULES:
        assert rate_seconds(schedule.rate) > 0


def test_scheduled_event_shape() -> None:
    event = scheduled_event("arn:aws:events:us-east-1:123456789012:rule/x")
    assert (event["source"], event["detail-type"], event["resources"]) == (
        "aws.events",
        "Scheduled Event",
        ["arn:aws:events:us-east-1:123456789012:rule/x"],
    )


def test_lambda_context_counts_down_from_the_manifest_timeout() -> None:
    fn = manifest.function("ledger_sweep")
    context = LambdaContext(fn)
    assert context.function_name == "rampart-local-ledger_sweep"
    assert context.invoked_function_arn == aws.function_arn("ledger_sweep")
    assert context.memory_limit_in_mb == str(fn.memory_mb)
    remaining = context.get_remaining_time_in_millis()
    assert fn.timeout_seconds * 1000 - 1000 < remaining <= fn.timeout_seconds * 1000
    time.sleep(0.02)
    assert context.get_remaining_time_in_millis() < remaining


def test_function_environment_is_the_union_of_what_functions_use() -> None:
    deployment = aws.Deployment(
        tables={"idempotency": "t-idem", "rate_limits": "t-rate"},
        secrets={s.name: f"arn:{s.name}" for s in manifest.SECRETS},
        queue_urls={q.name: f"https://sqs.local/{q.name}" for q in manifest.QUEUES},
        state_machines={m.name: f"arn:states:{m.name}" for m in manifest.STATE_MACHINES},
        externals={e.name: f"https://world.local/{e.name}" for e in manifest.EXTERNALS},
    )
    env = function_environment(deployment, "postgresql://db")
    assert env["DATABASE_URL"] == "postgresql://db"
    assert env["RAMPART_IDEMPOTENCY_TABLE"] == "t-idem"
    assert env["RAMPART_RATE_LIMIT_TABLE"] == "t-rate"
    assert env["RAMPART_JWT_SECRET_ARN"] == "arn:jwt_keys"
    assert env["RAMPART_ADMIN_SECRET_ARN"] == "arn:admin"
    assert env["POWERTOOLS_TRACE_DISABLED"] == "true"
    assert env["RAMPART_BASE_RPC_URL"] == "https://world.local/base_rpc"
    assert env["RAMPART_BRL_ON_STATE_MACHINE_ARN"] == "arn:states:brl_on"
    used = {name for fn in manifest.FUNCTIONS for name in fn.uses}
    assert {pair.split("=")[0] for pair in env["RAMPART_USES"].split(",")} == used
    # Without the world, its resources are neither given nor announced (no cold start demands them).
    worldless = aws.Deployment(**{**deployment.__dict__, "externals": {}})
    env = function_environment(worldless, "postgresql://db")
    assert "RAMPART_BASE_RPC_URL" not in env
    announced = {pair.split("=")[0] for pair in env["RAMPART_USES"].split(",")}
    assert announced == used - {e.name for e in manifest.EXTERNALS}
    clash = manifest.Manifest(
        functions=(
            manifest.Function("a", "m.h", "", env=(("X", "1"),)),
            manifest.Function("b", "m.h", "", env=(("X", "2"),)),
        )
    )
    with pytest.raises(ValueError, match="X"):
        function_environment(deployment, "postgresql://db", clash)


def test_registry_resolves_every_spelling_of_a_function_name() -> None:
    registry = LambdaRegistry()
    try:
        arn = aws.function_arn("health")
        for spelling in (
            "health",
            "rampart-local-health",
            arn,
            f"{arn}:$LATEST",
            f"{aws.ACCOUNT}:function:rampart-local-health",
        ):
            assert registry.resolve(spelling) == "health", spelling
        assert registry.resolve("other") is None
    finally:
        registry.close()


def test_concurrent_resolvers_each_see_their_own_event() -> None:
    """Powertools keeps the current event on the resolver class; the twin makes it per thread, so
    two containers serving at once never read each other's request (principal, body, headers)."""
    import threading

    from aws_lambda_powertools.event_handler import APIGatewayRestResolver

    from infra.local.lambdas import isolate_powertools_state

    isolate_powertools_state()
    apps = [APIGatewayRestResolver(), APIGatewayRestResolver()]
    barrier = threading.Barrier(2)
    seen: dict[int, str] = {}

    for n, app in enumerate(apps):

        def route(n: int = n, app: APIGatewayRestResolver = app) -> dict[str, str]:
            barrier.wait(timeout=5)  # both requests are in flight now
            seen[n] = app.current_event.headers["x-who"]
            return {}

        app.get("/who")(route)

    def call(n: int) -> None:
        event = {"httpMethod": "GET", "path": "/who", "resource": "/who", "headers": {"x-who": f"caller-{n}"}}
        apps[n].resolve(event, LambdaContext(manifest.function("health")))

    threads = [threading.Thread(target=call, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert seen == {0: "caller-0", 1: "caller-1"}


def test_the_scheduler_fires_on_its_rate_and_stops() -> None:
    from concurrent.futures import Future

    from infra.local.schedules import Scheduler

    fired: list[tuple[str, dict[str, Any]]] = []

    class Registry:
        def invoke_async(self, name: str, event: dict[str, Any]) -> Future[Any]:
            fired.append((name, event))
            future: Future[Any] = Future()
            future.set_result({"released": 0})
            return future

    schedule = manifest.Schedule("fast", "rate(1 second)", "ledger_sweep")
    scheduler = Scheduler(cast(LambdaRegistry, Registry()), (schedule,))
    scheduler.start()
    try:
        deadline = time.monotonic() + 5
        while len(fired) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        scheduler.stop()
    assert len(fired) >= 2
    name, event = fired[0]
    assert name == "ledger_sweep"
    assert event["resources"] == [f"arn:aws:events:{aws.REGION}:{aws.ACCOUNT}:rule/rampart-local-fast"]
    count = len(fired)
    time.sleep(1.2)
    assert len(fired) == count  # stopped
