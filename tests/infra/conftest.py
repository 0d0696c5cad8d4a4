"""The CDK app, synthesized once per test run exactly as ``make synth`` does (``infra/app.py``,
every stage, cdk-nag on) into a temporary cloud assembly that the infra tests read; and the test
manifest of fixture functions (tests/support/fixture_manifest.py: one of each new kind, never
deployed), synthesized once in process (dev only, cdk-nag on) for the tests of those kinds.

Under pytest-xdist every worker gets the same assemblies: the first worker to ask synthesizes one
under a file lock in the run's shared temporary folder, the others wait and read it. (pytest-xdist
3.8's ``--dist loadgroup`` does not group under pytest 9 — it renames ``Item._nodeid``, which
pytest 9 no longer reads — so a session fixture alone would synthesize once per worker.)

The checks both assemblies go through live here too: :func:`lint_problems` (cfn-lint),
:func:`nag_violations` (cdk-nag's report) and :func:`acknowledgment_problems`."""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from aws_cdk import Validations
from aws_cdk.assertions import Template
from cfnlint.api import ManualArgs, lint_file  # type: ignore[import-untyped]

from infra.stacks import STAGES, stack_name

# Report violations in validation-report.json instead of raising, so tests can show them.
NO_FAIL = {"@aws-cdk/core:failSynthOnValidationErrors": False}
ROOT = Path(__file__).resolve().parents[2]
DONE = ".synthesized"


@dataclass
class Cloud:
    returncode: int  # of infra/app.py
    stderr: str
    outdir: Path
    templates: dict[str, dict[str, Any]]  # stage → template
    metadata: dict[str, dict[str, Any]]  # stage → construct path → metadata entries
    manifest: dict[str, Any]  # the cloud assembly's manifest.json
    report: dict[str, Any]  # validation-report.json (cdk-nag, CloudFormation validation)

    def asset_dir(self, s3_key: Any) -> Path:
        """The staged folder of a file asset, from the ``S3Key`` (``<hash>.zip``) a resource names."""
        assert isinstance(s3_key, str), s3_key
        folder = self.outdir / f"asset.{s3_key.removesuffix('.zip')}"
        assert folder.is_dir(), folder
        return folder

    def stack_properties(self, stage: str) -> dict[str, Any]:
        properties: dict[str, Any] = self.manifest["artifacts"][stack_name(stage)]["properties"]
        return properties


