"""`cdk bootstrap` + `cdk deploy --all` of the baseline app (app.py, `-c environment=dev`) for
real, with the pinned CDK CLI, against moto's server on loopback; then boto3 reads back what the
deploy made. No AWS account, no internet, nothing downloaded at run time.

Select it alone with `-m deploy`; it runs by default. About 30 s (mostly `cdk synth` of the app).

How far moto 5.2.5 takes a CloudFormation deploy, per resource type of the baseline (each test
below says which it reads through the service API and which through the deployed template):

* created and readable through the service APIs: KMS keys and aliases (rotation, key policy),
  the VPC, subnets, route tables, VPC endpoints, flow log, security groups and their
  SecurityGroupIngress resources, log groups (retention), S3 buckets (encryption and tags only),
  the RDS instance, parameter group and subnet group, the SNS topic, the EventBridge rule and its
  target, IAM roles and policies, the Lambda function of CDK's custom resource provider.
* created, but some properties dropped by moto's CloudFormation (so read from the template):
  S3 buckets (versioning, Block Public Access, access logging, ownership, lifecycle), security
  groups (their egress rules: moto leaves the default allow-all egress), log groups (KmsKeyId),
  the RDS instance (DeletionProtection, EnableIAMDatabaseAuthentication, VPCSecurityGroups,
  ManageMasterUserPassword/MasterUserSecret, EnableCloudwatchLogsExports, CACertificateIdentifier).
* not modelled at all (moto skips them; see MOTO_SKIPS): S3 and SNS resource policies,
  SNS subscriptions, SQS queue policies, Lambda event-invoke configurations, CloudTrail,
  CloudWatch alarms, metric filters, GuardDuty, Cognito app clients, SecurityGroupEgress
  resources, CDK metadata. Tested through the deployed template.
* added by `deploy_support` to moto's CloudFormation: Cognito user pools (moto has the service,
  not the template type) and asymmetric KMS keys (moto made every key symmetric).
* `Custom::VpcRestrictDefaultSG`: moto invokes the provider's Lambda, which it can run only in
  Docker; the test then does that handler's work itself, see
  `deploy_support.CustomResourceProvider` for how and why that is honest.
* moto bugs that made the deploy (and the audit) fail are fixed in the server (`deploy_support.fix_moto`).
"""
from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest

from deploy_support import (ACCOUNT, CDK, REGION, ROOT, CustomResourceProvider, DeployedStack, MotoServer,
                            Resolver, app_stacks, aws_env, boto3_client_factory, cli_env, read_stacks, run_cdk,
                            tail)

pytestmark = pytest.mark.deploy

ENVIRONMENT = "dev"
RESPONSE_STACK = "Dpg-Dev-Response"
BOOTSTRAP_TIMEOUT = 300  # seconds; a bootstrap takes about 3 s here
DEPLOY_TIMEOUT = 900     # the whole app, synth included; about 25 s here
TOTAL_BUDGET = 1200

# Resource types moto's CloudFormation skips (it creates nothing and goes on), and the test that
# checks them through the deployed template instead. A type skipped but not listed here fails
# test_every_stack_is_complete: someone must decide how to test it.
MOTO_SKIPS = {
    "AWS::CDK::Metadata": "no AWS resource (CDK's version reporting)",
    "AWS::S3::BucketPolicy": "test_s3_buckets",
    "AWS::SNS::TopicPolicy": "test_audit_trail_alarms_and_guardduty",
    "AWS::SNS::Subscription": "test_audit_trail_alarms_and_guardduty",
    "AWS::CloudTrail::Trail": "test_audit_trail_alarms_and_guardduty",
    "AWS::Logs::MetricFilter": "test_audit_trail_alarms_and_guardduty",
    "AWS::CloudWatch::Alarm": "test_audit_trail_alarms_and_guardduty",
    "AWS::GuardDuty::Detector": "test_audit_trail_alarms_and_guardduty",
    "AWS::Cognito::UserPoolClient": "test_identity",
    "AWS::EC2::SecurityGroupEgress": "test_security_groups_admit_only_allow_listed_sources",
    "AWS::SQS::QueuePolicy": "test_response_functions_are_deployed_compliant",
    "AWS::Lambda::EventInvokeConfig": "test_response_functions_are_deployed_compliant",
}
OPEN = {"0.0.0.0/0", "::/0"}


@dataclass
class Deployment:
    clients: Callable[[str], Any]
    stacks: dict[str, DeployedStack]
    provider: CustomResourceProvider
    settings: dict
    resolve: Resolver
    endpoint: str
    home: Path
    seconds: dict[str, float] = field(default_factory=dict)

    def resources(self, resource_type: str) -> list[tuple[DeployedStack, str, dict]]:
        """(stack, logical id, template resource) of every resource of a type, in all stacks."""
        return [(stack, lid, resource) for stack in self.stacks.values()
                for lid, resource in stack.template_of_type(resource_type).items()]

    def key_arns(self) -> set[str]:
        return {self.resolve({"Fn::GetAtt": [lid, "Arn"]}, stack)
                for stack, lid, _ in self.resources("AWS::KMS::Key")}


def _report(request: pytest.FixtureRequest, line: str) -> None:
    """A line on the terminal past pytest's output capture (the timings of the deploy)."""
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is None:
        return
    if capture is None:
        reporter.write_line(line)
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line(line)


