"""The watch (schedule ``ramp-watch``): no running ramp is ever lost or silent (ARCHITECTURE.md,
"Ramps": paused is a state, not a silence).

A ``running`` ramp that has not moved for the grace period is looked at through its execution:

- the execution is gone (the twin restarted, moto forgot it; a start that never recorded its ARN)
  or ended (failed, timed out, aborted, or succeeded while the ramp still says running) → the ramp
  is ``paused`` at its phase, with an error naming the execution; an operator's resume starts a
  recovery execution there, and the journal keeps anything from being done twice;
- the execution is running but silent for longer than any retry could take (``silence``; the
  payment wait gets its window on top) → the execution is stopped first and only then the ramp
  paused: two executions must never act on one ramp, so a ramp whose execution could not be
  stopped is left running and reported (a log line and a metric), never paused.

The pause is conditional on the ramp not having moved since it was read (``updated_at``): an
execution that woke up meanwhile wins. What the watch finds is counted for metrics and alarms
(``RampsPaused``, ``PausedRamps``, ``RampWatchStopFailed``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from rampart.ramps.models import Ramp

log = logging.getLogger("rampart.ramps.watch")

RUNNING = "RUNNING"
BATCH = 100  # ramps looked at per run: the oldest first; the next run takes the rest


class WatchStore(Protocol):
    def idle_running(self, idle_seconds: int, limit: int) -> list[Ramp]:
        """``running`` ramps not updated for ``idle_seconds``, the longest idle first."""
        ...

    def pause_lost(self, ramp_id: str, seen_at: datetime, message: str) -> bool:
        """``running`` → ``paused`` at its phase (no task token: a resume recovers), only if the
        ramp was not updated since ``seen_at``; whether it was paused."""
        ...

    def paused_count(self) -> int: ...


class Executions(Protocol):
    def status(self, execution_arn: str) -> str | None:
        """The execution's status (``RUNNING``, ``SUCCEEDED``, ``FAILED``, …); None: it does not exist."""
        ...

    def stop(self, execution_arn: str, cause: str) -> None:
        """Stop a running execution (raises when it could not be stopped)."""
        ...


@dataclass(frozen=True)
class WatchWindows:
    grace_seconds: int  # a ramp this idle is looked at (longer than a start takes to record its execution)
    silence_seconds: int  # a running execution this silent is stopped (longer than every retry together)
    payment_window_seconds: int  # the payment wait's own window, added to the silence in ``payment``


@dataclass
class WatchReport:
    looked_at: int = 0
    paused: list[str] = field(default_factory=list)
    stop_failed: list[str] = field(default_factory=list)
    paused_total: int = 0  # every paused ramp after this run (an alarm: an operator has work)


def _name(execution_arn: str | None) -> str:
    return execution_arn.rsplit(":", 1)[-1] if execution_arn else "(none recorded)"


def watch(
    store: WatchStore,
    executions: Executions,
    windows: WatchWindows,
    now: Callable[[], datetime],
    moving: Collection[str] = (),
) -> WatchReport:
    """``moving``: ramps this run just set going again (a payment found): left alone."""
    report = WatchReport()
    for ramp in store.idle_running(windows.grace_seconds, BATCH):
        if ramp.id in moving:
            continue
        report.looked_at += 1
        seen_at = ramp.updated_at
        name = _name(ramp.execution_arn)
        status = executions.status(ramp.execution_arn) if ramp.execution_arn else None
        if status == RUNNING:
            idle = int((now() - seen_at).total_seconds())
            limit = windows.silence_seconds + (windows.payment_window_seconds if ramp.phase == "payment" else 0)
            if idle < limit:
                continue
            assert ramp.execution_arn is not None
            try:
                executions.stop(ramp.execution_arn, f"silent for {idle} s in {ramp.phase}: stopped by the ramp watch")
            except Exception as error:  # left running, never paused: two executions must not act on one ramp
                log.error(
                    "silent ramp left running: its execution could not be stopped",
                    extra={"ramp_id": ramp.id, "execution": name, "phase": ramp.phase, "reason": str(error)[:300]},
                )
                report.stop_failed.append(ramp.id)
                continue
            message = (
                f"the execution {name} was silent for {idle} s in {ramp.phase}: the watch stopped it and paused "
                "the ramp; resume it to continue through a recovery execution"
            )
        else:
            what = "is gone" if status is None else f"ended {status.lower()}"
            message = (
                f"the execution {name} {what} while the ramp was running in {ramp.phase}: the watch paused the "
                "ramp; resume it to continue through a recovery execution"
            )
        if store.pause_lost(ramp.id, seen_at, message):
            log.warning(
                "ramp paused by the watch: an operator resumes or fails it",
                extra={"ramp_id": ramp.id, "execution": name, "phase": ramp.phase, "status": status or "gone"},
            )
            report.paused.append(ramp.id)
    report.paused_total = store.paused_count()
    return report
