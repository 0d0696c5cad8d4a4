"""Fixtures for integration tests of the auth and admin functions: moto for DynamoDB and
Secrets Manager (with the tables of the manifest), the real PostgreSQL of ``pg_url``, a fresh JWT
key ring, and every per-container singleton reset around each test.

Use from a test module with ``pytest_plugins = ["tests.support.auth_fixtures"]``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.aws import IDEMPOTENCY_TABLE, RATE_LIMIT_TABLE, create_tables, new_key_ring


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
    """moto, in process, with the rate-limit and idempotency tables."""
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
