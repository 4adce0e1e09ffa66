"""What an account really holds, written as CloudFormation: collectors turn API answers into
resources of the types and properties a template would have, so the catalogue that judges
templates judges the live account too, with the same rule ids, clauses and messages.

A fact the API would not give (access denied, throttled past retries, deleted mid-scan) is
written as `{"Fn::DpguardUnreadable": "why"}`: the engine reads it as a value it cannot know,
and every rule that needs it reports `unverifiable` with that reason, never compliant."""
from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import Any

from ..engine.template import LIVE  # resource Metadata: {"arn", "region", "account", facts...}
from ..engine.values import UNREADABLE


GAP = "Live::Audit::Gap"  # a check that could not run: judged by DP-AuditComplete


def unreadable(reason: str) -> dict:
    return {UNREADABLE: reason}


def ref(logical_id: str) -> dict:
    return {"Ref": logical_id}


@dataclass
class LiveTemplate:
    """The resources of one account and region (global services under region "global")."""

    account: str
    region: str
    resources: dict[str, dict] = field(default_factory=dict)
    gaps: list[str] = field(default_factory=list)  # whole checks that could not run
    # resource types of which every resource of the account and region was read: only for these
    # does "not in the live template" mean "not in the account" (template Metadata, see below)
    complete: set[str] = field(default_factory=set)
    # physical id -> acknowledgments from the template that deployed the resource
    acknowledgments: dict[str, list] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    # Closed when the audit's deadline passes: a reader still running then writes nothing more.
    _closed: bool = field(default=False, repr=False)

    def close(self, reason: str | None = None) -> None:
        """Take no more writes (after recording `reason` as a gap, if given)."""
        with self._lock:
            if reason and not self._closed:
                self.gaps.append(reason)
            self._closed = True

    def add(self, hint: str, rtype: str, properties: dict[str, Any], *, arn: str,
            region: str | None = None) -> str:
        """Add a resource; returns its logical id (unique, derived from `hint`, e.g. a name)."""
        base = re.sub(r"[^A-Za-z0-9]", "", hint.title())[:200] or "Resource"
        with self._lock:
            if self._closed:
                return base
            logical_id, n = base, 1
            while logical_id in self.resources:
                n += 1
                logical_id = f"{base}{n}"
            self.resources[logical_id] = {
                "Type": rtype, "Properties": properties,
                "Metadata": {LIVE: {"arn": arn, "region": region or self.region, "account": self.account}}}
        return logical_id

    def gap(self, reason: str) -> None:
        with self._lock:
            if not self._closed:
                self.gaps.append(reason)

    def listed(self, rtype: str) -> None:
        """Every resource of `rtype` in this account and region is in the template (its listing
        was read whole). Rules that look a resource up by name read it as "the account has no
        such resource" only then; otherwise as a fact they cannot know."""
        with self._lock:
            if not self._closed:
                self.complete.add(rtype)

    def acknowledge(self, physical_id: str, entries: list) -> None:
        with self._lock:
            if not self._closed:
                self.acknowledgments.setdefault(physical_id, []).extend(entries)

    def as_template(self) -> dict:
        """The resources read, and one `Live::Audit::Gap` per check that could not run (judged by
        DP-AuditComplete)."""
        with self._lock:
            resources = dict(self.resources)
            for n, reason in enumerate(self.gaps, 1):
                resources[f"AuditGap{n}"] = {
                    "Type": GAP, "Properties": {"Reason": reason},
                    "Metadata": {LIVE: {"arn": f"arn:aws:::{self.account}", "region": self.region,
                                        "account": self.account}}}
            return {"Description": f"live resources of account {self.account} in {self.region}",
                    "Metadata": {LIVE: {"complete": sorted(self.complete)}}, "Resources": resources}


def apply_acknowledgments(lives: list[LiveTemplate]) -> None:
    """Give each live resource the acknowledgments of the template resource that deployed it,
    matched by physical id: the ARN itself, or its last segment (a bucket name, a key id, a group
    id, a role name)."""
    by_id: dict[str, list] = {}
    for live in lives:
        for physical_id, entries in live.acknowledgments.items():
            by_id.setdefault(physical_id, []).extend(entries)
    if not by_id:
        return
    for live in lives:
        for resource in live.resources.values():
            arn = resource["Metadata"][LIVE]["arn"]
            entries = by_id.get(arn) or by_id.get(re.split(r"[:/]", arn)[-1])
            if entries:
                resource["Metadata"]["cdk_nag"] = {"rules_to_suppress": entries}
