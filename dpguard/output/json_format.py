"""The JSON contract of DESIGN.md: tool, summary, findings (plus acknowledgments that matched
nothing and inputs that could not be read)."""
from __future__ import annotations

from dataclasses import asdict

from .. import __version__
from ..engine import coverage
from ..engine.evaluate import Report
from .json_text import dumps


def document(report: Report, errors: list) -> dict:
    return {
        "tool": {"name": "dpguard", "version": __version__},
        "summary": report.summary(),
        "findings": [f.as_dict() for f in report.findings],
        # what each rule judged (rules that judged nothing are left out): the auditor report's
        # coverage matrix reads it
        "rules": [{"rule_id": rule_id, "evaluated": c.evaluated, "failed": c.failed}
                  for rule_id, c in report.rule_totals().items() if c.evaluated],
        "unused_acknowledgments": [{k: v for k, v in asdict(a).items() if k not in ("status", "problem")}
                                   for a in report.unused_acknowledgments],
        "errors": [{"path": e.path, "message": e.message} for e in errors],
        # the resource types present: how many were judged, and each type that was not, with why
        "coverage": coverage.summary(report.coverage),
    }


def render(report: Report, errors: list) -> str:
    return dumps(document(report, errors)) + "\n"
