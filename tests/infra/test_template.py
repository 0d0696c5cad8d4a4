"""CDK assertions on the synthesized templates (dev unless the property is stage-specific)."""

from __future__ import annotations

import json
import string
from typing import Any

import pytest
from aws_cdk import aws_apigateway as apigw
from aws_cdk.assertions import Match, Template

from infra import manifest
from infra.stacks import STAGES, readback
from infra.stacks.asynchronous import EXECUTIONS_DLQ, dlq_name
from infra.stacks.gateway_responses import GATEWAY_PROBLEMS, PROBLEM_CONTENT_TYPE
from infra.stacks.network import APP_SUBNETS, DATA_SUBNETS, EGRESS_SUBNETS, PUBLIC_SUBNETS
from tests.infra.conftest import Cloud


def _of_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {k: dict(v) for k, v in readback.resources(template, resource_type).items()}


def _function_id(template: dict[str, Any], name: str) -> str:
    return next(k for k, v in readback.function_names(template).items() if v == name)


# --- compute ------------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", manifest.FUNCTIONS, ids=lambda f: f.name)
def test_function_matches_manifest(dev: Template, spec: manifest.Function) -> None:
    dev.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": spec.handler,
            "Runtime": "python3.12",
            "Architectures": ["arm64"],
            "MemorySize": spec.memory_mb,
            "Timeout": spec.timeout_seconds,
            "TracingConfig": {"Mode": "Active"},
            "LoggingConfig": Match.object_like({"LogFormat": "JSON", "LogGroup": Match.any_value()}),
            "Layers": Match.any_value(),
            "Role": Match.any_value(),
            "Tags": Match.array_with([{"Key": readback.FUNCTION_TAG, "Value": spec.name}]),
        },
    )


@pytest.mark.parametrize("spec", manifest.FUNCTIONS, ids=lambda f: f.name)
def test_env_contract_follows_uses(dev_json: dict[str, Any], spec: manifest.Function) -> None:
    props = dev_json["Resources"][_function_id(dev_json, spec.name)]["Properties"]
    env = props["Environment"]["Variables"]
    expected = {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "RAMPART_STAGE", "RAMPART_USES"}
    declared = manifest.resources()
    if "postgres" in spec.uses:
        expected |= {"RAMPART_DB_PROXY_ENDPOINT", "RAMPART_DB_NAME", "RAMPART_DB_USER"}
        if manifest.MANIFEST.db_role(str(spec.db_role)).owner:
            expected.add("RAMPART_DB_ROLE_SECRETS")  # the owner sets the login roles' passwords
    expected |= {manifest.env_var(declared[name]) for name in spec.uses if name != "postgres"}
    expected |= {key for key, _ in spec.env}
    assert set(env) == expected
    assert env["POWERTOOLS_SERVICE_NAME"] == spec.name
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == "Rampart"
    assert env["RAMPART_USES"] == manifest.uses_value([spec])
    for name in spec.uses & {t.name for t in manifest.TABLES}:
        table_id = {v: k for k, v in readback.tagged(dev_json, "AWS::DynamoDB::Table", readback.TABLE_TAG).items()}
        assert env[manifest.env_var(declared[name])] == {"Ref": table_id[name]}, name
    assert ("VpcConfig" in props) == ("postgres" in spec.uses), "exactly the PostgreSQL users run in the VPC"
    assert len(props["Layers"]) == 1 + len(spec.layers), "the rampart layer plus one per dependency layer"


def test_the_existing_secrets_keep_their_logical_ids_and_shapes(dev_json: dict[str, Any]) -> None:
    """Replacing a secret would replace its value: every signing key and the admin's password."""
    secrets = _of_type(dev_json, "AWS::SecretsManager::Secret")
    jwt = next(v for k, v in secrets.items() if k.startswith("DataJwtKeys"))["Properties"]["GenerateSecretString"]
    assert json.loads(jwt["SecretStringTemplate"]) == {"active_kid": "k1"}
    assert (jwt["GenerateStringKey"], jwt["PasswordLength"]) == ("k1", 64)
    admin = next(v for k, v in secrets.items() if k.startswith("DataAdminSecret"))["Properties"]
    assert json.loads(admin["GenerateSecretString"]["SecretStringTemplate"]) == {"email": "admin@rampart.example"}
    assert admin["GenerateSecretString"]["GenerateStringKey"] == "password"


