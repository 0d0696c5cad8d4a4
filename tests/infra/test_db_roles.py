"""Per-function database roles in the cloud (issue 12, §1): each function that uses PostgreSQL
connects through the proxy as its manifest role, may ``rds-db:connect`` as that user and no
other, and the proxy has an auth entry (a secret) for it; only the owner (migrate) reads the
role secrets, to set their passwords."""

from __future__ import annotations

import json
import re
from typing import Any

from infra import manifest
from infra.stacks import readback
from infra.stacks.data import DB_USER, db_login


def _function(template: dict[str, Any], name: str) -> dict[str, Any]:
    logical_id = next(k for k, v in readback.function_names(template).items() if v == name)
    resource: dict[str, Any] = template["Resources"][logical_id]
    return resource


def _policy_text(template: dict[str, Any], name: str) -> str:
    role = _function(template, name)["Properties"]["Role"]["Fn::GetAtt"][0]
    return " ".join(
        json.dumps(r["Properties"])
        for r in template["Resources"].values()
        if r.get("Type") == "AWS::IAM::Policy" and f'"{role}"' in json.dumps(r["Properties"]["Roles"])
    )


def test_each_function_connects_as_its_own_role_and_may_connect_as_nothing_else(dev_json: dict[str, Any]) -> None:
    logins = {db_login(fn) for fn in manifest.FUNCTIONS if fn.db_role is not None}
    for fn in manifest.FUNCTIONS:
        if fn.db_role is None:
            continue
        login = db_login(fn)
        env = _function(dev_json, fn.name)["Properties"]["Environment"]["Variables"]
        assert env["RAMPART_DB_USER"] == login, fn.name
        text = _policy_text(dev_json, fn.name)
        users = set(re.findall(r'"/(rampart[a-z_]*)"', text))  # the dbuser part of its rds-db:connect ARNs
        assert users == {login}, (fn.name, users, logins)
    assert db_login(manifest.function("migrate")) == DB_USER


def test_the_proxy_has_an_auth_entry_per_login_and_only_the_owner_reads_role_secrets(dev_json: dict[str, Any]) -> None:
    secrets = readback.tagged(dev_json, "AWS::SecretsManager::Secret", readback.SECRET_TAG)
    by_name = {name: logical_id for logical_id, name in secrets.items()}
    (proxy,) = (r for r in dev_json["Resources"].values() if r.get("Type") == "AWS::RDS::DBProxy")
    auth = json.dumps(proxy["Properties"]["Auth"])
    for role in manifest.MANIFEST.login_roles():
        secret = by_name[f"postgres:{role.name}"]
        assert dev_json["Resources"][secret]["Properties"]["GenerateSecretString"]["SecretStringTemplate"] == (
            json.dumps({"username": role.name}, separators=(",", ":"))
        )
        # the proxy reads the secret as attached to the cluster (host, port, engine: what rotation needs)
        attachments = [
            logical_id
            for logical_id, r in dev_json["Resources"].items()
            if r.get("Type") == "AWS::SecretsManager::SecretTargetAttachment"
            and r["Properties"]["SecretId"] == {"Ref": secret}
        ]
        assert len(attachments) == 1, role.name
        assert f'"Ref": "{attachments[0]}"' in auth, role.name
        for fn in manifest.FUNCTIONS:
            reads = f'"Ref": "{secret}"' in _policy_text(dev_json, fn.name)
            assert reads == (fn.name == "migrate"), (fn.name, role.name)
    env = _function(dev_json, "migrate")["Properties"]["Environment"]["Variables"]
    assert "RAMPART_DB_ROLE_SECRETS" in env
