"""Settings and entry stacks: each manifest resource is carried by a Settings field; functions read
settings from the validated model, never from ``os.environ``; every function's handler comes from
its kind's entry stack, which maps errors one way."""

from __future__ import annotations

import ast
import base64
import importlib
import json
from pathlib import Path
from typing import Any

import pytest

from infra import manifest
from rampart.core.entry import Entry
from rampart.core.errors import Permanent, ReconciliationRequired, Transient, ValidationFailed
from rampart.core.settings import ConfigurationError, Settings, reset_settings, settings, validated
from tests.support.events import LambdaContext
from tests.support.fixture_manifest import ECHO_PATH, FIXTURE_MANIFEST

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = {"rampart": manifest.MANIFEST, "fixture": FIXTURE_MANIFEST}
ALL_FUNCTIONS = [(name, fn) for name, m in MANIFESTS.items() for fn in m.functions]
# Allowed to read the environment: the settings model itself.
ENVIRONMENT_READERS = {ROOT / "layers/core/rampart/core/settings.py"}


def handler_of(fn: manifest.Function) -> Any:
    module_name, _, attribute = fn.handler.rpartition(".")
    return getattr(importlib.import_module(module_name), attribute)


@pytest.mark.parametrize("m", MANIFESTS.values(), ids=MANIFESTS.keys())
def test_every_resource_is_carried_by_a_settings_field(m: manifest.Manifest) -> None:
    for name, resource in m.resources().items():
        if resource.setting is None:
            assert isinstance(resource, manifest.Queue | manifest.StateMachine), name  # reaches no function
            continue
        assert resource.setting in Settings.model_fields, f"{name}: no Settings.{resource.setting}"
        assert manifest.env_var(resource) == Settings.model_fields[resource.setting].alias


def _reads_environment(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "environb"):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno} os.{node.attr}")
        if isinstance(node, ast.ImportFrom) and node.module == "os":
            found += [f"{path.relative_to(ROOT)}:{node.lineno} from os import {a.name}" for a in node.names]
    return found


def test_only_the_settings_module_reads_the_environment() -> None:
    """Settings are validated once at cold start and then read from the model: no other module of
    the runtime (rampart, the handlers) reads ``os.environ`` (nor writes it: the observability
    defaults are passed to Powertools as arguments)."""
    files = [*(ROOT / "layers/core/rampart").rglob("*.py"), *(ROOT / "functions").rglob("*.py")]
    assert len(files) > 30
    offenders = [hit for path in files if path not in ENVIRONMENT_READERS for hit in _reads_environment(path)]
    assert offenders == []


@pytest.mark.parametrize(("where", "fn"), ALL_FUNCTIONS, ids=[f"{w}:{fn.name}" for w, fn in ALL_FUNCTIONS])
def test_every_handler_comes_from_its_kinds_entry_stack(where: str, fn: manifest.Function) -> None:
    handler = handler_of(fn)
    assert isinstance(getattr(handler, "entry", None), Entry), f"{fn.handler} is not built by an entry stack"
    assert (fn.kind == "api") == hasattr(handler, "idempotent_routes"), "api functions use rampart.api.app.lambda_entry"


