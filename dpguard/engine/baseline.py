"""A baseline: the failing findings a brownfield repository accepted when it adopted dpguard, in a
small JSON file that is committed and reviewed. `dpguard scan --baseline FILE` then fails only
on findings the file does not list; the listed ones are still reported, with their status, and
marked `baselined`. `--update-baseline` rewrites the file from today's failing findings.

A finding is identified by rule, stack, resource (construct path, ARN or logical id) and
property path: never by its message or a line number, so unrelated edits keep it matched."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Iterable, NamedTuple

from .findings import Finding
from .loader import InputError, read_capped

FORMAT_VERSION = 1
COMMENT = ("Findings accepted when dpguard was adopted: `dpguard scan --baseline FILE` fails only on "
           "findings not listed here. Fix them, then shrink this file with --update-baseline.")


class Entry(NamedTuple):
    rule_id: str
    stack: str
    resource: str  # construct path (an ARN for live findings), else logical id; "" for the template
    property_path: str


def entry(f: Finding) -> Entry:
    return Entry(f.rule_id, f.stack, f.locator or f.logical_id or "", f.property_path)


def _alternatives(f: Finding) -> list[Entry]:
    """The entries that name `f`: by its construct path (or ARN), or by its logical id (a
    baseline written from templates without CDK's path metadata)."""
    keys = [entry(f)]
    if f.locator and f.logical_id:
        keys.append(Entry(f.rule_id, f.stack, f.logical_id, f.property_path))
    return keys


def read(path: str) -> list[Entry]:
    """The entries of a baseline file; a file that is missing or not a baseline is an InputError."""
    file = Path(path)
    if not file.exists():
        raise InputError(path, "no such baseline file (write one with --update-baseline)")
    try:
        data = json.loads(read_capped(file).decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise InputError(path, f"the baseline is not valid JSON: {e}") from None
    if not isinstance(data, dict) or data.get("dpguard_baseline") != FORMAT_VERSION:
        raise InputError(path, f'not a dpguard baseline (it needs "dpguard_baseline": {FORMAT_VERSION}; '
                               "write one with --update-baseline)")
    items = data.get("findings")
    if not isinstance(items, list):
        raise InputError(path, 'the baseline\'s "findings" must be a list')
    entries = []
    for index, item in enumerate(items):
        if not isinstance(item, dict) or not all(isinstance(item.get(k), str) for k in Entry._fields):
            raise InputError(path, f"finding {index} of the baseline needs the strings "
                                   f"{', '.join(Entry._fields)}")
        entries.append(Entry(*(item[k] for k in Entry._fields)))
    return entries


def write(path: str, findings: Iterable[Finding]) -> list[Entry]:
    """Write the failing findings (violations and unverifiable, any severity) as the baseline,
    sorted so that its diff in a pull request shows only what changed. Returns the entries."""
    failing = sorted((f for f in findings if f.fails), key=entry)
    document = {"dpguard_baseline": FORMAT_VERSION, "comment": COMMENT, "findings": [
        {**entry(f)._asdict(), "status": f.status, "message": f.message} for f in failing]}
    try:
        Path(path).write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8",
                              errors="replace")
    except OSError as e:
        raise InputError(path, f"cannot write the baseline: {e.strerror or e}") from None
    return [entry(f) for f in failing]


def apply(entries: list[Entry], findings: Iterable[Finding], rules_run: set[str]) -> list[Entry]:
    """Mark each finding `baselined` True or False; return the entries that match no finding
    any more (fixed), of the rules that ran. Each entry matches one failing finding, so a second
    problem of the same rule at the same property is new."""
    left = Counter(entries)
    for f in findings:
        f.baselined = False
        if not f.fails:
            continue
        for key in _alternatives(f):
            if left[key] > 0:
                left[key] -= 1
                f.baselined = True
                break
    return sorted(e for e, count in left.items() if e.rule_id in rules_run for _ in range(count))


def describe(e: Entry) -> str:
    # a construct path or an ARN names the resource alone; a logical id needs its stack
    where = e.resource if "/" in e.resource or ":" in e.resource else "/".join(filter(None, (e.stack, e.resource)))
    return f"{e.rule_id} on {where}" + (f" at {e.property_path}" if e.property_path else "")
