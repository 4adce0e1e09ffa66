"""Run rules over an app: findings, acknowledgments, and per-rule counts."""
from __future__ import annotations

import datetime as dt
import gc
import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable

from . import cdk_made
from .sam import name_sam_resources
from .loader import InputError
from .findings import (ACK_HOLDS, ACK_REJECTED, ACK_UNUSED, ACKNOWLEDGED, UNVERIFIABLE, VIOLATION,
                       Acknowledgment, Finding, Outcome)
from .coverage import NOT_JUDGED, TypeCoverage, coverage
from .rule import Rule
from .template import App, Resource, Template

MIN_REASON_LENGTH = 10  # as cdk-nag asks of its suppressions
ACK_DOES_NOT_HOLD = " (the acknowledgment does not hold: "
EXPIRES_IN_REASON = re.compile(r"\(expires (\S+)\)")


@dataclass
class Config:
    """How strictly to judge. The defaults are the strict ones."""

    unverifiable: str = "fail"  # "fail": like a violation; "warn": reported as a warning
    trust_parameter_defaults: bool = False
    disabled_rules: frozenset = frozenset()
    # Ingress from anywhere that the policy accepts: [{"ports": [443], "resources": ["Alb*"]}];
    # resources match logical ids or construct paths (glob).
    allowed_ingress: tuple = ()
    # Resource types that no rule judges: "report" lists them (coverage); "fail" makes each of
    # their resources a DP-ResourceTypeJudged violation (`dpguard scan --strict`).
    unjudged: str = "report"
    today: dt.date = field(default_factory=dt.date.today)

    SETTINGS = ("unverifiable", "trust_parameter_defaults", "disabled_rules", "allowed_ingress", "unjudged")

    @classmethod
    def from_settings(cls, settings: dict, source: str) -> "Config":
        """A Config from user settings (a --config file, cdk.json context, enforce() options),
        checked: a bad setting is an InputError naming `source`, never a silent default."""
        unknown = set(settings) - set(cls.SETTINGS)
        if unknown:
            raise InputError(source, f"unknown setting(s) {', '.join(sorted(unknown))}; "
                                     f"known: {', '.join(cls.SETTINGS)}")
        out = dict(settings)
        if out.get("unverifiable", "fail") not in ("fail", "warn"):
            raise InputError(source, "unverifiable must be 'fail' or 'warn'")
        if out.get("unjudged", "report") not in ("report", "fail"):
            raise InputError(source, "unjudged must be 'report' or 'fail'")
        if not isinstance(out.get("trust_parameter_defaults", False), bool):
            raise InputError(source, "trust_parameter_defaults must be true or false")
        disabled = out.get("disabled_rules") or ()
        if isinstance(disabled, str) or not all(isinstance(d, str) for d in disabled):
            raise InputError(source, "disabled_rules must be a list of rule ids")
        out["disabled_rules"] = frozenset(disabled)
        allowed = out.get("allowed_ingress") or []
        if not isinstance(allowed, list) or not all(
                isinstance(a, dict) and isinstance(a.get("ports"), list) and isinstance(a.get("resources"), list)
                for a in allowed):
            raise InputError(source, "allowed_ingress must be a list of {ports: [...], resources: [...]}")
        out["allowed_ingress"] = tuple(allowed)
        return cls(**out)


@dataclass
class RuleCount:
    evaluated: int = 0
    failed: int = 0


@dataclass
class Report:
    findings: list[Finding]
    templates: list[Template]
    counts: dict[tuple[str, str], RuleCount]  # (template path, rule id) -> resources judged, failed
    acknowledgments: list[Acknowledgment]  # of dpguard rules, in template metadata
    rules: list[Rule]
    coverage: list[TypeCoverage] = field(default_factory=list)  # per resource type present

    @property
    def not_judged(self) -> list[TypeCoverage]:
        return [c for c in self.coverage if c.status == NOT_JUDGED]

    @property
    def unused_acknowledgments(self) -> list[Acknowledgment]:
        return [a for a in self.acknowledgments if a.status == ACK_UNUSED]

    def rule_totals(self) -> dict[str, RuleCount]:
        totals = {rule.rule_id: RuleCount() for rule in self.rules}
        for (_, rule_id), count in self.counts.items():
            totals[rule_id].evaluated += count.evaluated
            totals[rule_id].failed += count.failed
        return totals

    @property
    def resources(self) -> int:
        return sum(len(t.resources) for t in self.templates)

    def summary(self) -> dict:
        by_status: dict[str, int] = defaultdict(int)
        for f in self.findings:
            by_status[f.status] += 1
        return {"templates": len(self.templates), "resources": self.resources,
                "violations": by_status[VIOLATION], "acknowledged": by_status[ACKNOWLEDGED],
                "unverifiable": by_status[UNVERIFIABLE]}

    def failing(self, fail_on: str = "error") -> list[Finding]:
        levels = ("error",) if fail_on == "error" else ("error", "warning")
        return [f for f in self.findings if f.fails and f.severity in levels]


