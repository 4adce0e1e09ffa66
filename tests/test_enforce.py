"""dpguard.enforce(): `cdk synth` fails on a violation anywhere, naming rule, clause, construct
path and fix; acknowledgments pass only with a reason and before their expiry.

Every test synthesizes a small real CDK app in-process (aws-cdk-lib through jsii), as
`cdk synth` would run it."""
from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import cloudformation_include as cfn_inc

import dpguard
from dpguard.cdk import PolicyError
from dpguard.rules import catalogue
from dpguard.testing import assert_compliant, policy_findings

DATA = Path(__file__).parent / "data" / "cdk"


def data_stack(scope, construct_id: str, *, alert_path: bool = True) -> cdk.Stack:
    """A small stack that complies with every dpguard rule: an encrypted, TLS-only, tagged
    queue, and an alarm that notifies an encrypted topic (the clause 4 alert path)."""
    stack = cdk.Stack(scope, construct_id)
    key = kms.Key(stack, "Key", enable_key_rotation=True)
    queue = sqs.Queue(stack, "Jobs", enforce_ssl=True, encryption=sqs.QueueEncryption.KMS,
                      encryption_master_key=key)
    cdk.Tags.of(queue).add("data-classification", "confidential")
    cdk.Tags.of(queue).add("data-owner", "jobs-team")
    if not alert_path:
        return stack
    alerts = sns.Topic(stack, "Alerts", master_key=key, enforce_ssl=True)
    alarm = cw.Alarm(stack, "Backlog", metric=queue.metric_approximate_number_of_messages_visible(),
                     threshold=1000, evaluation_periods=1)
    alarm.add_alarm_action(cw_actions.SnsAction(alerts))
    return stack


def synth(app: cdk.App) -> str | None:
    """The validation report CDK raised, or None when synth passed."""
    try:
        app.synth()
    except RuntimeError as e:
        assert "ValidationFailed" in str(e), e
        return str(e)
    return None


def report(app: cdk.App) -> dict:
    return json.loads((Path(app.outdir) / "validation-report.json").read_text())


def dpguard_report(app: cdk.App) -> dict:
    return next(p for p in report(app)["pluginReports"] if p["pluginName"] == "dpguard")


@pytest.fixture
def app(tmp_path):
    return cdk.App(outdir=str(tmp_path / "cdk.out"))


def test_a_compliant_app_synthesizes(app):
    data_stack(app, "Orders")
    dpguard.enforce(app, packs=[])
    assert synth(app) is None
    assert dpguard_report(app)["conclusion"] == "success"
    assert_compliant(app)


# One app per rule family: (rule, clause, what breaks it).
def open_ssh(stack):
    vpc = ec2.Vpc(stack, "Vpc", max_azs=2, nat_gateways=0, subnet_configuration=[
        ec2.SubnetConfiguration(name="data", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)])
    sg = ec2.SecurityGroup(stack, "Bastion", vpc=vpc)
    sg.add_ingress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(22))
    return "Bastion"


def password_client(stack):
    pool = cognito.UserPool(stack, "Users")
    pool.add_client("Web", auth_flows=cognito.AuthFlow(user_password=True))
    return "Users/Web"


def plaintext_queue(stack):
    sqs.Queue(stack, "Plain", enforce_ssl=True)
    return "Plain"


def bucket_without_tls(stack):
    s3.Bucket(stack, "Reports", enforce_ssl=False)
    return "Reports"


def unrotated_key(stack):
    kms.Key(stack, "Unrotated", enable_key_rotation=False)
    return "Unrotated"


