"""Cloud hardening (issue 12, §3–§5) as CDK assertions on the synthesized templates: concurrency,
timeouts and connections; alarms that reach someone; the database's audit trail and keys; the
network's egress and endpoints; each stage pinned to its account and region; the edge (WAF,
throttles)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from infra import manifest
from infra.stacks import STAGES, readback, stack_name
from infra.stacks.api import MAX_BODY_BYTES, OVER_256_KB, sensitive_paths
from infra.stacks.config import StageConfig
from infra.stacks.data import DB_PARAMETERS, proxy_borrow_timeout
from rampart.adapters.postgres import db
from tests.infra.conftest import Cloud


def _of_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {k: dict(v) for k, v in readback.resources(template, resource_type).items()}


def _function(template: dict[str, Any], name: str) -> dict[str, Any]:
    logical_id = next(k for k, v in readback.function_names(template).items() if v == name)
    return dict(template["Resources"][logical_id])


def _keys(template: dict[str, Any]) -> dict[str, str]:
    """Purpose → logical id of each customer-managed key."""
    return {v: k for k, v in readback.tagged(template, "AWS::KMS::Key", readback.KEY_TAG).items()}


def _alarms(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: v["Properties"] for k, v in _of_type(template, "AWS::CloudWatch::Alarm").items()}


# --- §4 concurrency, timeouts and connections ----------------------------------------------------


@pytest.mark.parametrize("spec", manifest.FUNCTIONS, ids=lambda f: f.name)
def test_reserved_concurrency_comes_from_the_manifest(dev_json: dict[str, Any], spec: manifest.Function) -> None:
    props = _function(dev_json, spec.name)["Properties"]
    assert props.get("ReservedConcurrentExecutions") == spec.concurrency
    if spec.kind in ("scheduled", "deploy"):
        assert spec.concurrency == 1, "a schedule or a deploy step never overlaps itself"


def test_every_api_function_and_the_authorizer_have_a_reservation() -> None:
    """A login flood (argon2) cannot take the concurrency the authorizer and the money functions need."""
    for spec in manifest.MANIFEST.of_kind("api", "authorizer"):
        assert spec.concurrency, spec.name
    authorizer = manifest.MANIFEST.of_kind("authorizer")[0]
    assert authorizer.concurrency is not None
    assert authorizer.concurrency >= max(s.concurrency or 0 for s in manifest.MANIFEST.of_kind("api"))


def test_the_proxy_gives_up_on_a_connection_before_any_function_times_out(dev_json: dict[str, Any]) -> None:
    (target_group,) = _of_type(dev_json, "AWS::RDS::DBProxyTargetGroup").values()
    borrow = target_group["Properties"]["ConnectionPoolConfigurationInfo"]["ConnectionBorrowTimeout"]
    shortest = min(f.timeout_seconds for f in manifest.FUNCTIONS if "postgres" in f.uses)
    assert borrow == proxy_borrow_timeout(manifest.MANIFEST) < shortest
    assert shortest > db.CONNECT_TIMEOUT_SECONDS


def test_throttle_alarm_for_every_function(dev_json: dict[str, Any]) -> None:
    throttled = {
        readback.function_names(dev_json)[dim["Value"]["Ref"]]
        for alarm in _alarms(dev_json).values()
        if alarm.get("MetricName") == "Throttles"
        for dim in alarm["Dimensions"]
    }
    assert throttled == {f.name for f in manifest.FUNCTIONS}


# --- §5 alarms that reach someone ------------------------------------------------------------------


@pytest.mark.parametrize("stage", list(STAGES))
def test_alarm_subscribers_come_from_the_stage(cloud: Cloud, stage: str) -> None:
    template = cloud.templates[stage]
    endpoints = {s["Properties"]["Endpoint"] for s in _of_type(template, "AWS::SNS::Subscription").values()}
    assert endpoints == set(STAGES[stage].alarm_emails)
    assert all(s["Properties"]["Protocol"] == "email" for s in _of_type(template, "AWS::SNS::Subscription").values())


def test_cloudwatch_of_this_account_may_publish_to_the_alarm_topic(dev_json: dict[str, Any]) -> None:
    (policy,) = _of_type(dev_json, "AWS::SNS::TopicPolicy").values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    (allow,) = [
        s for s in statements if s["Effect"] == "Allow" and s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    ]
    assert allow["Action"] == "sns:Publish"
    assert allow["Condition"]["StringEquals"]["aws:SourceAccount"] == STAGES["dev"].account


def test_the_authorizers_refusals_do_not_raise_its_error_alarm(dev_json: dict[str, Any]) -> None:
    """API Gateway needs ``raise Exception("Unauthorized")`` for a 401, which Lambda counts as an
    error: the authorizer's alarm watches its errors less its AuthorizerRefused metric."""
    (authorizer,) = manifest.MANIFEST.of_kind("authorizer")
    math = [a for a in _alarms(dev_json).values() if "Metrics" in a]
    (faults,) = [
        a for a in math if any(m.get("Expression") == "FILL(errors, 0) - FILL(refused, 0)" for m in a["Metrics"])
    ]
    refused = next(m for m in faults["Metrics"] if m["Id"] == "refused")["MetricStat"]["Metric"]
    assert (refused["Namespace"], refused["MetricName"]) == ("Rampart", "AuthorizerRefused")
    assert refused["Dimensions"] == [{"Name": "service", "Value": authorizer.name}]
    errors = next(m for m in faults["Metrics"] if m["Id"] == "errors")["MetricStat"]["Metric"]
    assert errors["MetricName"] == "Errors"


