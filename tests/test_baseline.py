"""`--baseline FILE`: a brownfield repository records today's failing findings, and later scans
fail only on new ones; what the baseline lists is still reported, never as compliant."""
from __future__ import annotations

import json
from pathlib import Path

import boto3
import jsonschema
import pytest
from moto import mock_aws

from dpguard.cli import main
from dpguard.engine import baseline
from dpguard.engine.findings import Finding

SCHEMA = json.loads((Path(__file__).parent / "data" / "sarif-schema-2.1.0.json").read_text())

# written for this test: an open security group and a bucket without TLS-only policy
LEGACY = """\
Resources:
  Admin:
    Type: AWS::EC2::SecurityGroup
    Metadata: {aws:cdk:path: Legacy/Admin/Resource}
    Properties:
      GroupDescription: admin access
      SecurityGroupIngress:
        - {IpProtocol: tcp, FromPort: 22, ToPort: 22, CidrIp: 0.0.0.0/0}
  Data:
    Type: AWS::S3::Bucket
    Metadata: {aws:cdk:path: Legacy/Data/Resource}
"""


@pytest.fixture
def repo(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("legacy.yaml").write_text(LEGACY)
    return tmp_path


def scan(capsys, *argv):
    code = main(["scan", "legacy.yaml", "--baseline", ".dpguard-baseline.json", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def findings(out: str) -> list[dict]:
    return json.loads(out)["findings"]


def test_a_baseline_records_todays_findings_and_the_next_scan_passes(repo, capsys):
    code, _, err = scan(capsys, "--update-baseline", "--format", "json")
    recorded = json.loads(Path(".dpguard-baseline.json").read_text())
    assert code == 0 and "wrote" in err
    assert recorded["dpguard_baseline"] == 1
    assert {"rule_id": "DP-SgOpenIngress", "stack": "legacy", "resource": "Legacy/Admin/Resource",
            "property_path": "Properties/SecurityGroupIngress/0", "status": "violation"}.items() \
        <= next(e for e in recorded["findings"] if e["rule_id"] == "DP-SgOpenIngress").items()

    code, out, err = scan(capsys, "--format", "json")
    doc = json.loads(out)
    assert code == 0 and err == ""
    failing = [f for f in doc["findings"] if f["status"] in ("violation", "unverifiable")]
    assert failing and all(f["baselined"] is True for f in failing)
    # still violations, counted as such: a baseline never makes a finding compliant
    assert doc["summary"]["violations"] == sum(f["status"] == "violation" for f in failing)
    assert main(["scan", "legacy.yaml"]) == 1  # and without the baseline the scan fails as before


def test_only_a_new_finding_fails_and_unrelated_edits_keep_the_old_ones_matched(repo, capsys):
    scan(capsys, "--update-baseline")
    # moved, reworded, reformatted, another property added, and one new problem
    Path("legacy.yaml").write_text("""\
Description: the legacy stack, reformatted
Resources:
  Data:
    Type: AWS::S3::Bucket
    Metadata: {aws:cdk:path: Legacy/Data/Resource}
    Properties: {BucketName: legacy-data}
  Admin:
    Type: AWS::EC2::SecurityGroup
    Metadata: {aws:cdk:path: Legacy/Admin/Resource}
    Properties:
      GroupDescription: admin access from anywhere, still
      SecurityGroupIngress:
        - CidrIp: 0.0.0.0/0
          IpProtocol: tcp
          FromPort: 22
          ToPort: 22
        - {IpProtocol: tcp, FromPort: 3389, ToPort: 3389, CidrIp: 0.0.0.0/0}
""")
    code, out, _ = scan(capsys, "--format", "json")
    new = [(f["rule_id"], f["property_path"]) for f in findings(out)
           if f["status"] in ("violation", "unverifiable") and not f["baselined"]]
    assert code == 1
    assert new == [("DP-SgOpenIngress", "Properties/SecurityGroupIngress/1")]


def test_findings_gone_from_the_template_are_noted_as_fixed(repo, capsys):
    scan(capsys, "--update-baseline")
    Path("legacy.yaml").write_text(LEGACY.replace("0.0.0.0/0", "10.0.0.0/8"))
    code, _, err = scan(capsys, "--format", "json")
    assert code == 0
    [note] = [line for line in err.splitlines() if "fixed" in line]
    assert "1 finding(s)" in note and "DP-SgOpenIngress on Legacy/Admin/Resource" in note
    # --update-baseline shrinks the file
    scan(capsys, "--update-baseline")
    recorded = json.loads(Path(".dpguard-baseline.json").read_text())["findings"]
    assert "DP-SgOpenIngress" not in {e["rule_id"] for e in recorded}


def test_a_finding_is_matched_once_so_a_second_one_at_the_same_place_is_new():
    def finding(message: str) -> Finding:
        return Finding("DP-X", 1, "error", "violation", "t.json", "S", "Sg", "AWS::EC2::SecurityGroup",
                       None, "Properties/SecurityGroupIngress", message, "fix")
    old, new = finding("port 22"), finding("port 3389")
    fixed = baseline.apply([baseline.entry(old)], [old, new], {"DP-X"})
    assert (old.baselined, new.baselined, fixed) == (True, False, [])


def test_a_baseline_written_without_construct_paths_matches_by_logical_id():
    f = Finding("DP-X", 1, "error", "violation", "t.json", "S", "Sg", "AWS::EC2::SecurityGroup",
                "App/Sg/Resource", "Properties/X", "m", "fix")
    assert baseline.apply([baseline.Entry("DP-X", "S", "Sg", "Properties/X")], [f], {"DP-X"}) == []
    assert f.baselined is True


def test_the_table_says_how_many_are_baselined(repo, capsys):
    scan(capsys, "--update-baseline")
    Path("legacy.yaml").write_text(LEGACY + """\
  Open:
    Type: AWS::EC2::SecurityGroup
    Properties:
      GroupDescription: new
      SecurityGroupIngress: [{IpProtocol: "-1", CidrIp: 0.0.0.0/0}]
""")
    code, out, _ = scan(capsys)
    baselined = len(json.loads(Path(".dpguard-baseline.json").read_text())["findings"])
    assert code == 1
    assert f"baseline: {baselined} of them baselined (not failing), " in out
    assert "violation(s)" in out and "VIOLATION" in out  # the baselined ones are still listed


def test_sarif_says_which_results_are_new(repo, capsys):
    scan(capsys, "--update-baseline")
    Path("legacy.yaml").write_text(LEGACY.replace(
        "CidrIp: 0.0.0.0/0}", "CidrIp: 0.0.0.0/0}\n        - {IpProtocol: tcp, FromPort: 23, ToPort: 23, CidrIp: 0.0.0.0/0}"))
    code, out, _ = scan(capsys, "--format", "sarif")
    doc = json.loads(out)
    jsonschema.validate(doc, SCHEMA)
    states = {(r["ruleId"], r["baselineState"]) for r in doc["runs"][0]["results"]}
    assert code == 1
    assert ("DP-SgOpenIngress", "new") in states and ("DP-S3TlsOnly", "unchanged") in states


def test_warnings_are_recorded_too(repo, capsys):
    scan(capsys, "--update-baseline")
    assert main(["scan", "legacy.yaml", "--baseline", ".dpguard-baseline.json", "--fail-on", "warning"]) == 0


@pytest.mark.parametrize("content,problem", [
    ("{", "not valid JSON"),
    ("[]", "not a dpguard baseline"),
    ('{"dpguard_baseline": 2, "findings": []}', "not a dpguard baseline"),
    ('{"dpguard_baseline": 1, "findings": {}}', "must be a list"),
    ('{"dpguard_baseline": 1, "findings": [{"rule_id": "DP-X", "stack": "s", "resource": 3, "property_path": ""}]}',
     "finding 0"),
    (b"\xff\xfe", "not valid JSON"),
])
def test_a_malformed_baseline_is_one_line_and_exit_2(repo, capsys, content, problem):
    target = Path(".dpguard-baseline.json")
    target.write_bytes(content) if isinstance(content, bytes) else target.write_text(content)
    code, out, err = scan(capsys)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and problem in err and ".dpguard-baseline.json" in err


def test_usage_errors(repo, capsys):
    code, _, err = scan(capsys)
    assert code == 2 and "no such baseline file" in err
    assert main(["scan", "legacy.yaml", "--update-baseline"]) == 2
    assert "needs --baseline" in capsys.readouterr().err


def test_a_run_that_could_not_read_an_input_does_not_rewrite_the_baseline(repo, capsys):
    scan(capsys, "--update-baseline")
    before = Path(".dpguard-baseline.json").read_text()
    Path("broken.json").write_text("{")
    code = main(["scan", "legacy.yaml", "broken.json", "--baseline", ".dpguard-baseline.json", "--update-baseline"])
    err = capsys.readouterr().err
    assert code == 2 and "baseline not updated" in err
    assert Path(".dpguard-baseline.json").read_text() == before


def test_audit_takes_a_baseline_keyed_by_arn(tmp_path, monkeypatch):
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": "/nonexistent",
                        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent"}.items():
        monkeypatch.setenv(name, value)
    file = str(tmp_path / "audit-baseline.json")
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="old-bucket")
        assert main(["audit", "--baseline", file, "--update-baseline", "-o", str(tmp_path / "a.txt")]) == 0
        assert "arn:aws:s3:::old-bucket" in {e["resource"] for e in json.loads(Path(file).read_text())["findings"]}
        s3.create_bucket(Bucket="new-bucket")
        output = tmp_path / "audit.json"
        assert main(["audit", "--baseline", file, "--format", "json", "-o", str(output)]) == 1
    new = {f["arn"] for f in json.loads(output.read_text())["findings"] if f.get("baselined") is False
           and f["status"] == "violation"}
    assert new == {"arn:aws:s3:::new-bucket"}


def test_the_pull_request_comment_and_junit_fail_only_on_new_findings(repo, capsys):
    import xml.etree.ElementTree as ET

    scan(capsys, "--update-baseline")
    code, out, _ = scan(capsys, "--format", "markdown")
    assert code == 0 and "✅ no policy violations" in out and "in the baseline (not failing)" in out
    assert "— in the baseline" in out  # the baselined rows are still listed
    code, out, _ = scan(capsys, "--format", "junit")
    suites = ET.fromstring(out)
    assert code == 0 and suites.get("failures") == "0"
    assert any("in the baseline" in (s.get("message") or "") for s in suites.iter("skipped"))
    Path("legacy.yaml").write_text(LEGACY.replace(
        "CidrIp: 0.0.0.0/0}", "CidrIp: 0.0.0.0/0}\n        - {IpProtocol: tcp, FromPort: 23, ToPort: 23, CidrIp: 0.0.0.0/0}"))
    code, out, _ = scan(capsys, "--format", "junit")
    assert code == 1 and ET.fromstring(out).get("failures") == "1"
