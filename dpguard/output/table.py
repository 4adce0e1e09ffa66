"""The terminal view: what failed, where, why, and how to fix it; colour on a terminal."""
from __future__ import annotations

import io
from typing import TYPE_CHECKING

from ..engine.cdk_made import CDK_MADE
from ..engine.coverage import headline
from ..engine.evaluate import Report
from ..engine.findings import ACKNOWLEDGED, UNVERIFIABLE, VIOLATION
from .ack_groups import AcknowledgedGroup, grouped
from .text import printable

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

STYLES = {VIOLATION: "bold red", UNVERIFIABLE: "bold yellow", ACKNOWLEDGED: "green"}
LABELS = {VIOLATION: "VIOLATION", UNVERIFIABLE: "UNVERIFIABLE", ACKNOWLEDGED: "acknowledged"}
# rich measures and wraps every cell of a Table (about 1 ms a finding): above this many findings
# the view is one line per finding and each rule's fix once, which is also easier to read
MAX_TABLE_ROWS = 200
WIDTH = 160  # of the console without a terminal


def console(color: bool) -> tuple[Console, io.StringIO]:
    from rich.console import Console

    buffer = io.StringIO()
    return Console(file=buffer, force_terminal=color, no_color=not color, width=None if color else WIDTH,
                   highlight=False, soft_wrap=False), buffer


def _resource(f) -> str:
    # every piece of template text goes through printable(): Text never reads [markup], and
    # printable() keeps escape sequences from reaching the terminal
    return printable(f"{f.stack}/{f.logical_id}" if f.logical_id else f.stack)


def _acknowledged(f) -> str:
    expiry = f" (until {printable(f.acknowledgment['expires'])})" if f.acknowledgment.get("expires") else ""
    return f"acknowledged: {printable(f.acknowledgment['reason'])}{expiry}"


def _table(report: Report) -> Table:
    from rich.table import Table
    from rich.text import Text

    table = Table(show_lines=True, header_style="bold")
    for name in ("Status", "Rule", "Resource", "Problem and fix"):
        table.add_column(name, overflow="fold")
    for f in grouped(report.findings):
        if isinstance(f, AcknowledgedGroup):
            table.add_row(*_group_row(f))
            continue
        resource = Text(_resource(f))
        if f.resource_type:
            resource.append(f"\n{printable(f.resource_type)}", style="dim")
        if f.locator:
            resource.append(f"\n{printable(f.locator)}", style="cyan")
        problem = Text(printable(f.message, lines=True))
        if f.property_path:
            problem.append(f"\nat {printable(f.property_path)}", style="dim")
        if f.status == ACKNOWLEDGED:
            problem.append(f"\n{_acknowledged(f)}", style="green")
        else:
            problem.append(f"\nfix: {printable(f.remediation, lines=True)}", style="magenta")
        table.add_row(Text(f"{LABELS[f.status]}\n{f.severity}", style=STYLES[f.status]),
                      Text(f"{printable(f.rule_id)}\nclause {f.clause}"), resource, problem)
    return table


def _lines(report: Report) -> list[tuple[str, str]]:
    """One line per finding (status, rule, resource, property, problem), then each failing rule's
    fix once, as (text, style) pieces: printed without wrapping, so nothing is measured."""
    pieces: list[tuple[str, str]] = []
    add = pieces.append
    for f in grouped(report.findings):
        if isinstance(f, AcknowledgedGroup):
            pieces += _group_line(f)
            continue
        add((f"{LABELS[f.status]:<12} {f.severity:<7} ", STYLES[f.status]))
        add((f"{printable(f.rule_id)} (clause {f.clause})  {_resource(f)}", ""))
        if f.resource_type:
            add((f" {printable(f.resource_type)}", "dim"))
        if f.locator:
            add((f" {printable(f.locator)}", "cyan"))
        if f.property_path:
            add((f" at {printable(f.property_path)}", "dim"))
        add((f": {printable(f.message)}", ""))
        if f.status == ACKNOWLEDGED:
            add((f" — {_acknowledged(f)}", "green"))
        add(("\n", ""))
    # each rule's fix once, and each fix for a resource CDK made itself (engine/cdk_made.py)
    fixes = dict.fromkeys((f.rule_id, f.remediation) for f in report.findings if f.fails)
    if fixes:
        add(("How to fix:\n", "bold"))
    for rule_id, remediation in sorted(fixes, key=lambda fix: (fix[0], fix[1].startswith(CDK_MADE), fix[1])):
        add((f"{printable(rule_id)}:\n", ""))
        add(("".join(f"    {line}\n" for line in printable(remediation, lines=True).splitlines()), "magenta"))
    return pieces