@pytest.mark.parametrize("fn", manifest.FUNCTIONS, ids=lambda fn: fn.name)
def test_a_function_learns_what_it_uses_from_the_manifest(
    fn: manifest.Function, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The deployment's environment of a function (infra.manifest.environment, used by the CDK app
    and the twin) validates; without any one of its resources it names the missing variable."""
    resources = manifest.resources()
    values = {name: f"value-of-{name}" for name in fn.uses}
    env = manifest.environment(fn, values)
    for field in Settings.model_fields.values():
        if field.alias:
            monkeypatch.delenv(field.alias, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    reset_settings()
    validated()
    for name in sorted(fn.uses):
        setting = resources[name].setting
        if setting is None:
            continue
        variable = manifest.env_var(resources[name])
        monkeypatch.delenv(variable)
        reset_settings()  # a new container reads its environment
        with pytest.raises(ConfigurationError, match=variable):
            validated()
        monkeypatch.setenv(variable, env[variable])


# entry stacks ---------------------------------------------------------------------------------


@pytest.fixture
def quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    monkeypatch.delenv("RAMPART_USES", raising=False)
    reset_settings()


def worker(payload: Any) -> Any:
    from tests.support.fixture_functions.double_worker.handler import handler

    return handler(payload, LambdaContext())


def test_a_worker_returns_its_result(quiet: None) -> None:
    assert worker({"n": 4, "correlation_id": "c-1"}) == {"n": 8}


@pytest.mark.parametrize(
    ("payload", "error"),
    [({"fail": "Transient"}, Transient), ({"fail": "Permanent"}, Permanent), ({"n": "x"}, Permanent), ([1], Permanent)],
    ids=["transient", "permanent", "domain-error", "not-an-object"],
)
def test_a_workers_failures_leave_as_typed_errors(quiet: None, payload: Any, error: type[Exception]) -> None:
    with pytest.raises(error) as raised:
        worker(payload)
    assert type(raised.value) is error  # the class name is what Step Functions matches
    assert raised.value.__cause__ is None


def test_a_subclassed_task_error_leaves_as_its_classification(quiet: None) -> None:
    """A state machine's Retry matches "Transient" and "Busy": a chain unavailable, an operation
    held by another claim (subclasses) must leave under those names, their message kept."""
    from rampart.core.entry import worker_entry
    from rampart.core.errors import Busy
    from rampart.journal import OperationBusy, OutcomeUnknown
    from rampart.ramps.chains import ChainUnavailable, TransactionRejected

    cases = [
        (ChainUnavailable("base: no answer"), Transient),
        (OperationBusy("held until 12:00"), Busy),
        (Busy("held"), Busy),
        (Transient("no answer"), Transient),
        (TransactionRejected("nonce too low"), Permanent),
        (OutcomeUnknown("payout unknown"), ReconciliationRequired),
    ]
    for raised_error, kind in cases:

        @worker_entry("typed")
        def handler(payload: dict[str, Any], error: Exception = raised_error) -> dict[str, Any]:
            raise error

        with pytest.raises(kind) as raised:
            handler({}, LambdaContext())
        assert type(raised.value) is kind
        assert raised.value.message == raised_error.message  # type: ignore[attr-defined]


def test_an_unexpected_fault_in_a_worker_is_transient_without_detail(quiet: None) -> None:
    from rampart.core.entry import worker_entry

    @worker_entry("faulty")
    def handler(payload: dict[str, Any]) -> dict[str, Any]:
        raise KeyError("secret internals")

    with pytest.raises(Transient) as raised:
        handler({"correlation_id": "corr-42"}, LambdaContext())
    assert "secret internals" not in str(raised.value)
    assert "corr-42" in str(raised.value)


def test_a_missing_setting_fails_the_cold_start(quiet: None, monkeypatch: pytest.MonkeyPatch) -> None:
    from rampart.core.entry import worker_entry

    @worker_entry("needy")
    def handler(payload: dict[str, Any]) -> dict[str, Any]:
        return {"table": settings().idempotency_table}

    monkeypatch.setenv("RAMPART_USES", "idempotency=idempotency_table")
    monkeypatch.delenv("RAMPART_IDEMPOTENCY_TABLE", raising=False)
    with pytest.raises(ConfigurationError, match="RAMPART_IDEMPOTENCY_TABLE"):
        handler({}, LambdaContext())
    monkeypatch.setenv("RAMPART_IDEMPOTENCY_TABLE", "t")
    assert handler({}, LambdaContext()) == {"table": "t"}  # checked again on the next call, then kept
    monkeypatch.setenv("RAMPART_IDEMPOTENCY_TABLE", "changed")
    assert handler({}, LambdaContext()) == {"table": "t"}  # read once: the environment is not read again


def sqs_record(message_id: str, body: str) -> dict[str, Any]:
    return {"messageId": message_id, "receiptHandle": "r", "body": body, "attributes": {"ApproximateReceiveCount": "1"}}


def test_a_queue_function_reports_each_failed_record(quiet: None) -> None:
    from tests.support.fixture_functions.tally_queue.handler import TALLY, handler

    records = [
        sqs_record("a", '{"n": 1}'),
        sqs_record("b", '{"n": '),
        sqs_record("c", "[" * 64 + "]" * 64),  # refused by the bounded parser
        sqs_record("d", '{"n": 2}'),
        sqs_record("e", '{"n": 2.5}'),
    ]
    before = len(TALLY)
    assert handler({"Records": records}, LambdaContext()) == {
        "batchItemFailures": [{"itemIdentifier": "b"}, {"itemIdentifier": "c"}, {"itemIdentifier": "e"}]
    }
    assert TALLY[before:] == [1, 2]


def url_event(body: bytes, *, base64_encoded: bool = False) -> dict[str, Any]:
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": ECHO_PATH,
        "rawQueryString": "",
        "headers": {"content-type": "application/json"},
        "requestContext": {"http": {"method": "POST", "path": ECHO_PATH}, "requestId": "req-1"},
        "body": base64.b64encode(body).decode() if base64_encoded else body.decode(),
        "isBase64Encoded": base64_encoded,
    }


def test_a_webhook_maps_its_reply_and_its_errors(quiet: None) -> None:
    from tests.support.fixture_functions.echo_webhook.handler import handler

    ok = handler(url_event(b'{"a": 1}'), LambdaContext())
    assert ok["statusCode"] == 200
    assert json.loads(ok["body"])["echo"] == {"a": 1}
    assert ok["headers"]["X-Correlation-Id"]
    encoded = handler(url_event('{"a": "é"}'.encode(), base64_encoded=True), LambdaContext())
    assert json.loads(encoded["body"])["echo"] == {"a": "é"}
    for body, status, slug in [(b"\xff", 400, "malformed-request"), (b"[]", 422, "validation-error")]:
        refused = handler(url_event(body, base64_encoded=True), LambdaContext())
        assert refused["statusCode"] == status
        assert refused["headers"]["Content-Type"] == "application/problem+json"
        assert json.loads(refused["body"])["type"] == f"/problems/{slug}"


def test_a_scheduled_functions_refusal_is_raised_as_permanent(quiet: None) -> None:
    from tests.support.fixture_functions.tick_scheduled.handler import handler

    assert handler({"id": "evt-1"}, LambdaContext())["ticks"] >= 1
    with pytest.raises(Permanent):
        handler({"id": "evt-2", "fail": True}, LambdaContext())


def test_domain_errors_are_not_task_errors() -> None:
    """The two families stay apart: a business-rule refusal is mapped by each entry stack."""
    assert not isinstance(ValidationFailed("x"), Permanent)
