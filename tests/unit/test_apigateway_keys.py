"""The API Gateway adapter of the partner usage plan (rampart.adapters.aws.apigateway), against a
fake client: the plan found by its exact name once per container, the key imported with its own
value and put in that plan, and every way the gateway can fail mapped to a 503 that stores nothing."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from rampart.adapters.aws.apigateway import ApiGatewayUsagePlanKeys
from rampart.auth import ApiKeysUnavailable
from rampart.core.settings import ConfigurationError

PLAN = "rampart-dev-partner-plan"


def client_error(code: str, operation: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}}, operation)


@dataclass
class Pages:
    pages: list[dict[str, Any]]

    def paginate(self) -> list[dict[str, Any]]:
        return self.pages


@dataclass
class FakeGateway:
    """The few API Gateway operations the adapter calls, with scriptable failures."""

    plans: list[dict[str, Any]] = field(
        default_factory=lambda: [
            {"items": [{"id": "p0", "name": f"{PLAN}-old"}, {"id": "p1", "name": "rampart-dev-users-plan"}]},
            {"items": [{"id": "p2", "name": PLAN}]},  # a second page
        ]
    )
    fail: dict[str, Exception] = field(default_factory=dict)  # operation → what it raises
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def _call(self, operation: str, **params: Any) -> None:
        self.calls.append((operation, params))
        if operation in self.fail:
            raise self.fail[operation]

    def get_paginator(self, operation: str) -> Pages:
        assert operation == "get_usage_plans"
        self._call("GetUsagePlans")
        return Pages(self.plans)

    def create_api_key(self, **params: Any) -> dict[str, Any]:
        self._call("CreateApiKey", **params)
        return {"id": "key-1", "name": params["name"]}

    def create_usage_plan_key(self, **params: Any) -> dict[str, Any]:
        self._call("CreateUsagePlanKey", **params)
        return {"id": params["keyId"]}


def test_a_key_is_imported_with_its_value_and_put_in_the_plan_found_by_its_exact_name() -> None:
    gateway = FakeGateway()
    keys = ApiGatewayUsagePlanKeys(PLAN, client=gateway)
    keys.register("prt_1", "rpk_" + "a" * 43)
    assert gateway.calls == [
        ("GetUsagePlans", {}),
        (
            "CreateApiKey",
            {"name": "prt_1", "value": "rpk_" + "a" * 43, "enabled": True, "description": "Rampart partner prt_1"},
        ),
        ("CreateUsagePlanKey", {"usagePlanId": "p2", "keyId": "key-1", "keyType": "API_KEY"}),
    ]


def test_the_plan_is_looked_up_once_per_container() -> None:
    gateway = FakeGateway()
    keys = ApiGatewayUsagePlanKeys(PLAN, client=gateway)
    keys.register("prt_1", "rpk_" + "a" * 43)
    keys.register("prt_2", "rpk_" + "b" * 43)
    assert [operation for operation, _ in gateway.calls].count("GetUsagePlans") == 1


def test_a_key_already_in_the_plan_is_what_we_wanted() -> None:
    gateway = FakeGateway(fail={"CreateUsagePlanKey": client_error("ConflictException", "CreateUsagePlanKey")})
    ApiGatewayUsagePlanKeys(PLAN, client=gateway).register("prt_1", "rpk_" + "a" * 43)


@pytest.mark.parametrize(
    ("operation", "error"),
    [
        ("CreateApiKey", client_error("TooManyRequestsException", "CreateApiKey")),
        ("CreateApiKey", client_error("ConflictException", "CreateApiKey")),  # a lost reply's retry
        ("CreateApiKey", client_error("AccessDeniedException", "CreateApiKey")),
        ("CreateApiKey", EndpointConnectionError(endpoint_url="https://apigateway.us-east-1.amazonaws.com")),
        ("CreateUsagePlanKey", client_error("ServiceUnavailableException", "CreateUsagePlanKey")),
        ("GetUsagePlans", client_error("TooManyRequestsException", "GetUsagePlans")),
    ],
)
def test_a_gateway_that_does_not_take_the_key_is_a_503(operation: str, error: Exception) -> None:
    gateway = FakeGateway(fail={operation: error})
    with pytest.raises(ApiKeysUnavailable) as refused:
        ApiGatewayUsagePlanKeys(PLAN, client=gateway).register("prt_1", "rpk_" + "a" * 43)
    assert (refused.value.status, refused.value.slug) == (503, "service-unavailable")
    assert int(refused.value.headers["Retry-After"]) >= 1
    assert "rpk_" not in str(refused.value), "the key never reaches a message"


@pytest.mark.parametrize("plans", [[], [{"items": [{"id": "a", "name": PLAN}, {"id": "b", "name": PLAN}]}]])
def test_no_plan_or_two_of_that_name_is_a_deployment_fault(plans: list[dict[str, Any]]) -> None:
    gateway = FakeGateway(plans=plans)
    with pytest.raises(ConfigurationError, match=PLAN):
        ApiGatewayUsagePlanKeys(PLAN, client=gateway).register("prt_1", "rpk_" + "a" * 43)
    assert [operation for operation, _ in gateway.calls] == ["GetUsagePlans"], "no key imported"
