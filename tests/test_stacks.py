"""The baseline stacks (keys, network, data), the secure patterns and app.py.

Each stack's template is checked property by property (no hashed logical ids); one test
synthesizes the whole app with dpguard.enforce() and expects no unacknowledged finding. Synths
are few and module-scoped: each one costs seconds."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cw, aws_cloudwatch_actions as cw_actions, aws_ec2 as ec2  # noqa: E402
from aws_cdk import aws_iam as iam, aws_sns as sns  # noqa: E402
from aws_cdk.assertions import Match, Template  # noqa: E402

import dpguard  # noqa: E402
from dpguard.patterns import (COGNITO_IDENTITY, AccessLogBucket, DataKey, EncryptedLogGroup,  # noqa: E402
                              SecureBucket, SecureDatabase, classify, log_custom_resource_providers)
from dpguard.stacks import DataStack, EnvironmentSettings, KeysStack, NetworkStack, SettingsError  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CONTEXT = json.loads((ROOT / "cdk.json").read_text())["context"]
PATHS = {"aws:cdk:enable-path-metadata": True}  # as the CDK CLI sets it: construct paths in Metadata
DEV = {**CONTEXT, **PATHS, "environment": "dev"}


# ---------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def settings() -> EnvironmentSettings:
    return EnvironmentSettings.from_context(cdk.App(context=DEV))


@pytest.fixture(scope="module")
def templates(settings) -> dict[str, Template]:
    """Keys, network and data of the dev environment in one app, without enforce()."""
    app = cdk.App(context=DEV)
    keys = KeysStack(app, "Keys", settings=settings)
    network = NetworkStack(app, "Network", settings=settings, logs_key=keys.logs_key)
    alerts = cdk.Stack(app, "Alerts")
    topic = sns.Topic(alerts, "Topic")
    data = DataStack(app, "Data", settings=settings, keys=keys, network=network, alerts_topic=topic)
    return {"keys": Template.from_stack(keys), "network": Template.from_stack(network),
            "data": Template.from_stack(data)}


@pytest.fixture(scope="module")
def keys(templates) -> Template:
    return templates["keys"]


@pytest.fixture(scope="module")
def network(templates) -> Template:
    return templates["network"]


@pytest.fixture(scope="module")
def data(templates) -> Template:
    return templates["data"]


def resources(template: Template, type_: str) -> dict[str, dict]:
    return template.find_resources(type_)


def props(template: Template, type_: str) -> list[dict]:
    return [r.get("Properties", {}) for r in resources(template, type_).values()]


def by_path(template: Template, type_: str, path_end: str) -> dict:
    """The one resource of `type_` whose construct path ends with `path_end`."""
    found = [r for r in resources(template, type_).values()
             if r.get("Metadata", {}).get("aws:cdk:path", "").endswith(path_end)]
    assert len(found) == 1, f"{len(found)} {type_} at */{path_end}"
    return found[0]


def tags(resource: dict) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in resource["Properties"].get("Tags", [])}


def imports(value, name: str) -> bool:
    """Is `value` an Fn::ImportValue of an export whose name mentions `name`?"""
    return isinstance(value, dict) and name in json.dumps(value.get("Fn::ImportValue", ""))


# ---------------------------------------------------------------- keys

def test_keys_one_per_domain_with_aliases(keys):
    keys.resource_count_is("AWS::KMS::Key", 4)
    aliases = sorted(p["AliasName"] for p in props(keys, "AWS::KMS::Alias"))
    assert aliases == ["alias/dpg-dev/data", "alias/dpg-dev/database", "alias/dpg-dev/logs", "alias/dpg-dev/secrets"]


def test_keys_rotate(keys):
    assert all(p.get("EnableKeyRotation") is True for p in props(keys, "AWS::KMS::Key"))


def test_keys_are_retained(keys):
    assert all(r["DeletionPolicy"] == "Retain" for r in resources(keys, "AWS::KMS::Key").values())


def test_key_policies_have_no_unconditioned_wildcard_principal(keys):
    for p in props(keys, "AWS::KMS::Key"):
        for statement in p["KeyPolicy"]["Statement"]:
            principal = statement["Principal"]
            assert principal != "*" and principal.get("AWS") != "*"
            if "Service" in principal:
                assert statement.get("Condition"), "service access to a key must be scoped"


def test_only_the_logs_key_admits_cloudwatch_logs_and_only_for_this_account(keys):
    logs_statements = [s for p in props(keys, "AWS::KMS::Key") for s in p["KeyPolicy"]["Statement"]
                       if "Service" in s["Principal"]]
    assert len(logs_statements) == 1
    statement = logs_statements[0]
    assert "logs." in json.dumps(statement["Principal"]["Service"])
    arn = json.dumps(statement["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"])
    assert "AWS::AccountId" in arn and "log-group:*" in arn
    assert not any(a.endswith("*") for a in statement["Action"])


# ---------------------------------------------------------------- network

def test_vpc_uses_the_configured_cidr(network, settings):
    network.has_resource_properties("AWS::EC2::VPC", {"CidrBlock": settings.vpc_cidr})


def test_subnets_are_isolated_over_two_azs(network):
    subnets = props(network, "AWS::EC2::Subnet")
    assert len(subnets) == 4
    assert all(s["MapPublicIpOnLaunch"] is False for s in subnets)
    azs = {json.dumps(s["AvailabilityZone"]) for s in subnets}
    assert azs == {json.dumps({"Fn::Select": [i, {"Fn::GetAZs": ""}]}) for i in (0, 1)}  # no lookup
    names = sorted({t["Value"] for s in subnets for t in s["Tags"] if t["Key"] == "aws-cdk:subnet-name"})
    assert names == ["app", "data"]


def test_no_route_to_the_internet(network):
    for type_ in ("AWS::EC2::InternetGateway", "AWS::EC2::NatGateway", "AWS::EC2::EIP",
                  "AWS::EC2::EgressOnlyInternetGateway"):
        network.resource_count_is(type_, 0)
    assert all("GatewayId" not in p and "NatGatewayId" not in p for p in props(network, "AWS::EC2::Route"))


def test_default_security_group_is_restricted(network):
    network.resource_count_is("Custom::VpcRestrictDefaultSG", 1)


def test_flow_logs_cover_the_vpc_with_all_traffic(network):
    network.has_resource_properties("AWS::EC2::FlowLog", {
        "ResourceType": "VPC", "ResourceId": {"Ref": Match.any_value()}, "TrafficType": "ALL",
        "LogDestinationType": "cloud-watch-logs"})


def test_flow_log_group_is_encrypted_with_the_logs_key_and_kept(network, settings):
    group = by_path(network, "AWS::Logs::LogGroup", "FlowLogs/Resource")
    assert imports(group["Properties"]["KmsKeyId"], "LogsKey")
    assert group["Properties"]["RetentionInDays"] == settings.retention_days
    assert group["DeletionPolicy"] == "Retain"


def test_flow_log_role_is_scoped(network):
    network.resource_count_is("AWS::IAM::Policy", 0)  # no inline policies
    role = by_path(network, "AWS::IAM::Role", "FlowLogRole/Resource")
    trust = role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]
    assert trust["Principal"] == {"Service": "vpc-flow-logs.amazonaws.com"}
    assert "aws:SourceAccount" in trust["Condition"]["StringEquals"]
    (policy,) = props(network, "AWS::IAM::ManagedPolicy")
    (statement,) = policy["PolicyDocument"]["Statement"]
    assert sorted(statement["Action"]) == ["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"]
    assert "Fn::GetAtt" in statement["Resource"]  # the flow-log group only


def test_s3_gateway_endpoint_serves_every_subnet(network):
    (gateway,) = [p for p in props(network, "AWS::EC2::VPCEndpoint") if p["VpcEndpointType"] == "Gateway"]
    assert ".s3" in json.dumps(gateway["ServiceName"])
    assert len(gateway["RouteTableIds"]) == 4


@pytest.mark.parametrize("service", ["kms", "secretsmanager", "logs", "monitoring", "sts"])
def test_interface_endpoint(network, service):
    endpoints = [p for p in props(network, "AWS::EC2::VPCEndpoint") if p["VpcEndpointType"] == "Interface"
                 and json.dumps(p["ServiceName"]).endswith(f'".{service}"]]}}')]
    assert len(endpoints) == 1
    assert endpoints[0]["PrivateDnsEnabled"] is True
    assert len(endpoints[0]["SubnetIds"]) == 2


def _ingress(template: Template) -> list[dict]:
    inline = [rule for p in props(template, "AWS::EC2::SecurityGroup") for rule in p.get("SecurityGroupIngress", [])]
    return inline + props(template, "AWS::EC2::SecurityGroupIngress")


def test_security_groups_admit_only_allowed_or_vpc_sources(network, data, settings):
    allowed = set(settings.allowed_cidrs) | {settings.vpc_cidr}
    rules = _ingress(network) + _ingress(data)
    assert rules
    for rule in rules:
        assert "CidrIpv6" not in rule
        if "CidrIp" in rule:
            assert rule["CidrIp"] in allowed
        else:
            assert "SourceSecurityGroupId" in rule
        assert rule["IpProtocol"] == "tcp" and rule["FromPort"] == rule["ToPort"]  # one port, named


def test_app_security_group_admits_https_from_each_allowed_cidr(network, settings):
    group = by_path(network, "AWS::EC2::SecurityGroup", "AppSecurityGroup/Resource")
    ingress = group["Properties"]["SecurityGroupIngress"]
    assert {(r["CidrIp"], r["FromPort"]) for r in ingress} == {(c, 443) for c in settings.allowed_cidrs}


def test_endpoint_security_group_admits_https_from_the_vpc(network, settings):
    group = by_path(network, "AWS::EC2::SecurityGroup", "EndpointSecurityGroup/Resource")
    ingress = group["Properties"]["SecurityGroupIngress"]
    assert [(r["CidrIp"], r["FromPort"], r["ToPort"]) for r in ingress] == [(settings.vpc_cidr, 443, 443)]


def test_only_lambda_is_the_default_sg_custom_resource(network, keys, data):
    # moto cannot run Lambda: the only function allowed is the one behind VpcRestrictDefaultSG.
    (function,) = props(network, "AWS::Lambda::Function")
    assert "default security group" in function["Description"]
    for template in (keys, data):
        template.resource_count_is("AWS::Lambda::Function", 0)
        assert not [t for t in template.to_json()["Resources"].values() if t["Type"].startswith("Custom::")]


# ---------------------------------------------------------------- data: buckets

BUCKETS = ("UserData/Resource", "AccessLogs/Resource")


@pytest.mark.parametrize("path", BUCKETS)
def test_bucket_blocks_all_public_access(data, path):
    bucket = by_path(data, "AWS::S3::Bucket", path)
    assert bucket["Properties"]["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True}
    assert bucket["Properties"]["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    assert "AccessControl" not in bucket["Properties"]


@pytest.mark.parametrize("path", ["UserData/Policy/Resource", "AccessLogs/Policy/Resource"])
def test_bucket_policy_denies_plain_http_on_bucket_and_objects(data, path):
    statements = by_path(data, "AWS::S3::BucketPolicy", path)["Properties"]["PolicyDocument"]["Statement"]
    (deny,) = [s for s in statements if s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}]
    assert deny["Effect"] == "Deny" and deny["Action"] == "s3:*" and deny["Principal"] == {"AWS": "*"}
    targets = json.dumps(deny["Resource"])
    assert '"Arn"]}' in targets and '"/*"' in targets
    assert any(s.get("Condition", {}).get("NumericLessThan", {}).get("s3:TlsVersion") == 1.2 for s in statements)


@pytest.mark.parametrize("path", BUCKETS)
def test_bucket_is_versioned_and_expires_noncurrent_versions(data, path):
    bucket = by_path(data, "AWS::S3::Bucket", path)["Properties"]
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    rules = bucket["LifecycleConfiguration"]["Rules"]
    assert any(r["Status"] == "Enabled" and r["NoncurrentVersionExpiration"]["NoncurrentDays"] <= 30
               and "Prefix" not in r and "Filter" not in r for r in rules)


def test_user_data_is_encrypted_with_the_data_key(data):
    sse = by_path(data, "AWS::S3::Bucket", "UserData/Resource")["Properties"]["BucketEncryption"]
    (rule,) = sse["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert imports(rule["ServerSideEncryptionByDefault"]["KMSMasterKeyID"], "DataKey")
    assert rule["BucketKeyEnabled"] is True


def test_user_data_writes_access_logs_to_the_log_bucket(data):
    log_id = next(k for k, r in resources(data, "AWS::S3::Bucket").items()
                  if r["Metadata"]["aws:cdk:path"].endswith("AccessLogs/Resource"))
    logging = by_path(data, "AWS::S3::Bucket", "UserData/Resource")["Properties"]["LoggingConfiguration"]
    assert logging == {"DestinationBucketName": {"Ref": log_id}, "LogFilePrefix": "user-data/"}


def test_access_log_bucket_uses_sse_s3_and_admits_log_delivery_of_this_account_only(data, settings):
    bucket = by_path(data, "AWS::S3::Bucket", "AccessLogs/Resource")["Properties"]
    (rule,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}  # log delivery refuses SSE-KMS
    assert any(r.get("ExpirationInDays") == settings.retention_days for r in bucket["LifecycleConfiguration"]["Rules"])
    statements = by_path(data, "AWS::S3::BucketPolicy", "AccessLogs/Policy/Resource")["Properties"]["PolicyDocument"]["Statement"]
    (delivery,) = [s for s in statements if s["Effect"] == "Allow"]
    assert delivery["Principal"] == {"Service": "logging.s3.amazonaws.com"}
    assert delivery["Action"] == "s3:PutObject"
    assert delivery["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}


def test_buckets_are_retained(data):
    assert all(r["DeletionPolicy"] == "Retain" for r in resources(data, "AWS::S3::Bucket").values())


@pytest.mark.parametrize("type_", ["AWS::S3::Bucket", "AWS::RDS::DBInstance"])
def test_data_stores_are_classified_and_owned(data, settings, type_):
    for resource in resources(data, type_).values():
        assert tags(resource)["data-classification"] == "confidential"
        assert tags(resource)["data-owner"] == settings.data_owner


# ---------------------------------------------------------------- data: database

@pytest.fixture(scope="module")
def db(data) -> dict:
    (instance,) = resources(data, "AWS::RDS::DBInstance").values()
    return instance


def test_db_is_encrypted_with_the_database_key(db):
    assert db["Properties"]["StorageEncrypted"] is True
    assert imports(db["Properties"]["KmsKeyId"], "DatabaseKey")


def test_db_is_private(db):
    assert db["Properties"]["PubliclyAccessible"] is False
    assert "DBSubnetGroupName" in db["Properties"]


def test_db_lives_in_the_data_subnets(data):
    (group,) = props(data, "AWS::RDS::DBSubnetGroup")
    assert len(group["SubnetIds"]) == 2
    assert all(imports(s, "dataSubnet") for s in group["SubnetIds"])


def test_db_has_no_password_in_the_template(db):
    p = db["Properties"]
    assert "MasterUserPassword" not in p
    assert p["ManageMasterUserPassword"] is True
    assert imports(p["MasterUserSecret"]["KmsKeyId"], "SecretsKey")
    assert p["MasterUsername"] not in ("postgres", "admin", "root")


def test_db_uses_iam_authentication(db):
    assert db["Properties"]["EnableIAMDatabaseAuthentication"] is True


def test_db_forces_tls(data, db):
    (params,) = props(data, "AWS::RDS::DBParameterGroup")
    assert params["Parameters"]["rds.force_ssl"] == "1"
    assert params["Parameters"]["ssl_min_protocol_version"] == "TLSv1.2"
    assert params["Family"] == f"postgres{db['Properties']['EngineVersion'].split('.')[0]}"
    assert "Ref" in db["Properties"]["DBParameterGroupName"]


def test_db_is_protected_and_backed_up(db):
    p = db["Properties"]
    assert p["DeletionProtection"] is True
    assert p["BackupRetentionPeriod"] >= 7
    assert p["MultiAZ"] is True
    assert p["CopyTagsToSnapshot"] is True
    assert db["DeletionPolicy"] == "Snapshot" and db["UpdateReplacePolicy"] == "Snapshot"


def test_db_avoids_the_default_port(db):
    assert db["Properties"]["Port"] != "5432"


def test_db_exports_logs_to_encrypted_groups_made_first(data, db, settings):
    name = db["Properties"]["DBInstanceIdentifier"]
    exports = db["Properties"]["EnableCloudwatchLogsExports"]
    assert exports == ["postgresql", "upgrade"]
    groups = {k: r for k, r in resources(data, "AWS::Logs::LogGroup").items()
              if r["Properties"].get("LogGroupName", "").startswith(f"/aws/rds/instance/{name}/")}
    assert sorted(r["Properties"]["LogGroupName"].rsplit("/", 1)[1] for r in groups.values()) == exports
    for group in groups.values():
        assert imports(group["Properties"]["KmsKeyId"], "LogsKey")
        assert group["Properties"]["RetentionInDays"] == settings.retention_days
    assert set(groups) <= set(db["DependsOn"])


def test_db_security_group_admits_postgres_only(data, db):
    port = int(db["Properties"]["Port"])
    group = by_path(data, "AWS::EC2::SecurityGroup", "Database/SecurityGroup/Resource")
    ingress = group["Properties"]["SecurityGroupIngress"] + props(data, "AWS::EC2::SecurityGroupIngress")
    assert {(r["FromPort"], r["ToPort"]) for r in ingress} == {(port, port)}
    assert any(imports(r.get("SourceSecurityGroupId"), "AppSecurityGroup") for r in ingress)
    # no egress from the database
    assert group["Properties"]["SecurityGroupEgress"][0]["CidrIp"] == "255.255.255.255/32"


def test_alarms_notify_the_alerts_topic(data):
    alarms = props(data, "AWS::CloudWatch::Alarm")
    assert len(alarms) == 2
    assert all(imports(a["AlarmActions"][0], "Topic") for a in alarms)


# ---------------------------------------------------------------- patterns

@pytest.fixture(scope="module")
def app_team(tmp_path_factory) -> tuple[Template, dict]:
    """An app team's own app built from the patterns, judged by dpguard.enforce() (one synth):
    the template of its stack and the validation report."""
    out = tmp_path_factory.mktemp("app-team.out")
    app = cdk.App(outdir=str(out), context=PATHS)
    stack = cdk.Stack(app, "AppTeam")
    key = DataKey(stack, "Key", alias="alias/app-team/data", description="everything of the test app")
    key.allow_cloudwatch_logs()
    log_bucket = AccessLogBucket(stack, "Logs", owner="app-team", retention_days=90)
    bucket = SecureBucket(stack, "Uploads", encryption_key=key, classification="restricted",
                          owner="app-team", access_logs_bucket=log_bucket)
    role = iam.Role(stack, "UserRole", assumed_by=iam.FederatedPrincipal(
        "cognito-identity.amazonaws.com",
        {"StringEquals": {"cognito-identity.amazonaws.com:aud": "eu-west-1:pool"},
         "ForAnyValue:StringLike": {"cognito-identity.amazonaws.com:amr": "authenticated"}},
        "sts:AssumeRoleWithWebIdentity"))
    bucket.grant_user_partition(role)
    flow_logs = EncryptedLogGroup(stack, "FlowLogs", encryption_key=key, retention_days=30)
    vpc = ec2.Vpc(stack, "Vpc", max_azs=2, nat_gateways=0, restrict_default_security_group=True,
                  subnet_configuration=[ec2.SubnetConfiguration(name="data", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)],
                  flow_logs={"all": ec2.FlowLogOptions(destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_logs))})
    db = SecureDatabase(stack, "Db", vpc=vpc, subnets=ec2.SubnetSelection(subnet_group_name="data"),
                        instance_identifier="app-team-db", storage_key=key, secret_key=key, log_key=key,
                        log_retention_days=30, classification="confidential", owner="app-team",
                        allow_from=[ec2.Peer.ipv4("10.1.0.0/16")])
    db.grant_connect(role, "app_user")
    topic = sns.Topic(stack, "Alerts", master_key=key, enforce_ssl=True)  # the alert path of clause 4
    cw.Alarm(stack, "Errors", metric=cw.Metric(namespace="AppTeam", metric_name="Errors"), threshold=1,
             evaluation_periods=1).add_alarm_action(cw_actions.SnsAction(topic))
    log_custom_resource_providers(stack, encryption_key=key, retention_days=30)  # the VPC's provider function
    dpguard.enforce(app, packs=["AwsSolutions"])
    assembly = app.synth()
    report = json.loads((out / "validation-report.json").read_text())
    return Template.from_json(assembly.get_stack_by_name("AppTeam").template), report


def test_patterns_pass_the_policy_in_an_app_teams_app(app_team):
    _, report = app_team
    for plugin in report["pluginReports"]:
        assert plugin["conclusion"] == "success"
        assert [v["ruleName"] for v in plugin["violations"] if v["severity"] != "warning"] == []
    acknowledged = {(v["ruleName"], c["constructPath"]) for p in report["pluginReports"]
                    for v in p["suppressedViolations"] for c in v["violatingConstructs"]}
    assert acknowledged == {
        ("DP-ConfidentialDataCmk", "AppTeam/Logs/Resource"),
        (f"AwsSolutions-IAM5[Resource::<{_logical_id(app_team[0], 'Uploads/Resource')}.Arn>"
         f"/users/<cognito-identity.amazonaws.com:sub>/*]", "AppTeam/UserRole/DefaultPolicy/Resource")}


def _logical_id(template: Template, path_end: str) -> str:
    return next(k for k, r in template.to_json()["Resources"].items()
                if r.get("Metadata", {}).get("aws:cdk:path", "").endswith(path_end))


def test_user_partition_grant_reaches_only_the_callers_prefix(app_team):
    template, _ = app_team
    policy = by_path(template, "AWS::IAM::Policy", "UserRole/DefaultPolicy/Resource")["Properties"]
    statements = policy["PolicyDocument"]["Statement"]
    assert f"/users/{COGNITO_IDENTITY}/*" in json.dumps(statements)
    listing = next(s for s in statements if s["Action"] == "s3:ListBucket")
    assert listing["Condition"]["StringLike"]["s3:prefix"] == [f"users/{COGNITO_IDENTITY}/", f"users/{COGNITO_IDENTITY}/*"]
    key_use = next(s for s in statements if "kms:Decrypt" in s["Action"])
    assert "kms:ViaService" in key_use["Condition"]["StringEquals"]
    assert not any(s["Resource"] == "*" for s in statements)


def test_secure_bucket_default_access_log_prefix_is_its_path(app_team):
    template, _ = app_team
    logging = by_path(template, "AWS::S3::Bucket", "Uploads/Resource")["Properties"]["LoggingConfiguration"]
    assert logging["LogFilePrefix"] == "AppTeam/Uploads/"


def test_database_grant_connect_names_one_db_user(app_team):
    template, _ = app_team
    policy = by_path(template, "AWS::IAM::Policy", "UserRole/DefaultPolicy/Resource")["Properties"]
    (connect,) = [s for s in policy["PolicyDocument"]["Statement"] if s["Action"] == "rds-db:connect"]
    assert json.dumps(connect["Resource"]).endswith('"/app_user"]]}')


def test_user_prefix():
    assert SecureBucket.user_prefix("eu-west-1:0f1e2d3c") == "users/eu-west-1:0f1e2d3c/"
    for bad in ("", "../other", "a/b", "x" * 200):
        with pytest.raises(ValueError):
            SecureBucket.user_prefix(bad)


def test_pattern_arguments_are_checked():
    stack = cdk.Stack(cdk.App(), "Checks")
    with pytest.raises(ValueError, match="classification"):
        classify(stack, "secret", "team")
    with pytest.raises(ValueError, match="owner"):
        classify(stack, "internal", " ")
    key = DataKey(stack, "Key", alias="alias/x", description="x")
    with pytest.raises(ValueError, match="retention"):
        EncryptedLogGroup(stack, "Logs", encryption_key=key, retention_days=100)
    vpc = ec2.Vpc(stack, "Vpc", max_azs=2, nat_gateways=0, subnet_configuration=[
        ec2.SubnetConfiguration(name="data", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)])
    common = dict(vpc=vpc, subnets=ec2.SubnetSelection(subnet_group_name="data"), instance_identifier="x-db",
                  storage_key=key, secret_key=key, log_key=key, log_retention_days=30,
                  classification="confidential", owner="team")
    with pytest.raises(ValueError, match="7 days"):
        SecureDatabase(stack, "Db1", backup_retention_days=1, **common)
    with pytest.raises(ValueError, match="default user name"):
        SecureDatabase(stack, "Db2", master_username="postgres", **common)


# ---------------------------------------------------------------- settings and app.py

def _settings(**overrides) -> EnvironmentSettings:
    env = {**CONTEXT["environments"]["dev"], **overrides}
    return EnvironmentSettings.from_context(cdk.App(context={"environments": {"dev": env}}), "dev")


@pytest.mark.parametrize("overrides, message", [
    ({"retention_days": 100}, "not a CloudWatch Logs retention period"),
    ({"allowed_cidrs": ["0.0.0.0/0"]}, "whole internet"),
])
def test_bad_settings_are_one_line_errors(overrides, message):
    with pytest.raises(SettingsError, match=message):
        _settings(**overrides)


def test_environment_name_must_fit_resource_names():
    app = cdk.App(context={"environments": {"Prod_EU": CONTEXT["environments"]["dev"]}})
    with pytest.raises(SettingsError, match="lower-case"):
        EnvironmentSettings.from_context(app, "Prod_EU")


def _load_app_module():
    spec = importlib.util.spec_from_file_location("baseline_app", ROOT / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory) -> Path:
    """The whole app, as `cdk synth` builds it for dev, with dpguard.enforce(): synth raises
    RuntimeError on any unacknowledged finding."""
    out = tmp_path_factory.mktemp("cdk.out")
    app = cdk.App(outdir=str(out), context=DEV)
    _load_app_module().build(app)
    app.synth()
    return out


def test_whole_app_synthesizes_with_no_unacknowledged_finding(synthesized):
    report = json.loads((synthesized / "validation-report.json").read_text())
    plugins = {p["pluginName"]: p for p in report["pluginReports"]}
    assert set(plugins) == {"dpguard", "AwsSolutions"}
    for plugin in plugins.values():
        assert plugin["conclusion"] == "success"
        assert plugin["violations"] == []


def test_whole_app_has_the_six_stacks(synthesized):
    stacks = sorted(p.name.removesuffix(".template.json") for p in synthesized.glob("*.template.json"))
    assert stacks == ["Dpg-Dev-Audit", "Dpg-Dev-Data", "Dpg-Dev-Identity", "Dpg-Dev-Keys", "Dpg-Dev-Network",
                      "Dpg-Dev-Response"]


def test_baseline_stacks_acknowledge_only_the_log_bucket_encryption(synthesized):
    report = json.loads((synthesized / "validation-report.json").read_text())
    mine = {(v["ruleName"], c["constructPath"])
            for p in report["pluginReports"] for v in p["suppressedViolations"]
            for c in v["violatingConstructs"]
            if c["constructPath"].split("/")[0] in ("Dpg-Dev-Keys", "Dpg-Dev-Network", "Dpg-Dev-Data")}
    assert mine == {("DP-ConfidentialDataCmk", "Dpg-Dev-Data/AccessLogs/Resource")}


def test_app_exits_2_with_one_line_on_a_bad_setting(tmp_path):
    context = {"environments": {"dev": {**CONTEXT["environments"]["dev"], "allowed_cidrs": ["0.0.0.0/0"]}}}
    env = {**os.environ, "CDK_CONTEXT_JSON": json.dumps(context), "CDK_OUTDIR": str(tmp_path)}
    done = subprocess.run([sys.executable, str(ROOT / "app.py")], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert lines == ["error: environment 'dev': 0.0.0.0/0 admits the whole internet (clause 1)"]
    assert "Traceback" not in done.stderr


def test_cdk_provider_functions_log_to_encrypted_groups_with_retention(network):
    # ec2.Vpc(restrict_default_security_group=True) deploys a CDK provider function; without
    # log_custom_resource_providers() its logs would go to a group Lambda makes unencrypted.
    resources = network.to_json()["Resources"]
    functions = [r for r in resources.values() if r["Type"] == "AWS::Lambda::Function"]
    assert functions
    for function in functions:
        group = resources[function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]]["Properties"]
        assert "KmsKeyId" in group and group["RetentionInDays"] == 365
