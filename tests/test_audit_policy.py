"""The audit role's policy (docs/audit-role-policy.json) against what the collectors really call.

Every registered collector (and `dpguard access-review`, which reads through the same role) runs
under moto (`mock_aws`) against an account seeded with at least one resource of every kind the
collectors read, through `Clients`, which records each API call.
Those calls, plus the calls written in each collector's source (for branches moto cannot reach),
mapped to IAM actions by dpguard.audit.permissions, must all be granted by the policy; the policy
must grant nothing else (no dead permissions) except the actions of permissions.EXPLICIT, each
with its reason; and it must be read-only: no wildcard, Get/List/Describe verbs only, plus the
named exceptions of permissions.READ_EXCEPTIONS, never an action that reads data
(permissions.DATA_ACTIONS: s3:GetObject, secretsmanager:GetSecretValue, kms:Decrypt, ...).

The test is generic: collectors added later are picked up from the registry. To rewrite the
policy from what the collectors call:  DPGUARD_WRITE_POLICY=1 pytest tests/test_audit_policy.py
"""
from __future__ import annotations

import ast
import importlib
import io
import json
import os
import re
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest

import boto3
import moto
import botocore  # noqa: E402
import botocore.session  # noqa: E402

from dpguard.audit import permissions  # noqa: E402
from dpguard.audit.clients import Clients  # noqa: E402
from dpguard.audit.collectors import collectors  # noqa: E402
from dpguard.audit.run import audit  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
POLICY = ROOT / "docs" / "audit-role-policy.json"
HOME = "us-east-1"
OTHER = "eu-west-1"
REGIONS = [HOME, OTHER]
ACCOUNT = "123456789012"  # moto's default account
MANAGED_POLICY_LIMIT = 6144  # characters of a customer managed policy, whitespace excluded

COLLECTORS = collectors()
NAMES = [c.name for c in COLLECTORS]

# Other commands that read accounts through the same role (`dpguard access-review`), when present.
try:
    from dpguard.audit import access_review
except ImportError:  # not written yet
    access_review = None


# --- the seeded account ---------------------------------------------------------------------


@dataclass
class Seeded:
    done: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # what moto would not seed, and why

    def step(self, name: str, fn: Callable[[], Any]) -> Any:
        try:
            out = fn()
        except Exception as e:  # noqa: BLE001 - moto lacks some operations; seed what it has
            self.failed[name] = f"{type(e).__name__}: {e}"[:300]
            return None
        self.done.append(name)
        return out


