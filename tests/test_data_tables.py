"""A scan reads the JSON copies of the YAML data tables (scripts/data_tables.py writes them):
each copy must say exactly what its YAML says, or an edit of the YAML would silently not apply."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import data_tables  # noqa: E402


@pytest.mark.parametrize("source", data_tables.TABLES, ids=lambda p: p.name)
def test_json_copy_says_what_the_yaml_says(source):
    copy = json.loads(source.with_suffix(".json").read_text(encoding="utf-8"))
    assert copy["table"] == yaml.safe_load(source.read_text(encoding="utf-8")), (
        f"{source.with_suffix('.json').name} is out of date: run scripts/data_tables.py")


def test_a_scan_does_not_import_yaml():
    """The point of the copies: PyYAML stays out of a scan of a JSON template."""
    import subprocess
    template = ROOT / "examples/noncompliant/open-network.json"
    code = ("import sys; from dpguard.cli import main\n"
            f"sys.argv = ['dpguard', 'scan', {str(template)!r}, '--format', 'json', '--output', '/dev/null']\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print('yaml' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False", out.stdout + out.stderr
