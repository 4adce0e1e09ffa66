"""The identity and audit baseline stacks: security properties of their templates, and a synth
under dpguard.enforce (dpguard + AwsSolutions) that leaves no unacknowledged finding."""
from __future__ import annotations

import json

import pytest

import aws_cdk as cdk
from aws_cdk.assertions import Match, Template  # noqa: E402

import dpguard  # noqa: E402
from dpguard.stacks.audit import CIS_ALARMS, AuditStack, log_retention  # noqa: E402
from dpguard.stacks.identity import IdentityStack  # noqa: E402
from dpguard.stacks.settings import EnvironmentSettings  # noqa: E402

SETTINGS = EnvironmentSettings(name="test", allowed_cidrs=("10.0.0.0/8",), alert_email="sec@example.com",
                               retention_days=365, data_owner="platform-team")
PASSWORD_FLOWS = {"ALLOW_USER_PASSWORD_AUTH", "ALLOW_ADMIN_USER_PASSWORD_AUTH", "ALLOW_USER_SRP_AUTH",
                  "USER_PASSWORD_AUTH", "ADMIN_NO_SRP_AUTH", "ADMIN_USER_PASSWORD_AUTH", "USER_SRP_AUTH"}


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory):
    """One enforced synth for the module: it raises if any finding is unacknowledged."""
    outdir = tmp_path_factory.mktemp("cdk.out")
    app = cdk.App(outdir=str(outdir))
    identity = IdentityStack(app, "Identity", settings=SETTINGS)
    audit = AuditStack(app, "Audit", settings=SETTINGS)
    dpguard.enforce(app)
    assembly = app.synth()
    return {
        "identity": identity,
        "audit": audit,
        "outdir": outdir,
        "Identity": Template.from_json(assembly.get_stack_by_name("Identity").template),
        "Audit": Template.from_json(assembly.get_stack_by_name("Audit").template),
    }


@pytest.fixture(scope="module")
def identity(synthesized) -> Template:
    return synthesized["Identity"]


@pytest.fixture(scope="module")
def audit(synthesized) -> Template:
    return synthesized["Audit"]


def logical_id(construct) -> str:
    """The logical id CDK gives a construct's CloudFormation resource (no hashes in the tests)."""
    cfn = construct.node.default_child
    return cdk.Stack.of(cfn).resolve(cdk.Stack.of(cfn).get_logical_id(cfn))


def only(template: Template, resource_type: str, props=None) -> dict:
    found = template.find_resources(resource_type, {"Properties": props} if props else None)
    assert len(found) == 1, f"expected one {resource_type}, found {list(found)}"
    return next(iter(found.values()))


# --- the policy gate --------------------------------------------------------------------------

def test_enforced_synth_leaves_only_the_documented_acknowledgments(synthesized):
    report = json.loads((synthesized["outdir"] / "validation-report.json").read_text())
    violations = [v for p in report["pluginReports"] for v in p.get("violations", [])]
    assert violations == []
    acknowledged = {(v["ruleName"], c["constructPath"])
                    for p in report["pluginReports"] for v in p.get("suppressedViolations", [])
                    for c in v["violatingConstructs"]}
    assert acknowledged == {
        ("AwsSolutions-COG2", "Identity/UserPool/Resource"),
        ("AwsSolutions-IAM5[Action::kms:GenerateDataKey*]",
         "Audit/GuardDutyFindings/EventsRole/DefaultPolicy/Resource"),
    }


@pytest.mark.parametrize("stack", ["Identity", "Audit"])
def test_no_lambda_or_custom_resource(synthesized, stack):
    # The stacks deploy where Lambda cannot run (moto): no LogRetention, auto-delete, AwsCustomResource.
    types = {r["Type"] for r in synthesized[stack].to_json()["Resources"].values()}
    assert not {t for t in types if t.startswith(("AWS::Lambda::", "Custom::", "AWS::CloudFormation::CustomResource"))}


@pytest.mark.parametrize("stack", ["Identity", "Audit"])
def test_environment_agnostic_without_lookups(synthesized, stack):
    template = synthesized[stack].to_json()
    assert "Mappings" not in template or not template["Mappings"]
    assert cdk.Token.is_unresolved(synthesized[stack.lower()].account)


# --- identity ---------------------------------------------------------------------------------

