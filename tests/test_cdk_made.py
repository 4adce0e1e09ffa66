"""Resources CDK makes itself (issue 13, item 4): a finding on one names the CDK option that
removes it, or the acknowledgment to write; applying what the fix says really removes the finding;
and an acknowledgment on a whole stack is one row in the table, the Markdown comment and the
auditor report, while JSON keeps one finding per resource.

Every app is synthesized in-process with aws-cdk-lib (as `cdk synth` runs it)."""
from __future__ import annotations

import json
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3_deployment
from aws_cdk import aws_s3_notifications as s3n
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import custom_resources as cr

import dpguard
from dpguard.engine import Config, evaluate, load
from dpguard.engine.cdk_made import made_by_cdk
from dpguard.engine.findings import ACKNOWLEDGED
from dpguard.engine.loader import load_stack_templates
from dpguard.output import render_scan
from dpguard.report import build
from dpguard.rules import catalogue

NOTIFICATIONS = "BucketNotificationsHandler050a0587b7544547bf325f094a3db834"
REASON = "Functions of the nightly batch log to the central account's log archive (OPS-118)"


def function(scope, construct_id: str, **options) -> lambda_.Function:
    return lambda_.Function(scope, construct_id, runtime=lambda_.Runtime.PYTHON_3_12, handler="index.handler",
                            code=lambda_.Code.from_inline("def handler(event, context):\n    return None\n"),
                            **options)


def site(tmp_path: Path) -> str:
    folder = tmp_path / "site"
    folder.mkdir(exist_ok=True)
    (folder / "index.html").write_text("<p>hello</p>\n")
    return str(folder)


def as_written(stack: cdk.Stack, assets: str) -> None:
    """An app as one writes it from CDK's documentation: each option makes CDK add resources of
    its own (a log-retention function, a notification handler, providers, a bastion policy)."""
    bucket = s3.Bucket(stack, "Uploads", auto_delete_objects=True, removal_policy=cdk.RemovalPolicy.DESTROY)
    bucket.add_event_notification(s3.EventType.OBJECT_CREATED, s3n.SqsDestination(sqs.Queue(stack, "Events")))
    function(stack, "Worker", log_retention=logs.RetentionDays.ONE_YEAR)
    s3_deployment.BucketDeployment(stack, "Site", sources=[s3_deployment.Source.asset(assets)],
                                   destination_bucket=bucket)
    cr.AwsCustomResource(stack, "Tagging", on_create=cr.AwsSdkCall(
        service="S3", action="putBucketTagging", physical_resource_id=cr.PhysicalResourceId.of("tags"),
        parameters={"Bucket": bucket.bucket_name, "Tagging": {"TagSet": [{"Key": "k", "Value": "v"}]}}),
        policy=cr.AwsCustomResourcePolicy.from_sdk_calls(resources=cr.AwsCustomResourcePolicy.ANY_RESOURCE))
    handler = function(stack, "OnEvent")
    provider = cr.Provider(stack, "Provider", on_event_handler=handler, is_complete_handler=handler)
    cdk.CustomResource(stack, "Thing", service_token=provider.service_token)
    vpc = ec2.Vpc(stack, "Vpc", max_azs=2, nat_gateways=0, restrict_default_security_group=True,
                  subnet_configuration=[ec2.SubnetConfiguration(name="data", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)])
    ec2.BastionHostLinux(stack, "Bastion", vpc=vpc)
    dynamodb.Table(stack, "Orders", partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
                   replication_regions=["us-east-1"])


