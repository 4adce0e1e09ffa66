"""The patterns for queues, topics, VPCs, REST APIs and state machines, and SecureFunction: each in
a stack of its own passes dpguard and cdk-nag's AwsSolutions pack (dpguard.testing.assert_compliant
under enforce()), sets what the policy asks for, and keeps it when a team tries to undo it.

The stacks share one app and one synth (module fixture): each synth costs seconds."""
from __future__ import annotations

import json

import pytest

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigw, aws_certificatemanager as acm, aws_cognito as cognito
from aws_cdk import aws_iam as iam, aws_lambda as lambda_, aws_sns_subscriptions as subs
from aws_cdk import aws_stepfunctions as sfn, aws_stepfunctions_tasks as tasks
from aws_cdk.assertions import Match, Template

import dpguard
from dpguard.patterns import (DataKey, SecureFunction, SecureQueue, SecureRestApi, SecureStateMachine,
                              SecureTopic, SecureVpc)
from dpguard.testing import assert_compliant, policy_findings

PATHS = {"aws:cdk:enable-path-metadata": True}
ACCOUNT = "111122223333"
POOL_ARN = f"arn:aws:cognito-idp:eu-west-1:{ACCOUNT}:userpool/eu-west-1_example"
CERT_ARN = f"arn:aws:acm:eu-west-1:{ACCOUNT}:certificate/0f1e2d3c-example"


def _key(stack: cdk.Stack) -> DataKey:
    key = DataKey(stack, "Key", alias=f"alias/{stack.stack_name.lower()}", description="the test stack's data")
    key.allow_cloudwatch_logs()
    return key


def _alerts(stack: cdk.Stack, key: DataKey) -> SecureTopic:
    topic = SecureTopic(stack, "Alerts", master_key=key)
    topic.allow_cloudwatch_alarms()
    return topic


def _code() -> lambda_.Code:
    return lambda_.Code.from_inline("def handler(event, context):\n    return event\n")


def _queue(stack):
    key = _key(stack)
    SecureQueue(stack, "Jobs", encryption_key=key, classification="confidential", owner="orders-team",
                alerts_topic=_alerts(stack, key))


def _topic(stack):
    topic = SecureTopic(stack, "Events", master_key=_key(stack), display_name="Order events")
    topic.add_subscription(subs.UrlSubscription("https://hooks.example.com/orders"))


def _vpc(stack):
    SecureVpc(stack, "Vpc", log_key=_key(stack), log_retention_days=365, cidr="10.20.0.0/16")


def _api(stack):
    api = SecureRestApi(stack, "Api", log_key=_key(stack), log_retention_days=365)
    api.root.add_resource("orders").add_method("GET", apigw.MockIntegration())


def _cognito_api(stack):
    pool = cognito.UserPool.from_user_pool_arn(stack, "Pool", POOL_ARN)
    certificate = acm.Certificate.from_certificate_arn(stack, "Certificate", CERT_ARN)
    api = SecureRestApi(stack, "Api", log_key=_key(stack), log_retention_days=365, user_pools=[pool],
                        domain_name="api.example.com", certificate=certificate, cloud_watch_role=False)
    api.root.add_resource("orders").add_method("POST", apigw.MockIntegration())
    api.root.add_cors_preflight(allow_origins=["https://app.example.com"])


def _state_machine(stack):
    key = _key(stack)
    topic = _alerts(stack, key)
    chain = sfn.Pass(stack, "Start").next(
        tasks.SnsPublish(stack, "Notify", topic=topic, message=sfn.TaskInput.from_text("order shipped")))
    SecureStateMachine(stack, "Workflow", definition_body=sfn.DefinitionBody.from_chainable(chain),
                       encryption_key=key, log_key=key, log_retention_days=365)


def _function(stack):
    key = _key(stack)
    SecureFunction(stack, "Worker", code=_code(), handler="index.handler", description="Order worker",
                   environment={"TABLE_NAME": "orders"}, environment_key=key, log_key=key,
                   log_retention_days=365, owner="orders-team", alerts_topic=_alerts(stack, key),
                   tracing=lambda_.Tracing.ACTIVE)


