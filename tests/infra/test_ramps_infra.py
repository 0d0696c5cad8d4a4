"""Ramps II in the cloud (issue 10): the ramps function gets every ``External``'s value from its
stage and the state machines' ARNs, may start exactly the two executions; the sweep never
overlaps itself; the two state machines run the ASL files with the worker's ARN substituted; the
PIX API key is a generated secret a human replaces; only the functions that reach the outside
world (chains, providers) leave the VPC, through a NAT."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App

from infra import manifest
from infra.asl import staged_text
from infra.stacks import STAGES, readback
from infra.stacks.asynchronous import dlq_name
from infra.stacks.compute import externals_used, reaches_outside
from infra.stacks.network import APP_SUBNETS, DATA_SUBNETS, EGRESS_SUBNETS
from infra.stacks.stack import RampartStack
from tests.infra.conftest import Cloud
from tests.support import iam

ROOT = Path(__file__).resolve().parents[2]
SUBNET_NAME_TAG = "aws-cdk:subnet-name"  # aws-cdk-lib tags every subnet with its group's name
MACHINES = ("brl_on", "brl_off")
EXTERNALS = [e.name for e in manifest.EXTERNALS]


def _function(template: dict[str, Any], name: str) -> tuple[str, dict[str, Any]]:
    logical_id = next(k for k, v in readback.function_names(template).items() if v == name)
    return logical_id, dict(template["Resources"][logical_id]["Properties"])


def _machines(template: dict[str, Any]) -> dict[str, str]:
    """Manifest name → logical id of each state machine."""
    tagged = readback.tagged(template, "AWS::StepFunctions::StateMachine", readback.STATE_MACHINE_TAG)
    return {name: logical_id for logical_id, name in tagged.items()}


def _prod_retries(spec: manifest.StateMachine) -> tuple[manifest.RetryPolicy, ...]:
    return spec.retry_policies("prod")


def _subnet_groups(template: dict[str, Any]) -> dict[str, str]:
    """Subnet logical id → its group (``app``, ``data``, ``public``, ``egress``)."""
    found = {}
    for logical_id, subnet in readback.resources(template, "AWS::EC2::Subnet").items():
        group = readback.tag(subnet, SUBNET_NAME_TAG)
        assert group is not None, logical_id
        found[logical_id] = group
    return found


def _egress_group(template: dict[str, Any]) -> str:
    (logical_id,) = (
        k
        for k, v in readback.resources(template, "AWS::EC2::SecurityGroup").items()
        if k.startswith("NetworkEgressSecurityGroup")
    )
    return logical_id


# --- the ramps function's environment --------------------------------------------------------------


def test_ramps_uses_every_external() -> None:
    """The premise of the next test: the ramps function names each External the manifest declares."""
    assert EXTERNALS
    assert externals_used(manifest.function("ramps")) == sorted(EXTERNALS)


@pytest.mark.parametrize("stage", list(STAGES))
def test_the_ramps_env_has_every_external_and_the_state_machine_arns(cloud: Cloud, stage: str) -> None:
    template = cloud.templates[stage]
    _, props = _function(template, "ramps")
    env = props["Environment"]["Variables"]
    declared = manifest.resources()
    for name in EXTERNALS:
        assert env[manifest.env_var(declared[name])] == STAGES[stage].externals[name], name
    _machines(template)  # both are in the template …
    for name in MACHINES:  # … and the function is given each one's ARN (derived from its name: no cycle)
        arn = f"arn:aws:states:us-east-1:{STAGES[stage].account}:stateMachine:rampart-{stage}-{name}"
        assert env[manifest.env_var(declared[name])] == arn, name
    # and every other function that uses an External gets the same stage value
    for spec in manifest.FUNCTIONS:
        variables = _function(template, spec.name)[1]["Environment"]["Variables"]
        for name in EXTERNALS:
            variable = manifest.env_var(declared[name])
            if name in spec.uses:
                assert variables[variable] == STAGES[stage].externals[name], (spec.name, name)
            else:
                assert variable not in variables, (spec.name, name)


@pytest.mark.parametrize("stage", list(STAGES))
def test_the_ramp_windows_are_the_manifests_for_the_stage(cloud: Cloud, stage: str) -> None:
    """The windows reach the ramps function and the sweep from the manifest's StageSetting."""
    (windows,) = manifest.STAGE_SETTINGS
    variable = manifest.env_var(windows)
    for name in ("ramps", "ramp_sweep"):
        env = _function(cloud.templates[stage], name)[1]["Environment"]["Variables"]
        assert env[variable] == windows.value(stage)
        api_md = "quote_ttl=600,start_deadline=900,payment_window=1800"
        assert windows.value(stage) == f"{api_md},watch_grace=120,silence=1800"


