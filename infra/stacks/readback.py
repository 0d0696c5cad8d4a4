"""Read the manifest's shape back out of a synthesized CloudFormation template.

Pure functions over the template's JSON (no CDK import), so that any test can compare a
template with the manifest — and, with the local twin, with the route table and triggers a
running twin reports: :func:`route_table` and :func:`triggers` are the cloud side of that parity.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from infra.manifest import Manifest

FUNCTION_TAG = "rampart:function"
QUEUE_TAG = "rampart:queue"
TABLE_TAG = "rampart:table"
STATE_MACHINE_TAG = "rampart:state-machine"
SECRET_TAG = "rampart:secret"  # noqa: S105 - a tag key; manifest secrets by name, the Aurora secret as "postgres"
KEY_TAG = "rampart:key"  # customer-managed KMS keys by purpose
USAGE_PLAN_TAG = "rampart:usage-plan"  # API Gateway usage plans by manifest name
SCHEDULE_PREFIX = "rampart schedule "

Template = Mapping[str, Any]


@dataclass(frozen=True, order=True)
class RouteEntry:
    method: str
    path: str
    function: str
    auth: bool


@dataclass(frozen=True, order=True)
class ScheduleEntry:
    name: str
    rate: str
    function: str


@dataclass(frozen=True)
class Triggers:
    schedules: frozenset[ScheduleEntry]
    deploy: frozenset[str]  # functions run by a deploy trigger


def resources(template: Template, resource_type: str) -> dict[str, Mapping[str, Any]]:
    return {k: r for k, r in template.get("Resources", {}).items() if r.get("Type") == resource_type}


def tag(resource: Mapping[str, Any], key: str) -> str | None:
    tags = resource.get("Properties", {}).get("Tags", [])
    if isinstance(tags, Mapping):  # some resource types take a map
        value = tags.get(key)
        return str(value) if value is not None else None
    for item in tags:
        if item.get("Key") == key:
            return str(item.get("Value"))
    return None


def tagged(template: Template, resource_type: str, key: str) -> dict[str, str]:
    """logical id → tag value, for every resource of the type that carries the tag."""
    found = {}
    for logical_id, resource in resources(template, resource_type).items():
        value = tag(resource, key)
        if value is not None:
            found[logical_id] = value
    return found


def function_names(template: Template) -> dict[str, str]:
    """Logical id → manifest name of every Rampart function (aws-cdk-lib's helpers excluded)."""
    return tagged(template, "AWS::Lambda::Function", FUNCTION_TAG)


def functions(template: Template) -> set[str]:
    return set(function_names(template).values())


def queues(template: Template) -> set[str]:
    return set(tagged(template, "AWS::SQS::Queue", QUEUE_TAG).values())


def tables(template: Template) -> set[str]:
    return set(tagged(template, "AWS::DynamoDB::Table", TABLE_TAG).values())


def state_machines(template: Template) -> set[str]:
    return set(tagged(template, "AWS::StepFunctions::StateMachine", STATE_MACHINE_TAG).values())


def _walk(value: Any) -> Iterator[Any]:
    yield value
    if isinstance(value, Mapping):
        for item in value.values():
            yield from _walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item)


def referenced_logical_ids(value: Any) -> set[str]:
    """Every logical id a value points at through Ref or Fn::GetAtt."""
    found: set[str] = set()
    for node in _walk(value):
        if isinstance(node, Mapping):
            if isinstance(node.get("Ref"), str):
                found.add(node["Ref"])
            attr = node.get("Fn::GetAtt")
            if isinstance(attr, list) and attr and isinstance(attr[0], str):
                found.add(attr[0])
    return found


def _function_of(value: Any, names: Mapping[str, str]) -> str | None:
    hits = {names[i] for i in referenced_logical_ids(value) if i in names}
    if len(hits) > 1:
        raise ValueError(f"expected one function, found {sorted(hits)}")
    return hits.pop() if hits else None


