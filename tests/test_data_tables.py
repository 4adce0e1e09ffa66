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


def test_cdk_made_markers_are_those_of_its_patterns():
    source = ROOT / "dpguard/engine/cdk_made.yaml"
    copy = json.loads(source.with_suffix(".json").read_text(encoding="utf-8"))
    assert copy["markers"] == data_tables.markers(yaml.safe_load(source.read_text(encoding="utf-8"))), (
        "cdk_made.json's markers are out of date: run scripts/data_tables.py")


def test_required_texts_of_patterns():
    required = data_tables.required_texts
    assert required(r"/LogRetention[0-9a-f]{32}(/|$)") == {"/LogRetention"}
    assert required(r"^(Custom)?[A-Za-z0-9]+CustomResourceProvider(Role|Handler)") == {"CustomResourceProvider"}
    assert required(r"/(?P<id>Custom::X)(/|$)|/AutoDeleteY(/|$)") == {"Custom::X", "AutoDeleteY"}
    assert required(r"(ab)+cd?") == {"ab"}  # "c" is shorter; a repeat of at least once counts
    assert required(r"x(ab)*") == {"x"}  # a repeat that may be absent does not
    assert required(r"[0-9]+") is None and required(r"(?i)Bucket") is None and required(r"a|[bc]") is None


# Every string that some entry's pattern matches holds one of the markers a scan tests first.
@pytest.mark.parametrize("kind", ["path", "logical_id"])
def test_every_match_of_a_cdk_made_pattern_holds_a_marker(kind):
    from hypothesis import given, settings, strategies as st

    from dpguard.engine import cdk_made

    entries = cdk_made._entries()
    markers = cdk_made._data()["markers"][kind]

    @settings(max_examples=300, deadline=None)
    @given(st.sampled_from(entries).flatmap(lambda e: st.from_regex(e[kind])))
    def holds_a_marker(text):
        assert any(m in text for m in markers), text

    holds_a_marker()
