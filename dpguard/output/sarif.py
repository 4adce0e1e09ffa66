"""SARIF 2.1.0 for code scanning: every rule with its clause and help text, one result per
finding, acknowledged findings as accepted suppressions."""
from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

from .. import __version__
from ..engine import coverage
from ..engine.evaluate import Report
from ..engine.findings import ACKNOWLEDGED, UNVERIFIABLE
from .text import valid_unicode

SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"


def _uri(path: str) -> str:
    p = Path(path)
    return p.as_uri() if p.is_absolute() else quote(p.as_posix())


def _rule(rule) -> dict:
    return {
        "id": rule.rule_id,
        "name": rule.rule_id.removeprefix("DP-"),
        "shortDescription": {"text": rule.title},
        "fullDescription": {"text": rule.rationale},
        "help": {
            "text": f"Clause {rule.clause} of the Data Protection Policy. {rule.rationale}\n"
                    f"Fix: {rule.remediation}",
            "markdown": f"**Clause {rule.clause}** of the Data Protection Policy.\n\n{rule.rationale}"
                        f"\n\n**Fix**\n\n```python\n{rule.remediation}\n```",
        },
        "defaultConfiguration": {"level": rule.severity},
        "properties": {"clause": rule.clause, "severity": rule.severity,
                       "resourceTypes": list(rule.resource_types),
                       "tags": ["data-protection", f"clause-{rule.clause}"]},
    }


def _result(f, index: int) -> dict:
    text = f.message if f.status != UNVERIFIABLE else f"Unverifiable: {f.message}"
    location: dict = {"physicalLocation": {"artifactLocation": {"uri": _uri(f.template)}}}
    if f.logical_id:
        location["logicalLocations"] = [{
            "name": f.logical_id,
            "fullyQualifiedName": f.locator or f"{f.stack}/{f.logical_id}",
            "kind": "resource"}]
    result = {
        "ruleId": f.rule_id,
        "ruleIndex": index,
        "level": f.severity,
        "message": {"text": f"{text} ({f.property_path or 'resource'})"},
        "locations": [location],
        "properties": {"clause": f.clause, "status": f.status, "stack": f.stack,
                       "resourceType": f.resource_type, "propertyPath": f.property_path,
                       "remediation": f.remediation},
    }
    if f.status == ACKNOWLEDGED:
        result["suppressions"] = [{"kind": "external", "status": "accepted",
                                   "justification": f.acknowledgment["reason"]}]
    return result


def document(report: Report, errors: list) -> dict:
    index = {rule.rule_id: i for i, rule in enumerate(report.rules)}
    rules = [_rule(rule) for rule in report.rules]
    notifications = [{"level": "error", "message": {"text": e.message},
                      "locations": [{"physicalLocation": {"artifactLocation": {"uri": _uri(e.path)}}}]}
                     for e in errors]
    notifications += [{"level": "warning", "descriptor": {"id": "dpguard/not-judged"},
                       "message": {"text": f"{c.resources} resource(s) of type {c.resource_type} were not "
                                           f"judged: {c.reason}"}}
                      for c in report.not_judged]
    run = {
        "tool": {"driver": {"name": "dpguard", "version": __version__, "rules": rules}},
        "artifacts": [{"location": {"uri": _uri(t.path)}} for t in report.templates],
        "results": [_result(f, index[f.rule_id]) for f in report.findings],
        "invocations": [{"executionSuccessful": not errors,
                         "toolExecutionNotifications": notifications}],
        "properties": {"coverage": coverage.summary(report.coverage)},
    }
    return {"$schema": SCHEMA, "version": "2.1.0", "runs": [run]}


def render(report: Report, errors: list) -> str:
    return json.dumps(valid_unicode(document(report, errors)), indent=2) + "\n"
