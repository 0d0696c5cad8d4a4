"""One entry stack per kind of function (``infra/manifest.py``'s ``Kind``), on one shared part.

The shared part (:class:`Entry`): Powertools Logger (JSON, a correlation id on every line),
Tracer and Metrics (namespace ``Rampart``, cold starts counted); the settings validated on the
container's first invocation (:func:`rampart.core.settings.validated`: every resource in
``RAMPART_USES`` present) and then read from the model; domain errors mapped one way per kind.

The kinds built here, for asynchronous work (a handler module stays thin: it decorates one
function)::

    @worker_entry("double_worker")          # a Step Functions task: JSON object in, JSON object out
    def handler(payload: dict[str, Any]) -> dict[str, Any]: ...

    @queue_entry("tally")                   # an SQS consumer: one call per record
    def handler(message: QueueMessage) -> None: ...

    @scheduled_entry("ledger_sweep")        # an EventBridge schedule
    def handler(event: dict[str, Any]) -> dict[str, Any]: ...

    @deploy_entry("migrate")                # run once per deploy
    def handler(event: dict[str, Any]) -> dict[str, Any]: ...

The HTTP kinds live with the rest of HTTP in :mod:`rampart.api`: ``api``
(:func:`rampart.api.app.lambda_entry`), ``webhook`` (:func:`rampart.api.webhook.webhook_entry`)
and ``authorizer`` (:func:`rampart.api.authorizer.authorizer_entry`).

How errors leave an asynchronous function (ARCHITECTURE.md, "Errors"): as a
:class:`~rampart.core.errors.TaskError` whose class name is the error Step Functions' Retry/Catch
match on. A ``TaskError`` raised by the handler goes out as it is; a ``DomainError`` (a business
rule refused the input) becomes ``Permanent``; a missing setting stays a ``ConfigurationError``;
any other fault is logged with its traceback and becomes ``Transient`` (retried, then caught): its
message names the correlation id, never a stack trace.
"""

from __future__ import annotations

import json
import re
import uuid
import warnings
from collections.abc import Callable, Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from rampart.core.errors import Busy, DomainError, Permanent, ReconciliationRequired, TaskError, Transient
from rampart.core.settings import ConfigurationError, Settings, settings, validated

NAMESPACE = "Rampart"
LambdaHandler = Callable[[Any, Any], Any]
_CORRELATION_RE = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


def valid_correlation_id(value: object) -> str | None:
    """``value`` when it is usable as a correlation id (a short token), else None."""
    return value if isinstance(value, str) and _CORRELATION_RE.match(value) else None


def request_id(context: Any) -> str:
    """The invocation's request id (a fresh one when the context has none)."""
    return valid_correlation_id(getattr(context, "aws_request_id", None)) or str(uuid.uuid4())


class _NoContext:
    """What a handler called without a Lambda context (a script, a test) logs instead."""

    def __init__(self, service: str) -> None:
        self.function_name = service
        self.memory_limit_in_mb = 0
        self.invoked_function_arn = ""
        self.aws_request_id = str(uuid.uuid4())

    def get_remaining_time_in_millis(self) -> int:
        return 0


