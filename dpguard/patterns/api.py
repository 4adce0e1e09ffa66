"""API Gateway REST APIs that meet the policy by construction."""
from __future__ import annotations

from collections.abc import Sequence

import aws_cdk as cdk
import jsii
from aws_cdk import aws_apigateway as apigw, aws_certificatemanager as acm, aws_cognito as cognito
from aws_cdk import aws_iam as iam, aws_kms as kms, aws_wafv2 as wafv2
from constructs import Construct

from ..cdk import acknowledge
from .guards import check_at_synth
from .logs import EncryptedLogGroup
from .names import physical_name

# API Gateway writes every log through one role per account and region (AWS::ApiGateway::Account).
# The role made here may write only to log groups named like these, which SecureRestApi creates
# itself, encrypted and with retention (API Gateway would create the execution log group itself,
# unencrypted and kept forever).
EXECUTION_LOGS = "API-Gateway-Execution-Logs_"
ACCESS_LOGS = "API-Gateway-Access-Logs_"
LOGGING_ROLE_ID = "ApiGatewayLogging"
LOG_LEVELS = (apigw.MethodLoggingLevel.ERROR, apigw.MethodLoggingLevel.INFO)

# AWS managed rule groups of the default web ACL: common exploits (OWASP top 10), inputs known
# to be malicious, and addresses Amazon's threat intelligence lists.
MANAGED_RULE_GROUPS = ("AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet",
                       "AWSManagedRulesAmazonIpReputationList")