@pytest.mark.parametrize("spec", manifest.SECRETS, ids=lambda s: s.name)
def test_every_manifest_secret_is_generated_and_reaches_its_users(
    dev_json: dict[str, Any], spec: manifest.Secret
) -> None:
    users = [fn for fn in manifest.FUNCTIONS if spec.name in fn.uses]
    arns = {
        json.dumps(
            dev_json["Resources"][_function_id(dev_json, fn.name)]["Properties"]["Environment"]["Variables"][
                manifest.env_var(spec)
            ]
        )
        for fn in users
    }
    assert len(arns) <= 1, "one secret per manifest secret"
    for arn in arns:
        (secret_id,) = readback.referenced_logical_ids(json.loads(arn))
        generated = dev_json["Resources"][secret_id]["Properties"]["GenerateSecretString"]
        if spec.twin == "random_key":  # 64 lowercase hex characters, the twin's shape
            assert generated["PasswordLength"] == 64
            assert "SecretStringTemplate" not in generated
            assert generated["ExcludeUppercase"] is True
            assert generated["ExcludePunctuation"] is True
            assert not generated.get("IncludeSpace")
            assert set(string.ascii_lowercase) - set(generated["ExcludeCharacters"]) == set("abcdef")


def test_every_function_has_its_own_role_and_log_group(dev_json: dict[str, Any]) -> None:
    names = readback.function_names(dev_json)
    roles = {json.dumps(dev_json["Resources"][k]["Properties"]["Role"]) for k in names}
    groups = {json.dumps(dev_json["Resources"][k]["Properties"]["LoggingConfig"]["LogGroup"]) for k in names}
    assert len(roles) == len(groups) == len(names)
    for group in _of_type(dev_json, "AWS::Logs::LogGroup").values():
        assert group["Properties"].get("RetentionInDays"), "every log group has a retention"


# --- API ----------------------------------------------------------------------------------------


def test_every_route_is_a_method_with_the_right_authorization(dev_json: dict[str, Any]) -> None:
    (authorizer_id, authorizer) = next(iter(_of_type(dev_json, "AWS::ApiGateway::Authorizer").items()))
    assert authorizer["Properties"]["Type"] == "REQUEST"
    assert authorizer["Properties"]["AuthorizerResultTtlInSeconds"] == 0
    authorizer_fn = _function_id(dev_json, "authorizer")
    assert authorizer_fn in readback.referenced_logical_ids(authorizer["Properties"]["AuthorizerUri"])

    paths = readback.resource_paths(dev_json)
    methods = {}
    for method in _of_type(dev_json, "AWS::ApiGateway::Method").values():
        props = method["Properties"]
        methods[(props["HttpMethod"], paths[props["ResourceId"]["Ref"]])] = props
    for route, fn in manifest.routes():
        props = methods.pop((route.method, route.path))
        assert props["Integration"]["Type"] == "AWS_PROXY"
        assert _function_id(dev_json, fn.name) in readback.referenced_logical_ids(props["Integration"]["Uri"])
        if route.auth:
            assert props["AuthorizationType"] == "CUSTOM", route
            assert props["AuthorizerId"] == {"Ref": authorizer_id}, route
        else:
            assert props["AuthorizationType"] == "NONE", route
            assert "AuthorizerId" not in props, route
        assert "RequestValidatorId" not in props, "no validation at the gateway"
        assert "RequestModels" not in props, "no validation at the gateway"
    assert methods == {}, "no method outside the manifest"


def test_no_request_validation_at_the_gateway(dev: Template) -> None:
    dev.resource_count_is("AWS::ApiGateway::RequestValidator", 0)
    dev.resource_count_is("AWS::ApiGateway::Model", 0)