def seed(s: Seeded) -> None:  # noqa: PLR0915 - one resource of every kind, in order
    c = lambda service, region=HOME: boto3.client(service, region_name=region)  # noqa: E731

    # KMS
    kms = c("kms")
    key = s.step("kms key", lambda: kms.create_key(Description="data")["KeyMetadata"])
    key_arn = key["Arn"] if key else None
    s.step("kms rotation", lambda: kms.enable_key_rotation(KeyId=key["KeyId"]))
    s.step("kms alias", lambda: kms.create_alias(AliasName="alias/data", TargetKeyId=key["KeyId"]))
    s.step("kms tags", lambda: kms.tag_resource(KeyId=key["KeyId"], Tags=[{"TagKey": "data-owner", "TagValue": "x"}]))
    s.step("kms key without rotation", lambda: kms.create_key(Description="plain"))

    # S3: a data bucket with everything, a log bucket, a website bucket, one in another region
    s3 = c("s3")
    s.step("s3 log bucket", lambda: s3.create_bucket(Bucket="dp-logs", ACL="log-delivery-write"))
    s.step("s3 log bucket policy", lambda: s3.put_bucket_policy(Bucket="dp-logs", Policy=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "logging.s3.amazonaws.com"}, "Action": "s3:PutObject",
             "Resource": "arn:aws:s3:::dp-logs/*"},
            {"Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
             "Action": ["s3:GetBucketAcl", "s3:PutObject"], "Resource": ["arn:aws:s3:::dp-logs", "arn:aws:s3:::dp-logs/*"]}]})))
    s.step("s3 bucket", lambda: s3.create_bucket(Bucket="dp-data"))
    s.step("s3 policy", lambda: s3.put_bucket_policy(Bucket="dp-data", Policy=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "s3:*",
            "Resource": ["arn:aws:s3:::dp-data", "arn:aws:s3:::dp-data/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]})))
    s.step("s3 encryption", lambda: s3.put_bucket_encryption(Bucket="dp-data", ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn},
                   "BucketKeyEnabled": True}]}))
    s.step("s3 public access block", lambda: s3.put_public_access_block(
        Bucket="dp-data", PublicAccessBlockConfiguration={
            "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True}))
    s.step("s3 versioning", lambda: s3.put_bucket_versioning(Bucket="dp-data", VersioningConfiguration={"Status": "Enabled"}))
    s.step("s3 lifecycle", lambda: s3.put_bucket_lifecycle_configuration(Bucket="dp-data", LifecycleConfiguration={
        "Rules": [{"ID": "noncurrent", "Status": "Enabled", "Filter": {"Prefix": ""},
                   "NoncurrentVersionExpiration": {"NoncurrentDays": 30}}]}))
    s.step("s3 logging", lambda: s3.put_bucket_logging(Bucket="dp-data", BucketLoggingStatus={
        "LoggingEnabled": {"TargetBucket": "dp-logs", "TargetPrefix": "dp-data/"}}))
    s.step("s3 ownership", lambda: s3.put_bucket_ownership_controls(
        Bucket="dp-data", OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}))
    s.step("s3 tags", lambda: s3.put_bucket_tagging(Bucket="dp-data", Tagging={"TagSet": [
        {"Key": "data-classification", "Value": "confidential"}, {"Key": "data-owner", "Value": "team"}]}))
    s.step("s3 website bucket", lambda: s3.create_bucket(Bucket="dp-site"))
    s.step("s3 website", lambda: s3.put_bucket_website(Bucket="dp-site", WebsiteConfiguration={
        "IndexDocument": {"Suffix": "index.html"}}))
    s.step("s3 bucket in another region", lambda: c("s3", OTHER).create_bucket(
        Bucket="dp-data-eu", CreateBucketConfiguration={"LocationConstraint": OTHER}))
    s.step("s3 account public access block", lambda: c("s3control").put_public_access_block(
        AccountId=ACCOUNT, PublicAccessBlockConfiguration={
            "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True}))

    # CloudWatch Logs
    logs = c("logs")
    s.step("log group", lambda: logs.create_log_group(logGroupName="/dp/app", kmsKeyId=key_arn))
    s.step("log group retention", lambda: logs.put_retention_policy(logGroupName="/dp/app", retentionInDays=365))
    s.step("log group plain", lambda: logs.create_log_group(logGroupName="/dp/plain"))
    s.step("log group trail", lambda: logs.create_log_group(logGroupName="/dp/trail"))
    s.step("metric filter", lambda: logs.put_metric_filter(
        logGroupName="/dp/trail", filterName="root-use", filterPattern='{ $.userIdentity.type = "Root" }',
        metricTransformations=[{"metricName": "RootUse", "metricNamespace": "dp", "metricValue": "1"}]))

    # IAM
    iam = c("iam")
    trust = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
    document = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "arn:aws:s3:::dp-data/*"}]})
    admin = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})
    s.step("iam user", lambda: iam.create_user(UserName="alice", Tags=[{"Key": "team", "Value": "x"}]))
    s.step("iam access key", lambda: iam.create_access_key(UserName="alice"))
    s.step("iam login profile", lambda: iam.create_login_profile(UserName="alice", Password="Correct-Horse-9"))
    s.step("iam user inline policy", lambda: iam.put_user_policy(UserName="alice", PolicyName="inline", PolicyDocument=document))
    s.step("iam virtual mfa", lambda: iam.create_virtual_mfa_device(VirtualMFADeviceName="alice"))
    s.step("iam group", lambda: iam.create_group(GroupName="ops"))
    s.step("iam group member", lambda: iam.add_user_to_group(GroupName="ops", UserName="alice"))
    s.step("iam group policy", lambda: iam.put_group_policy(GroupName="ops", PolicyName="inline", PolicyDocument=document))
    managed = s.step("iam managed policy", lambda: iam.create_policy(PolicyName="dp-read", PolicyDocument=document)["Policy"])
    s.step("iam managed policy v2", lambda: iam.create_policy_version(
        PolicyArn=managed["Arn"], PolicyDocument=admin, SetAsDefault=True))
    s.step("iam role", lambda: iam.create_role(RoleName="app", AssumeRolePolicyDocument=trust,
                                               Tags=[{"Key": "team", "Value": "x"}]))
    s.step("iam role inline policy", lambda: iam.put_role_policy(RoleName="app", PolicyName="inline", PolicyDocument=document))
    s.step("iam role managed policy", lambda: iam.attach_role_policy(RoleName="app", PolicyArn=managed["Arn"]))
    admin_policy = s.step("iam admin policy", lambda: iam.create_policy(PolicyName="admin", PolicyDocument=admin)["Policy"])
    s.step("iam role admin policy", lambda: iam.attach_role_policy(RoleName="app", PolicyArn=admin_policy["Arn"]))
    s.step("iam user managed policy", lambda: iam.attach_user_policy(UserName="alice", PolicyArn=managed["Arn"]))
    s.step("iam instance profile", lambda: iam.create_instance_profile(InstanceProfileName="app"))
    s.step("iam password policy", lambda: iam.update_account_password_policy(MinimumPasswordLength=14))
    s.step("iam credential report", lambda: iam.generate_credential_report())
    flow_role = s.step("iam flow-log role", lambda: iam.create_role(RoleName="flow-logs", AssumeRolePolicyDocument=trust)["Role"])

    # EC2: VPC, security groups, flow log, instance, volume
    ec2 = c("ec2")
    vpc = s.step("vpc", lambda: ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"])
    subnet = s.step("subnet", lambda: ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"])
    s.step("subnet 2", lambda: ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.2.0/24", AvailabilityZone=f"{HOME}b"))
    sg = s.step("security group", lambda: ec2.create_security_group(
        GroupName="open", Description="open", VpcId=vpc)["GroupId"])
    s.step("security group ingress", lambda: ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
         "Ipv6Ranges": [{"CidrIpv6": "::/0"}]}]))
    s.step("flow log", lambda: ec2.create_flow_logs(
        ResourceIds=[vpc], ResourceType="VPC", TrafficType="ALL", LogGroupName="/dp/flow",
        DeliverLogsPermissionArn=flow_role["Arn"]))
    s.step("vpc without flow log", lambda: ec2.create_vpc(CidrBlock="10.1.0.0/16"))
    image = s.step("ami", lambda: ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"])
    s.step("instance", lambda: ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.micro",
                                                 SubnetId=subnet, SecurityGroupIds=[sg]))
    s.step("volume", lambda: ec2.create_volume(AvailabilityZone=f"{HOME}a", Size=8, Encrypted=True, KmsKeyId=key_arn))
    s.step("volume unencrypted", lambda: ec2.create_volume(AvailabilityZone=f"{HOME}a", Size=8))
    s.step("ebs encryption by default", lambda: ec2.enable_ebs_encryption_by_default())
    s.step("vpc endpoint", lambda: ec2.create_vpc_endpoint(VpcId=vpc, ServiceName=f"com.amazonaws.{HOME}.s3"))
    s.step("network acl", lambda: ec2.create_network_acl(VpcId=vpc))
    s.step("vpc in another region", lambda: c("ec2", OTHER).create_vpc(CidrBlock="10.2.0.0/16"))

    # CloudTrail
    trail = c("cloudtrail")
    s.step("trail", lambda: trail.create_trail(
        Name="org-trail", S3BucketName="dp-logs", IsMultiRegionTrail=True, EnableLogFileValidation=True,
        KmsKeyId=key_arn, CloudWatchLogsLogGroupArn=f"arn:aws:logs:{HOME}:{ACCOUNT}:log-group:/dp/trail:*",
        CloudWatchLogsRoleArn=flow_role["Arn"] if flow_role else None))
    s.step("trail logging", lambda: trail.start_logging(Name="org-trail"))
    s.step("trail event selectors", lambda: trail.put_event_selectors(TrailName="org-trail", EventSelectors=[
        {"ReadWriteType": "All", "IncludeManagementEvents": True}]))

    # SNS and SQS
    sns, sqs = c("sns"), c("sqs")
    topic = s.step("sns topic", lambda: sns.create_topic(Name="alerts", Attributes={"KmsMasterKeyId": key_arn},
                                                          Tags=[{"Key": "data-owner", "Value": "x"}])["TopicArn"])
    s.step("sns topic plain", lambda: sns.create_topic(Name="plain"))
    s.step("sns topic policy", lambda: sns.set_topic_attributes(TopicArn=topic, AttributeName="Policy", AttributeValue=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Principal": "*", "Action": "sns:Publish",
                                                "Resource": topic, "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]})))
    queue = s.step("sqs queue", lambda: sqs.create_queue(QueueName="work", Attributes={"KmsMasterKeyId": key_arn},
                                                          tags={"data-owner": "x"})["QueueUrl"])
    s.step("sqs queue plain", lambda: sqs.create_queue(QueueName="plain"))
    queue_arn = f"arn:aws:sqs:{HOME}:{ACCOUNT}:work"
    s.step("sqs queue policy", lambda: sqs.set_queue_attributes(QueueUrl=queue, Attributes={"Policy": json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Principal": "*", "Action": "sqs:*",
                                                "Resource": queue_arn, "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]})}))
    s.step("sns subscription", lambda: sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn))

    # CloudWatch alarm on the trail's metric
    s.step("alarm", lambda: c("cloudwatch").put_metric_alarm(
        AlarmName="root-use", MetricName="RootUse", Namespace="dp", Statistic="Sum", Period=300,
        EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanOrEqualToThreshold", AlarmActions=[topic]))

    # RDS: a parameter group forcing SSL, an instance that uses it, a cluster
    rds = c("rds")
    s.step("rds parameter group", lambda: rds.create_db_parameter_group(
        DBParameterGroupName="force-ssl", DBParameterGroupFamily="postgres16", Description="ssl"))
    s.step("rds parameter", lambda: rds.modify_db_parameter_group(DBParameterGroupName="force-ssl", Parameters=[
        {"ParameterName": "rds.force_ssl", "ParameterValue": "1", "ApplyMethod": "immediate"}]))
    s.step("rds subnet group", lambda: rds.create_db_subnet_group(
        DBSubnetGroupName="data", DBSubnetGroupDescription="data",
        SubnetIds=[x["SubnetId"] for x in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]]))
    s.step("rds instance", lambda: rds.create_db_instance(
        DBInstanceIdentifier="db", DBInstanceClass="db.t3.micro", Engine="postgres", AllocatedStorage=20,
        MasterUsername="admin_user", MasterUserPassword="not-a-real-one-1", DBParameterGroupName="force-ssl",
        DBSubnetGroupName="data", StorageEncrypted=True, KmsKeyId=key_arn, PubliclyAccessible=False,
        Tags=[{"Key": "data-classification", "Value": "restricted"}]))
    s.step("rds cluster parameter group", lambda: rds.create_db_cluster_parameter_group(
        DBClusterParameterGroupName="aurora-ssl", DBParameterGroupFamily="aurora-postgresql16", Description="ssl"))
    s.step("rds cluster", lambda: rds.create_db_cluster(
        DBClusterIdentifier="aurora", Engine="aurora-postgresql", MasterUsername="admin_user",
        MasterUserPassword="not-a-real-one-1", DBClusterParameterGroupName="aurora-ssl", StorageEncrypted=True))

    # Cognito
    idp = c("cognito-idp")
    pool = s.step("cognito pool", lambda: idp.create_user_pool(PoolName="users", MfaConfiguration="OFF")["UserPool"]["Id"])
    s.step("cognito client", lambda: idp.create_user_pool_client(
        UserPoolId=pool, ClientName="web", ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]))

    # Secrets Manager (rotation without a Lambda: moto would invoke one, which needs Docker)
    secrets = c("secretsmanager")
    s.step("secret", lambda: secrets.create_secret(Name="db", SecretString="x", KmsKeyId=key_arn,
                                                   Tags=[{"Key": "data-owner", "Value": "x"}]))
    s.step("secret rotation", lambda: secrets.rotate_secret(SecretId="db", RotationRules={"AutomaticallyAfterDays": 30}))
    s.step("secret plain", lambda: secrets.create_secret(Name="plain", SecretString="x"))
    s.step("secret policy", lambda: secrets.put_resource_policy(SecretId="db", ResourcePolicy=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Principal": {"AWS": "*"},
                                                "Action": "secretsmanager:GetSecretValue", "Resource": "*",
                                                "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]})))

    # Lambda (moto keeps the function and runs no code)
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as z:
        z.writestr("index.py", "def handler(event, context):\n    return None\n")
    s.step("lambda function", lambda: c("lambda").create_function(
        FunctionName="dp-fn", Runtime="python3.12", Role=f"arn:aws:iam::{ACCOUNT}:role/app", Handler="index.handler",
        Code={"ZipFile": code.getvalue()}, KMSKeyArn=key_arn, Environment={"Variables": {"DB_PASSWORD": "x"}}))

    # DynamoDB: a table under our key, with tags, point-in-time recovery and a policy; a plain one
    ddb = c("dynamodb")
    schema = {"KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
              "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}], "BillingMode": "PAY_PER_REQUEST"}
    table = s.step("dynamodb table", lambda: ddb.create_table(
        TableName="dp-orders", **schema, SSESpecification={"Enabled": True, "SSEType": "KMS", "KMSMasterKeyId": key_arn},
        Tags=[{"Key": "data-classification", "Value": "confidential"}])["TableDescription"]["TableArn"])
    s.step("dynamodb point-in-time recovery", lambda: ddb.update_continuous_backups(
        TableName="dp-orders", PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}))
    s.step("dynamodb resource policy", lambda: ddb.put_resource_policy(ResourceArn=table, Policy=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                                                "Action": "dynamodb:GetItem", "Resource": table}]})))
    s.step("dynamodb table plain", lambda: ddb.create_table(TableName="dp-plain", **schema))

    # CloudFormation: a stack whose template acknowledges a rule on one resource (as enforce() writes it)
    template = {"Resources": {"AckQueue": {
        "Type": "AWS::SQS::Queue", "Properties": {"QueueName": "acknowledged"},
        "Metadata": {"cdk_nag": {"rules_to_suppress": [{"id": "DP-SqsEncrypted", "reason": "test fixture"}]}}}}}
    s.step("cloudformation stack", lambda: c("cloudformation").create_stack(
        StackName="app", TemplateBody=json.dumps(template)))

    # GuardDuty
    gd = c("guardduty")
    detector = s.step("guardduty detector", lambda: gd.create_detector(Enable=True)["DetectorId"])
    s.step("guardduty filter", lambda: gd.create_filter(
        DetectorId=detector, Name="high", FindingCriteria={"Criterion": {"severity": {"Gte": 7}}}))


# --- running the collectors -----------------------------------------------------------------


@dataclass
class Run:
    calls: Counter
    crashes: list[str]
    unverifiable: list[str]


@pytest.fixture(scope="module")
def account():
    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                                             "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_PROFILE")}
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_SESSION_TOKEN="testing",
                      AWS_DEFAULT_REGION=HOME)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    os.environ.pop("AWS_PROFILE", None)
    try:
        with moto.mock_aws():
            seeded = Seeded()
            seed(seeded)
            yield seeded
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def run(only: set[str] | None) -> Run:
    clients = Clients(boto3.Session(region_name=HOME))
    result = audit([clients], REGIONS, only=only, concurrency=4)
    crashes, unverifiable = [], []
    for f in result.report.findings:
        if f.status != "unverifiable":
            continue
        (crashes if "could not be collected" in f.message else unverifiable).append(f.message)
    return Run(Counter(result.calls), crashes, unverifiable)


