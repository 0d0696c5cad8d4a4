"""The auth function end to end in process: API Gateway proxy events in, proxy responses out,
real PostgreSQL, DynamoDB (rate limits) in moto."""

from __future__ import annotations

import time
import uuid
from typing import Any

import boto3
import jwt
import pytest

from functions.auth.handler import handler as auth_handler
from tests.support.aws import RATE_LIMIT_TABLE
from tests.support.events import Reply, api_event, call

pytestmark = [
    pytest.mark.usefixtures("auth_env"),
    pytest.mark.filterwarnings("ignore:No application metrics to publish"),
]

PASSWORD = "correct horse battery staple"


def post(path: str, body: Any, **kw: Any) -> Reply:
    return call(auth_handler, api_event("POST", path, body=body, **kw))


def email() -> str:
    return f"{uuid.uuid4().hex[:12]}@example.com"


def register(address: str | None = None, role: str = "user", password: str = PASSWORD) -> Reply:
    return post("/v1/auth/register", {"email": address or email(), "password": password, "role": role})


def login(address: str, password: str = PASSWORD) -> Reply:
    return post("/v1/auth/login", {"email": address, "password": password})


def me(principal: dict[str, str]) -> Reply:
    return call(auth_handler, api_event("GET", "/v1/me", principal=principal))


def test_register_login_me(key_ring: dict[str, Any]) -> None:
    address = email()
    created = register(address, "business")
    assert created.status == 201, created
    assert set(created.body) == {"id", "email", "role"}
    assert created.body["email"] == address
    assert created.body["role"] == "business"
    assert "x-correlation-id" in created.headers

    logged_in = login(address)
    assert logged_in.status == 200, logged_in
    assert set(logged_in.body) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert logged_in.body["token_type"] == "Bearer"
    assert logged_in.body["expires_in"] == 900
    access = logged_in.body["access_token"]
    header = jwt.get_unverified_header(access)
    assert header["kid"] == key_ring["current"]
    assert header["alg"] == "HS256"
    claims = jwt.decode(access, options={"verify_signature": False})
    assert claims["sub"] == created.body["id"]
    assert claims["role"] == "business"

    who = me({"principalId": created.body["id"], "role": "business", "kind": "user"})
    assert who.status == 200
    assert who.body == {"id": created.body["id"], "email": address, "role": "business"}


def test_login_is_case_insensitive_on_email() -> None:
    address = email()
    register(address)
    assert login(address.upper()).status == 200


def test_duplicate_email_is_409_whatever_its_case() -> None:
    address = email()
    assert register(address).status == 201
    again = register(address.upper(), "lender")
    assert again.status == 409
    assert again.problem == "email-taken"
    assert again.fields == ["/email"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "ada@example.com", "password": PASSWORD, "role": "admin"}, "/role"),
        ({"email": "ada@example.com", "password": PASSWORD, "role": "partner"}, "/role"),
        ({"email": "ada@example.com", "password": PASSWORD, "role": "root"}, "/role"),
        ({"email": "ada@example.com", "password": "x" * 11, "role": "user"}, "/password"),
        ({"email": "not-an-email", "password": PASSWORD, "role": "user"}, "/email"),
        ({"email": "ada@example.com", "password": PASSWORD}, "/role"),
        ({"email": "ada@example.com", "password": 123456789012345, "role": "user"}, "/password"),
        ({"email": "ada@example.com", "password": PASSWORD, "role": "user", "admin": True}, "/admin"),
    ],
)
def test_register_refuses_bad_input_with_422(body: dict[str, Any], field: str) -> None:
    refused = post("/v1/auth/register", body)
    assert refused.status == 422, refused
    assert refused.problem == "validation-error"
    assert field in refused.fields


def test_register_malformed_json_is_400() -> None:
    refused = call(
        auth_handler,
        api_event("POST", "/v1/auth/register", raw_body="{nope", headers={"Content-Type": "application/json"}),
    )
    assert refused.status == 400
    assert refused.problem == "malformed-request"


def test_wrong_password_and_unknown_email_get_the_same_401() -> None:
    address = email()
    register(address)
    wrong = login(address, "wrong password!!")
    unknown = login(email(), PASSWORD)
    assert wrong.status == unknown.status == 401
    assert wrong.problem == unknown.problem == "unauthorized"
    strip = ("instance", "correlation_id")
    assert {k: v for k, v in wrong.body.items() if k not in strip} == {
        k: v for k, v in unknown.body.items() if k not in strip
    }


