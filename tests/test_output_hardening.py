"""Template text that would break a writer (issue 14, item 3): a lone surrogate, control characters
and terminal escape sequences, rich markup, spreadsheet formulas, Markdown code-span breakers; and
the terminal view of a large report."""
from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET

import pytest

from dpguard.cli import main
from dpguard.engine.evaluate import Report
from dpguard.engine.findings import Acknowledgment, Finding
from dpguard.output import render_scan, report_csv
from dpguard.output.text import markdown_code, printable, spreadsheet_cell

# a JSON template can spell all of these; json.loads gives Python the lone surrogate as is
HOSTILE = r"""{"Resources": {
  "Bad\ud800Id": {"Type": "AWS::SQS::Queue", "Metadata": {"aws:cdk:path": "App/Bad\udfffPath/Resource"}},
  "Esc\u001b[31mRed\u001b]0;owned\u0007Ctl\u0001\u000b": {"Type": "AWS::SQS::Queue"},
  "[bold]Rich[/bold]": {"Type": "AWS::S3::Bucket", "Metadata": {"cdk_nag": {"rules_to_suppress": [
      {"id": "DP-S3WebsiteHosting", "reason": "stale: matches nothing"}]}}},
  "Formula": {"Type": "AWS::SQS::Queue", "Metadata": {"aws:cdk:path": "=HYPERLINK(\"http://x\")"}},
  "Tick`Id": {"Type": "AWS::SQS::Queue"}}}
"""
FORMATS = ("table", "csv", "junit", "markdown", "json", "sarif")


@pytest.fixture
def hostile(tmp_path):
    path = tmp_path / "hostile.json"
    path.write_text(HOSTILE, encoding="ascii")
    return path


def scan(path, fmt, tmp_path) -> str:
    out = tmp_path / f"out.{fmt}"
    assert main(["scan", str(path), "--format", fmt, "--output", str(out)]) == 1  # violations, no crash
    return out.read_bytes().decode("utf-8")  # strict: every writer wrote valid UTF-8


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_lone_surrogate_is_replaced_in_every_format(hostile, tmp_path, fmt):
    text = scan(hostile, fmt, tmp_path)
    if fmt in ("json", "sarif"):
        # json.dumps would write the escape \ud800, which jq and serde_json reject
        assert "\\ud800" not in text and "\\udfff" not in text
        text = json.dumps(json.loads(text), ensure_ascii=False)
    assert "Bad\ufffdId" in text or "Bad\ufffdPath" in text  # the construct path names it when there is one
    assert "\ud800" not in text and "\udfff" not in text


def test_json_keeps_paired_surrogates_and_control_characters(tmp_path):
    path = tmp_path / "t.json"
    path.write_text(r'{"Resources": {"Q\ud83d\ude00\u001b": {"Type": "AWS::SQS::Queue"}}}', encoding="ascii")
    found = json.loads(scan(path, "json", tmp_path))["findings"]
    assert {f["logical_id"] for f in found if f["logical_id"]} == {"Q\U0001f600\x1b"}  # data stays data


def test_junit_is_well_formed_xml_with_control_characters(hostile, tmp_path):
    text = scan(hostile, "junit", tmp_path)
    root = ET.fromstring(text)
    failures = "\n".join(f.text for f in root.iter("failure"))
    assert "Esc\\x1b[31mRed\\x1b]0;owned\\x07Ctl\\x01\\x0b" in failures


@pytest.mark.parametrize("fmt", ("table", "markdown"))
def test_terminal_escape_sequences_are_shown_not_sent(hostile, tmp_path, fmt):
    text = scan(hostile, fmt, tmp_path)
    assert "\x1b" not in text and "\x07" not in text and "\x01" not in text
    assert "Esc\\x1b[31mRed\\x1b]0;owned\\x07" in text


def test_coloured_table_sends_no_escape_sequence_from_the_template(hostile):
    from dpguard.engine import evaluate, load
    from dpguard.rules import catalogue

    app, errors = load([str(hostile)])
    text = render_scan(evaluate(app, None, catalogue()), "table", color=True)
    assert "\x1b[1;31m" in text or "\x1b[31;1m" in text  # rich's own colour is still there
    assert "\x1b[31mRed" not in text and "\x1b]0;owned" not in text and "\x07" not in text


def test_rich_markup_in_a_logical_id_prints_literally(hostile, tmp_path):
    text = scan(hostile, "table", tmp_path)
    assert "/[bold]Rich[/bold]" in text  # in the table
    assert "acknowledgment of DP-S3WebsiteHosting on [bold]Rich[/bold] in" in text  # and in the note


def test_markdown_code_span_survives_a_backtick(hostile, tmp_path):
    text = scan(hostile, "markdown", tmp_path)
    assert "`` hostile/Tick`Id ``" in text
    assert markdown_code("a`b") == "`` a`b ``" and markdown_code("plain") == "`plain`"