def _synthesize(outdir: Path) -> None:
    """``make synth`` itself: ``infra/app.py`` in its own process, every stage, failing on any
    unacknowledged cdk-nag finding; its exit status and stderr are kept beside the assembly."""
    work = outdir.with_name(outdir.name + ".tmp")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    env = {**os.environ, "CDK_OUTDIR": str(work), "RAMPART_STAGES": ",".join(STAGES)}
    result = subprocess.run(
        [sys.executable, str(ROOT / "infra" / "app.py")],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    (work / DONE).write_text(json.dumps({"returncode": result.returncode, "stderr": result.stderr[-20000:]}))
    work.rename(outdir)


def _synthesize_fixture_manifest(outdir: Path) -> None:
    """The test manifest of fixture functions, synthesized in this process (dev only, cdk-nag on,
    findings reported rather than raised)."""
    from infra.stacks import build_app
    from tests.support.fixture_manifest import FIXTURE_MANIFEST

    work = outdir.with_name(outdir.name + ".tmp")
    shutil.rmtree(work, ignore_errors=True)
    app, _ = build_app(["dev"], outdir=str(work), context=NO_FAIL, manifest=FIXTURE_MANIFEST)
    app.synth()
    (work / DONE).write_text(json.dumps({"returncode": 0, "stderr": ""}))
    work.rename(outdir)


def _assembly(
    tmp_path_factory: pytest.TempPathFactory, name: str, synthesize: Callable[[Path], None], stages: Iterable[str]
) -> Cloud:
    """The assembly ``name`` of this run, synthesized by the first worker that asks for it."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base  # one folder per run
    outdir = shared / f"{name}.out"
    with (shared / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (outdir / DONE).exists():
            synthesize(outdir)
    run = json.loads((outdir / DONE).read_text())
    names = {stage: stack_name(stage) for stage in stages}
    missing = [n for n in names.values() if not (outdir / f"{n}.template.json").is_file()]
    assert not missing, f"synthesis exited {run['returncode']} without {missing}:\n{run['stderr']}"
    return Cloud(
        returncode=run["returncode"],
        stderr=run["stderr"],
        outdir=outdir,
        templates={s: json.loads((outdir / f"{n}.template.json").read_text()) for s, n in names.items()},
        metadata={s: json.loads((outdir / f"{n}.metadata.json").read_text()) for s, n in names.items()},
        manifest=json.loads((outdir / "manifest.json").read_text()),
        report=json.loads((outdir / "validation-report.json").read_text()),
    )


@pytest.fixture(scope="session")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Cloud:
    return _assembly(tmp_path_factory, "rampart-cdk", _synthesize, STAGES)


@pytest.fixture(scope="session")
def fixture_cloud(tmp_path_factory: pytest.TempPathFactory) -> Cloud:
    """The fixture manifest's assembly: one stage, ``dev``."""
    return _assembly(tmp_path_factory, "fixture-cdk", _synthesize_fixture_manifest, ["dev"])


# --- checks every assembly goes through ---------------------------------------------------------

# Warnings allowed: W3005 (a DependsOn that a Ref already implies), which aws-cdk-lib emits; W3010
# (availability zones written out), because each stage is pinned to its account and region and its
# zones are written in StageConfig rather than looked up (a lookup would need AWS at synthesis).
ALLOWED_LINT = {"W3005", "W3010"}
ACK_KEY = Validations.ACKNOWLEDGED_RULES_METADATA_KEY
NAG_RULE_ID = re.compile(r"^(AwsSolutions-[A-Z]+[0-9]+|Serverless-[A-Za-z0-9]+)(\[.+\])?$")
NAG_PACKS = ("AwsSolutions-", "Serverless-")


def lint_problems(cloud: Cloud, stage: str) -> list[str]:
    """cfn-lint's findings on a stage's template, but the allowed warnings."""
    template = cloud.outdir / f"{stack_name(stage)}.template.json"
    matches = lint_file(Path(template), config=ManualArgs(regions=["us-east-1"]))
    return [f"{m.rule.id} {m.message} ({m.linenumber})" for m in matches if m.rule.id not in ALLOWED_LINT]


def nag_violations(report: Mapping[str, Any]) -> list[tuple[str, str, list[str]]]:
    """(plugin, rule, construct paths) of every unacknowledged finding in a validation report."""
    return [
        (plugin["pluginName"], v["ruleName"], [c.get("constructPath", "?") for c in v.get("violatingConstructs", [])])
        for plugin in report.get("pluginReports", [])
        for v in plugin.get("violations", [])
    ]


def acknowledgments(cloud: Cloud, stage: str) -> list[tuple[str, str, str]]:
    """(construct path, rule, reason) of every cdk-nag acknowledgment in a stage's metadata."""
    found = []
    for path, entries in cloud.metadata[stage].items():
        for entry in entries:
            if entry["type"] != ACK_KEY:
                continue
            for qualified, reason in entry["data"].items():
                rule = qualified.rpartition("::")[2]  # stored qualified, e.g. Annotation::AwsSolutions-XX
                if rule.startswith(NAG_PACKS):  # not aws-cdk-lib's own, of CloudFormation validation
                    found.append((path, rule, str(reason)))
    return found


def acknowledgment_problems(cloud: Cloud, stage: str) -> list[str]:
    """Every acknowledgment sits on a named resource (never a stack or an umbrella construct),
    names a well-formed rule and gives a real reason."""
    problems = []
    for path, rule, reason in acknowledgments(cloud, stage):
        if len(path.strip("/").split("/")) < 3:
            problems.append(f"{rule} acknowledged stack-wide or on an umbrella construct: {path}")
        if not NAG_RULE_ID.match(rule):
            problems.append(f"{rule} at {path}: not a rule id")
        if len(reason.strip()) < 20:
            problems.append(f"{rule} at {path}: give a real reason")
    return problems


@pytest.fixture(scope="session")
def dev_json(cloud: Cloud) -> dict[str, Any]:
    return cloud.templates["dev"]


@pytest.fixture(scope="session")
def prod_json(cloud: Cloud) -> dict[str, Any]:
    return cloud.templates["prod"]


@pytest.fixture(scope="session")
def dev(dev_json: Mapping[str, Any]) -> Template:
    return Template.from_json(dict(dev_json))
