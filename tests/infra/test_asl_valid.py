"""Every state machine, rendered with its substitutions exactly as the twin creates it
(``infra.local.aws.render_definition``), passes the third-party ``asl-validator`` (npm, pinned in
statemachines/package.json; ``make venv`` installs it with ``npm ci --prefix statemachines``): the
definitions moto executes and the CDK app deploys are valid Amazon States Language, not only
something moto's interpreter accepts. Rampart's manifest and the fixture manifest's alike."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from infra.local import aws
from infra.manifest import MANIFEST, Manifest, StateMachine
from tests.support.fixture_manifest import FIXTURE_MANIFEST

ROOT = Path(__file__).resolve().parents[2]
VALIDATOR = ROOT / "statemachines" / "node_modules" / "asl-validator" / "dist" / "bin" / "asl-validator.js"
MACHINES = [(MANIFEST, m) for m in MANIFEST.state_machines] + [
    (FIXTURE_MANIFEST, m) for m in FIXTURE_MANIFEST.state_machines
]


def validate(path: Path) -> subprocess.CompletedProcess[str]:
    node = shutil.which("node")
    assert node, "Node.js is needed (README: a fresh machine needs Python, Node.js and git)"
    assert VALIDATOR.is_file(), f"{VALIDATOR} is missing: run `make venv` (npm ci --prefix statemachines)"
    return subprocess.run(
        [node, str(VALIDATOR), "--json-path", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def queue_urls(manifest: Manifest) -> dict[str, str]:
    """Each manifest queue's URL as the twin names it (what a ``${Queue}`` placeholder becomes)."""
    names = [aws.queue_name(q.name) for q in manifest.queues]
    return {name: f"https://sqs.{aws.REGION}.amazonaws.com/{aws.ACCOUNT}/{name}" for name in names}


@pytest.mark.parametrize(("manifest", "machine"), MACHINES, ids=[m.name for _, m in MACHINES])
def test_the_rendered_definition_is_valid_asl(manifest: Manifest, machine: StateMachine, tmp_path: Path) -> None:
    rendered = aws.render_definition(machine, queue_urls(manifest), manifest=manifest)
    assert "${" not in rendered, "every placeholder substituted"
    path = tmp_path / f"{machine.name}.asl.json"
    path.write_text(rendered)
    result = validate(path)
    assert result.returncode == 0, f"asl-validator refuses {machine.definition}:\n{result.stdout}{result.stderr}"


def test_every_manifest_state_machine_is_checked() -> None:
    assert {m.name for _, m in MACHINES} >= {"brl_on", "brl_off", "fixture-double"}


def test_the_validator_refuses_an_invalid_definition(tmp_path: Path) -> None:
    """Not a validator that accepts anything: a transition to a missing state is named."""
    path = tmp_path / "broken.asl.json"
    path.write_text('{"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B"}}}')
    result = validate(path)
    assert result.returncode != 0
    assert "MISSING_TRANSITION_TARGET" in result.stdout + result.stderr
