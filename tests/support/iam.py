"""IAM the twin can check: every AWS call a function makes, recorded, and a synthesized template's
role policies, evaluated against those calls.

moto enforces no IAM, so a call that a function's role would refuse in AWS passes every test.
This module closes that gap in two halves:

- **Recording.** A botocore ``provide-client-params`` handler (it sees every API call of every
  client, before moto or the twin's Lambda bridge answers it) notes ``(function, IAM action,
  resource)``. The function is found on the call stack: the innermost frame whose file is a
  handler module of a manifest function (``functions/<name>/handler.py``; the twin's containers
  execute copies of that same file), so it works alike for the twin's Lambda runtime and for
  tests that call a handler in process. Calls outside any function (the twin creating its
  tables, a test's own client) are not recorded. Sinks receive each call: :func:`recording`
  collects into a set for the duration of a ``with``; :func:`record_to_directory` appends JSON
  lines to ``<dir>/<xdist worker>.jsonl`` (one file per process, so xdist workers never share one).
- **Evaluation.** :func:`role_grants` reads each function's statements out of a template
  (``AWS::IAM::Policy`` documents attached to its role, the role's inline policies), resolving
  every ``Ref``/``Fn::GetAtt`` to the manifest resource it points at through the tags
  ``infra/stacks`` puts on them (``table:idempotency``, ``queue:ledger_sweep-dlq``, ``secret:jwt_keys``…).
  :func:`denied` lists the calls no Allow covers (an explicit Deny wins); :func:`unused` lists
  the grants no call used. Some calls imply another permission (``GetSecretValue`` on a secret
  encrypted with a customer-managed key needs ``kms:Decrypt`` on that key): :func:`required`
  adds those.

API Gateway's management API is authorized by HTTP verb on a path (``apigateway:POST`` on
``arn:…:apigateway:<region>::/apikeys``): a call is recorded as that verb on
``apigateway:/apikeys`` or ``apigateway:/usageplans``, or on ``usage_plan:<plan>/keys`` for a
plan's keys. A plan is named by its id in a call; the ids are learnt from the ``GetUsagePlans``
replies the same process saw (a function finds its plan by name that way first), so the call
names the plan, and the template's ``rampart:usage-plan`` tag names it on the grant's side.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
RECORD_DIR_ENV = "RAMPART_IAM_RECORD_DIR"
EVENT = "provide-client-params"


@dataclass(frozen=True, order=True)
class Call:
    function: str  # manifest name of the function that made the call
    action: str  # the IAM action, e.g. dynamodb:GetItem
    resource: str  # "<kind>:<manifest name>" when known (table:idempotency), else what was named

    def as_json(self) -> str:
        return json.dumps({"function": self.function, "action": self.action, "resource": self.resource})


# --- which function is running --------------------------------------------------------------------


def _handler_files() -> dict[str, str]:
    """Handler module file → function name, for Rampart's manifest and the tests' fixture one."""
    from infra.manifest import MANIFEST

    manifests = [MANIFEST]
    try:
        from tests.support.fixture_manifest import FIXTURE_MANIFEST

        manifests.append(FIXTURE_MANIFEST)
    except ImportError:  # pragma: no cover - the fixture manifest is part of the tests
        pass
    files: dict[str, str] = {}
    for manifest in manifests:
        for fn in manifest.functions:
            module = fn.handler.rpartition(".")[0]
            files[str(ROOT / (module.replace(".", "/") + ".py"))] = fn.name
    return files


_files: dict[str, str] | None = None
_running = threading.local()  # the twin's runtime: the functions invoked on this thread, innermost last


def current_function() -> str | None:
    """The function running on this thread: the one the twin's Lambda runtime is invoking (its
    entry stack may call AWS before any frame of the handler module runs), else the manifest
    function whose handler module is innermost on the stack (a test calling a handler itself)."""
    global _files
    stack = getattr(_running, "functions", None)
    if stack:
        return str(stack[-1])
    if _files is None:
        _files = _handler_files()
    frame = sys._getframe(1)
    while frame is not None:
        name = _files.get(frame.f_code.co_filename)
        if name is not None:
            return name
        frame = frame.f_back  # type: ignore[assignment]
    return None


# Run before every invocation by the twin's runtime (see :func:`cold_containers`).
_before_invoke: list[Callable[[], None]] = []
invoked: set[str] = set()  # every function the twin's runtime invoked in this process


def _watch_the_twins_runtime() -> None:
    """Wrap the twin's ``FunctionRuntime.invoke`` so the running function is known on its thread."""
    from infra.local.lambdas import FunctionRuntime

    original = FunctionRuntime.invoke
    if getattr(original, "_rampart_iam", False):
        return

    def invoke(self: Any, event: Any, request_id: str | None = None) -> Any:
        invoked.add(self.fn.name)
        _learn_task_token(event)
        for hook in list(_before_invoke):
            hook()
        stack = getattr(_running, "functions", None)
        if stack is None:
            stack = _running.functions = []
        stack.append(self.fn.name)
        try:
            return original(self, event, request_id)
        finally:
            stack.pop()

    invoke._rampart_iam = True  # type: ignore[attr-defined]
    FunctionRuntime.invoke = invoke  # type: ignore[method-assign]


