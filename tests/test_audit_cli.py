"""`dpguard audit` as a user runs it: accounts through an assumed role, formats, exit codes."""
from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from dpguard.cli import main


@pytest.fixture
def aws(monkeypatch):
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": "/nonexistent",
                        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent"}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield


def test_an_assumed_role_with_an_external_id(aws, tmp_path):
    role = "arn:aws:iam::111122223333:role/dpguard-audit"
    credentials = boto3.client("sts").assume_role(RoleArn=role, RoleSessionName="seed")["Credentials"]
    boto3.client("s3", aws_access_key_id=credentials["AccessKeyId"],
                 aws_secret_access_key=credentials["SecretAccessKey"],
                 aws_session_token=credentials["SessionToken"]).create_bucket(Bucket="member-bucket")
    boto3.client("s3").create_bucket(Bucket="caller-bucket")  # the caller's own account: not audited
    output = tmp_path / "audit.json"
    code = main(["audit", "--role-arn", role, "--external-id", "audit-2026", "--format", "json", "-o", str(output)])
    findings = json.loads(output.read_text())["findings"]
    assert code == 1
    assert {f["arn"] for f in findings if f["rule_id"] == "DP-S3Encryption"} == {"arn:aws:s3:::member-bucket"}
    assert {f["account"] for f in findings if f["account"]} == {"111122223333"}


def test_exit_1_on_violations_and_the_json_contract(aws, tmp_path):
    boto3.client("s3").create_bucket(Bucket="plain-bucket")
    output = tmp_path / "audit.json"
    assert main(["audit", "--format", "json", "-o", str(output)]) == 1
    finding = next(f for f in json.loads(output.read_text())["findings"] if f["rule_id"] == "DP-S3Encryption")
    assert finding["arn"] == "arn:aws:s3:::plain-bucket" and finding["region"] == "us-east-1"
    assert finding["clause"] == 7 and finding["account"] == "123456789012"


def test_a_report_of_a_folder_of_saved_audits(aws, tmp_path, capsys):
    boto3.client("s3").create_bucket(Bucket="plain-bucket")
    audits = tmp_path / "audits"
    audits.mkdir()
    main(["audit", "--format", "json", "-o", str(audits / "2026-11-28.json")])
    assert main(["report", str(audits), "--out", str(tmp_path / "report")]) == 0
    data = json.loads((tmp_path / "report" / "dpguard-report.json").read_text())
    assert any(f["rule_id"] == "DP-S3Encryption" and f["arn"] for f in data["findings"])
    assert [i["kind"] for i in data["evidence"]["inputs"]] == ["audit-json"]


@pytest.mark.parametrize("fmt", ["table", "json", "sarif", "junit", "csv", "markdown"])
def test_every_output_format_names_the_rule_and_the_resource(aws, tmp_path, fmt, monkeypatch):
    monkeypatch.setenv("COLUMNS", "300")  # the table wraps at the terminal's width
    boto3.client("s3").create_bucket(Bucket="plain-bucket")
    output = tmp_path / f"audit.{fmt}"
    assert main(["audit", "--format", fmt, "-o", str(output)]) == 1
    text = output.read_text()
    assert "DP-S3Encryption" in text
    assert "arn:aws:s3:::plain-bucket" in text  # the ARN, in every format


def test_a_live_user_is_said_to_exist_not_to_be_created(aws, tmp_path):
    boto3.client("iam").create_user(UserName="operator")
    output = tmp_path / "audit.json"
    main(["audit", "--format", "json", "-o", str(output)])
    finding = next(f for f in json.loads(output.read_text())["findings"] if f["rule_id"] == "DP-IamNoUsers")
    assert finding["message"].startswith("the account has an IAM user")


