"""The auditor report's findings as CSV in cdk-nag's old report columns, for teams that still
import those files: one row per finding and resource, every source (dpguard and the packs)."""
from __future__ import annotations

import csv
import io

from .text import spreadsheet_cell

COLUMNS = ("Rule ID", "Resource ID", "Compliance", "Exception Reason", "Rule Level", "Rule Info")


def render(data: dict) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for f in data["findings"]:
        ack = f.get("acknowledgment") or {}
        compliance = "Suppressed" if f["status"] == "acknowledged" else "Non-Compliant"
        info = f["message"] + (" (unverifiable: fails closed)" if f["status"] == "unverifiable" else "")
        clause = f" [clause {f['clause']}]" if f.get("clause") else ""
        writer.writerow([spreadsheet_cell(cell) for cell in (
            f["rule_id"], resource_id(f), compliance, ack.get("reason") or "",
            (f.get("severity") or "error").capitalize(), info + clause)])
    return out.getvalue()


def resource_id(f: dict) -> str:
    return f.get("construct_path") or f.get("arn") or f"{f.get('stack') or ''}/{f.get('logical_id') or ''}"