def test_every_gateway_response_is_problem_json(dev_json: dict[str, Any]) -> None:
    every_type = {getattr(apigw.ResponseType, n).response_type for n in dir(apigw.ResponseType) if n.isupper()}
    responses = {
        r["Properties"]["ResponseType"]: r["Properties"]
        for r in _of_type(dev_json, "AWS::ApiGateway::GatewayResponse").values()
    }
    assert set(responses) == every_type, "a gateway response for every type API Gateway can send by itself"
    for problem in GATEWAY_PROBLEMS:
        props = responses[getattr(apigw.ResponseType, problem.response_type).response_type]
        assert props["StatusCode"] == str(problem.status)
        params = props["ResponseParameters"]
        assert params["gatewayresponse.header.Content-Type"] == f"'{PROBLEM_CONTENT_TYPE}'"
        body = json.loads(props["ResponseTemplates"]["application/json"])
        assert body == {
            "type": f"/problems/{problem.slug}",
            "title": problem.title,
            "status": problem.status,
            "detail": problem.detail,
            "instance": "$context.path",
            "correlation_id": "$context.requestId",
        }
    expected = {
        "MISSING_AUTHENTICATION_TOKEN": ("404", "not-found"),
        "RESOURCE_NOT_FOUND": ("404", "not-found"),
        "UNAUTHORIZED": ("401", "unauthorized"),
        "ACCESS_DENIED": ("403", "forbidden"),
        "THROTTLED": ("429", "rate-limited"),
        "QUOTA_EXCEEDED": ("429", "rate-limited"),
        "REQUEST_TOO_LARGE": ("413", "payload-too-large"),
        "UNSUPPORTED_MEDIA_TYPE": ("415", "unsupported-media-type"),
        "DEFAULT_5XX": ("500", "internal-error"),
    }
    for response_type, (status, slug) in expected.items():
        props = responses[response_type]
        assert (props["StatusCode"], json.loads(props["ResponseTemplates"]["application/json"])["type"]) == (
            status,
            f"/problems/{slug}",
        )
    assert responses["THROTTLED"]["ResponseParameters"]["gatewayresponse.header.Retry-After"] == "'1'"


def test_stage_throttling_access_logs_tracing_waf(dev: Template) -> None:
    dev.has_resource_properties(
        "AWS::ApiGateway::Stage",
        {
            "StageName": "dev",
            "TracingEnabled": True,
            "AccessLogSetting": Match.object_like({"DestinationArn": Match.any_value(), "Format": Match.any_value()}),
            "MethodSettings": Match.array_with(
                [Match.object_like({"ThrottlingRateLimit": 50, "ThrottlingBurstLimit": 100, "LoggingLevel": "ERROR"})]
            ),
        },
    )
    dev.has_resource_properties(
        "AWS::ApiGateway::UsagePlan",
        {"Throttle": Match.object_like({"RateLimit": 10}), "Quota": {"Limit": 10000, "Period": "DAY"}},
    )
    dev.has_resource_properties("AWS::ApiGateway::RestApi", {"ApiKeySourceType": "AUTHORIZER"})
    dev.resource_count_is("AWS::WAFv2::WebACLAssociation", 1)


# --- async --------------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", [f for f in manifest.FUNCTIONS if f.asynchronous], ids=lambda f: f.name)
def test_every_async_function_has_a_dlq(dev_json: dict[str, Any], spec: manifest.Function) -> None:
    queue_ids = {v: k for k, v in readback.tagged(dev_json, "AWS::SQS::Queue", readback.QUEUE_TAG).items()}
    dlq = queue_ids[dlq_name(spec.name)]
    queue = dev_json["Resources"][dlq]["Properties"]
    assert queue["SqsManagedSseEnabled"] is True
    assert queue["MessageRetentionPeriod"] == 14 * 24 * 3600
    fn_id = _function_id(dev_json, spec.name)
    configs = [
        c["Properties"]
        for c in _of_type(dev_json, "AWS::Lambda::EventInvokeConfig").values()
        if c["Properties"]["FunctionName"] == {"Ref": fn_id}
    ]
    assert len(configs) == 1
    assert readback.referenced_logical_ids(configs[0]["DestinationConfig"]["OnFailure"]) == {dlq}
    for rule in _of_type(dev_json, "AWS::Events::Rule").values():
        for target in rule["Properties"]["Targets"]:
            if fn_id in readback.referenced_logical_ids(target["Arn"]):
                assert readback.referenced_logical_ids(target["DeadLetterConfig"]) == {dlq}


def test_every_queue_is_encrypted_and_tls_only(dev_json: dict[str, Any]) -> None:
    queues = _of_type(dev_json, "AWS::SQS::Queue")
    assert queues
    policies = " ".join(json.dumps(p) for p in _of_type(dev_json, "AWS::SQS::QueuePolicy").values())
    for logical_id, queue in queues.items():
        assert queue["Properties"]["SqsManagedSseEnabled"] is True
        assert logical_id in policies
        assert '"aws:SecureTransport": "false"' in policies