def evaluate(app: App, config: Config | None, rules: Iterable[Rule]) -> Report:
    """Judge `app` with `rules` (the whole catalogue is dpguard.rules.catalogue())."""
    # The rules make many small objects and almost no cycles: the collector's passes over a
    # loaded app (a few ms for 2,000 resources) find nothing to free, so they wait until the end.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _evaluate(app, config, rules)
    finally:
        if collecting:
            gc.enable()


def _evaluate(app: App, config: Config | None, rules: Iterable[Rule]) -> Report:
    config = config or Config()
    app.config = config
    offered = list(rules)
    rules = [r for r in offered if r.rule_id not in config.disabled_rules]
    counts: dict[tuple[str, str], RuleCount] = defaultdict(RuleCount)
    findings: list[Finding] = []
    present = [r for tpl in app.templates for r in tpl.resources.values() if not r.problem]
    types = coverage(present, rules, config.disabled_rules, offered)
    app.coverage = {c.resource_type: c for c in types}  # for DP-ResourceTypeJudged

    # One rule at a time over every readable resource of its types (unreadable ones are judged
    # by DP-ResourceReadable), not one resource at a time through its rules: Python's
    # specialising interpreter runs a check over many resources of one shape much faster
    # (about a quarter less time for the whole catalogue on 2,000 resources).
    for rule in rules:
        if rule.scope != "resource":
            continue
        check = rule.check
        for tpl in app.templates:
            of_type = tpl.by_type()
            for rtype in rule.resource_types:
                resources = of_type.get(rtype)
                if not resources:
                    continue
                count = counts[(tpl.path, rule.rule_id)]
                count.evaluated += len(resources)
                for r in resources:
                    try:
                        outcomes = list(check(r, tpl))
                    except Exception as e:  # noqa: BLE001 - a rule's own error is a finding, not a crash
                        outcomes = [_crashed(e)]
                    if outcomes:
                        count.failed += 1
                        if len(outcomes) > 1:
                            outcomes = _distinct(outcomes)
                        findings.extend(_finding(rule, o, tpl, r, config) for o in outcomes)
    for tpl in app.templates:
        for rule in rules:
            if rule.scope == "template":
                findings.extend(_scoped(rule, _run(rule, tpl), tpl, config, counts))
    for rule in rules:
        if rule.scope == "app" and app.templates:
            findings.extend(_scoped(rule, _run(rule, app), app.templates[0], config, counts))

    acknowledgments = _apply_acknowledgments(app, findings, rules, config.today)
    # Ordered by resource before SAM's resources are named too: findings on two resources that
    # one SAM resource made then keep the order of those resources' ids (and each rule's own
    # order), not the order the rules ran in.
    findings.sort(key=lambda f: (f.template, f.logical_id or ""))
    name_sam_resources(app, findings, acknowledgments)  # SAM: name the SAM resource, not what it made
    findings.sort(key=_finding_order)
    return Report(findings, app.templates, dict(counts), acknowledgments, rules, types)


def _finding_order(f: Finding) -> tuple:
    return (f.template, f.logical_id or "", f.clause, f.rule_id, f.property_path)


def _run(rule: Rule, *args: Any) -> list[Outcome]:
    """The rule's outcomes, each once; a rule that crashes is reported as unverifiable, never
    swallowed."""
    try:
        outcomes = list(rule.check(*args))
    except Exception as e:  # noqa: BLE001 - a rule's own error is a finding, not a crash
        return [_crashed(e)]
    return _distinct(outcomes) if len(outcomes) > 1 else outcomes


def _crashed(e: Exception) -> Outcome:
    if isinstance(e, RecursionError):
        return Outcome(UNVERIFIABLE, "", "cannot evaluate: the resource is nested too deeply")
    return Outcome(UNVERIFIABLE, "", f"cannot evaluate: rule error {type(e).__name__}: {e}")


def _distinct(outcomes: list[Outcome]) -> list[Outcome]:
    """Outcomes without repeats, in first-seen order. Fn::If branches often lead a rule to the
    same outcome twice; dropping repeats here spares every rule from doing it. An outcome that
    cannot be hashed (a rule put a list in it) is kept rather than lost."""
    seen: set = set()
    out = []
    for o in outcomes:
        try:
            if o in seen:
                continue
            seen.add(o)
        except TypeError:
            pass
        out.append(o)
    return out


def _scoped(rule: Rule, outcomes: list[Outcome], default_tpl: Template, config: Config,
            counts: dict) -> list[Finding]:
    count = counts[(default_tpl.path, rule.rule_id)]
    count.evaluated += 1
    count.failed += bool(outcomes)
    out = []
    for o in outcomes:
        tpl = o.template or default_tpl
        r = tpl.resources.get(o.logical_id) if o.logical_id else None
        out.append(_finding(rule, o, tpl, r, config))
    return out


