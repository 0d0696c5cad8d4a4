"""Rampart's CDK app: :func:`build_app` makes one ``rampart-<stage>`` stack per stage, each built
from a manifest (``infra/manifest.py``'s ``MANIFEST``, or a test's own) by one construct per
concern (network, data, compute, async, workflows, api, migrations, observability), checked by
cdk-nag's AwsSolutions and Serverless packs at synthesis."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from aws_cdk import App, Validations
from cdk_nag import AwsSolutionsChecks, ServerlessChecks

from infra.manifest import MANIFEST, Manifest
from infra.stacks.config import STAGES, StageConfig
from infra.stacks.stack import RampartStack, stack_name

ROOT = Path(__file__).resolve().parents[2]
CDK_JSON = ROOT / "cdk.json"

__all__ = ["CDK_JSON", "STAGES", "RampartStack", "StageConfig", "build_app", "cdk_json_context", "stack_name"]


def cdk_json_context() -> dict[str, Any]:
    """The ``context`` of cdk.json (feature flags), so that ``python infra/app.py`` and the cdk CLI
    synthesize the same thing."""
    context = json.loads(CDK_JSON.read_text()).get("context", {})
    assert isinstance(context, dict)
    return context


def build_app(
    stages: Iterable[str] = tuple(STAGES),
    *,
    outdir: str | None = None,
    context: Mapping[str, Any] | None = None,
    nag: bool = True,
    manifest: Manifest = MANIFEST,
) -> tuple[App, dict[str, RampartStack]]:
    """One stack per stage, built from ``manifest`` (Rampart's; a test may hand its own)."""
    app = App(outdir=outdir, context={**cdk_json_context(), **(context or {})})
    stacks = {name: RampartStack(app, stack_name(name), stage=STAGES[name], manifest=manifest) for name in stages}
    if nag:
        Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True), ServerlessChecks(app, verbose=True))
    return app, stacks
