"""The CDK app, synthesized once per test run exactly as ``make synth`` does (``infra/app.py``,
every stage, cdk-nag on) into a temporary cloud assembly that the infra tests read.

Under pytest-xdist every worker gets the same assembly: the first worker to ask synthesizes it
under a file lock in the run's shared temporary folder, the others wait and read it. (pytest-xdist
3.8's ``--dist loadgroup`` does not group under pytest 9 — it renames ``Item._nodeid``, which
pytest 9 no longer reads — so a session fixture alone would synthesize once per worker.)"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from aws_cdk.assertions import Template

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


@pytest.fixture(scope="session")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Cloud:
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base  # one folder per run
    outdir = shared / "rampart-cdk.out"
    with (shared / "rampart-cdk.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (outdir / DONE).exists():
            _synthesize(outdir)
    run = json.loads((outdir / DONE).read_text())
    names = {stage: stack_name(stage) for stage in STAGES}
    missing = [n for n in names.values() if not (outdir / f"{n}.template.json").is_file()]
    assert not missing, f"infra/app.py exited {run['returncode']} without {missing}:\n{run['stderr']}"
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
def dev_json(cloud: Cloud) -> dict[str, Any]:
    return cloud.templates["dev"]


@pytest.fixture(scope="session")
def prod_json(cloud: Cloud) -> dict[str, Any]:
    return cloud.templates["prod"]


@pytest.fixture(scope="session")
def dev(dev_json: Mapping[str, Any]) -> Template:
    return Template.from_json(dict(dev_json))
