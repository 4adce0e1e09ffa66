"""The auditor report: `build` gathers the data (CONTRACT.md), `write` turns it into the JSON
data file, a self-contained HTML page, a Markdown summary and a CSV of findings."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from .data import build

FILES = {"json": "dpguard-report.json", "html": "dpguard-report.html", "markdown": "dpguard-report.md",
         "csv": "dpguard-findings.csv"}


def write(data: dict, out_dir: Path) -> dict[str, Path]:
    """Write every format into `out_dir`; the JSON first, since the others carry its SHA-256."""
    from ..output import html_report, report_csv, report_markdown
    from ..output.text import valid_unicode

    data = valid_unicode(data)  # a lone surrogate from a template cannot be written as UTF-8
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {kind: out_dir / name for kind, name in FILES.items()}
    raw = (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    paths["json"].write_bytes(raw)
    digest = hashlib.sha256(raw).hexdigest()
    paths["html"].write_text(html_report.render_html(data, digest), encoding="utf-8")
    paths["markdown"].write_text(report_markdown.render(data, digest), encoding="utf-8")
    paths["csv"].write_text(report_csv.render(data), encoding="utf-8")
    return paths


__all__ = ["FILES", "build", "write"]
