"""`dpguard scan` starts fast: it never imports the AWS SDK, rich, the CDK or jsonschema, which
only other subcommands and output formats need (each costs more start-up time than judging a
small app). Run in a fresh interpreter, so that other tests' imports do not count."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
HEAVY = ("boto3", "botocore", "rich", "aws_cdk", "jsii", "jsonschema", "moto")

PROBE = """
import json, os, sys
from dpguard.cli import main
code = main(["scan", sys.argv[1], "--format", sys.argv[2], "--output", os.devnull])
print(json.dumps({"code": code, "heavy": sorted(m for m in sys.modules if m.split(".")[0] in %r)}))
""" % (HEAVY,)


def probe(example: str, fmt: str) -> dict:
    result = subprocess.run([sys.executable, "-c", PROBE, str(EXAMPLES / example), fmt],
                            capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_json_scan_imports_no_heavy_library():
    found = probe("noncompliant", "json")
    assert found["code"] == 1  # the example has violations: the scan really ran
    assert found["heavy"] == []


def test_plain_table_scan_imports_no_heavy_library():
    # without a terminal and without a table of findings to draw, the view is plain lines
    found = probe("compliant", "table")
    assert found["code"] == 0
    assert found["heavy"] == []



def test_plain_lines_are_what_rich_prints(monkeypatch):
    """The plain view without rich is the same text rich prints: a many-findings report and a
    clean one, each rendered both ways."""
    from dpguard.engine import Config, evaluate, load
    from dpguard.output import table
    from dpguard.rules import catalogue

    for example in ("compliant", "noncompliant"):
        app, _ = load([str(EXAMPLES / example)])
        report = evaluate(app, Config(), catalogue())
        monkeypatch.setattr(table, "MAX_TABLE_ROWS", 0)  # the one-line-per-finding view
        plain = table.render(report)
        monkeypatch.setattr(table, "_fits", lambda text: False)
        assert plain == table.render(report)
        monkeypatch.undo()