def _finding(rule: Rule, o: Outcome, tpl: Template, r: Resource | None, config: Config) -> Finding:
    severity = rule.severity
    if o.status == UNVERIFIABLE and config.unverifiable == "warn":
        severity = "warning"
    return Finding(
        rule_id=rule.rule_id, clause=rule.clause, severity=severity, status=o.status,
        template=tpl.path, stack=tpl.stack,
        logical_id=r.logical_id if r else o.logical_id,
        resource_type=(r.type or None) if r else None,
        construct_path=r.construct_path if r else None,
        property_path=o.property_path, message=o.message,
        remediation=cdk_made.fix(rule.rule_id, rule.remediation, r) if r else rule.remediation)


# ---------------------------------------------------------------- acknowledgments

def _acknowledgments(metadata: dict) -> list[dict]:
    """The {id, reason, expires} entries under Metadata.cdk_nag.rules_to_suppress, as cdk-nag
    writes them (and as CDK's Validations.acknowledge() lands there through enforce()): ids
    `DP-X` or `dpguard::DP-X`; an expiry either as `expires` or, as dpguard.acknowledge()
    writes it, `(expires YYYY-MM-DD)` in the reason."""
    block = metadata.get("cdk_nag")
    entries = block.get("rules_to_suppress") if isinstance(block, dict) else None
    out = []
    for e in entries if isinstance(entries, list) else ():
        if not isinstance(e, dict):
            continue
        e = dict(e)
        if isinstance(e.get("id"), str):
            e["id"] = e["id"].removeprefix("dpguard::")
        if e.get("expires") is None and isinstance(e.get("reason"), str):
            match = EXPIRES_IN_REASON.search(e["reason"])
            e["expires"] = match.group(1) if match else None
        out.append(e)
    return out


def _problem(entry: dict, today: dt.date) -> str | None:
    """Why an acknowledgment does not hold, or None when it does."""
    reason = entry.get("reason")
    if not isinstance(reason, str) or len(reason.strip()) < MIN_REASON_LENGTH:
        return f"it needs a reason of at least {MIN_REASON_LENGTH} characters"
    expires = entry.get("expires")
    if expires is None:
        return None
    try:
        day = dt.date.fromisoformat(str(expires))
    except ValueError:
        return f"its expiry {expires!r} is not a YYYY-MM-DD date"
    if day < today:
        return f"it expired on {day.isoformat()}"
    return None


def _apply_acknowledgments(app: App, findings: list[Finding], rules: list[Rule],
                           today: dt.date) -> list[Acknowledgment]:
    """Match the acknowledgments in template metadata to failing findings. Returns every
    acknowledgment of a dpguard rule with what became of it: `holds`, `does not hold` (with
    the problem) or `unused`."""
    entries: dict[tuple[str, str | None], list[dict]] = {}
    resource_types: dict[tuple[str, str], str] = {}
    for tpl in app.templates:
        entries[(tpl.path, None)] = _acknowledgments(tpl.metadata)
        if not tpl.may_contain("cdk_nag"):
            continue  # no resource of the template can hold one
        for r in tpl.resources.values():
            if r.problem:
                continue
            found = _acknowledgments(r.metadata)
            if found:  # most resources have none: only those with some are looked up
                entries[(tpl.path, r.logical_id)] = found
                resource_types[(tpl.path, r.logical_id)] = r.type
    outcome: dict[int, tuple[str, str | None]] = {}  # id(entry) -> (status, problem)
    for f in findings:
        if not f.fails:
            continue
        scopes = [(f.template, f.logical_id), (f.template, None)] if f.logical_id else [(f.template, None)]
        for scope in scopes:
            entry = next((e for e in entries.get(scope, ()) if e.get("id") == f.rule_id), None)
            if entry is None:
                continue
            problem = _problem(entry, today)
            outcome[id(entry)] = (ACK_HOLDS, None) if not problem else (ACK_REJECTED, problem)
            if problem:
                f.message += f"{ACK_DOES_NOT_HOLD}{problem})"
            else:
                f.status = ACKNOWLEDGED
                expires = entry.get("expires")
                f.acknowledgment = {"reason": entry["reason"].strip(),
                                    "expires": str(expires) if expires is not None else None}
            break
    # CDK copies an acknowledgment made on a construct to every resource under it: one on a
    # resource its rule never judges (a queue's policy, for a queue rule) is not "unused".
    judged_types = {r.rule_id: set(r.resource_types) for r in rules if r.scope == "resource"}
    records = []
    for (template, logical_id), items in entries.items():
        rtype = resource_types.get((template, logical_id))
        for e in items:
            rule_id = e.get("id")
            if not (isinstance(rule_id, str) and rule_id.startswith("DP-")):
                continue  # another tool's (cdk-nag's): not ours to judge
            if rule_id in judged_types and rtype is not None and rtype not in judged_types[rule_id]:
                continue
            status, problem = outcome.get(id(e), (ACK_UNUSED, None))
            records.append(Acknowledgment(rule_id, str(e.get("reason") or ""),
                                          str(e["expires"]) if e.get("expires") else None,
                                          logical_id, template, status, problem))
    return records
