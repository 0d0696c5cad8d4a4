"""Fixtures for integration tests of the auth and admin functions: moto for DynamoDB, Secrets
Manager and API Gateway (with the tables of the manifest, the partner usage plan the admin function
imports keys into, and the users' shared API key the authorizer names), the real PostgreSQL of
``pg_url``, a fresh JWT key ring, and every per-container singleton reset around each test.

Use from a test module with ``pytest_plugins = ["tests.support.auth_fixtures"]``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.aws import IDEMPOTENCY_TABLE, RATE_LIMIT_TABLE, create_tables, new_key_ring

PARTNER_PLAN = "rampart-test-partner-plan"
USERS_API_KEY = "users-" + "0123456789abcdef" * 4  # the users' shared key of these tests


def reset_singletons() -> None:
    from rampart.adapters.aws.secrets import reset_secrets
    from rampart.adapters.postgres.db import reset_database
    from rampart.core.settings import reset_settings
    from rampart.wiring import auth as auth_wiring
    from rampart.wiring import ledger as wiring

    reset_settings()
    auth_wiring.reset()
    wiring.reset()
    reset_secrets()
    reset_database()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto, in process, with the rate-limit and idempotency tables, the partner usage plan
    (``RAMPART_PARTNER_USAGE_PLAN``) and the users' key secret (``RAMPART_USERS_API_KEY_ARN``)."""
    import boto3
    from moto import mock_aws

    for name, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        create_tables(boto3.client("dynamodb"))
        boto3.client("apigateway").create_usage_plan(name=PARTNER_PLAN)
        secretsmanager = boto3.client("secretsmanager")
        users_key = secretsmanager.create_secret(Name="rampart-users-api-key", SecretString=USERS_API_KEY)
        monkeypatch.setenv("RAMPART_PARTNER_USAGE_PLAN", PARTNER_PLAN)
        monkeypatch.setenv("RAMPART_USERS_API_KEY_ARN", users_key["ARN"])
        yield


@pytest.fixture
def key_ring() -> dict[str, Any]:
    return new_key_ring()


@pytest.fixture
def auth_env(pg_url: str, aws: None, key_ring: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The environment the auth, admin and authorizer functions run with."""
    monkeypatch.setenv("DATABASE_URL", pg_url)
    monkeypatch.setenv("RAMPART_JWT_KEYS", json.dumps(key_ring))
    monkeypatch.delenv("RAMPART_JWT_SECRET_ARN", raising=False)
    monkeypatch.setenv("RAMPART_RATE_LIMIT_TABLE", RATE_LIMIT_TABLE)
    monkeypatch.setenv("RAMPART_IDEMPOTENCY_TABLE", IDEMPOTENCY_TABLE)
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    reset_singletons()
    yield
    reset_singletons()
