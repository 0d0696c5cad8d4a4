"""The committed state machines are what ``python -m infra.asl`` writes from the corridors' phases:
every phase a Task with the same Retry, Catch and pause exit, none forgotten."""

from __future__ import annotations

import json

from infra.asl import rendered
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
            (busy,) = [r for r in task["Retry"] if r["ErrorEquals"] == ["Busy"]]
            waits = [busy["IntervalSeconds"] * busy["BackoffRate"] ** i for i in range(busy["MaxAttempts"])]
            # a claim held by a hung worker is taken over once its lease ends, never paused before
            assert sum(waits) > LEASE_SECONDS, phase
            catches = [(c["ErrorEquals"], c["Next"]) for c in task["Catch"]]
            assert catches[0][1] == "failed"
            assert "Permanent" in catches[0][0]
            assert catches[-1] == (["States.ALL"], f"{phase}--paused")
            assert states[f"{phase}--paused"]["Result"] == phase
        assert {states["resume"]["Choices"][i]["Next"] for i in range(len(corridor.phases) - 1)} == set(
            corridor.phases[1:]
        )