def test_a_heartbeat_alarm_for_every_schedule(dev_json: dict[str, Any]) -> None:
    beats = [a for a in _alarms(dev_json).values() if a.get("MetricName") == "Invocations"]
    names = {readback.function_names(dev_json)[d["Value"]["Ref"]] for a in beats for d in a["Dimensions"]}
    assert names == {f.name for f in manifest.MANIFEST.of_kind("scheduled")}
    for alarm in beats:
        assert (alarm["ComparisonOperator"], alarm["Threshold"], alarm["TreatMissingData"]) == (
            "LessThanThreshold",
            1,
            "breaching",
        )


def test_database_and_table_alarms(dev_json: dict[str, Any]) -> None:
    metrics = [a.get("MetricName") for a in _alarms(dev_json).values()]
    assert {"DatabaseConnectionsBorrowLatency", "ClientConnections", "ACUUtilization"} <= set(metrics)
    text = json.dumps(_alarms(dev_json))
    for table in manifest.TABLES:
        table_id = {v: k for k, v in readback.tagged(dev_json, "AWS::DynamoDB::Table", readback.TABLE_TAG).items()}
        assert text.count(f'"Ref": "{table_id[table.name]}"') >= 2 * 4, f"system errors and throttles on {table.name}"
    assert "SystemErrors" in text
    assert "ThrottledRequests" in text


# --- §5 the database's audit trail and keys --------------------------------------------------------


def test_aurora_has_its_own_parameters(dev_json: dict[str, Any]) -> None:
    (group,) = _of_type(dev_json, "AWS::RDS::DBClusterParameterGroup").values()
    params = group["Properties"]["Parameters"]
    assert params == DB_PARAMETERS
    assert params["rds.force_ssl"] == "1"
    assert (params["log_connections"], params["log_disconnections"]) == ("1", "1")
    assert "pgaudit" in params["shared_preload_libraries"].split(",")
    assert params["pgaudit.log_parameter"] == "0", "statement parameters (e-mails, hashes) stay out of the logs"
    (cluster,) = _of_type(dev_json, "AWS::RDS::DBCluster").values()
    assert "DBClusterParameterGroupName" in cluster["Properties"]


@pytest.mark.parametrize("stage", list(STAGES))
def test_customer_managed_keys(cloud: Cloud, stage: str) -> None:
    template = cloud.templates[stage]
    keys = _keys(template)
    assert set(keys) == {"database", "secrets", "logs"}
    for logical_id in keys.values():
        assert template["Resources"][logical_id]["Properties"]["EnableKeyRotation"] is True
    (cluster,) = _of_type(template, "AWS::RDS::DBCluster").values()
    assert cluster["Properties"]["KmsKeyId"] == {"Fn::GetAtt": [keys["database"], "Arn"]}
    secrets = readback.tagged(template, "AWS::SecretsManager::Secret", readback.SECRET_TAG)
    logins = {f"postgres:{r.name}" for r in manifest.MANIFEST.login_roles()}  # a secret per database role
    assert set(secrets.values()) == {s.name for s in manifest.SECRETS} | {"postgres"} | logins
    for logical_id, name in secrets.items():
        expected = keys["database"] if name.partition(":")[0] == "postgres" else keys["secrets"]
        assert readback.referenced_logical_ids(template["Resources"][logical_id]["Properties"]["KmsKeyId"]) == {
            expected
        }, name
    for name in readback.functions(template):
        log_group = _function(template, name)["Properties"]["LoggingConfig"]["LogGroup"]
        group = template["Resources"][log_group["Ref"]]["Properties"]
        assert readback.referenced_logical_ids(group["KmsKeyId"]) == {keys["logs"]}, name