def _group_row(group: AcknowledgedGroup) -> tuple[Text, Text, Text, Text]:
    """One row for an acknowledgment that covers several resources of a stack."""
    from rich.text import Text

    f = group.first
    resource = Text(f"{printable(f.stack)} ({len(group.resources)} resources)")
    resource.append(f"\n{printable(group.compact())}", style="dim")
    problem = Text(printable(group.headline()), style="green")
    messages = {g.message for g in group.findings}
    if len(messages) == 1:
        problem.append(f"\n{printable(f.message, lines=True)}", style="")
    return (Text(f"{LABELS[ACKNOWLEDGED]}\n{f.severity}", style=STYLES[ACKNOWLEDGED]),
            Text(f"{printable(f.rule_id)}\nclause {f.clause}"), resource, problem)


def _group_line(group: AcknowledgedGroup) -> list[tuple[str, str]]:
    f = group.first
    return [(f"{LABELS[ACKNOWLEDGED]:<12} {f.severity:<7} ", STYLES[ACKNOWLEDGED]),
            (f"{printable(f.rule_id)} (clause {f.clause})  {printable(f.stack)}", ""),
            (f" ({printable(group.compact())})", "dim"),
            (f" — {printable(group.headline())}\n", "green")]


def _footer(report: Report) -> list[tuple[str, str]]:
    """The lines after the findings, as (text, style)."""
    lines = [(f"note: acknowledgment of {printable(a.rule_id)} on {printable(a.logical_id or '(template)')} "
              f"in {printable(a.template)} matches no finding", "yellow") for a in report.unused_acknowledgments]
    s = report.summary()
    verdict_style = "bold red" if s["violations"] or s["unverifiable"] else "bold green"
    lines.append((f"{s['templates']} template(s), {s['resources']} resource(s), {len(report.rules)} rules: "
                  f"{s['violations']} violation(s), {s['unverifiable']} unverifiable, "
                  f"{s['acknowledged']} acknowledged", verdict_style))
    if any(f.baselined is not None for f in report.findings):  # --baseline: counted above, not failing
        baselined = sum(1 for f in report.findings if f.baselined)
        new = sum(1 for f in report.findings if f.fails and not f.baselined)
        lines.append((f"baseline: {baselined} of them baselined (not failing), {new} new", "bold red" if new else "yellow"))
    if report.coverage:
        lines.append((printable(headline(report.coverage)), "yellow" if report.not_judged else "dim"))
    for c in report.not_judged:
        lines.append((f"  not judged: {printable(c.resource_type)} ({c.resources}): {printable(c.reason)}", "yellow"))
    return lines


def _fits(text: str) -> bool:
    """Does rich print this line as it is, without a terminal? One character a cell, nothing
    to wrap."""
    return len(text) <= WIDTH and text.isascii() and text.isprintable()


def render(report: Report, color: bool = False) -> str:
    footer = _footer(report)
    many = len(report.findings) > MAX_TABLE_ROWS
    if not color and (many or not report.findings) and all(_fits(text) for text, _ in footer):
        # Plain text of plain lines: what rich would print, without importing it (a scan's
        # start-up time is mostly imports)
        body = "".join(text for text, _ in _lines(report)) if many else ""
        return body + "".join(f"{text}\n" for text, _ in footer)
    from rich.text import Text

    out, buffer = console(color)
    if many:
        pieces = _lines(report)
        if color:
            out.print(Text.assemble(*pieces), soft_wrap=True, end="")
        else:  # plain text needs no console at all
            buffer.write("".join(text for text, _ in pieces))
    elif report.findings:
        out.print(_table(report))
    for text, style in footer:
        out.print(Text(text, style=style))
    return buffer.getvalue()
