"""Evaluation: acknowledgments, explicit results, rules that crash, counts."""
from __future__ import annotations

import datetime as dt

import pytest

from conftest import make_app

from dpguard.engine import Config, evaluate
from dpguard.rules import Rule, catalogue

RULES = {r.rule_id: r for r in catalogue()}
TODAY = dt.date(2026, 6, 1)


def bucket(*suppress: dict) -> dict:
    meta = {"cdk_nag": {"rules_to_suppress": list(suppress)}} if suppress else {}
    return {"Resources": {"Data": {"Type": "AWS::S3::Bucket", "Metadata": meta}}}


def judge(template: dict, rule_id: str = "DP-S3Encryption"):
    return evaluate(make_app(template), Config(today=TODAY), [RULES[rule_id]])


def test_acknowledgment_with_reason_holds_until_it_expires():
    report = judge(bucket({"id": "DP-S3Encryption", "reason": "Encrypted by the bucket default, see ADR-12",
                           "expires": "2026-12-31"}))
    [f] = report.findings
    assert f.status == "acknowledged" and f.acknowledgment["expires"] == "2026-12-31"
    assert report.failing() == [] and report.summary()["acknowledged"] == 1


def test_expired_or_unreasoned_acknowledgment_does_not_hold():
    [f] = judge(bucket({"id": "DP-S3Encryption", "reason": "Encrypted by default, see ADR-12",
                        "expires": "2026-01-31"})).findings
    assert f.status == "violation" and "expired on 2026-01-31" in f.message
    [f] = judge(bucket({"id": "DP-S3Encryption", "reason": "ok"})).findings
    assert f.status == "violation" and "needs a reason" in f.message
    [f] = judge(bucket({"id": "DP-S3Encryption", "reason": "a good long reason", "expires": "soon"})).findings
    assert f.status == "violation" and "not a YYYY-MM-DD date" in f.message


def test_template_level_acknowledgment_and_unused_ones():
    template = bucket({"id": "DP-S3WebsiteHosting", "reason": "kept from an older version of the stack"},
                      {"id": "AwsSolutions-S1", "reason": "cdk-nag's own, not ours to report"})
    template["Metadata"] = {"cdk_nag": {"rules_to_suppress": [
        {"id": "DP-S3Encryption", "reason": "the whole sandbox stack is throwaway"}]}}
    report = judge(template)
    assert [f.status for f in report.findings] == ["acknowledged"]
    assert [(a.rule_id, a.logical_id) for a in report.unused_acknowledgments] == [("DP-S3WebsiteHosting", "Data")]


def test_a_crashing_rule_is_reported_unverifiable_not_swallowed():
    def broken(r, t):
        raise KeyError("boom")
        yield

    rule = Rule("DP-Broken", 7, "error", ("AWS::S3::Bucket",), "t", "r", "fix", broken)
    [f] = evaluate(make_app(bucket()), Config(), [rule]).findings
    assert f.status == "unverifiable" and "rule error KeyError" in f.message


def test_malformed_resources_are_findings_and_skip_other_rules():
    template = {"Resources": {"NoType": {"Properties": {}}, "BadProps": {"Type": "AWS::S3::Bucket", "Properties": "x"},
                              "NotAMapping": ["x"]}}
    report = evaluate(make_app(template), Config(), catalogue())
    assert {(f.logical_id, f.rule_id) for f in report.findings} == {
        ("NoType", "DP-ResourceReadable"), ("BadProps", "DP-ResourceReadable"), ("NotAMapping", "DP-ResourceReadable")}
    assert all(f.clause == 10 and f.fails for f in report.findings)


def test_counts_per_rule_and_template():
    template = {"Resources": {"A": {"Type": "AWS::S3::Bucket"}, "B": {"Type": "AWS::S3::Bucket", "Properties": {
        "BucketEncryption": {"ServerSideEncryptionConfiguration": [
            {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]}}}}}
    report = judge(template)
    total = report.rule_totals()["DP-S3Encryption"]
    assert (total.evaluated, total.failed) == (2, 1)


def test_disabled_rules_and_warning_downgrade():
    report = evaluate(make_app(bucket()), Config(disabled_rules=frozenset({"DP-S3Encryption"})), catalogue())
    assert "DP-S3Encryption" not in {f.rule_id for f in report.findings}
    template = {"Parameters": {"A": {"Type": "String"}}, "Resources": {"Data": {"Type": "AWS::S3::Bucket", "Properties": {
        "BucketEncryption": {"ServerSideEncryptionConfiguration": [
            {"ServerSideEncryptionByDefault": {"SSEAlgorithm": {"Ref": "A"}}}]}}}}}
    report = evaluate(make_app(template), Config(unverifiable="warn"), [RULES["DP-S3Encryption"]])
    [f] = report.findings
    assert f.status == "unverifiable" and f.severity == "warning" and report.failing("error") == []
    assert report.failing("warning") == [f]


def _tls_findings(*templates: dict) -> list:
    report = evaluate(make_app(*templates), Config(), catalogue())
    return [f for f in report.findings if f.rule_id == "DP-S3TlsOnly"]


@pytest.mark.parametrize("metadata", [{}, {"Reviewed": dt.date(2026, 1, 1)}],
                         ids=["json-values", "a-value-marshal-cannot-write"])
def test_a_bucket_policy_in_another_stack_that_imports_the_bucket_is_found(metadata):
    exporting = {"Resources": {"Data": {"Type": "AWS::S3::Bucket"}},
                 "Outputs": {"Arn": {"Value": {"Fn::GetAtt": ["Data", "Arn"]}, "Export": {"Name": "data-arn"}},
                             "Name": {"Value": {"Ref": "Data"}, "Export": {"Name": "data-name"}}}}
    deny = {"Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "s3:*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            "Resource": [{"Fn::ImportValue": "data-arn"},
                         {"Fn::Join": ["", [{"Fn::ImportValue": "data-arn"}, "/*"]]}]}
    importing = {"Metadata": metadata, "Resources": {"Policy": {
        "Type": "AWS::S3::BucketPolicy",
        "Properties": {"Bucket": {"Fn::ImportValue": "data-name"},
                       "PolicyDocument": {"Version": "2012-10-17", "Statement": [deny]}}}}}
    assert _tls_findings(exporting, importing) == []
    [alone] = _tls_findings(exporting, {"Metadata": metadata, "Resources": {}})
    assert alone.logical_id == "Data" and alone.status == "violation"