def forget_shared_state() -> None:
    """The twin's functions share one process, so a secret or client one function cached serves
    the next: in Lambda each function's container fetches its own. Forgetting them before each
    invocation makes every function make its own calls."""
    from rampart.adapters.aws.secrets import reset_secrets
    from rampart.wiring import auth, health, ledger, ramps

    reset_secrets()
    auth.reset()
    ledger.reset()
    health.reset()
    ramps.reset()  # the PIX rail holds the API key it read


@contextmanager
def cold_containers() -> Iterator[None]:
    """While the ``with`` lasts, every twin invocation starts from :func:`forget_shared_state`."""
    _watch_the_twins_runtime()
    _before_invoke.append(forget_shared_state)
    try:
        yield
    finally:
        _before_invoke.remove(forget_shared_state)


# --- what a call is, in IAM terms -------------------------------------------------------------------

# Operations whose IAM action is not "<prefix>:<operation>".
ACTION_NAMES = {("lambda", "Invoke"): "lambda:InvokeFunction", ("lambda", "InvokeAsync"): "lambda:InvokeFunction"}
# TransactWriteItems needs the item action of each part on that part's table.
TRANSACT_PARTS = {
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
    "Get": "dynamodb:GetItem",
}


def _tail(value: str, separator: str) -> str:
    return value.rstrip(separator).rsplit(separator, 1)[-1]


# API Gateway's operations as IAM sees them: (verb, path), ``{usagePlanId}`` taken from the call.
APIGATEWAY_PATHS = {
    "CreateApiKey": ("POST", "/apikeys"),
    "GetApiKeys": ("GET", "/apikeys"),
    "GetUsagePlans": ("GET", "/usageplans"),
    "CreateUsagePlanKey": ("POST", "/usageplans/{usagePlanId}/keys"),
    "GetUsagePlanKeys": ("GET", "/usageplans/{usagePlanId}/keys"),
}
_usage_plan_names: dict[str, str] = {}  # usage plan id → its name, from GetUsagePlans replies


def _apigateway_call(function: str, operation: str, params: Mapping[str, Any]) -> Call:
    verb, path = APIGATEWAY_PATHS.get(operation, ("?", f"/{operation}"))
    plan = params.get("usagePlanId")
    if plan is None:
        return Call(function, f"apigateway:{verb}", f"apigateway:{path}")
    named = _usage_plan_names.get(str(plan), str(plan))
    return Call(function, f"apigateway:{verb}", f"usage_plan:{named}{path.split('{usagePlanId}', 1)[1]}")


# A task token → the manifest name of the state machine whose task it is (SendTaskSuccess and
# SendTaskFailure are authorized on that machine; the token alone does not say which).
_task_machines: dict[str, str] = {}


def _learn_task_token(event: Any) -> None:
    """A waiting task's payload carries its token and its execution's ARN (the ASL passes
    ``$$.Execution.Id``): arn:…:execution:<physical machine name>:<execution>."""
    from infra.manifest import MANIFEST

    if not isinstance(event, Mapping):
        return
    token, execution = event.get("task_token"), event.get("execution")
    if isinstance(token, str) and isinstance(execution, str) and ":execution:" in execution:
        physical = execution.split(":")[6]
        for machine in MANIFEST.state_machines:
            if physical.endswith(f"-{machine.name}"):
                _task_machines[token] = machine.name


