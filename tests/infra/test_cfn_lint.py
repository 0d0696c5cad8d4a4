"""cfn-lint on every synthesized template: zero errors. The only warning allowed is W3005
(a DependsOn that a Ref already implies), which aws-cdk-lib emits by design."""

from __future__ import annotations

from pathlib import Path

import pytest
from cfnlint.api import ManualArgs, lint_file

from infra.stacks import STAGES, stack_name
from tests.infra.conftest import Cloud

ALLOWED_WARNINGS = {"W3005"}


@pytest.mark.parametrize("stage", list(STAGES))
def test_cfn_lint(cloud: Cloud, stage: str) -> None:
    template = cloud.outdir / f"{stack_name(stage)}.template.json"
    matches = lint_file(Path(template), config=ManualArgs(regions=["us-east-1"]))
    problems = [f"{m.rule.id} {m.message} ({m.linenumber})" for m in matches if m.rule.id not in ALLOWED_WARNINGS]
    assert problems == []


def test_every_template_is_linted(cloud: Cloud) -> None:
    assert {p.name for p in cloud.outdir.glob("*.template.json")} == {f"{stack_name(s)}.template.json" for s in STAGES}