def test_the_logs_key_serves_cloudwatch_logs_of_this_account_only(dev_json: dict[str, Any]) -> None:
    key = dev_json["Resources"][_keys(dev_json)["logs"]]["Properties"]["KeyPolicy"]["Statement"]
    (logs,) = [s for s in key if s.get("Principal", {}).get("Service") == "logs.us-east-1.amazonaws.com"]
    assert "arn:aws:logs:us-east-1:111111111111:log-group:*" in json.dumps(logs["Condition"])


def test_secret_readers_decrypt_through_secrets_manager_only(dev_json: dict[str, Any]) -> None:
    statements = [
        s
        for p in _of_type(dev_json, "AWS::IAM::Policy").values()
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        if s["Action"] == "kms:Decrypt" or s["Action"] == ["kms:Decrypt"]
    ]
    assert statements
    ours = [s for s in statements if "kms:ViaService" in json.dumps(s.get("Condition", {}))]
    assert ours, "function roles decrypt secrets only via Secrets Manager"


# --- §5 the network ----------------------------------------------------------------------------------


@pytest.mark.parametrize("stage", list(STAGES))
def test_no_security_group_allows_all_egress(cloud: Cloud, stage: str) -> None:
    template = cloud.templates[stage]
    for logical_id, group in _of_type(template, "AWS::EC2::SecurityGroup").items():
        for rule in group["Properties"].get("SecurityGroupEgress", []):
            assert rule.get("IpProtocol") != "-1", f"{logical_id} allows all egress"
    for logical_id, rule in _of_type(template, "AWS::EC2::SecurityGroupEgress").items():
        assert rule["Properties"]["IpProtocol"] == "tcp", logical_id


def test_vpc_endpoints_reach_resources_of_this_account_only(dev_json: dict[str, Any]) -> None:
    endpoints = _of_type(dev_json, "AWS::EC2::VPCEndpoint")
    assert len(endpoints) == 5
    services = json.dumps([e["Properties"]["ServiceName"] for e in endpoints.values()])
    assert ".sqs" in services  # the webhook path sends to SQS from the VPC
    assert ".secretsmanager" in services
    assert ".states" in services  # the ramps start executions from the VPC
    for logical_id, endpoint in endpoints.items():
        statements = endpoint["Properties"]["PolicyDocument"]["Statement"]
        broad = [s for s in statements if s["Action"] != "secretsmanager:GetRandomPassword"]
        assert broad, logical_id
        for statement in broad:
            assert statement["Condition"] == {"StringEquals": {"aws:ResourceAccount": "111111111111"}}, logical_id


@pytest.mark.parametrize("stage", list(STAGES))
def test_each_stage_is_pinned_to_its_account_and_region(cloud: Cloud, stage: str) -> None:
    config: StageConfig = STAGES[stage]
    artifact = cloud.manifest["artifacts"][stack_name(stage)]
    assert artifact["environment"] == f"aws://{config.account}/{config.region}"


# --- §3 one client cannot exhaust the API for everyone ---------------------------------------------


def _web_acl(template: dict[str, Any]) -> dict[str, Any]:
    (acl,) = _of_type(template, "AWS::WAFv2::WebACL").values()
    return dict(acl["Properties"])


def _rule(template: dict[str, Any], name: str) -> dict[str, Any]:
    return next(r for r in _web_acl(template)["Rules"] if r["Name"] == name)