def _learn_usage_plans(parsed: Mapping[str, Any] | None = None, **_: Any) -> None:
    """``after-call.api-gateway.GetUsagePlans``: remember each plan's name by its id."""
    for plan in (parsed or {}).get("items", []) or []:
        if plan.get("id") and plan.get("name"):
            _usage_plan_names[str(plan["id"])] = str(plan["name"])


def calls_of(function: str, prefix: str, operation: str, params: Mapping[str, Any]) -> list[Call]:
    """The IAM actions and raw resources one API call needs."""
    action = ACTION_NAMES.get((prefix, operation), f"{prefix}:{operation}")
    if prefix == "dynamodb" and operation in ("TransactWriteItems", "TransactGetItems"):
        found = []
        for item in params.get("TransactItems", []):
            for part, body in item.items():
                found.append(Call(function, TRANSACT_PARTS[part], f"table:{body.get('TableName', '')}"))
        return found
    if prefix == "dynamodb" and "RequestItems" in params:
        return [Call(function, action, f"table:{table}") for table in params["RequestItems"]]
    if prefix == "dynamodb":
        return [Call(function, action, f"table:{params.get('TableName', '')}")]
    if prefix == "sqs":
        url = str(params.get("QueueUrl") or params.get("QueueName") or "")
        return [Call(function, action, f"queue:{_tail(url, '/')}")]
    if prefix == "secretsmanager":
        return [Call(function, action, f"secret:{params.get('SecretId', '')}")]
    if prefix == "states" and "taskToken" in params:
        return [Call(function, action, f"state_machine:{_task_machines.get(str(params['taskToken']), '')}")]
    if prefix == "states":
        arn = str(params.get("stateMachineArn") or params.get("executionArn") or "")
        parts = arn.split(":")
        # arn:aws:states:region:account:stateMachine:<name> / …:execution:<name>:<execution>
        name = parts[6] if len(parts) > 6 else arn
        return [Call(function, action, f"state_machine:{name}")]
    if prefix == "lambda":
        return [Call(function, action, f"function:{params.get('FunctionName', '')}")]
    if prefix == "apigateway":
        return [_apigateway_call(function, operation, params)]
    return [Call(function, action, "*")]


# --- recording --------------------------------------------------------------------------------------

Sink = Callable[[Call], None]
_sinks: list[Sink] = []
_sinks_lock = threading.Lock()
_installed = False


def _on_params(params: Mapping[str, Any] | None = None, model: Any = None, **_: Any) -> None:
    if not _sinks or model is None:
        return
    function = current_function()
    if function is None:
        return
    service = model.service_model
    prefix = service.signing_name or service.endpoint_prefix
    try:
        found = calls_of(function, str(prefix), str(model.name), params or {})
    except Exception as exc:  # never break the call being recorded
        found = [Call(function, f"{prefix}:{model.name}", f"unreadable:{type(exc).__name__}")]
    with _sinks_lock:
        sinks = list(_sinks)
    for call in found:
        for sink in sinks:
            sink(call)


def install() -> None:
    """Watch every botocore session, present and future (idempotent)."""
    global _installed
    if _installed:
        return
    from infra.local.aws import register_handler

    register_handler(EVENT, _on_params)
    register_handler("after-call.api-gateway.GetUsagePlans", _learn_usage_plans)
    _watch_the_twins_runtime()
    _installed = True


def add_sink(sink: Sink) -> None:
    install()
    with _sinks_lock:
        _sinks.append(sink)


def remove_sink(sink: Sink) -> None:
    with _sinks_lock:
        if sink in _sinks:
            _sinks.remove(sink)


@contextmanager
def recording() -> Iterator[set[Call]]:
    """Every call made by a function while the ``with`` lasts (raw resources: see :func:`normalize`)."""
    seen: set[Call] = set()
    lock = threading.Lock()

    def sink(call: Call) -> None:
        with lock:
            seen.add(call)

    add_sink(sink)
    try:
        yield seen
    finally:
        remove_sink(sink)


