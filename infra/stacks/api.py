"""The REST API: one resource and method per manifest route, proxied to its function; the Lambda
authorizer on every route with ``auth=True``; stage and per-method throttling, the manifest's usage
plans, access logs, WAF; and every response API Gateway gives by itself rewritten to API.md's
problem+json. No request validation: the functions' pydantic models validate bodies.

Usage plans (``infra.manifest.UsagePlan``): every ``auth=True`` method requires an API key
(``apiKeyRequired``), taken from the authorizer (API key source ``AUTHORIZER``: its
``usageIdentifierKey``, a partner's own key or the users' shared one). The partner plan throttles
each key at the stage's partner limits with a daily quota; the users plan its one key at the
stage's API limits. A plan's ``shared_key`` is imported here as an ``AWS::ApiGateway::ApiKey``
whose value is a dynamic reference to the secret (``{{resolve:secretsmanager:…}}``): no plaintext
in the template. A function that ``uses`` a plan (admin: partner keys) is granted, in an IAM
policy of its own (:meth:`Api.usage_plan_bound`), ``apigateway:GET`` on ``/usageplans`` and
``apigateway:POST`` on ``/apikeys`` and on that plan's ``/keys``, nothing else. That policy is
apart from the role's default policy because the function may not depend on the plan: the plan
depends on the stage, the stage on the methods, and the methods on the function.

The WAF web ACL, in order: AWS's IP reputation list (blocks); a body over API.md's 256 KB by
its declared ``Content-Length`` (blocks: 413 at the edge); per client IP rate rules, tighter on
``/v1/auth/`` and the manifest's webhook paths; AWS's common and known-bad-inputs rule groups.
It logs to ``aws-waf-logs-rampart-<stage>`` with the credentials' headers redacted."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import ArnFormat, Duration, Names, Stack, Tags
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from infra.manifest import MANIFEST, Manifest, UsagePlan
from infra.stacks.compute import Bound
from infra.stacks.config import StageConfig
from infra.stacks.gateway_responses import GATEWAY_PROBLEMS
from infra.stacks.nag import acknowledge
from infra.stacks.readback import USAGE_PLAN_TAG

MAX_BODY_BYTES = 256 * 1024  # API.md
# Content-Length values above MAX_BODY_BYTES (262144): WAF compares strings, not numbers.
OVER_256_KB = (
    r"^0*(26214[5-9]|2621[5-9][0-9]|262[2-9][0-9]{2}|26[3-9][0-9]{3}|2[7-9][0-9]{4}|[3-9][0-9]{5}|[1-9][0-9]{6,})$"
)
SENSITIVE_PREFIXES = ("/v1/auth/",)  # plus every webhook function's path
REDACTED_HEADERS = ("authorization", "x-api-key")  # never in WAF logs


def _visibility(name: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
    return wafv2.CfnWebACL.VisibilityConfigProperty(
        cloud_watch_metrics_enabled=True, metric_name=name, sampled_requests_enabled=True
    )


def _path_contains(text: str) -> wafv2.CfnWebACL.StatementProperty:
    """The URI path contains ``text`` (the default endpoint's paths start with the stage name)."""
    return wafv2.CfnWebACL.StatementProperty(
        byte_match_statement=wafv2.CfnWebACL.ByteMatchStatementProperty(
            field_to_match=wafv2.CfnWebACL.FieldToMatchProperty(uri_path={}),
            positional_constraint="CONTAINS",
            search_string=text,
            text_transformations=[wafv2.CfnWebACL.TextTransformationProperty(priority=0, type="LOWERCASE")],
        )
    )


def _rate_rule(
    name: str, priority: int, limit: int, scope: wafv2.CfnWebACL.StatementProperty | None = None
) -> wafv2.CfnWebACL.RuleProperty:
    """Block a client IP over ``limit`` requests in 5 minutes (those ``scope`` matches, or all)."""
    return wafv2.CfnWebACL.RuleProperty(
        name=name,
        priority=priority,
        action=wafv2.CfnWebACL.RuleActionProperty(block={}),
        statement=wafv2.CfnWebACL.StatementProperty(
            rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                limit=limit, aggregate_key_type="IP", evaluation_window_sec=300, scope_down_statement=scope
            )
        ),
        visibility_config=_visibility(name),
    )


