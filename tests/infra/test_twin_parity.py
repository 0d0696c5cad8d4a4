"""Parity (issue 4, Verification): the routes, functions, schedules, queues and state machines
read back from the synthesized template equal the manifest, and equal what a running twin
reports about itself — asked over HTTP at run time (``GET /_twin/routes``, ``GET /_twin/triggers``),
never read from the manifest. Both sides speak manifest-level names: the template through its
``rampart:*`` tags (``infra.stacks.readback``), the twin with its ``rampart-local-`` prefix removed.

The twin is a child process (``python -m infra.local``) on a database of its own, as in the e2e
tests; ``RAMPART_E2E_URL`` compares with a twin that is already running instead."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
import requests

from infra import manifest
from infra.stacks import readback
from infra.stacks.asynchronous import expected_queues
from tests.e2e.conftest import START_TIMEOUT, _child, _fresh_database, _wait_healthy


@pytest.fixture(scope="module")
def twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    given = os.environ.get("RAMPART_E2E_URL")
    if given:
        _wait_healthy(given.rstrip("/"), time.monotonic() + START_TIMEOUT)
        yield given.rstrip("/")
        return
    yield from _child(_fresh_database("rampart_parity"), tmp_path_factory.mktemp("parity-twin"))


def _get(url: str) -> Any:
    reply = requests.get(url, timeout=30)
    reply.raise_for_status()
    return reply.json()


@pytest.fixture(scope="module")
def twin_routes(twin: str) -> set[readback.RouteEntry]:
    served = _get(f"{twin}/_twin/routes")
    table = {readback.RouteEntry(r["method"], r["path"], r["function"], bool(r["auth"])) for r in served}
    assert len(table) == len(served), "the twin serves a route twice"
    return table


@pytest.fixture(scope="module")
def twin_triggers(twin: str) -> dict[str, Any]:
    triggers: dict[str, Any] = _get(f"{twin}/_twin/triggers")
    return triggers


# the template's side, beyond readback's route table and triggers -----------------------------------


def template_functions(template: Mapping[str, Any]) -> dict[str, tuple[str, int, int]]:
    """Manifest name → (handler, timeout seconds, memory MB) of every Rampart function."""
    found = {}
    for logical_id, name in readback.function_names(template).items():
        props = template["Resources"][logical_id]["Properties"]
        found[name] = (props["Handler"], int(props["Timeout"]), int(props["MemorySize"]))
    return found


def template_dead_letter_queues(template: Mapping[str, Any]) -> dict[str, str]:
    """Function → the queue its failed asynchronous invocations go to (an on-failure destination
    or a DeadLetterConfig), both by manifest name."""
    functions = readback.function_names(template)
    queues = readback.tagged(template, "AWS::SQS::Queue", readback.QUEUE_TAG)
    found = {}
    for config in readback.resources(template, "AWS::Lambda::EventInvokeConfig").values():
        props = config["Properties"]
        targets = readback.referenced_logical_ids(props.get("DestinationConfig", {}).get("OnFailure", {}))
        owners = readback.referenced_logical_ids(props["FunctionName"])
        for owner in owners & set(functions):
            for target in targets & set(queues):
                found[functions[owner]] = queues[target]
    for logical_id, name in functions.items():
        target_arn = template["Resources"][logical_id]["Properties"].get("DeadLetterConfig", {}).get("TargetArn")
        for target in readback.referenced_logical_ids(target_arn) & set(queues):
            found[name] = queues[target]
    # A manifest queue's redrive policy names its DLQ.
    for logical_id, name in queues.items():
        redrive = template["Resources"][logical_id]["Properties"].get("RedrivePolicy", {})
        for target in readback.referenced_logical_ids(redrive) & set(queues):
            found[name] = queues[target]
    return found


def template_tables(template: Mapping[str, Any]) -> dict[str, tuple[str | None, str | None, str | None]]:
    """Table → (partition key, sort key, TTL attribute)."""
    found = {}
    for logical_id, name in readback.tagged(template, "AWS::DynamoDB::Table", readback.TABLE_TAG).items():
        props = template["Resources"][logical_id]["Properties"]
        keys = {k["KeyType"]: k["AttributeName"] for k in props["KeySchema"]}
        ttl = props.get("TimeToLiveSpecification") or {}
        found[name] = (keys.get("HASH"), keys.get("RANGE"), ttl.get("AttributeName") if ttl.get("Enabled") else None)
    return found


# parity -------------------------------------------------------------------------------------------


def test_routes(dev_json: dict[str, Any], twin_routes: set[readback.RouteEntry]) -> None:
    cloud = readback.route_table(dev_json)
    assert cloud == readback.manifest_route_table()
    assert twin_routes == cloud, {"only in the twin": twin_routes - cloud, "only in the cloud": cloud - twin_routes}
    # not trivially equal: every kind of route is there on both sides
    assert readback.RouteEntry("GET", "/health", "health", False) in twin_routes
    assert readback.RouteEntry("POST", "/v1/transfers/{id}/post", "transfers", True) in twin_routes


def test_functions(dev_json: dict[str, Any], twin_triggers: dict[str, Any]) -> None:
    cloud = template_functions(dev_json)
    twin = {f["name"]: (f["handler"], f["timeout_seconds"], f["memory_mb"]) for f in twin_triggers["functions"]}
    assert set(cloud) == readback.functions(dev_json) == {fn.name for fn in manifest.FUNCTIONS}
    assert twin == cloud


def test_schedules_and_deploy_triggers(dev_json: dict[str, Any], twin_triggers: dict[str, Any]) -> None:
    cloud = readback.triggers(dev_json)
    assert cloud == readback.manifest_triggers()
    schedules = {readback.ScheduleEntry(s["name"], s["rate"], s["function"]) for s in twin_triggers["schedules"]}
    assert schedules == cloud.schedules
    assert set(twin_triggers["deploy"]) == cloud.deploy
    assert cloud.schedules
    assert cloud.deploy


def test_queues_and_dead_letter_queues(dev_json: dict[str, Any], twin_triggers: dict[str, Any]) -> None:
    cloud = readback.queues(dev_json)
    assert cloud == expected_queues()
    assert {q["name"] for q in twin_triggers["queues"]} == cloud
    twin_dlqs = {q["dead_letter_queue_of"]: q["name"] for q in twin_triggers["queues"] if q["dead_letter_queue_of"]}
    assert twin_dlqs == template_dead_letter_queues(dev_json)
    assert set(twin_dlqs) == {fn.name for fn in manifest.FUNCTIONS if fn.asynchronous} | {
        q.name for q in manifest.QUEUES
    }


def test_tables(dev_json: dict[str, Any], twin_triggers: dict[str, Any]) -> None:
    cloud = template_tables(dev_json)
    assert set(cloud) == readback.tables(dev_json) == {t.name for t in manifest.TABLES}
    twin = {t["name"]: (t["partition_key"], t["sort_key"], t["ttl_attribute"]) for t in twin_triggers["tables"]}
    assert twin == cloud


def test_state_machines(dev_json: dict[str, Any], twin_triggers: dict[str, Any]) -> None:
    cloud = readback.state_machines(dev_json)
    assert cloud == {sm.name for sm in manifest.STATE_MACHINES}
    assert {m["name"] for m in twin_triggers["state_machines"]} == cloud


def _with_machine_name(pattern: Mapping[str, Any], machines: Mapping[str, str]) -> tuple[str, str]:
    """(state machine's manifest name, the pattern with its ARN replaced by that name, as JSON)."""
    (arn,) = pattern["detail"]["stateMachineArn"]
    name = machines[arn]
    normalized = {**pattern, "detail": {**pattern["detail"], "stateMachineArn": [name]}}
    return name, json.dumps(normalized, sort_keys=True)


def test_execution_rules(dev_json: dict[str, Any], twin_triggers: dict[str, Any]) -> None:
    """Each state machine's failed, timed-out and aborted executions go to the executions DLQ by
    the same pattern on both sides (infra/stacks/asynchronous.py, infra/local/executions.py)."""
    tagged = readback.tagged(dev_json, "AWS::StepFunctions::StateMachine", readback.STATE_MACHINE_TAG)
    physical = {dev_json["Resources"][k]["Properties"]["StateMachineName"]: name for k, name in tagged.items()}
    queues = readback.tagged(dev_json, "AWS::SQS::Queue", readback.QUEUE_TAG)
    cloud = {}
    for rule in readback.resources(dev_json, "AWS::Events::Rule").values():
        props = rule["Properties"]
        if "aws.states" not in props.get("EventPattern", {}).get("source", []):
            continue
        arns = {arn: physical[arn.rsplit(":", 1)[-1]] for arn in props["EventPattern"]["detail"]["stateMachineArn"]}
        name, pattern = _with_machine_name(props["EventPattern"], arns)
        targets = sorted(queues[i] for t in props["Targets"] for i in readback.referenced_logical_ids(t["Arn"]))
        cloud[name] = (pattern, targets)
    machines = {m["arn"]: m["name"] for m in twin_triggers["state_machines"]}
    twin = {}
    for rule in twin_triggers["execution_rules"]:
        name, pattern = _with_machine_name(rule["event_pattern"], machines)
        assert rule["state_machine"] == name
        twin[name] = (pattern, sorted(rule["queues"]))
    assert set(cloud) == {sm.name for sm in manifest.STATE_MACHINES}
    assert twin == cloud