def record_to_directory(directory: Path) -> Path:
    """Append every call of this process to ``<directory>/<worker>.jsonl`` (one line per distinct call)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{os.environ.get('PYTEST_XDIST_WORKER', 'main')}-{os.getpid()}.jsonl"
    written: set[Call] = set()
    lock = threading.Lock()

    def sink(call: Call) -> None:
        with lock:
            if call in written:
                return
            written.add(call)
            with path.open("a") as out:
                out.write(call.as_json() + "\n")

    add_sink(sink)
    return path


def read_directory(directory: Path) -> set[Call]:
    found: set[Call] = set()
    for path in sorted(directory.glob("*.jsonl")) if directory.is_dir() else []:
        for line in path.read_text().splitlines():
            if line.strip():
                found.add(Call(**json.loads(line)))
    return found


# --- from physical names to manifest names -----------------------------------------------------------


@cache
def _manifest_names() -> dict[str, set[str]]:
    from infra.manifest import MANIFEST
    from infra.stacks.asynchronous import expected_queues

    return {
        "table": {t.name for t in MANIFEST.tables},
        "queue": expected_queues(MANIFEST),
        "secret": {s.name for s in MANIFEST.secrets},
        "state_machine": {m.name for m in MANIFEST.state_machines},
        "function": {f.name for f in MANIFEST.functions},
        "usage_plan": {p.name for p in MANIFEST.usage_plans},
        "apigateway": set(_gateway_collections()),
    }


def _gateway_collections() -> list[str]:
    """API Gateway's paths that are no one resource (``/apikeys``, ``/usageplans``)."""
    return sorted({path for _, path in APIGATEWAY_PATHS.values() if "{" not in path})


# The prefixes the twin (infra/local/aws.py) and the in-process tests (tests/support/aws.py) name
# their resources with.
PREFIXES = ("rampart-local-", "rampart-local/", "rampart-")


def normalize(call: Call) -> Call:
    """``table:rampart-local-idempotency`` → ``table:idempotency``; a secret's ARN or a function's
    ARN to its manifest name. Unknown names are left as they are (and match no grant)."""
    kind, _, raw = call.resource.partition(":")
    known = _manifest_names().get(kind)
    if known is None:
        return call
    if kind == "apigateway":
        return call
    name, sub = raw, ""
    if kind == "usage_plan":  # <plan>/keys
        name, slash, rest = raw.partition("/")
        sub = slash + rest
    if kind == "secret" and ":secret:" in name:  # arn:…:secret:<name>-<6 random characters>
        name = name.split(":secret:", 1)[1]
        name = name[:-7] if len(name) > 7 and name[-7] == "-" else name
    if kind == "function" and ":function:" in name:
        name = name.split(":function:", 1)[1].split(":", 1)[0]
    for prefix in PREFIXES:
        if name.startswith(prefix):
            name = name[len(prefix) :]
            break
    for candidate in known:
        if name in (candidate, candidate.replace("_", "-")):
            return Call(call.function, call.action, f"{kind}:{candidate}{sub}")
    return call


def is_known(call: Call) -> bool:
    kind, _, name = call.resource.partition(":")
    if kind == "usage_plan":
        name = name.partition("/")[0]
    return name in _manifest_names().get(kind, set())


# --- the template's side ----------------------------------------------------------------------------


def tag_kinds() -> dict[str, str]:
    """The tags infra/stacks puts on what a function may be granted (imported late: CDK is heavy)."""
    from infra.stacks import readback

    return {
        readback.TABLE_TAG: "table",
        readback.QUEUE_TAG: "queue",
        readback.SECRET_TAG: "secret",
        readback.STATE_MACHINE_TAG: "state_machine",
        readback.FUNCTION_TAG: "function",
        readback.KEY_TAG: "key",
        readback.USAGE_PLAN_TAG: "usage_plan",
    }


@dataclass(frozen=True, order=True)
class Grant:
    function: str
    action: str  # may hold wildcards (none of ours does)
    resource: str  # "*", "<kind>:<manifest name>", or "<CloudFormation type>:<logical id>"
    suffix: str = ""  # what follows the resource's ARN ("/index/*", ":*" …)
    effect: str = "Allow"


