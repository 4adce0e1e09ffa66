"""`dpguard scan` and `dpguard rules` as users and CI see them: formats, exit codes, errors."""
from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest

from dpguard.cli import main

SCHEMA = json.loads((Path(__file__).parent / "data" / "sarif-schema-2.1.0.json").read_text())

BAD = """\
Resources:
  Data:
    Type: AWS::S3::Bucket
    Metadata:
      aws:cdk:path: App/Data/Resource
      cdk_nag:
        rules_to_suppress:
          - id: DP-S3AccessLogs
            reason: Access logs go to the central account's Security Lake
          - id: DP-S3WebsiteHosting
            reason: stale acknowledgment that matches nothing here
  Open:
    Type: AWS::EC2::SecurityGroup
    Properties:
      GroupDescription: open
      SecurityGroupIngress:
        - {IpProtocol: tcp, FromPort: "22", ToPort: "22", CidrIp: 0.0.0.0/0}
"""
GOOD = """\
Resources:
  Topic:
    Type: AWS::SNS::Topic
    Properties:
      KmsMasterKeyId: alias/my-key
  TopicPolicy:
    Type: AWS::SNS::TopicPolicy
    Properties:
      Topics: [!Ref Topic]
      PolicyDocument:
        Statement:
          - {Effect: Deny, Principal: "*", Action: "sns:*", Resource: !Ref Topic, Condition: {Bool: {"aws:SecureTransport": "false"}}}
"""


@pytest.fixture
def bad(tmp_path) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text(BAD)
    return path


@pytest.fixture
def good(tmp_path) -> Path:
    path = tmp_path / "good.yaml"
    path.write_text(GOOD)
    return path


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_json_contract_and_exit_1(capsys, bad):
    code, out, err = run(capsys, "scan", str(bad), "--format", "json")
    assert code == 1 and err == ""
    doc = json.loads(out)
    assert doc["tool"]["name"] == "dpguard"
    assert set(doc["summary"]) == {"templates", "resources", "violations", "acknowledged", "unverifiable"}
    assert doc["summary"]["templates"] == 1 and doc["summary"]["resources"] == 2
    keys = {"rule_id", "clause", "severity", "status", "template", "stack", "logical_id", "resource_type",
            "construct_path", "property_path", "message", "remediation", "acknowledgment"}
    for f in doc["findings"]:
        assert set(f) == keys
        assert f["status"] in ("violation", "acknowledged", "unverifiable")
    by_rule = {f["rule_id"]: f for f in doc["findings"]}
    assert by_rule["DP-S3AccessLogs"]["status"] == "acknowledged"
    assert by_rule["DP-S3AccessLogs"]["acknowledgment"] == {
        "reason": "Access logs go to the central account's Security Lake", "expires": None}
    assert by_rule["DP-S3TlsOnly"]["construct_path"] == "App/Data/Resource"
    assert [a["rule_id"] for a in doc["unused_acknowledgments"]] == ["DP-S3WebsiteHosting"]


def test_clean_scan_exits_0_and_fail_on_warning(capsys, good):
    code, out, _ = run(capsys, "scan", str(good), "--format", "json", "--skip-rule", "DP-DataOwnerTag",
                       "--skip-rule", "DP-DataClassificationTag", "--skip-rule", "DP-ConfidentialDataCmk")
    doc = json.loads(out)
    assert code == 0, doc["findings"]
    assert all(not f["status"] in ("violation", "unverifiable") or f["severity"] == "warning"
               for f in doc["findings"])
    if any(f["severity"] == "warning" for f in doc["findings"]):
        assert run(capsys, "scan", str(good), "--fail-on", "warning")[0] == 1


def test_sarif_is_valid_and_carries_clauses(capsys, bad):
    code, out, _ = run(capsys, "scan", str(bad), "--format", "sarif")
    doc = json.loads(out)
    jsonschema.validate(doc, SCHEMA)
    run_ = doc["runs"][0]
    rules = {r["id"]: r for r in run_["tool"]["driver"]["rules"]}
    assert rules["DP-S3TlsOnly"]["properties"]["clause"] == 3
    assert "enforce_ssl" in rules["DP-S3TlsOnly"]["help"]["text"]
    results = {r["ruleId"]: r for r in run_["results"]}
    assert run_["tool"]["driver"]["rules"][results["DP-S3TlsOnly"]["ruleIndex"]]["id"] == "DP-S3TlsOnly"
    assert results["DP-S3AccessLogs"]["suppressions"][0]["status"] == "accepted"
    assert results["DP-S3TlsOnly"]["locations"][0]["logicalLocations"][0]["name"] == "Data"


