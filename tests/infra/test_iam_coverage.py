"""IAM the twin can check (issue 12, §2): every AWS call a function makes is allowed by that
function's role in the synthesized template, and every action a role is granted is used by some
call or has a written reason below.

The calls come from a dedicated run, independent of test order (tests/infra/iam_run.py, in a
process of its own): a twin of Rampart's manifest driven through representative requests of
every function (health, the auth flows and
both credential kinds through the authorizer, accounts, transfers with holds and batches,
admin partners and deposits with an idempotent replay, the ledger sweep, migrate at start),
recorded by :mod:`tests.support.iam`. The calls the rest of the suite recorded
(``$RAMPART_IAM_RECORD_DIR``, one file per xdist worker, see tests/conftest.py) are checked for
permission as well when there are any; they never decide what counts as used.

A new function is covered automatically by the permission check (its calls are recorded from
its handler module). Its grants need a request in iam_run.py that uses them, or a reason."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from infra import manifest
from infra.stacks import STAGES
from tests.infra.conftest import Cloud
from tests.support import iam

pytestmark = pytest.mark.slow

# Granted, and not used by any recorded call, for these reasons (keys: an action, or
# "<function>:<action>"; fnmatch patterns).
REASONS: dict[str, str] = {
    "logs:CreateLogStream": "Lambda writes the function's own log group with the function's role",
    "logs:PutLogEvents": "Lambda writes the function's own log group with the function's role",
    "xray:PutTraceSegments": "active tracing: the Lambda runtime sends segments with the function's role",
    "xray:PutTelemetryRecords": "active tracing: the Lambda runtime sends telemetry with the function's role",
    "ec2:*NetworkInterface*": "Lambda attaches the function to the VPC (hyperplane ENIs) with the function's role",
    "ec2:DescribeSubnets": "Lambda attaches the function to the VPC with the function's role",
    "ec2:*PrivateIpAddresses": "Lambda attaches the function to the VPC with the function's role",
    # Database roles (issue 12, §1): the cloud's migrate sets each login role's password from its
    # secret (RAMPART_DB_ROLE_SECRETS); the twin's PostgreSQL trusts its socket, so no passwords.
    "secretsmanager:GetSecretValue@secret:postgres:*": "migrate sets each database login role's password "
    "from its secret in the cloud only (the twin's server trusts its socket)",
    "kms:Decrypt@key:database": "the database role secrets are under the database key (cloud-only read above)",
    "rds-db:connect": "IAM authentication to RDS Proxy when a connection opens; the twin connects with a URL",
    # Asynchronous invocations: the Lambda service delivers a failed event to the function's DLQ
    # (on-failure destination) with the function's role; an SQS event source mapping polls,
    # deletes and returns messages with its consumer's role.
    "sqs:SendMessage@queue:*-dlq": "the on-failure destination of an asynchronous function: Lambda sends with its role",
    "sqs:GetQueueAttributes": "the on-failure destination / event source mapping reads the queue with the role",
    "sqs:GetQueueUrl": "the on-failure destination resolves its queue with the function's role",
    "sqs:ReceiveMessage": "the SQS event source mapping polls with the consumer's role",
    "sqs:DeleteMessage": "the SQS event source mapping deletes a processed batch with the consumer's role",
    "sqs:ChangeMessageVisibility": "the SQS event source mapping returns failed messages with the consumer's role",
    # Powertools idempotency (aws_lambda_powertools/utilities/idempotency/base.py).
    "dynamodb:DeleteItem@table:idempotency": "Powertools idempotency deletes the in-progress record when the "
    "handler fails, so that the client's retry can run (a handled 4xx is stored, not deleted)",
    "dynamodb:GetItem@table:idempotency": "Powertools idempotency reads the record when a refused conditional put "
    "returns no old item (`exc.old_data_record or self._get_idempotency_record()`)",
    # Provider webhooks (issue 9): queued only for a correctly signed event of a provider's own shape,
    # and re-queued by the schedule only when one was recorded but not applied.
    "provider_webhook:sqs:SendMessage": "queues a verified provider event; the run sends no signed provider event",
    "webhook_requeue:sqs:SendMessage": "re-queues an event recorded but not applied: none is pending in the run",
    # Ramps III: an operator resumes or fails a paused ramp of either corridor the same way; the run
    # pauses and resumes an on-ramp only.
    "states:DescribeExecution@state_machine:brl_off": "an operator resumes a paused off-ramp as the run an on-ramp",
    "states:SendTaskSuccess@state_machine:brl_off": "an operator resumes a paused off-ramp as the run an on-ramp",
    # The ramp watch stops only an execution silent for longer than every retry together (half an
    # hour in the cloud); moto cannot stop an execution waiting on a task token, so the run has none
    # to stop: tests/unit/test_ramp_watch.py drives the stop through the port instead.
    "ramp_watch:states:StopExecution": "stops only an execution silent past every retry: none in the run",
    "ramp_watch:states:SendTaskSuccess": "completes a payment wait whose webhook never came: none is lost in the run "
    "(tests/e2e/test_ramps_faults.py drops one)",
    "ramp_watch:states:SendTaskFailure": "refuses a payment wait whose webhook never came with a refused payment: "
    "none is lost in the run",
    "ramp_watch:states:DescribeExecution": "looks only at a running ramp idle past its grace (20 s locally): the "
    "run's ramps move on sooner (tests/e2e/test_ramps_pause.py drives it)",
    # The payment wait is completed by whichever comes second: the worker parking it (the payment
    # came first) or the webhook path (the payment came after): in the run, which one is a race.
    "webhook_apply:states:SendTaskFailure": "completes the wait of a refused payment that came after the worker "
    "parked; in the run the worker may have seen it first",
    "webhook_apply:states:SendTaskSuccess": "completes the wait of a payment that came after the worker parked; in "
    "the run the worker may have seen it first",
}

ROOT = Path(__file__).resolve().parents[2]


def _fresh_database() -> str:
    from infra.local.postgres import embedded_server, ensure_database, with_database

    name = f"rampart_iam_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
    base = os.environ.get("TEST_DATABASE_URL")
    admin_url = base if base else embedded_server("pg-test").get_uri()
    ensure_database(admin_url, name, fresh=True, settings={"synchronous_commit": "off"})
    return with_database(admin_url, name)


@dataclass(frozen=True)
class Run:
    calls: set[iam.Call]
    invoked: set[str]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """The recording run (tests/infra/iam_run.py), in its own process."""
    folder = tmp_path_factory.mktemp("iam-run")
    out = folder / "calls.json"
    env = {k: v for k, v in os.environ.items() if k != iam.RECORD_DIR_ENV}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.infra.iam_run",
            "--database-url",
            _fresh_database(),
            "--state-dir",
            str(folder / "twin"),
            "--out",
            str(out),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-8000:]
    report = json.loads(out.read_text())
    return Run({iam.normalize(iam.Call(**c)) for c in report["calls"]}, set(report["invoked"]))


@pytest.fixture(scope="module")
def recorded(run: Run) -> set[iam.Call]:
    return run.calls


@pytest.fixture(scope="module")
def grants(cloud: Cloud) -> dict[str, dict[str, list[iam.Grant]]]:
    return {stage: iam.role_grants(cloud.templates[stage]) for stage in STAGES}


def test_the_run_reached_every_function(run: Run) -> None:
    """Every function a request or a schedule reaches ran (queue consumers and workers need a
    message or a state machine; their calls are checked where the suite makes them)."""
    reachable = manifest.MANIFEST.of_kind("api", "authorizer", "webhook", "scheduled", "deploy")
    assert {fn.name for fn in reachable} - run.invoked == set()


def test_every_recorded_resource_is_a_manifest_resource(recorded: set[iam.Call]) -> None:
    assert [c for c in recorded if not iam.is_known(c)] == []


@pytest.mark.parametrize("stage", list(STAGES))
def test_every_call_is_allowed(
    cloud: Cloud, grants: dict[str, dict[str, list[iam.Grant]]], recorded: set[iam.Call], stage: str
) -> None:
    needed = iam.required(cloud.templates[stage], recorded)
    refused = iam.denied(grants[stage], needed)
    assert not refused, "not allowed by the function's role:\n" + "\n".join(map(str, refused))


@pytest.mark.parametrize("stage", list(STAGES))
def test_every_grant_is_used_or_explained(
    cloud: Cloud, grants: dict[str, dict[str, list[iam.Grant]]], recorded: set[iam.Call], stage: str
) -> None:
    needed = iam.required(cloud.templates[stage], recorded)
    left = iam.unused(grants[stage], needed, REASONS)
    assert not left, "granted, never used, no reason in REASONS:\n" + "\n".join(map(str, left))


def test_the_suites_calls_are_allowed_too(
    cloud: Cloud, grants: dict[str, dict[str, list[iam.Grant]]], recorded: set[iam.Call]
) -> None:
    """Whatever the rest of the suite recorded so far (Rampart's functions, manifest resources)."""
    directory = os.environ.get(iam.RECORD_DIR_ENV)
    suite = {iam.normalize(c) for c in iam.read_directory(Path(directory))} if directory else set()
    ours = {fn.name for fn in manifest.FUNCTIONS}
    checked = {c for c in suite if c.function in ours and iam.is_known(c)}
    assert iam.denied(grants["prod"], iam.required(cloud.templates["prod"], checked)) == []


# --- the evaluator itself --------------------------------------------------------------------------


def test_a_call_outside_the_policy_is_denied_and_an_unused_grant_reported() -> None:
    template = {
        "Resources": {
            "T": {"Type": "AWS::DynamoDB::Table", "Properties": {"Tags": [{"Key": "rampart:table", "Value": "t"}]}},
            "R": {"Type": "AWS::IAM::Role", "Properties": {}},
            "F": {
                "Type": "AWS::Lambda::Function",
                "Properties": {
                    "Role": {"Fn::GetAtt": ["R", "Arn"]},
                    "Tags": [{"Key": "rampart:function", "Value": "f"}],
                },
            },
            "P": {
                "Type": "AWS::IAM::Policy",
                "Properties": {
                    "Roles": [{"Ref": "R"}],
                    "PolicyDocument": {
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Action": ["dynamodb:GetItem", "dynamodb:PutItem"],
                                "Resource": [
                                    {"Fn::GetAtt": ["T", "Arn"]},
                                    {"Fn::Join": ["", [{"Fn::GetAtt": ["T", "Arn"]}, "/index/*"]]},
                                ],
                            }
                        ]
                    },
                },
            },
        }
    }
    grants = iam.role_grants(template)
    get = iam.Call("f", "dynamodb:GetItem", "table:t")
    describe = iam.Call("f", "dynamodb:DescribeTable", "table:t")
    elsewhere = iam.Call("f", "dynamodb:GetItem", "table:other")
    assert iam.denied(grants, {get, describe, elsewhere}) == [describe, elsewhere]
    left = iam.unused(grants, {get}, {})
    assert {(g.action, g.suffix) for g in left} == {
        ("dynamodb:PutItem", ""),
        ("dynamodb:PutItem", "/index/*"),
        (
            "dynamodb:GetItem",
            "/index/*",
        ),
    }
    assert iam.unused(grants, {get}, {"dynamodb:*": "a reason"}) == []


