"""What the synthesized templates say, read back, equals the manifest — for every stage."""

from __future__ import annotations

from typing import Any

import pytest

from infra import manifest
from infra.stacks import STAGES, readback
from infra.stacks.asynchronous import expected_queues
from tests.infra.conftest import Cloud


@pytest.mark.parametrize("stage", list(STAGES))
def test_template_equals_manifest(cloud: Cloud, stage: str) -> None:
    template = cloud.templates[stage]
    assert readback.functions(template) == {fn.name for fn in manifest.FUNCTIONS}
    assert readback.route_table(template) == readback.manifest_route_table()
    assert readback.triggers(template) == readback.manifest_triggers()
    assert readback.queues(template) == expected_queues()
    assert readback.state_machines(template) == {sm.name for sm in manifest.STATE_MACHINES}
    assert readback.tables(template) == {table.name for table in manifest.TABLES}


def test_route_table_shape(dev_json: dict[str, Any]) -> None:
    """Spot checks that the read-back is not trivially equal (paths nest, auth is read)."""
    table = readback.route_table(dev_json)
    assert readback.RouteEntry("GET", "/health", "health", False) in table
    assert readback.RouteEntry("GET", "/v1/accounts/{id}/entries", "accounts", True) in table
    assert readback.RouteEntry("POST", "/v1/transfers/{id}/void", "transfers", True) in table
    assert (
        readback.ScheduleEntry("ledger-sweep", "rate(1 minute)", "ledger_sweep")
        in readback.triggers(dev_json).schedules
    )
    assert readback.triggers(dev_json).deploy == {"migrate"}
