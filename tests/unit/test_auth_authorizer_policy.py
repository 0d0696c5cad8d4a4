"""The authorizer's pure parts: reading credentials, the stage ARN, the policy and context."""

from __future__ import annotations

import pytest

from rampart.api.authorizer import Unauthorized, credentials, policy, stage_arn
from rampart.auth import Identity
from tests.support.events import authorizer_event, method_arn

STAGE = "arn:aws:execute-api:us-east-1:123456789012:rampart01/test"


def test_stage_arn() -> None:
    assert stage_arn(method_arn("GET", "/v1/accounts/42")) == STAGE
    china = "arn:aws-cn:execute-api:cn-north-1:1:api/prod"
    assert stage_arn(f"{china}/POST/") == china


@pytest.mark.parametrize("arn", ["", "arn:aws:lambda:us-east-1:1:function:x", "arn:aws:execute-api:r:1:api"])
def test_stage_arn_refuses_other_arns(arn: str) -> None:
    with pytest.raises(ValueError):
        stage_arn(arn)


def test_user_policy_allows_the_api_and_denies_admin_routes() -> None:
    answer = policy(Identity("usr_1", "user"), method_arn("GET", "/v1/me"))
    assert answer["principalId"] == "usr_1"
    statements = answer["policyDocument"]["Statement"]
    assert {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": [f"{STAGE}/*/*"]} in statements
    assert {"Action": "execute-api:Invoke", "Effect": "Deny", "Resource": [f"{STAGE}/*/v1/admin/*"]} in statements
    assert answer["context"] == {"principalId": "usr_1", "role": "user", "kind": "user"}


def test_admin_policy_has_no_deny() -> None:
    answer = policy(Identity("usr_9", "admin"), method_arn("POST", "/v1/admin/partners"))
    assert [s["Effect"] for s in answer["policyDocument"]["Statement"]] == ["Allow"]


def test_partner_context_names_the_partner() -> None:
    answer = policy(Identity("prt_1", "partner", "partner", "prt_1"), method_arn("POST", "/v1/quotes"))
    assert answer["context"] == {"principalId": "prt_1", "role": "partner", "kind": "partner", "partnerId": "prt_1"}
    assert "Deny" in [s["Effect"] for s in answer["policyDocument"]["Statement"]]
    for value in answer["context"].values():  # API Gateway accepts only scalars in the context
        assert isinstance(value, str | int | bool)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Authorization": "Bearer abc.def.ghi"}, ("bearer", "abc.def.ghi")),
        ({"authorization": "bearer abc"}, ("bearer", "abc")),
        ({"AUTHORIZATION": "BEARER  abc "}, ("bearer", "abc")),
        ({"X-Api-Key": "rpk_x"}, ("api_key", "rpk_x")),
        ({"x-api-key": "rpk_x"}, ("api_key", "rpk_x")),
        ({"Authorization": "Bearer t", "X-Api-Key": "rpk_x"}, ("bearer", "t")),
    ],
)
def test_credentials(headers: dict[str, str], expected: tuple[str, str]) -> None:
    assert credentials(authorizer_event(headers)) == expected


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer "},
        {"Authorization": "Basic YWRhOnB3"},
        {"Authorization": "Token abc"},
        {"Authorization": "Bearer", "X-Api-Key": "rpk_x"},
        {"X-Api-Key": ""},
    ],
)
def test_missing_or_unusable_credentials_are_unauthorized(headers: dict[str, str]) -> None:
    with pytest.raises(Unauthorized, match=r"^Unauthorized$"):
        credentials(authorizer_event(headers))


def test_event_without_headers_is_unauthorized() -> None:
    with pytest.raises(Unauthorized):
        credentials({"type": "REQUEST", "methodArn": method_arn("GET", "/v1/me"), "headers": None})