class Entry:
    """What every kind's entry stack shares. One per handler module (per container)."""

    def __init__(self, service: str, *, requires: Iterable[str] = ()) -> None:
        from aws_lambda_powertools import Logger, Metrics, Tracer

        self.service = service
        self.requires = frozenset(requires)
        self.logger = Logger(service=service)
        self.tracer = Tracer(service=service)
        self.metrics = Metrics(namespace=NAMESPACE, service=service)
        self._validated = False
        warnings.filterwarnings("ignore", message="No application metrics to publish")

    def settings(self) -> Settings:
        """The settings: validated on the container's first call (a failure raises
        :class:`ConfigurationError` and is checked again on the next call), then as read."""
        if not self._validated:
            current = validated(self.requires)
            self._validated = True
            return current
        return settings()

    def count(self, metric: str, value: int = 1) -> None:
        from aws_lambda_powertools.metrics import MetricUnit

        self.metrics.add_metric(name=metric, unit=MetricUnit.Count, value=value)

    def wrap(self, run: Callable[[Any, Any, str], Any], correlation: Callable[[Any, Any], str | None]) -> LambdaHandler:
        """``run(event, context, correlation_id)`` under the decorator stack. ``correlation``
        picks the caller's correlation id from the event (None: the request id)."""

        @self.metrics.log_metrics(capture_cold_start_metric=True)
        @self.tracer.capture_lambda_handler(capture_response=False)
        @self.logger.inject_lambda_context(log_event=False, clear_state=True)
        def stacked(event: Any, context: Any) -> Any:
            correlation_id = valid_correlation_id(correlation(event, context)) or request_id(context)
            self.logger.set_correlation_id(correlation_id)
            current = _current.set(self)
            try:
                return run(event, context, correlation_id)
            finally:
                _current.reset(current)

        def handler(event: Any, context: Any) -> Any:
            return stacked(event, context if context is not None else _NoContext(self.service))

        handler.entry = self  # type: ignore[attr-defined]  # tests read which entry stack built a handler
        return handler

    def classified(self, exc: Exception, correlation_id: str) -> Exception:
        """The exception an asynchronous function raises for ``exc`` (logged here)."""
        if isinstance(exc, TaskError):
            self.logger.warning("task failed", extra={"error": type(exc).__name__, "reason": exc.message})
            self.count("TaskFailed")
            # The error's name is what a state machine's Retry and Catch match: a subclass (a chain
            # unavailable, a journal conflict) leaves as its classification, so "Transient" retries it.
            for kind in (Busy, Transient, ReconciliationRequired, Permanent):
                if isinstance(exc, kind):
                    return exc if type(exc) is kind else kind(exc.message)
            return exc
        if isinstance(exc, DomainError):
            self.logger.warning("input refused", extra={"error": exc.slug, "reason": exc.detail})
            self.count("TaskFailed")
            return Permanent(f"{exc.slug}: {exc.detail}")
        if isinstance(exc, ConfigurationError):
            self.logger.exception("misconfigured")
            return exc
        self.logger.exception("unhandled fault")
        self.count("TaskFault")
        return Transient(f"an internal error occurred; it was logged (correlation id {correlation_id})")


_current: ContextVar[Entry | None] = ContextVar("rampart_entry", default=None)


def count(metric: str, value: int = 1) -> None:
    """Add ``value`` to ``metric`` (a count, in the namespace every function publishes to) from code
    running inside an entry stack; outside one (a test calling a handler's inner code) nothing."""
    entry = _current.get()
    if entry is not None:
        entry.count(metric, value)


def _payload_correlation(event: Any, context: Any) -> str | None:
    return event.get("correlation_id") if isinstance(event, dict) else None


def _jsonable(result: Any) -> dict[str, Any]:
    from pydantic import BaseModel

    if isinstance(result, BaseModel):
        result = result.model_dump(mode="json")
    if result is None:
        return {}
    if not isinstance(result, Mapping):
        raise TypeError(f"a handler returned {type(result).__name__}, not a JSON object")
    out = dict(result)
    json.dumps(out)  # raises TypeError now rather than in the runtime
    return out


# worker ----------------------------------------------------------------------------------------

WorkerFunction = Callable[[dict[str, Any]], Any]


def worker_entry(service: str, *, requires: Iterable[str] = ()) -> Callable[[WorkerFunction], LambdaHandler]:
    """A Step Functions task (``arn:aws:states:::lambda:invoke``): the task input (a JSON
    object; ``correlation_id`` in it, when given, tags the logs) in, a JSON object out. Failures
    leave as :class:`TaskError` subclasses (see the module docstring)."""

    def decorate(function: WorkerFunction) -> LambdaHandler:
        entry = Entry(service, requires=requires)

        def run(event: Any, context: Any, correlation_id: str) -> dict[str, Any]:
            try:
                entry.settings()
                if not isinstance(event, dict):
                    raise Permanent("the task input must be a JSON object")
                return _jsonable(function(event))
            except Exception as exc:
                raise entry.classified(exc, correlation_id) from None

        return entry.wrap(run, _payload_correlation)

    return decorate