# --- data ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", manifest.TABLES, ids=lambda t: t.name)
def test_tables(dev: Template, spec: manifest.Table) -> None:
    expected: dict[str, Any] = {
        "BillingMode": "PAY_PER_REQUEST",
        "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
        "KeySchema": Match.array_with([{"AttributeName": spec.partition_key, "KeyType": "HASH"}]),
        "SSESpecification": Match.object_like({"SSEEnabled": True}),
        "Tags": Match.array_with([{"Key": readback.TABLE_TAG, "Value": spec.name}]),
    }
    if spec.ttl_attribute:
        expected["TimeToLiveSpecification"] = {"AttributeName": spec.ttl_attribute, "Enabled": True}
    dev.has_resource_properties("AWS::DynamoDB::Table", expected)


def test_idempotency_table_has_ttl(dev: Template) -> None:
    dev.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "TimeToLiveSpecification": {"AttributeName": "expiration", "Enabled": True},
            "Tags": Match.array_with([{"Key": readback.TABLE_TAG, "Value": "idempotency"}]),
        },
    )


def test_aurora_is_encrypted_private_and_behind_an_iam_proxy(dev: Template, dev_json: dict[str, Any]) -> None:
    dev.has_resource_properties(
        "AWS::RDS::DBCluster",
        {
            "Engine": "aurora-postgresql",
            "StorageEncrypted": True,
            "EnableIAMDatabaseAuthentication": True,
            "ServerlessV2ScalingConfiguration": Match.object_like({"MinCapacity": 0.5}),
        },
    )
    for instance in _of_type(dev_json, "AWS::RDS::DBInstance").values():
        assert instance["Properties"]["PubliclyAccessible"] is False
        assert instance["Properties"]["DBInstanceClass"] == "db.serverless"
    (proxy,) = _of_type(dev_json, "AWS::RDS::DBProxy").values()
    assert proxy["Properties"]["RequireTLS"] is True
    assert proxy["Properties"]["EngineFamily"] == "POSTGRESQL"
    # One auth entry per login: the master user (migrate) and each database role of the manifest.
    auth = proxy["Properties"]["Auth"]
    assert len(auth) == 1 + len(manifest.MANIFEST.login_roles())
    assert all(entry["IAMAuth"] == "REQUIRED" and entry["AuthScheme"] == "SECRETS" for entry in auth)
    # every secret rotates: the cluster's and each role's
    dev.resource_count_is("AWS::SecretsManager::RotationSchedule", 1 + len(manifest.MANIFEST.login_roles()))
    # Private: Aurora and its proxy are in the data subnets, which have no route out (next test).
    groups = _subnet_groups(dev_json)
    (subnet_group,) = _of_type(dev_json, "AWS::RDS::DBSubnetGroup").values()
    assert {groups[s["Ref"]] for s in subnet_group["Properties"]["SubnetIds"]} == {DATA_SUBNETS}
    assert {groups[s["Ref"]] for s in proxy["Properties"]["VpcSubnetIds"]} == {DATA_SUBNETS}


def _subnet_groups(template: dict[str, Any]) -> dict[str, str]:
    """Subnet logical id → its group (aws-cdk-lib tags each subnet with its group's name)."""
    found = {}
    for logical_id, subnet in _of_type(template, "AWS::EC2::Subnet").items():
        group = readback.tag(subnet, "aws-cdk:subnet-name")
        assert group is not None, logical_id
        found[logical_id] = group
    return found


