"""ASFF (dpguard/output/asff.py): what Security Hub is given for each audit finding, its limits,
its stable Ids, and `dpguard audit --format asff` against moto's server."""
from __future__ import annotations

import json
import subprocess
import sys
from types import SimpleNamespace

import boto3
import pytest

from deploy_support import ROOT, MotoServer
from dpguard.audit.run import AuditFinding
from dpguard.output import asff

ACCOUNT, OTHER = "111122223333", "444455556666"
SG_ARN = f"arn:aws:ec2:eu-west-1:{ACCOUNT}:security-group/sg-0123456789abcdef0"


def finding(**changes) -> AuditFinding:
    base = dict(rule_id="DP-SgOpenIngress", clause=1, severity="error", status="violation",
                template=f"aws://{ACCOUNT}/eu-west-1", stack=f"{ACCOUNT}/eu-west-1", logical_id="Sg0123",
                resource_type="AWS::EC2::SecurityGroup", construct_path=None,
                property_path="Properties/SecurityGroupIngress/0", message="ingress from 0.0.0.0/0 on port 22",
                remediation="allow only the allow-listed CIDRs", acknowledgment=None, arn=SG_ARN,
                region="eu-west-1", account=ACCOUNT)
    return AuditFinding(**{**base, **changes})


def report(*findings: AuditFinding, regions=("eu-west-1",)):
    rules = [SimpleNamespace(rule_id=r, title=f"the title of {r}") for r in {f.rule_id for f in findings}]
    templates = [SimpleNamespace(path=f"aws://{ACCOUNT}/{r}") for r in ("global", *regions)]
    return SimpleNamespace(findings=list(findings), rules=rules, templates=templates)


def one(*findings: AuditFinding, **options) -> dict:
    [out] = asff.findings(report(*findings), **options)
    return out


def test_a_violation_in_asff():
    out = one(finding(), now="2026-12-03T02:00:00.000Z")
    assert asff.problems(out) == []
    assert out["SchemaVersion"] == "2018-10-08"
    assert out["Id"] == f"dpguard/{ACCOUNT}/eu-west-1/DP-SgOpenIngress/{SG_ARN}"
    assert out["ProductArn"] == f"arn:aws:securityhub:eu-west-1:{ACCOUNT}:product/{ACCOUNT}/default"
    assert out["GeneratorId"] == "DP-SgOpenIngress" and out["AwsAccountId"] == ACCOUNT
    assert out["Types"] == ["Software and Configuration Checks/Industry and Regulatory Standards/"
                            "dpguard Data Protection Policy"]
    assert out["CreatedAt"] == out["UpdatedAt"] == "2026-12-03T02:00:00.000Z"
    assert out["Severity"]["Label"] == "HIGH" and out["FindingProviderFields"]["Severity"]["Label"] == "HIGH"
    assert out["Resources"] == [{"Type": "AwsEc2SecurityGroup", "Id": SG_ARN, "Partition": "aws",
                                 "Region": "eu-west-1"}]
    assert out["Compliance"] == {"Status": "FAILED", "RelatedRequirements": ["dpguard clause 1"]}
    assert out["ProductFields"]["dpguard/RuleId"] == "DP-SgOpenIngress"
    assert out["ProductFields"]["dpguard/Clause"] == "1"
    assert out["RecordState"] == "ACTIVE" and out["Workflow"] == {"Status": "NEW"}
    assert out["Remediation"]["Recommendation"]["Text"] == "allow only the allow-listed CIDRs"


@pytest.mark.parametrize("severity, label", [("error", "HIGH"), ("warning", "MEDIUM")])
def test_an_unverifiable_finding_keeps_its_rule_s_severity_and_is_never_passed(severity, label):
    out = one(finding(status="unverifiable", severity=severity, message="DescribeSecurityGroups failed: AccessDenied"))
    assert out["Compliance"]["Status"] == "WARNING"
    assert out["Severity"]["Label"] == label  # never INFORMATIONAL: it fails like a violation


