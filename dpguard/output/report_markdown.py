"""The auditor report's Markdown summary, for a pull request: the clause matrix, what fails,
what is acknowledged, and the hashes that tie it to the data file."""
from __future__ import annotations

from .report_csv import resource_id
from .text import markdown_cell, markdown_code

STATUS = {"pass": "✅ pass", "fail": "❌ fail", "acknowledged": "⚠️ acknowledged",
          "not applicable": "➖ nothing to judge", "process": "📋 process control"}
MAX_ROWS = 50  # a PR comment stays readable; the HTML report has everything


def cell(value) -> str:
    return markdown_cell(value)


def _covered(a: dict) -> str:
    """For an acknowledgment of several resources (one on a stack): how many, and which, folded."""
    covers = [c for c in a.get("covers") or [] if c != a.get("construct_path")]
    if len(covers) < 2:
        return ""
    names = ", ".join(markdown_code(c) for c in covers)
    return f" ({len(covers)} resources) <details><summary>resources</summary>{names}</details>"


def render(data: dict, data_sha256: str) -> str:
    s = data["summary"]
    lines = [
        "## Data Protection Policy — compliance report", "",
        f"{s['templates']} template(s), {s['resources']} resource(s), {s['rules']} dpguard rules: "
        f"**{s['violations']} violation(s)**, {s['unverifiable']} unverifiable, {s['acknowledged']} acknowledged; "
        f"cdk-nag: {s['nag_violations']} violation(s), {s['nag_acknowledged']} acknowledged.", "",
        "| clause | status | automated controls | evaluated | passed | violations | acknowledged | unverifiable "
        "| cdk-nag violations / acknowledged |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for c in data["clauses"]:
        totals = {k: sum((ctl[k] or 0) for ctl in c["controls"]) for k in
                  ("evaluated", "passed", "violations", "acknowledged", "unverifiable")}
        controls = str(len(c["controls"])) if c["automated"] else "— (process)"
        nag = f"{sum(r['violations'] for r in c['nag_rules'])} / {sum(r['acknowledged'] for r in c['nag_rules'])}"
        lines.append(f"| {c['number']} {cell(c['title'])} | {STATUS[c['status']]} | {controls} | "
                     + " | ".join(str(totals[k]) for k in totals) + f" | {nag} |")
    types = data.get("resource_types") or {}
    if types.get("not_judged"):
        lines += ["", f"### Resource types not judged ({len(types['not_judged'])} of {types['resource_types']} types "
                      f"present; {types['judged']} judged, {types['nothing_to_judge']} with nothing to judge)", "",
                  "| resource type | resources | why |", "|---|---|---|"]
        lines += [f"| {markdown_code(t['resource_type'])} | {cell(t['resources'])} | {cell(t['reason'])} |"
                  for t in types["not_judged"][:MAX_ROWS]]
    failing = [f for f in data["findings"] if f["status"] != "acknowledged"]
    if failing:
        lines += ["", f"### Failing ({len(failing)})", "", "| clause | rule | source | resource | problem | fix |",
                  "|---|---|---|---|---|---|"]
        for f in failing[:MAX_ROWS]:
            lines.append(f"| {cell(f['clause'])} | {markdown_code(f['rule_id'])} | {cell(f['source'])} | "
                         f"{markdown_code(resource_id(f))} | {cell(f['message'])} | {cell(f['remediation'])} |")
        if len(failing) > MAX_ROWS:
            lines.append(f"| | | | | … and {len(failing) - MAX_ROWS} more in the HTML report | |")
    acks = data["acknowledgments"]
    if acks:
        lines += ["", f"### Acknowledgments ({len(acks)})", "", "| rule | on | reason | expires | status |",
                  "|---|---|---|---|---|"]
        for a in acks[:MAX_ROWS]:
            lines.append(f"| {markdown_code(a['rule_id'])} | {markdown_code(a['construct_path'])}{_covered(a)} | "
                         f"{cell(a['reason'])} | {cell(a['expires'] or '—')} | {cell(a['status'])} |")
    e = data["evidence"]
    lines += ["", f"dpguard {e['tool']['version']}, catalogue of {e['catalogue']['rules']} rules "
                  f"(`{e['catalogue']['sha256'][:12]}`), generated {data['generated_at']}"
                  + (f", commit `{e['git']['commit'][:12]}`" if e.get("git") else "")
                  + f"; data file SHA-256 `{data_sha256}`."]
    for problem in e["problems"]:
        lines.append(f"- ⚠️ {cell(problem)}")
    return "\n".join(lines) + "\n"