def test_client_enables_no_password_flow(identity):
    client = only(identity, "AWS::Cognito::UserPoolClient")["Properties"]
    assert client["ExplicitAuthFlows"] == ["ALLOW_USER_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
    assert not PASSWORD_FLOWS & set(client["ExplicitAuthFlows"])


def test_client_has_no_secret_and_hides_users(identity):
    identity.has_resource_properties("AWS::Cognito::UserPoolClient", {
        "GenerateSecret": False,
        "PreventUserExistenceErrors": "ENABLED",
        "EnableTokenRevocation": True,
        "AllowedOAuthFlowsUserPoolClient": False,
    })


def test_client_tokens_are_short_lived(identity):
    client = only(identity, "AWS::Cognito::UserPoolClient")["Properties"]
    units = client["TokenValidityUnits"]
    assert (client["AccessTokenValidity"], units["AccessToken"]) == (15, "minutes")
    assert (client["IdTokenValidity"], units["IdToken"]) == (15, "minutes")
    assert (client["RefreshTokenValidity"], units["RefreshToken"]) == (12 * 60, "minutes")


def test_sign_in_is_passwordless_choice_based(identity):
    pool = only(identity, "AWS::Cognito::UserPool")["Properties"]
    factors = set(pool["Policies"]["SignInPolicy"]["AllowedFirstAuthFactors"])
    assert {"WEB_AUTHN", "EMAIL_OTP"} <= factors
    assert "SMS_OTP" not in factors
    assert pool["WebAuthnUserVerification"] == "required"


def test_plus_plan_with_full_threat_protection(identity):
    identity.has_resource_properties("AWS::Cognito::UserPool", {
        "UserPoolTier": "PLUS",
        "UserPoolAddOns": {"AdvancedSecurityMode": "ENFORCED"},
    })


def test_user_pool_is_protected_from_deletion(identity):
    pool = only(identity, "AWS::Cognito::UserPool")
    assert pool["Properties"]["DeletionProtection"] == "ACTIVE"
    assert pool["DeletionPolicy"] == "Retain"


def test_people_are_invited_and_recover_by_email(identity):
    identity.has_resource_properties("AWS::Cognito::UserPool", {
        "AdminCreateUserConfig": {"AllowAdminCreateUserOnly": True},
        "AccountRecoverySetting": {"RecoveryMechanisms": [{"Name": "verified_email", "Priority": 1}]},
        "UsernameAttributes": ["email"],
    })


def test_mfa_optional_with_totp_only(identity):
    identity.has_resource_properties("AWS::Cognito::UserPool", {
        "MfaConfiguration": "OPTIONAL",
        "EnabledMfas": ["SOFTWARE_TOKEN_MFA"],
    })
    identity.resource_count_is("AWS::IAM::Role", 0)  # no SMS role


def test_user_pool_tags(identity):
    identity.has_resource_properties("AWS::Cognito::UserPool", {
        "UserPoolTags": {"data-classification": "confidential", "data-owner": "platform-team"}})


# --- audit: trail, bucket, log group, key -----------------------------------------------------

def test_trail_is_multi_region_validated_encrypted_and_sent_to_logs(synthesized, audit):
    stack = synthesized["audit"]
    audit.has_resource_properties("AWS::CloudTrail::Trail", {
        "IsMultiRegionTrail": True,
        "IncludeGlobalServiceEvents": True,
        "EnableLogFileValidation": True,
        "IsLogging": True,
        "KMSKeyId": {"Fn::GetAtt": [logical_id(stack.key), "Arn"]},
        "S3BucketName": {"Ref": logical_id(stack.trail_bucket)},
        "CloudWatchLogsLogGroupArn": {"Fn::GetAtt": [logical_id(stack.log_group), "Arn"]},
        "CloudWatchLogsRoleArn": Match.any_value(),
    })


def test_trail_bucket_is_locked_down(synthesized, audit):
    stack = synthesized["audit"]
    audit.has_resource_properties("AWS::S3::Bucket", {
        "PublicAccessBlockConfiguration": {"BlockPublicAcls": True, "BlockPublicPolicy": True,
                                           "IgnorePublicAcls": True, "RestrictPublicBuckets": True},
        "VersioningConfiguration": {"Status": "Enabled"},
        "BucketEncryption": {"ServerSideEncryptionConfiguration": [{
            "BucketKeyEnabled": True,
            "ServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms",
                                              "KMSMasterKeyID": {"Fn::GetAtt": [logical_id(stack.key), "Arn"]}}}]},
        "LoggingConfiguration": {"DestinationBucketName": Match.any_value(), "LogFilePrefix": "trail-bucket/"},
        "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
        "LifecycleConfiguration": {"Rules": [Match.object_like({
            "Status": "Enabled", "NoncurrentVersionExpiration": {"NoncurrentDays": 30}})]},
        "Tags": Match.array_with([{"Key": "data-classification", "Value": "confidential"},
                                  {"Key": "data-owner", "Value": "platform-team"}]),
    })


