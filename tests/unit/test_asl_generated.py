"""The committed state machines are what ``python -m infra.asl`` writes from the corridors' phases:
every phase a Task with the same Retry, Catch and pause exit, none forgotten."""

from __future__ import annotations

import json

import pytest

from infra.asl import rendered, staged_text
from infra.manifest import RAMP_RETRIES, STATE_MACHINES
from rampart.ramps.execution import LEASE_SECONDS
from rampart.ramps.models import SERVED


def test_the_committed_state_machines_are_generated() -> None:
    for path, text in rendered().items():
        assert path.read_text() == text, f"{path.name} is stale: run python -m infra.asl"


def test_every_phase_retries_transient_and_pauses_or_fails_on_the_rest() -> None:
    for corridor in SERVED:
        (text,) = [t for p, t in rendered().items() if p.name == f"{corridor.state_machine}.asl.json"]
        states = json.loads(text)["States"]
        for phase in corridor.phases[1:]:
            task = states[phase]
            assert task["Retry"][0]["ErrorEquals"][0] == "Transient"
            assert [r["ErrorEquals"][0] for r in task["Retry"]] == ["Transient", "Busy"]
            catches = [(c["ErrorEquals"], c["Next"]) for c in task["Catch"]]
            assert catches[0][1] == "failed"
            assert "Permanent" in catches[0][0]
            assert catches[-1] == (["States.ALL"], f"{phase}--paused")
            assert states[f"{phase}--paused"]["Result"] == phase
        assert {states["resume"]["Choices"][i]["Next"] for i in range(len(corridor.phases) - 1)} == set(
            corridor.phases[1:]
        )


@pytest.mark.parametrize(("stage", "policies"), RAMP_RETRIES)
def test_every_stage_retries_busy_for_longer_than_a_lease(stage: str, policies: tuple[object, ...]) -> None:
    """A claim held by a hung worker is taken over once its lease ends: a Busy phase never pauses
    before, in any stage."""
    (busy,) = [p for p in STATE_MACHINES[0].retry_policies(stage) if p.error == "Busy"]
    assert sum(busy.waits()) > LEASE_SECONDS


@pytest.mark.parametrize("stage", [stage for stage, _ in RAMP_RETRIES])
def test_a_stage_changes_only_the_waits(stage: str) -> None:
    for spec in STATE_MACHINES:
        text = (rendered_path := next(p for p in rendered() if p.name == f"{spec.name}.asl.json")).read_text()
        staged = json.loads(staged_text(text, spec.retry_policies(stage)))
        committed = json.loads(rendered_path.read_text())
        policies = {p.error: p for p in spec.retry_policies(stage)}
        for name, state in committed["States"].items():
            for mine, theirs in zip(staged["States"][name].get("Retry", []), state.get("Retry", []), strict=True):
                policy = policies[theirs["ErrorEquals"][0]]
                assert mine["ErrorEquals"] == theirs["ErrorEquals"]
                assert (mine["IntervalSeconds"], mine["MaxAttempts"]) == (policy.interval_seconds, policy.max_attempts)
            assert {k: v for k, v in staged["States"][name].items() if k != "Retry"} == {
                k: v for k, v in state.items() if k != "Retry"
            }
