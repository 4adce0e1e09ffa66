"""Which resource types of a scan the rules judged, and which they did not.

A scan that says "0 violations" must also say what it did not look at. Every type present is one of:
  judged            a rule of this run judges it;
  nothing_to_judge  CloudFormation's schema gives it no property about encryption, TLS, logging,
                    public access, credentials or policies, or a review found nothing the policy
                    governs there (dpguard/inventory/exemptions.yaml);
  not_judged        anything else: a known gap, a type whose rules were disabled, a custom resource,
                    a type CloudFormation's schemas do not know.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Iterable

from ..inventory import NOTHING_TO_JUDGE, exemptions, judged_types, resource_types

JUDGED, NOTHING, NOT_JUDGED = "judged", "nothing_to_judge", "not_judged"
CDK_METADATA = "AWS::CDK::Metadata"


@dataclass(frozen=True)
class TypeCoverage:
    resource_type: str
    resources: int
    status: str  # JUDGED, NOTHING or NOT_JUDGED
    rules: tuple[str, ...]  # the rules that judge it, for JUDGED
    reason: str  # why it was not judged, or why there is nothing to judge

    def as_dict(self) -> dict:
        return {"resource_type": self.resource_type, "resources": self.resources, "status": self.status,
                "rules": list(self.rules), "reason": self.reason}


def classify(rtype: str, judged_by: dict[str, list[str]], disabled: Iterable[str] = (),
             all_rules: dict[str, list[str]] | None = None) -> tuple[str, tuple[str, ...], str]:
    """(status, rules, reason) of one resource type."""
    if rtype in judged_by:  # the reason says what is still not judged, if anything
        exemption = exemptions().get(rtype)
        return JUDGED, tuple(judged_by[rtype]), exemption.reason if exemption else ""
    switched_off = [r for r in (all_rules or {}).get(rtype, ()) if r in set(disabled)]
    if switched_off:
        return NOT_JUDGED, (), f"its rules are disabled in this run ({', '.join(switched_off)})"
    if rtype.startswith("Custom::") or rtype == "AWS::CloudFormation::CustomResource":
        return NOT_JUDGED, (), "a custom resource: what it does is its provider's code, not the template"
    if rtype == CDK_METADATA:
        return NOTHING, (), "CDK's record of the construct library versions used; it creates nothing"
    exemption = exemptions().get(rtype)
    if exemption:
        return (NOTHING if exemption.kind == NOTHING_TO_JUDGE else NOT_JUDGED), (), exemption.reason
    topics = resource_types().get(rtype)
    if topics == ():
        return NOTHING, (), ("no property about encryption, TLS, logging, public access, credentials "
                             "or policies in CloudFormation's schema")
    if topics:
        return NOT_JUDGED, (), f"no rule judges its {', '.join(topics)} properties"
    if rtype.startswith("AWS::Serverless::"):
        return NOT_JUDGED, (), "a SAM resource, expanded at deploy time (see DP-TemplateProcessed)"
    return NOT_JUDGED, (), "not a type in CloudFormation's resource schemas (a registry, module or new type)"


def coverage(resources: Iterable, rules: Iterable, disabled: Iterable[str] = (),
             all_rules: Iterable | None = None) -> list[TypeCoverage]:
    """One TypeCoverage per resource type among `resources`, the types not judged first, then by
    name. `all_rules`: the whole catalogue, to tell a disabled rule from a missing one."""
    counts = Counter(r.type for r in resources if r.type)
    judged_by = judged_types(rules)
    every = judged_types(all_rules) if all_rules is not None else {}
    out = []
    for rtype, n in counts.items():
        status, by, reason = classify(rtype, judged_by, disabled, every)
        out.append(TypeCoverage(rtype, n, status, by, reason))
    order = {NOT_JUDGED: 0, NOTHING: 1, JUDGED: 2}
    return sorted(out, key=lambda c: (order[c.status], c.resource_type))


def summary(items: list[TypeCoverage]) -> dict:
    """The coverage block of the JSON contract."""
    by_status = Counter(c.status for c in items)
    return {"resource_types": len(items), JUDGED: by_status[JUDGED], NOTHING: by_status[NOTHING],
            NOT_JUDGED: [c.as_dict() for c in items if c.status == NOT_JUDGED],
            # judged types that still have a known gap
            "partly_judged": [c.as_dict() for c in items if c.status == JUDGED and c.reason]}


def headline(items: list[TypeCoverage]) -> str:
    """One line for people: how many types were judged, and how many were not."""
    counts = Counter(c.status for c in items)
    return (f"{len(items)} resource type(s): {counts[JUDGED]} judged, {counts[NOTHING]} with nothing to judge, "
            f"{counts[NOT_JUDGED]} not judged")