def admin_role(stack):
    role = iam.Role(stack, "Deployer", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    role.add_to_policy(iam.PolicyStatement(actions=["*"], resources=["*"]))
    return "Deployer"


def log_group_forever(stack):
    logs.LogGroup(stack, "AppLogs", retention=logs.RetentionDays.INFINITE)
    return "AppLogs"


def versions_kept_forever(stack):
    s3.Bucket(stack, "Exports", versioned=True)
    return "Exports"


def unclassified_queue(stack):
    sqs.Queue(stack, "Untagged", enforce_ssl=True, encryption_master_key=stack.node.find_child("Key"))
    return "Untagged"


def unprocessed_transform(stack):
    stack.add_transform("AWS::Serverless-2016-10-31")
    cdk.CfnResource(stack, "Handler", type="AWS::Serverless::Function",
                    properties={"Runtime": "python3.12", "Handler": "app.handler", "CodeUri": "src/"})
    return "Handler"


FAMILIES = [
    ("DP-SgOpenIngress", 1, open_ssh),
    ("DP-CognitoNoPasswordFlows", 2, password_client),
    ("DP-S3TlsOnly", 3, bucket_without_tls),
    ("DP-SqsEncrypted", 7, plaintext_queue),
    ("DP-KmsKeyRotation", 7, unrotated_key),
    ("DP-IamNoWildcardAction", 8, admin_role),
    ("DP-S3NoncurrentExpiry", 5, versions_kept_forever),
    ("DP-DataClassificationTag", 6, unclassified_queue),
    ("DP-LogGroupRetention", 9, log_group_forever),
    ("DP-TemplateProcessed", 10, unprocessed_transform),
]


@pytest.mark.parametrize("rule_id, clause, breaks", FAMILIES, ids=[f[0] for f in FAMILIES])
def test_a_violation_fails_synth_naming_rule_clause_path_and_fix(app, rule_id, clause, breaks):
    stack = data_stack(app, "Orders")
    construct = breaks(stack)
    dpguard.enforce(app, packs=[])
    message = synth(app)
    assert message is not None, f"{rule_id}: synth passed"
    assert f"{rule_id} (clause {clause})" in message
    assert f"Orders/{construct}" in message
    assert f"Acknowledge with 'dpguard::{rule_id}'" in message
    violation = next(v for v in dpguard_report(app)["violations"] if v["ruleName"] == rule_id)
    assert violation["suggestedFix"]
    assert violation["ruleMetadata"]["clause"] == str(clause)
    assert any(c["constructPath"].startswith(f"Orders/{construct}") for c in violation["violatingConstructs"])


def test_an_app_holding_data_needs_a_security_alert_path(app):
    data_stack(app, "Orders", alert_path=False)
    dpguard.enforce(app, packs=[])
    message = synth(app)
    assert "DP-SecurityAlertPath (clause 4): the app holds data but no CloudWatch alarm" in message
    assert "Orders/Jobs/Resource" in message


def test_rule_ids_in_the_catalogue(app):
    known = {r.rule_id for r in catalogue()}
    assert {f[0] for f in FAMILIES} <= known


# Where a violation may hide: (what CDK's report must say, the construct path it must name).
def in_an_override(app):
    stack = data_stack(app, "Orders")
    bucket = s3.Bucket(stack, "Archive", encryption=s3.BucketEncryption.KMS, enforce_ssl=True,
                       block_public_access=s3.BlockPublicAccess.BLOCK_ALL)
    bucket.node.default_child.add_property_override(
        "PublicAccessBlockConfiguration.RestrictPublicBuckets", False)
    return "DP-S3BlockPublicAccess (clause 1): RestrictPublicBuckets is not true", "Orders/Archive/Resource"


def in_a_nested_stack(app):
    nested = cdk.NestedStack(data_stack(app, "Orders"), "Workers")
    sqs.Queue(nested, "Plain", enforce_ssl=True)
    return "DP-SqsEncrypted (clause 7)", "Orders/Workers/Plain/Resource"


def in_a_stage(app):
    data_stack(app, "Orders")
    kms.Key(data_stack(cdk.Stage(app, "Prod"), "Billing"), "Unrotated")
    return "DP-KmsKeyRotation (clause 7)", "Prod/Billing/Unrotated/Resource"


def in_an_included_template(app):
    cfn_inc.CfnInclude(data_stack(app, "Orders"), "Legacy", template_file=str(DATA / "legacy-open-sg.yaml"))
    return "DP-SgOpenIngress (clause 1)", "Orders/Legacy/LegacySg"


@pytest.mark.parametrize("hide", [in_an_override, in_a_nested_stack, in_a_stage, in_an_included_template],
                         ids=lambda f: f.__name__)
def test_a_violation_fails_synth_wherever_it_hides(app, hide):
    expected, path = hide(app)
    dpguard.enforce(app, packs=[])
    message = synth(app)
    assert expected in message
    assert path in message


def test_enforce_on_a_stage_alone(app):
    data_stack(app, "Outside")
    kms.Key(app.node.find_child("Outside"), "Unrotated")  # not under the stage: not judged
    stage = cdk.Stage(app, "Prod")
    data_stack(stage, "Billing")
    dpguard.enforce(stage, packs=[])
    assert synth(app) is None


def test_an_acknowledged_violation_passes_and_is_in_the_report(app):
    stack = data_stack(app, "Orders")
    key = kms.Key(stack, "Unrotated")
    dpguard.acknowledge(key, "DP-KmsKeyRotation", "imported key material cannot rotate automatically",
                        ticket="SEC-101", expires="2099-12-31")
    dpguard.enforce(app, packs=[])
    assert synth(app) is None
    suppressed = dpguard_report(app)["suppressedViolations"]
    assert [s["ruleName"] for s in suppressed] == ["DP-KmsKeyRotation"]
    assert suppressed[0]["acknowledgedAt"] == "Orders/Unrotated"
    assert "imported key material" in suppressed[0]["reason"] and "SEC-101" in suppressed[0]["reason"]
    # Copied into the template, so `dpguard scan cdk.out` sees the acknowledgment too.
    template = json.loads((Path(app.outdir) / "Orders.template.json").read_text())
    key_resource = next(r for r in template["Resources"].values() if r["Type"] == "AWS::KMS::Key"
                        and "cdk_nag" in r.get("Metadata", {}))
    assert key_resource["Metadata"]["cdk_nag"]["rules_to_suppress"][0]["id"] == "dpguard::DP-KmsKeyRotation"


def expired(key):
    dpguard.acknowledge(key, "DP-KmsKeyRotation", "imported key material cannot rotate automatically",
                        expires=(dt.date.today() - dt.timedelta(days=1)).isoformat())


def natively_without_a_reason(key):  # CDK's own API takes any reason; the policy does not
    cdk.Validations.of(key).acknowledge(cdk.Acknowledgment(id="dpguard::DP-KmsKeyRotation", reason="ok"))


@pytest.mark.parametrize("acknowledge, why", [(expired, "it expired on"),
                                              (natively_without_a_reason, "it needs a reason")],
                         ids=["expired", "native-without-reason"])
def test_an_acknowledgment_that_does_not_hold_fails_synth(app, acknowledge, why):
    acknowledge(kms.Key(data_stack(app, "Orders"), "Unrotated"))
    dpguard.enforce(app, packs=[])
    message = synth(app)
    assert "DP-KmsKeyRotation (clause 7)" in message
    assert f"the acknowledgment does not hold: {why}" in message


def test_an_expired_acknowledgment_of_a_cdk_nag_rule_is_not_made(app):
    queue = sqs.Queue(data_stack(app, "Orders"), "Events", enforce_ssl=True,
                      encryption=sqs.QueueEncryption.SQS_MANAGED)
    cdk.Tags.of(queue).add("data-classification", "internal")
    cdk.Tags.of(queue).add("data-owner", "orders-team")
    dpguard.acknowledge(queue, "AwsSolutions-SQS3", "events are replayable from the source system",
                        expires="2020-01-31")
    dpguard.enforce(app)
    assert synth(app) is not None
    nag = next(p for p in report(app)["pluginReports"] if p["pluginName"] == "AwsSolutions")
    flagged = {c["constructPath"] for v in nag["violations"] if v["ruleName"] == "AwsSolutions-SQS3"
               for c in v["violatingConstructs"]}
    assert "Orders/Events/Resource" in flagged


def test_an_acknowledgment_without_a_reason_is_refused(app):
    stack = data_stack(app, "Orders")
    with pytest.raises(PolicyError, match="give a specific reason"):
        dpguard.acknowledge(stack, "DP-KmsKeyRotation", "ok")
    with pytest.raises(PolicyError, match="not a dpguard rule"):
        dpguard.acknowledge(stack, "DP-KmsKeyRotaton", "a typo in the rule id must not pass silently")


def test_cdk_nag_packs_run_beside_dpguard(app):
    stack = data_stack(app, "Orders")
    sqs.Queue(stack, "Plain", enforce_ssl=True)
    dpguard.enforce(app)  # default packs: AwsSolutions
    message = synth(app)
    assert "DP-SqsEncrypted" in message and "AwsSolutions-SQS3" in message


def test_options_override_cdk_json_context(tmp_path):
    app = cdk.App(outdir=str(tmp_path), context={"dpguard": {"packs": ["AwsSolutions"],
                                                             "disabled_rules": ["DP-KmsKeyRotation"]}})
    stack = data_stack(app, "Orders")
    kms.Key(stack, "Unrotated")
    dpguard.enforce(app, packs=[])  # the context's rule switch holds; its packs are overridden
    assert synth(app) is None
    assert [p["pluginName"] for p in report(app)["pluginReports"]] == ["dpguard"]


@pytest.mark.parametrize("options, message", [
    ({"packs": ["Nist"]}, "packs must be a list of"),
    ({"unverifiable": "ignore"}, "unverifiable must be 'fail' or 'warn'"),
    ({"colour": "red"}, "unknown option"),
    ({"default_classification": "secret"}, "must be one of"),
])
def test_bad_options_are_one_line_errors(app, options, message):
    with pytest.raises(PolicyError, match=message) as e:
        dpguard.enforce(app, **options)
    assert "\n" not in str(e.value)


def test_default_tags_fill_in_only_what_is_missing(app):
    stack = cdk.Stack(app, "Orders")
    key = kms.Key(stack, "Key", enable_key_rotation=True)
    sqs.Queue(stack, "Untagged", enforce_ssl=True, encryption_master_key=key)
    tagged = sqs.Queue(stack, "Tagged", enforce_ssl=True, encryption_master_key=key)
    cdk.Tags.of(tagged).add("data-classification", "restricted")
    dpguard.enforce(app, packs=[], default_classification="confidential", default_owner="orders-team")
    synth(app)
    template = json.loads((Path(app.outdir) / "Orders.template.json").read_text())
    tags = {lid: {t["Key"]: t["Value"] for t in r["Properties"].get("Tags", [])}
            for lid, r in template["Resources"].items() if r["Type"] == "AWS::SQS::Queue"}
    assert sorted(t["data-classification"] for t in tags.values()) == ["confidential", "restricted"]
    assert {t["data-owner"] for t in tags.values()} == {"orders-team"}
    key_tags = next(r for r in template["Resources"].values() if r["Type"] == "AWS::KMS::Key")
    assert "Tags" not in key_tags["Properties"]  # only data stores are tagged


def test_assert_compliant_lists_readable_findings(app):
    stack = data_stack(app, "Orders")
    sqs.Queue(stack, "Plain", enforce_ssl=True)
    with pytest.raises(AssertionError) as e:
        assert_compliant(stack)
    text = str(e.value)
    assert "DP-SqsEncrypted (clause 7) at Orders/Plain/Resource [Properties]" in text
    assert "Fix: sqs.Queue(" in text
    assert [f.rule_id for f in policy_findings(stack)].count("DP-SqsEncrypted") == 1


def test_the_cdk_cli_fails_with_the_report_and_no_traceback(tmp_path):
    """`cdk synth` as a developer runs it: the project's CLI, Node.js from the venv."""
    root = Path(__file__).resolve().parent.parent
    bin_dir = str(Path(sys.executable).parent)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}  # as a developer runs it
    env.update(PATH=bin_dir + os.pathsep + os.environ["PATH"], CDK_DISABLE_VERSION_CHECK="1")
    result = subprocess.run(
        [str(root / "node_modules" / ".bin" / "cdk"), "synth", "--quiet", "--no-notices",
         "--app", f"{sys.executable} {DATA / 'failing_app.py'}", "--output", str(tmp_path / "cdk.out")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "DP-SqsEncrypted (clause 7)" in output
    # The stack is in a Stage, which `cdk synth` does not select: CDK's report leaves it out,
    # dpguard's summary on stderr names it.
    assert "DP-SqsEncrypted (clause 7) at Prod/Orders/Workers/Jobs/Resource: the queue" in output
    assert "Traceback" not in output

    result = subprocess.run(
        [str(root / "node_modules" / ".bin" / "cdk"), "synth", "Prod/*", "--quiet", "--no-notices",
         "--app", f"{sys.executable} {DATA / 'failing_app.py'}", "--output", str(tmp_path / "cdk.out")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "ERROR DP-SqsEncrypted (clause 7)" in output  # CDK's own report, with the fix
    assert "Suggested fix: sqs.Queue(" in output


def test_a_template_the_plugin_cannot_read_fails_closed(tmp_path):
    broken = tmp_path / "Orders.template.json"
    broken.write_text('{"Resources": {"Queue": ')

    class Context:  # what CDK hands the plugin, reduced to what it reads
        template_paths = [str(broken)]

    result = dpguard.cdk.DpguardPlugin().validate(Context())
    assert result.success is False
    assert "Orders.template.json" in result.metadata["error"]