def resource_paths(template: Template) -> dict[str, str]:
    """Logical id of every API Gateway resource (and ``<api>.root``) → its full path."""
    api_resources = resources(template, "AWS::ApiGateway::Resource")
    paths: dict[str, str] = {}

    def path_of(logical_id: str) -> str:
        if logical_id not in paths:
            props = api_resources[logical_id]["Properties"]
            parent = props["ParentId"]
            parent_path = path_of(parent["Ref"]) if "Ref" in parent else ""
            paths[logical_id] = f"{parent_path}/{props['PathPart']}"
        return paths[logical_id]

    for logical_id in api_resources:
        path_of(logical_id)
    return paths


def route_table(template: Template) -> set[RouteEntry]:
    """(method, path, function, auth) of every API method proxied to a Rampart function."""
    names = function_names(template)
    paths = resource_paths(template)
    routes = set()
    for method in resources(template, "AWS::ApiGateway::Method").values():
        props = method["Properties"]
        if props["HttpMethod"] == "OPTIONS":
            continue
        resource_id = props["ResourceId"]
        path = paths[resource_id["Ref"]] if "Ref" in resource_id else "/"
        function = _function_of(props.get("Integration", {}).get("Uri"), names)
        if function is None:
            continue
        routes.add(RouteEntry(props["HttpMethod"], path, function, props.get("AuthorizationType", "NONE") != "NONE"))
    return routes


def schedules(template: Template) -> set[ScheduleEntry]:
    names = function_names(template)
    found = set()
    for rule in resources(template, "AWS::Events::Rule").values():
        props = rule["Properties"]
        description = props.get("Description", "")
        if not description.startswith(SCHEDULE_PREFIX) or "ScheduleExpression" not in props:
            continue
        for target in props.get("Targets", []):
            function = _function_of(target.get("Arn"), names)
            if function is not None:
                found.add(ScheduleEntry(description[len(SCHEDULE_PREFIX) :], props["ScheduleExpression"], function))
    return found


def deploy_triggers(template: Template) -> set[str]:
    """Functions a ``Custom::Trigger`` runs on deploy (through their current version)."""
    names = function_names(template)
    versions = resources(template, "AWS::Lambda::Version")
    found = set()
    for trigger in resources(template, "Custom::Trigger").values():
        handler = trigger["Properties"]["HandlerArn"]
        for logical_id in referenced_logical_ids(handler):
            target = versions[logical_id]["Properties"]["FunctionName"] if logical_id in versions else handler
            function = _function_of(target, names)
            if function is not None:
                found.add(function)
    return found


def triggers(template: Template) -> Triggers:
    """Everything that invokes a function other than an HTTP route."""
    return Triggers(schedules=frozenset(schedules(template)), deploy=frozenset(deploy_triggers(template)))


def depends_on(template: Template, logical_id: str) -> set[str]:
    """Direct dependencies of a resource: DependsOn plus Ref/GetAtt in its properties."""
    resource = template["Resources"][logical_id]
    explicit = resource.get("DependsOn", [])
    explicit = [explicit] if isinstance(explicit, str) else list(explicit)
    known = set(template["Resources"])
    return (set(explicit) | referenced_logical_ids(resource.get("Properties", {}))) & known


def all_dependencies(template: Template, logical_id: str) -> set[str]:
    """Transitive closure of :func:`depends_on`."""
    seen: set[str] = set()
    todo = [logical_id]
    while todo:
        for dep in depends_on(template, todo.pop()):
            if dep not in seen:
                seen.add(dep)
                todo.append(dep)
    return seen


# --- the same shapes, from the manifest --------------------------------------------------------


def manifest_route_table(manifest: Manifest | None = None) -> set[RouteEntry]:
    """The route table ``manifest`` (Rampart's by default) declares."""
    from infra.manifest import MANIFEST

    declared = manifest or MANIFEST
    return {RouteEntry(route.method, route.path, fn.name, route.auth) for route, fn in declared.routes()}


def manifest_triggers(manifest: Manifest | None = None) -> Triggers:
    from infra.manifest import MANIFEST

    declared = manifest or MANIFEST
    return Triggers(
        schedules=frozenset(ScheduleEntry(s.name, s.rate, s.function) for s in declared.schedules),
        deploy=frozenset(fn.name for fn in declared.of_kind("deploy")),
    )
