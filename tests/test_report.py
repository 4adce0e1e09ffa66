"""`dpguard report`: the auditor report's data, Markdown and CSV, from cloud assemblies (with
CDK's validation report), templates and saved scan JSON; bad input never loses the report."""
from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sqs as sqs

import dpguard
from dpguard.cli import main
from dpguard.report import build, write
from dpguard.rules import catalogue

DATA = Path(__file__).parent / "data" / "cdk"
EXAMPLES = Path(__file__).parent.parent / "examples"


@pytest.fixture(scope="module")
def enforced_assembly(tmp_path_factory) -> Path:
    """A real synth with enforce(): a dpguard and a cdk-nag acknowledgment, one violation."""
    outdir = tmp_path_factory.mktemp("assembly") / "cdk.out"
    app = cdk.App(outdir=str(outdir))
    stack = cdk.Stack(app, "Orders")
    key = kms.Key(stack, "Key", enable_key_rotation=True)
    queue = sqs.Queue(stack, "Jobs", enforce_ssl=True, encryption_master_key=key)
    cdk.Tags.of(queue).add("data-classification", "confidential")
    cdk.Tags.of(queue).add("data-owner", "orders-team")
    dpguard.acknowledge(queue, "AwsSolutions-SQS3", "jobs are replayed from the order log, no DLQ needed",
                        ticket="OPS-7")
    legacy = kms.Key(stack, "Legacy")
    dpguard.acknowledge(legacy, "DP-KmsKeyRotation", "imported key material cannot rotate automatically",
                        ticket="SEC-101", expires="2099-12-31")
    dpguard.enforce(app)
    try:
        app.synth()
    except RuntimeError as e:  # DP-SecurityAlertPath: no alarm path in this app
        assert "DP-SecurityAlertPath" in str(e)
    return outdir


@pytest.fixture(scope="module")
def data(enforced_assembly) -> dict:
    return build([str(enforced_assembly)])


def clause(data: dict, number: int) -> dict:
    return next(c for c in data["clauses"] if c["number"] == number)


def test_every_clause_is_in_the_matrix_process_ones_marked(data):
    assert [c["number"] for c in data["clauses"]] == list(range(1, 12))
    assert clause(data, 11)["status"] == "process" and not clause(data, 11)["automated"]
    assert clause(data, 11)["process_controls"]
    assert clause(data, 4)["process_controls"], "clause 4's plan and deadlines are process controls too"


def test_controls_count_what_they_judged(data):
    rotation = next(c for c in clause(data, 7)["controls"] if c["rule_id"] == "DP-KmsKeyRotation")
    assert rotation["evaluated"] == 2 and rotation["passed"] == 1 and rotation["acknowledged"] == 1
    alert = next(c for c in clause(data, 4)["controls"] if c["rule_id"] == "DP-SecurityAlertPath")
    assert alert["violations"] == 1
    assert clause(data, 4)["status"] == "fail"
    # Our rotation rule is acknowledged; cdk-nag's own (KMS5) is not, and fails the clause.
    assert {"pack": "AwsSolutions", "rule_id": "AwsSolutions-KMS5", "violations": 1, "acknowledged": 0} \
        in clause(data, 7)["nag_rules"]
    assert clause(data, 7)["status"] == "fail"
    assert clause(data, 3)["status"] in ("pass", "not applicable")


def test_acknowledgments_of_both_sources_with_reason_and_ticket(data):
    acks = {(a["source"], a["rule_id"]): a for a in data["acknowledgments"]}
    ours = acks[("dpguard", "DP-KmsKeyRotation")]
    assert ours["status"] == "holds" and ours["ticket"] == "SEC-101" and ours["expires"] == "2099-12-31"
    assert ours["construct_path"] == "Orders/Legacy/Resource"
    nag = acks[("AwsSolutions", "AwsSolutions-SQS3")]
    assert nag["construct_path"] == "Orders/Jobs" and nag["ticket"] == "OPS-7"
    assert "replayed from the order log" in nag["reason"]


def test_cdk_nag_results_sit_beside_ours_with_their_clause(data):
    sqs3 = [f for f in data["findings"] if f["rule_id"] == "AwsSolutions-SQS3"]
    assert sqs3 and all(f["source"] == "AwsSolutions" and f["status"] == "acknowledged" for f in sqs3)
    assert [p["pack"] for p in data["nag"]] == ["AwsSolutions"]
    iam = [r for c in data["clauses"] for r in c["nag_rules"]]
    assert all(r["pack"] == "AwsSolutions" for r in iam)


def test_evidence_ties_the_report_to_the_templates(data, enforced_assembly):
    inputs = {Path(i["path"]).name: i for i in data["evidence"]["inputs"]}
    template = enforced_assembly / "Orders.template.json"
    assert inputs["Orders.template.json"]["sha256"] == hashlib.sha256(template.read_bytes()).hexdigest()
    assert inputs["validation-report.json"]["kind"] == "cdk-validation-report"
    versions = data["evidence"]["versions"]
    assert versions["aws-cdk-lib"] == "2.275.0" and versions["cdk-nag"] == "3.0.2"
    assert data["evidence"]["catalogue"]["rules"] == data["summary"]["rules"] == len(catalogue())
    assert data["evidence"]["problems"] == []


def test_written_files_carry_the_data_files_hash(data, tmp_path):
    paths = write(data, tmp_path)
    digest = hashlib.sha256(paths["json"].read_bytes()).hexdigest()
    assert json.loads(paths["json"].read_text()) == data
    assert digest in paths["markdown"].read_text()
    assert digest in paths["html"].read_text()
    markdown = paths["markdown"].read_text()
    assert "| 11 Communication | 📋 process control |" in markdown
    assert "`DP-SecurityAlertPath`" in markdown


