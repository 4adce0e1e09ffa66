"""Which resource types exist, which of them touch data protection, and which the rules judge.

`resource_types.json` is generated from CloudFormation's resource provider schemas by
scripts/inventory.py: every type with the security topics of its writable properties (encryption,
tls, logging, public, credentials, policy; none for a route or a tag association).
`exemptions.yaml` lists, with a one-line reason each, the types with such topics that no rule
judges: `nothing_to_judge` when a review found nothing the policy governs, `not_yet_judged` when it
is a known gap; and `partly_judged`, types a rule judges that still have a known gap.
tests/test_inventory.py keeps the three in step with the rule catalogue.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Iterable

HERE = Path(__file__).parent
NOTHING_TO_JUDGE, NOT_YET_JUDGED, PARTLY_JUDGED = "nothing_to_judge", "not_yet_judged", "partly_judged"
KINDS = (NOTHING_TO_JUDGE, NOT_YET_JUDGED, PARTLY_JUDGED)


@dataclass(frozen=True)
class Exemption:
    kind: str  # one of KINDS
    reason: str


@cache
def resource_types() -> dict[str, tuple[str, ...]]:
    """Every type CloudFormation's schemas know, with the security topics of its properties."""
    doc = json.loads((HERE / "resource_types.json").read_text())
    return {rtype: tuple(topics) for rtype, topics in doc["types"].items()}


@cache
def exemptions() -> dict[str, Exemption]:
    doc = json.loads((HERE / "exemptions.json").read_text(encoding="utf-8"))["table"] or {}
    out: dict[str, Exemption] = {}
    for kind in KINDS:
        for rtype, reason in (doc.get(kind) or {}).items():
            out[rtype] = Exemption(kind, " ".join(str(reason).split()))
    return out


def judged_types(rules: Iterable) -> dict[str, list[str]]:
    """type -> ids of the rules that judge it. A rule that reads every resource (types "*", such
    as the scan for secrets in any property) judges no type in particular."""
    out: dict[str, list[str]] = {}
    for rule in rules:
        for rtype in (*rule.resource_types, *rule.reads):
            if rtype != "*":
                out.setdefault(rtype, []).append(rule.rule_id)
    return out