BUILDERS = {"Queue": _queue, "Topic": _topic, "Vpc": _vpc, "Api": _api, "CognitoApi": _cognito_api,
            "StateMachine": _state_machine, "Function": _function}


@pytest.fixture(scope="module")
def stacks(tmp_path_factory) -> dict[str, cdk.Stack]:
    app = cdk.App(outdir=str(tmp_path_factory.mktemp("patterns.out")), context=PATHS)
    built = {}
    for name, build in BUILDERS.items():
        built[name] = cdk.Stack(app, name)
        build(built[name])
    dpguard.enforce(app)  # dpguard and cdk-nag's AwsSolutions, as app teams run it
    return built


@pytest.fixture(scope="module")
def templates(stacks) -> dict[str, Template]:
    for stack in stacks.values():
        assert_compliant(stack)  # synthesizes the app (once) and judges each stack
    return {name: Template.from_stack(stack) for name, stack in stacks.items()}


@pytest.mark.parametrize("name", BUILDERS)
def test_each_pattern_alone_is_compliant(stacks, templates, name):
    assert_compliant(stacks[name])
    assert templates[name].to_json()["Resources"]


def resources(template: Template, type_: str) -> list[dict]:
    return [r.get("Properties", {}) for r in template.find_resources(type_).values()]


def key_arn() -> dict:
    return {"Fn::GetAtt": [Match.string_like_regexp("^Key"), "Arn"]}


def tags(properties: dict) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in properties.get("Tags", [])}


# ---------------------------------------------------------------- SecureQueue

def test_queue_and_its_dead_letters_are_encrypted_tls_only_and_classified(templates):
    t = templates["Queue"]
    queues = resources(t, "AWS::SQS::Queue")
    assert len(queues) == 2
    for queue in queues:
        assert "Fn::GetAtt" in queue["KmsMasterKeyId"]
        assert tags(queue) == {"data-classification": "confidential", "data-owner": "orders-team"}
    (main,) = [q for q in queues if "RedrivePolicy" in q]
    assert main["RedrivePolicy"]["maxReceiveCount"] == 3
    policies = resources(t, "AWS::SQS::QueuePolicy")
    assert len(policies) == 2
    for policy in policies:
        (deny,) = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
        assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        assert deny["Action"] == "sqs:*"


def test_queue_alarm_notifies_the_alerts_topic_when_a_message_dead_letters(templates):
    (alarm,) = resources(templates["Queue"], "AWS::CloudWatch::Alarm")
    assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert alarm["Threshold"] == 1
    (action,) = alarm["AlarmActions"]
    assert action["Ref"].startswith("Alerts")


@pytest.mark.parametrize("options, message", [
    ({"retention_days": 30}, "1 to 14 days"),
    ({"max_receive_count": 0}, "max_receive_count"),
    ({"encryption_key": None}, "customer-managed KMS key"),
    ({"classification": "secret"}, "classification"),
])
def test_queue_refuses_settings_that_break_the_policy(options, message):
    stack = cdk.Stack(cdk.App(), "Bad")
    settings = dict(encryption_key=_key(stack), classification="internal", owner="team") | options
    with pytest.raises(ValueError, match=message):
        SecureQueue(stack, "Jobs", **settings)


def test_an_escape_hatch_that_removes_the_queue_key_still_fails_the_policy():
    app = cdk.App(context=PATHS)
    stack = cdk.Stack(app, "Escape")
    key = _key(stack)
    queue = SecureQueue(stack, "Jobs", encryption_key=key, classification="restricted", owner="team",
                        alerts_topic=_alerts(stack, key))
    queue.node.default_child.add_property_deletion_override("KmsMasterKeyId")
    found = {(f.rule_id, f.construct_path) for f in policy_findings(stack)}
    assert ("DP-SqsEncrypted", "Escape/Jobs/Resource") in found
    assert ("DP-ConfidentialDataCmk", "Escape/Jobs/Resource") in found
    with pytest.raises(AssertionError, match="DP-SqsEncrypted"):
        assert_compliant(stack)


# ---------------------------------------------------------------- SecureTopic