@pytest.fixture(scope="module")
def runs(account) -> dict[str, Run]:
    """Each collector alone, so that every call is attributed to its collector."""
    return {name: run({name}) for name in NAMES}


@pytest.fixture(scope="module")
def whole(account) -> Run:
    """All collectors together, as `dpguard audit` runs them."""
    return run(None)


@pytest.fixture(scope="module")
def review(account) -> Counter:
    """The calls of `dpguard access-review` (its collectors, then MFA devices and key grants)."""
    if access_review is None:
        return Counter()
    clients = Clients(boto3.Session(region_name=HOME))
    access_review.run_review([clients], REGIONS, concurrency=4)
    return Counter(clients.calls)


# --- the calls written in the collectors' source ---------------------------------------------

_SESSION = botocore.session.get_session()


def _operations(service: str) -> dict[str, str]:
    """python name -> "<signing name>:<OperationName>" for one boto3 service, as Clients records
    it; S3 Control as "s3control:..." (Clients records it as "s3:...", the key of the bucket
    operation of the same name: see permissions.IAM_ACTION)."""
    model = _SESSION.get_service_model(service)
    prefix = "s3control" if service == "s3control" else model.signing_name
    return {botocore.xform_name(op): f"{prefix}:{op}" for op in model.operation_names}


