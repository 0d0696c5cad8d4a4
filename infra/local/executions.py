"""Step Functions status-change events for the twin: the executions DLQ's EventBridge route.

In the cloud an EventBridge rule per state machine sends the "Step Functions Execution Status
Change" events of its executions that end FAILED, TIMED_OUT or ABORTED to the executions DLQ
(``infra/stacks/asynchronous.py``). moto emits no such events, so the twin does it here:

- ``infra/local/aws.py`` creates the executions DLQ with the state machines, and
  :func:`create_rules` the same rules as the cloud's on moto's default bus (the same pattern,
  each machine's ARN), the executions DLQ their SQS target;
- an :class:`ExecutionWatcher` thread lists each manifest state machine's executions that ended
  that way (``list_executions`` by status, then ``describe_execution``), builds the event
  EventBridge would (:func:`status_change_event`) and delivers it as EventBridge would: to the SQS
  targets of every default-bus rule whose pattern matches, the whole event as the message body.
  Each execution is published once (remembered by ARN; a delivery that failed is tried again at
  the next poll).

moto's own ``put_events`` would route the event too, but it stops at the first rule whose target
it cannot deliver to, and the twin's schedule rules target functions: so the twin reads the rules
and targets back from moto and delivers to the SQS ones itself.

``RAMPART_TWIN_EXECUTION_POLL`` sets the seconds between polls (default 2; tests use less).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from infra.local import aws
from infra.local.logs import get_logger

if TYPE_CHECKING:
    from infra.local.aws import Deployment, LocalAws

log = get_logger("rampart.twin.executions")

# The cloud's names and pattern (infra/stacks/asynchronous.py); a parity test compares both sides.
EXECUTIONS_DLQ = "executions-dlq"
SOURCE = "aws.states"
DETAIL_TYPE = "Step Functions Execution Status Change"
ENDED_BADLY = ("FAILED", "TIMED_OUT", "ABORTED")
POLL_ENV = "RAMPART_TWIN_EXECUTION_POLL"
DEFAULT_POLL_SECONDS = 2.0  # not money
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def rule_name(machine: str) -> str:
    return f"{aws.PREFIX}-executions-{machine}"


def failures_pattern(state_machine_arn: str) -> dict[str, Any]:
    """The cloud rule's pattern: this machine's executions that ended failed, timed out or aborted."""
    return {
        "source": [SOURCE],
        "detail-type": [DETAIL_TYPE],
        "detail": {"status": list(ENDED_BADLY), "stateMachineArn": [state_machine_arn]},
    }


def create_rules(events: Any, state_machines: Mapping[str, str], queue_arn: str) -> dict[str, str]:
    """One rule per state machine (manifest name → ARN) on moto's default bus, as the cloud has
    them, each targeting the executions DLQ; returns state machine → rule ARN."""
    created = {}
    for machine, machine_arn in state_machines.items():
        name = rule_name(machine)
        rule = events.put_rule(Name=name, EventPattern=json.dumps(failures_pattern(machine_arn)), State="ENABLED")
        events.put_targets(Rule=name, Targets=[{"Id": EXECUTIONS_DLQ, "Arn": queue_arn}])
        created[machine] = str(rule["RuleArn"])
    return created


# The event --------------------------------------------------------------------------------------


def _epoch_millis(value: dt.datetime | None) -> int | None:
    """Step Functions events carry dates as integer milliseconds since the epoch."""
    if value is None:
        return None
    moment = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return (moment - _EPOCH) // dt.timedelta(milliseconds=1)


def status_change_event(described: Mapping[str, Any]) -> dict[str, Any]:
    """The "Step Functions Execution Status Change" event of an ended execution, from its
    ``describe_execution``, as EventBridge delivers it to a target."""
    stopped = described.get("stopDate") or dt.datetime.now(dt.UTC)
    output = described.get("output")
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": DETAIL_TYPE,
        "source": SOURCE,
        "account": aws.ACCOUNT,
        "time": stopped.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": aws.REGION,
        "resources": [described["executionArn"]],
        "detail": {
            "executionArn": described["executionArn"],
            "stateMachineArn": described["stateMachineArn"],
            "name": described["name"],
            "status": described["status"],
            "startDate": _epoch_millis(described.get("startDate")),
            "stopDate": _epoch_millis(described.get("stopDate")),
            "input": described.get("input"),
            "inputDetails": {"included": True},
            "output": output,
            "outputDetails": {"included": True} if output is not None else None,
            "error": described.get("error"),
            "cause": described.get("cause"),
        },
    }


def matches(pattern: Mapping[str, Any], event: Mapping[str, Any]) -> bool:
    """EventBridge's matching for the patterns the twin's rules use: a field's list of exact
    values (one of them must equal the event's value, or be in it when the event's is a list),
    objects nested. Any other filter (prefix, numeric, exists, …) is refused, not guessed."""
    for key, wanted in pattern.items():
        value = event.get(key) if isinstance(event, Mapping) else None
        if isinstance(wanted, Mapping):
            if not isinstance(value, Mapping) or not matches(wanted, value):
                return False
        elif isinstance(wanted, list):
            if any(isinstance(w, Mapping | list) for w in wanted):
                raise ValueError(f"the twin matches exact values only, not {wanted!r} ({key})")
            present = value if isinstance(value, list) else [value]
            if not any(v in wanted for v in present if v is not None):
                return False
        else:
            raise ValueError(f"an event pattern's {key} must be an object or a list, not {wanted!r}")
    return True


# The watcher ------------------------------------------------------------------------------------


def poll_seconds() -> float:  # not money
    raw = os.environ.get(POLL_ENV)
    return float(raw) if raw else DEFAULT_POLL_SECONDS


class ExecutionWatcher:
    """Publishes the status-change event of every execution of ``deployment``'s state machines
    that ended failed, timed out or aborted, once, on a background thread (or by :meth:`poll`)."""

    def __init__(self, local: LocalAws, deployment: Deployment, *, interval: float | None = None) -> None:
        self.deployment = deployment
        self.interval = interval if interval is not None else poll_seconds()  # not money
        self.stepfunctions = local.client("stepfunctions")
        self.events = local.client("events")
        self.sqs = local.client("sqs")
        self.published: set[str] = set()  # execution ARNs
        self._lock = threading.Lock()  # one poll at a time: the loop's or a caller's
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.deployment.state_machines and self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="twin-executions", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.poll()
            except Exception:
                log.exception("publishing execution status changes failed: trying again at the next poll")

    def poll(self) -> list[dict[str, Any]]:
        """Publish what ended since the last poll; returns the events published."""
        published = []
        with self._lock:
            for arn in self.deployment.state_machines.values():
                for status in ENDED_BADLY:
                    pages = self.stepfunctions.get_paginator("list_executions").paginate(
                        stateMachineArn=arn, statusFilter=status
                    )
                    for page in pages:
                        for execution in page["executions"]:
                            if execution["executionArn"] in self.published:
                                continue
                            described = self.stepfunctions.describe_execution(executionArn=execution["executionArn"])
                            event = status_change_event(described)
                            self.deliver(event)
                            self.published.add(execution["executionArn"])
                            published.append(event)
                            log.warning(
                                "execution ended badly: published to the executions DLQ",
                                extra={
                                    "execution_arn": execution["executionArn"],
                                    "status": described["status"],
                                    "error": described.get("error"),
                                },
                            )
        return published

    def deliver(self, event: Mapping[str, Any]) -> int:
        """What EventBridge does with an event on the default bus: the event, as the message body,
        to the SQS target of every rule whose pattern matches. Returns the messages sent."""
        sent = 0
        body = json.dumps(event)
        for rule in self._rules():
            if not matches(json.loads(rule["EventPattern"]), event):
                continue
            targets = self.events.list_targets_by_rule(Rule=rule["Name"])["Targets"]
            for target in targets:
                if ":sqs:" not in target["Arn"]:
                    log.warning("the twin delivers aws.states events to SQS targets only", extra={"rule": rule["Name"]})
                    continue
                queue = self.sqs.get_queue_url(QueueName=target["Arn"].rsplit(":", 1)[-1])["QueueUrl"]
                self.sqs.send_message(QueueUrl=queue, MessageBody=body)
                sent += 1
        return sent

    def _rules(self) -> list[dict[str, Any]]:
        """The default bus's rules that match events (a pattern, not a schedule)."""
        rules: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            page = self.events.list_rules(**({"NextToken": token} if token else {}))
            rules += [r for r in page.get("Rules", []) if r.get("EventPattern") and r.get("State") != "DISABLED"]
            token = page.get("NextToken")
            if not token:
                return rules

    def describe(self) -> list[dict[str, Any]]:
        """The rules as moto has them (for ``GET /_twin/triggers``): name, state machine, pattern,
        target queues' names (manifest-level)."""
        found = []
        by_rule = {rule_name(m): m for m in self.deployment.state_machines}
        for rule in self._rules():
            targets = self.events.list_targets_by_rule(Rule=rule["Name"])["Targets"]
            found.append(
                {
                    "name": rule["Name"],
                    "arn": rule["Arn"],
                    "state_machine": by_rule.get(rule["Name"]),
                    "event_pattern": json.loads(rule["EventPattern"]),
                    "queues": [t["Arn"].rsplit(":", 1)[-1].removeprefix(f"{aws.PREFIX}-") for t in targets],
                }
            )
        return found