@pytest.fixture(scope="module")
def deployment(request: pytest.FixtureRequest):
    started = time.monotonic()
    missing = [str(p.relative_to(ROOT)) for p in (CDK, ROOT / ".venv" / "bin" / "node") if not p.exists()]
    if missing:
        pytest.fail(f"missing {', '.join(missing)}: `./dev setup` installs the CDK CLI (npm ci) and Node.js")
    settings = json.loads((ROOT / "cdk.json").read_text())["context"]["environments"][ENVIRONMENT]
    with tempfile.TemporaryDirectory(prefix="dpguard-deploy-") as tmp:
        work = Path(tmp)
        home = work / "home"
        home.mkdir()
        assembly = work / "cdk.out"  # the repository's own cdk.out stays untouched
        log = work / "cdk.log"
        with MotoServer(work / "moto.log") as moto:
            def failed(result) -> str:
                return f"{result.explain()}\n--- last lines of moto_server's log ---\n{tail(moto.log_text(), 30)}"

            env = cli_env(moto.endpoint, home)
            clients = boto3_client_factory(moto.endpoint)
            seconds = {"moto_server start": time.monotonic() - started}

            # No cdk.json in `home`: the CLI bootstraps the named environment without synthesizing.
            bootstrap = run_cdk(["bootstrap", f"aws://{ACCOUNT}/{REGION}", "--no-notices", "--ci"],
                                cwd=home, env=env, timeout=BOOTSTRAP_TIMEOUT, log_path=log)
            seconds["cdk bootstrap"] = bootstrap.seconds
            assert bootstrap.ok, failed(bootstrap)

            provider = CustomResourceProvider(clients, moto.endpoint)
            deploy = run_cdk(
                ["deploy", "--all", "-c", f"environment={ENVIRONMENT}", "--require-approval", "never",
                 # CreateStack, not a change set: moto waits for the custom resource's answer only
                 # on this path (its change-set path marks the stack complete without it).
                 "--method=direct",
                 "--progress", "events",  # provider.on_cli_line reads the stack activity lines
                 "--output", str(assembly), "--no-notices", "--ci"],
                cwd=ROOT, env=env, timeout=DEPLOY_TIMEOUT, log_path=log,
                on_line=provider.on_cli_line, watch=provider.watch)
            seconds["cdk deploy (synth included)"] = deploy.seconds
            assert deploy.ok, failed(deploy)

            stacks = read_stacks(clients, app_stacks(assembly))
            result = Deployment(clients, stacks, provider, settings, Resolver(clients, stacks), moto.endpoint,
                                home, seconds)
            yield result
        seconds["total"] = time.monotonic() - started
        _report(request, "\n[deploy] " + ", ".join(f"{k} {v:.1f}s" for k, v in seconds.items()))


# --- CloudFormation --------------------------------------------------------------------------

def test_every_stack_is_complete(deployment: Deployment):
    stacks = deployment.stacks  # every stack of the cloud assembly `cdk deploy --all` wrote
    assert stacks
    assert {name: s.status for name, s in stacks.items()} == {name: "CREATE_COMPLETE" for name in stacks}
    # What moto did not create is a type it does not model, and each such type is tested below.
    unplanned = {f"{s.name}/{lid}": kind for s in stacks.values() for lid, kind in s.skipped.items()
                 if kind not in MOTO_SKIPS}
    assert not unplanned, f"moto skipped these, and no test covers their type: {unplanned}"


def test_custom_resource_answered_only_after_the_handlers_work(deployment: Deployment):
    customs = [(s.name, lid) for s in deployment.stacks.values() for lid, r in s.template["Resources"].items()
               if r["Type"].startswith("Custom::")]
    assert customs, "the baseline restricts the default security group through a custom resource"
    answered = {(a.stack, a.logical_id): a for a in deployment.provider.answered}
    assert sorted(answered) == sorted(customs)
    for answer in answered.values():
        # moto really invoked the provider, and the invocation failed for want of Docker ...
        assert "error running docker" in answer.invocation_log
        # ... and CloudFormation finished the stack only after the answer (the CLI waited for it).
        stack = deployment.stacks[answer.stack]
        complete = [e["Timestamp"] for e in stack.events
                    if e["ResourceStatus"] == "CREATE_COMPLETE" and e["ResourceType"] == "AWS::CloudFormation::Stack"]
        assert complete and min(complete) >= answer.answered_at.replace(microsecond=0), (complete, answer.answered_at)


# --- Network (clause 1, 9) -------------------------------------------------------------------

def _vpcs(deployment: Deployment) -> list[tuple[DeployedStack, str]]:
    return [(s, s.physical_id(lid)) for s in deployment.stacks.values() for lid in s.of_type("AWS::EC2::VPC")]


def test_default_security_group_has_no_rules(deployment: Deployment):
    ec2 = deployment.clients("ec2")
    vpcs = _vpcs(deployment)
    assert vpcs
    for _, vpc in vpcs:
        default, = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc]},
                                                         {"Name": "group-name", "Values": ["default"]}])["SecurityGroups"]
        assert default["IpPermissions"] == [] and default["IpPermissionsEgress"] == [], default
        # Not vacuous: the group had moto's default allow-all egress until the handler's calls.
        served = [a.evidence for a in deployment.provider.answered if a.evidence["group"] == default["GroupId"]]
        assert served and served[0]["before"]["egress"], served


