"""The ec2, kms, cloudtrail, logs, sns and sqs collectors of `dpguard audit`, under moto.

Each collector is checked through `audit(...)` with the real rule catalogue: compliant and
non-compliant resources get the expected rule ids; listings are read across several pages;
access denied, throttling and resources deleted during the audit give `unverifiable` findings
(or a skipped resource), never a compliant verdict and never a traceback. Faults are injected
with botocore events on the very clients the audit uses (`Clients(...)(service, region)`).
"""
from __future__ import annotations

import json

import pytest

import boto3
import moto
from botocore.exceptions import ClientError  # noqa: E402

from dpguard.audit.clients import Clients  # noqa: E402
from dpguard.audit.live import LIVE, LiveTemplate  # noqa: E402

from audit_support import ACCOUNT, REGION, collect, run  # noqa: E402,F401


@pytest.fixture
def session():
    with moto.mock_aws():
        yield boto3.Session(region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")


@pytest.fixture
def clients(session):
    return Clients(session)


def of_type(live: LiveTemplate, rtype: str) -> dict[str, dict]:
    return {lid: r for lid, r in live.resources.items() if r["Type"] == rtype}


def findings(result, rule_id: str, arn_part: str = "") -> list:
    return [f for f in result.report.findings if f.rule_id == rule_id and arn_part in (f.arn or "")]


def statuses(result, rule_id: str, arn_part: str = "") -> set[str]:
    return {f.status for f in findings(result, rule_id, arn_part)}


def event_name(client) -> str:
    return client.meta.service_model.service_id.hyphenize()


def fail(client, operation: str, code: str = "AccessDenied", when=lambda params: True) -> None:
    """Every call of `operation` whose API parameters `when` accepts fails with `code`, every
    time (so retries cannot help either)."""
    name = event_name(client)

    def remember(params, context, **_):
        context["api_params"] = dict(params)

    def handler(context, **_):
        if when(context.get("api_params", {})):
            raise ClientError({"Error": {"Code": code, "Message": f"injected {code}"}}, operation)
    client.meta.events.register(f"before-parameter-build.{name}.{operation}", remember)
    client.meta.events.register(f"before-call.{name}.{operation}", handler)


def before(client, operation: str, action) -> None:
    """Run `action(api_params)` before each call of `operation` (e.g. delete the resource)."""
    client.meta.events.register(f"before-parameter-build.{event_name(client)}.{operation}",
                                lambda params, **_: action(params))


def paged(client, operation: str, key: str, size: int, *, token_in: str = "NextToken",
          token_out: str = "NextToken", truncated: str | None = None) -> list[dict]:
    """Make `operation` answer in pages of `size` items, for operations moto answers in one page.
    Returns the API parameters of every call, to check what the collector asked for."""
    seen: list[dict] = []

    def remember(params, context, **_):
        seen.append(dict(params))
        context["page_start"] = int(params.pop(token_in, None) or 0)

    def cut(parsed, context, **_):
        if key not in parsed:
            return
        start, items = context.get("page_start", 0), parsed[key]
        parsed[key] = items[start:start + size]
        more = start + size < len(items)
        parsed.pop(token_out, None)
        if more:
            parsed[token_out] = str(start + size)
        if truncated:
            parsed[truncated] = more

    name = event_name(client)
    client.meta.events.register(f"before-parameter-build.{name}.{operation}", remember)
    client.meta.events.register(f"after-call.{name}.{operation}", cut)
    return seen


TLS_DENY = {"Sid": "TlsOnly", "Effect": "Deny", "Principal": "*", "Action": "{service}:*",
            "Resource": "{arn}", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}


def tls_policy(service: str, arn: str, *extra: dict) -> str:
    deny = json.loads(json.dumps(TLS_DENY).replace("{service}", service).replace("{arn}", arn))
    return json.dumps({"Version": "2012-10-17", "Statement": [deny, *extra]})


def wildcard_allow(action: str, arn: str) -> dict:
    return {"Sid": "Everyone", "Effect": "Allow", "Principal": "*", "Action": action, "Resource": arn}


# ------------------------------------------------------------------------------------ ec2

def restricted_vpc(ec2, cidr: str, *, flow_log: bool = True) -> tuple[str, str]:
    """A VPC whose default security group has no rules left; with a flow log on the whole VPC."""
    vpc = ec2.create_vpc(CidrBlock=cidr)["Vpc"]["VpcId"]
    default = default_group(ec2, vpc)
    for direction, revoke in (("IpPermissions", ec2.revoke_security_group_ingress),
                              ("IpPermissionsEgress", ec2.revoke_security_group_egress)):
        rules = default[direction]
        if rules:
            revoke(GroupId=default["GroupId"], IpPermissions=rules)
    if flow_log:
        ec2.create_flow_logs(ResourceIds=[vpc], ResourceType="VPC", TrafficType="ALL",
                             LogDestinationType="cloud-watch-logs", LogGroupName="flow-logs",
                             DeliverLogsPermissionArn=f"arn:aws:iam::{ACCOUNT}:role/flow-logs")
    return vpc, default["GroupId"]


def default_group(ec2, vpc: str) -> dict:
    return ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc]},
                                                 {"Name": "group-name", "Values": ["default"]}])["SecurityGroups"][0]