def test_an_acknowledged_finding_is_suppressed_with_its_reason():
    ack = {"reason": "the bastion's port is closed by the network firewall (SEC-12)", "expires": "2027-03-31"}
    out = one(finding(status="acknowledged", acknowledgment=ack), now="2026-12-03T02:00:00.000Z")
    assert out["Compliance"]["Status"] == "FAILED"
    assert out["Workflow"] == {"Status": "SUPPRESSED"}
    assert ack["reason"] in out["Note"]["Text"] and out["Note"]["UpdatedBy"] == "dpguard"
    assert out["ProductFields"]["dpguard/Status"] == "acknowledged"
    assert out["ProductFields"]["dpguard/AcknowledgmentReason"] == ack["reason"]
    assert out["ProductFields"]["dpguard/AcknowledgmentExpires"] == "2027-03-31"


def test_the_id_is_stable_across_runs_and_distinct_per_account_region_rule_and_resource():
    first = asff.finding_id(finding())
    assert asff.finding_id(finding(message="another wording", property_path="Properties/X")) == first
    others = {asff.finding_id(finding(account=OTHER)), asff.finding_id(finding(region="us-east-1")),
              asff.finding_id(finding(rule_id="DP-VpcFlowLogs")), asff.finding_id(finding(arn=SG_ARN + "1"))}
    assert first not in others and len(others) == 4


def test_findings_of_one_rule_on_one_resource_are_one_asff_finding():
    two = report(finding(), finding(property_path="Properties/SecurityGroupIngress/1",
                                    message="ingress from ::/0 on port 3389"))
    [out] = asff.findings(two)
    assert "port 22" in out["Description"] and "port 3389" in out["Description"]
    assert out["ProductFields"]["dpguard/PropertyPaths"] == ("Properties/SecurityGroupIngress/0, "
                                                            "Properties/SecurityGroupIngress/1")


def test_the_worst_status_of_a_group_wins():
    out = asff.findings(report(finding(status="unverifiable"), finding(property_path="Properties/Other")))[0]
    assert out["Compliance"]["Status"] == "FAILED" and out["ProductFields"]["dpguard/Status"] == "violation"


def test_long_texts_are_cut_to_security_hub_s_limits():
    long = "x" * 5000
    out = one(finding(message=long, remediation=long, arn="arn:aws:s3:::" + "b" * 600,
                      resource_type="AWS::S3::Bucket", acknowledgment=None))
    assert asff.problems(out) == []
    assert len(out["Description"]) == asff.MAX_DESCRIPTION and out["Description"].endswith("…")
    assert len(out["Remediation"]["Recommendation"]["Text"]) == asff.MAX_RECOMMENDATION
    assert len(out["Id"]) <= asff.MAX_ID and "sha256:" in out["Id"]
    assert out["Resources"][0]["Id"] == "arn:aws:s3:::" + "b" * 600  # the resource keeps its ARN
    again = one(finding(message="other", arn="arn:aws:s3:::" + "b" * 600, resource_type="AWS::S3::Bucket"))
    assert again["Id"] == out["Id"]


def test_problems_finds_what_security_hub_would_refuse():
    good = one(finding())
    assert asff.problems({**good, "Title": "t" * 300}) == ["Title is longer than 256 characters"]
    assert asff.problems({**good, "Description": " "}) == ["Description is missing or empty"]
    assert asff.problems({**good, "AwsAccountId": "123"}) == ["AwsAccountId is not a 12-digit account id"]
    fields = {f"dpguard/F{i}": "v" for i in range(51)}
    assert asff.problems({**good, "ProductFields": fields}) == ["ProductFields has more than 50 entries"]
    assert asff.problems({**good, "Resources": []}) == ["Resources is missing or empty"]


def test_account_wide_findings_are_about_the_account():
    root = finding(rule_id="DP-RootAccessKeys", resource_type="Live::IAM::Account", region="global",
                   arn=f"arn:aws:iam::{ACCOUNT}:root", template=f"aws://{ACCOUNT}/global")
    trail = finding(rule_id="DP-CloudTrailPresent", resource_type=None, logical_id=None, arn=None, region=None,
                    account=None, template=f"aws://{ACCOUNT}/global", severity="warning")
    for out in asff.findings(report(root, trail)):
        assert out["Resources"] == [{"Type": "AwsAccount", "Id": f"AWS::::Account:{ACCOUNT}", "Partition": "aws"}]
        assert out["AwsAccountId"] == ACCOUNT
        # a global finding is imported in the first region the audit read
        assert out["ProductArn"].startswith("arn:aws:securityhub:eu-west-1:")