def source_calls(module_name: str) -> set[str]:
    """The API operations named in a collector's module: methods called on its clients, and
    operation names passed as strings (`pages(client, "list_users", ...)`), for the services the
    module opens with `clients("service", ...)`. Covers branches the seeded account never takes."""
    module = importlib.import_module(module_name)
    files = sorted(Path(module.__file__).parent.glob("*.py")) if hasattr(module, "__path__") else [Path(module.__file__)]
    services: set[str] = set()
    names: set[str] = set()
    for node in (n for f in files for n in ast.walk(ast.parse(f.read_text(encoding="utf-8")))):
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str) and (
                    (isinstance(node.func, ast.Name) and node.func.id == "clients")
                    or (isinstance(node.func, ast.Attribute) and node.func.attr == "client")):
            services.add(node.args[0].value)
        if isinstance(node, ast.Attribute):
            names.add(node.attr)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            names.add(node.value)
    found: set[str] = set()
    available = set(_SESSION.get_available_services())
    for service in services & available:
        ops = _operations(service)
        found.update(ops[n] for n in names if n in ops)
    return found


SOURCE = {c.name: source_calls(c.collect.__module__) for c in COLLECTORS}
REVIEW_SOURCE = source_calls(access_review.__name__) if access_review is not None else set()


# --- the policy -------------------------------------------------------------------------------