def _body_size_rule(name: str, priority: int) -> wafv2.CfnWebACL.RuleProperty:
    """Block a declared body over 256 KB (API Gateway's 10 MB limit would let it reach a function)."""
    return wafv2.CfnWebACL.RuleProperty(
        name=name,
        priority=priority,
        action=wafv2.CfnWebACL.RuleActionProperty(
            block=wafv2.CfnWebACL.BlockActionProperty(
                custom_response=wafv2.CfnWebACL.CustomResponseProperty(response_code=413)
            )
        ),
        statement=wafv2.CfnWebACL.StatementProperty(
            regex_match_statement=wafv2.CfnWebACL.RegexMatchStatementProperty(
                field_to_match=wafv2.CfnWebACL.FieldToMatchProperty(
                    single_header={"Name": "content-length"},
                ),
                regex_string=OVER_256_KB,
                text_transformations=[wafv2.CfnWebACL.TextTransformationProperty(priority=0, type="NONE")],
            )
        ),
        visibility_config=_visibility(name),
    )


def sensitive_paths(manifest: Manifest) -> list[str]:
    """Where the tighter per-IP rate applies: the auth routes and every webhook function's path."""
    return [*SENSITIVE_PREFIXES, *sorted(fn.path for fn in manifest.of_kind("webhook") if fn.path)]


def _any_of(statements: list[wafv2.CfnWebACL.StatementProperty]) -> wafv2.CfnWebACL.StatementProperty:
    if len(statements) == 1:
        return statements[0]
    return wafv2.CfnWebACL.StatementProperty(or_statement=wafv2.CfnWebACL.OrStatementProperty(statements=statements))


def _waf_rule(
    name: str, priority: int, vendor_rule_group: str, count_only: tuple[str, ...] = ()
) -> wafv2.CfnWebACL.RuleProperty:
    return wafv2.CfnWebACL.RuleProperty(
        name=name,
        priority=priority,
        override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
        statement=wafv2.CfnWebACL.StatementProperty(
            managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                vendor_name="AWS",
                name=vendor_rule_group,
                rule_action_overrides=[
                    wafv2.CfnWebACL.RuleActionOverrideProperty(
                        name=rule, action_to_use=wafv2.CfnWebACL.RuleActionProperty(count={})
                    )
                    for rule in count_only
                ]
                or None,
            )
        ),
        visibility_config=_visibility(name),
    )


def usage_plan_name(stage: StageConfig, plan: UsagePlan) -> str:
    """The plan's physical name, ``rampart-<stage>-partner-plan``: what the functions that use it
    find it by (its env var carries this name)."""
    return f"rampart-{stage.name}-{plan.name.replace('_', '-')}"


def _construct_id(name: str) -> str:
    """``partner_plan`` → ``PartnerPlan`` (the partner plan keeps the construct id it always had)."""
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


# What a function using a plan may do, by action: the paths of API Gateway's management API
# (``<plan>`` is the plan's id).
USAGE_PLAN_PATHS: dict[str, tuple[str, ...]] = {
    "apigateway:GET": ("/usageplans",),  # GetUsagePlans: find the plan by its name
    "apigateway:POST": ("/apikeys", "/usageplans/<plan>/keys"),  # CreateApiKey, CreateUsagePlanKey
}


def gateway_arn(scope: Construct, path: str) -> str:
    """``arn:<partition>:apigateway:<region>::<path>``: a resource of API Gateway's management API."""
    return Stack.of(scope).format_arn(
        service="apigateway", account="", resource=path, arn_format=ArnFormat.NO_RESOURCE_NAME
    )


def method_throttles(manifest: Manifest, stage: StageConfig) -> dict[str, apigw.MethodDeploymentOptions]:
    """Per-method throttles under the stage's: the public routes (argon2 logins, registrations)
    and the money-moving POSTs each get their own rate, so that neither starves the rest."""
    options = {}
    for route, _fn in manifest.routes():
        if not route.auth:
            rate, burst = stage.public_method_rate, stage.public_method_burst
        elif route.idempotent:
            rate, burst = stage.money_method_rate, stage.money_method_burst
        else:
            continue
        options[f"{route.path}/{route.method}"] = apigw.MethodDeploymentOptions(
            throttling_rate_limit=rate, throttling_burst_limit=burst
        )
    return options


