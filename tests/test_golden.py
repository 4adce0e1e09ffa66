"""Golden files: the exact JSON, Markdown and SARIF results for one example template. A change
in wording or shape shows up here for review. Regenerate with DPGUARD_UPDATE_GOLDEN=1."""
from __future__ import annotations

import json
import os

import pytest

from dpguard.cli import main

EXAMPLE = "examples/noncompliant/open-network.json"


def sarif_results(text: str) -> str:
    run = json.loads(text)["runs"][0]
    return json.dumps({"results": run["results"], "artifacts": run["artifacts"]}, indent=2) + "\n"


@pytest.mark.parametrize("fmt,suffix,select", [
    ("json", "json", lambda text: text),
    ("markdown", "md", lambda text: text),
    ("sarif", "sarif.json", sarif_results),
])
def test_golden(capsys, monkeypatch, root, fmt, suffix, select):
    monkeypatch.chdir(root)
    assert main(["scan", EXAMPLE, "--format", fmt]) == 1
    actual = select(capsys.readouterr().out)
    golden = root / "tests" / "golden" / f"open-network.{suffix}"
    if os.environ.get("DPGUARD_UPDATE_GOLDEN"):
        golden.write_text(actual)
    assert actual == golden.read_text()
