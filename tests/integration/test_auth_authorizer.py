"""The Lambda authorizer in process: bearer tokens (from a real login) and partner API keys in,
IAM policies out, evaluated the way API Gateway evaluates them; keys from Secrets Manager."""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any

import boto3
import jwt
import pytest

from functions.auth.handler import handler as auth_handler
from functions.authorizer.handler import handler as authorizer_handler
from rampart.auth import AccessTokens, KeyRing, StaticKeys
from rampart.wiring import auth as auth_wiring
from tests.support.auth_fixtures import reset_singletons
from tests.support.aws import new_key_ring
from tests.support.events import LambdaContext, api_event, authorizer_event, call, method_arn

pytestmark = [
    pytest.mark.usefixtures("auth_env"),
    pytest.mark.filterwarnings("ignore:No application metrics to publish"),
]

PASSWORD = "correct horse battery staple"


def authorize(headers: dict[str, str], method: str = "GET", path: str = "/v1/me") -> dict[str, Any]:
    return authorizer_handler(authorizer_event(headers, method=method, path=path), LambdaContext())  # type: ignore[no-any-return]


def allowed(answer: dict[str, Any], method: str, path: str) -> bool:
    """API Gateway's evaluation: an explicit Deny wins, else some Allow must match."""
    arn = method_arn(method, path)

    def matches(pattern: str) -> bool:
        return re.fullmatch(".*".join(re.escape(part) for part in pattern.split("*")), arn) is not None

    statements = answer["policyDocument"]["Statement"]
    hits = {s["Effect"] for s in statements if any(matches(r) for r in s["Resource"])}
    return "Deny" not in hits and "Allow" in hits


def user_token(role: str = "user") -> str:
    email = f"{uuid.uuid4().hex[:12]}@example.com"
    body = {"email": email, "password": PASSWORD, "role": role}
    assert call(auth_handler, api_event("POST", "/v1/auth/register", body=body)).status == 201
    login = call(auth_handler, api_event("POST", "/v1/auth/login", body={"email": email, "password": PASSWORD}))
    return str(login.body["access_token"])


def admin_token() -> str:
    auth_wiring.seed_admin("admin-authorizer@rampart.example", "admin password long enough")
    body = {"email": "admin-authorizer@rampart.example", "password": "admin password long enough"}
    return str(call(auth_handler, api_event("POST", "/v1/auth/login", body=body)).body["access_token"])


def test_user_token_is_allowed_everywhere_but_admin_routes() -> None:
    token = user_token("lender")
    answer = authorize({"Authorization": f"Bearer {token}"})
    subject = jwt.decode(token, options={"verify_signature": False})["sub"]
    assert answer["principalId"] == subject
    assert answer["context"] == {"principalId": subject, "role": "lender", "kind": "user"}
    assert allowed(answer, "GET", "/v1/me")
    assert allowed(answer, "POST", "/v1/transfers")
    assert allowed(answer, "GET", "/v1/accounts/42/entries")
    assert not allowed(answer, "POST", "/v1/admin/partners")
    assert not allowed(answer, "POST", "/v1/admin/deposits")
    assert not allowed(answer, "POST", "/v1/admin/ramps/7/resume")


def test_the_policy_does_not_depend_on_the_route_so_it_can_be_cached() -> None:
    token = user_token()
    one = authorize({"Authorization": f"Bearer {token}"}, "GET", "/v1/me")
    other = authorize({"Authorization": f"Bearer {token}"}, "POST", "/v1/admin/partners")
    assert one == other


def test_admin_token_is_allowed_on_admin_routes() -> None:
    answer = authorize({"Authorization": f"Bearer {admin_token()}"}, "POST", "/v1/admin/partners")
    assert answer["context"]["role"] == "admin"
    assert allowed(answer, "POST", "/v1/admin/partners")
    assert allowed(answer, "POST", "/v1/admin/deposits")
    assert allowed(answer, "GET", "/v1/me")