def policy() -> dict:
    return json.loads(POLICY.read_text(encoding="utf-8"))


def granted() -> set[str]:
    return permissions.policy_actions(policy())


def needed(runs: dict[str, Run], whole: Run, review: Counter) -> dict[str, set[str]]:
    """IAM action -> the calls (collector or command: operation) that need it."""
    out: dict[str, set[str]] = {}
    for name in NAMES:
        for call in set(runs[name].calls) | SOURCE[name]:
            out.setdefault(permissions.iam_action(call), set()).add(f"{name}: {call}")
    for call in whole.calls:
        out.setdefault(permissions.iam_action(call), set()).add(f"audit: {call}")
    for call in set(review) | REVIEW_SOURCE:
        out.setdefault(permissions.iam_action(call), set()).add(f"access-review: {call}")
    return out


@pytest.fixture(scope="module", autouse=True)
def write_policy(request):
    """DPGUARD_WRITE_POLICY=1: rewrite the policy from the collectors' calls before checking it."""
    if os.environ.get("DPGUARD_WRITE_POLICY") == "1":
        request.getfixturevalue("account")
        actions = set(needed(request.getfixturevalue("runs"), request.getfixturevalue("whole"),
                             request.getfixturevalue("review")))
        document = permissions.policy_document(actions | set(permissions.EXPLICIT))
        POLICY.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    yield


