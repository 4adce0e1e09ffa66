"""Resources that aws-cdk-lib adds to a stack by itself (a bucket-notification handler, the
log-retention function, custom-resource providers, a bastion's role policy...). The app author
never wrote them, so a rule's usual fix does not apply: for a finding on one of them, `fix` gives
the CDK option that removes the finding, or the acknowledgment to write where CDK has none.

The table is data (cdk_made.yaml beside this file, read through its JSON copy cdk_made.json that
scripts/data_tables.py writes), recognised by construct path (aws:cdk:path) and logical-id
patterns, and checked when it is first read."""
from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DATA = Path(__file__).with_name("cdk_made.json")  # the JSON copy of cdk_made.yaml
FIELDS = {"what", "path", "logical_id", "contains", "scope", "reason", "fix"}
REQUIRED = {"what", "path", "logical_id", "fix"}
CDK_MADE = "CDK made this resource itself: "  # how such a fix begins
_UNNAMED = re.compile(r"\(\?P<\w+>")


@dataclass(frozen=True)
class MadeByCdk:
    what: str
    path: re.Pattern
    logical_id: re.Pattern
    fix: dict[str, str]  # rule id (or "*") -> fix text
    contains: str | None = None
    scope: str | None = None
    reason: str | None = None

    def matches(self, construct_path: str | None, logical_id: str | None, props: Any) -> re.Match | None:
        """The match that recognised the resource (by construct path when it has one, else by
        logical id), or None."""
        match = self.path.search(construct_path) if construct_path else None
        if match is None and logical_id:
            match = self.logical_id.search(logical_id)
        if match is None or (self.contains is not None and not _holds(props, self.contains)):
            return None
        return match

    def remediation(self, rule_id: str, match: re.Match) -> str:
        fix = self.fix.get(rule_id, self.fix["*"])
        if "{acknowledge}" in fix:
            # a scope naming the construct id found in the path; without a path, the stack
            groups = {k: v for k, v in match.groupdict().items() if v}
            try:
                scope = self.scope.format(**groups)
            except KeyError:
                scope = "stack"
            fix = fix.replace("{acknowledge}", f'dpguard.acknowledge({scope}, "{rule_id}", "{self.reason}")')
        return f"{CDK_MADE}{self.what}. {fix.replace('{rule_id}', rule_id)}"


def _holds(node: Any, text: str) -> bool:
    """Whether `text` is a string value anywhere in `node`."""
    if isinstance(node, str):
        return node == text
    if isinstance(node, dict):
        return any(_holds(v, text) for v in node.values())
    if isinstance(node, list):
        return any(_holds(v, text) for v in node)
    return False


@functools.cache
def _data() -> dict:
    return json.loads(DATA.read_text(encoding="utf-8"))


def _entries() -> list:
    return _data()["table"]


@functools.cache
def table() -> tuple[MadeByCdk, ...]:
    """The entries of cdk_made.yaml (its JSON copy), in order; a malformed entry fails loudly here."""
    out = []
    for number, e in enumerate(_entries(), 1):
        where = f"cdk_made.yaml entry {number}"
        if not isinstance(e, dict) or not REQUIRED <= set(e) or not set(e) <= FIELDS:
            raise ValueError(f"{where}: needs {sorted(REQUIRED)}, may have {sorted(FIELDS - REQUIRED)}")
        fix = e["fix"]
        if not isinstance(fix, dict) or "*" not in fix or not all(isinstance(v, str) for v in fix.values()):
            raise ValueError(f"{where}: fix must map rule ids and '*' to text")
        if any("{acknowledge}" in text for text in fix.values()) and not (e.get("scope") and e.get("reason")):
            raise ValueError(f"{where}: a fix that acknowledges needs a scope and a reason")
        out.append(MadeByCdk(what=" ".join(e["what"].split()), path=re.compile(e["path"]),
                             logical_id=re.compile(e["logical_id"]), fix={k: " ".join(v.split()) for k, v in fix.items()},
                             contains=e.get("contains"), scope=e.get("scope"), reason=e.get("reason")))
    return tuple(out)


@functools.cache
def _anything() -> tuple[re.Pattern, re.Pattern]:
    """One pattern per kind for all entries: most resources are the app's own, and are passed
    over with two searches instead of one per entry."""
    def union(patterns):  # named groups may repeat across entries, not in one pattern
        return re.compile("|".join(f"(?:{_UNNAMED.sub('(?:', p)})" for p in patterns))
    # from the raw entries: the entries' own patterns are compiled only once a resource matches
    return union(e["path"] for e in _entries()), union(e["logical_id"] for e in _entries())


def _may_match(text: str | None, kind: str) -> bool:
    """Could some entry's `kind` pattern match `text`? False only when the text holds none of
    the texts that every match holds (scripts/data_tables.py finds them in the patterns), so
    that most resources are passed over without compiling a pattern."""
    if not text:
        return False
    markers = _data()["markers"][kind]
    return markers is None or any(m in text for m in markers)


def made_by_cdk(construct_path: str | None, logical_id: str | None, props: Any = None):
    """(entry, match) for a resource that CDK made itself, or None."""
    construct_path = construct_path if isinstance(construct_path, str) else None  # a report may hold anything
    logical_id = logical_id if isinstance(logical_id, str) else None
    if not (_may_match(construct_path, "path") or _may_match(logical_id, "logical_id")):
        return None
    any_path, any_id = _anything()
    if not ((construct_path and any_path.search(construct_path)) or (logical_id and any_id.search(logical_id))):
        return None
    for entry in table():
        match = entry.matches(construct_path, logical_id, props)
        if match:
            return entry, match
    return None


def fix(rule_id: str, remediation: str, resource) -> str:
    """The fix for a finding of `rule_id` on `resource`: the CDK option (or acknowledgment) when
    CDK made the resource itself, else the rule's own `remediation`. Without a construct path,
    the stack's name stands for it: a nested stack's name is its path."""
    path = resource.construct_path or f"{resource.template.stack}/{resource.logical_id}"
    return fix_at(rule_id, remediation, path, resource.logical_id, resource.props)


def fix_at(rule_id: str, remediation: str, construct_path: str | None, logical_id: str | None,
           props: Any = None) -> str:
    """As `fix`, for a finding known only by construct path and logical id (cdk-nag's)."""
    found = made_by_cdk(construct_path, logical_id, props)
    return found[0].remediation(rule_id, found[1]) if found else remediation
