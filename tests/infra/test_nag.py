"""cdk-nag's AwsSolutions and Serverless packs: zero unacknowledged findings, and every
acknowledgment sits on a named resource (never a stack) with a rule id and a reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aws_cdk import Acknowledgment, App, Stack, Validations
from aws_cdk import aws_sqs as sqs
from cdk_nag import AwsSolutionsChecks, ServerlessChecks

from infra.stacks import STAGES
from tests.infra.conftest import NO_FAIL, Cloud, acknowledgment_problems, acknowledgments, nag_violations


def test_nag_is_wired_and_reports(tmp_path: Path) -> None:
    """A canary: an unencrypted, non-TLS queue is reported; an acknowledged rule is not."""
    app = App(outdir=str(tmp_path), context=NO_FAIL)
    stack = Stack(app, "canary")
    sqs.Queue(stack, "Bad")
    excused = sqs.Queue(stack, "Excused", enforce_ssl=True)
    Validations.of(excused).acknowledge(Acknowledgment(id="AwsSolutions-SQS3", reason="canary"))
    Validations.of(excused).acknowledge(Acknowledgment(id="Serverless-SQSRedrivePolicy", reason="canary"))
    Validations.of(app).add_plugins(AwsSolutionsChecks(app), ServerlessChecks(app))
    app.synth()
    found = nag_violations(json.loads((tmp_path / "validation-report.json").read_text()))
    assert ("AwsSolutions", "AwsSolutions-SQS4", ["canary/Bad/Resource"]) in found
    assert any(rule == "Serverless-SQSRedrivePolicy" and "canary/Bad/Resource" in paths for _, rule, paths in found)
    assert all("Excused" not in path for _, _, paths in found for path in paths)


def test_no_unacknowledged_findings(cloud: Cloud) -> None:
    assert nag_violations(cloud.report) == [], "cdk-nag (or CloudFormation validation) findings"


@pytest.mark.parametrize("stage", list(STAGES))
def test_acknowledgments_name_a_resource_rule_and_reason(cloud: Cloud, stage: str) -> None:
    found = acknowledgments(cloud, stage)
    assert found, "the app acknowledges some rules: the walk must find them"
    assert {rule.split("-")[0] for _, rule, _ in found} == {"AwsSolutions", "Serverless"}, "both packs run"
    assert acknowledgment_problems(cloud, stage) == []