# queue -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueMessage:
    """One SQS record, its body parsed as JSON."""

    message_id: str
    body: Any
    receive_count: int
    attributes: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)


QueueFunction = Callable[[QueueMessage], None]


def queue_entry(service: str, *, requires: Iterable[str] = ()) -> Callable[[QueueFunction], LambdaHandler]:
    """An SQS consumer (event source mapping with ``ReportBatchItemFailures``): ``function`` is
    called once per record; a record whose body is no JSON, or whose call raises, is reported in
    ``batchItemFailures`` (it becomes visible again and, after the queue's ``maxReceiveCount``,
    moves to its DLQ); the others are deleted by the service. A misconfigured function fails the
    whole batch (every record is retried)."""

    def decorate(function: QueueFunction) -> LambdaHandler:
        entry = Entry(service, requires=requires)

        def run(event: Any, context: Any, correlation_id: str) -> dict[str, Any]:
            entry.settings()
            records = event.get("Records") if isinstance(event, dict) else None
            failures: list[dict[str, str]] = []
            for record in records or []:
                message_id = str(record.get("messageId", ""))
                entry.logger.append_keys(message_id=message_id)
                try:
                    attributes = record.get("attributes") or {}
                    message = QueueMessage(
                        message_id=message_id,
                        body=_record_body(record),
                        receive_count=int(attributes.get("ApproximateReceiveCount") or 1),
                        attributes=dict(record.get("messageAttributes") or {}),
                        raw=record,
                    )
                    function(message)
                except Exception as exc:
                    entry.classified(exc, correlation_id)
                    failures.append({"itemIdentifier": message_id})
                finally:
                    entry.logger.remove_keys(["message_id"])
            if failures:
                entry.logger.info("batch with failures", extra={"failed": len(failures), "records": len(records or [])})
            return {"batchItemFailures": failures}

        return entry.wrap(run, lambda event, context: None)

    return decorate


def _record_body(record: dict[str, Any]) -> Any:
    """The record's body through the one bounded JSON parser (what the API refuses, a queue
    consumer refuses too): a body it refuses makes the record fail as ``Permanent``."""
    from rampart.core import jsonbody

    try:
        return jsonbody.loads(str(record.get("body") or ""))
    except jsonbody.MalformedBody as exc:
        raise Permanent(f"the message body is refused: {exc.message}") from None


# scheduled and deploy --------------------------------------------------------------------------

EventFunction = Callable[[dict[str, Any]], Any]


def _asynchronous(
    service: str, requires: Iterable[str], *, classify_faults: bool
) -> Callable[[EventFunction], LambdaHandler]:
    def decorate(function: EventFunction) -> LambdaHandler:
        entry = Entry(service, requires=requires)

        def run(event: Any, context: Any, correlation_id: str) -> dict[str, Any]:
            try:
                entry.settings()
                return _jsonable(function(event if isinstance(event, dict) else {}))
            except (TaskError, DomainError) as exc:
                raise entry.classified(exc, correlation_id) from None
            except Exception as exc:
                if not classify_faults:
                    entry.logger.exception("failed")
                    raise
                raise entry.classified(exc, correlation_id) from None

        return entry.wrap(run, lambda event, context: event.get("id") if isinstance(event, dict) else None)

    return decorate


def scheduled_entry(service: str, *, requires: Iterable[str] = ()) -> Callable[[EventFunction], LambdaHandler]:
    """An EventBridge schedule (invoked asynchronously): the event (its ``id`` is the
    correlation id) in, a JSON object out (logged by the runtime). A failure raises, classified
    like a worker's, so the function's DLQ gets the event."""
    return _asynchronous(service, requires, classify_faults=True)


def deploy_entry(service: str, *, requires: Iterable[str] = ()) -> Callable[[EventFunction], LambdaHandler]:
    """Run once per deploy (a CDK Trigger; the twin runs it at start): a failure raises and
    fails the deployment with the fault itself (an operator reads it in the deploy's output)."""
    return _asynchronous(service, requires, classify_faults=False)