def test_the_stages_externals_are_placeholders_a_human_replaces() -> None:
    """Reserved ``.example`` hosts and addresses of the form 0x00…0N: nothing real until a human
    sets it (docs/cloud.md, "Before a first production deploy" lists them)."""
    cloud_md = (ROOT / "docs" / "cloud.md").read_text()
    before_deploy = cloud_md.split("### Before a first production deploy", 1)[1]
    for config in STAGES.values():
        assert set(config.externals) == set(EXTERNALS), config.name
        assert ".example/" in config.externals["base_rpc"]
        assert ".example/" in config.externals["pix_api"]
        for pairs in (config.externals["base_contracts"], config.externals["base_accounts"]):
            for pair in pairs.split(","):
                _, _, address = pair.partition("=")
                assert address.startswith("0x" + "0" * 36), pair
    for name in EXTERNALS:
        assert f"`{name}`" in before_deploy, f"docs/cloud.md does not ask a human to set {name}"


def test_a_stage_without_an_external_value_fails_synthesis() -> None:
    dev = STAGES["dev"]
    for broken in (
        {k: v for k, v in dev.externals.items() if k != "pix_api"},
        {**dev.externals, "pix_api": "  "},
    ):
        stage = dataclasses.replace(dev, externals=broken)
        with pytest.raises(ValueError, match=r"stage dev: no value for External resource\(s\) pix_api"):
            RampartStack(App(), "rampart-dev", stage=stage)


# --- Step Functions ---------------------------------------------------------------------------------


@pytest.mark.parametrize("stage", list(STAGES))
def test_ramps_may_start_and_resume_exactly_brl_on_and_brl_off(cloud: Cloud, stage: str) -> None:
    grants = iam.role_grants(cloud.templates[stage])
    states = {(g.action, g.resource, g.suffix) for g in grants["ramps"] if g.action.startswith("states:")}
    # start (and recover) executions; for an operator's resume: is it alive, hand it the decision
    assert states == {
        (action, f"state_machine:{name}", suffix)
        for name in MACHINES
        for action, suffix in (
            ("states:StartExecution", ""),
            ("states:DescribeExecution", ":*"),
            ("states:SendTaskSuccess", ""),
        )
    }
    assert all(g.effect == "Allow" for g in grants["ramps"])
    others = {fn: [g for g in gs if g.action.startswith("states:")] for fn, gs in grants.items() if fn != "ramps"}
    completing = {
        fn: {(g.action, g.resource) for g in found} for fn, found in others.items() if found
    }  # the payment wait: the worker completes it when the payment came first, the webhook path otherwise
    wanted = {(action, "state_machine:brl_on") for action in manifest.TASK_COMPLETION}
    watching = {(action, f"state_machine:{name}") for name in MACHINES for action in manifest.WATCH} | wanted
    assert completing == {"ramp_worker": wanted, "webhook_apply": wanted, "ramp_watch": watching}, (
        "nobody else touches an execution"
    )


@pytest.mark.parametrize("stage", list(STAGES))
def test_the_state_machines_run_their_asl_with_the_workers_arn(cloud: Cloud, stage: str) -> None:
    template = cloud.templates[stage]
    machines = _machines(template)
    assert set(machines) == set(MACHINES)
    worker, _ = _function(template, "ramp_worker")
    for name in MACHINES:
        spec = next(m for m in manifest.STATE_MACHINES if m.name == name)
        props = template["Resources"][machines[name]]["Properties"]
        assert props["StateMachineType"] == "STANDARD"
        assert props["DefinitionSubstitutions"] == {"RampWorker": {"Fn::GetAtt": [worker, "Arn"]}}
        # the committed file, its Retry waits the stage's (prod's are the file's own)
        deployed = props["DefinitionString"]
        committed = (ROOT / spec.definition).read_text()
        assert json.loads(deployed) == json.loads(staged_text(committed, spec.retry_policies(stage)))
        assert (json.loads(deployed) == json.loads(committed)) == (spec.retry_policies(stage) == _prod_retries(spec))
        assert "${RampWorker}" in deployed
        # its role invokes the worker and nothing else
        role = props["RoleArn"]["Fn::GetAtt"][0]
        invoke = [
            statement
            for policy in readback.resources(template, "AWS::IAM::Policy").values()
            if {"Ref": role} in policy["Properties"]["Roles"]
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]
            if "lambda:" in json.dumps(statement["Action"])
        ]
        assert invoke, name
        assert set().union(*(readback.referenced_logical_ids(s["Resource"]) for s in invoke)) == {worker}


# --- the functions ------------------------------------------------------------------------------------


@pytest.mark.parametrize("stage", list(STAGES))
def test_the_ramp_sweep_never_overlaps_itself_and_ends_in_its_dlq(cloud: Cloud, stage: str) -> None:
    template = cloud.templates[stage]
    sweep, props = _function(template, "ramp_sweep")
    assert props["ReservedConcurrentExecutions"] == 1
    schedules = {s.name: s for s in readback.schedules(template)}
    assert schedules["ramp-sweep"] == readback.ScheduleEntry("ramp-sweep", "rate(1 minute)", "ramp_sweep")
    dlq = next(
        k
        for k, v in readback.tagged(template, "AWS::SQS::Queue", readback.QUEUE_TAG).items()
        if v == dlq_name("ramp_sweep")
    )
    (config,) = (
        c["Properties"]
        for c in readback.resources(template, "AWS::Lambda::EventInvokeConfig").values()
        if c["Properties"]["FunctionName"] == {"Ref": sweep}
    )
    assert readback.referenced_logical_ids(config["DestinationConfig"]["OnFailure"]) == {dlq}


