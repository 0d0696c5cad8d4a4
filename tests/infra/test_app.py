"""``make synth``'s entry point: the session's synthesis ran ``infra/app.py`` as make and the cdk
CLI do (its own process, cdk.json's context, failing on any cdk-nag finding)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from infra.stacks import STAGES, stack_name
from tests.infra.conftest import Cloud

ROOT = Path(__file__).resolve().parents[2]


def test_app_synthesizes_every_stage(cloud: Cloud) -> None:
    assert cloud.returncode == 0, cloud.stderr
    for stage in STAGES:
        artifact = cloud.manifest["artifacts"][stack_name(stage)]
        assert artifact["type"] == "aws:cloudformation:stack"
    # Only suppressed findings: aws-cdk-lib's own CloudFormation validation acknowledges the written-out
    # availability zones of a stage pinned to its account and region (W3010) itself.
    for report in cloud.report.get("pluginReports", []):
        assert report["conclusion"] == "success", report["pluginName"]
        assert report["violations"] == [], report["pluginName"]
        assert {v["ruleName"] for v in report.get("suppressedViolations", [])} <= {"W3010"}


def test_app_refuses_an_unknown_stage(tmp_path: Path) -> None:
    env = {**os.environ, "CDK_OUTDIR": str(tmp_path), "RAMPART_STAGES": "qa"}
    result = subprocess.run(
        [sys.executable, str(ROOT / "infra" / "app.py")], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode != 0
    assert "unknown stage" in result.stderr


@pytest.mark.parametrize(
    "flag", ["@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy", "@aws-cdk/aws-iam:minimizePolicies"]
)
def test_cdk_json_feature_flags_reach_the_app(flag: str) -> None:
    from infra.stacks import cdk_json_context

    assert cdk_json_context()[flag] is True