@pytest.fixture
def faults(monkeypatch):
    """Fault injection at the API: `faults[(operation, predicate)] = error` makes matching calls
    fail (an exception instance) or block until the test ends (the string "block")."""
    import threading

    import botocore.client

    rules: dict = {}
    released = threading.Event()
    real = botocore.client.BaseClient._make_api_call

    def call(self, operation, params):
        for (name, matches), fault in rules.items():
            if name == operation and matches(params):
                if fault == "block":
                    released.wait(30)
                    raise RuntimeError("released at the end of the test")
                raise fault
        return real(self, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", call)
    yield rules
    released.set()


def denied(operation: str):
    import botocore.exceptions

    return botocore.exceptions.ClientError({"Error": {"Code": "AccessDenied", "Message": "not allowed"}}, operation)


def test_an_account_whose_role_cannot_be_assumed_is_reported_and_the_others_judged(aws, tmp_path, faults):
    good, bad = "arn:aws:iam::111122223333:role/dpguard-audit", "arn:aws:iam::444455556666:role/dpguard-audit"
    faults[("AssumeRole", lambda p: p["RoleArn"] == bad)] = denied("AssumeRole")
    output = tmp_path / "audit.json"
    code = main(["audit", "--role-arn", good, "--role-arn", bad, "--format", "json", "-o", str(output)])
    findings = json.loads(output.read_text())["findings"]
    assert code == 1  # the audited account has violations (no GuardDuty detector, ...)
    gap = [f for f in findings if f["rule_id"] == "DP-AuditComplete" and f["account"] == "444455556666"]
    assert [f["status"] for f in gap] == ["unverifiable"]
    assert "was not audited" in gap[0]["message"] and "AccessDenied" in gap[0]["message"]
    assert any(f["account"] == "111122223333" and f["status"] == "violation" for f in findings)


def test_a_malformed_role_arn_is_a_usage_error(aws, capsys):
    assert main(["audit", "--role-arn", "arn:aws:iam::not-an-account"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "is not a role ARN" in err


def test_nothing_wrong_but_checks_that_could_not_run_exits_3(aws, tmp_path, faults):
    # every read the collectors start with is denied: nothing can be judged either way
    for operation in ("ListBuckets", "GetPublicAccessBlock", "ListDetectors", "ListUsers", "ListRoles",
                      "ListPolicies", "GetAccountSummary", "GetCredentialReport", "GenerateCredentialReport",
                      "DescribeTrails", "ListKeys", "DescribeSecurityGroups", "DescribeVpcs",
                      "DescribeDBInstances", "DescribeDBClusters", "ListFunctions", "ListTables",
                      "ListTopics", "ListQueues", "ListSecrets", "DescribeLogGroups", "ListStacks",
                      "ListUserPools", "DescribeFlowLogs", "DescribeNetworkAcls", "DescribeSubnets",
                      "DescribeInstances", "DescribeVolumes", "DescribeLaunchTemplates", "DescribeAddresses",
                      "ListAliases", "DescribeRegions"):
        faults[(operation, lambda p: True)] = denied(operation)
    output = tmp_path / "audit.json"
    code = main(["audit", "--format", "json", "-o", str(output)])
    statuses = {f["status"] for f in json.loads(output.read_text())["findings"]}
    assert statuses == {"unverifiable"} and code == 3


def test_the_deadline_reports_what_is_still_unread(aws, tmp_path, faults):
    boto3.client("s3").create_bucket(Bucket="plain-bucket")
    faults[("ListBuckets", lambda p: True)] = "block"
    output = tmp_path / "audit.json"
    code = main(["audit", "--deadline", "2", "--format", "json", "-o", str(output)])
    findings = json.loads(output.read_text())["findings"]
    late = [f for f in findings if f["rule_id"] == "DP-AuditComplete" and "deadline" in f["message"]]
    assert late and late[0]["status"] == "unverifiable" and "s3" in late[0]["message"]
    assert code in (1, 3)  # judged, and what was read in time is reported
    assert not any(f["arn"] == "arn:aws:s3:::plain-bucket" for f in findings)  # never read, never passed