def test_scan_csv_neutralises_formulas(tmp_path):
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"Resources": {"Formula": {"Type": "AWS::SQS::Queue", "Metadata": {
        "aws:cdk:path": '=HYPERLINK("http://x")'}}}}), encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(scan(path, "csv", tmp_path))))
    paths = {r["construct_path"] for r in rows}
    assert "'=HYPERLINK(\"http://x\")" in paths and not any(p.startswith("=") for p in paths)
    assert {r["clause"] for r in rows} <= {str(n) for n in range(1, 12)}  # numbers stay numbers


def test_report_csv_neutralises_formulas():
    data = {"findings": [{"rule_id": "DP-X", "status": "violation", "message": "-1+2", "severity": "error",
                          "construct_path": "@SUM(A1:A9)", "clause": 7},
                         {"rule_id": "DP-Y", "status": "acknowledged", "message": "ok", "severity": "warning",
                          "construct_path": "App/Q", "acknowledgment": {"reason": "+cmd|' /C calc'!A0"}}]}
    rows = list(csv.reader(io.StringIO(report_csv.render(data))))
    assert rows[1][1] == "'@SUM(A1:A9)" and rows[1][5].startswith("'-1+2")
    assert rows[2][1] == "App/Q" and rows[2][3] == "'+cmd|' /C calc'!A0"


@pytest.mark.parametrize("value, cell", [("=1", "'=1"), ("+1", "'+1"), ("-1", "'-1"), ("@x", "'@x"),
                                         ("\tx", "'\tx"), ("\rx", "\\x0dx"), ("a=b", "a=b"), (7, 7),
                                         (None, "")])
def test_spreadsheet_cell(value, cell):
    assert spreadsheet_cell(value) == cell


def test_printable():
    assert printable("a\ud800b") == "a\ufffdb"
    assert printable("x\u202ey\x9b") == "x\\u202ey\\x9b"  # bidi override, C1 CSI
    assert printable("a\nb\tc") == "a\\x0ab\\x09c" and printable("a\nb\tc", lines=True) == "a\nb\tc"
    assert printable(None) == "" and printable(3) == "3"


def test_report_markdown_and_data_file_with_a_surrogate(tmp_path, hostile):
    assert main(["report", str(hostile), "--out", str(tmp_path / "r")]) in (0, 1)
    for name in ("dpguard-report.json", "dpguard-report.md", "dpguard-report.html", "dpguard-findings.csv"):
        text = (tmp_path / "r" / name).read_bytes().decode("utf-8")
        assert "Bad\ufffdId" in text or "Bad\ufffdPath" in text, name
        if name.endswith((".md", ".csv")):
            assert "\x1b" not in text, name
    md = (tmp_path / "r" / "dpguard-report.md").read_text(encoding="utf-8")
    assert "Esc\\x1b[31mRed" in md


def finding(i: int, **over) -> Finding:
    values = dict(rule_id=f"DP-Rule{i % 3}", clause=7, severity="error", status="violation",
                  template="t.json", stack="t", logical_id=f"Queue{i}", resource_type="AWS::SQS::Queue",
                  construct_path=None, property_path="Properties", message="not encrypted",
                  remediation=f"fix rule {i % 3}")
    values.update(over)
    return Finding(**values)


def test_a_large_report_prints_one_line_per_finding_and_each_fix_once():
    findings = [finding(i) for i in range(500)]
    findings.append(finding(500, status="acknowledged", acknowledgment={"reason": "accepted", "expires": None}))
    text = render_scan(Report(findings, [], {}, [], []), "table")
    lines = text.splitlines()
    assert all(any(line.endswith(f"t/Queue{i} AWS::SQS::Queue at Properties: not encrypted") for line in lines)
               for i in range(0, 500, 37))
    assert "t/Queue500 AWS::SQS::Queue at Properties: not encrypted — acknowledged: accepted" in text
    assert [text.count(f"fix rule {n}") for n in range(3)] == [1, 1, 1]
    assert "500 violation(s), 0 unverifiable, 1 acknowledged" in text
    assert "│" not in text  # no table


def test_a_large_report_escapes_template_text_too():
    findings = [finding(i) for i in range(300)] + [finding(300, logical_id="E\x1b]0;x\x07\ud800[red]r[/red]")]
    for color in (False, True):
        text = render_scan(Report(findings, [], {}, [], []), "table", color=color)
        assert "t/E\\x1b]0;x\\x07\ufffd[red]r[/red]" in text and "\x1b]0" not in text


def test_a_small_report_is_still_a_table():
    text = render_scan(Report([finding(1)], [], {}, [Acknowledgment("DP-X", "r", logical_id="[b]L[/b]",
                                                                   template="t.json")], []), "table")
    assert "│" in text and "fix rule 1" in text
    assert "acknowledgment of DP-X on [b]L[/b] in t.json matches no finding" in text