def test_topic_is_encrypted_and_refuses_publishing_without_tls(templates):
    t = templates["Topic"]
    t.has_resource_properties("AWS::SNS::Topic", {"KmsMasterKeyId": key_arn()})
    (policy,) = resources(t, "AWS::SNS::TopicPolicy")
    (deny,) = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
    assert deny["Action"] == "sns:Publish"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    t.has_resource_properties("AWS::SNS::Subscription", {"Protocol": "https"})


def test_topic_refuses_a_plain_http_subscription():
    stack = cdk.Stack(cdk.App(), "Bad")
    topic = SecureTopic(stack, "Events", master_key=_key(stack))
    with pytest.raises(ValueError, match="plain HTTP"):
        topic.add_subscription(subs.UrlSubscription("http://hooks.example.com/orders"))


def test_alarms_may_publish_to_the_topic_and_use_its_key(templates):
    t = templates["Queue"]
    (policy,) = resources(t, "AWS::SNS::TopicPolicy")
    (alarms,) = [s for s in policy["PolicyDocument"]["Statement"] if s.get("Sid") == "CloudWatchAlarmsOfThisAccount"]
    assert alarms["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert "aws:SourceAccount" in alarms["Condition"]["StringEquals"]
    (key,) = resources(t, "AWS::KMS::Key")
    assert any(s.get("Sid") == "CloudWatchAlarmsPublishToEncryptedTopics" for s in key["KeyPolicy"]["Statement"])


# ---------------------------------------------------------------- SecureVpc

def test_vpc_has_isolated_subnets_over_two_azs_and_no_way_out(templates):
    t = templates["Vpc"]
    t.resource_count_is("AWS::EC2::Subnet", 4)
    assert all(s["MapPublicIpOnLaunch"] is False for s in resources(t, "AWS::EC2::Subnet"))
    azs = {json.dumps(s["AvailabilityZone"]) for s in resources(t, "AWS::EC2::Subnet")}
    assert len(azs) == 2
    for kind in ("AWS::EC2::InternetGateway", "AWS::EC2::NatGateway", "AWS::EC2::EIP"):
        t.resource_count_is(kind, 0)
    t.has_resource_properties("AWS::EC2::VPC", {"CidrBlock": "10.20.0.0/16"})
    t.resource_count_is("Custom::VpcRestrictDefaultSG", 1)


def test_vpc_flow_logs_go_to_an_encrypted_log_group_with_retention(templates):
    t = templates["Vpc"]
    t.has_resource_properties("AWS::EC2::FlowLog", {"TrafficType": "ALL", "LogDestinationType": "cloud-watch-logs"})
    groups = resources(t, "AWS::Logs::LogGroup")
    assert len(groups) == 2 and all(g["KmsKeyId"]["Fn::GetAtt"][0].startswith("Key") for g in groups)
    assert {g["RetentionInDays"] for g in groups} == {365}
    # the default security group's provider function logs to one of them
    (provider,) = [f for f in resources(t, "AWS::Lambda::Function")]
    assert "LogGroup" in provider["LoggingConfig"]


def test_vpc_endpoints_admit_this_accounts_principals_only(templates):
    endpoints = resources(templates["Vpc"], "AWS::EC2::VPCEndpoint")
    assert len(endpoints) == 6  # S3 gateway + KMS, Secrets Manager, Logs, Monitoring, STS
    for endpoint in endpoints:
        (statement,) = endpoint["PolicyDocument"]["Statement"]
        assert statement["Condition"] == {"StringEquals": {"aws:PrincipalAccount": {"Ref": "AWS::AccountId"}}}
    (group,) = resources(templates["Vpc"], "AWS::EC2::SecurityGroup")
    assert [(r["CidrIp"], r["FromPort"]) for r in group["SecurityGroupIngress"]] == [("10.20.0.0/16", 443)]


def test_vpc_needs_two_azs():
    stack = cdk.Stack(cdk.App(), "Bad")
    with pytest.raises(ValueError, match="at least two AZs"):
        SecureVpc(stack, "Vpc", log_key=_key(stack), log_retention_days=30, max_azs=1)


# ---------------------------------------------------------------- SecureRestApi

def _stage(t: Template) -> dict:
    (stage,) = resources(t, "AWS::ApiGateway::Stage")
    return stage


def test_api_stage_logs_access_and_execution_to_encrypted_groups_and_traces(templates):
    t = templates["Api"]
    stage = _stage(t)
    assert stage["TracingEnabled"] is True
    assert "DestinationArn" in stage["AccessLogSetting"] and "$context.requestId" in stage["AccessLogSetting"]["Format"]
    (all_methods,) = [m for m in stage["MethodSettings"] if m["HttpMethod"] == "*"]
    assert all_methods["LoggingLevel"] == "ERROR" and all_methods["DataTraceEnabled"] is False
    groups = {json.dumps(g["LogGroupName"]): g for g in resources(t, "AWS::Logs::LogGroup")}
    assert len(groups) == 2
    for prefix in ("API-Gateway-Execution-Logs_", "API-Gateway-Access-Logs_"):  # each named after the API's id
        assert any(prefix in name and '"Ref": "Api' in name for name in groups)
    assert all("KmsKeyId" in g and g["RetentionInDays"] == 365 for g in groups.values())


def test_api_methods_require_iam_or_cognito_and_validate_requests(templates):
    (method,) = resources(templates["Api"], "AWS::ApiGateway::Method")
    assert method["AuthorizationType"] == "AWS_IAM"
    assert "RequestValidatorId" in method
    cognito_methods = {m["HttpMethod"]: m for m in resources(templates["CognitoApi"], "AWS::ApiGateway::Method")}
    assert cognito_methods["POST"]["AuthorizationType"] == "COGNITO_USER_POOLS"
    assert cognito_methods["OPTIONS"]["AuthorizationType"] == "NONE"  # CORS preflight only
    templates["CognitoApi"].has_resource_properties("AWS::ApiGateway::Authorizer", {"ProviderARNs": [POOL_ARN]})


def test_api_stage_is_behind_a_web_acl(templates):
    t = templates["Api"]
    (acl,) = resources(t, "AWS::WAFv2::WebACL")
    assert acl["Scope"] == "REGIONAL"
    names = [r["Name"] for r in acl["Rules"]]
    assert "AWSManagedRulesCommonRuleSet" in names and "RateLimitPerAddress" in names
    (association,) = resources(t, "AWS::WAFv2::WebACLAssociation")
    assert "/stages/" in json.dumps(association["ResourceArn"])


def test_api_custom_domain_is_tls_1_2_and_the_default_endpoint_is_off(templates):
    t = templates["CognitoApi"]
    t.has_resource_properties("AWS::ApiGateway::DomainName", {"DomainName": "api.example.com",
                                                              "SecurityPolicy": "TLS_1_2"})
    t.has_resource_properties("AWS::ApiGateway::RestApi", {"DisableExecuteApiEndpoint": True})
    t.resource_count_is("AWS::ApiGateway::Account", 0)  # cloud_watch_role=False


def test_api_logging_role_writes_only_to_api_gateway_log_groups(templates):
    t = templates["Api"]
    (policy,) = resources(t, "AWS::IAM::ManagedPolicy")
    (statement,) = policy["PolicyDocument"]["Statement"]
    assert sorted(statement["Action"]) == ["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"]
    assert all(":log-group:API-Gateway-" in json.dumps(r) for r in statement["Resource"])
    t.resource_count_is("AWS::ApiGateway::Account", 1)
    (role,) = resources(t, "AWS::IAM::Role")
    assert "ManagedPolicyArns" not in role or all("aws:policy" not in json.dumps(a) for a in role["ManagedPolicyArns"])


def test_api_refuses_execution_logging_off():
    stack = cdk.Stack(cdk.App(), "Bad")
    with pytest.raises(ValueError, match="ERROR or INFO"):
        SecureRestApi(stack, "Api", log_key=_key(stack), log_retention_days=30,
                      logging_level=apigw.MethodLoggingLevel.OFF)


def test_an_open_method_fails_the_synth_with_a_clear_error():
    stack = cdk.Stack(cdk.App(), "Open")
    api = SecureRestApi(stack, "Api", log_key=_key(stack), log_retention_days=30)
    api.root.add_method("GET", apigw.MockIntegration(), authorization_type=apigw.AuthorizationType.NONE)
    with pytest.raises(Exception, match="GET / needs no authorization"):
        Template.from_stack(stack)


# ---------------------------------------------------------------- SecureStateMachine

def test_state_machine_logs_all_to_an_encrypted_group_traces_and_uses_the_cmk(templates):
    t = templates["StateMachine"]
    (machine,) = resources(t, "AWS::StepFunctions::StateMachine")
    assert machine["LoggingConfiguration"]["Level"] == "ALL"
    assert machine["LoggingConfiguration"]["IncludeExecutionData"] is False
    assert machine["TracingConfiguration"] == {"Enabled": True}
    assert machine["EncryptionConfiguration"]["Type"] == "CUSTOMER_MANAGED_KMS_KEY"
    assert machine["StateMachineName"] == "StateMachine-Workflow"
    (group,) = resources(t, "AWS::Logs::LogGroup")
    assert "KmsKeyId" in group and group["RetentionInDays"] == 365


def test_state_machine_role_may_use_the_key_for_this_state_machine_only(templates):
    (policy,) = resources(templates["StateMachine"], "AWS::IAM::Policy")
    statements = policy["PolicyDocument"]["Statement"]
    (key_use,) = [s for s in statements if "kms:EncryptionContext:aws:states:stateMachineArn"
                  in json.dumps(s.get("Condition", {}))]
    arn = key_use["Condition"]["StringEquals"]["kms:EncryptionContext:aws:states:stateMachineArn"]
    assert json.dumps(arn).endswith(':stateMachine:StateMachine-Workflow"]]}')
    publish = [s for s in statements if s["Action"] == "sns:Publish"]
    assert publish and publish[0]["Resource"] != "*"


def test_a_wildcard_resource_added_to_the_state_machine_role_fails_the_synth():
    stack = cdk.Stack(cdk.App(), "Wide")
    key = _key(stack)
    machine = SecureStateMachine(stack, "Workflow", encryption_key=key, log_key=key, log_retention_days=30,
                                 definition_body=sfn.DefinitionBody.from_chainable(sfn.Pass(stack, "Start")))
    machine.role.add_to_principal_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=["*"]))
    with pytest.raises(Exception, match='s3:GetObject on Resource "\\*"'):
        Template.from_stack(stack)