def test_csv_keeps_cdk_nags_old_columns(data, tmp_path):
    rows = list(csv.DictReader(io.StringIO(write(data, tmp_path)["csv"].read_text())))
    assert list(rows[0]) == ["Rule ID", "Resource ID", "Compliance", "Exception Reason", "Rule Level", "Rule Info"]
    by_rule = {r["Rule ID"]: r for r in rows}
    assert by_rule["DP-KmsKeyRotation"]["Compliance"] == "Suppressed"
    assert "imported key material" in by_rule["DP-KmsKeyRotation"]["Exception Reason"]
    assert by_rule["DP-SecurityAlertPath"]["Compliance"] == "Non-Compliant"


def test_an_expired_acknowledgment_is_flagged(tmp_path):
    template = tmp_path / "legacy.yaml"
    template.write_text("""
Resources:
  Legacy:
    Type: AWS::KMS::Key
    Metadata:
      cdk_nag:
        rules_to_suppress:
          - {id: DP-KmsKeyRotation, reason: imported key material cannot rotate, expires: 2020-01-31}
    Properties: {EnableKeyRotation: false}
""")
    data = build([str(template)])
    ack = next(a for a in data["acknowledgments"] if a["rule_id"] == "DP-KmsKeyRotation")
    assert ack["status"] == "expired" and "2020-01-31" in ack["problem"]
    assert data["summary"]["expired_acknowledgments"] == 1
    assert clause(data, 7)["status"] == "fail"


def test_saved_scan_json_is_evidence_too(tmp_path, capsys):
    saved = tmp_path / "scan.json"
    assert main(["scan", str(EXAMPLES / "noncompliant"), "--format", "json", "-o", str(saved)]) == 1
    data = build([str(saved)])
    scanned = json.loads(saved.read_text())
    assert len(data["findings"]) == len(scanned["findings"])
    assert {i["kind"] for i in data["evidence"]["inputs"]} == {"scan-json"}
    evaluated = sum(c["evaluated"] or 0 for cl in data["clauses"] for c in cl["controls"])
    assert evaluated == sum(r["evaluated"] for r in scanned["rules"])


def test_cli_writes_every_format_and_prints_where(enforced_assembly, tmp_path, capsys):
    assert main(["report", str(enforced_assembly), "--out", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    for name in ("dpguard-report.html", "dpguard-report.md", "dpguard-report.json", "dpguard-findings.csv"):
        assert (tmp_path / "r" / name).is_file() and name in out


# ---------------------------------------------------------------- bad input: said, never a traceback

def copy_assembly(tmp_path: Path) -> Path:
    target = tmp_path / "cdk.out"
    shutil.copytree(DATA / "secure.out", target)
    return target


def report_problems(tmp_path: Path, paths: list[str], capsys) -> list[str]:
    assert main(["report", *paths, "--out", str(tmp_path / "report")]) == 0
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return json.loads((tmp_path / "report" / "dpguard-report.json").read_text())["evidence"]["problems"]


def test_an_assembly_without_a_validation_report(tmp_path, capsys):
    problems = report_problems(tmp_path, [str(copy_assembly(tmp_path))], capsys)
    assert any("validation-report.json: not found" in p for p in problems)


def test_a_corrupt_validation_report(tmp_path, capsys):
    assembly = copy_assembly(tmp_path)
    (assembly / "validation-report.json").write_text("{not json")
    problems = report_problems(tmp_path, [str(assembly)], capsys)
    assert any("validation-report.json: cannot read" in p for p in problems)


def test_a_missing_template(tmp_path, capsys):
    assembly = copy_assembly(tmp_path)
    (assembly / "Secure.template.json").unlink()
    problems = report_problems(tmp_path, [str(assembly)], capsys)
    assert any("Secure.template.json" in p for p in problems)


def test_results_of_another_dpguard_version(tmp_path, capsys):
    saved = tmp_path / "old.json"
    saved.write_text(json.dumps({"tool": {"name": "dpguard", "version": "0.0.9"}, "summary": {}, "findings": []}))
    problems = report_problems(tmp_path, [str(saved)], capsys)
    assert any("made by dpguard 0.0.9" in p for p in problems)


def test_a_path_that_does_not_exist(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nowhere"), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "no such file or directory" in err and len(err.strip().splitlines()) == 1


def test_the_report_says_which_resource_types_no_rule_judged(tmp_path, capsys):
    template = tmp_path / "app.yaml"
    template.write_text("Resources:\n"
                        "  Seed: {Type: Custom::DatabaseSeed, Properties: {ServiceToken: arn:aws:lambda:us-east-1:123456789012:function:seed}}\n"
                        "  Route: {Type: AWS::EC2::Route, Properties: {RouteTableId: rtb-1, DestinationCidrBlock: 0.0.0.0/0}}\n")
    saved = tmp_path / "scan.json"
    main(["scan", str(template), "--format", "json", "-o", str(saved)])
    types = build([str(template)])["resource_types"]
    assert (types["resource_types"], types["nothing_to_judge"]) == (2, 1)
    assert [(t["resource_type"], t["resources"]) for t in types["not_judged"]] == [("Custom::DatabaseSeed", 1)]
    # a saved scan brings what it did not judge along
    assert [t["source"] for t in build([str(saved)])["resource_types"]["not_judged"]] == [str(saved)]
    write(build([str(template)]), tmp_path / "out")
    html = (tmp_path / "out" / "dpguard-report.html").read_text()
    assert 'id="not-judged"' in html and "Custom::DatabaseSeed" in html
    assert "Custom::DatabaseSeed" in (tmp_path / "out" / "dpguard-report.md").read_text()
