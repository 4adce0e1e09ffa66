"""Issue 14, item 4: a security setting of the wrong type is a finding whose message says the
type is wrong, never a pass (the fixture cases in tests/fixtures/rules check the statuses)."""
from __future__ import annotations

import json

import pytest

from dpguard.cli import main

GITHUB = "arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com"


def trust(sub):
    return {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": {"Statement": [{
        "Effect": "Allow", "Principal": {"Federated": GITHUB}, "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringLike": {"token.actions.githubusercontent.com:sub": sub}}}]}}}


def distribution(certificate, origin_protocols):
    return {"Type": "AWS::CloudFront::Distribution", "Properties": {"DistributionConfig": {
        "Enabled": True, "ViewerCertificate": certificate,
        "DefaultCacheBehavior": {"TargetOriginId": "api", "ViewerProtocolPolicy": "https-only"},
        "Origins": [{"Id": "api", "DomainName": "api.example.com", "CustomOriginConfig": {
            "OriginProtocolPolicy": "https-only", "OriginSSLProtocols": origin_protocols}}]}}}


CERT = {"AcmCertificateArn": "arn:aws:acm:us-east-1:111122223333:certificate/abc",
        "SslSupportMethod": "sni-only", "MinimumProtocolVersion": None}

CASES = [
    ("DP-LogGroupEncrypted", {"Type": "AWS::Logs::LogGroup", "Properties": {"KmsKeyId": ["x"], "RetentionInDays": 30}},
     "violation", "KmsKeyId is a list"),
    ("DP-LogGroupRetention", {"Type": "AWS::Logs::LogGroup", "Properties": {"RetentionInDays": "oops"}},
     "violation", "RetentionInDays is 'oops', not a number of days"),
    ("DP-KmsKeyRotation", {"Type": "AWS::KMS::Key", "Properties": {"KeySpec": ["SYMMETRIC_DEFAULT"]}},
     "unverifiable", "KeySpec is a list"),
    ("DP-LambdaLogGroup", {"Type": "AWS::Lambda::Function", "Properties": {"LoggingConfig": {"LogGroup": {"a": 1}}}},
     "violation", "LoggingConfig.LogGroup is a mapping"),
    ("DP-CloudFrontMinTls", distribution(CERT, ["TLSv1.2"]), "violation", "MinimumProtocolVersion is null"),
    ("DP-CloudFrontOriginTls", distribution(dict(CERT, MinimumProtocolVersion="TLSv1.2_2021"), None),
     "violation", "OriginSSLProtocols for origin api is null"),
    ("DP-S3NoncurrentExpiry", {"Type": "AWS::S3::Bucket", "Properties": {
        "VersioningConfiguration": {"Status": "Enabled"},
        "LifecycleConfiguration": {"Rules": [{"Status": "Enabled",
                                              "NoncurrentVersionExpiration": {"NoncurrentDays": None}}]}}},
     "violation", "NoncurrentDays is null, not a number of days"),
    ("DP-S3NoPublicAcl", {"Type": "AWS::S3::Bucket", "Properties": {"AccessControl": ["PublicRead"]}},
     "violation", "AccessControl is a list"),
    ("DP-IamTrustNoWildcardPrincipal", trust([1, 2]), "violation", "sub holds a number, not a string"),
    ("DP-IamTrustNoWildcardPrincipal", trust({"repo": "acme/app"}), "violation", "sub is a mapping, not a string"),
]


@pytest.mark.parametrize("rule_id,resource,status,words", CASES, ids=[f"{c[0]}-{c[3]}" for c in CASES])
def test_wrong_type_is_a_finding_that_says_so(tmp_path, capsys, rule_id, resource, status, words):
    template = tmp_path / "t.json"
    template.write_text(json.dumps({"Resources": {"Subject": resource}}))
    code = main(["scan", str(template), "--format", "json"])
    findings = [f for f in json.loads(capsys.readouterr().out)["findings"]
                if f["rule_id"] == rule_id and f["logical_id"] == "Subject"]
    assert code == 1
    assert [(f["status"], words in f["message"]) for f in findings] == [(status, True)], findings


@pytest.mark.parametrize("rule_id,resource", [
    ("DP-SecretNoLiteralValue", {"Type": "AWS::SecretsManager::Secret", "Properties": {"SecretString": {"Ref": {}}}}),
    ("DP-DbNoLiteralPassword", {"Type": "AWS::DMS::Endpoint",
                                "Properties": {"MicrosoftSqlServerSettings": {"Password": {"Ref": {}}}}}),
])
def test_a_ref_that_is_not_a_name_is_unverifiable_not_a_rule_error(tmp_path, capsys, rule_id, resource):
    # found by tests/test_fuzz.py: the rule raised TypeError (unhashable dict) on it
    template = tmp_path / "t.json"
    template.write_text(json.dumps({"Resources": {"R": resource}}))
    main(["scan", str(template), "--format", "json"])
    [finding] = [f for f in json.loads(capsys.readouterr().out)["findings"] if f["rule_id"] == rule_id]
    assert finding["status"] == "unverifiable" and "rule error" not in finding["message"]