@pytest.mark.parametrize("stage", list(STAGES))
def test_waf_rate_limits_per_ip_tighter_on_auth_and_webhooks(cloud: Cloud, stage: str) -> None:
    template = cloud.templates[stage]
    config = STAGES[stage]
    everything = _rule(template, "ip-rate")["Statement"]["RateBasedStatement"]
    assert (everything["Limit"], everything["AggregateKeyType"]) == (config.waf_ip_limit, "IP")
    assert "ScopeDownStatement" not in everything
    sensitive = _rule(template, "ip-rate-sensitive")["Statement"]["RateBasedStatement"]
    assert sensitive["Limit"] == config.waf_sensitive_ip_limit < config.waf_ip_limit
    scoped = json.dumps(sensitive["ScopeDownStatement"])
    for path in sensitive_paths(manifest.MANIFEST):
        assert f'"SearchString": "{path}"' in scoped
    assert "/v1/auth/" in sensitive_paths(manifest.MANIFEST)
    for rule in ("ip-rate", "ip-rate-sensitive"):
        assert _rule(template, rule)["Action"] == {"Block": {}}


def test_waf_ip_reputation_first_and_the_body_limit(dev_json: dict[str, Any]) -> None:
    rules = sorted(_web_acl(dev_json)["Rules"], key=lambda r: r["Priority"])
    assert rules[0]["Statement"]["ManagedRuleGroupStatement"]["Name"] == "AWSManagedRulesAmazonIpReputationList"
    assert rules[0]["OverrideAction"] == {"None": {}}, "the reputation list blocks"
    size = _rule(dev_json, "body-over-256kb")
    assert size["Action"]["Block"]["CustomResponse"]["ResponseCode"] == 413
    regex = size["Statement"]["RegexMatchStatement"]
    assert regex["FieldToMatch"] == {"SingleHeader": {"Name": "content-length"}}
    assert regex["RegexString"] == OVER_256_KB


@pytest.mark.parametrize(
    ("length", "over"),
    [
        ("0", False),
        ("1024", False),
        ("262144", False),
        ("0262144", False),
        ("262145", True),
        ("262150", True),
        ("262200", True),
        ("263000", True),
        ("270000", True),
        ("300000", True),
        ("999999", True),
        ("1000000", True),
        ("99999", False),
        ("200000", False),
        ("262139", False),
    ],
)
def test_the_body_limit_regex_is_a_numeric_comparison(length: str, over: bool) -> None:
    assert bool(re.match(OVER_256_KB, length)) == over == (int(length) > MAX_BODY_BYTES)


def test_waf_logs_with_credentials_redacted(dev_json: dict[str, Any]) -> None:
    (logging,) = _of_type(dev_json, "AWS::WAFv2::LoggingConfiguration").values()
    props = logging["Properties"]
    assert {f["SingleHeader"]["Name"] for f in props["RedactedFields"]} == {"authorization", "x-api-key"}
    (destination,) = props["LogDestinationConfigs"]
    assert ":*" not in json.dumps(destination), "WAF takes the log group's ARN without the :* suffix"
    (group_id,) = readback.referenced_logical_ids(destination)
    waf = dev_json["Resources"][group_id]["Properties"]
    assert waf["LogGroupName"] == "aws-waf-logs-rampart-dev"  # WAF's required prefix
    assert "KmsKeyId" in waf


def test_per_method_throttles(dev_json: dict[str, Any]) -> None:
    (stage,) = _of_type(dev_json, "AWS::ApiGateway::Stage").values()
    settings = {(s["ResourcePath"], s["HttpMethod"]): s for s in stage["Properties"]["MethodSettings"]}
    config = STAGES["dev"]
    for route, _fn in manifest.routes():
        key = ("/" + route.path.replace("/", "~1"), route.method)
        if not route.auth:
            assert (settings[key]["ThrottlingRateLimit"], settings[key]["ThrottlingBurstLimit"]) == (
                config.public_method_rate,
                config.public_method_burst,
            ), route
        elif route.idempotent:
            assert settings[key]["ThrottlingRateLimit"] == config.money_method_rate, route
        else:
            assert key not in settings, route
    assert config.public_method_rate < config.api_rate_limit


def test_partner_keys_come_from_the_authorizer(dev_json: dict[str, Any]) -> None:
    (api,) = _of_type(dev_json, "AWS::ApiGateway::RestApi").values()
    assert api["Properties"]["ApiKeySourceType"] == "AUTHORIZER"
    (authorizer,) = _of_type(dev_json, "AWS::ApiGateway::Authorizer").values()
    # No gateway cache: a caller presents one of two headers, and the cache key would need both
    # (see rampart.api.authorizer); the authorizer caches verified API keys by digest itself.
    assert authorizer["Properties"]["AuthorizerResultTtlInSeconds"] == 0
    assert "IdentitySource" not in authorizer["Properties"] or not authorizer["Properties"]["IdentitySource"]
