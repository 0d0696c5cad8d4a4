"""cdk-nag's AwsSolutions pack: zero unacknowledged findings, and every acknowledgment sits on a
named resource (never a stack) with a rule id and a reason."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import Acknowledgment, App, Stack, Validations
from aws_cdk import aws_sqs as sqs
from cdk_nag import AwsSolutionsChecks

from infra.stacks import STAGES
from tests.infra.conftest import NO_FAIL, Cloud

ACK_KEY = Validations.ACKNOWLEDGED_RULES_METADATA_KEY
RULE_ID = re.compile(r"^AwsSolutions-[A-Z]+[0-9]+(\[.+\])?$")


def _violations(report: dict[str, Any]) -> list[tuple[str, str, list[str]]]:
    return [
        (plugin["pluginName"], v["ruleName"], [c.get("constructPath", "?") for c in v.get("violatingConstructs", [])])
        for plugin in report.get("pluginReports", [])
        for v in plugin.get("violations", [])
    ]


def test_nag_is_wired_and_reports(tmp_path: Path) -> None:
    """A canary: an unencrypted, non-TLS queue is reported; an acknowledged rule is not."""
    app = App(outdir=str(tmp_path), context=NO_FAIL)
    stack = Stack(app, "canary")
    sqs.Queue(stack, "Bad")
    excused = sqs.Queue(stack, "Excused", enforce_ssl=True)
    Validations.of(excused).acknowledge(Acknowledgment(id="AwsSolutions-SQS3", reason="canary"))
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    app.synth()
    found = _violations(json.loads((tmp_path / "validation-report.json").read_text()))
    assert ("AwsSolutions", "AwsSolutions-SQS4", ["canary/Bad/Resource"]) in found
    assert all("Excused" not in path for _, _, paths in found for path in paths)


def test_no_unacknowledged_findings(cloud: Cloud) -> None:
    assert _violations(cloud.report) == [], "cdk-nag (or CloudFormation validation) findings"


@pytest.mark.parametrize("stage", list(STAGES))
def test_acknowledgments_name_a_resource_rule_and_reason(cloud: Cloud, stage: str) -> None:
    acknowledged = []
    for path, entries in cloud.metadata[stage].items():
        for entry in entries:
            if entry["type"] != ACK_KEY:
                continue
            for qualified, reason in entry["data"].items():
                rule = qualified.rpartition("::")[2]  # stored qualified, e.g. Annotation::AwsSolutions-XX
                if not rule.startswith("AwsSolutions-"):
                    continue  # aws-cdk-lib's own acknowledgments of its CloudFormation validation
                acknowledged.append((path, rule))
                segments = path.strip("/").split("/")
                assert len(segments) >= 3, f"{rule} acknowledged stack-wide or on an umbrella construct: {path}"
                assert RULE_ID.match(rule), rule
                assert len(str(reason).strip()) >= 20, f"{rule} at {path}: give a real reason"
    assert acknowledged, "the app acknowledges some rules: the walk must find them"
