"""Real `cdk synth` output (aws-cdk-lib 2.275, synthesized from tests/data/cdk/*_app.py with
`python secure_app.py`, asset bundles and tree.json left out): a Stage, nested stacks linked
through CDK's asset manifests, escape hatches. A compliant CDK app must not drown in findings."""
from __future__ import annotations

from collections import Counter

from dpguard.engine import Config, evaluate, load
from dpguard.rules import catalogue


def judge(root, name):
    app, errors = load([str(root / "tests" / "data" / "cdk" / name)])
    assert errors == []
    return app, evaluate(app, Config(), catalogue())


def test_secure_app_passes_but_for_what_cannot_be_seen(root):
    app, report = judge(root, "secure.out")
    assert sorted(t.stack for t in app.templates) == ["Prod/Secure", "Prod/Secure/Nested", "Secure", "Secure/Nested"]
    assert all(t.parent is not None for t in app.templates if "Nested" in t.stack)
    failing = Counter((f.rule_id, f.status, f.resource_type) for f in report.findings if f.fails)
    assert failing == Counter({
        ("DP-TemplateProcessed", "unverifiable", "AWS::Serverless::Application"): 2,  # CDK's secret rotation
        # CDK's VpcRestrictDefaultSG provider function logs to a group Lambda creates (Secure, Prod/Secure)
        ("DP-LambdaLogGroup", "violation", "AWS::Lambda::Function"): 2,
        ("DP-CloudTrailPresent", "violation", None): 1,
        # written before DP-RdsLogExports: its postgres instance exports no logs (Secure, Prod/Secure)
        ("DP-RdsLogExports", "violation", "AWS::RDS::DBInstance"): 2})
    assert [f.severity for f in report.findings if f.rule_id == "DP-CloudTrailPresent"] == ["warning"]


def test_insecure_app_fails_where_it_should_with_construct_paths(root):
    _, report = judge(root, "insecure.out")
    found = {(f.rule_id, f.construct_path) for f in report.failing()}
    expected = {
        ("DP-S3BlockPublicAccess", "Bad/Plain/Resource"),  # add_property_override(BlockPublicPolicy, False)
        ("DP-S3TlsOnly", "Bad/Plain/Resource"),
        ("DP-S3Encryption", "Bad/Plain/Resource"),
        ("DP-SgOpenIngress", "Bad/Sg/Resource"),
        ("DP-IamNoWildcardAction", "Bad/R/DefaultPolicy/Resource"),
        ("DP-IamNoWildcardResourceWrite", "Bad/R/DefaultPolicy/Resource"),
        ("DP-VpcFlowLogs", "Bad/Vpc/Resource"),
        ("DP-VpcDefaultSgRestricted", "Bad/Vpc/Resource"),
        ("DP-SqsEncrypted", "Bad/Q/Resource"),
        ("DP-SqsTlsOnly", "Bad/Q/Resource"),
    }
    assert expected <= found, expected - found
    override = [f for f in report.findings if f.rule_id == "DP-S3BlockPublicAccess"]
    assert [(f.status, f.property_path) for f in override] == [
        ("violation", "Properties/PublicAccessBlockConfiguration")]
    assert "BlockPublicPolicy" in override[0].message  # the others, left out, are false too