# ---------------------------------------------------------------- SecureFunction

def test_secure_function_dead_letter_alarm_and_scoped_role(templates):
    t = templates["Function"]
    (alarm,) = resources(t, "AWS::CloudWatch::Alarm")
    assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
    t.has_resource_properties("AWS::Lambda::Function", {"TracingConfig": {"Mode": "Active"},
                                                        "LoggingConfig": {"LogGroup": Match.any_value()}})
    (policy,) = resources(t, "AWS::IAM::Policy")
    stars = [s for s in policy["PolicyDocument"]["Statement"] if s["Resource"] == "*"]
    assert [sorted(s["Action"]) for s in stars] == [["xray:PutTelemetryRecords", "xray:PutTraceSegments"]]


def test_a_wildcard_resource_added_to_a_traced_function_fails_the_synth():
    stack = cdk.Stack(cdk.App(), "Wide")
    key = _key(stack)
    function = SecureFunction(stack, "Worker", code=_code(), handler="index.handler", description="worker",
                              environment={}, environment_key=key, log_key=key, log_retention_days=30,
                              owner="team", tracing=lambda_.Tracing.ACTIVE)
    function.role.add_to_principal_policy(iam.PolicyStatement(actions=["dynamodb:GetItem"], resources=["*"]))
    with pytest.raises(Exception, match='dynamodb:GetItem on Resource "\\*"'):
        Template.from_stack(stack)


def test_apis_of_one_stack_share_the_accounts_logging_role():
    stack = cdk.Stack(cdk.App(), "TwoApis")
    key = _key(stack)
    for name in ("Orders", "Payments"):
        SecureRestApi(stack, name, log_key=key, log_retention_days=30).root.add_method("GET", apigw.MockIntegration())
    t = Template.from_stack(stack)
    t.resource_count_is("AWS::ApiGateway::Account", 1)
    t.resource_count_is("AWS::IAM::Role", 1)
    t.resource_count_is("AWS::ApiGateway::Stage", 2)