# --- tests ------------------------------------------------------------------------------------


def test_the_account_is_seeded(account):
    print(f"seeded: {len(account.done)} steps; moto could not seed: {account.failed or 'nothing'}")
    assert len(account.done) >= 40, account.failed


def test_collectors_are_registered():
    assert "s3" in NAMES
    assert all(c.scope in ("regional", "global") for c in COLLECTORS)


@pytest.mark.parametrize("name", NAMES)
def test_collector_runs_without_crashing(runs, name):
    r = runs[name]
    assert r.calls, f"{name} made no API call"
    assert not r.crashes, f"collector {name} crashed: {r.crashes}"
    if r.unverifiable:  # facts moto would not give: reported, not failed
        print(f"{name}: {len(r.unverifiable)} unverifiable finding(s), e.g. {r.unverifiable[:3]}")


@pytest.mark.parametrize("name", NAMES)
def test_every_call_of_a_collector_is_granted(runs, name):
    have = granted()
    calls = set(runs[name].calls) | SOURCE[name]
    missing = sorted(f"{call} -> {permissions.iam_action(call)}" for call in calls
                     if permissions.iam_action(call) not in have)
    assert not missing, f"{name} calls what docs/audit-role-policy.json does not grant: {missing}"


def test_every_call_of_the_whole_audit_is_granted(whole):
    have = granted()
    assert "sts:GetCallerIdentity" in whole.calls
    missing = sorted(f"{call} -> {permissions.iam_action(call)}" for call in whole.calls
                     if permissions.iam_action(call) not in have)
    assert not missing, missing
    assert not whole.crashes, whole.crashes
    for message in sorted(set(whole.unverifiable)):  # facts moto would not give: reported, not failed
        print(f"unverifiable in the whole audit: {message}")