def _tags(resource: Mapping[str, Any]) -> dict[str, str]:
    tags = resource.get("Properties", {}).get("Tags", [])
    if isinstance(tags, Mapping):
        return {str(k): str(v) for k, v in tags.items()}
    return {str(t.get("Key")): str(t.get("Value")) for t in tags if isinstance(t, Mapping)}


def resource_names(template: Mapping[str, Any]) -> dict[str, str]:
    """Logical id → ``<kind>:<manifest name>`` (tagged) or ``<type>:<logical id>``."""
    names = {}
    kinds = tag_kinds()
    for logical_id, resource in template.get("Resources", {}).items():
        tags = _tags(resource)
        names[logical_id] = next(
            (f"{kind}:{tags[key]}" for key, kind in kinds.items() if key in tags),
            f"{resource.get('Type')}:{logical_id}",
        )
    return names


def _first_ref(value: Any) -> str | None:
    """The first logical id (not a pseudo parameter) a value points at."""
    if isinstance(value, Mapping):
        ref = value.get("Ref")
        if isinstance(ref, str) and not ref.startswith("AWS::"):
            return ref
        attr = value.get("Fn::GetAtt")
        if isinstance(attr, list) and attr and isinstance(attr[0], str):
            return attr[0]
        for item in value.values():
            found = _first_ref(item)
            if found:
                return found
    elif isinstance(value, list):
        for item in value:
            found = _first_ref(item)
            if found:
                return found
    return None


_GATEWAY_ARN = re.compile(r"^arn:[^:]*:apigateway:[^:]*::(/[^{}]+)$")
# A state machine bound by its name-derived ARN (infra/stacks/stack.py: no construct reference, no cycle).
_STATE_MACHINE_ARN = re.compile(r"^arn:[^:]*:states:[^:]*:[^:]*:stateMachine:rampart-[a-z]+-([A-Za-z0-9_]+)$")
_EXECUTION_ARN = re.compile(r"^arn:[^:]*:states:[^:]*:[^:]*:execution:rampart-[a-z]+-([A-Za-z0-9_]+)(:.*)$")


def resolve(value: Any, names: Mapping[str, str]) -> tuple[str, str]:
    """A statement's resource → (resource name, suffix after it). API Gateway's collections
    (``arn:…:apigateway:<region>::/apikeys``) → ``apigateway:/apikeys``."""
    if value == "*":
        return "*", ""
    if isinstance(value, str):
        gateway = _GATEWAY_ARN.match(value)
        if gateway:
            return f"apigateway:{gateway.group(1)}", ""
        machine = _STATE_MACHINE_ARN.match(value)
        if machine:
            return f"state_machine:{machine.group(1)}", ""
        execution = _EXECUTION_ARN.match(value)  # its executions: the machine, with a suffix
        return (f"state_machine:{execution.group(1)}", execution.group(2)) if execution else (value, "")
    if isinstance(value, Mapping) and "Fn::Join" in value:
        parts = value["Fn::Join"][1]
        for i, part in enumerate(parts):
            ref = _first_ref(part)
            if ref is not None:
                tail = "".join(p for p in parts[i + 1 :] if isinstance(p, str))
                return names.get(ref, ref), tail
        return "".join(p if isinstance(p, str) else "?" for p in parts), ""
    ref = _first_ref(value)
    return (names.get(ref, ref), "") if ref else (json.dumps(value), "")


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def role_grants(template: Mapping[str, Any]) -> dict[str, list[Grant]]:
    """Every Rampart function's statements (by manifest name), resources resolved."""
    names = resource_names(template)
    resources = template.get("Resources", {})
    role_of: dict[str, str] = {}
    for logical_id, resource in resources.items():
        if resource.get("Type") != "AWS::Lambda::Function":
            continue
        function = names[logical_id]
        if not function.startswith("function:"):
            continue  # aws-cdk-lib's own helpers
        role = _first_ref(resource["Properties"].get("Role"))
        assert role is not None, logical_id
        role_of[role] = function.removeprefix("function:")
    documents: dict[str, list[Mapping[str, Any]]] = {fn: [] for fn in role_of.values()}
    for resource in resources.values():
        props = resource.get("Properties", {})
        if resource.get("Type") == "AWS::IAM::Policy":
            for role in props.get("Roles", []):
                ref = _first_ref(role)
                if ref in role_of:
                    documents[role_of[ref]].append(props["PolicyDocument"])
    for logical_id, function in role_of.items():
        for inline in resources[logical_id].get("Properties", {}).get("Policies", []):
            documents[function].append(inline["PolicyDocument"])
    grants: dict[str, list[Grant]] = {}
    for function, docs in documents.items():
        found = []
        for doc in docs:
            for statement in doc.get("Statement", []):
                for action in _listed(statement.get("Action", [])):
                    for target in _listed(statement.get("Resource", [])):
                        name, suffix = resolve(target, names)
                        found.append(Grant(function, str(action), name, suffix, statement.get("Effect", "Allow")))
        grants[function] = sorted(set(found))
    return grants


