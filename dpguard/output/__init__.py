"""Writers for scan results and the rule catalogue. Every writer works from the same Report and
Finding objects; none of them re-derives a fact."""
from __future__ import annotations

from typing import Callable

from ..engine.evaluate import Report

SCAN_FORMATS = ("table", "json", "sarif", "junit", "csv", "markdown")
AUDIT_FORMATS = SCAN_FORMATS + ("asff",)  # ASFF needs the live findings' ARNs, accounts and regions
RULE_FORMATS = ("table", "json", "markdown")


def render_scan(report: Report, fmt: str, *, color: bool = False, errors: list | None = None) -> str:
    writers: dict[str, Callable[..., str]] = {
        "json": lambda: _module("json_format").render(report, errors or []),
        "sarif": lambda: _module("sarif").render(report, errors or []),
        "junit": lambda: _module("junit").render(report, errors or []),
        "csv": lambda: _module("csv_format").render(report),
        "markdown": lambda: _module("markdown").render(report, errors or []),
        "table": lambda: _module("table").render(report, color=color),
        "asff": lambda: _module("asff").render(report),
    }
    return writers[fmt]()


def render_rules(rules: list, fmt: str, *, color: bool = False) -> str:
    return _module("catalogue").render(rules, fmt, color=color)


def _module(name: str):
    # Writers are imported on use: `rich` alone costs more start-up time than a whole JSON scan.
    import importlib

    return importlib.import_module(f"{__name__}.{name}")
