"""The migrate function runs on every deploy after the database and before the API, and its
packaged code (the rampart layer) carries every migration file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from infra.stacks import readback
from infra.stacks.migrations import MIGRATIONS, migrations_fingerprint
from tests.infra.conftest import Cloud


def _ids(template: dict[str, Any], resource_type: str) -> set[str]:
    return set(readback.resources(template, resource_type))


def _trigger(template: dict[str, Any]) -> str:
    (trigger,) = _ids(template, "Custom::Trigger")
    return trigger


def test_migration_files_are_packaged_with_the_migrate_function(cloud: Cloud, dev_json: dict[str, Any]) -> None:
    migrate = next(k for k, v in readback.function_names(dev_json).items() if v == "migrate")
    layers = dev_json["Resources"][migrate]["Properties"]["Layers"]
    sources = sorted(MIGRATIONS.glob("*.sql"))
    assert sources
    packaged = []
    for layer in layers:
        content = dev_json["Resources"][layer["Ref"]]["Properties"]["Content"]
        folder = cloud.asset_dir(content["S3Key"]) / "python" / "rampart" / "adapters" / "postgres" / "migrations"
        packaged += sorted(folder.glob("*.sql"))
    assert [p.name for p in packaged] == [p.name for p in sources]
    assert all(p.read_bytes() == s.read_bytes() for p, s in zip(packaged, sources, strict=True))
    assert (packaged[0].parents[1] / "migrate.py").is_file(), "the migration runner ships beside them"


def test_the_trigger_runs_migrate_after_the_database_and_before_the_api(dev_json: dict[str, Any]) -> None:
    trigger = _trigger(dev_json)
    assert readback.deploy_triggers(dev_json) == {"migrate"}
    props = dev_json["Resources"][trigger]["Properties"]
    assert props["InvocationType"] == "RequestResponse", "a failed migration fails the deploy"
    assert props["Timeout"] == str(300 * 1000)

    before = readback.all_dependencies(dev_json, trigger)
    database = (
        _ids(dev_json, "AWS::RDS::DBCluster")
        | _ids(dev_json, "AWS::RDS::DBInstance")
        | _ids(dev_json, "AWS::RDS::DBProxy")
        | _ids(dev_json, "AWS::RDS::DBProxyTargetGroup")
    )
    assert database <= before, "the database (cluster, writer, proxy and its target) exists first"
    api = {
        logical_id
        for logical_id, r in dev_json["Resources"].items()
        if r["Type"].startswith("AWS::ApiGateway::") and r["Type"] != "AWS::ApiGateway::Account"
    }
    assert api
    assert not (api & before), "nothing of the API is needed to migrate"
    for logical_id in api:
        assert trigger in readback.all_dependencies(dev_json, logical_id), f"{logical_id} waits for migrations"


def test_the_trigger_reruns_when_migrations_change(dev_json: dict[str, Any], tmp_path: Path) -> None:
    assert dev_json["Resources"][_trigger(dev_json)]["Properties"]["DeployId"] == migrations_fingerprint()
    (tmp_path / "0001.a.sql").write_text("SELECT 1;")
    first = migrations_fingerprint(tmp_path)
    (tmp_path / "0002.b.sql").write_text("SELECT 2;")
    assert migrations_fingerprint(tmp_path) != first
