"""The shared entry point: environment validated at cold start, and idempotency never storing a
5xx (the retry runs again) while it does store a 4xx (the retry is a replay)."""

from __future__ import annotations

import uuid

import pytest
from aws_lambda_powertools.event_handler import Response

from rampart.api.app import create_app, json_response, lambda_entry
from rampart.core.errors import InsufficientFunds
from tests.support.events import LambdaContext, api_event, call

PRINCIPAL = {"principalId": "usr_entry", "role": "user", "kind": "user"}


def handler_for(outcomes: list[str]) -> object:
    app = create_app()

    @app.post("/v1/things")
    def make() -> Response[str]:
        outcome = outcomes.pop(0)
        if outcome == "fault":
            raise RuntimeError("the database went away")
        if outcome == "refusal":
            raise InsufficientFunds("not enough", field="/amount")
        return json_response(201, {"made": True})

    return lambda_entry(app, service="things", idempotent={"POST /v1/things"})


def post(handler: object, key: str, body: dict[str, str]) -> tuple[int, dict[str, str]]:
    event = api_event("POST", "/v1/things", headers={"Idempotency-Key": key}, body=body, principal=PRINCIPAL)
    reply = call(handler, event, LambdaContext())
    return reply.status, reply.headers


def test_a_5xx_is_not_stored_so_the_retry_runs_again(auth_env: None) -> None:
    outcomes = ["fault", "ok"]
    handler = handler_for(outcomes)
    key = uuid.uuid4().hex
    status, _ = post(handler, key, {"n": "1"})
    assert status == 500
    status, headers = post(handler, key, {"n": "1"})
    assert status == 201
    assert "idempotent-replayed" not in headers
    assert outcomes == []  # the route ran twice


def test_a_4xx_is_stored_so_the_retry_is_a_replay(auth_env: None) -> None:
    outcomes = ["refusal", "ok"]
    handler = handler_for(outcomes)
    key = uuid.uuid4().hex
    assert post(handler, key, {"n": "1"})[0] == 422
    status, headers = post(handler, key, {"n": "1"})
    assert status == 422
    assert headers.get("idempotent-replayed") == "true"
    assert outcomes == ["ok"]  # the route ran once


def test_environment_is_validated_on_the_first_invocation(auth_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    handler = handler_for(["ok"])
    monkeypatch.delenv("RAMPART_IDEMPOTENCY_TABLE")
    event = api_event("POST", "/v1/things", headers={"Idempotency-Key": "k"}, body={"n": "1"}, principal=PRINCIPAL)
    first = call(handler, event, LambdaContext())
    assert first.status == 500  # a configuration fault: logged, no detail leaks
    assert "RAMPART_IDEMPOTENCY_TABLE" not in str(first.body)
    monkeypatch.setenv("RAMPART_IDEMPOTENCY_TABLE", "rampart-idempotency")
    assert call(handler, event, LambdaContext()).status == 201  # validated again, now complete


def test_settings_name_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a function uses reaches it as RAMPART_USES (resource=setting pairs, from the manifest)."""
    from rampart.core.settings import ConfigurationError, reset_settings, validated

    for name in ("DATABASE_URL", "RAMPART_DB_PROXY_ENDPOINT", "RAMPART_JWT_SECRET_ARN", "RAMPART_JWT_KEYS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RAMPART_USES", "jwt_keys=jwt_secret_arn,postgres=database_url")
    reset_settings()
    with pytest.raises(ConfigurationError, match=r"DATABASE_URL.*RAMPART_JWT_SECRET_ARN"):
        validated()
    monkeypatch.setenv("DATABASE_URL", "postgresql://x/y")
    monkeypatch.setenv("RAMPART_JWT_KEYS", "{}")
    assert validated().database_url == "postgresql://x/y"  # a failed validation reads the environment again
