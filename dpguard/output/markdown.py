"""A pull-request comment: verdict first, one row per finding, the fixes folded away."""
from __future__ import annotations

from ..engine.coverage import headline
from ..engine.evaluate import Report
from ..engine.findings import ACKNOWLEDGED, UNVERIFIABLE, VIOLATION
from .text import markdown_cell, markdown_code, printable

ICONS = {VIOLATION: "❌", UNVERIFIABLE: "❓", ACKNOWLEDGED: "✅"}


def cell(text) -> str:
    return markdown_cell(text or "")


def render(report: Report, errors: list) -> str:
    s = report.summary()
    failing = [f for f in report.findings if f.fails]
    if any(f.severity == "error" for f in failing):
        verdict = "❌ policy violations found"
    else:
        verdict = "⚠️ warnings only" if failing else "✅ no policy violations"
    lines = [f"## dpguard: {verdict}", "",
             f"{s['templates']} template(s), {s['resources']} resource(s) checked against "
             f"{len(report.rules)} rules of the Data Protection Policy: **{s['violations']}** violation(s), "
             f"**{s['unverifiable']}** unverifiable, {s['acknowledged']} acknowledged.", ""]
    for e in errors:
        lines.append(f"> ⚠️ could not read {markdown_code(e.path)}: {cell(e.message)}")
    if errors:
        lines.append("")
    if report.findings:
        lines += ["| | Rule | Clause | Severity | Resource | Property | Problem |",
                  "|---|---|---|---|---|---|---|"]
        for f in report.findings:
            where = f.locator or (f"{f.stack}/{f.logical_id}" if f.logical_id else f.stack)
            problem = f.message
            if f.status == ACKNOWLEDGED:
                problem += f" — acknowledged: {f.acknowledgment['reason']}"
            icon = "⚠️" if f.fails and f.severity == "warning" else ICONS[f.status]
            lines.append(f"| {icon} | {markdown_code(f.rule_id)} | {f.clause} | {f.severity} | {markdown_code(where)} "
                         f"| {markdown_code(f.property_path) if f.property_path else '—'} | {cell(problem)} |")
        lines.append("")
        rules = {rule.rule_id: rule for rule in report.rules}
        fixes = sorted({f.rule_id for f in failing if f.rule_id in rules})
        if fixes:
            lines += ["<details><summary>How to fix</summary>", ""]
            for rule_id in fixes:
                rule = rules[rule_id]
                lines += [f"**{cell(rule_id)}** — {cell(rule.title)} (clause {rule.clause})", "",
                          "```python", printable(rule.remediation, lines=True), "```", ""]
            lines += ["</details>", ""]
    for a in report.unused_acknowledgments:
        lines.append(f"> ℹ️ acknowledgment of {markdown_code(a.rule_id)} on {markdown_code(a.logical_id or a.template)} "
                     "matches no finding")
    if report.not_judged:
        lines += [""] if lines[-1] else []
        lines += [f"<details><summary>{cell(headline(report.coverage))}</summary>", "",
                  "| Resource type | Resources | Why it was not judged |", "|---|---|---|"]
        lines += [f"| {markdown_code(c.resource_type)} | {c.resources} | {cell(c.reason)} |" for c in report.not_judged]
        lines += ["", "</details>"]
    return "\n".join(lines).rstrip() + "\n"