def test_sarif_with_an_input_error_is_still_valid(capsys, bad, tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    code, out, err = run(capsys, "scan", str(bad), str(broken), "--format", "sarif")
    assert code == 2 and "broken.json" in err
    doc = json.loads(out)
    jsonschema.validate(doc, SCHEMA)
    assert doc["runs"][0]["invocations"][0]["executionSuccessful"] is False


def test_junit(capsys, bad):
    code, out, _ = run(capsys, "scan", str(bad), "--format", "junit")
    root = ET.fromstring(out)
    assert root.tag == "testsuites" and int(root.get("failures")) >= 2
    failures = [c for c in root.iter("testcase") if c.find("failure") is not None]
    names = " ".join(c.get("name") for c in failures)
    assert "DP-S3TlsOnly" in names and "DP-SgOpenIngress" in names
    skipped = [c for c in root.iter("testcase") if c.find("skipped") is not None]
    assert any("DP-S3AccessLogs" in c.get("name") for c in skipped)
    assert any(c.find("failure") is None and c.find("skipped") is None for c in root.iter("testcase"))


def test_csv(capsys, bad):
    _, out, _ = run(capsys, "scan", str(bad), "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert rows and {"rule_id", "clause", "status", "remediation"} <= set(rows[0])
    assert any(r["rule_id"] == "DP-S3AccessLogs" and r["status"] == "acknowledged" for r in rows)


def test_markdown_pr_comment(capsys, bad):
    _, out, _ = run(capsys, "scan", str(bad), "--format", "markdown")
    assert out.startswith("## dpguard: ❌")
    assert "| ❌ | `DP-S3TlsOnly` | 3 |" in out
    assert "<details><summary>How to fix</summary>" in out and "enforce_ssl=True" in out
    assert "acknowledged: Access logs go" in out


def test_table_shows_rule_clause_resource_property_and_fix(capsys, bad):
    code, out, _ = run(capsys, "scan", str(bad))
    assert code == 1
    for text in ("DP-SgOpenIngress", "clause 1", "bad/Open", "AWS::EC2::SecurityGroup",
                 "Properties/SecurityGroupIngress", "fix:", "App/Data/Resource", "acknowledged:"):
        assert text in out, text
    assert "\x1b[" not in out  # no colour when not a terminal


def test_output_file(capsys, bad, tmp_path):
    target = tmp_path / "report.sarif"
    code, out, _ = run(capsys, "scan", str(bad), "--format", "sarif", "--output", str(target))
    assert code == 1 and out == ""
    assert json.loads(target.read_text())["version"] == "2.1.0"


@pytest.mark.parametrize("argv,message", [
    (["scan"], "the following arguments are required"),
    (["scan", "x.yaml", "--format", "pdf"], "invalid choice"),
    (["scan", "x.yaml", "--skip-rule", "DP-Nope"], "unknown rule id"),
    (["bogus"], "invalid choice"),
])
def test_usage_errors_exit_2_with_one_line(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2 and message in err and err.count("\n") == 1


def test_missing_path_and_empty_directory(capsys, tmp_path):
    code, _, err = run(capsys, "scan", str(tmp_path / "nope"))
    assert code == 2 and "no such file" in err
    code, _, err = run(capsys, "scan", str(tmp_path))
    assert code == 2 and "no CloudFormation templates found" in err


def test_config_file(capsys, bad, tmp_path):
    config = tmp_path / "dpguard.yaml"
    config.write_text("allowed_ingress:\n  - {ports: [22], resources: [Open]}\ndisabled_rules: [DP-S3TlsOnly]\n")
    _, out, _ = run(capsys, "scan", str(bad), "--format", "json", "--config", str(config))
    rules = {f["rule_id"] for f in json.loads(out)["findings"]}
    assert "DP-SgOpenIngress" not in rules and "DP-S3TlsOnly" not in rules
    config.write_text("colour: blue\n")
    code, _, err = run(capsys, "scan", str(bad), "--config", str(config))
    assert code == 2 and "unknown setting(s) colour" in err


def test_unverifiable_can_be_downgraded(capsys, tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("Parameters: {Cidr: {Type: String}}\nResources:\n  G:\n    Type: AWS::EC2::SecurityGroup\n"
                    "    Properties: {GroupDescription: g, SecurityGroupIngress: [{IpProtocol: tcp, FromPort: 443, "
                    "ToPort: 443, CidrIp: !Ref Cidr}]}\n")
    code, out, _ = run(capsys, "scan", str(path), "--format", "json")
    assert code == 1 and any(f["status"] == "unverifiable" for f in json.loads(out)["findings"])
    code, out, _ = run(capsys, "scan", str(path), "--format", "json", "--unverifiable", "warn")
    assert code == 0
    assert all(f["severity"] == "warning" for f in json.loads(out)["findings"] if f["status"] == "unverifiable")


def test_rules_command_formats(capsys):
    code, out, _ = run(capsys, "rules", "--format", "json")
    rules = json.loads(out)
    assert code == 0 and len(rules) >= 60
    for r in rules:
        assert {"rule_id", "clause", "severity", "resource_types", "title", "remediation"} <= set(r)
        assert 1 <= r["clause"] <= 11
    assert {r["clause"] for r in rules} >= set(range(1, 10))
    _, table, _ = run(capsys, "rules")
    assert f"{len(rules)} rules" in table


def test_rule_reference_in_docs_is_current(capsys, root):
    _, out, _ = run(capsys, "rules", "--format", "markdown")
    assert (root / "docs" / "rules.md").read_text() == out, \
        "docs/rules.md is stale: run `dpguard rules --format markdown -o docs/rules.md`"


def test_console_script_never_shows_a_traceback(tmp_path):
    broken = tmp_path / "t.yaml"
    broken.write_text("Resources:\n  A: {Type: AWS::S3::Bucket, Properties: [1, 2]}\n  B: {Properties: {}}\n")
    done = subprocess.run([sys.executable, "-m", "dpguard.cli", "scan", str(broken), "--format", "json"],
                          capture_output=True, text=True)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    findings = json.loads(done.stdout)["findings"]
    assert {(f["logical_id"], f["rule_id"]) for f in findings} >= {("A", "DP-ResourceReadable"),
                                                                   ("B", "DP-ResourceReadable")}


def test_scan_lists_types_no_rule_judges_and_strict_fails_them(tmp_path, capsys):
    template = tmp_path / "custom.yaml"
    template.write_text("Resources:\n"
                        "  Seed: {Type: Custom::DatabaseSeed, Properties: {ServiceToken: arn:aws:lambda:us-east-1:123456789012:function:seed}}\n"
                        "  Subnet: {Type: AWS::EC2::Subnet, Properties: {VpcId: vpc-1, CidrBlock: 10.0.0.0/24, MapPublicIpOnLaunch: false}}\n")
    assert main(["scan", str(template), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["coverage"]["judged"] == 1
    assert [(t["resource_type"], t["resources"]) for t in doc["coverage"]["not_judged"]] == [("Custom::DatabaseSeed", 1)]
    assert main(["scan", str(template)]) == 0
    assert "not judged: Custom::DatabaseSeed (1): a custom resource" in capsys.readouterr().out
    assert main(["scan", str(template), "--strict", "--format", "json"]) == 1
    failing = json.loads(capsys.readouterr().out)["findings"]
    assert [(f["rule_id"], f["logical_id"]) for f in failing] == [("DP-ResourceTypeJudged", "Seed")]


def test_readme_counts_are_the_catalogues(root):
    from collections import Counter

    from dpguard.inventory import exemptions, judged_types, resource_types
    from dpguard.output.catalogue import clause_table
    from dpguard.rules import catalogue

    readme = (root / "README.md").read_text()
    rules = catalogue()
    assert "\n".join(clause_table(rules)) in readme, "README's rule table is stale: copy it from docs/rules.md"
    assert f"{len(rules)} rules over {len(judged_types(rules))} resource types" in readme
    types, judged, kinds = resource_types(), judged_types(rules), Counter(e.kind for e in exemptions().values())
    relevant = [t for t, topics in types.items() if topics]
    for text in (f"{len(relevant)} types do", f"judged by a rule ({sum(t in judged for t in relevant)})",
                 f"{kinds['nothing_to_judge']} reviewed with nothing", f"{kinds['not_yet_judged']} known gaps",
                 f"{kinds['partly_judged']} judged types with a control still unjudged"):
        assert text in " ".join(readme.split()), f"README's inventory numbers are stale: {text!r}"


def test_each_command_parses_alone_as_in_the_whole_parser(capsys):
    """`dpguard scan ...` builds only scan's parser: each command's help and errors are the same
    as the whole parser's, and `dpguard --help` still lists every command."""
    from dpguard.cli import SUBCOMMANDS, build_parser
    from dpguard.cli_common import UsageError

    def outcome(parser, argv):
        try:
            parser.parse_args(argv)
        except SystemExit:
            pass
        except UsageError as e:
            return str(e)
        return capsys.readouterr().out

    for name in SUBCOMMANDS:
        for argv in ([name, "--help"], [name, "--no-such-option"], [name]):
            assert outcome(build_parser(name), argv) == outcome(build_parser(), argv), argv
    listing = outcome(build_parser(), ["--help"])
    assert all(f"    {name}" in listing for name in SUBCOMMANDS)
