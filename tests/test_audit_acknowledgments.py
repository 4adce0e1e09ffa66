"""Acknowledgments made at synth follow a resource into `dpguard audit`, through the template
that deployed it; nothing else is acknowledged."""
from __future__ import annotations

import json

import boto3
from moto import mock_aws

from dpguard.audit.clients import Clients
from dpguard.audit.run import audit

REASON = "S3 server access logging cannot deliver to SSE-KMS buckets (ticket SEC-12)"


def template(reason: str, expires: str | None = None) -> str:
    entry = {"id": "dpguard::DP-ConfidentialDataCmk", "reason": reason}
    if expires:
        entry["reason"] += f" (expires {expires})"
    return json.dumps({"Resources": {
        "Logs": {"Type": "AWS::S3::Bucket", "Metadata": {"cdk_nag": {"rules_to_suppress": [entry]}},
                 "Properties": {"BucketName": "access-logs-bucket"}},
        "Other": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "other-bucket"}}}})


def findings(body: str) -> dict[tuple[str, str], str]:
    with mock_aws():
        session = boto3.Session(region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
        session.client("cloudformation").create_stack(StackName="Logs", TemplateBody=body)
        result = audit([Clients(session)], ["us-east-1"], only={"s3", "cloudformation"})
    return {(f.rule_id, f.arn): f.status for f in result.report.findings if f.rule_id == "DP-ConfidentialDataCmk"}


def test_a_deployed_acknowledgment_holds_in_the_audit():
    found = findings(template(REASON))
    assert found[("DP-ConfidentialDataCmk", "arn:aws:s3:::access-logs-bucket")] == "acknowledged"
    assert found[("DP-ConfidentialDataCmk", "arn:aws:s3:::other-bucket")] == "violation"


def test_an_expired_one_does_not():
    found = findings(template(REASON, expires="2020-01-31"))
    assert found[("DP-ConfidentialDataCmk", "arn:aws:s3:::access-logs-bucket")] == "violation"
