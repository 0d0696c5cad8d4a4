"""The REST API: one resource and method per manifest route, proxied to its function; the Lambda
authorizer on every route with ``auth=True``; stage throttling, a partner usage plan, access
logs, WAF; and every response API Gateway gives by itself rewritten to API.md's problem+json.
No request validation: the functions' pydantic models validate bodies."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from infra.manifest import MANIFEST, Manifest
from infra.stacks.config import StageConfig
from infra.stacks.gateway_responses import GATEWAY_PROBLEMS
from infra.stacks.nag import acknowledge


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
        visibility_config=wafv2.CfnWebACL.VisibilityConfigProperty(
            cloud_watch_metrics_enabled=True, metric_name=name, sampled_requests_enabled=True
        ),
    )


class Api(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: StageConfig,
        functions: dict[str, lambda_.Function],
        manifest: Manifest = MANIFEST,
    ) -> None:
        super().__init__(scope, construct_id)
        routes = manifest.routes()
        authorizers = manifest.of_kind("authorizer")

        access_logs = logs.LogGroup(
            self, "AccessLogs", retention=stage.log_retention, removal_policy=stage.removal_policy
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

        self.usage_plan = self.rest_api.add_usage_plan(
            "PartnerPlan",
            name=f"rampart-{stage.name}-partners",
            description="Partner API keys: per-key throttle and daily quota (keys come from the authorizer)",
            throttle=apigw.ThrottleSettings(rate_limit=stage.partner_rate_limit, burst_limit=stage.partner_burst_limit),
            quota=apigw.QuotaSettings(limit=stage.partner_daily_quota, period=apigw.Period.DAY),
            api_stages=[apigw.UsagePlanPerApiStage(api=self.rest_api, stage=self.rest_api.deployment_stage)],
        )

        self.web_acl = wafv2.CfnWebACL(
            self,
            "WebAcl",
            scope="REGIONAL",
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            visibility_config=wafv2.CfnWebACL.VisibilityConfigProperty(
                cloud_watch_metrics_enabled=True, metric_name=f"rampart-{stage.name}", sampled_requests_enabled=True
            ),
            rules=[
                # Bodies up to 256 KB are API.md's contract (the gateway answers 413 above it), and
                # API clients need not send a User-Agent: those two rules only count.
                _waf_rule("common", 0, "AWSManagedRulesCommonRuleSet", ("SizeRestrictions_BODY", "NoUserAgent_HEADER")),
                _waf_rule("known-bad-inputs", 1, "AWSManagedRulesKnownBadInputsRuleSet"),
            ],
        )
        wafv2.CfnWebACLAssociation(
            self,
            "WebAclAssociation",
            resource_arn=self.rest_api.deployment_stage.stage_arn,
            web_acl_arn=self.web_acl.attr_arn,
        )

    @property
    def url(self) -> str:
        return self.rest_api.url