# Actions on a sub-resource of the named one (an execution of a state machine).
SUB_RESOURCE_ACTIONS = frozenset({"states:DescribeExecution", "states:StopExecution", "states:GetExecutionHistory"})


def covers(grant: Grant, call: Call) -> bool:
    if not fnmatch.fnmatchcase(call.action, grant.action):
        return False
    if grant.resource == "*":
        return True
    if grant.suffix.startswith("/") and grant.resource + grant.suffix == call.resource:
        return True  # a path under the resource (a usage plan's /keys)
    if grant.resource != call.resource:
        return False
    return grant.suffix == "" or call.action in SUB_RESOURCE_ACTIONS


def required(template: Mapping[str, Any], calls: Iterable[Call]) -> set[Call]:
    """The calls plus what they imply: reading a secret encrypted with a customer-managed key
    needs ``kms:Decrypt`` on that key (Secrets Manager decrypts with the caller's permissions)."""
    names = resource_names(template)
    key_of: dict[str, str] = {}
    for logical_id, resource in template.get("Resources", {}).items():
        if resource.get("Type") == "AWS::SecretsManager::Secret":
            key = _first_ref(resource.get("Properties", {}).get("KmsKeyId"))
            if key is not None:
                key_of[names[logical_id]] = names.get(key, key)
    needed = set(calls)
    for call in calls:
        if call.action == "secretsmanager:GetSecretValue" and call.resource in key_of:
            needed.add(Call(call.function, "kms:Decrypt", key_of[call.resource]))
    return needed


def denied(grants: Mapping[str, list[Grant]], calls: Iterable[Call]) -> list[Call]:
    """The calls the function's role does not allow (no Allow covers it, or a Deny does)."""
    refused = []
    for call in sorted(calls):
        statements = grants.get(call.function, [])
        allowed = any(g.effect == "Allow" and covers(g, call) for g in statements)
        if not allowed or any(g.effect == "Deny" and covers(g, call) for g in statements):
            refused.append(call)
    return refused


def unused(grants: Mapping[str, list[Grant]], calls: Iterable[Call], reasons: Mapping[str, str]) -> list[Grant]:
    """Allowed (function, action, resource) that no call used and no reason explains. ``reasons``
    is keyed by fnmatch patterns of ``action``, ``function:action`` or ``action@resource``."""
    made = list(calls)
    left = []
    for function, statements in grants.items():
        for grant in statements:
            if grant.effect != "Allow":
                continue
            if any(c.function == function and covers(grant, c) for c in made):
                continue
            keys = (grant.action, f"{function}:{grant.action}", f"{grant.action}@{grant.resource}")
            if any(fnmatch.fnmatchcase(k, pattern) for k in keys for pattern in reasons):
                continue
            left.append(grant)
    return left


def install_from_environment() -> Path | None:
    """The test suite's recording (tests/conftest.py): every process appends the calls its functions
    make under ``$RAMPART_IAM_RECORD_DIR`` when it is set."""
    directory = os.environ.get(RECORD_DIR_ENV)
    if not directory:
        return None
    return record_to_directory(Path(directory))