@pytest.mark.skipif(access_review is None, reason="dpguard.audit.access_review not present")
def test_every_call_of_the_access_review_is_granted(review):
    have = granted()
    assert review, "the access review made no API call"
    missing = sorted(f"{call} -> {permissions.iam_action(call)}" for call in set(review) | REVIEW_SOURCE
                     if permissions.iam_action(call) not in have)
    assert not missing, f"dpguard access-review calls what the policy does not grant: {missing}"
    extra = set(getattr(access_review, "EXTRA_ACTIONS", {}))
    assert extra <= have, f"access_review.EXTRA_ACTIONS not in the policy: {sorted(extra - have)}"
    assert extra <= permissions.required_actions(review), "EXTRA_ACTIONS that the review did not call"


def test_no_collector_reads_data(runs, whole, review):
    """What the collectors call is configuration, never data: read-only verbs, no DATA_ACTIONS."""
    bad = sorted(f"{action} ({', '.join(sorted(why))})" for action, why in needed(runs, whole, review).items()
                 if not permissions.is_read_only(action))
    assert not bad, f"not read-only, or reads data rather than configuration: {bad}"


def test_no_dead_permissions(runs, whole, review):
    used = needed(runs, whole, review)
    dead = sorted(granted() - set(used) - set(permissions.EXPLICIT))
    assert not dead, f"granted but called by no collector, and not in permissions.EXPLICIT: {dead}"


