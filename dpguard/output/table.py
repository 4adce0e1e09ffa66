"""The terminal view: what failed, where, why, and how to fix it; colour on a terminal."""
from __future__ import annotations

import io

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..engine.coverage import headline
from ..engine.evaluate import Report
from ..engine.findings import ACKNOWLEDGED, UNVERIFIABLE, VIOLATION

STYLES = {VIOLATION: "bold red", UNVERIFIABLE: "bold yellow", ACKNOWLEDGED: "green"}
LABELS = {VIOLATION: "VIOLATION", UNVERIFIABLE: "UNVERIFIABLE", ACKNOWLEDGED: "acknowledged"}


def console(color: bool) -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, force_terminal=color, no_color=not color, width=None if color else 160,
                   highlight=False, soft_wrap=False), buffer


def render(report: Report, color: bool = False) -> str:
    out, buffer = console(color)
    if report.findings:
        table = Table(show_lines=True, header_style="bold")
        for name in ("Status", "Rule", "Resource", "Problem and fix"):
            table.add_column(name, overflow="fold")
        for f in report.findings:
            resource = Text(f"{f.stack}/{f.logical_id}" if f.logical_id else f.stack)
            if f.resource_type:
                resource.append(f"\n{f.resource_type}", style="dim")
            if f.locator:
                resource.append(f"\n{f.locator}", style="cyan")
            problem = Text(f.message)
            if f.property_path:
                problem.append(f"\nat {f.property_path}", style="dim")
            if f.status == ACKNOWLEDGED:
                expiry = f" (until {f.acknowledgment['expires']})" if f.acknowledgment.get("expires") else ""
                problem.append(f"\nacknowledged: {f.acknowledgment['reason']}{expiry}", style="green")
            else:
                problem.append(f"\nfix: {f.remediation}", style="magenta")
            table.add_row(Text(f"{LABELS[f.status]}\n{f.severity}", style=STYLES[f.status]),
                          Text(f"{f.rule_id}\nclause {f.clause}"), resource, problem)
        out.print(table)
    for a in report.unused_acknowledgments:
        out.print(f"note: acknowledgment of {a.rule_id} on {a.logical_id or '(template)'} in {a.template} "
                  "matches no finding", style="yellow")
    s = report.summary()
    verdict_style = "bold red" if s["violations"] or s["unverifiable"] else "bold green"
    out.print(Text(f"{s['templates']} template(s), {s['resources']} resource(s), {len(report.rules)} rules: "
                   f"{s['violations']} violation(s), {s['unverifiable']} unverifiable, "
                   f"{s['acknowledged']} acknowledged", style=verdict_style))
    if report.coverage:
        out.print(Text(headline(report.coverage), style="yellow" if report.not_judged else "dim"))
    for c in report.not_judged:
        out.print(Text(f"  not judged: {c.resource_type} ({c.resources}): {c.reason}", style="yellow"))
    return buffer.getvalue()