@pytest.mark.parametrize("stage", list(STAGES))
def test_the_only_way_out_is_the_nat_of_the_egress_subnets(cloud: Cloud, stage: str) -> None:
    """No route leads out of the app and data subnets; the egress subnets' one route out is a NAT
    gateway (one per zone in prod, one elsewhere); the public subnets route to the internet
    gateway and hold the NAT gateways and nothing else; no subnet gives out public addresses."""
    template = cloud.templates[stage]
    groups = _subnet_groups(template)
    assert sorted(groups.values()) == sorted(2 * [APP_SUBNETS, DATA_SUBNETS, PUBLIC_SUBNETS, EGRESS_SUBNETS])
    for subnet in _of_type(template, "AWS::EC2::Subnet").values():
        assert subnet["Properties"]["MapPublicIpOnLaunch"] is False
    table_group: dict[str, str] = {}
    for association in _of_type(template, "AWS::EC2::SubnetRouteTableAssociation").values():
        props = association["Properties"]
        table = props["RouteTableId"]["Ref"]
        assert table not in table_group, "one route table per subnet"
        table_group[table] = groups[props["SubnetId"]["Ref"]]
    nats = _of_type(template, "AWS::EC2::NatGateway")
    assert len(nats) == STAGES[stage].nat_gateways
    assert len(_of_type(template, "AWS::EC2::EIP")) == len(nats), "an Elastic IP per NAT gateway, nothing else"
    assert {groups[n["Properties"]["SubnetId"]["Ref"]] for n in nats.values()} == {PUBLIC_SUBNETS}
    (internet_gateway,) = _of_type(template, "AWS::EC2::InternetGateway")
    targets: dict[str, list[str]] = {}
    for route in _of_type(template, "AWS::EC2::Route").values():
        props = route["Properties"]
        assert props["DestinationCidrBlock"] == "0.0.0.0/0"
        target = props.get("NatGatewayId") or props.get("GatewayId")
        targets.setdefault(table_group[props["RouteTableId"]["Ref"]], []).append(target["Ref"])
    assert set(targets) == {PUBLIC_SUBNETS, EGRESS_SUBNETS}, "no route out of the app and data subnets"
    assert targets[PUBLIC_SUBNETS] == [internet_gateway, internet_gateway]
    assert len(targets[EGRESS_SUBNETS]) == 2, "each egress subnet routes out"
    assert set(targets[EGRESS_SUBNETS]) == set(nats), "through the NAT gateways, all of them used"
    public = {k for k, group in groups.items() if group == PUBLIC_SUBNETS}
    allowed = ("AWS::EC2::NatGateway", "AWS::EC2::SubnetRouteTableAssociation")
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] not in allowed:
            assert not readback.referenced_logical_ids(resource.get("Properties", {})) & public, logical_id


def test_documents_bucket(dev_json: dict[str, Any]) -> None:
    buckets = _of_type(dev_json, "AWS::S3::Bucket")
    policies = {p["Properties"]["Bucket"]["Ref"]: p for p in _of_type(dev_json, "AWS::S3::BucketPolicy").values()}
    for logical_id, bucket in buckets.items():
        props = bucket["Properties"]
        assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }
        assert '"aws:SecureTransport": "false"' in json.dumps(policies[logical_id])


# --- IAM ----------------------------------------------------------------------------------------

DATA_SERVICES = ("dynamodb", "sqs", "s3", "secretsmanager")