def test_explicit_actions_are_what_the_cli_calls(account):
    """--org and --all-regions: the calls of cli.organization_accounts and cli.enabled_regions."""
    from dpguard.audit import cli

    clients = Clients(boto3.Session(region_name=HOME))
    boto3.client("organizations", region_name=HOME).create_organization(FeatureSet="ALL")
    assert cli.organization_accounts(clients, HOME)
    assert HOME in cli.enabled_regions(clients, HOME)
    actions = permissions.required_actions(clients.calls)
    assert actions == {"organizations:ListAccounts", "ec2:DescribeRegions"}
    assert actions <= set(permissions.EXPLICIT) <= granted()


ACTION = re.compile(r"^[a-z0-9-]+:[A-Za-z0-9]+$")


def test_policy_is_read_only_without_wildcards():
    doc = policy()
    assert doc["Version"] == "2012-10-17"
    for statement in doc["Statement"]:
        assert statement["Effect"] == "Allow"
        assert not {"NotAction", "NotResource", "NotPrincipal", "Principal"} & set(statement), statement
        actions = statement["Action"]
        assert isinstance(actions, list) and actions == sorted(set(actions)), "actions: a sorted list, no repeats"
        for action in actions:
            assert ACTION.match(action), f"not one explicit action (wildcard?): {action}"
            assert permissions.is_read_only(action), f"not read-only: {action}"
            assert action not in permissions.DATA_ACTIONS, f"reads data, not configuration: {action}"
    compact = json.dumps(doc, separators=(",", ":"))
    assert len(compact) <= MANAGED_POLICY_LIMIT, f"{len(compact)} characters: too large for one managed policy"


def test_sts_assume_role_is_not_in_the_audit_role():
    """sts:AssumeRole is the caller's permission (docs/audit-at-scale.md), not the audited role's."""
    assert not any(a.startswith("sts:AssumeRole") for a in granted())


@pytest.mark.parametrize("call, action", [
    ("s3:GetBucketEncryption", "s3:GetEncryptionConfiguration"),
    ("s3:GetPublicAccessBlock", "s3:GetBucketPublicAccessBlock"),
    ("s3:GetBucketLifecycleConfiguration", "s3:GetLifecycleConfiguration"),
    ("s3:ListBuckets", "s3:ListAllMyBuckets"),
    ("s3:GetBucketOwnershipControls", "s3:GetBucketOwnershipControls"),
    ("s3:GetBucketLocation", "s3:GetBucketLocation"),
    ("s3control:GetPublicAccessBlock", "s3:GetAccountPublicAccessBlock"),
    ("kms:GetKeyRotationStatus", "kms:GetKeyRotationStatus"),
    ("rds:DescribeDBParameters", "rds:DescribeDBParameters"),
    ("monitoring:DescribeAlarms", "cloudwatch:DescribeAlarms"),
    ("iam:GetLoginProfile", "iam:GetLoginProfile"),
])
def test_iam_action_mapping(call, action):
    assert permissions.iam_action(call) == action


def test_required_actions_reads_a_counter():
    calls = Counter({"s3:ListBuckets": 1, "s3:GetBucketEncryption": 3, "sts:GetCallerIdentity": 1})
    assert permissions.required_actions(calls) == {
        "s3:ListAllMyBuckets", "s3:GetEncryptionConfiguration", "sts:GetCallerIdentity"}