def test_ec2_vpcs_flow_logs_and_security_groups(session, clients):
    ec2 = session.client("ec2")
    good_vpc, good_default = restricted_vpc(ec2, "10.0.0.0/16")
    bad_vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    open_sg = ec2.create_security_group(GroupName="open", Description="open", VpcId=good_vpc)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=open_sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
         "IpRanges": [{"CidrIp": "10.0.0.0/8"}, {"CidrIp": "0.0.0.0/0", "Description": "anyone"}],
         "Ipv6Ranges": [{"CidrIpv6": "::/0"}]}])
    wide_sg = ec2.create_security_group(GroupName="wide", Description="wide", VpcId=good_vpc)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=wide_sg, IpPermissions=[
        {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "10.0.0.0/16"}]}])
    tidy_sg = ec2.create_security_group(GroupName="tidy", Description="tidy", VpcId=good_vpc)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=tidy_sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "10.0.0.0/16"}],
         "UserIdGroupPairs": [{"GroupId": open_sg}]}])

    live = collect(clients, "ec2")
    vpcs = {r["Metadata"][LIVE]["arn"].rsplit("/", 1)[-1]: (lid, r) for lid, r in of_type(live, "AWS::EC2::VPC").items()}
    good_lid, good = vpcs[good_vpc]
    assert good["Properties"]["CidrBlock"] == "10.0.0.0/16"
    assert good["Metadata"][LIVE]["default_security_group"] == {"id": good_default, "ingress": 0, "egress": 0}
    flow_log = next(r for r in of_type(live, "AWS::EC2::FlowLog").values()
                    if r["Properties"]["ResourceId"] == {"Ref": good_lid})
    assert flow_log["Properties"]["ResourceType"] == "VPC"
    assert flow_log["Properties"]["TrafficType"] == "ALL"
    assert flow_log["Properties"]["LogGroupName"] == "flow-logs"
    groups = {r["Metadata"][LIVE]["arn"].rsplit("/", 1)[-1]: r["Properties"]
              for r in of_type(live, "AWS::EC2::SecurityGroup").values()}
    assert groups[open_sg]["VpcId"] == {"Ref": good_lid}
    assert groups[open_sg]["GroupName"] == "open" and groups[open_sg]["GroupDescription"] == "open"
    # one CloudFormation rule per range, as CloudFormation writes them
    assert groups[open_sg]["SecurityGroupIngress"] == [
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "CidrIp": "10.0.0.0/8"},
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "CidrIp": "0.0.0.0/0", "Description": "anyone"},
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "CidrIpv6": "::/0"}]
    assert groups[wide_sg]["SecurityGroupIngress"] == [{"IpProtocol": "-1", "CidrIp": "10.0.0.0/16"}]
    assert {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "SourceSecurityGroupId": open_sg} \
        in groups[tidy_sg]["SecurityGroupIngress"]
    assert groups[tidy_sg]["SecurityGroupEgress"] == [{"IpProtocol": "-1", "CidrIp": "0.0.0.0/0"}]
    assert good_default in groups  # the default group is a security group like any other

    result = run(clients, "ec2")
    assert statuses(result, "DP-VpcFlowLogs", good_vpc) == set()
    assert statuses(result, "DP-VpcFlowLogs", bad_vpc) == {"violation"}
    assert statuses(result, "DP-VpcDefaultSgRestricted", good_vpc) == set()
    [finding] = findings(result, "DP-VpcDefaultSgRestricted", bad_vpc)
    assert finding.status == "violation" and "outbound" in finding.message
    assert finding.arn == f"arn:aws:ec2:{REGION}:{ACCOUNT}:vpc/{bad_vpc}"
    assert finding.region == REGION and finding.account == ACCOUNT
    assert statuses(result, "DP-SgOpenIngress", open_sg) == {"violation"}
    assert "0.0.0.0/0" in findings(result, "DP-SgOpenIngress", open_sg)[0].message
    assert statuses(result, "DP-SgIngressAllPorts", wide_sg) == {"violation"}
    for clean in (tidy_sg, good_default):
        assert statuses(result, "DP-SgOpenIngress", clean) == set()
        assert statuses(result, "DP-SgIngressAllPorts", clean) == set()


