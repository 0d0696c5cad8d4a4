"""The ramp watch (rampart.ramps.watch) on its ports: which running ramps it pauses, and that a
silent ramp whose execution cannot be stopped is never paused (two executions must never act on
one ramp)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from rampart.ramps.watch import WatchWindows, watch

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
WINDOWS = WatchWindows(grace_seconds=120, silence_seconds=1800, payment_window_seconds=1800)
ARN = "arn:aws:states:us-east-1:123456789012:execution:rampart-prod-brl_on:"


@dataclass(frozen=True)
class FakeRamp:
    id: str
    phase: str
    updated_at: datetime
    execution_arn: str | None


@dataclass
class Store:
    ramps: list[FakeRamp]
    moved: set[str] = field(default_factory=set)  # ramps that move between the read and the pause
    paused: dict[str, str] = field(default_factory=dict)
    already_paused: int = 0

    def idle_running(self, idle_seconds: int, limit: int) -> list[Any]:
        return [r for r in self.ramps if NOW - r.updated_at >= timedelta(seconds=idle_seconds)][:limit]

    def pause_lost(self, ramp_id: str, seen_at: datetime, message: str) -> bool:
        if ramp_id in self.moved:
            return False
        self.paused[ramp_id] = message
        return True

    def paused_count(self) -> int:
        return self.already_paused + len(self.paused)


@dataclass
class Executions:
    statuses: dict[str, str | None]
    stoppable: bool = True
    stopped: list[str] = field(default_factory=list)

    def status(self, execution_arn: str) -> str | None:
        return self.statuses.get(execution_arn)

    def stop(self, execution_arn: str, cause: str) -> None:
        if not self.stoppable:
            raise RuntimeError("moto: cannot stop")
        self.stopped.append(execution_arn)
        self.statuses[execution_arn] = "ABORTED"


def _ramp(name: str, idle: int, phase: str = "swap", arn: bool = True) -> FakeRamp:
    return FakeRamp(name, phase, NOW - timedelta(seconds=idle), ARN + name if arn else None)


def _run(store: Store, executions: Executions) -> Any:
    return watch(store, executions, WINDOWS, lambda: NOW)


@pytest.mark.parametrize("status", [None, "FAILED", "TIMED_OUT", "ABORTED", "SUCCEEDED"])
def test_a_running_ramp_whose_execution_is_gone_or_ended_is_paused(status: str | None) -> None:
    store = Store([_ramp("rmp_a", idle=300)])
    executions = Executions({ARN + "rmp_a": status})
    report = _run(store, executions)
    assert report.paused == ["rmp_a"]
    assert report.paused_total == 1
    message = store.paused["rmp_a"]
    assert "rmp_a" in message
    assert "swap" in message
    assert ("is gone" if status is None else f"ended {status.lower()}") in message
    assert executions.stopped == []  # nothing to stop


def test_a_ramp_with_no_execution_recorded_is_paused() -> None:
    store = Store([_ramp("rmp_b", idle=300, arn=False)])
    assert _run(store, Executions({})).paused == ["rmp_b"]
    assert "(none recorded)" in store.paused["rmp_b"]


def test_a_ramp_within_the_grace_is_not_looked_at() -> None:
    store = Store([_ramp("rmp_c", idle=30)])
    report = _run(store, Executions({}))
    assert (report.looked_at, report.paused) == (0, [])


def test_a_running_execution_is_left_alone_until_it_is_silent_too_long() -> None:
    store = Store([_ramp("rmp_d", idle=1000)])
    executions = Executions({ARN + "rmp_d": "RUNNING"})
    report = _run(store, executions)
    assert (report.looked_at, report.paused, executions.stopped) == (1, [], [])


def test_the_payment_wait_gets_its_window_before_it_is_silent() -> None:
    waiting = _ramp("rmp_e", idle=2000, phase="payment")  # past the silence, within silence + window
    executions = Executions({ARN + "rmp_e": "RUNNING"})
    assert _run(Store([waiting]), executions).paused == []
    late = replace(waiting, updated_at=NOW - timedelta(seconds=3700))
    store = Store([late])
    assert _run(store, executions).paused == ["rmp_e"]
    assert executions.stopped == [ARN + "rmp_e"]


def test_a_silent_execution_is_stopped_first_then_its_ramp_paused() -> None:
    store = Store([_ramp("rmp_f", idle=1900)])
    executions = Executions({ARN + "rmp_f": "RUNNING"})
    report = _run(store, executions)
    assert executions.stopped == [ARN + "rmp_f"]
    assert report.paused == ["rmp_f"]
    assert "silent for 1900 s" in store.paused["rmp_f"]


def test_a_silent_ramp_whose_execution_cannot_be_stopped_is_never_paused() -> None:
    store = Store([_ramp("rmp_g", idle=1900)])
    report = _run(store, Executions({ARN + "rmp_g": "RUNNING"}, stoppable=False))
    assert (report.paused, report.stop_failed) == ([], ["rmp_g"])
    assert store.paused == {}


def test_a_ramp_that_moved_meanwhile_is_not_reported_paused() -> None:
    store = Store([_ramp("rmp_h", idle=300), _ramp("rmp_i", idle=300)], moved={"rmp_h"}, already_paused=2)
    report = _run(store, Executions({}))
    assert report.paused == ["rmp_i"]
    assert report.paused_total == 3  # the paused ramps an operator has to look at, this one included


def test_a_ramp_this_run_set_going_again_is_left_alone() -> None:
    """Its payment was just found: its execution moves on, however long it waited."""
    store = Store([_ramp("rmp_j", idle=4000, phase="payment")])
    executions = Executions({ARN + "rmp_j": "RUNNING"})
    report = watch(store, executions, WINDOWS, lambda: NOW, moving={"rmp_j"})
    assert (report.looked_at, report.paused, executions.stopped) == (0, [], [])
