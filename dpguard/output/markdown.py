"""A pull-request comment: verdict first, one row per finding, the fixes folded away."""
from __future__ import annotations

from ..engine.coverage import headline
from ..engine.evaluate import Report
from ..engine.findings import ACKNOWLEDGED, UNVERIFIABLE, VIOLATION
from ..engine.cdk_made import CDK_MADE
from .ack_groups import AcknowledgedGroup, grouped
from .text import markdown_cell, markdown_code, printable

ICONS = {VIOLATION: "❌", UNVERIFIABLE: "❓", ACKNOWLEDGED: "✅"}


def cell(text) -> str:
    return markdown_cell(text or "")


def _group_row(group: AcknowledgedGroup) -> str:
    """One row for an acknowledgment that covers several resources of a stack; the resources
    folded away."""
    f = group.first
    names = ", ".join(markdown_code(name) for name in group.resources)
    return (f"| {ICONS[ACKNOWLEDGED]} | {markdown_code(f.rule_id)} | {f.clause} | {f.severity} | "
            f"{markdown_code(f.stack)} ({len(group.resources)} resources) | — | {cell(group.headline())} "
            f"<details><summary>{len(group.resources)} resources</summary>{names}</details> |")


def _cdk_made_fixes(failing: list) -> list[str]:
    """The fixes for resources CDK made itself (engine/cdk_made.py), each once with where."""
    where: dict[str, list[str]] = {}
    for f in failing:
        if f.remediation.startswith(CDK_MADE):
            where.setdefault(f.remediation, []).append(f.locator or f"{f.stack}/{f.logical_id}")
    lines = []
    for remediation, resources in where.items():
        lines += [f"On {', '.join(markdown_code(r) for r in dict.fromkeys(resources))}: "
                  f"{cell(remediation.removeprefix(CDK_MADE))}", ""]
    return lines


def render(report: Report, errors: list) -> str:
    s = report.summary()
    failing = [f for f in report.findings if f.fails and not f.baselined]  # --baseline: only new ones fail
    if any(f.severity == "error" for f in failing):
        verdict = "❌ policy violations found"
    else:
        verdict = "⚠️ warnings only" if failing else "✅ no policy violations"
    lines = [f"## dpguard: {verdict}", "",
             f"{s['templates']} template(s), {s['resources']} resource(s) checked against "
             f"{len(report.rules)} rules of the Data Protection Policy: **{s['violations']}** violation(s), "
             f"**{s['unverifiable']}** unverifiable, {s['acknowledged']} acknowledged"
             + (f"; {baselined} in the baseline (not failing)." if (baselined := sum(1 for f in report.findings
                                                                              if f.baselined)) else "."), ""]
    for e in errors:
        lines.append(f"> ⚠️ could not read {markdown_code(e.path)}: {cell(e.message)}")
    if errors:
        lines.append("")
    if report.findings:
        lines += ["| | Rule | Clause | Severity | Resource | Property | Problem |",
                  "|---|---|---|---|---|---|---|"]
        for f in grouped(report.findings):
            if isinstance(f, AcknowledgedGroup):
                lines.append(_group_row(f))
                continue
            where = f.locator or (f"{f.stack}/{f.logical_id}" if f.logical_id else f.stack)
            problem = f.message
            if f.status == ACKNOWLEDGED:
                problem += f" — acknowledged: {f.acknowledgment['reason']}"
            if f.baselined:
                problem += " — in the baseline"
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
                lines += _cdk_made_fixes([f for f in failing if f.rule_id == rule_id])
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
