"""The rule catalogue: one registry, filled by the `@rule` decorator in the modules of this package.

Every module here is imported by `catalogue()`, so a rule exists as soon as it is written; the CLI,
the CDK plugin, the docs and the tests all read the same list. The catalogue is checked when it
loads: duplicate ids, a clause outside 1-11, a missing remediation or title fail loudly.
"""
from __future__ import annotations

import importlib
import pkgutil
import re
from typing import Callable, Iterable

from ..engine.rule import SCOPES, SEVERITIES, Rule

RULE_ID = re.compile(r"^DP-[A-Z][A-Za-z0-9]+$")


_REGISTRY: dict[str, Rule] = {}
_LOADED = False


class CatalogueError(Exception):
    pass


def rule(rule_id: str, *, clause: int, severity: str, types: Iterable[str], title: str,
         rationale: str, remediation: str, scope: str = "resource", reads: Iterable[str] = ()) -> Callable:
    """Register `check` as a rule. Resource rules are called as check(resource, template);
    template rules as check(template); app rules as check(app). A check yields Outcomes
    (see dpguard.engine.findings) and yields nothing when the resource complies."""

    def register(check: Callable) -> Callable:
        problems = []
        if not RULE_ID.match(rule_id):
            problems.append("id must look like DP-Name")
        if rule_id in _REGISTRY:
            problems.append("duplicate id")
        if clause not in range(1, 12):
            problems.append(f"clause {clause} is not one of the policy's 1-11")
        if severity not in SEVERITIES:
            problems.append(f"severity {severity!r} is not one of {SEVERITIES}")
        if scope not in SCOPES:
            problems.append(f"scope {scope!r} is not one of {SCOPES}")
        for name, text in (("title", title), ("rationale", rationale), ("remediation", remediation)):
            if not text or not text.strip():
                problems.append(f"missing {name}")
        if not types:
            problems.append("no resource types")
        if problems:
            raise CatalogueError(f"rule {rule_id} ({check.__module__}): {'; '.join(problems)}")
        _REGISTRY[rule_id] = Rule(rule_id, clause, severity, tuple(types), title.strip(),
                                  " ".join(rationale.split()), remediation.strip("\n"), check, scope,
                                  tuple(reads))
        return check

    return register


def catalogue() -> list[Rule]:
    """Every rule, sorted by clause then id."""
    global _LOADED
    if not _LOADED:
        for module in pkgutil.iter_modules(__path__):
            importlib.import_module(f"{__name__}.{module.name}")
        _LOADED = True
    return sorted(_REGISTRY.values(), key=lambda r: (r.clause, r.rule_id))
