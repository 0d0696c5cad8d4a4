"""The migrate function (migrations + the admin from Secrets Manager), admin seeding, and the
database URL built from the RDS secret in the cloud."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import boto3
import pytest

from functions.auth.handler import handler as auth_handler
from functions.migrate.handler import handler as migrate_handler
from rampart.adapters.postgres.db import database_url
from rampart.wiring import auth as auth_wiring
from tests.support.auth_fixtures import reset_singletons
from tests.support.events import LambdaContext, api_event, call

pytestmark = [
    pytest.mark.usefixtures("auth_env"),
    pytest.mark.filterwarnings("ignore:No application metrics to publish"),
]


def login(email: str, password: str) -> int:
    return call(auth_handler, api_event("POST", "/v1/auth/login", body={"email": email, "password": password})).status


def test_cloud_database_url_uses_a_fresh_iam_token_through_the_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL")
    monkeypatch.setenv("RAMPART_DB_PROXY_ENDPOINT", "proxy.example.internal")
    monkeypatch.setenv("RAMPART_DB_USER", "rampart")
    monkeypatch.setenv("RAMPART_DB_NAME", "rampart")
    url = urlsplit(database_url())
    assert url.scheme == "postgresql"
    assert (url.hostname, url.port, url.path) == ("proxy.example.internal", 5432, "/rampart")
    assert unquote(url.username or "") == "rampart"
    token = unquote(url.password or "")
    assert token.startswith("proxy.example.internal:5432/?Action=connect")
    assert "X-Amz-Signature=" in token  # an IAM auth token signed locally, not a stored password
    query = dict(item.split("=", 1) for item in url.query.split("&"))
    assert query["sslmode"] == "verify-full"  # the proxy's certificate and host name are checked
    assert unquote(query["sslrootcert"]).endswith("botocore/cacert.pem")
    assert "Amazon Root CA 1" in Path(unquote(query["sslrootcert"])).read_text()


def test_database_url_needs_one_or_the_other(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL")
    monkeypatch.delenv("RAMPART_DB_PROXY_ENDPOINT", raising=False)
    with pytest.raises(RuntimeError, match="DATABASE_URL"):
        database_url()


def test_migrate_applies_nothing_twice_and_seeds_the_admin_from_its_secret(
    monkeypatch: pytest.MonkeyPatch, key_ring: dict[str, Any]
) -> None:
    email = f"ops-{uuid.uuid4().hex[:8]}@rampart.example"
    client = boto3.client("secretsmanager")
    arn = client.create_secret(
        Name=f"rampart/admin-{uuid.uuid4().hex}", SecretString=json.dumps({"email": email, "password": "first pw long"})
    )["ARN"]
    monkeypatch.setenv("RAMPART_ADMIN_SECRET_ARN", arn)
    monkeypatch.delenv("RAMPART_JWT_KEYS")  # the migrate function has no JWT key secret

    reset_singletons()
    first = migrate_handler({}, LambdaContext())
    assert first["applied"] == []  # the test database is migrated already
    monkeypatch.setenv("RAMPART_JWT_KEYS", json.dumps(key_ring))
    reset_singletons()  # the auth function, which has the keys
    assert login(email, "first pw long") == 200

    client.put_secret_value(SecretId=arn, SecretString=json.dumps({"email": email, "password": "second pw long"}))
    second = migrate_handler({}, LambdaContext())
    assert second["admin_id"] == first["admin_id"]
    assert login(email, "second pw long") == 200
    assert login(email, "first pw long") == 401


def test_migrate_without_the_admin_secret_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAMPART_ADMIN_SECRET_ARN", raising=False)
    with pytest.raises(RuntimeError, match="RAMPART_ADMIN_SECRET_ARN"):
        migrate_handler({}, LambdaContext())


def test_seed_admin_defaults_env_and_the_environment_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    email = f"admin-{uuid.uuid4().hex[:8]}@rampart.example"
    monkeypatch.setenv("RAMPART_ADMIN_EMAIL", email)
    monkeypatch.setenv("RAMPART_ADMIN_PASSWORD", "the first password")
    admin = auth_wiring.seed_admin()
    assert (admin.email, admin.role) == (email, "admin")
    assert login(email, "the first password") == 200
    assert auth_wiring.seed_admin().id == admin.id  # every start: same admin

    # A session of the old password ends when the environment changes it.
    body = {"email": email, "password": "the first password"}
    refresh_token = call(auth_handler, api_event("POST", "/v1/auth/login", body=body)).body["refresh_token"]
    monkeypatch.setenv("RAMPART_ADMIN_PASSWORD", "the second password")
    reset_singletons()
    assert auth_wiring.seed_admin().id == admin.id
    assert login(email, "the second password") == 200
    assert login(email, "the first password") == 401
    refreshed = call(auth_handler, api_event("POST", "/v1/auth/refresh", body={"refresh_token": refresh_token}))
    assert refreshed.status == 401


def test_seed_admin_defaults_are_api_md_s(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAMPART_ADMIN_EMAIL", raising=False)
    monkeypatch.delenv("RAMPART_ADMIN_PASSWORD", raising=False)
    assert auth_wiring.admin_credentials() == ("admin@rampart.example", "rampart-admin-local")
    seed_admin = auth_wiring.seed_admin  # what the twin calls at every start

    admin = seed_admin()
    assert admin.email == "admin@rampart.example"
    assert login("admin@rampart.example", "rampart-admin-local") == 200
    assert seed_admin("admin@rampart.example", "rampart-admin-local").id == admin.id


def test_seeding_promotes_an_existing_user_with_that_email() -> None:
    email = f"promoted-{uuid.uuid4().hex[:8]}@rampart.example"
    body = {"email": email, "password": "a user password", "role": "user"}
    registered = call(auth_handler, api_event("POST", "/v1/auth/register", body=body))
    admin = auth_wiring.seed_admin(email, "the admin password")
    assert admin.id == registered.body["id"]
    assert admin.role == "admin"
    assert login(email, "a user password") == 401
