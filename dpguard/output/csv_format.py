"""One row per finding, for spreadsheets and audit evidence."""
from __future__ import annotations

import csv
import io

from ..engine.evaluate import Report
from .text import spreadsheet_cell

COLUMNS = ("rule_id", "clause", "severity", "status", "template", "stack", "logical_id",
           "resource_type", "construct_path", "property_path", "message", "remediation",
           "acknowledgment_reason", "acknowledgment_expires", "arn", "region", "account")


def render(report: Report) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for f in report.findings:
        ack = f.acknowledgment or {}
        row = f.as_dict()
        row["acknowledgment_reason"] = ack.get("reason", "")
        row["acknowledgment_expires"] = ack.get("expires") or ""
        # arn...: audits only; a template's "=HYPERLINK(...)" id must not run in a spreadsheet
        writer.writerow([spreadsheet_cell(row.get(c)) for c in COLUMNS])
    return out.getvalue()
