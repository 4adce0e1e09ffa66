"""What a rule is: its metadata beside its check. The catalogue (dpguard.rules) makes them; the
engine runs whichever rules it is given."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

SEVERITIES = ("error", "warning")
SCOPES = ("resource", "template", "app")


@dataclass(frozen=True)
class Rule:
    rule_id: str
    clause: int
    severity: str
    resource_types: tuple[str, ...]
    title: str
    rationale: str
    remediation: str
    check: Callable[..., Iterable]
    scope: str = "resource"
    # Types the rule judges through the resources it is about (a parameter group through its
    # database): they count as judged in coverage, but the rule is not called for them.
    reads: tuple[str, ...] = ()

    def as_dict(self) -> dict:
        return {"rule_id": self.rule_id, "clause": self.clause, "severity": self.severity,
                "resource_types": list(self.resource_types), "scope": self.scope,
                "title": self.title, "rationale": self.rationale, "remediation": self.remediation}