def test_ec2_default_group_with_open_ingress_is_reported_by_both_rules(session, clients):
    """The default group's own rule (any rule left) and the open-ingress rule are distinct controls."""
    ec2 = session.client("ec2")
    vpc, default = restricted_vpc(ec2, "10.2.0.0/16")
    ec2.authorize_security_group_ingress(GroupId=default, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 3389, "ToPort": 3389, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    result = run(clients, "ec2")
    [finding] = findings(result, "DP-VpcDefaultSgRestricted", vpc)
    assert finding.status == "violation" and "1 inbound and 0 outbound" in finding.message
    assert statuses(result, "DP-SgOpenIngress", default) == {"violation"}


def test_ec2_customer_prefix_list_open_to_the_world(session, clients):
    ec2 = session.client("ec2")
    vpc, _ = restricted_vpc(ec2, "10.3.0.0/16")
    world = ec2.create_managed_prefix_list(PrefixListName="world", AddressFamily="IPv4", MaxEntries=5,
                                           Entries=[{"Cidr": "0.0.0.0/0"}])["PrefixList"]["PrefixListId"]
    office = ec2.create_managed_prefix_list(PrefixListName="office", AddressFamily="IPv4", MaxEntries=5,
                                            Entries=[{"Cidr": "192.0.2.0/24"}])["PrefixList"]["PrefixListId"]
    groups = {}
    for name, pl in (("viaworld", world), ("viaoffice", office)):
        groups[name] = ec2.create_security_group(GroupName=name, Description=name, VpcId=vpc)["GroupId"]
        ec2.authorize_security_group_ingress(GroupId=groups[name], IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "PrefixListIds": [{"PrefixListId": pl}]}])
    live = collect(clients, "ec2")
    lists = {r["Properties"]["PrefixListName"]: r["Properties"] for r in of_type(live, "AWS::EC2::PrefixList").values()}
    assert lists["world"]["Entries"] == [{"Cidr": "0.0.0.0/0"}]
    result = run(clients, "ec2")
    assert statuses(result, "DP-SgOpenIngress", groups["viaworld"]) == {"violation"}
    assert statuses(result, "DP-SgOpenIngress", groups["viaoffice"]) == set()


def test_ec2_listings_read_every_page(session, clients):
    ec2 = session.client("ec2")
    made = [restricted_vpc(ec2, f"10.{10 + i}.0.0/16")[0] for i in range(3)]
    sgs = [ec2.create_security_group(GroupName=f"sg{i}", Description="x", VpcId=made[0])["GroupId"]
           for i in range(7)]
    client = clients("ec2", REGION)
    for operation, key in (("DescribeVpcs", "Vpcs"), ("DescribeSecurityGroups", "SecurityGroups"),
                           ("DescribeFlowLogs", "FlowLogs")):
        paged(client, operation, key, 2)
    live = collect(clients, "ec2")
    arns = {r["Metadata"][LIVE]["arn"].rsplit("/", 1)[-1] for r in live.resources.values()}
    assert set(made + sgs) <= arns
    assert len(of_type(live, "AWS::EC2::FlowLog")) == 3
    # 11 groups (the default groups of 4 VPCs, moto's default VPC included, and 7 more), 4 VPCs
    assert clients.calls["ec2:DescribeSecurityGroups"] == 6
    assert clients.calls["ec2:DescribeVpcs"] == 2
    assert clients.calls["ec2:DescribeFlowLogs"] == 2
    result = run(clients, "ec2")
    for vpc in made:
        assert statuses(result, "DP-VpcFlowLogs", vpc) == set()
        assert statuses(result, "DP-VpcDefaultSgRestricted", vpc) == set()