@pytest.mark.parametrize("bucket", ["trail_bucket", "access_logs_bucket"])
def test_buckets_deny_requests_without_tls(synthesized, audit, bucket):
    audit.has_resource_properties("AWS::S3::BucketPolicy", {
        "Bucket": {"Ref": logical_id(getattr(synthesized["audit"], bucket))},
        "PolicyDocument": {"Statement": Match.array_with([Match.object_like({
            "Effect": "Deny", "Action": "s3:*", "Condition": {"Bool": {"aws:SecureTransport": "false"}}})])},
    })


def test_only_our_trail_writes_to_the_bucket(synthesized, audit):
    stack = synthesized["audit"]
    audit.has_resource_properties("AWS::S3::BucketPolicy", {
        "Bucket": {"Ref": logical_id(stack.trail_bucket)},
        "PolicyDocument": {"Statement": Match.array_with([Match.object_like({
            "Sid": "OnlyOurTrailWrites", "Effect": "Deny", "Action": "s3:PutObject",
            "Principal": {"Service": "cloudtrail.amazonaws.com"},
            "Condition": {"StringNotEquals": {"aws:SourceArn": Match.any_value()}}})])},
    })


def test_access_log_bucket_is_locked_down_with_sse_s3(synthesized, audit):
    # S3 server access logging cannot deliver into an SSE-KMS bucket.
    bucket = audit.to_json()["Resources"][logical_id(synthesized["audit"].access_logs_bucket)]
    assert bucket["Properties"]["VersioningConfiguration"] == {"Status": "Enabled"}
    audit.has_resource_properties("AWS::S3::Bucket", {
        "BucketEncryption": {"ServerSideEncryptionConfiguration": [
            {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]},
        "PublicAccessBlockConfiguration": {"BlockPublicAcls": True, "BlockPublicPolicy": True,
                                           "IgnorePublicAcls": True, "RestrictPublicBuckets": True},
        "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
        "Tags": Match.array_with([{"Key": "data-classification", "Value": "internal"}]),
    })


def test_buckets_are_retained(audit):
    for bucket in audit.find_resources("AWS::S3::Bucket").values():
        assert bucket["DeletionPolicy"] == "Retain"


def test_log_group_is_encrypted_with_retention_from_settings(synthesized, audit):
    stack = synthesized["audit"]
    audit.has_resource_properties("AWS::Logs::LogGroup", {
        "LogGroupName": "/dpguard/test/cloudtrail",
        "RetentionInDays": 365,
        "KmsKeyId": {"Fn::GetAtt": [logical_id(stack.key), "Arn"]},
    })


@pytest.mark.parametrize("days, expected", [(1, 1), (365, 365), (366, 400), (2557, 2557), (4000, None)])
def test_log_retention_never_shorter_than_asked(days, expected):
    retention = log_retention(days)
    if expected is None:
        assert retention == cdk.aws_logs.RetentionDays.INFINITE
    else:
        assert retention == {1: cdk.aws_logs.RetentionDays.ONE_DAY, 365: cdk.aws_logs.RetentionDays.ONE_YEAR,
                             400: cdk.aws_logs.RetentionDays.THIRTEEN_MONTHS,
                             2557: cdk.aws_logs.RetentionDays.SEVEN_YEARS}[expected]


def test_key_rotates_and_is_retained(audit):
    key = only(audit, "AWS::KMS::Key")
    assert key["Properties"]["EnableKeyRotation"] is True
    assert key["DeletionPolicy"] == "Retain"


def _key_statements(audit) -> dict[str, dict]:
    statements = only(audit, "AWS::KMS::Key")["Properties"]["KeyPolicy"]["Statement"]
    return {s.get("Sid", "root"): s for s in statements}


def test_key_policy_scopes_each_service_to_its_resource(audit):
    statements = _key_statements(audit)
    trail = statements["CloudTrailEncryptsItsLogs"]
    assert trail["Principal"] == {"Service": "cloudtrail.amazonaws.com"}
    assert trail["Action"] == "kms:GenerateDataKey*"
    assert set(trail["Condition"]) == {"StringEquals", "StringLike"}
    assert "aws:SourceArn" in trail["Condition"]["StringEquals"]
    assert "kms:EncryptionContext:aws:cloudtrail:arn" in trail["Condition"]["StringLike"]
    logs = statements["CloudWatchLogsEncryptsTheTrailLogGroup"]
    assert "kms:EncryptionContext:aws:logs:arn" in logs["Condition"]["ArnEquals"]
    alarms = statements["CloudWatchAlarmsPublishToEncryptedTopic"]
    assert alarms["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert sorted(alarms["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey*"]


def test_key_policy_has_no_wildcard_principal(audit):
    for statement in _key_statements(audit).values():
        assert statement["Principal"] not in ("*", {"AWS": "*"})


# --- audit: alerts ----------------------------------------------------------------------------

def test_alerts_topic_is_encrypted_with_the_cmk(synthesized, audit):
    stack = synthesized["audit"]
    audit.has_resource_properties("AWS::SNS::Topic", {
        "KmsMasterKeyId": {"Fn::GetAtt": [logical_id(stack.key), "Arn"]}})


def test_alerts_topic_refuses_publishing_without_tls(synthesized, audit):
    topic = {"Ref": logical_id(synthesized["audit"].alerts_topic)}
    audit.has_resource_properties("AWS::SNS::TopicPolicy", {
        "Topics": [topic],
        "PolicyDocument": {"Statement": Match.array_with([Match.object_like({
            "Effect": "Deny", "Action": "sns:Publish", "Principal": "*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}})])},
    })


def test_alerts_topic_admits_only_this_accounts_alarms(audit):
    audit.has_resource_properties("AWS::SNS::TopicPolicy", {
        "PolicyDocument": {"Statement": Match.array_with([Match.object_like({
            "Effect": "Allow", "Principal": {"Service": "cloudwatch.amazonaws.com"},
            "Condition": {"ArnLike": {"aws:SourceArn": Match.any_value()},
                          "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}})])},
    })


def test_alerts_go_to_the_alert_email(synthesized, audit):
    audit.has_resource_properties("AWS::SNS::Subscription", {
        "Protocol": "email", "Endpoint": "sec@example.com",
        "TopicArn": {"Ref": logical_id(synthesized["audit"].alerts_topic)}})


def test_eight_cis_alarms():
    assert len(CIS_ALARMS) == 8
    assert {a.id for a in CIS_ALARMS} == {
        "RootAccountUse", "UnauthorizedApiCalls", "IamPolicyChanges", "KmsKeyDisableOrDeletion",
        "SecurityGroupChanges", "NetworkAclChanges", "CloudTrailChanges", "ConsoleLoginFailures"}


@pytest.mark.parametrize("spec", CIS_ALARMS, ids=lambda a: a.id)
def test_metric_filter_on_the_trail_log_group(synthesized, audit, spec):
    audit.has_resource_properties("AWS::Logs::MetricFilter", {
        "LogGroupName": {"Ref": logical_id(synthesized["audit"].log_group)},
        "FilterPattern": spec.pattern,
        "MetricTransformations": [{"MetricName": spec.id, "MetricNamespace": "CISBenchmark", "MetricValue": "1"}],
    })


@pytest.mark.parametrize("spec", CIS_ALARMS, ids=lambda a: a.id)
def test_alarm_notifies_the_alerts_topic(synthesized, audit, spec):
    audit.has_resource_properties("AWS::CloudWatch::Alarm", {
        "MetricName": spec.id,
        "Namespace": "CISBenchmark",
        "Statistic": "Sum",
        "Threshold": 1,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        "TreatMissingData": "notBreaching",
        "AlarmActions": [{"Ref": logical_id(synthesized["audit"].alerts_topic)}],
    })


def test_guardduty_detector_is_enabled(audit):
    audit.has_resource_properties("AWS::GuardDuty::Detector", {"Enable": True})


def test_guardduty_findings_reach_the_alerts_topic(synthesized, audit):
    stack = synthesized["audit"]
    audit.has_resource_properties("AWS::Events::Rule", {
        "EventPattern": {"source": ["aws.guardduty"], "detail-type": ["GuardDuty Finding"]},
        "State": "ENABLED",
        "Targets": [Match.object_like({"Arn": {"Ref": logical_id(stack.alerts_topic)},
                                       "RoleArn": Match.any_value()})],
    })


def test_guardduty_role_is_for_eventbridge_only(audit):
    audit.has_resource_properties("AWS::IAM::Role", {
        "AssumeRolePolicyDocument": {"Statement": [Match.object_like({
            "Principal": {"Service": "events.amazonaws.com"}})]}})


# --- settings flow through --------------------------------------------------------------------

def test_settings_reach_the_audit_stack():
    app = cdk.App()
    settings = EnvironmentSettings(name="prod", allowed_cidrs=("10.0.0.0/8",), alert_email="soc@example.com",
                                   retention_days=2557, data_owner="security-team",
                                   account="111122223333", region="eu-west-1")
    stack = AuditStack(app, "Audit", settings=settings)
    assert (stack.account, stack.region) == ("111122223333", "eu-west-1")
    template = Template.from_stack(stack)
    template.has_resource_properties("AWS::Logs::LogGroup", {"RetentionInDays": 2557,
                                                            "LogGroupName": "/dpguard/prod/cloudtrail"})
    template.has_resource_properties("AWS::CloudTrail::Trail", {"TrailName": "dpguard-prod-trail"})
    template.has_resource_properties("AWS::SNS::Subscription", {"Endpoint": "soc@example.com"})
    template.has_resource_properties("AWS::S3::Bucket", {
        "Tags": Match.array_with([{"Key": "data-owner", "Value": "security-team"}])})