class Api(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: StageConfig,
        functions: dict[str, lambda_.Function],
        manifest: Manifest = MANIFEST,
        logs_key: kms.IKey | None = None,
        secrets: Mapping[str, secretsmanager.ISecret] | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.stage = stage
        routes = manifest.routes()
        authorizers = manifest.of_kind("authorizer")

        access_logs = logs.LogGroup(
            self,
            "AccessLogs",
            retention=stage.log_retention,
            removal_policy=stage.removal_policy,
            encryption_key=logs_key,
        )
        self.rest_api = apigw.RestApi(
            self,
            "RestApi",
            rest_api_name=f"rampart-{stage.name}",
            description=f"Rampart {stage.name}: the HTTP API of API.md",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            api_key_source_type=apigw.ApiKeySourceType.AUTHORIZER,
            cloud_watch_role=True,
            fail_on_warnings=True,
            deploy_options=apigw.StageOptions(
                stage_name=stage.name,
                throttling_rate_limit=stage.api_rate_limit,
                throttling_burst_limit=stage.api_burst_limit,
                method_options=method_throttles(manifest, stage),
                tracing_enabled=True,
                metrics_enabled=True,
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,
                access_log_destination=apigw.LogGroupLogDestination(access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=False,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=True,
                ),
            ),
        )
        cloud_watch_role = self.rest_api.node.try_find_child("CloudWatchRole")
        assert cloud_watch_role is not None
        acknowledge(
            cloud_watch_role,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]",
            "API Gateway's account-wide logging role; this AWS managed policy is the documented minimum for it.",
        )
        acknowledge(
            self.rest_api,
            "AwsSolutions-APIG2",
            "By design no request validation at the gateway: the functions' pydantic models validate and answer "
            "API.md's 400/422 problems (docs/decisions.md).",
        )

        # Lambda authorizer: no identity source and no cache, because a caller sends either a
        # bearer token or a partner API key, and a cached policy must never outlive a revocation.
        self.authorizer: apigw.RequestAuthorizer | None = None
        if authorizers:
            self.authorizer = apigw.RequestAuthorizer(
                self,
                "Authorizer",
                handler=functions[authorizers[0].name],
                identity_sources=[],
                results_cache_ttl=Duration.seconds(0),
                authorizer_name=f"rampart-{stage.name}",
            )

        # Keys are required exactly where the authorizer runs (it supplies them); without a usage
        # plan no key could pass, so none is required.
        keys_required = bool(manifest.usage_plans)
        self.methods: dict[tuple[str, str], apigw.Method] = {}
        for route, fn in routes:
            if route.auth and self.authorizer is None:
                raise ValueError(f"{route.method} {route.path} needs the authorizer: the manifest has none")
            resource = self.rest_api.root.resource_for_path(route.path)
            method = resource.add_method(
                route.method,
                apigw.LambdaIntegration(functions[fn.name], proxy=True, allow_test_invoke=False),
                authorizer=self.authorizer if route.auth else None,
                authorization_type=apigw.AuthorizationType.CUSTOM if route.auth else apigw.AuthorizationType.NONE,
                api_key_required=route.auth and keys_required,
                operation_name=f"{fn.name}.{route.method.lower()}",
            )
            self.methods[(route.method, route.path)] = method
            acknowledge(
                method,
                "AwsSolutions-COG4",
                "Rampart authenticates with its own JWTs and partner API keys in a Lambda authorizer, not Cognito.",
            )
            if not route.auth:
                acknowledge(
                    method,
                    "AwsSolutions-APIG4",
                    f"{route.method} {route.path} is public by API.md (health, register, login, refresh, logout).",
                )

        for problem in GATEWAY_PROBLEMS:
            self.rest_api.add_gateway_response(
                problem.response_type,
                type=getattr(apigw.ResponseType, problem.response_type),
                status_code=str(problem.status),
                response_headers=problem.headers(),
                templates={"application/json": problem.body()},
            )

        self.usage_plans: dict[str, apigw.UsagePlan] = {}
        self.api_keys: dict[str, apigw.ApiKey] = {}
        for plan in manifest.usage_plans:
            self.usage_plans[plan.name] = self._usage_plan(plan, stage, secrets or {})

        self.web_acl = wafv2.CfnWebACL(
            self,
            "WebAcl",
            scope="REGIONAL",
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            visibility_config=wafv2.CfnWebACL.VisibilityConfigProperty(
                cloud_watch_metrics_enabled=True, metric_name=f"rampart-{stage.name}", sampled_requests_enabled=True
            ),
            rules=[
                _waf_rule("ip-reputation", 0, "AWSManagedRulesAmazonIpReputationList"),
                _body_size_rule("body-over-256kb", 1),
                _rate_rule(
                    "ip-rate-sensitive",
                    2,
                    stage.waf_sensitive_ip_limit,
                    _any_of([_path_contains(p) for p in sensitive_paths(manifest)]),
                ),
                _rate_rule("ip-rate", 3, stage.waf_ip_limit),
                # Bodies up to 256 KB are API.md's contract (the rule above blocks beyond), and API
                # clients need not send a User-Agent: those two rules of the common set only count.
                _waf_rule("common", 4, "AWSManagedRulesCommonRuleSet", ("SizeRestrictions_BODY", "NoUserAgent_HEADER")),
                _waf_rule("known-bad-inputs", 5, "AWSManagedRulesKnownBadInputsRuleSet"),
            ],
        )
        self.waf_logs = logs.LogGroup(
            self,
            "WafLogs",
            log_group_name=f"aws-waf-logs-rampart-{stage.name}",  # WAF requires the prefix
            retention=stage.log_retention,
            removal_policy=stage.removal_policy,
            encryption_key=logs_key,
        )
        # WAF wants the log group's ARN without the ":*" that GetAtt Arn ends with.
        waf_logs_arn = Stack.of(self).format_arn(
            service="logs",
            resource="log-group",
            resource_name=self.waf_logs.log_group_name,
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        self.waf_logging = wafv2.CfnLoggingConfiguration(
            self,
            "WafLogging",
            resource_arn=self.web_acl.attr_arn,
            log_destination_configs=[waf_logs_arn],
            redacted_fields=[
                wafv2.CfnLoggingConfiguration.FieldToMatchProperty(single_header={"Name": name})
                for name in REDACTED_HEADERS
            ],
        )
        wafv2.CfnWebACLAssociation(
            self,
            "WebAclAssociation",
            resource_arn=self.rest_api.deployment_stage.stage_arn,
            web_acl_arn=self.web_acl.attr_arn,
        )

    def _usage_plan(
        self, plan: UsagePlan, stage: StageConfig, secrets: Mapping[str, secretsmanager.ISecret]
    ) -> apigw.UsagePlan:
        if plan.limits == "partner":
            throttle = apigw.ThrottleSettings(
                rate_limit=stage.partner_rate_limit, burst_limit=stage.partner_burst_limit
            )
            quota: apigw.QuotaSettings | None = apigw.QuotaSettings(
                limit=stage.partner_daily_quota, period=apigw.Period.DAY
            )
        else:
            throttle = apigw.ThrottleSettings(rate_limit=stage.api_rate_limit, burst_limit=stage.api_burst_limit)
            quota = None
        built = self.rest_api.add_usage_plan(
            _construct_id(plan.name),
            name=usage_plan_name(stage, plan),
            description=plan.description,
            throttle=throttle,
            quota=quota,
            api_stages=[apigw.UsagePlanPerApiStage(api=self.rest_api, stage=self.rest_api.deployment_stage)],
        )
        Tags.of(built).add(USAGE_PLAN_TAG, plan.name)
        if plan.shared_key is not None:
            secret = secrets.get(plan.shared_key)
            if secret is None:
                raise ValueError(f"usage plan {plan.name}: its key secret {plan.shared_key} was not built")
            key = apigw.ApiKey(
                self,
                f"{_construct_id(plan.name)}Key",
                api_key_name=f"{usage_plan_name(stage, plan)}-key",
                description=f"Rampart {stage.name}: the one key of {plan.name}, from the {plan.shared_key} secret",
                enabled=True,
                # A dynamic reference, resolved by CloudFormation at deploy: no plaintext here.
                value=secret.secret_value.unsafe_unwrap(),
            )
            built.add_api_key(key)
            self.api_keys[plan.name] = key
        return built

    def usage_plan_bound(self, plan: UsagePlan) -> Bound:
        """How a function uses ``plan``: its env var carries the plan's name; its grant is an IAM
        policy of its own (see the module docstring) on the paths of :data:`USAGE_PLAN_PATHS`."""
        built = self.usage_plans[plan.name]

        def grant(grantee: iam.IGrantable, actions: Sequence[str]) -> None:
            unknown = sorted(set(actions) - USAGE_PLAN_PATHS.keys())
            if unknown:
                raise ValueError(f"usage plan {plan.name}: no grant for {', '.join(unknown)}")
            if not actions:
                return
            if not isinstance(grantee, iam.Role):
                raise TypeError(f"usage plan {plan.name}: grants go to a function's role, not {grantee!r}")
            statements = [
                iam.PolicyStatement(
                    actions=[action],
                    resources=[
                        gateway_arn(self, path.replace("<plan>", built.usage_plan_id))
                        for path in USAGE_PLAN_PATHS[action]
                    ],
                )
                for action in sorted(set(actions))
            ]
            policy = iam.Policy(
                self, f"{_construct_id(plan.name)}Grants-{Names.unique_id(grantee)}", statements=statements
            )
            policy.attach_to_role(grantee)

        return Bound(usage_plan_name(self.stage, plan), grant)

    @property
    def url(self) -> str:
        return self.rest_api.url