def test_ec2_flow_logs_denied(session, clients):
    ec2 = session.client("ec2")
    vpc, _ = restricted_vpc(ec2, "10.4.0.0/16")
    sg = ec2.create_security_group(GroupName="open", Description="open", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    fail(clients("ec2", REGION), "DescribeFlowLogs")
    result = run(clients, "ec2")
    [finding] = findings(result, "DP-VpcFlowLogs", vpc)
    assert finding.status == "unverifiable"
    assert "DescribeFlowLogs" in finding.message and "AccessDenied" in finding.message
    assert statuses(result, "DP-VpcDefaultSgRestricted", vpc) == set()  # still judged: compliant
    assert statuses(result, "DP-SgOpenIngress", sg) == {"violation"}


def test_ec2_security_groups_denied(session, clients):
    ec2 = session.client("ec2")
    vpc, _ = restricted_vpc(ec2, "10.5.0.0/16", flow_log=False)
    fail(clients("ec2", REGION), "DescribeSecurityGroups")
    result = run(clients, "ec2")
    [finding] = findings(result, "DP-VpcDefaultSgRestricted", vpc)
    assert finding.status == "unverifiable" and "DescribeSecurityGroups" in finding.message
    gaps = findings(result, "DP-AuditComplete")
    assert gaps and all(f.status == "unverifiable" for f in gaps)
    assert any("security groups" in f.message and "DescribeSecurityGroups" in f.message for f in gaps)
    assert statuses(result, "DP-VpcFlowLogs", vpc) == {"violation"}  # the rest is still judged
    assert result.incomplete


def test_ec2_vpc_listing_throttled(session, clients):
    ec2 = session.client("ec2")
    vpc, _ = restricted_vpc(ec2, "10.6.0.0/16")
    sg = ec2.create_security_group(GroupName="open", Description="open", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=[
        {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    fail(clients("ec2", REGION), "DescribeVpcs", "Throttling")
    result = run(clients, "ec2")
    assert any("DescribeVpcs" in f.message and "Throttling" in f.message
               for f in findings(result, "DP-AuditComplete"))
    assert findings(result, "DP-VpcFlowLogs") == []  # no VPC could be read: nothing called compliant
    assert statuses(result, "DP-SgOpenIngress", sg) == {"violation"}


def test_ec2_vpc_deleted_between_listings(session, clients):
    """The VPC is listed, then gone (with its groups) when the security groups are listed."""
    ec2 = session.client("ec2")
    vpc, _ = restricted_vpc(ec2, "10.7.0.0/16")

    def drop(parsed, **_):
        parsed["SecurityGroups"] = [g for g in parsed.get("SecurityGroups", []) if g.get("VpcId") != vpc]
    clients("ec2", REGION).meta.events.register("after-call.ec2.DescribeSecurityGroups", drop)
    result = run(clients, "ec2")
    [finding] = findings(result, "DP-VpcDefaultSgRestricted", vpc)
    assert finding.status == "unverifiable" and "deleted" in finding.message


# ------------------------------------------------------------------------------------ kms

def test_kms_keys(session, clients):
    kms = session.client("kms")
    good = kms.create_key(Description="data", Tags=[{"TagKey": "data-owner", "TagValue": "team"}])["KeyMetadata"]["KeyId"]
    kms.enable_key_rotation(KeyId=good)
    kms.create_alias(AliasName="alias/data", TargetKeyId=good)
    lazy = kms.create_key()["KeyMetadata"]["KeyId"]
    shared = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.enable_key_rotation(KeyId=shared)
    kms.put_key_policy(KeyId=shared, PolicyName="default", Policy=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "kms:*", "Resource": "*"},
            wildcard_allow("kms:Decrypt", "*")]}))
    signing = kms.create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    doomed = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.schedule_key_deletion(KeyId=doomed, PendingWindowInDays=7)
    aws_managed = kms.create_key()["KeyMetadata"]["KeyId"]

    def managed_by_aws(parsed, **_):
        if parsed.get("KeyMetadata", {}).get("KeyId") == aws_managed:
            parsed["KeyMetadata"]["KeyManager"] = "AWS"
    clients("kms", REGION).meta.events.register("after-call.kms.DescribeKey", managed_by_aws)

    live = collect(clients, "kms")
    keys = {r["Metadata"][LIVE]["arn"].rsplit("/", 1)[-1]: (lid, r["Properties"])
            for lid, r in of_type(live, "AWS::KMS::Key").items()}
    assert set(keys) == {good, lazy, shared, signing}  # not pending deletion, not AWS managed
    lid, props = keys[good]
    assert lid == "Data"  # named after its alias
    assert props["EnableKeyRotation"] is True and props["KeySpec"] == "SYMMETRIC_DEFAULT"
    assert props["Enabled"] is True and props["Origin"] == "AWS_KMS"
    assert props["Tags"] == [{"Key": "data-owner", "Value": "team"}]
    assert props["KeyPolicy"]["Statement"][0]["Principal"] == {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}
    assert keys[lazy][1]["EnableKeyRotation"] is False
    assert "EnableKeyRotation" not in keys[signing][1]

    result = run(clients, "kms")
    assert statuses(result, "DP-KmsKeyRotation", good) == set()
    assert statuses(result, "DP-KmsKeyPolicyNoWildcard", good) == set()
    assert statuses(result, "DP-KmsKeyRotation", lazy) == {"violation"}
    assert statuses(result, "DP-KmsKeyPolicyNoWildcard", shared) == {"violation"}
    assert statuses(result, "DP-KmsKeyRotation", signing) == set()
    assert not [f for f in result.report.findings if doomed in (f.arn or "") or aws_managed in (f.arn or "")]


def test_kms_listing_reads_every_page(session, clients):
    kms = session.client("kms")
    made = [kms.create_key()["KeyMetadata"]["KeyId"] for _ in range(5)]
    seen = paged(clients("kms", REGION), "ListKeys", "Keys", 2, token_in="Marker", token_out="NextMarker",
                 truncated="Truncated")
    live = collect(clients, "kms")
    assert {r["Metadata"][LIVE]["arn"].rsplit("/", 1)[-1] for r in of_type(live, "AWS::KMS::Key").values()} == set(made)
    assert len(seen) == 3


def test_kms_rotation_denied_and_policy_throttled(session, clients):
    kms = session.client("kms")
    shared = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.put_key_policy(KeyId=shared, PolicyName="default", Policy=json.dumps({
        "Version": "2012-10-17", "Statement": [wildcard_allow("kms:*", "*")]}))
    other = kms.create_key()["KeyMetadata"]["KeyId"]
    client = clients("kms", REGION)
    fail(client, "GetKeyRotationStatus")
    fail(client, "GetKeyPolicy", "ThrottlingException", when=lambda p: p.get("KeyId") == other)
    result = run(clients, "kms")
    for key in (shared, other):
        [finding] = findings(result, "DP-KmsKeyRotation", key)
        assert finding.status == "unverifiable"
        assert "GetKeyRotationStatus failed: AccessDenied" in finding.message
    assert statuses(result, "DP-KmsKeyPolicyNoWildcard", shared) == {"violation"}  # still judged
    [finding] = findings(result, "DP-KmsKeyPolicyNoWildcard", other)
    assert finding.status == "unverifiable" and "GetKeyPolicy failed: ThrottlingException" in finding.message


