"""API Gateway's usage plans (issue 12 §3, "partner keys wired to the usage plan"), as CDK
assertions on every stage's template: a key is required exactly where the authorizer runs; the
partner plan (per-key throttle and daily quota) and the users plan (one key at the stage's API
limits) meter the stage; the users' key is imported from its secret with no plaintext in the
template; and the admin function — the one that adds partners' keys — may do exactly that, on
exactly those paths, from the egress subnets (the gateway's management API has no VPC endpoint)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra import manifest
from infra.stacks import STAGES, readback
from infra.stacks.compute import reaches_outside
from tests.infra.conftest import Cloud
from tests.support import iam

PLANS = {plan.name: plan for plan in manifest.USAGE_PLANS}
PARTNER_PLAN, USERS_PLAN = PLANS["partner_plan"], PLANS["users_plan"]
USERS_KEY_SECRET = str(USERS_PLAN.shared_key)


def _of_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {k: dict(v) for k, v in readback.resources(template, resource_type).items()}


def _plans(template: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    """Manifest name → (logical id, properties) of every usage plan."""
    tagged = readback.tagged(template, "AWS::ApiGateway::UsagePlan", readback.USAGE_PLAN_TAG)
    return {name: (logical_id, template["Resources"][logical_id]["Properties"]) for logical_id, name in tagged.items()}


def _function_id(template: dict[str, Any], name: str) -> str:
    return next(k for k, v in readback.function_names(template).items() if v == name)


@pytest.mark.parametrize("stage", list(STAGES))
def test_a_key_is_required_exactly_on_the_routes_behind_the_authorizer(cloud: Cloud, stage: str) -> None:
    template = cloud.templates[stage]
    paths = readback.resource_paths(template)
    required = {}
    for method in _of_type(template, "AWS::ApiGateway::Method").values():
        props = method["Properties"]
        required[(props["HttpMethod"], paths[props["ResourceId"]["Ref"]])] = props.get("ApiKeyRequired", False)
    assert required == {(route.method, route.path): route.auth for route, _fn in manifest.routes()}
    (api,) = _of_type(template, "AWS::ApiGateway::RestApi").values()
    assert api["Properties"]["ApiKeySourceType"] == "AUTHORIZER", "keys come from the authorizer, never a header"


@pytest.mark.parametrize("stage", list(STAGES))
def test_both_plans_meter_the_stage_with_the_stages_limits(cloud: Cloud, stage: str) -> None:
    template, config = cloud.templates[stage], STAGES[stage]
    plans = _plans(template)
    assert set(plans) == {plan.name for plan in manifest.USAGE_PLANS} == {"partner_plan", "users_plan"}
    (stage_id,) = _of_type(template, "AWS::ApiGateway::Stage")
    (api_id,) = _of_type(template, "AWS::ApiGateway::RestApi")
    for name, (_, props) in plans.items():
        assert props["UsagePlanName"] == f"rampart-{stage}-{name.replace('_', '-')}"
        assert props["ApiStages"] == [{"ApiId": {"Ref": api_id}, "Stage": {"Ref": stage_id}, "Throttle": {}}]
    partner = plans["partner_plan"][1]
    assert partner["Throttle"] == {"RateLimit": config.partner_rate_limit, "BurstLimit": config.partner_burst_limit}
    assert partner["Quota"] == {"Limit": config.partner_daily_quota, "Period": "DAY"}
    users = plans["users_plan"][1]
    assert users["Throttle"] == {"RateLimit": config.api_rate_limit, "BurstLimit": config.api_burst_limit}
    assert "Quota" not in users


@pytest.mark.parametrize("stage", list(STAGES))
def test_the_users_key_is_imported_from_its_secret_without_plaintext(cloud: Cloud, stage: str) -> None:
    template = cloud.templates[stage]
    (key_id, key) = next(iter(_of_type(template, "AWS::ApiGateway::ApiKey").items()))
    assert len(_of_type(template, "AWS::ApiGateway::ApiKey")) == 1, "partners' keys are imported at run time"
    props = key["Properties"]
    assert props["Enabled"] is True
    secrets = {v: k for k, v in readback.tagged(template, "AWS::SecretsManager::Secret", readback.SECRET_TAG).items()}
    assert props["Value"] == {
        "Fn::Join": [
            "",
            ["{{resolve:secretsmanager:", {"Ref": secrets[USERS_KEY_SECRET]}, ":SecretString:::}}"],
        ]
    }, "a dynamic reference: CloudFormation resolves it at deploy, the template holds no key"
    (attachment,) = _of_type(template, "AWS::ApiGateway::UsagePlanKey").values()
    assert attachment["Properties"] == {
        "KeyId": {"Ref": key_id},
        "KeyType": "API_KEY",
        "UsagePlanId": {"Ref": _plans(template)["users_plan"][0]},
    }
    # The authorizer reads the same secret.
    env = template["Resources"][_function_id(template, "authorizer")]["Properties"]["Environment"]["Variables"]
    assert env["RAMPART_USERS_API_KEY_ARN"] == {"Ref": secrets[USERS_KEY_SECRET]}


@pytest.mark.parametrize("stage", list(STAGES))
def test_only_the_admin_role_may_touch_the_gateway_and_only_its_partner_plan(cloud: Cloud, stage: str) -> None:
    template = cloud.templates[stage]
    grants = iam.role_grants(template)
    gateway = {
        function: sorted((g.action, g.resource + g.suffix) for g in found if g.action.startswith("apigateway:"))
        for function, found in grants.items()
    }
    assert {function for function, found in gateway.items() if found} == {"admin"}
    assert gateway["admin"] == [
        ("apigateway:GET", "apigateway:/usageplans"),
        ("apigateway:POST", "apigateway:/apikeys"),
        ("apigateway:POST", "usage_plan:partner_plan/keys"),
    ]
    # Written out: the region's gateway, no account, no wildcard.
    text = json.dumps([s for _, _, s in _gateway_statements(template)])
    assert "*" not in text
    assert f"arn:aws:apigateway:{STAGES[stage].region}::/" in text


def _gateway_statements(template: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    found = []
    for logical_id, policy in _of_type(template, "AWS::IAM::Policy").items():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            if any(a.startswith("apigateway:") for a in actions):
                found.append((logical_id, policy["Type"], statement))
    return found


@pytest.mark.parametrize("stage", list(STAGES))
def test_the_admin_function_knows_its_plan_by_name_and_reaches_the_gateway_through_the_nat(
    cloud: Cloud, stage: str
) -> None:
    """Its env var is the plan's name, a literal: the plan depends on the stage, the stage on the
    methods, the methods on the function, so the function may not depend on the plan (nor on the
    policy that grants it the plan: that policy stands apart from the role's default one)."""
    template = cloud.templates[stage]
    admin = template["Resources"][_function_id(template, "admin")]
    env = admin["Properties"]["Environment"]["Variables"]
    assert env[manifest.env_var(PARTNER_PLAN)] == f"rampart-{stage}-partner-plan"
    (policy_id, _, _) = next((i, t, s) for i, t, s in _gateway_statements(template) if s["Action"] == "apigateway:POST")
    plan_id = _plans(template)["partner_plan"][0]
    assert policy_id not in readback.all_dependencies(template, _function_id(template, "admin"))
    assert plan_id not in readback.all_dependencies(template, _function_id(template, "admin"))
    assert reaches_outside(manifest.function("admin"))
