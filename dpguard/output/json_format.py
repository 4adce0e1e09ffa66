"""The JSON contract of DESIGN.md: tool, summary, findings (plus acknowledgments that matched
nothing and inputs that could not be read)."""
from __future__ import annotations

import json
from dataclasses import asdict

from .. import __version__
from ..engine.evaluate import Report


def document(report: Report, errors: list) -> dict:
    return {
        "tool": {"name": "dpguard", "version": __version__},
        "summary": report.summary(),
        "findings": [f.as_dict() for f in report.findings],
        "unused_acknowledgments": [asdict(a) for a in report.unused_acknowledgments],
        "errors": [{"path": e.path, "message": e.message} for e in errors],
    }


def render(report: Report, errors: list) -> str:
    return json.dumps(document(report, errors), indent=2) + "\n"