def as_the_fixes_say(stack: cdk.Stack, assets: str) -> None:
    """The same app with what dpguard's fixes say: the CDK options, or the acknowledgments."""
    key = kms.Key(stack, "Key", enable_key_rotation=True)
    key.grant_encrypt_decrypt(iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com"))

    def log_group(construct_id: str) -> logs.LogGroup:
        return logs.LogGroup(stack, construct_id, encryption_key=key, retention=logs.RetentionDays.ONE_YEAR)

    bucket = s3.Bucket(stack, "Uploads", auto_delete_objects=False)
    bucket.add_event_notification(s3.EventType.OBJECT_CREATED, s3n.SqsDestination(sqs.Queue(stack, "Events")))
    handler = stack.node.find_child(NOTIFICATIONS).node.find_child("Resource")
    handler.add_property_override("LoggingConfig.LogGroup", log_group("NotificationLogs").log_group_name)
    function(stack, "Worker", log_group=log_group("WorkerLogs"))
    s3_deployment.BucketDeployment(stack, "Site", sources=[s3_deployment.Source.asset(assets)],
                                   destination_bucket=bucket, log_group=log_group("DeployLogs"))
    cr.AwsCustomResource(stack, "Tagging", on_create=cr.AwsSdkCall(
        service="S3", action="putBucketTagging", physical_resource_id=cr.PhysicalResourceId.of("tags"),
        parameters={"Bucket": bucket.bucket_name, "Tagging": {"TagSet": [{"Key": "k", "Value": "v"}]}}),
        policy=cr.AwsCustomResourcePolicy.from_sdk_calls(resources=[bucket.bucket_arn]),
        log_group=log_group("SdkCallLogs"))
    on_event = function(stack, "OnEvent", log_group=log_group("OnEventLogs"))
    provider = cr.Provider(stack, "Provider", on_event_handler=on_event, is_complete_handler=on_event,
                           log_group=log_group("ProviderLogs"), disable_waiter_state_machine_logging=False,
                           waiter_state_machine_log_options=cr.LogOptions(destination=log_group("WaiterLogs"),
                                                                          level=sfn.LogLevel.ALL))
    cdk.CustomResource(stack, "Thing", service_token=provider.service_token)
    dpguard.acknowledge(provider.node.find_child("waiter-state-machine"), "DP-IamNoWildcardResourceWrite",
                        "the waiter of CDK's custom-resource provider framework, whose log delivery needs these "
                        "actions on every resource")
    vpc = ec2.Vpc(stack, "Vpc", max_azs=2, nat_gateways=0, restrict_default_security_group=True,
                  subnet_configuration=[ec2.SubnetConfiguration(name="data", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)])
    dpguard.acknowledge(stack.node.find_child("Custom::VpcRestrictDefaultSGCustomResourceProvider"),
                        "DP-LambdaLogGroup", "CDK's function that removes the default security group's rules, "
                                             "which DP-VpcDefaultSgRestricted requires")
    bastion = ec2.BastionHostLinux(stack, "Bastion", vpc=vpc)
    for rule_id in ("DP-IamNoWildcardAction", "DP-IamNoWildcardResourceWrite"):
        dpguard.acknowledge(bastion, rule_id, "Session Manager access of the bastion host, as CDK's "
                                              "BastionHostLinux grants it")
    dynamodb.TableV2(stack, "Orders", partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
                     replicas=[dynamodb.ReplicaTableProps(region="us-east-1")])


def stack_acknowledged(stack: cdk.Stack) -> None:
    """Four functions without a log group of their own, acknowledged once for the whole stack."""
    for name in ("Extract", "Transform", "Load", "Report"):
        function(stack, name)
    dpguard.acknowledge(stack, "DP-LambdaLogGroup", REASON, expires="2099-12-31")


@pytest.fixture(scope="module")
def assembly(tmp_path_factory) -> Path:
    """One synth for every test: the stacks `Written`, `Fixed` and `Batch`."""
    tmp_path = tmp_path_factory.mktemp("cdk-made")
    app = cdk.App(outdir=str(tmp_path / "cdk.out"))
    env = cdk.Environment(account="111122223333", region="eu-west-1")
    as_written(cdk.Stack(app, "Written", env=env), site(tmp_path))
    as_the_fixes_say(cdk.Stack(app, "Fixed", env=env), site(tmp_path))
    stack_acknowledged(cdk.Stack(app, "Batch", env=env))
    dpguard.enforce(app, packs=["AwsSolutions"])
    try:
        app.synth()
    except RuntimeError as e:  # the Written stack fails the policy, as it should
        assert "ValidationFailed" in str(e), e
    return Path(app.outdir)


@pytest.fixture(scope="module")
def report(assembly):
    app, errors = load([str(assembly)])
    assert not errors
    return evaluate(app, Config(), catalogue())


def findings_in(report, stack: str, **where):
    return [f for f in report.findings if (f.stack == stack or f.stack.startswith(f"{stack}/"))
            and all(getattr(f, k) == v for k, v in where.items())]


def on(report, stack: str, rule_id: str, path_part: str):
    found = [f for f in findings_in(report, stack, rule_id=rule_id) if path_part in (f.construct_path or "")]
    assert found, f"no {rule_id} finding on {path_part} in {stack}"
    return found


@pytest.mark.parametrize("rule_id,path_part,option", [
    ("DP-LambdaLogGroup", "/LogRetentionaae0aa3c5b4d4f87b02d85b201efdd8a/", "instead of `log_retention=`"),
    ("DP-IamNoWildcardResourceWrite", "/LogRetentionaae0aa3c5b4d4f87b02d85b201efdd8a/ServiceRole/",
     "instead of `log_retention=`"),
    ("DP-LambdaLogGroup", "/Custom::S3AutoDeleteObjectsCustomResourceProvider/", "auto_delete_objects=False"),
    ("DP-LambdaLogGroup", "/Custom::CDKBucketDeployment", "BucketDeployment(..., log_group=logs.LogGroup("),
    ("DP-LambdaLogGroup", "/AWS679f53fac002430cb0da5b7982bd2287/", "AwsCustomResource(..., log_group="),
    ("DP-IamNoWildcardResourceWrite", "/Tagging/CustomResourcePolicy/",
     "AwsCustomResourcePolicy.from_sdk_calls(resources=[the ARNs the calls act on]) instead of "
     "AwsCustomResourcePolicy.ANY_RESOURCE"),
    ("DP-LambdaLogGroup", "/Provider/framework-onEvent/", "cr.Provider(..., log_group=logs.LogGroup("),
    ("DP-StepFunctionsLogging", "/Provider/waiter-state-machine/",
     "disable_waiter_state_machine_logging=False, waiter_state_machine_log_options=cr.LogOptions("),
    ("DP-LambdaLogGroup", "/@aws-cdk--aws-dynamodb.ReplicaProvider/", "dynamodb.TableV2(..., replicas="),
])
def test_the_fix_names_the_cdk_option_that_removes_the_finding(report, rule_id, path_part, option):
    for f in on(report, "Written", rule_id, path_part):
        assert f.remediation.startswith("CDK made this resource itself: ")
        assert option in f.remediation


@pytest.mark.parametrize("rule_id,path_part,acknowledgment", [
    ("DP-LambdaLogGroup", f"/{NOTIFICATIONS}/",
     f'dpguard.acknowledge(stack.node.find_child("{NOTIFICATIONS}"), "DP-LambdaLogGroup", '),
    ("DP-LambdaLogGroup", "/Custom::VpcRestrictDefaultSGCustomResourceProvider/",
     'dpguard.acknowledge(stack.node.find_child("Custom::VpcRestrictDefaultSGCustomResourceProvider"), '
     '"DP-LambdaLogGroup", '),
    ("DP-IamNoWildcardAction", "/Bastion/Resource/InstanceRole/DefaultPolicy/",
     'dpguard.acknowledge(bastion, "DP-IamNoWildcardAction", '),
])
def test_where_cdk_has_no_option_the_fix_is_the_acknowledgment_to_write(report, rule_id, path_part, acknowledgment):
    for f in on(report, "Written", rule_id, path_part):
        assert acknowledgment in f.remediation


def test_the_apps_own_resources_keep_the_rules_fix(report):
    rules = {r.rule_id: r for r in catalogue()}
    own = on(report, "Written", "DP-LambdaLogGroup", "/OnEvent/Resource")
    assert [f.remediation for f in own] == [rules["DP-LambdaLogGroup"].remediation]
    # an ec2.Instance's policy has the bastion's path shape but not CDK's Session Manager statement
    assert made_by_cdk("App/Host/Resource/InstanceRole/DefaultPolicy/Resource", "HostInstanceRoleDefaultPolicyA1B2C3D4",
                       {"PolicyDocument": {"Statement": [{"Action": "s3:*", "Resource": "*"}]}}) is None


def test_doing_what_the_fixes_say_leaves_no_finding_on_what_cdk_made(report):
    written = [f for f in findings_in(report, "Written") if f.fails and f.remediation.startswith("CDK made")]
    assert len(written) >= 12
    fixed = [f for f in findings_in(report, "Fixed") if f.remediation.startswith("CDK made")]
    assert [f for f in fixed if f.fails] == []
    acknowledged = {(f.rule_id, f.construct_path) for f in fixed if f.status == ACKNOWLEDGED}
    assert ("DP-LambdaLogGroup", "Fixed/Custom::VpcRestrictDefaultSGCustomResourceProvider/Handler") in acknowledged
    assert ("DP-IamNoWildcardAction", "Fixed/Bastion/Resource/InstanceRole/DefaultPolicy/Resource") in acknowledged


def test_a_template_without_construct_paths_is_recognised_by_logical_id(assembly):
    app = load_stack_templates([str(assembly / "Written.template.json")])
    for tpl in app.templates:
        tpl.construct_paths = {}
    found = evaluate(app, Config(), catalogue()).findings
    assert all(f.construct_path is None for f in found)
    retention = [f for f in found if (f.logical_id or "").startswith("LogRetentionaae0aa3c5b4d4f87b02d85b201efdd8a")]
    assert retention and all("instead of `log_retention=`" in f.remediation for f in retention)



def test_each_stack_keeps_the_construct_paths_of_its_own_resources(report):
    # Written and Fixed both have an `Uploads` bucket (same logical id), and Written's Provider
    # has the logical ids of the Provider inside DynamoDB's nested replica stack
    assert {f.construct_path for f in findings_in(report, "Written", rule_id="DP-S3Encryption")} == {"Written/Uploads/Resource"}
    assert {f.construct_path for f in findings_in(report, "Fixed", rule_id="DP-S3Encryption")} == {"Fixed/Uploads/Resource"}
    written = [f for f in report.findings if f.stack == "Written" and f.rule_id == "DP-LambdaLogGroup"
               and "framework-onEvent" in (f.construct_path or "")]
    assert [f.construct_path for f in written] == ["Written/Provider/framework-onEvent/Resource"]


HEADLINE = ("DP-LambdaLogGroup acknowledged for 4 resources in stack Batch: Functions of the nightly batch "
            "log to the central account's log archive (OPS-118) (expires 2099-12-31)")


def test_a_stack_acknowledgment_is_one_row_of_the_table(report):
    out = render_scan(report, "table")
    problems = " ".join(line.split("│")[4].strip() for line in out.splitlines() if line.count("│") == 5)
    assert HEADLINE in " ".join(problems.split())
    assert out.count("Batch (4 resources)") == 1
    assert "Extract, Load, Report, Transform" in out
    assert "Batch/Extract" not in out  # no row per function


def test_a_stack_acknowledgment_is_one_row_of_the_markdown_comment(report):
    out = render_scan(report, "markdown")
    rows = [line for line in out.splitlines() if "`Batch`" in line]
    assert len(rows) == 1
    assert HEADLINE in rows[0]
    assert "<details><summary>4 resources</summary>`Extract`, `Load`, `Report`, `Transform`</details>" in rows[0]


def test_json_keeps_one_acknowledged_finding_per_resource(report):
    doc = json.loads(render_scan(report, "json"))
    batch = [f for f in doc["findings"] if f["stack"] == "Batch"]
    assert sorted(f["construct_path"] for f in batch) == [f"Batch/{n}/Resource" for n in ("Extract", "Load", "Report", "Transform")]
    assert {f["status"] for f in batch} == {"acknowledged"}


def test_the_markdown_fixes_name_what_cdk_made(report):
    out = render_scan(report, "markdown")
    fixes = out[out.index("<summary>How to fix</summary>"):]
    assert "On `Written/LogRetentionaae0aa3c5b4d4f87b02d85b201efdd8a/Resource`: the log-retention function" in fixes


def test_the_auditor_report_lists_a_stack_acknowledgment_once(assembly, tmp_path):
    from dpguard.report import write

    data = build([str(assembly)])
    batch = [a for a in data["acknowledgments"] if a.get("stack") == "Batch"]
    assert len(batch) == 1
    assert batch[0]["construct_path"] == "Batch" and batch[0]["resources"] == 4 and batch[0]["status"] == "holds"
    assert sorted(batch[0]["covers"]) == [f"Batch/{n}/Resource" for n in ("Extract", "Load", "Report", "Transform")]
    # the findings stay one per resource
    assert len([f for f in data["findings"] if f["stack"] == "Batch" and f["status"] == "acknowledged"]) == 4
    # cdk-nag's findings on what CDK made get the same fixes
    nag = [f for f in data["findings"] if f["source"] == "AwsSolutions"
           and "/LogRetentionaae0aa3c5b4d4f87b02d85b201efdd8a/" in (f["construct_path"] or "")]
    assert nag and all("instead of `log_retention=`" in f["remediation"] for f in nag)
    paths = write(data, tmp_path / "report")
    markdown = [line for line in paths["markdown"].read_text().splitlines() if "`Batch`" in line]
    assert len(markdown) == 1 and "`Batch` (4 resources)" in markdown[0]
    html = paths["html"].read_text()
    assert html.count('<td class="path"><code>Batch</code>') == 1
    assert '<summary>4 resources</summary><ul><li><code>Batch/Extract/Resource</code></li>' in html


def test_junit_gives_the_fix_for_what_cdk_made(report):
    out = render_scan(report, "junit")
    assert "Fix: CDK made this resource itself: the log-retention function" in out