def test_kms_key_deleted_between_listing_and_describe(session, clients):
    kms = session.client("kms")
    kept = kms.create_key()["KeyMetadata"]["KeyId"]
    gone = kms.create_key()["KeyMetadata"]["KeyId"]
    fail(clients("kms", REGION), "DescribeKey", "NotFoundException", when=lambda p: p.get("KeyId") == gone)
    live = collect(clients, "kms")
    assert [r["Metadata"][LIVE]["arn"].rsplit("/", 1)[-1] for r in of_type(live, "AWS::KMS::Key").values()] == [kept]
    assert not live.gaps


def test_kms_describe_denied_is_unverifiable(session, clients):
    kms = session.client("kms")
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.enable_key_rotation(KeyId=key)
    fail(clients("kms", REGION), "DescribeKey")
    result = run(clients, "kms")
    for rule_id in ("DP-KmsKeyRotation", "DP-KmsKeyPolicyNoWildcard"):
        [finding] = findings(result, rule_id, key)
        assert finding.status == "unverifiable" and "DescribeKey" in finding.message


# ------------------------------------------------------------------------------------ cloudtrail

def trail_bucket(s3, name: str, *, protected: bool) -> None:
    s3.create_bucket(Bucket=name)
    if protected:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration={
            "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True})


def good_trail(session, name: str = "org-trail", bucket: str = "trail-logs") -> str:
    trail_bucket(session.client("s3"), bucket, protected=True)
    cloudtrail = session.client("cloudtrail")
    arn = cloudtrail.create_trail(
        Name=name, S3BucketName=bucket, IsMultiRegionTrail=True, EnableLogFileValidation=True,
        KmsKeyId=f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        CloudWatchLogsLogGroupArn=f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:trail:*",
        CloudWatchLogsRoleArn=f"arn:aws:iam::{ACCOUNT}:role/trail")["TrailARN"]
    cloudtrail.start_logging(Name=name)
    return arn


TRAIL_RULES = ("DP-CloudTrailMultiRegion", "DP-CloudTrailLogValidation", "DP-CloudTrailKms",
               "DP-CloudTrailCloudWatchLogs", "DP-CloudTrailLogging", "DP-CloudTrailBucketProtected")


def test_cloudtrail_trails(session, clients):
    good = good_trail(session)
    trail_bucket(session.client("s3"), "loose-logs", protected=False)
    bad = session.client("cloudtrail").create_trail(Name="stopped", S3BucketName="loose-logs")["TrailARN"]

    live = collect(clients, "cloudtrail")
    props = {r["Properties"]["TrailName"]: r["Properties"] for r in of_type(live, "AWS::CloudTrail::Trail").values()}
    assert props["org-trail"] == {
        "TrailName": "org-trail", "S3BucketName": "trail-logs", "IsMultiRegionTrail": True,
        "IncludeGlobalServiceEvents": True, "EnableLogFileValidation": True,
        "KMSKeyId": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "CloudWatchLogsLogGroupArn": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:trail:*",
        "CloudWatchLogsRoleArn": f"arn:aws:iam::{ACCOUNT}:role/trail",
        "IsOrganizationTrail": False, "IsLogging": True}
    assert props["stopped"]["IsLogging"] is False

    result = run(clients, "cloudtrail", "s3")  # the trail's bucket is in the s3 collector's template
    for rule_id in TRAIL_RULES:
        assert statuses(result, rule_id, good) == set(), rule_id
        assert statuses(result, rule_id, bad) == {"violation"}, rule_id
    messages = [f.message for f in findings(result, "DP-CloudTrailBucketProtected", bad)]
    assert any("is not versioned" in m for m in messages) and any("Block Public Access" in m for m in messages)


def test_cloudtrail_bucket_outside_the_audit_is_unverifiable(session, clients):
    arn = good_trail(session)
    result = run(clients, "cloudtrail")
    [finding] = findings(result, "DP-CloudTrailBucketProtected", arn)
    assert finding.status == "unverifiable" and "trail-logs" in finding.message


def test_cloudtrail_status_denied(session, clients):
    arn = good_trail(session)
    fail(clients("cloudtrail", REGION), "GetTrailStatus")
    result = run(clients, "cloudtrail", "s3")
    [finding] = findings(result, "DP-CloudTrailLogging", arn)
    assert finding.status == "unverifiable" and "GetTrailStatus failed: AccessDenied" in finding.message
    for rule_id in TRAIL_RULES[:-2]:
        assert statuses(result, rule_id, arn) == set(), rule_id


def test_cloudtrail_listing_throttled(session, clients):
    good_trail(session)
    fail(clients("cloudtrail", REGION), "DescribeTrails", "ThrottlingException")
    result = run(clients, "cloudtrail")
    [gap] = findings(result, "DP-AuditComplete")
    assert gap.status == "unverifiable" and "DescribeTrails" in gap.message
    assert not [f for f in result.report.findings if f.rule_id in TRAIL_RULES]


def test_cloudtrail_trail_deleted_between_listing_and_status(session, clients):
    good = good_trail(session)
    trail_bucket(session.client("s3"), "loose-logs", protected=False)
    other = session.client("cloudtrail")
    bad = other.create_trail(Name="stopped", S3BucketName="loose-logs")["TrailARN"]
    before(clients("cloudtrail", REGION), "GetTrailStatus",
           lambda params: params["Name"] == bad and other.delete_trail(Name="stopped"))
    live = collect(clients, "cloudtrail")
    assert [r["Properties"]["TrailName"] for r in of_type(live, "AWS::CloudTrail::Trail").values()] == ["org-trail"]
    result = run(clients, "cloudtrail", "s3")
    assert not [f for f in result.report.findings if f.rule_id in TRAIL_RULES]  # neither judged nor crashed
    assert not findings(result, "DP-AuditComplete")
    assert good


# ------------------------------------------------------------------------------------ logs

def test_log_groups(session, clients):
    logs = session.client("logs")
    logs.create_log_group(logGroupName="/app/good", kmsKeyId=f"arn:aws:kms:{REGION}:{ACCOUNT}:key/abc")
    logs.put_retention_policy(logGroupName="/app/good", retentionInDays=365)
    logs.create_log_group(logGroupName="/app/bad")
    live = collect(clients, "logs")
    props = {r["Properties"]["LogGroupName"]: r["Properties"] for r in of_type(live, "AWS::Logs::LogGroup").values()}
    assert props["/app/good"]["KmsKeyId"] == f"arn:aws:kms:{REGION}:{ACCOUNT}:key/abc"
    assert props["/app/good"]["RetentionInDays"] == 365
    assert "KmsKeyId" not in props["/app/bad"] and "RetentionInDays" not in props["/app/bad"]
    result = run(clients, "logs")
    good, bad = "log-group:/app/good", "log-group:/app/bad"
    assert statuses(result, "DP-LogGroupEncrypted", good) == set()
    assert statuses(result, "DP-LogGroupRetention", good) == set()
    assert statuses(result, "DP-LogGroupEncrypted", bad) == {"violation"}
    assert statuses(result, "DP-LogGroupRetention", bad) == {"violation"}
    assert findings(result, "DP-LogGroupRetention", bad)[0].arn == f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/app/bad"


def test_log_groups_read_every_page(session, clients):
    logs = session.client("logs")
    for i in range(57):  # moto answers 50 per page, as AWS does
        logs.create_log_group(logGroupName=f"/app/{i:02d}")
    live = collect(clients, "logs")
    assert len(of_type(live, "AWS::Logs::LogGroup")) == 57
    assert clients.calls["logs:DescribeLogGroups"] == 2


@pytest.mark.parametrize("code", ["AccessDenied", "ThrottlingException"])
def test_log_groups_listing_fails(session, clients, code):
    session.client("logs").create_log_group(logGroupName="/app/x")
    fail(clients("logs", REGION), "DescribeLogGroups", code)
    result = run(clients, "logs")
    [gap] = findings(result, "DP-AuditComplete")
    assert gap.status == "unverifiable" and "DescribeLogGroups" in gap.message and code in gap.message
    assert not findings(result, "DP-LogGroupRetention")


# ------------------------------------------------------------------------------------ sns

def topics(session) -> dict[str, str]:
    """A compliant topic, a non-compliant one and one open to everybody; their ARNs by name."""
    sns = session.client("sns")
    arns = {}
    arns["alerts"] = sns.create_topic(Name="alerts", Attributes={"KmsMasterKeyId": "alias/alerts"},
                                      Tags=[{"Key": "data-owner", "Value": "sec"}])["TopicArn"]
    sns.set_topic_attributes(TopicArn=arns["alerts"], AttributeName="Policy",
                             AttributeValue=tls_policy("sns", arns["alerts"]))
    sns.subscribe(TopicArn=arns["alerts"], Protocol="https", Endpoint="https://hooks.example.com/a")
    arns["plain"] = sns.create_topic(Name="plain")["TopicArn"]
    sns.subscribe(TopicArn=arns["plain"], Protocol="http", Endpoint="http://hooks.example.com/p")
    arns["public"] = sns.create_topic(Name="public", Attributes={"KmsMasterKeyId": "alias/alerts"})["TopicArn"]
    sns.set_topic_attributes(TopicArn=arns["public"], AttributeName="Policy",
                             AttributeValue=tls_policy("sns", arns["public"], wildcard_allow("sns:Publish", arns["public"])))
    return arns


def test_sns_topics_policies_and_subscriptions(session, clients):
    arns = topics(session)
    live = collect(clients, "sns")
    by_name = {r["Properties"]["TopicName"]: (lid, r["Properties"]) for lid, r in of_type(live, "AWS::SNS::Topic").items()}
    lid, props = by_name["alerts"]
    assert props["KmsMasterKeyId"] == "alias/alerts"
    assert props["Tags"] == [{"Key": "data-owner", "Value": "sec"}]
    [policy] = [r["Properties"] for r in of_type(live, "AWS::SNS::TopicPolicy").values()
                if r["Properties"]["Topics"] == [{"Ref": lid}]]
    assert policy["PolicyDocument"]["Statement"][0]["Sid"] == "TlsOnly"
    subscriptions = [r["Properties"] for r in of_type(live, "AWS::SNS::Subscription").values()]
    assert {"TopicArn": {"Ref": lid}, "Protocol": "https", "Endpoint": "https://hooks.example.com/a"} in subscriptions

    result = run(clients, "sns")
    good, bad, public = arns["alerts"], arns["plain"], arns["public"]
    for rule_id in ("DP-SnsTlsOnly", "DP-SnsEncrypted", "DP-SnsSubscriptionHttps", "DP-ResourcePolicyNoWildcardPrincipal"):
        assert statuses(result, rule_id, good) == set(), rule_id
    assert statuses(result, "DP-SnsTlsOnly", bad) == {"violation"}
    assert statuses(result, "DP-SnsEncrypted", bad) == {"violation"}
    assert statuses(result, "DP-SnsSubscriptionHttps", bad) == {"violation"}
    # SNS's default policy lets only the owner account in (AWS:SourceOwner): not a wildcard
    assert statuses(result, "DP-ResourcePolicyNoWildcardPrincipal", bad) == set()
    assert statuses(result, "DP-ResourcePolicyNoWildcardPrincipal", public) == {"violation"}
    assert statuses(result, "DP-SnsTlsOnly", public) == set()


def test_sns_listing_reads_every_page(session, clients):
    sns = session.client("sns")
    for i in range(103):  # moto answers 100 topics or subscriptions per page, as AWS does
        arn = sns.create_topic(Name=f"t{i:03d}")["TopicArn"]
    for i in range(102):
        sns.subscribe(TopicArn=arn, Protocol="https", Endpoint=f"https://hooks.example.com/{i}")
    live = collect(clients, "sns")
    assert len(of_type(live, "AWS::SNS::Topic")) == 103
    assert len(of_type(live, "AWS::SNS::TopicPolicy")) == 103
    assert len(of_type(live, "AWS::SNS::Subscription")) == 102
    assert clients.calls["sns:ListTopics"] == 2
    assert clients.calls["sns:ListSubscriptionsByTopic"] == 104


def test_sns_attributes_denied_subscriptions_throttled(session, clients):
    arns = topics(session)
    sqs_url = session.client("sqs").create_queue(QueueName="jobs")["QueueUrl"]
    client = clients("sns", REGION)
    fail(client, "GetTopicAttributes", when=lambda p: p.get("TopicArn") == arns["plain"])
    fail(client, "ListSubscriptionsByTopic", "Throttling")
    result = run(clients, "sns", "sqs")
    plain = arns["plain"]
    for rule_id in ("DP-SnsEncrypted", "DP-SnsTlsOnly"):
        [finding] = findings(result, rule_id, plain)
        assert finding.status == "unverifiable" and "GetTopicAttributes failed: AccessDenied" in finding.message
    for arn in arns.values():  # every topic: its subscriptions could not be listed
        assert "unverifiable" in statuses(result, "DP-SnsSubscriptionHttps", arn)
        assert any("ListSubscriptionsByTopic failed: Throttling" in f.message
                   for f in findings(result, "DP-SnsSubscriptionHttps", arn))
    assert statuses(result, "DP-SnsEncrypted", arns["alerts"]) == set()  # other topics still judged
    assert statuses(result, "DP-SnsTlsOnly", arns["alerts"]) == set()
    assert statuses(result, "DP-SqsTlsOnly", sqs_url.rsplit("/", 1)[-1]) == {"violation"}


def test_sns_topic_deleted_between_listing_and_attributes(session, clients):
    arns = topics(session)
    other = session.client("sns")
    before(clients("sns", REGION), "GetTopicAttributes",
           lambda params: params["TopicArn"] == arns["plain"] and other.delete_topic(TopicArn=arns["plain"]))
    live = collect(clients, "sns")
    assert sorted(r["Properties"]["TopicName"] for r in of_type(live, "AWS::SNS::Topic").values()) == ["alerts", "public"]
    result = run(clients, "sns")
    assert not [f for f in result.report.findings if (f.arn or "").startswith(arns["plain"])]


# ------------------------------------------------------------------------------------ sqs

def queues(session) -> dict[str, str]:
    sqs = session.client("sqs")
    urls = {}
    urls["orders"] = sqs.create_queue(QueueName="orders", Attributes={"KmsMasterKeyId": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/abc"},
                                      tags={"data-classification": "confidential", "data-owner": "shop"})["QueueUrl"]
    arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:orders"
    sqs.set_queue_attributes(QueueUrl=urls["orders"], Attributes={"Policy": tls_policy("sqs", arn)})
    urls["plain"] = sqs.create_queue(QueueName="plain", Attributes={"SqsManagedSseEnabled": "false"})["QueueUrl"]
    urls["public"] = sqs.create_queue(QueueName="public")["QueueUrl"]
    public = f"arn:aws:sqs:{REGION}:{ACCOUNT}:public"
    sqs.set_queue_attributes(QueueUrl=urls["public"], Attributes={
        "Policy": tls_policy("sqs", public, wildcard_allow("sqs:SendMessage", public))})
    return urls


def test_sqs_queues_and_policies(session, clients):
    queues(session)
    live = collect(clients, "sqs")
    by_name = {r["Properties"]["QueueName"]: (lid, r["Properties"]) for lid, r in of_type(live, "AWS::SQS::Queue").items()}
    lid, props = by_name["orders"]
    assert props["KmsMasterKeyId"] == f"arn:aws:kms:{REGION}:{ACCOUNT}:key/abc"
    assert props["Tags"] == [{"Key": "data-classification", "Value": "confidential"}, {"Key": "data-owner", "Value": "shop"}]
    assert by_name["plain"][1]["SqsManagedSseEnabled"] is False
    [policy] = [r["Properties"] for r in of_type(live, "AWS::SQS::QueuePolicy").values() if r["Properties"]["Queues"] == [{"Ref": lid}]]
    assert policy["PolicyDocument"]["Statement"][0]["Sid"] == "TlsOnly"

    result = run(clients, "sqs")
    orders, plain, public = (f"arn:aws:sqs:{REGION}:{ACCOUNT}:{n}" for n in ("orders", "plain", "public"))
    for rule_id in ("DP-SqsTlsOnly", "DP-SqsEncrypted", "DP-ResourcePolicyNoWildcardPrincipal",
                    "DP-DataClassificationTag", "DP-DataOwnerTag", "DP-ConfidentialDataCmk"):
        assert statuses(result, rule_id, orders) == set(), rule_id
    assert statuses(result, "DP-SqsTlsOnly", plain) == {"violation"}
    assert statuses(result, "DP-SqsEncrypted", plain) == {"violation"}
    assert statuses(result, "DP-DataClassificationTag", plain) == {"violation"}
    assert statuses(result, "DP-ResourcePolicyNoWildcardPrincipal", public) == {"violation"}
    assert statuses(result, "DP-SqsTlsOnly", public) == set()
    assert statuses(result, "DP-SqsEncrypted", public) == set()  # SSE-SQS, on by default


def test_sqs_listing_reads_every_page(session, clients):
    sqs = session.client("sqs")
    for i in range(5):
        sqs.create_queue(QueueName=f"q{i}")
    seen = paged(clients("sqs", REGION), "ListQueues", "QueueUrls", 2)
    live = collect(clients, "sqs")
    assert sorted(r["Properties"]["QueueName"] for r in of_type(live, "AWS::SQS::Queue").values()) == [f"q{i}" for i in range(5)]
    assert len(seen) == 3
    assert all(call.get("MaxResults") == 1000 for call in seen)  # ListQueues paginates only when asked


def test_sqs_attributes_denied_tags_throttled(session, clients):
    urls = queues(session)
    client = clients("sqs", REGION)
    fail(client, "GetQueueAttributes", when=lambda p: p.get("QueueUrl") == urls["plain"])
    fail(client, "ListQueueTags", "Throttling")
    result = run(clients, "sqs")
    plain = f"arn:aws:sqs:{REGION}:{ACCOUNT}:plain"
    [finding] = findings(result, "DP-SqsEncrypted", plain)
    assert finding.status == "unverifiable" and "GetQueueAttributes failed: AccessDenied" in finding.message
    assert "unverifiable" in statuses(result, "DP-SqsTlsOnly", plain)
    orders = f"arn:aws:sqs:{REGION}:{ACCOUNT}:orders"
    [finding] = findings(result, "DP-DataClassificationTag", orders)
    assert finding.status == "unverifiable" and "ListQueueTags failed: Throttling" in finding.message
    assert statuses(result, "DP-SqsEncrypted", orders) == set()
    assert statuses(result, "DP-SqsTlsOnly", orders) == set()


def test_sqs_queue_deleted_between_listing_and_attributes(session, clients):
    urls = queues(session)
    other = session.client("sqs")
    before(clients("sqs", REGION), "GetQueueAttributes",
           lambda params: params["QueueUrl"] == urls["plain"] and other.delete_queue(QueueUrl=urls["plain"]))
    live = collect(clients, "sqs")
    assert sorted(r["Properties"]["QueueName"] for r in of_type(live, "AWS::SQS::Queue").values()) == ["orders", "public"]
    assert not live.gaps