def test_ramps_and_the_worker_carry_the_chains_layer(dev_json: dict[str, Any]) -> None:
    layers = {
        k: v["Properties"]["Description"] for k, v in readback.resources(dev_json, "AWS::Lambda::LayerVersion").items()
    }
    (chains,) = (k for k, d in layers.items() if d.startswith("Chain SDKs"))
    for spec in manifest.FUNCTIONS:
        _, props = _function(dev_json, spec.name)
        carried = {layer["Ref"] for layer in props["Layers"]}
        assert (chains in carried) == ("chains" in spec.layers), spec.name
    assert {"ramps", "ramp_worker"} <= {s.name for s in manifest.FUNCTIONS if "chains" in s.layers}


@pytest.mark.parametrize("stage", list(STAGES))
def test_the_pix_api_key_is_a_generated_secret_under_the_secrets_key(cloud: Cloud, stage: str) -> None:
    template = cloud.templates[stage]
    secrets = {v: k for k, v in readback.tagged(template, "AWS::SecretsManager::Secret", readback.SECRET_TAG).items()}
    keys = {v: k for k, v in readback.tagged(template, "AWS::KMS::Key", readback.KEY_TAG).items()}
    props = template["Resources"][secrets["pix_api_key"]]["Properties"]
    assert readback.referenced_logical_ids(props["KmsKeyId"]) == {keys["secrets"]}
    assert props["GenerateSecretString"]["PasswordLength"] == 48  # a placeholder the provider refuses
    grants = iam.role_grants(template)
    readers = {fn for fn, gs in grants.items() for g in gs if g.resource == "secret:pix_api_key"}
    assert (
        readers
        == {s.name for s in manifest.FUNCTIONS if "pix_api_key" in s.uses}
        == {"ramps", "ramp_sweep", "ramp_worker", "ramp_watch"}
    )
    for fn in readers:
        _, env = _function(template, fn)
        assert env["Environment"]["Variables"]["RAMPART_PIX_API_KEY_ARN"] == {"Ref": secrets["pix_api_key"]}


# --- egress: a NAT only for the functions that use an External -------------------------------------


@pytest.mark.parametrize("stage", list(STAGES))
def test_nat_egress_only_for_the_functions_that_use_an_external(cloud: Cloud, stage: str) -> None:
    template = cloud.templates[stage]
    groups = _subnet_groups(template)
    egress_group = _egress_group(template)
    outside = {spec.name for spec in manifest.FUNCTIONS if reaches_outside(spec)}
    assert {"ramps", "ramp_sweep"} <= outside
    assert "health" not in outside
    for spec in manifest.FUNCTIONS:
        _, props = _function(template, spec.name)
        vpc = props.get("VpcConfig")
        assert (vpc is not None) == ("postgres" in spec.uses), spec.name
        if vpc is None:
            continue
        subnets = {groups[s["Ref"]] for s in vpc["SubnetIds"]}
        wears = {g["Fn::GetAtt"][0] for g in vpc["SecurityGroupIds"]}
        if spec.name in outside:
            assert subnets == {EGRESS_SUBNETS}, spec.name
            assert egress_group in wears, spec.name
        else:
            assert subnets == {APP_SUBNETS}, spec.name
            assert egress_group not in wears, spec.name
    # what the egress group allows: HTTPS out, nothing else, nothing in
    group = template["Resources"][egress_group]["Properties"]
    assert group["SecurityGroupEgress"] == [
        {
            "CidrIp": "0.0.0.0/0",
            "Description": "HTTPS to chains' RPC and providers' APIs",
            "FromPort": 443,
            "IpProtocol": "tcp",
            "ToPort": 443,
        }
    ]
    assert not group.get("SecurityGroupIngress")
    ingress = readback.resources(template, "AWS::EC2::SecurityGroupIngress")
    assert not [
        k for k, v in ingress.items() if v["Properties"]["GroupId"] == {"Fn::GetAtt": [egress_group, "GroupId"]}
    ]


def test_a_manifest_without_outside_users_has_no_way_out(fixture_cloud: Cloud) -> None:
    """The fixture manifest uses no External: no public or egress subnets, no NAT, no internet
    gateway, no route at all."""
    template = fixture_cloud.templates["dev"]
    assert set(_subnet_groups(template).values()) == {APP_SUBNETS, DATA_SUBNETS}
    for internet in ("AWS::EC2::InternetGateway", "AWS::EC2::NatGateway", "AWS::EC2::EIP", "AWS::EC2::Route"):
        assert readback.resources(template, internet) == {}, internet
    assert not [k for k in readback.resources(template, "AWS::EC2::SecurityGroup") if "Egress" in k]
