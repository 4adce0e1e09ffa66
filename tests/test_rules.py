"""Every rule against its good and bad fixtures (tests/fixtures/rules/<rule id>.yaml).

Each fixture file is a YAML list of cases read with dpguard's own CloudFormation YAML loader, so
short-form tags work inside them:

    - name: what the case shows
      expect: pass | violation | unverifiable
      at: LogicalId            # optional: the resource the finding must land on
      config: {...}            # optional: Config fields for this case
      template: {Resources: ...}   # or templates: [ {...}, {...} ] for cross-stack cases
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from dpguard.engine import Config, evaluate
from dpguard.engine.loader import CfnYamlLoader
from dpguard.engine.template import App
from dpguard.rules import catalogue

FIXTURES = Path(__file__).parent / "fixtures" / "rules"
RULES = {r.rule_id: r for r in catalogue()}


def load_cases(rule_id: str) -> list[dict]:
    path = FIXTURES / f"{rule_id}.yaml"
    assert path.is_file(), f"{rule_id} has no fixture file {path}"
    return yaml.load(path.read_text(), Loader=CfnYamlLoader)


def tricky(node) -> bool:
    """Does a template use an intrinsic function, or a boolean or number written as a string?"""
    if isinstance(node, dict):
        return any(k == "Ref" or str(k).startswith("Fn::") or tricky(v) for k, v in node.items())
    if isinstance(node, list):
        return any(tricky(v) for v in node)
    return isinstance(node, str) and (node.lower() in ("true", "false") or node.isdigit())


def run_case(rule_id: str, case: dict):
    app = App()
    templates = case.get("templates") or [case["template"]]
    for index, template in enumerate(templates):
        # `live: true`: a template as `dpguard audit` writes it from a live account
        app.add(f"{case['name']}-{index}.yaml", template, f"Stack{index}", live=bool(case.get("live")))
    config = Config(**{k: (tuple(v) if isinstance(v, list) else v)
                       for k, v in (case.get("config") or {}).items()})
    return [f for f in evaluate(app, config, [RULES[rule_id]]).findings if f.rule_id == rule_id]


@pytest.mark.parametrize("rule_id", sorted(RULES))
def test_fixture_file_has_enough_cases(rule_id):
    cases = load_cases(rule_id)
    expects = [c["expect"] for c in cases]
    assert expects.count("pass") >= 1, "needs at least one compliant case"
    bad = [c for c in cases if c["expect"] in ("violation", "unverifiable")]
    assert len(bad) >= 2, "needs at least two non-compliant cases"
    assert any(tricky(c.get("template") or c.get("templates")) for c in bad), \
        "one non-compliant case must use an intrinsic or a string boolean/number"


def all_cases() -> list:
    return [pytest.param(rule_id, case, id=f"{rule_id}-{case['name']}")
            for rule_id in sorted(RULES) if (FIXTURES / f"{rule_id}.yaml").is_file()
            for case in load_cases(rule_id)]


@pytest.mark.parametrize("rule_id,case", all_cases())
def test_rule_case(rule_id, case):
    findings = run_case(rule_id, case)
    failing = [f for f in findings if f.fails]
    if case["expect"] == "pass":
        assert not failing, [dataclasses.asdict(f) for f in failing]
        return
    statuses = {f.status for f in failing}
    assert case["expect"] in statuses, f"expected {case['expect']}, got {[(f.status, f.message) for f in findings]}"
    if "at" in case:
        assert case["at"] in {f.logical_id for f in failing if f.status == case["expect"]}
    for f in failing:
        assert f.message and f.remediation and f.property_path is not None
