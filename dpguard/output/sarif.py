"""SARIF 2.1.0 for code scanning: every rule with its clause and help text, one result per
finding, acknowledged findings as accepted suppressions. A result points at the line of the CDK
app that created the construct when the cloud assembly carries creation stack traces
(engine/sources.py), else at the resource's line in its template; files inside the repository
are relative to SRCROOT. With a baseline, each result says whether it is new."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from urllib.parse import quote

from .. import __version__
from ..engine import baseline, coverage, sources
from ..engine.evaluate import Report
from ..engine.findings import ACKNOWLEDGED, UNVERIFIABLE
from .json_text import dumps

SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
SRCROOT = "SRCROOT"


def _uri(path: str) -> str:
    p = Path(path)
    return p.as_uri() if p.is_absolute() else quote(p.as_posix())


def _artifact(path: str, root: Path) -> dict:
    """A file's location: relative to SRCROOT when it is inside the repository."""
    full = Path(os.path.abspath(path))
    if full.is_relative_to(root):
        return {"uri": quote(full.relative_to(root).as_posix()), "uriBaseId": SRCROOT}
    return {"uri": _uri(path)}


class _Places:
    """Where each finding is, worked out once per scan and file."""

    def __init__(self, report: Report):
        self.root = sources.source_root()
        self.files = {t.path for t in report.templates if not t.live and os.path.isfile(t.path)}
        wanted = any(f.construct_path and f.template in self.files for f in report.findings)
        self.sites = sources.creation_sites(self.files) if wanted else {}
        self.lines: dict[str, dict[str, int]] = {}

    def template(self, f) -> dict:
        if f.template not in self.files:
            return {"physicalLocation": {"artifactLocation": {"uri": _uri(f.template)}}}
        location: dict = {"artifactLocation": _artifact(f.template, self.root)}
        if f.logical_id:
            if f.template not in self.lines:
                self.lines[f.template] = sources.resource_lines(f.template)
            line = self.lines[f.template].get(f.logical_id)
            if line:
                location["region"] = {"startLine": line}
        return {"physicalLocation": location}

    def source(self, f) -> dict | None:
        """The app's line that created the construct, if that file is in the repository."""
        site = self.sites.get(f.construct_path) if f.construct_path and f.template in self.files else None
        if not site or not Path(site[0]).is_relative_to(self.root):
            return None
        return {"physicalLocation": {"artifactLocation": _artifact(site[0], self.root),
                                     "region": {"startLine": site[1]}}}


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


def _result(f, index: int, places: _Places) -> dict:
    text = f.message if f.status != UNVERIFIABLE else f"Unverifiable: {f.message}"
    in_template = places.template(f)
    location = places.source(f) or in_template
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
        # the finding's identity (as the baseline keys it): code scanning keeps one alert per
        # finding however the lines around it move
        "partialFingerprints": {"dpguardFinding/v1": hashlib.sha256(
            json.dumps(baseline.entry(f)).encode("utf-8", "surrogatepass")).hexdigest()},
        "properties": {"clause": f.clause, "status": f.status, "stack": f.stack,
                       "resourceType": f.resource_type, "propertyPath": f.property_path,
                       "remediation": f.remediation},
    }
    if location is not in_template:
        result["relatedLocations"] = [{"id": 1, **in_template,
                                       "message": {"text": "the resource in the synthesized template"}}]
    if f.baselined is not None:
        result["baselineState"] = "unchanged" if f.baselined else "new"
        result["properties"]["baselined"] = f.baselined
    if f.status == ACKNOWLEDGED:
        result["suppressions"] = [{"kind": "external", "status": "accepted",
                                   "justification": f.acknowledgment["reason"]}]
    return result


def document(report: Report, errors: list) -> dict:
    index = {rule.rule_id: i for i, rule in enumerate(report.rules)}
    places = _Places(report)
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
        "originalUriBaseIds": {SRCROOT: {"uri": places.root.as_uri().rstrip("/") + "/"}},
        "artifacts": [{"location": _artifact(t.path, places.root) if t.path in places.files else {"uri": _uri(t.path)}}
                      for t in report.templates],
        "results": [_result(f, index[f.rule_id], places) for f in report.findings],
        "invocations": [{"executionSuccessful": not errors,
                         "toolExecutionNotifications": notifications}],
        "properties": {"coverage": coverage.summary(report.coverage)},
    }
    return {"$schema": SCHEMA, "version": "2.1.0", "runs": [run]}


def render(report: Report, errors: list) -> str:
    return dumps(document(report, errors)) + "\n"