def test_calls_are_keyed_by_the_handler_on_the_stack() -> None:
    """A call made from a function's handler module is that function's; from elsewhere, no one's."""
    assert iam.current_function() is None
    module = manifest.function("health").handler.rpartition(".")[0]
    path = iam.ROOT / (module.replace(".", "/") + ".py")
    namespace: dict[str, Any] = {"iam": iam}
    exec(compile("def probe():\n    return iam.current_function()\n", str(path), "exec"), namespace)
    assert namespace["probe"]() == "health"


def test_physical_names_map_to_the_manifest() -> None:
    twin_secret = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rampart-local/jwt-keys-AbCdEf"
    assert iam.normalize(iam.Call("f", "secretsmanager:GetSecretValue", f"secret:{twin_secret}")).resource == (
        "secret:jwt_keys"
    )
    assert iam.normalize(iam.Call("f", "dynamodb:GetItem", "table:rampart-local-rate_limits")).resource == (
        "table:rate_limits"
    )
    assert iam.normalize(iam.Call("f", "dynamodb:GetItem", "table:rampart-idempotency")).resource == (
        "table:idempotency"
    )
    assert iam.normalize(iam.Call("f", "sqs:SendMessage", "queue:rampart-local-ledger_sweep-dlq")).resource == (
        "queue:ledger_sweep-dlq"
    )