def test_an_importer_owns_every_finding_it_imports():
    out = one(finding(account=OTHER, arn=SG_ARN.replace(ACCOUNT, OTHER)), importer=("999988887777", "us-east-1"))
    assert out["AwsAccountId"] == "999988887777"  # BatchImportFindings takes only the caller's own findings
    assert out["ProductArn"] == "arn:aws:securityhub:us-east-1:999988887777:product/999988887777/default"
    assert out["ProductFields"]["dpguard/Account"] == OTHER and OTHER in out["Id"]


def test_a_finding_seen_before_keeps_its_created_at():
    fid = asff.finding_id(finding())
    out = one(finding(), now="2026-12-03T02:00:00.000Z", created={fid: "2026-11-01T02:00:00.000Z"})
    assert out["CreatedAt"] == "2026-11-01T02:00:00.000Z" and out["UpdatedAt"] == "2026-12-03T02:00:00.000Z"


def test_a_finding_gone_is_archived_and_passed():
    before = one(finding(), now="2026-12-01T02:00:00.000Z")
    after = asff.archived(before, "2026-12-02T02:00:00.000Z")
    assert after["Id"] == before["Id"] and after["RecordState"] == "ARCHIVED"
    assert after["Compliance"]["Status"] == "PASSED" and after["UpdatedAt"] == "2026-12-02T02:00:00.000Z"
    assert after["CreatedAt"] == before["CreatedAt"] and "Workflow" not in after
    assert asff.problems(after) == []


def test_the_resource_types_are_asff_s_own_names():
    import botocore.session

    model = botocore.session.get_session().get_service_model("securityhub")
    known = set(model.shape_for("ResourceDetails").members)
    assert set(asff.RESOURCE_TYPES.values()) <= known


# ------------------------------------------------------------------------------ the command

@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    with MotoServer(tmp_path_factory.mktemp("moto") / "moto.log") as server:
        yield server


def test_dpguard_audit_format_asff(moto, tmp_path):
    env = {"PATH": "/usr/bin:/bin", "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}
    s3 = boto3.client("s3", endpoint_url=moto.endpoint, region_name="us-east-1", aws_access_key_id="testing",
                      aws_secret_access_key="testing")
    s3.create_bucket(Bucket="plain-bucket")
    output = tmp_path / "audit.asff.json"
    done = subprocess.run([sys.executable, "-m", "dpguard.cli", "audit", "--endpoint-url", moto.endpoint,
                           "--format", "asff", "--output", str(output)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stderr  # violations
    findings = json.loads(output.read_text())
    assert findings and all(asff.problems(f) == [] for f in findings)
    bucket = [f for f in findings if f["GeneratorId"] == "DP-S3Encryption"]
    assert [f["Resources"][0] for f in bucket] == [{"Type": "AwsS3Bucket", "Id": "arn:aws:s3:::plain-bucket",
                                                    "Partition": "aws", "Region": "us-east-1"}]
    assert bucket[0]["AwsAccountId"] == "123456789012"
    # what the command writes, Security Hub takes as it is
    hub = boto3.client("securityhub", endpoint_url=moto.endpoint, region_name="us-east-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    answer = hub.batch_import_findings(Findings=findings[:100])
    assert answer["FailedCount"] == 0 and answer["SuccessCount"] == min(100, len(findings))


def test_asff_is_refused_for_scan(tmp_path, capsys):
    from dpguard.cli import main

    template = tmp_path / "t.json"
    template.write_text('{"Resources": {}}')
    assert main(["scan", str(template), "--format", "asff"]) == 2
    assert "invalid choice" in capsys.readouterr().err


def test_an_acknowledged_finding_carries_the_type_the_automation_rule_suppresses():
    ack = one(finding(status="acknowledged", acknowledgment={"reason": "a bastion, reviewed", "expires": None}))
    assert asff.ACKNOWLEDGED_TYPE in ack["Types"] and asff.ACKNOWLEDGED_TYPE in ack["FindingProviderFields"]["Types"]
    assert asff.ACKNOWLEDGED_TYPE not in one(finding())["Types"]