def test_a_token_reaches_the_function_as_api_gateway_hands_it_over() -> None:
    answer = authorize({"Authorization": f"Bearer {user_token('business')}"})
    me = call(auth_handler, api_event("GET", "/v1/me", principal=answer["context"]))
    assert me.status == 200
    assert me.body["role"] == "business"
    assert me.body["id"] == answer["principalId"]


def _forged(key_ring: dict[str, Any], **claims: Any) -> str:
    now = int(time.time())
    payload = {"iss": "rampart", "aud": "rampart-api", "sub": "usr_x", "role": "admin", "iat": now, "exp": now + 60}
    payload.update(claims)
    return jwt.encode(payload, bytes.fromhex("ab" * 32), algorithm="HS256", headers={"kid": key_ring["current"]})


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": ""},
        {"Authorization": "Basic YWRtaW46cGFzc3dvcmQ="},
        {"Authorization": "Bearer "},
        {"Authorization": "Bearer not-a-jwt"},
        {"X-Api-Key": "rpk_" + "A" * 43},
        {"X-Api-Key": "not-a-key"},
    ],
)
def test_missing_or_bad_credentials_are_unauthorized(headers: dict[str, str]) -> None:
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        authorize(headers)


def test_forged_expired_and_foreign_tokens_are_unauthorized(key_ring: dict[str, Any]) -> None:
    real = KeyRing.from_json(json.dumps(key_ring))
    expired = AccessTokens(StaticKeys(real), clock=lambda: time.time() - 3600).issue("usr_x", "user")
    foreign = AccessTokens(StaticKeys(KeyRing.from_json(json.dumps(new_key_ring("k1"))))).issue("usr_x", "admin")
    for token in (_forged(key_ring), expired, foreign):
        with pytest.raises(Exception, match=r"^Unauthorized$"):
            authorize({"Authorization": f"Bearer {token}"})


def test_keys_from_secrets_manager_and_a_staged_rotation(monkeypatch: pytest.MonkeyPatch) -> None:
    client = boto3.client("secretsmanager")
    ring = new_key_ring("2025-01")
    arn = client.create_secret(Name=f"rampart/jwt-{uuid.uuid4().hex}", SecretString=json.dumps(ring))["ARN"]
    monkeypatch.delenv("RAMPART_JWT_KEYS")
    monkeypatch.setenv("RAMPART_JWT_SECRET_ARN", arn)
    reset_singletons()

    old = user_token()
    assert jwt.get_unverified_header(old)["kid"] == "2025-01"
    assert authorize({"Authorization": f"Bearer {old}"})["context"]["role"] == "user"

    # Step 1: stage the new key (listed, not current). Containers pick it up as their cache ages.
    new_key = new_key_ring("x")["keys"]["x"]
    staged = {"current": "2025-01", "keys": {**ring["keys"], "2025-02": new_key}}
    client.put_secret_value(SecretId=arn, SecretString=json.dumps(staged))
    reset_singletons()  # a container started after the change
    assert jwt.get_unverified_header(user_token())["kid"] == "2025-01"

    # Step 2: make it current. Old tokens still verify; new ones carry the new kid.
    current = {**staged, "current": "2025-02"}
    client.put_secret_value(SecretId=arn, SecretString=json.dumps(current))
    reset_singletons()
    newer = user_token()
    assert jwt.get_unverified_header(newer)["kid"] == "2025-02"
    assert authorize({"Authorization": f"Bearer {old}"})["context"]["role"] == "user"
    assert authorize({"Authorization": f"Bearer {newer}"})["context"]["role"] == "user"

    # Step 3, once the old key's last token has expired (15 min): drop it.
    client.put_secret_value(SecretId=arn, SecretString=json.dumps({"current": "2025-02", "keys": {"2025-02": new_key}}))
    reset_singletons()
    assert authorize({"Authorization": f"Bearer {newer}"})["context"]["role"] == "user"
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        authorize({"Authorization": f"Bearer {old}"})
