"""What a rule says about a resource, and the Finding every output format is written from."""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import NamedTuple

VIOLATION = "violation"
UNVERIFIABLE = "unverifiable"
ACKNOWLEDGED = "acknowledged"


class Outcome(NamedTuple):
    """One problem a check found. `logical_id`/`template` are set only by template- and
    app-scope rules, whose findings land on a resource they name."""

    status: str
    property_path: str
    message: str
    logical_id: str | None = None
    template: object | None = None


def violation(property_path: str, message: str, **where) -> Outcome:
    return Outcome(VIOLATION, property_path, message, **where)


def unverifiable(property_path: str, message: str, **where) -> Outcome:
    return Outcome(UNVERIFIABLE, property_path, message, **where)


ACK_HOLDS, ACK_REJECTED, ACK_UNUSED = "holds", "does not hold", "unused"


@dataclass
class Acknowledgment:
    rule_id: str
    reason: str
    expires: str | None = None
    logical_id: str | None = None
    template: str | None = None
    status: str = ACK_UNUSED  # ACK_HOLDS, ACK_REJECTED (see `problem`) or ACK_UNUSED
    problem: str | None = None


@dataclass
class Finding:
    rule_id: str
    clause: int
    severity: str
    status: str
    template: str
    stack: str
    logical_id: str | None
    resource_type: str | None
    construct_path: str | None
    property_path: str
    message: str
    remediation: str
    acknowledgment: dict | None = None
    # with `--baseline FILE` only: whether the baseline lists the finding (then it is still
    # reported, with its status, but does not fail the run); None, and left out of as_dict(),
    # when no baseline was given
    baselined: bool | None = None

    def as_dict(self) -> dict:
        """The fields in order, as dataclasses.asdict gives them (written out: asdict's deep copy
        was a third of the time of a JSON report)."""
        found = {"rule_id": self.rule_id, "clause": self.clause, "severity": self.severity,
                 "status": self.status, "template": self.template, "stack": self.stack,
                 "logical_id": self.logical_id, "resource_type": self.resource_type,
                 "construct_path": self.construct_path, "property_path": self.property_path,
                 "message": self.message, "remediation": self.remediation,
                 "acknowledgment": copy.deepcopy(self.acknowledgment) if self.acknowledgment else self.acknowledgment}
        if self.baselined is not None:
            found["baselined"] = self.baselined
        return found

    @property
    def locator(self) -> str | None:
        """What names the resource best: its construct path (an ARN for live findings)."""
        return self.construct_path

    @property
    def fails(self) -> bool:
        return self.status in (VIOLATION, UNVERIFIABLE)
