"""One acknowledgment, many findings: CDK copies an acknowledgment made on a stack (or any
construct) to every resource under it, so twelve functions acknowledged once arrive as twelve
acknowledged findings with one reason. The table and the Markdown comment show them as one row;
JSON, SARIF and JUnit keep one finding per resource (the contract)."""
from __future__ import annotations

from dataclasses import dataclass

from ..engine.findings import ACKNOWLEDGED, Finding

SHOWN = 8  # resources named in a row; the rest are counted (JSON lists every one)


@dataclass
class AcknowledgedGroup:
    findings: list[Finding]  # two or more, same stack, rule, reason and expiry

    @property
    def first(self) -> Finding:
        return self.findings[0]

    @property
    def reason(self) -> str:
        return self.first.acknowledgment["reason"]

    @property
    def expires(self) -> str | None:
        return self.first.acknowledgment.get("expires")

    @property
    def resources(self) -> list[str]:
        """Each resource once, by construct path within the stack (or logical id)."""
        return list(dict.fromkeys(resource_name(f) for f in self.findings))

    def headline(self) -> str:
        # dpguard.acknowledge() keeps the expiry in the reason, where CDK's report shows it
        expiry = f" (expires {self.expires})" if self.expires and f"(expires {self.expires})" not in self.reason else ""
        return (f"{self.first.rule_id} acknowledged for {len(self.resources)} resources in stack "
                f"{self.first.stack}: {self.reason}{expiry}")

    def compact(self, shown: int = SHOWN) -> str:
        """The resources, comma-separated; past `shown` of them, how many more."""
        names = self.resources
        more = f" and {len(names) - shown} more" if len(names) > shown else ""
        return ", ".join(names[:shown]) + more


def resource_name(f: Finding) -> str:
    path = f.construct_path or ""
    prefix = f"{f.stack}/"
    if path.startswith(prefix):
        return path[len(prefix):].removesuffix("/Resource") or path
    return path or f.logical_id or f.stack


def _key(f: Finding) -> tuple | None:
    if f.status != ACKNOWLEDGED or not f.acknowledgment:
        return None
    return f.stack, f.rule_id, f.acknowledgment.get("reason"), f.acknowledgment.get("expires")


def grouped(findings: list[Finding]) -> list[Finding | AcknowledgedGroup]:
    """`findings` in their order, with the acknowledged ones that share stack, rule, reason and
    expiry on more than one resource as one AcknowledgedGroup, where the first of them was."""
    groups: dict[tuple, list[Finding]] = {}
    for f in findings:
        key = _key(f)
        if key:
            groups.setdefault(key, []).append(f)
    out: list[Finding | AcknowledgedGroup] = []
    placed: set[tuple] = set()
    for f in findings:
        key = _key(f)
        members = groups.get(key) if key else None
        if not members or len({(m.template, m.logical_id) for m in members}) < 2:
            out.append(f)
        elif key not in placed:
            placed.add(key)
            out.append(AcknowledgedGroup(members))
    return out