def _statements(template: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(logical id, kind, statement) of every policy statement, identity and resource policies."""
    found = []
    for logical_id, resource in template["Resources"].items():
        props = resource.get("Properties", {})
        documents = []
        kind = resource["Type"]
        if kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            documents.append(props["PolicyDocument"])
        elif kind == "AWS::IAM::Role":
            documents += [p["PolicyDocument"] for p in props.get("Policies", [])]
        elif kind in ("AWS::S3::BucketPolicy", "AWS::SQS::QueuePolicy", "AWS::SNS::TopicPolicy"):
            documents.append(props["PolicyDocument"])
        elif kind == "AWS::KMS::Key":
            documents.append(props["KeyPolicy"])
        elif kind == "AWS::SecretsManager::ResourcePolicy":
            documents.append(props["ResourcePolicy"])
        for document in documents:
            found += [(logical_id, kind, statement) for statement in document["Statement"]]
    return found


def _actions(statement: dict[str, Any]) -> list[str]:
    actions = statement.get("Action", [])
    return [actions] if isinstance(actions, str) else list(actions)


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_no_statement_allows_wildcard_actions(cloud: Cloud, stage: str) -> None:
    statements = _statements(cloud.templates[stage])
    assert statements
    offending = []
    for logical_id, kind, statement in statements:
        if statement["Effect"] != "Allow":
            continue
        for action in _actions(statement):
            service = action.split(":", 1)[0]
            wildcard = action == "*" or action.endswith(":*")
            data_wildcard = service in DATA_SERVICES and "*" in action
            # The one exception: a KMS key's default policy lets the account (IAM) administer it.
            key_admin = kind == "AWS::KMS::Key" and action == "kms:*" and "root" in json.dumps(statement["Principal"])
            if (wildcard or data_wildcard) and not key_admin:
                offending.append((logical_id, action))
    assert offending == []


def test_function_roles_are_least_privilege(dev_json: dict[str, Any]) -> None:
    """A function that does not use a table or secret gets no action on it."""
    policy_text = {
        logical_id: json.dumps(p["Properties"]) for logical_id, p in _of_type(dev_json, "AWS::IAM::Policy").items()
    }
    for spec in manifest.FUNCTIONS:
        role = dev_json["Resources"][_function_id(dev_json, spec.name)]["Properties"]["Role"]["Fn::GetAtt"][0]
        text = " ".join(t for t in policy_text.values() if f'"{role}"' in t)
        assert ("dynamodb:" in text) == bool(spec.uses & {t.name for t in manifest.TABLES}), spec.name
        assert ("rds-db:connect" in text) == ("postgres" in spec.uses), spec.name
        queues = {q.name for q in manifest.QUEUES}
        consumer = any(q.consumer == spec.name for q in manifest.QUEUES)
        assert ("sqs:" in text) == (spec.asynchronous or consumer or bool(spec.uses & queues)), spec.name
        if spec.asynchronous:
            assert "sqs:SendMessage" in text, spec.name


# --- stage safety and observability ------------------------------------------------------------


def test_prod_keeps_its_data(cloud: Cloud, prod_json: dict[str, Any], dev_json: dict[str, Any]) -> None:
    assert cloud.stack_properties("prod")["terminationProtection"] is True
    (cluster,) = _of_type(prod_json, "AWS::RDS::DBCluster").values()
    assert cluster["Properties"]["DeletionProtection"] is True
    assert cluster["DeletionPolicy"] == "Snapshot"
    assert cluster["Properties"]["BackupRetentionPeriod"] == 35
    assert len(_of_type(prod_json, "AWS::RDS::DBInstance")) == 2, "a writer and a reader"
    for table in _of_type(prod_json, "AWS::DynamoDB::Table").values():
        assert table["Properties"]["DeletionProtectionEnabled"] is True
        assert table["DeletionPolicy"] == "Retain"
    stateful = ("AWS::S3::Bucket", "AWS::Logs::LogGroup", "AWS::SecretsManager::Secret", "AWS::SQS::Queue")
    for resource_type in stateful:
        for resource in _of_type(prod_json, resource_type).values():
            assert resource["DeletionPolicy"] == "Retain", resource_type
    # dev stays disposable
    assert not cloud.stack_properties("dev").get("terminationProtection")
    (dev_cluster,) = _of_type(dev_json, "AWS::RDS::DBCluster").values()
    assert dev_cluster["Properties"]["DeletionProtection"] is False


def test_alarms_and_dashboard(dev_json: dict[str, Any], dev: Template) -> None:
    alarms = [a["Properties"] for a in _of_type(dev_json, "AWS::CloudWatch::Alarm").values()]
    for alarm in alarms:
        assert alarm["AlarmActions"], "every alarm notifies the alarm topic"
        heartbeat = alarm.get("MetricName") == "Invocations"
        assert alarm["ComparisonOperator"] == ("LessThanThreshold" if heartbeat else "GreaterThanThreshold")
    by_metric: dict[str, list[dict[str, Any]]] = {}
    for alarm in alarms:
        by_metric.setdefault(alarm.get("MetricName", "(math)"), []).append(alarm)
    dlqs = {dlq_name(f.name) for f in manifest.FUNCTIONS if f.asynchronous} | {
        dlq_name(q.name) for q in manifest.QUEUES
    }
    if manifest.STATE_MACHINES:
        dlqs.add(EXECUTIONS_DLQ)  # failed, timed-out and aborted executions
    assert len(by_metric["ApproximateNumberOfMessagesVisible"]) == len(dlqs) + 1, "and the undelivered alarms' DLQ"
    assert all(a["Threshold"] == 0 for a in by_metric["ApproximateNumberOfMessagesVisible"])
    # every function's errors; the authorizer's as errors less refusals (metric math)
    authorizers = manifest.MANIFEST.of_kind("authorizer")
    assert len(by_metric["Errors"]) == len(manifest.FUNCTIONS) - len(authorizers)
    assert len(by_metric["5XXError"]) == 1
    (latency,) = by_metric["Latency"]
    assert latency["ExtendedStatistic"] == "p99"
    dev.resource_count_is("AWS::CloudWatch::Dashboard", 1)
    dev.has_resource_properties("AWS::SNS::Topic", {"KmsMasterKeyId": Match.any_value()})
