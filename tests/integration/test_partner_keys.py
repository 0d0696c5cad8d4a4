"""Partner keys in API Gateway's usage plans (issue 12 §3), through the admin and authorizer
handlers with moto's API Gateway: a partner created through ``POST /v1/admin/partners`` has its key
in the partner plan (named after it, enabled, its own value); a gateway that does not take the key
answers 503 with Retry-After and leaves no partner; a key imported for a partner whose row was then
not written authenticates no one. The twin's AWS side (``infra.local.aws``) builds the manifest's
usage plans, the users' plan holding the key of its secret."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto.apigateway.models import APIGatewayBackend
from moto.core.exceptions import JsonRESTError

from functions.admin.handler import handler as admin_handler
from functions.authorizer.handler import handler as authorizer_handler
from infra import manifest
from tests.support.auth_fixtures import PARTNER_PLAN, USERS_API_KEY
from tests.support.events import LambdaContext, Reply, api_event, authorizer_event, call

pytestmark = [pytest.mark.filterwarnings("ignore:No application metrics to publish")]

ADMIN = {"principalId": "usr_admin_keys", "role": "admin", "kind": "user"}


class Throttled(JsonRESTError):
    """What API Gateway answers a caller over its rate."""

    code = 429

    def __init__(self) -> None:
        super().__init__("TooManyRequestsException", "Rate exceeded")


def create_partner(name: str) -> Reply:
    return call(
        admin_handler, api_event("POST", "/v1/admin/partners", body={"name": name, "markup_bps": 7}, principal=ADMIN)
    )


def plan_keys(plan_name: str) -> list[dict[str, Any]]:
    """The keys of the plan so named, each with its value."""
    client = boto3.client("apigateway")
    (plan,) = [p for p in client.get_usage_plans()["items"] if p["name"] == plan_name]
    in_plan = {k["id"] for k in client.get_usage_plan_keys(usagePlanId=plan["id"])["items"]}
    return [k for k in client.get_api_keys(includeValues=True)["items"] if k["id"] in in_plan]


def partners_named(db: Any, name: str) -> int:
    with db.connection() as conn:
        return int(conn.execute("SELECT count(*) FROM auth.partners WHERE name = %s", (name,)).fetchone()[0])


@pytest.mark.usefixtures("auth_env")
def test_a_new_partners_key_is_in_the_partner_plan_and_metered_as_its_own() -> None:
    created = create_partner("Plan Pay")
    assert created.status == 201, created
    (key,) = plan_keys(PARTNER_PLAN)
    assert (key["name"], key["value"], key["enabled"]) == (created.body["id"], created.body["api_key"], True)

    answer = authorizer_handler(authorizer_event({"X-Api-Key": created.body["api_key"]}), LambdaContext())
    assert answer["usageIdentifierKey"] == key["value"], "API Gateway finds the partner's key in its plan"


@pytest.mark.usefixtures("auth_env")
def test_each_partner_has_a_key_of_its_own_in_the_plan() -> None:
    first, second = create_partner("One"), create_partner("Two")
    keys = {k["name"]: k["value"] for k in plan_keys(PARTNER_PLAN)}
    assert keys == {first.body["id"]: first.body["api_key"], second.body["id"]: second.body["api_key"]}


@pytest.mark.usefixtures("auth_env")
def test_a_users_policy_names_the_users_key() -> None:
    from tests.integration.test_auth_authorizer import user_token

    answer = authorizer_handler(authorizer_event({"Authorization": f"Bearer {user_token()}"}), LambdaContext())
    assert answer["usageIdentifierKey"] == USERS_API_KEY


@pytest.mark.usefixtures("auth_env")
@pytest.mark.parametrize("failing", ["create_api_key", "create_usage_plan_key"])
def test_a_gateway_that_does_not_take_the_key_is_a_503_and_no_partner(
    db: Any, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise Throttled()

    monkeypatch.setattr(APIGatewayBackend, failing, refuse)
    name = f"Refused {uuid.uuid4().hex[:8]}"
    refused = create_partner(name)
    assert refused.status == 503, refused
    assert refused.problem == "service-unavailable"
    assert int(refused.headers["retry-after"]) >= 1
    assert "api_key" not in refused.body
    assert partners_named(db, name) == 0
    assert plan_keys(PARTNER_PLAN) == []


@pytest.mark.usefixtures("auth_env")
def test_a_key_imported_for_a_partner_never_stored_authenticates_no_one(
    db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database fails after the import: the orphan key's value was never shown, and even
    presented it is refused (no partner behind it); a retry makes a new partner and key."""
    from rampart.adapters.postgres.auth_store import PostgresAuthStore

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the database went away")

    with monkeypatch.context() as patch:
        patch.setattr(PostgresAuthStore, "create_partner", broken)
        failed = create_partner("Orphan Pay")
    assert failed.status >= 500, failed
    assert "api_key" not in failed.body
    assert partners_named(db, "Orphan Pay") == 0
    (orphan,) = plan_keys(PARTNER_PLAN)
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        authorizer_handler(authorizer_event({"X-Api-Key": orphan["value"]}), LambdaContext())

    retried = create_partner("Orphan Pay")
    assert retried.status == 201, retried
    assert retried.body["id"] != orphan["name"]
    assert {k["name"] for k in plan_keys(PARTNER_PLAN)} == {orphan["name"], retried.body["id"]}


# The twin's AWS side builds the manifest's plans ------------------------------------------------------


@pytest.fixture
def twin_aws(tmp_path: Any) -> Iterator[Any]:
    from infra.local import aws

    saved = dict(os.environ)
    local = aws.LocalAws(state_dir=tmp_path, admin_email="admin@example.com", admin_password="x" * 12)
    local.start()
    try:
        yield local
    finally:
        local.stop()
        os.environ.clear()
        os.environ.update(saved)


def test_the_twin_builds_every_usage_plan_and_imports_the_users_key(twin_aws: Any) -> None:
    from infra.local import aws
    from infra.local.lambdas import resource_value

    deployment = twin_aws.deployment
    assert set(deployment.usage_plans) == {plan.name for plan in manifest.USAGE_PLANS}
    client = twin_aws.client("apigateway")
    plans = {p["name"]: p["id"] for p in client.get_usage_plans()["items"]}
    for plan in manifest.USAGE_PLANS:
        assert plans[aws.usage_plan_name(plan.name)] == deployment.usage_plans[plan.name]
        assert resource_value(plan, deployment, "postgresql://unused") == aws.usage_plan_name(plan.name), (
            "what a function that uses it is given: its name"
        )
        keys = client.get_usage_plan_keys(usagePlanId=deployment.usage_plans[plan.name])["items"]
        if plan.shared_key is None:
            assert keys == [], f"{plan.name}: keys arrive one by one (partners)"
            continue
        secret = twin_aws.client("secretsmanager").get_secret_value(SecretId=deployment.secrets[plan.shared_key])
        assert [k["value"] for k in keys] == [secret["SecretString"]], f"{plan.name}: the key of its secret"