def test_refresh_rotates_and_reuse_revokes_the_whole_family() -> None:
    address = email()
    register(address)
    first = login(address).body["refresh_token"]

    rotated = post("/v1/auth/refresh", {"refresh_token": first})
    assert rotated.status == 200, rotated
    second = rotated.body["refresh_token"]
    assert second != first
    assert jwt.decode(rotated.body["access_token"], options={"verify_signature": False})["role"] == "user"

    reused = post("/v1/auth/refresh", {"refresh_token": first})  # stolen and replayed
    assert reused.status == 401
    assert reused.problem == "unauthorized"
    # The whole family is gone: the legitimate holder of the newer token is logged out too.
    assert post("/v1/auth/refresh", {"refresh_token": second}).status == 401
    # Another login is another family, unaffected.
    assert post("/v1/auth/refresh", {"refresh_token": login(address).body["refresh_token"]}).status == 200


def test_refresh_chain_keeps_working_while_each_token_is_used_once() -> None:
    address = email()
    register(address)
    token = login(address).body["refresh_token"]
    for _ in range(5):
        answer = post("/v1/auth/refresh", {"refresh_token": token})
        assert answer.status == 200
        token = answer.body["refresh_token"]


@pytest.mark.parametrize("token", ["", "garbage", "rrt_" + "A" * 43])
def test_refresh_with_unknown_token_is_401(token: str) -> None:
    answer = post("/v1/auth/refresh", {"refresh_token": token})
    assert answer.status in (401, 422)
    if token:
        assert answer.status == 401
        assert answer.problem == "unauthorized"


def test_logout_revokes_the_family_with_204() -> None:
    address = email()
    register(address)
    pair = login(address).body
    other = login(address).body  # another device: its own family
    out = post("/v1/auth/logout", {"refresh_token": pair["refresh_token"]})
    assert out.status == 204
    assert out.body is None
    assert post("/v1/auth/refresh", {"refresh_token": pair["refresh_token"]}).status == 401
    assert post("/v1/auth/refresh", {"refresh_token": other["refresh_token"]}).status == 200
    # Logging out again is harmless; an unknown token is not ours.
    assert post("/v1/auth/logout", {"refresh_token": pair["refresh_token"]}).status == 204
    assert post("/v1/auth/logout", {"refresh_token": "rrt_" + "B" * 43}).status == 401


def test_logout_with_a_rotated_token_still_ends_the_session() -> None:
    address = email()
    register(address)
    first = login(address).body["refresh_token"]
    second = post("/v1/auth/refresh", {"refresh_token": first}).body["refresh_token"]
    assert post("/v1/auth/logout", {"refresh_token": first}).status == 204
    assert post("/v1/auth/refresh", {"refresh_token": second}).status == 401


def test_ten_failures_lock_the_email_even_for_the_right_password() -> None:
    address = email()
    register(address)
    for attempt in range(10):
        answer = login(address, f"wrong password {attempt}")
        assert answer.status == 401, (attempt, answer)
    locked = login(address)
    assert locked.status == 429, locked
    assert locked.problem == "rate-limited"
    retry_after = int(locked.headers["retry-after"])
    assert 0 < retry_after <= 900
    # Other emails are not affected.
    other = email()
    register(other)
    assert login(other).status == 200
    # Once the window has passed (TTL deletion may lag: the item is still there, but expired)...
    table = boto3.client("dynamodb")
    items = table.scan(TableName=RATE_LIMIT_TABLE)["Items"]
    [item] = [i for i in items if int(i["hits"]["N"]) >= 10]
    table.update_item(
        TableName=RATE_LIMIT_TABLE,
        Key={"pk": item["pk"]},
        UpdateExpression="SET expires_at = :past",
        ExpressionAttributeValues={":past": {"N": str(int(time.time()) - 1)}},
    )
    assert login(address).status == 200


def test_unknown_emails_are_throttled_too() -> None:
    address = email()
    for _ in range(10):
        assert login(address).status == 401
    assert login(address).status == 429


def test_success_resets_the_failure_count() -> None:
    address = email()
    register(address)
    for _ in range(9):
        assert login(address, "wrong password!!").status == 401
    assert login(address).status == 200
    for _ in range(9):
        assert login(address, "wrong password!!").status == 401
    assert login(address).status == 200


def test_me_without_principal_is_401() -> None:
    answer = call(auth_handler, api_event("GET", "/v1/me"))
    assert answer.status == 401
    assert answer.problem == "unauthorized"


def test_me_for_a_partner() -> None:
    who = me({"principalId": "prt_1", "role": "partner", "kind": "partner", "partnerId": "prt_1"})
    assert who.status == 200
    assert who.body == {"id": "prt_1", "email": None, "role": "partner"}


def test_me_for_a_deleted_user_is_401() -> None:
    assert me({"principalId": "usr_gone", "role": "user", "kind": "user"}).status == 401
