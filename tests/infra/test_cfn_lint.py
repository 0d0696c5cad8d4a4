"""cfn-lint on every synthesized template: zero errors. The warnings allowed are W3005 (a
DependsOn that a Ref already implies), which aws-cdk-lib emits by design, and W3010 (availability
zones written out: each stage is pinned to its account and region, see tests/infra/conftest.py)."""

from __future__ import annotations

import pytest

from infra.stacks import STAGES, stack_name
from tests.infra.conftest import Cloud, lint_problems


@pytest.mark.parametrize("stage", list(STAGES))
def test_cfn_lint(cloud: Cloud, stage: str) -> None:
    assert lint_problems(cloud, stage) == []


def test_every_template_is_linted(cloud: Cloud) -> None:
    assert {p.name for p in cloud.outdir.glob("*.template.json")} == {f"{stack_name(s)}.template.json" for s in STAGES}