def test_vpc_spans_two_azs_with_isolated_subnets_only(deployment: Deployment):
    ec2 = deployment.clients("ec2")
    for stack, vpc in _vpcs(deployment):
        subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]
        made = {stack.physical_id(lid) for lid in stack.of_type("AWS::EC2::Subnet")}
        assert {s["SubnetId"] for s in subnets} == made
        groups: dict[str, set[str]] = {}
        for subnet in subnets:
            tags = {t["Key"]: t["Value"] for t in subnet.get("Tags", [])}
            assert tags.get("aws-cdk:subnet-type") == "Isolated", (subnet["SubnetId"], tags)
            assert subnet["MapPublicIpOnLaunch"] is False
            groups.setdefault(tags["aws-cdk:subnet-name"], set()).add(subnet["AvailabilityZone"])
        assert groups and all(len(azs) >= 2 for azs in groups.values()), groups
        # No way out of the AWS network: no internet or NAT gateway, no default route.
        assert ec2.describe_internet_gateways(
            Filters=[{"Name": "attachment.vpc-id", "Values": [vpc]}])["InternetGateways"] == []
        assert ec2.describe_nat_gateways(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["NatGateways"] == []
        for table in ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["RouteTables"]:
            assert not [r for r in table["Routes"] if r.get("DestinationCidrBlock") in OPEN
                        or r.get("DestinationIpv6CidrBlock") in OPEN], table


def test_vpc_endpoints_keep_aws_traffic_private(deployment: Deployment):
    ec2 = deployment.clients("ec2")
    for stack, vpc in _vpcs(deployment):
        endpoints = ec2.describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["VpcEndpoints"]
        assert len(endpoints) == len(stack.of_type("AWS::EC2::VPCEndpoint")) > 0
        services = {e["ServiceName"].rsplit(".", 1)[-1]: e for e in endpoints}
        assert services["s3"]["VpcEndpointType"] == "Gateway"
        interfaces = [e for e in endpoints if e["VpcEndpointType"] == "Interface"]
        assert interfaces
        for endpoint in interfaces:
            assert endpoint["PrivateDnsEnabled"] is True, endpoint["ServiceName"]
            assert endpoint["Groups"] and endpoint["SubnetIds"], endpoint["ServiceName"]


def _template_ingress(deployment: Deployment) -> dict[str, set[tuple]]:
    """Security group id -> ingress rules the templates ask for: inline and separate
    AWS::EC2::SecurityGroupIngress resources, sources resolved."""
    rules: dict[str, set[tuple]] = {}
    for stack, lid, resource in deployment.resources("AWS::EC2::SecurityGroup"):
        group = stack.physical_id(lid)
        rules.setdefault(group, set())
        for rule in resource["Properties"].get("SecurityGroupIngress", []):
            rules[group].add(_rule(rule, deployment, stack))
    for stack, lid, resource in deployment.resources("AWS::EC2::SecurityGroupIngress"):
        group = deployment.resolve(resource["Properties"]["GroupId"], stack)
        rules.setdefault(group, set()).add(_rule(resource["Properties"], deployment, stack))
    return rules


def _rule(rule: dict, deployment: Deployment, stack: DeployedStack) -> tuple:
    source = rule.get("CidrIp") or rule.get("CidrIpv6")
    if source is None:
        source = "sg:" + deployment.resolve(rule["SourceSecurityGroupId"], stack)
    return (str(rule["IpProtocol"]), rule.get("FromPort"), rule.get("ToPort"), source)


def _api_ingress(group: dict) -> set[tuple]:
    found = set()
    for p in group["IpPermissions"]:
        key = (p["IpProtocol"], p.get("FromPort"), p.get("ToPort"))
        found |= {(*key, r["CidrIp"]) for r in p.get("IpRanges", [])}
        found |= {(*key, r["CidrIpv6"]) for r in p.get("Ipv6Ranges", [])}
        found |= {(*key, "sg:" + r["GroupId"]) for r in p.get("UserIdGroupPairs", [])}
    return found


def test_security_groups_admit_only_allow_listed_sources(deployment: Deployment):
    ec2 = deployment.clients("ec2")
    wanted = _template_ingress(deployment)
    groups = {g["GroupId"]: g for g in ec2.describe_security_groups(GroupIds=sorted(wanted))["SecurityGroups"]}
    vpc_cidrs = {ec2.describe_vpcs(VpcIds=[vpc])["Vpcs"][0]["CidrBlock"] for _, vpc in _vpcs(deployment)}
    allowed = {ipaddress.ip_network(c) for c in [*deployment.settings["allowed_cidrs"], *vpc_cidrs]}
    for group_id, rules in wanted.items():
        live = _api_ingress(groups[group_id])
        # The deploy made exactly the rules the templates ask for ...
        assert live == rules, (groups[group_id]["GroupName"], live, rules)
        for *_, source in live:
            if source.startswith("sg:"):  # ... from groups of this app only ...
                assert source[3:] in wanted, (group_id, source)
            else:  # ... or from allow-listed networks (cdk.json) and the VPC itself.
                assert source not in OPEN
                assert any(ipaddress.ip_network(source).subnet_of(a) for a in allowed
                           if a.version == ipaddress.ip_network(source).version), (group_id, source)
    # Egress, from the templates: moto ignores SecurityGroupEgress (the property and the resource
    # type) and leaves every group its default allow-all egress, which the API would show.
    for stack, lid, resource in deployment.resources("AWS::EC2::SecurityGroup"):
        for rule in resource["Properties"].get("SecurityGroupEgress", []):
            assert not (str(rule["IpProtocol"]) == "-1" and (rule.get("CidrIp") in OPEN or rule.get("CidrIpv6") in OPEN)), \
                (stack.name, lid, rule)
    for stack, lid, resource in deployment.resources("AWS::EC2::SecurityGroupEgress"):
        props = resource["Properties"]
        assert "DestinationSecurityGroupId" in props or props.get("CidrIp") not in OPEN, (stack.name, lid, props)
        assert str(props["IpProtocol"]) != "-1", (stack.name, lid, props)


def test_flow_logs_go_to_an_encrypted_log_group_with_retention(deployment: Deployment):
    ec2 = deployment.clients("ec2")
    flow_logs = deployment.resources("AWS::EC2::FlowLog")
    assert len(flow_logs) == len(_vpcs(deployment)) > 0
    for stack, lid, resource in flow_logs:
        live, = ec2.describe_flow_logs(FlowLogIds=[stack.physical_id(lid)])["FlowLogs"]
        props = resource["Properties"]
        assert live["ResourceId"] == deployment.resolve(props["ResourceId"], stack)
        assert live["TrafficType"] == "ALL" and live["LogDestinationType"] == "cloud-watch-logs"
        assert live["LogGroupName"] == deployment.resolve(props["LogGroupName"], stack)
        groups = deployment.clients("logs").describe_log_groups(logGroupNamePrefix=live["LogGroupName"])["logGroups"]
        assert [g["logGroupName"] for g in groups] == [live["LogGroupName"]]


def test_log_groups_are_encrypted_and_kept(deployment: Deployment):
    logs = deployment.clients("logs")
    keys = deployment.key_arns()
    groups = deployment.resources("AWS::Logs::LogGroup")
    assert groups
    for stack, lid, resource in groups:
        name = stack.physical_id(lid)
        live, = [g for g in logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"] if g["logGroupName"] == name]
        assert live["retentionInDays"] == resource["Properties"]["RetentionInDays"] >= deployment.settings["retention_days"]
        # moto's CloudFormation drops KmsKeyId (the API shows none): read it from the template.
        assert deployment.resolve(resource["Properties"]["KmsKeyId"], stack) in keys, (stack.name, lid)


# --- Keys and data stores (clauses 1, 3, 6, 7, 9) --------------------------------------------

def test_kms_keys_rotate_and_have_no_open_policy(deployment: Deployment):
    kms = deployment.clients("kms")
    keys = deployment.resources("AWS::KMS::Key")
    assert keys
    for stack, lid, resource in keys:
        key_id = stack.physical_id(lid)
        meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
        assert meta["Enabled"] and meta["KeyManager"] == "CUSTOMER" and meta["KeyState"] == "Enabled"
        if resource["Properties"].get("KeySpec", "SYMMETRIC_DEFAULT") == "SYMMETRIC_DEFAULT":
            assert kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is True
        else:  # asymmetric keys cannot rotate: the confirmation-signing key only signs
            assert (meta["KeySpec"], meta["KeyUsage"]) == ("ECC_NIST_P256", "SIGN_VERIFY")
        policy = json.loads(kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"])
        for statement in policy["Statement"]:
            principal = statement.get("Principal")
            if statement["Effect"] == "Allow" and principal in ("*", {"AWS": "*"}):
                assert statement.get("Condition"), (stack.name, lid, statement)
        wanted_tags = {t["Key"]: t["Value"] for t in resource["Properties"].get("Tags", [])}
        live_tags = {t["TagKey"]: t["TagValue"] for t in kms.list_resource_tags(KeyId=key_id)["Tags"]}
        assert live_tags == wanted_tags
    aliases = {a["AliasName"]: a.get("TargetKeyId") for a in kms.list_aliases()["Aliases"]}
    for stack, lid, resource in deployment.resources("AWS::KMS::Alias"):
        target = resource["Properties"]["TargetKeyId"]
        assert aliases[resource["Properties"]["AliasName"]] == deployment.resolve(target, stack).rsplit("/", 1)[-1]


def test_s3_buckets(deployment: Deployment):
    s3 = deployment.clients("s3")
    keys = deployment.key_arns()
    buckets = deployment.resources("AWS::S3::Bucket")
    assert len(buckets) >= 2
    names = {stack.physical_id(lid) for stack, lid, _ in buckets}
    for stack, lid, resource in buckets:
        name, props = stack.physical_id(lid), resource["Properties"]
        # From S3: default encryption with the key the template names (moto models it) ...
        rule, = s3.get_bucket_encryption(Bucket=name)["ServerSideEncryptionConfiguration"]["Rules"]
        live = rule["ApplyServerSideEncryptionByDefault"]
        wanted = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
        assert live["SSEAlgorithm"] == wanted["SSEAlgorithm"]
        if wanted["SSEAlgorithm"] == "aws:kms":
            assert live["KMSMasterKeyID"] == deployment.resolve(wanted["KMSMasterKeyID"], stack) in keys
        else:  # S3 server access logs can be delivered only to SSE-S3 buckets
            assert wanted["SSEAlgorithm"] == "AES256" and _is_access_log_target(name, deployment, stack)
        # ... and tags: every data store carries its classification and owner (clause 6).
        tags = {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=name)["TagSet"]}
        assert tags == {t["Key"]: t["Value"] for t in props["Tags"]}
        assert tags["data-classification"] in {"internal", "confidential", "restricted"}
        assert tags["data-owner"] == deployment.settings["data_owner"]
        # From the template (moto's CloudFormation drops these properties):
        assert props["VersioningConfiguration"] == {"Status": "Enabled"}
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True}
        assert props["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
        # Deletion is real (clause 5): old versions expire.
        assert any("NoncurrentVersionExpiration" in r for r in props["LifecycleConfiguration"]["Rules"])
        if "LoggingConfiguration" in props:
            target = deployment.resolve(props["LoggingConfiguration"]["DestinationBucketName"], stack)
            assert target in names and target != name
        else:  # only the access-log buckets do not log themselves
            assert _is_access_log_target(name, deployment, stack), (stack.name, lid)
    # Bucket policies (moto skips the type): TLS only, on the bucket and on its objects.
    for stack, lid, resource in deployment.resources("AWS::S3::BucketPolicy"):
        bucket_lid = resource["Properties"]["Bucket"]["Ref"]
        statements = resource["Properties"]["PolicyDocument"]["Statement"]
        deny = [s for s in statements if s["Effect"] == "Deny"
                and s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"]
        assert deny, (stack.name, lid)
        arn = {"Fn::GetAtt": [bucket_lid, "Arn"]}
        assert {json.dumps(r, sort_keys=True) for r in deny[0]["Resource"]} == {
            json.dumps(arn, sort_keys=True), json.dumps({"Fn::Join": ["", [arn, "/*"]]}, sort_keys=True)}
        assert not [s for s in statements if s["Effect"] == "Allow" and s.get("Principal") in ("*", {"AWS": "*"})]
    covered = {(s.name, r["Properties"]["Bucket"]["Ref"]) for s, _, r in deployment.resources("AWS::S3::BucketPolicy")}
    assert covered == {(s.name, lid) for s, lid, _ in buckets}


def _is_access_log_target(name: str, deployment: Deployment, stack: DeployedStack) -> bool:
    return any(deployment.resolve(r["Properties"].get("LoggingConfiguration", {}).get("DestinationBucketName"), s) == name
               for s, _, r in deployment.resources("AWS::S3::Bucket") if "LoggingConfiguration" in r["Properties"])


def test_database_is_private_encrypted_and_tls_only(deployment: Deployment):
    rds = deployment.clients("rds")
    instances = deployment.resources("AWS::RDS::DBInstance")
    assert instances
    for stack, lid, resource in instances:
        props = resource["Properties"]
        live, = rds.describe_db_instances(DBInstanceIdentifier=stack.physical_id(lid))["DBInstances"]
        # From RDS (moto models these):
        assert live["StorageEncrypted"] is True
        assert live["KmsKeyId"] == deployment.resolve(props["KmsKeyId"], stack) in deployment.key_arns()
        assert live["PubliclyAccessible"] is False
        assert live["MultiAZ"] is True
        assert live["BackupRetentionPeriod"] >= 7
        subnets = {s["SubnetIdentifier"] for s in live["DBSubnetGroup"]["Subnets"]}
        isolated = deployment.clients("ec2").describe_subnets(SubnetIds=sorted(subnets))["Subnets"]
        assert len({s["AvailabilityZone"] for s in isolated}) >= 2
        assert all({"Key": "aws-cdk:subnet-type", "Value": "Isolated"} in s["Tags"] for s in isolated)
        group, = live["DBParameterGroups"]
        parameters = {p["ParameterName"]: p.get("ParameterValue") for p in
                      rds.describe_db_parameters(DBParameterGroupName=group["DBParameterGroupName"])["Parameters"]}
        assert parameters["rds.force_ssl"] == "1"
        tags = {t["Key"]: t["Value"] for t in live["TagList"]}
        assert tags["data-classification"] in {"confidential", "restricted"} and tags["data-owner"]
        # From the template: moto's CloudFormation ignores these properties (RDS reports
        # DeletionProtection False, IAM auth off, the default VPC's security group).
        assert props["DeletionProtection"] is True
        assert props["EnableIAMDatabaseAuthentication"] is True
        assert props.get("ManageMasterUserPassword") is True and "MasterUserPassword" not in props
        assert deployment.resolve(props["MasterUserSecret"]["KmsKeyId"], stack) in deployment.key_arns()
        assert props["EnableCloudwatchLogsExports"]
        groups = {deployment.resolve(g, stack) for g in props["VPCSecurityGroups"]}
        assert groups <= set(_template_ingress(deployment)), groups
    for stack, lid, resource in deployment.resources("AWS::RDS::DBParameterGroup"):
        assert resource["Properties"]["Parameters"]["rds.force_ssl"] in ("1", 1)


# --- Incident response, logging, identity (clauses 2, 4, 9) -----------------------------------

def test_audit_trail_alarms_and_guardduty(deployment: Deployment):
    sns, events = deployment.clients("sns"), deployment.clients("events")
    topics = deployment.resources("AWS::SNS::Topic")
    assert topics
    topic_arns = set()
    for stack, lid, resource in topics:
        arn = stack.physical_id(lid)
        topic_arns.add(arn)
        attributes = sns.get_topic_attributes(TopicArn=arn)["Attributes"]
        assert attributes["KmsMasterKeyId"] == deployment.resolve(resource["Properties"]["KmsMasterKeyId"], stack)
        assert attributes["KmsMasterKeyId"] in deployment.key_arns()
    # GuardDuty findings reach the alerts topic (EventBridge: moto models the rule and target).
    rules = deployment.resources("AWS::Events::Rule")
    guardduty_rules = [(s, lid) for s, lid, r in rules
                       if r["Properties"].get("EventPattern", {}).get("source") == ["aws.guardduty"]]
    assert guardduty_rules
    for stack, lid in guardduty_rules:
        rule = events.describe_rule(Name=stack.physical_id(lid))
        assert rule["State"] == "ENABLED" and json.loads(rule["EventPattern"])["source"] == ["aws.guardduty"]
        targets = {t["Arn"] for t in events.list_targets_by_rule(Rule=stack.physical_id(lid))["Targets"]}
        # The audit stack's rule pages the topic; the response stack's feeds the incident function.
        if stack.name == RESPONSE_STACK:
            assert [t for t in targets if ":function:" in t and "IncidentFunction" in t], targets
        else:
            assert targets & topic_arns
    assert {stack.name for stack, _ in guardduty_rules} == {"Dpg-Dev-Audit", RESPONSE_STACK}
    # From the templates (moto skips these types):
    detectors = deployment.resources("AWS::GuardDuty::Detector")
    assert detectors and all(r["Properties"]["Enable"] is True for _, _, r in detectors)
    trails = deployment.resources("AWS::CloudTrail::Trail")
    assert trails
    for stack, lid, resource in trails:
        props = resource["Properties"]
        assert props["IsMultiRegionTrail"] is True and props["EnableLogFileValidation"] is True
        assert props["IsLogging"] is True and props["IncludeGlobalServiceEvents"] is True
        assert deployment.resolve(props["KMSKeyId"], stack) in deployment.key_arns()
        assert deployment.resolve(props["CloudWatchLogsLogGroupArn"], stack).startswith("arn:aws:logs:")
        assert deployment.resolve(props["S3BucketName"], stack) in {s.physical_id(b) for s, b, _ in
                                                                     deployment.resources("AWS::S3::Bucket")}
    alarms = deployment.resources("AWS::CloudWatch::Alarm")
    filters = deployment.resources("AWS::Logs::MetricFilter")
    assert len(filters) >= 8
    metrics = {(t["MetricNamespace"], t["MetricName"]) for _, _, f in filters for t in f["Properties"]["MetricTransformations"]}
    alarmed = {(a["Properties"].get("Namespace"), a["Properties"].get("MetricName")) for _, _, a in alarms}
    assert metrics <= alarmed  # every CIS metric filter has an alarm
    for stack, lid, alarm in alarms:
        actions = [deployment.resolve(a, stack) for a in alarm["Properties"].get("AlarmActions", [])]
        assert actions and set(actions) <= topic_arns, (stack.name, lid)
    subscriptions = deployment.resources("AWS::SNS::Subscription")
    assert {r["Properties"]["Endpoint"] for _, _, r in subscriptions} == {deployment.settings["alert_email"]}
    for stack, lid, resource in deployment.resources("AWS::SNS::TopicPolicy"):
        statements = resource["Properties"]["PolicyDocument"]["Statement"]
        assert any(s["Effect"] == "Deny" and s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"
                   for s in statements), (stack.name, lid)


def test_identity(deployment: Deployment):
    """Cognito: moto's CloudFormation skips the client, and creates the pool only through the model
    deploy_support adds (with its naming properties alone), so this reads the deployed template."""
    pools = deployment.resources("AWS::Cognito::UserPool")
    assert pools
    for stack, lid, resource in pools:
        props = resource["Properties"]
        assert props["DeletionProtection"] == "ACTIVE"
        assert props["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True
        assert props["UserPoolAddOns"]["AdvancedSecurityMode"] == "ENFORCED"
        assert props["UserPoolTags"]["data-classification"] in {"confidential", "restricted"}
    clients = deployment.resources("AWS::Cognito::UserPoolClient")
    assert clients
    for stack, lid, resource in clients:
        props = resource["Properties"]
        assert props.get("GenerateSecret") is False
        flows = set(props.get("ExplicitAuthFlows", []))
        assert not flows & {"ALLOW_USER_PASSWORD_AUTH", "ALLOW_ADMIN_USER_PASSWORD_AUTH",
                            "USER_PASSWORD_AUTH", "ADMIN_NO_SRP_AUTH"}, (stack.name, lid, flows)


def test_deploy_fits_its_time_budget(deployment: Deployment):
    spent = sum(deployment.seconds.values())
    assert spent < TOTAL_BUDGET, deployment.seconds


# --- dpguard audit of what was deployed, then of drift ------------------------------------------

def run_audit(deployment: Deployment, name: str) -> tuple[int, dict]:
    """`dpguard audit` as a user runs it, against the moto endpoint; (exit code, JSON report)."""
    output = deployment.home / f"{name}.json"
    result = subprocess.run([str(ROOT / ".venv" / "bin" / "dpguard"), "audit", "--endpoint-url", deployment.endpoint,
                             "--region", REGION, "--format", "json", "--output", str(output)],
                            env={**aws_env(deployment.endpoint, deployment.home), "PATH": os.environ["PATH"]},
                            capture_output=True, text=True, timeout=300)
    assert result.returncode in (0, 1, 3), result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, json.loads(output.read_text())


def failing(report: dict) -> set[tuple[str, str]]:
    return {(f["rule_id"], f["arn"] or f["logical_id"]) for f in report["findings"]
            if f["status"] in ("violation", "unverifiable") and f["severity"] == "error"}


def test_audit_then_drift_reports_exactly_the_drift(deployment: Deployment):
    """The issue's drift test. moto's CloudFormation leaves out what it does not model (see
    MOTO_SKIPS), so the first audit is not clean on those; what the test asserts is that the
    second audit adds exactly the injected drift, each under the rule and clause the
    synth-time engine uses, and nothing else changes."""
    trail = _start_trail(deployment)
    code, before = run_audit(deployment, "before")
    assert before["summary"]["resources"] > 0
    gaps = [f["message"] for f in before["findings"] if f["rule_id"] == "DP-AuditComplete"]
    assert not gaps, gaps
    # The acknowledgment made at synth (dpguard.acknowledge) follows the bucket into the audit.
    acknowledged = {(f["rule_id"], f["arn"]) for f in before["findings"] if f["status"] == "acknowledged"}
    access_logs = next(stack.physical_id(lid) for stack, lid, r in deployment.resources("AWS::S3::Bucket")
                       if "DP-ConfidentialDataCmk" in json.dumps(r.get("Metadata", {})))
    assert ("DP-ConfidentialDataCmk", f"arn:aws:s3:::{access_logs}") in acknowledged
    clients = deployment.clients
    data_bucket = next(stack.physical_id(lid) for stack, lid, r in deployment.resources("AWS::S3::Bucket")
                       if "KMSMasterKeyID" in json.dumps(r["Properties"].get("BucketEncryption", {}))
                       and "UserData" in lid)
    app_group = next(stack.physical_id(lid) for stack, lid, r in deployment.resources("AWS::EC2::SecurityGroup")
                     if "AppSecurityGroup" in lid)
    data_key = next(stack.physical_id(lid) for stack, lid, _ in deployment.resources("AWS::KMS::Key")
                    if lid.startswith("DataKey"))
    clients("s3").delete_bucket_encryption(Bucket=data_bucket)
    clients("ec2").authorize_security_group_ingress(GroupId=app_group, IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    clients("kms").disable_key_rotation(KeyId=data_key)
    clients("iam").create_user(UserName="drift-operator")
    clients("iam").create_access_key(UserName="drift-operator")
    clients("cloudtrail").stop_logging(Name=trail)
    code, after = run_audit(deployment, "after")
    assert code == 1

    added = failing(after) - failing(before)
    by_rule = {rule for rule, _ in added}
    account = ACCOUNT
    expected = {
        ("DP-S3Encryption", f"arn:aws:s3:::{data_bucket}"),
        ("DP-SgOpenIngress", f"arn:aws:ec2:{REGION}:{account}:security-group/{app_group}"),
        ("DP-KmsKeyRotation", f"arn:aws:kms:{REGION}:{account}:key/{data_key}"),
        ("DP-IamNoUsers", f"arn:aws:iam::{account}:user/drift-operator"),
        ("DP-CloudTrailLogging", f"arn:aws:cloudtrail:{REGION}:{account}:trail/{trail}"),
    }
    missing = {e for e in expected if e not in added and e[0] not in by_rule}
    assert not missing, f"drift not found: {missing}; added: {sorted(added)}"
    # Nothing but the drift: every new failing finding is one of the drifted resources.
    drifted = {arn for _, arn in expected} | {f["arn"] for f in after["findings"] if "drift-operator" in (f["arn"] or "")}
    assert {arn for _, arn in added} <= drifted, sorted(added)
    assert not failing(before) - failing(after), "the drift made an earlier finding disappear"
    clauses = {f["rule_id"]: f["clause"] for f in after["findings"]}
    assert clauses["DP-S3Encryption"] == 7 and clauses["DP-SgOpenIngress"] == 1 and clauses["DP-KmsKeyRotation"] == 7
    assert clauses["DP-IamNoUsers"] == 2 and clauses["DP-CloudTrailLogging"] == 9


def _start_trail(deployment: Deployment) -> str:
    """moto's CloudFormation does not model CloudTrail: create the baseline's trail through the
    CloudTrail API from the deployed template's properties, as CloudFormation would, so that
    stopping it is drift the audit must see."""
    stack, lid, resource = deployment.resources("AWS::CloudTrail::Trail")[0]
    props = resource["Properties"]
    name = props.get("TrailName") or lid
    cloudtrail = deployment.clients("cloudtrail")
    cloudtrail.create_trail(Name=name, S3BucketName=deployment.resolve(props["S3BucketName"], stack),
                            IsMultiRegionTrail=props["IsMultiRegionTrail"],
                            EnableLogFileValidation=props["EnableLogFileValidation"],
                            IncludeGlobalServiceEvents=props["IncludeGlobalServiceEvents"],
                            KmsKeyId=deployment.resolve(props["KMSKeyId"], stack),
                            CloudWatchLogsLogGroupArn=deployment.resolve(props["CloudWatchLogsLogGroupArn"], stack),
                            CloudWatchLogsRoleArn=deployment.resolve(props["CloudWatchLogsRoleArn"], stack))
    cloudtrail.start_logging(Name=name)
    return name


# --- the response functions, as deployed ---------------------------------------------------------
# moto creates the functions but cannot run them (no Docker). Each test runs a function's handler
# the way Lambda would: the code from the deployed asset (the zip `cdk deploy` uploaded), the
# environment of the deployed function's configuration, against the deployed tables, buckets,
# keys, pool and topic. What these tests show is that the deployed pieces fit together.

RUN_HANDLER = ("import importlib, json, sys; module, name = sys.argv[1].rsplit('.', 1); "
               "m = importlib.import_module(module); result = getattr(m, name)(json.load(sys.stdin), None); "
               "print(json.dumps({'file': m.__file__, 'result': result}, default=str))")


@dataclass
class DeployedFunction:
    name: str
    config: dict  # GetFunctionConfiguration
    code: Path    # the deployed asset, unzipped

    @property
    def env(self) -> dict[str, str]:
        return self.config["Environment"]["Variables"]


@pytest.fixture(scope="module")
def functions(deployment: Deployment, tmp_path_factory) -> dict[str, DeployedFunction]:
    import zipfile

    stack = deployment.stacks[RESPONSE_STACK]
    found = {}
    for lid, resource in stack.template_of_type("AWS::Lambda::Function").items():
        code = resource["Properties"]["Code"]
        bucket = code["S3Bucket"]["Fn::Sub"].replace("${AWS::AccountId}", ACCOUNT).replace("${AWS::Region}", REGION)
        folder = tmp_path_factory.mktemp(lid)
        archive = folder / "code.zip"
        deployment.clients("s3").download_file(bucket, code["S3Key"], str(archive))
        with zipfile.ZipFile(archive) as z:
            z.extractall(folder / "code")
        name = stack.physical_id(lid)
        found[lid] = DeployedFunction(name, deployment.clients("lambda").get_function_configuration(FunctionName=name),
                                      folder / "code")
    return found


def function_of(functions: dict[str, DeployedFunction], construct_id: str) -> DeployedFunction:
    [found] = [f for lid, f in functions.items() if lid.startswith(construct_id)]
    return found


def invoke(deployment: Deployment, function: DeployedFunction, event: Any) -> dict:
    """The handler, from the deployed code, with the deployed environment; its JSON result."""
    env = {**aws_env(deployment.endpoint, deployment.home), **function.env, "PYTHONPATH": str(function.code),
           "PATH": os.environ["PATH"], "AWS_LAMBDA_FUNCTION_NAME": function.name}
    result = subprocess.run([str(ROOT / ".venv" / "bin" / "python"), "-c", RUN_HANDLER, function.config["Handler"]],
                            input=json.dumps(event), env=env, cwd=function.code, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert Path(answer["file"]).is_relative_to(function.code)  # the deployed code ran, not the checkout
    return answer["result"]


def alerts_queue(deployment: Deployment, topic_arn: str, name: str) -> Callable[[], list[dict]]:
    """Subscribe a queue to the alerts topic; the returned function drains what reached it."""
    sqs = deployment.clients("sqs")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    deployment.clients("sns").subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn,
                                        Attributes={"RawMessageDelivery": "true"})

    def drain() -> list[dict]:
        messages = []
        while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                           MessageAttributeNames=["All"]).get("Messages", []):
            for m in batch:
                messages.append({"body": json.loads(m["Body"]),
                                 "attributes": {k: v["StringValue"] for k, v in m.get("MessageAttributes", {}).items()}})
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        return messages
    return drain


def test_response_functions_are_deployed_compliant(deployment: Deployment, functions):
    assert {lid.split("Function")[0] for lid in functions} == {"Incident", "Escalation", "DataRequest", "SecretExposure"}
    for function in functions.values():
        assert function.config["Runtime"] == "python3.14"
        assert function.config["Handler"].startswith("dpguard.response.")
        assert (function.code / "dpguard" / "response" / "common.py").is_file()
        assert not list(function.code.rglob("*_cli.py"))
    stack = deployment.stacks[RESPONSE_STACK]
    # moto skips these two types: read from the deployed template.
    for config in stack.template_of_type("AWS::Lambda::EventInvokeConfig").values():
        assert config["Properties"]["MaximumRetryAttempts"] == 2
    policies = stack.template_of_type("AWS::SQS::QueuePolicy").values()
    assert len(policies) == 4
    for policy in policies:
        [deny] = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
        assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_deployed_incident_function_records_announces_and_escalates(deployment: Deployment, functions):
    import datetime as dt

    incident_fn, escalation_fn = function_of(functions, "IncidentFunction"), function_of(functions, "EscalationFunction")
    drain = alerts_queue(deployment, incident_fn.env["ALERTS_TOPIC_ARN"], "incident-alerts")
    event = json.loads((ROOT / "tests" / "data" / "response" / "guardduty-credential-exfiltration.json").read_text())
    first_seen = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) - dt.timedelta(hours=60)
    event["detail"]["service"]["eventFirstSeen"] = first_seen.strftime("%Y-%m-%dT%H:%M:%S.000Z")

    summary = invoke(deployment, incident_fn, event)
    assert summary["errors"] in (0, []) and summary["created"] not in (0, [])
    assert invoke(deployment, incident_fn, event)["duplicates"] not in (0, [])  # EventBridge may deliver twice

    table = deployment.clients("dynamodb")
    [item] = [i for i in table.scan(TableName=incident_fn.env["INCIDENT_TABLE"])["Items"] if i["kind"]["S"] == "incident"]
    parties = {name: p["M"]["deadline"]["S"] for name, p in item["parties"]["M"].items()}
    assert parties["amazon"] == (first_seen + dt.timedelta(hours=24)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert parties["customer"] == (first_seen + dt.timedelta(hours=72)).strftime("%Y-%m-%dT%H:%M:%SZ")
    [announced] = drain()
    assert announced["attributes"]["kind"] == "incident" and announced["body"]["id"] == item["id"]["S"]

    # Amazon's 24 hours have passed, the customer's 72 end in 12: the schedule escalates both.
    assert invoke(deployment, escalation_fn, {"source": "aws.events"})["escalated"] not in (0, [])
    escalations = drain()
    assert escalations and {m["attributes"]["kind"] for m in escalations} == {"escalation"}
    text = json.dumps([m["body"] for m in escalations])
    assert "amazon" in text and "overdue" in text.lower()
    assert invoke(deployment, escalation_fn, {"source": "aws.events"})["escalated"] in (0, [])  # once each
    assert drain() == []

    # The runbook's command, against the deployed table.
    ack = subprocess.run([str(ROOT / ".venv" / "bin" / "dpguard"), "incident", "ack", item["id"]["S"], "--by", "on-call",
                          "--table", incident_fn.env["INCIDENT_TABLE"], "--endpoint-url", deployment.endpoint,
                          "--region", REGION],
                         env={**aws_env(deployment.endpoint, deployment.home), "PATH": os.environ["PATH"]},
                         capture_output=True, text=True, timeout=120)
    assert ack.returncode == 0, ack.stderr
    acknowledged = table.get_item(TableName=incident_fn.env["INCIDENT_TABLE"], Key={"id": item["id"]})["Item"]
    assert acknowledged["acknowledged_by"]["S"] == "on-call"


def test_deployed_data_request_function_deletes_everywhere_and_signs(deployment: Deployment, functions):
    fn = function_of(functions, "DataRequestFunction")
    cognito, s3, dynamodb = (deployment.clients(n) for n in ("cognito-idp", "s3", "dynamodb"))
    pool = fn.env["USER_POOL_ID"]
    user = cognito.admin_create_user(UserPoolId=pool, Username="ada@example.com",
                                     UserAttributes=[{"Name": "email", "Value": "ada@example.com"}])["User"]
    sub = next(a["Value"] for a in user["Attributes"] if a["Name"] == "sub")
    [bucket] = [b["bucket"] for b in json.loads(fn.env["DATA_BUCKETS"])]
    for body in (b"v1", b"v2", b"v3"):
        s3.put_object(Bucket=bucket, Key=f"users/{sub}/profile.json", Body=body)
    s3.delete_object(Bucket=bucket, Key=f"users/{sub}/profile.json")  # a delete marker is data too
    s3.put_object(Bucket=bucket, Key=f"users/{sub}/notes.txt", Body=b"notes")
    s3.put_object(Bucket=bucket, Key="users/someone-else/notes.txt", Body=b"theirs")
    [table] = json.loads(fn.env["USER_TABLES"])
    dynamodb.put_item(TableName=table["table"], Item={"user_id": {"S": sub}, "item": {"S": "profile"}})
    dynamodb.put_item(TableName=table["table"], Item={"user_id": {"S": "someone-else"}, "item": {"S": "profile"}})

    request = {"request_id": "REQ-deploy-1", "user_id": sub, "type": "return", "requested_by": "ticket 42"}
    answer = invoke(deployment, fn, request)
    assert answer["status"] == "completed", answer
    # The export, through its presigned URL (HTTPS in AWS; moto's endpoint here is loopback HTTP).
    import io
    import urllib.request
    import zipfile

    assert "X-Amz-Signature=" in answer["export_url"] and "X-Amz-Expires=" in answer["export_url"]
    fetched = urllib.request.build_opener(urllib.request.ProxyHandler({})).open(answer["export_url"], timeout=30).read()
    with zipfile.ZipFile(io.BytesIO(fetched)) as archive:
        assert archive.read(f"s3/{bucket}/users/{sub}/notes.txt") == b"notes"
        assert "profile" in archive.read(f"dynamodb/{table['table']}.json").decode()
    listed = s3.list_object_versions(Bucket=bucket, Prefix=f"users/{sub}/")
    assert not listed.get("Versions") and not listed.get("DeleteMarkers")
    assert s3.list_object_versions(Bucket=bucket, Prefix="users/someone-else/")["Versions"]
    items = dynamodb.scan(TableName=table["table"])["Items"]
    assert [i["user_id"]["S"] for i in items] == ["someone-else"]
    assert cognito.list_users(UserPoolId=pool, Filter=f'sub = "{sub}"')["Users"] == []

    signed = answer["confirmation"]
    assert signed["document"]["request_id"] == "REQ-deploy-1" and signed["document"]["met_deadline"] is True
    stored = json.loads(s3.get_object(Bucket=fn.env["RECORDS_BUCKET"],
                                      Key="confirmations/REQ-deploy-1.json")["Body"].read())
    assert stored == signed
    # An auditor's check, with the deployed signing key; one edited byte fails it.
    signed_file, edited_file = deployment.home / "REQ-deploy-1.json", deployment.home / "edited.json"
    signed_file.write_text(json.dumps(stored))
    edited_file.write_text(json.dumps({**stored, "document": {**stored["document"], "user_id": "someone-else"}}))

    def verify(path: Path) -> int:
        return subprocess.run([str(ROOT / ".venv" / "bin" / "dpguard"), "data-request", "verify", str(path),
                               "--key-id", fn.env["SIGNING_KEY_ID"], "--endpoint-url", deployment.endpoint,
                               "--region", REGION],
                              env={**aws_env(deployment.endpoint, deployment.home), "PATH": os.environ["PATH"]},
                              capture_output=True, text=True, timeout=120).returncode

    assert (verify(signed_file), verify(edited_file)) == (0, 1)

    again = invoke(deployment, fn, request)  # a retried request: same confirmation, nothing re-counted
    assert again["status"] == "completed" and again["confirmation"] == signed


def test_deployed_secret_function_and_command_regenerate_revoke_and_tell_the_owner(deployment: Deployment, functions):
    fn = function_of(functions, "SecretExposureFunction")
    secrets, dynamodb = deployment.clients("secretsmanager"), deployment.clients("dynamodb")
    drain = alerts_queue(deployment, fn.env["ALERTS_TOPIC_ARN"], "secret-alerts")
    exposed_value = "exposed-token-0123456789"
    for name in ("dpg-dev/partner-api-token", "dpg-dev/webhook-token"):
        secrets.create_secret(Name=name, SecretString=exposed_value,
                              Tags=[{"Key": "data-owner", "Value": "payments-team"}])

    def handled(name: str, result: dict) -> None:
        assert result["outcome"] == "regenerated and revoked" and result["complete"] is True, result
        assert secrets.get_secret_value(SecretId=name)["SecretString"] != exposed_value
        versions = secrets.list_secret_version_ids(SecretId=name)["Versions"]
        assert [v for v in versions if v["VersionId"] == result["exposed_version"]][0].get("VersionStages", []) == []
        incident = dynamodb.get_item(TableName=fn.env["INCIDENT_TABLE"], Key={"id": {"S": result["incident_id"]}})["Item"]
        assert incident["source"]["S"] == "secret-exposure" and incident["type"]["S"] == "credential-compromise"

    # The function, as automation invokes it.
    result = invoke(deployment, fn, {"secret_id": "dpg-dev/partner-api-token", "reason": "found in a public gist",
                                     "reported_by": "secret-scanner"})
    handled("dpg-dev/partner-api-token", result)
    # The command, as an operator runs it, with the deployed table and topic.
    command = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "dpguard"), "secret-exposed", "dpg-dev/webhook-token", "--reason", "pasted in chat",
         "--incident-table", fn.env["INCIDENT_TABLE"], "--alerts-topic", fn.env["ALERTS_TOPIC_ARN"],
         "--endpoint-url", deployment.endpoint, "--region", REGION, "--format", "json"],
        env={**aws_env(deployment.endpoint, deployment.home), "PATH": os.environ["PATH"]},
        capture_output=True, text=True, timeout=120)
    assert command.returncode == 0, command.stderr
    handled("dpg-dev/webhook-token", json.loads(command.stdout))

    messages = drain()
    owners = [m for m in messages if m["attributes"].get("kind") == "secret-exposure"]
    assert len(owners) == 2 and {m["attributes"]["owner"] for m in owners} == {"payments-team"}
    assert exposed_value not in json.dumps(messages) + command.stdout + json.dumps(result)