class SecureRestApi(apigw.RestApi):
    """A REST API compliant by default:

    * every method requires authorization (clause 1): Cognito user pools when `user_pools` are
      given (with `authorization_scopes` if any), otherwise IAM (SigV4) authorization. A method
      added with `AuthorizationType.NONE` (CORS preflight OPTIONS aside) fails the synth;
    * every method checks its request models and required parameters (`request_validator`)
      before the integration runs;
    * a stage `stage_name` with access logs in JSON to its own log group and execution logs at
      `logging_level` (ERROR or INFO, never OFF; no full request and response bodies) to a log
      group made here first, both encrypted with `log_key` and kept `log_retention_days`
      (clauses 7, 9), X-Ray tracing, metrics and throttling;
    * a regional AWS WAF web ACL (AWS managed rules for common exploits, known bad inputs and
      Amazon's IP reputation list, and a per-address rate limit of `rate_limit` requests per
      five minutes) associated with the stage, or the web ACL `web_acl_arn` (clause 1);
    * with `domain_name` and `certificate`, a custom domain that accepts TLS 1.2 and later only,
      and the default execute-api endpoint turned off (clause 3);
    * with `cloud_watch_role` (default), the account's API Gateway logging role (once per stack,
      `ApiGatewayLogging`, RETAIN), with a customer-managed policy that writes only to log groups
      named `API-Gateway-*`; pass False where the platform already sets it for the account and
      region.

    Add resources and methods as with any `apigw.RestApi` (`api.root.add_resource(...)`)."""

    def __init__(self, scope: Construct, construct_id: str, *, log_key: kms.IKey, log_retention_days: int,
                 user_pools: Sequence[cognito.IUserPool] = (), authorization_scopes: Sequence[str] | None = None,
                 stage_name: str = "prod", logging_level: apigw.MethodLoggingLevel = apigw.MethodLoggingLevel.ERROR,
                 throttling_rate_limit: float = 100, throttling_burst_limit: int = 200,
                 domain_name: str | None = None, certificate: acm.ICertificate | None = None,
                 web_acl_arn: str | None = None, rate_limit: int = 1000, cloud_watch_role: bool = True,
                 endpoint_type: apigw.EndpointType = apigw.EndpointType.REGIONAL,
                 rest_api_name: str | None = None, description: str | None = None) -> None:
        path = f"{scope.node.path}/{construct_id}"
        if logging_level not in LOG_LEVELS:
            raise ValueError(f"{path}: execution logs must stay on, at ERROR or INFO (clause 9); "
                             f"got {logging_level}")
        if (domain_name is None) != (certificate is None):
            raise ValueError(f"{path}: a custom domain needs both domain_name and certificate")
        if user_pools:
            auth = dict(authorization_type=apigw.AuthorizationType.COGNITO,
                        authorizer=apigw.CognitoUserPoolsAuthorizer(scope, f"{construct_id}Authorizer",
                                                                    cognito_user_pools=list(user_pools)),
                        authorization_scopes=list(authorization_scopes) if authorization_scopes else None)
        else:
            auth = dict(authorization_type=apigw.AuthorizationType.IAM)
        method_options = apigw.MethodOptions(**auth)
        self.access_logs = EncryptedLogGroup(scope, f"{construct_id}AccessLogs", encryption_key=log_key,
                                             retention_days=log_retention_days)
        super().__init__(
            scope, construct_id, rest_api_name=rest_api_name, description=description,
            endpoint_types=[endpoint_type], cloud_watch_role=False, default_method_options=method_options,
            disable_execute_api_endpoint=domain_name is not None,
            deploy_options=apigw.StageOptions(
                stage_name=stage_name, tracing_enabled=True, metrics_enabled=True,
                logging_level=logging_level, data_trace_enabled=False,
                throttling_rate_limit=throttling_rate_limit, throttling_burst_limit=throttling_burst_limit,
                access_log_destination=apigw.LogGroupLogDestination(self.access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=True, http_method=True, ip=True, protocol=True, request_time=True,
                    resource_path=True, response_length=True, status=True, user=True)))
        stage = self.deployment_stage
        # Named after the API's id (known at deploy time), so the logging role can name it and a
        # retained group never collides with the next deployment's.
        self.access_logs.node.default_child.log_group_name = f"{ACCESS_LOGS}{self.rest_api_id}/{stage_name}"
        self.request_validator = self.add_request_validator(
            "RequestValidator", validate_request_body=True, validate_request_parameters=True)
        cdk.Aspects.of(self).add(_ValidateRequests(self.request_validator))
        self.execution_logs = EncryptedLogGroup(
            self, "ExecutionLogs", encryption_key=log_key, retention_days=log_retention_days,
            log_group_name=f"{EXECUTION_LOGS}{self.rest_api_id}/{stage_name}")
        stage.node.add_dependency(self.execution_logs)  # ours exists before API Gateway would make one
        if cloud_watch_role:
            stage.node.add_dependency(self._account_logging_role())
        self.web_acl_arn = web_acl_arn or self._web_acl(rate_limit).attr_arn
        wafv2.CfnWebACLAssociation(self, "WebAclAssociation", resource_arn=stage.stage_arn,
                                   web_acl_arn=self.web_acl_arn)
        if domain_name is not None:
            self.add_domain_name("Domain", domain_name=domain_name, certificate=certificate,
                                 security_policy=apigw.SecurityPolicy.TLS_1_2, endpoint_type=endpoint_type)
        if not user_pools:
            acknowledge(self, "AwsSolutions::AwsSolutions-COG4",
                        "Methods require IAM authorization: every caller signs with AWS credentials (e.g. "
                        "a Cognito identity pool's authenticated role), which authenticates users as "
                        "clause 1 asks; a user pool authorizer is one way, not the only one")
        check_at_synth(self, self._unauthorized_methods)

    def _unauthorized_methods(self) -> list[str]:
        problems = []
        for method in self.methods:
            cfn = method.node.default_child
            kind = cfn.authorization_type
            if method.http_method.upper() != "OPTIONS" and (kind is None or str(kind).upper() == "NONE"):
                problems.append(f"{method.http_method} {method.resource.path} needs no authorization: "
                                f"every data request must be authenticated (clause 1); drop "
                                f"authorization_type=NONE to keep the API's default")
        return problems

    def _account_logging_role(self) -> apigw.CfnAccount:
        """The account's API Gateway logging role, once per stack (`ApiGatewayLogging`)."""
        stack = cdk.Stack.of(self)
        holder = stack.node.try_find_child(LOGGING_ROLE_ID)
        if holder is None:
            holder = Construct(stack, LOGGING_ROLE_ID)
            role = iam.Role(holder, "Role", assumed_by=iam.ServicePrincipal(
                "apigateway.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": stack.account}}),
                description="API Gateway writes logs of this account to its API-Gateway-* log groups")
            groups = [f"arn:{stack.partition}:logs:{stack.region}:{stack.account}:log-group:{prefix}*"
                      for prefix in (EXECUTION_LOGS, ACCESS_LOGS)]
            resources = groups + [f"{g}:log-stream:*" for g in groups]
            policy = iam.ManagedPolicy(holder, "Delivery", roles=[role], statements=[iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                resources=resources)])
            for resource in resources:
                acknowledge(policy, f"AwsSolutions::AwsSolutions-IAM5[Resource::{_nag_text(stack.resolve(resource))}]",
                            "The account's one API Gateway logging role writes the logs of every API of the "
                            "account and region: only log groups named API-Gateway-*, which SecureRestApi "
                            "creates encrypted and with retention")
            account = apigw.CfnAccount(holder, "Account", cloud_watch_role_arn=role.role_arn)
            for resource in (role, policy, account):
                resource.apply_removal_policy(cdk.RemovalPolicy.RETAIN)  # other APIs of the account log through it
        return holder.node.find_child("Account")

    def _web_acl(self, rate_limit: int) -> wafv2.CfnWebACL:
        name = physical_name(self.node.path, 100)

        def visibility(metric: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
            return wafv2.CfnWebACL.VisibilityConfigProperty(
                cloud_watch_metrics_enabled=True, metric_name=f"{name}-{metric}"[-128:], sampled_requests_enabled=True)

        rules = [wafv2.CfnWebACL.RuleProperty(
            name=group, priority=i, override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
            statement=wafv2.CfnWebACL.StatementProperty(managed_rule_group_statement=(
                wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(vendor_name="AWS", name=group))),
            visibility_config=visibility(group)) for i, group in enumerate(MANAGED_RULE_GROUPS)]
        rules.append(wafv2.CfnWebACL.RuleProperty(
            name="RateLimitPerAddress", priority=len(rules), action=wafv2.CfnWebACL.RuleActionProperty(block={}),
            statement=wafv2.CfnWebACL.StatementProperty(rate_based_statement=(
                wafv2.CfnWebACL.RateBasedStatementProperty(aggregate_key_type="IP", limit=rate_limit))),
            visibility_config=visibility("RateLimitPerAddress")))
        return wafv2.CfnWebACL(self, "WebAcl", scope="REGIONAL", rules=rules,
                               default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
                               visibility_config=visibility("WebAcl"))


@jsii.implements(cdk.IAspect)
class _ValidateRequests:
    """Every method without a validator of its own gets the API's: its request models and
    required parameters are then checked before the integration runs."""

    def __init__(self, validator: apigw.RequestValidator) -> None:
        self._validator = validator

    def visit(self, node) -> None:
        if isinstance(node, apigw.CfnMethod) and node.request_validator_id is None and node.http_method != "OPTIONS":
            node.request_validator_id = self._validator.request_validator_id


def _nag_text(value) -> str:
    """How cdk-nag prints a resolved value in its finding ids: Refs as <Name>, Fn::Join joined."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Ref" in value:
        return f"<{value['Ref']}>"
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(_nag_text(p) for p in parts)
    raise ValueError(f"cannot name {value!r} as cdk-nag does")
