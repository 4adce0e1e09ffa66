"""The auditor report's data (CONTRACT.md): one dict built from cloud assemblies, templates and
saved `dpguard scan` / `dpguard audit` JSON. The HTML, Markdown and CSV writers read only this.

What cannot be read is said in `evidence.problems`, one line each; the report is still made from
the rest, and never claims a clause passed on evidence it did not see."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import subprocess
from collections import defaultdict
from pathlib import Path

import yaml

from .. import __version__
from ..engine import Config, evaluate, load
from ..engine import cdk_made
from ..engine import coverage as type_coverage
from ..engine.findings import ACK_HOLDS, ACK_UNUSED, ACKNOWLEDGED, UNVERIFIABLE, VIOLATION
from ..engine.loader import InputError, read_capped
from ..rules import catalogue
from .nag_clauses import nag_clause

SCHEMA = "dpguard-report/1"
POLICY_UPDATED = "2022-03-24"  # the policy text this catalogue was written from
VALIDATION_REPORT = "validation-report.json"
TICKET = re.compile(r"\(ticket ([^)]+)\)")
EXPIRES = re.compile(r"\(expires (\d{4}-\d{2}-\d{2})\)")


def clause_texts() -> dict[int, dict]:
    with open(Path(__file__).with_name("clauses.yaml"), encoding="utf-8") as f:
        return {int(n): c for n, c in yaml.safe_load(f)["clauses"].items()}


def sha256_of(path: Path) -> str:
    return hashlib.sha256(read_capped(path)).hexdigest()  # capped: a FIFO or /dev/zero never ends


def build(paths: list[str], config: Config | None = None, now: dt.datetime | None = None) -> dict:
    """The report data for `paths`: cloud assemblies, template files or directories, CDK
    validation reports, saved dpguard JSON. Raises InputError only when a path does not exist."""
    config = config or Config()
    evidence = Evidence()
    template_paths, saved = [], []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise InputError(path, "no such file or directory")
        if path.is_file() and path.suffix == ".json":
            doc = evidence.read_json(path)
            if isinstance(doc, dict) and "findings" in doc and "tool" in doc:
                saved.append((path, doc))
                continue
            if isinstance(doc, dict) and "pluginReports" in doc:
                evidence.add_validation_report(path, doc)
                continue
        template_paths.append(raw)
        if path.is_dir():
            evidence.find_assemblies(path)
            saved += saved_results(path, evidence)

    app, errors = load(template_paths, trust_parameter_defaults=config.trust_parameter_defaults)
    evidence.problems.extend(str(e) for e in errors)
    report = evaluate(app, config, catalogue())
    for tpl in app.templates:
        evidence.add_input(Path(tpl.path), "template")
    if not app.templates and not saved and not evidence.validation_reports:
        evidence.problems.append("no templates, validation reports or saved dpguard results were found")

    findings = [engine_finding(f) for f in report.findings]
    acknowledgments = grouped_acknowledgments([engine_acknowledgment(a, app) for a in report.acknowledgments])
    counts = {rule_id: {"evaluated": c.evaluated, "failed": c.failed} for rule_id, c in report.rule_totals().items()}
    for path, doc in saved:
        saved_findings, saved_acks = evidence.add_saved(path, doc, counts)
        findings += saved_findings
        acknowledgments += grouped_acknowledgments(saved_acks)
    nag_findings, nag_acks, nag_packs = evidence.nag_results()
    findings += nag_findings
    acknowledgments += nag_acks

    clauses = coverage(findings, counts, acknowledgments)
    templates = len(app.templates)
    resource_types = type_coverage.summary(report.coverage)
    for path, doc in saved:  # saved scans and audits say what they did not judge, too
        saved_coverage = doc.get("coverage") if isinstance(doc.get("coverage"), dict) else {}
        for item in saved_coverage.get("not_judged") or []:
            if isinstance(item, dict) and isinstance(item.get("resource_type"), str):
                resource_types["not_judged"].append({**item, "source": str(path)})
    return {
        "schema": SCHEMA,
        "generated_at": (now or dt.datetime.now(dt.timezone.utc)).isoformat(timespec="seconds"),
        "policy": {"title": "Data Protection Policy", "clauses": len(clauses),
                   "source": f"{len(clauses)} clauses, last updated {POLICY_UPDATED}"},
        "evidence": evidence.as_dict(),
        "summary": {
            "templates": templates, "resources": report.resources, "rules": len(report.rules),
            "violations": _count(findings, "dpguard", VIOLATION),
            "acknowledged": _count(findings, "dpguard", ACKNOWLEDGED),
            "unverifiable": _count(findings, "dpguard", UNVERIFIABLE),
            "nag_violations": sum(p["violations"] for p in nag_packs),
            "nag_acknowledged": sum(p["acknowledged"] for p in nag_packs),
            "expired_acknowledgments": sum(a["status"] == "expired" for a in acknowledgments),
        },
        "clauses": clauses,
        "resource_types": resource_types,
        "findings": sorted(findings, key=lambda f: (f["clause"] or 99, f["stack"] or "", f["construct_path"] or "",
                                                    f["source"], f["rule_id"])),
        "acknowledgments": acknowledgments,
        "nag": nag_packs,
    }


def saved_results(directory: Path, evidence: "Evidence") -> list[tuple[Path, dict]]:
    """Saved `dpguard scan` / `dpguard audit` JSON files in a directory (e.g. one a day's audits
    were written to), outside cloud assemblies and report folders."""
    found = []
    for path in sorted(directory.rglob("*.json")):
        folders = [directory.joinpath(*path.relative_to(directory).parts[:i])
                   for i in range(len(path.relative_to(directory).parts))]
        if any((folder / "manifest.json").is_file() for folder in folders):
            continue  # part of a cloud assembly: its templates are read as such
        try:
            doc = json.loads(read_capped(path).decode("utf-8"))
        except (InputError, ValueError, RecursionError):
            continue  # not a results file; templates among them are the loader's
        if isinstance(doc, dict) and "findings" in doc and "tool" in doc and doc.get("schema") != SCHEMA:
            found.append((path, doc))
    return found


def _count(findings: list[dict], source: str, status: str) -> int:
    return sum(f["source"] == source and f["status"] == status for f in findings)


# ---------------------------------------------------------------- findings and acknowledgments

def engine_finding(f) -> dict:
    return {"source": "dpguard", **f.as_dict(), "arn": None, "region": None, "account": None,
            "acknowledgment": _ack_fields(f.acknowledgment)}


def _ack_fields(ack: dict | None) -> dict | None:
    if not ack:
        return None
    reason = ack.get("reason") or ""
    ticket = TICKET.search(reason)
    return {"reason": reason, "expires": ack.get("expires"), "ticket": ticket.group(1) if ticket else None}


def engine_acknowledgment(a, app) -> dict:
    """An acknowledgment of a dpguard rule found in template metadata, and what became of it."""
    tpl = next((t for t in app.templates if t.path == a.template), None)
    resource = tpl.resources.get(a.logical_id) if tpl and a.logical_id else None
    status = {ACK_HOLDS: "holds", ACK_UNUSED: "unused"}.get(a.status)
    if status is None:
        status = "expired" if a.problem and "expired" in a.problem else "invalid"
    ticket = TICKET.search(a.reason)
    return {"source": "dpguard", "rule_id": a.rule_id,
            "construct_path": (resource.construct_path if resource else None)
            or f"{tpl.stack if tpl else a.template}/{a.logical_id or '(template)'}",
            "reason": a.reason, "expires": a.expires, "ticket": ticket.group(1) if ticket else None,
            "status": status, "problem": a.problem, "resources": 1, "stack": tpl.stack if tpl else None}


def grouped_acknowledgments(records: list[dict]) -> list[dict]:
    """One record for an acknowledgment that CDK copied to every resource under a stack or a
    construct (`Validations.of(stack).acknowledge`): the records of one stack with the same
    rule, reason, expiry and outcome become one, on the construct path they share, with
    `resources` = how many and `covers` = their construct paths. Order is kept."""
    groups: dict[tuple, list[dict]] = {}
    for r in records:  # as text: a saved scan may hold any JSON value there
        key = tuple(str(r.get(k)) for k in ("source", "rule_id", "stack", "reason", "expires", "status", "problem"))
        groups.setdefault(key, []).append(r)
    out = []
    for members in groups.values():
        covers = list(dict.fromkeys(m["construct_path"] for m in members if isinstance(m["construct_path"], str)))
        first = members[0]
        if len(covers) < 2 or len(members) != len(covers):  # one resource, or some without a path
            out.extend({**m, "covers": [m["construct_path"]] if isinstance(m["construct_path"], str) else []}
                       for m in members)
            continue
        out.append({**first, "construct_path": _shared_path(covers) or first.get("stack") or covers[0],
                    "resources": len(covers), "covers": covers})
    return out


def _shared_path(paths: list[str]) -> str:
    """The construct path that holds all of `paths` (`Batch` for `Batch/A/Resource`, `Batch/B`)."""
    split = [p.split("/") for p in paths]
    shared = []
    for parts in zip(*split):
        if len(set(parts)) != 1:
            break
        shared.append(parts[0])
    return "/".join(shared)


# ---------------------------------------------------------------- coverage matrix

def coverage(findings: list[dict], counts: dict[str, dict], acknowledgments: list[dict]) -> list[dict]:
    rules_by_clause = defaultdict(list)
    for rule in catalogue():
        rules_by_clause[rule.clause].append(rule)
    statuses = defaultdict(lambda: defaultdict(int))  # rule id -> status -> findings
    nag = defaultdict(lambda: defaultdict(lambda: defaultdict(int)))  # clause -> (pack, rule) -> status -> n
    for f in findings:
        if f["source"] == "dpguard":
            statuses[f["rule_id"]][f["status"]] += 1
        elif f["clause"] is not None:
            nag[f["clause"]][(f["source"], f["rule_id"])][f["status"]] += 1
    out = []
    for number, text in clause_texts().items():
        controls = []
        for rule in rules_by_clause.get(number, []):
            count = counts.get(rule.rule_id, {})
            evaluated, failed = count.get("evaluated"), count.get("failed")
            controls.append({
                "rule_id": rule.rule_id, "title": rule.title, "severity": rule.severity,
                "evaluated": evaluated,
                "passed": evaluated - failed if evaluated is not None and failed is not None else None,
                "violations": statuses[rule.rule_id][VIOLATION],
                "acknowledged": statuses[rule.rule_id][ACKNOWLEDGED],
                "unverifiable": statuses[rule.rule_id][UNVERIFIABLE]})
        nag_rules = [{"pack": pack, "rule_id": rule_id, "violations": n[VIOLATION], "acknowledged": n[ACKNOWLEDGED]}
                     for (pack, rule_id), n in sorted(nag[number].items())]
        failing = any(c["violations"] or c["unverifiable"] for c in controls) or any(r["violations"] for r in nag_rules)
        acknowledged = any(c["acknowledged"] for c in controls) or any(r["acknowledged"] for r in nag_rules)
        judged = sum(c["evaluated"] or 0 for c in controls) + len(nag_rules)
        if failing:
            status = "fail"
        elif not controls:
            status = "process"
        elif acknowledged:
            status = "acknowledged"
        else:  # nothing of the kind to judge is not the same as passing
            status = "pass" if judged else "not applicable"
        out.append({"number": number, "title": text["title"], "automated": bool(controls),
                    "process_controls": list(text.get("process") or []), "status": status,
                    "controls": controls, "nag_rules": nag_rules})
    return out


# ---------------------------------------------------------------- what was read

class Evidence:
    """Inputs with their SHA-256, versions, and one line per thing that could not be read."""

    def __init__(self) -> None:
        self.inputs: list[dict] = []
        self.problems: list[str] = []
        self.versions: dict[str, str] = {"dpguard": __version__}
        self.validation_reports: list[tuple[Path, dict]] = []
        self._seen: set[str] = set()

    def add_input(self, path: Path, kind: str) -> None:
        key = str(path.resolve())
        if key in self._seen:
            return
        self._seen.add(key)
        try:
            self.inputs.append({"path": str(path), "kind": kind, "sha256": sha256_of(path)})
        except InputError as e:
            self.problems.append(str(e))

    def read_json(self, path: Path):
        try:
            return json.loads(read_capped(path).decode("utf-8"))
        except InputError as e:
            self.problems.append(str(e))
        except (ValueError, RecursionError) as e:
            self.problems.append(f"{path}: cannot read: {e}")
        return None

    def find_assemblies(self, directory: Path) -> None:
        """The cloud assemblies in `directory` (itself or a cdk.out inside it): their CDK
        validation report, and what their manifest and tree say of versions."""
        roots = [d for d in (directory, directory / "cdk.out") if (d / "manifest.json").is_file()]
        for root in roots:
            manifest = self.read_json(root / "manifest.json")
            self.add_input(root / "manifest.json", "manifest")
            if isinstance(manifest, dict) and manifest.get("version"):
                self.versions["cloud-assembly-schema"] = str(manifest["version"])
            tree = self.read_json(root / "tree.json") if (root / "tree.json").is_file() else None
            info = (tree.get("tree") or {}).get("constructInfo") if isinstance(tree, dict) else None
            if isinstance(info, dict) and str(info.get("fqn", "")).startswith("aws-cdk-lib."):
                self.versions["aws-cdk-lib"] = str(info.get("version"))
            report_file = root / VALIDATION_REPORT
            if not report_file.is_file():
                self.problems.append(f"{report_file}: not found: CDK writes it only when a validation plugin "
                                     f"ran (dpguard.enforce()); cdk-nag results and CDK's acknowledgments are missing")
                continue
            doc = self.read_json(report_file)
            if not isinstance(doc, dict) or not isinstance(doc.get("pluginReports"), list):
                if doc is not None:
                    self.problems.append(f"{report_file}: not a CDK validation report (no pluginReports list)")
                continue
            self.add_validation_report(report_file, doc)

    def add_validation_report(self, path: Path, doc: dict) -> None:
        self.add_input(path, "cdk-validation-report")
        self.validation_reports.append((path, doc))
        for plugin in doc.get("pluginReports", []):
            if not isinstance(plugin, dict):
                continue
            name, version = plugin.get("pluginName"), plugin.get("pluginVersion")
            if name == "dpguard" and isinstance(plugin.get("metadata"), dict):
                self.versions.update({k.removeprefix("version:"): str(v) for k, v in plugin["metadata"].items()
                                      if k.startswith("version:")})
            if name == "dpguard" and version and version != __version__:
                self.problems.append(f"{path}: written at synth by dpguard {version}; this report is by dpguard "
                                     f"{__version__} and judges the templates again itself")

    def add_saved(self, path: Path, doc: dict, counts: dict) -> tuple[list[dict], list[dict]]:
        """Findings and acknowledgments of a saved `dpguard scan` or `dpguard audit` JSON."""
        kind = "audit-json" if any("arn" in f for f in doc.get("findings", []) if isinstance(f, dict)) else "scan-json"
        self.add_input(path, kind)
        version = (doc.get("tool") or {}).get("version") if isinstance(doc.get("tool"), dict) else None
        if version != __version__:
            self.problems.append(f"{path}: made by dpguard {version or 'of unknown version'}; this report is by "
                                 f"dpguard {__version__}: its findings are shown as saved")
        findings, acks = [], []
        for f in doc.get("findings", []):
            if not isinstance(f, dict) or not isinstance(f.get("rule_id"), str):
                self.problems.append(f"{path}: a finding without a rule id was passed over")
                continue
            finding = {key: f.get(key) for key in ("rule_id", "clause", "severity", "status", "template", "stack",
                                                    "logical_id", "resource_type", "construct_path", "property_path",
                                                    "message", "remediation", "arn", "region", "account")}
            finding["source"] = "dpguard"
            finding["acknowledgment"] = _ack_fields(f.get("acknowledgment"))
            findings.append(finding)
            if finding["acknowledgment"]:
                acks.append({"source": "dpguard", "rule_id": finding["rule_id"],
                             "construct_path": finding["construct_path"] or finding["arn"] or finding["logical_id"],
                             **finding["acknowledgment"], "status": "holds", "problem": None, "resources": 1,
                             "stack": finding["stack"]})
        for rule in doc.get("rules", []) if isinstance(doc.get("rules"), list) else []:
            if isinstance(rule, dict) and rule.get("rule_id") in counts:
                count = counts[rule["rule_id"]]
                count["evaluated"] += int(rule.get("evaluated") or 0)
                count["failed"] += int(rule.get("failed") or 0)
        return findings, acks

    def nag_results(self) -> tuple[list[dict], list[dict], list[dict]]:
        """Findings, acknowledgments and a summary per pack of every plugin but dpguard in the
        CDK validation reports read (dpguard's own findings come from judging the templates)."""
        findings, acks, packs = [], [], {}
        for path, doc in self.validation_reports:
            for plugin in doc.get("pluginReports", []):
                if not isinstance(plugin, dict) or plugin.get("pluginName") in (None, "dpguard"):
                    continue
                pack = str(plugin["pluginName"])
                summary = packs.setdefault(pack, {"pack": pack, "version": plugin.get("pluginVersion"),
                                                  "conclusion": plugin.get("conclusion"), "violations": 0,
                                                  "acknowledged": 0})
                if plugin.get("conclusion") == "failure":
                    summary["conclusion"] = "failure"
                for status, entries in ((VIOLATION, plugin.get("violations")),
                                        (ACKNOWLEDGED, plugin.get("suppressedViolations"))):
                    for v in entries if isinstance(entries, list) else []:
                        if not isinstance(v, dict):
                            continue
                        for resource in v.get("violatingConstructs") or [{}]:
                            findings.append(nag_finding(pack, v, resource, status))
                            summary["violations" if status == VIOLATION else "acknowledged"] += 1
                        if status == ACKNOWLEDGED:
                            acks.append(nag_acknowledgment(pack, v))
        return findings, acks, list(packs.values())

    def as_dict(self) -> dict:
        return {"tool": {"name": "dpguard", "version": __version__},
                "catalogue": {"rules": len(catalogue()), "sha256": catalogue_sha256()},
                "versions": self.versions, "git": git_state(), "inputs": self.inputs, "problems": self.problems}


def nag_finding(pack: str, v: dict, resource: dict, status: str) -> dict:
    cfn = resource.get("cloudFormationResource") or {}
    paths = cfn.get("propertyPaths") or []
    reason = v.get("reason") if status == ACKNOWLEDGED else None
    return {"source": pack, "rule_id": v.get("ruleName"), "clause": nag_clause(str(v.get("ruleName") or "")),
            "severity": v.get("severity") or "error", "status": status,
            "template": cfn.get("templatePath"), "stack": (resource.get("constructPath") or "").split("/")[0] or None,
            "logical_id": cfn.get("logicalId"), "resource_type": None,
            "construct_path": resource.get("constructPath") or None,
            "property_path": paths[0].replace(".", "/") if paths else "",
            "message": v.get("description") or "",
            "remediation": cdk_made.fix_at(str(v.get("ruleName")), str(v.get("suggestedFix") or ""),
                                           resource.get("constructPath"), cfn.get("logicalId")),
            "acknowledgment": _ack_fields({"reason": reason, "expires": _expiry(reason)}) if reason else None,
            "arn": None, "region": None, "account": None}


def nag_acknowledgment(pack: str, v: dict) -> dict:
    reason = str(v.get("reason") or "")
    ticket = TICKET.search(reason)
    covers = [c.get("constructPath") for c in v.get("violatingConstructs") or [] if isinstance(c, dict)]
    return {"source": pack, "rule_id": v.get("ruleName"), "construct_path": v.get("acknowledgedAt"),
            "reason": reason, "expires": _expiry(reason), "ticket": ticket.group(1) if ticket else None,
            "status": "holds", "problem": None, "resources": len(v.get("violatingConstructs") or []),
            "stack": None, "covers": [c for c in covers if isinstance(c, str)]}


def _expiry(reason: str | None) -> str | None:
    match = EXPIRES.search(reason or "")
    return match.group(1) if match else None


def catalogue_sha256() -> str:
    """A fingerprint of the rule catalogue that judged: ids, clauses, severities, types, texts."""
    text = json.dumps([r.as_dict() for r in catalogue()], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def git_state() -> dict | None:
    """The commit of the working directory's repository, if it is one and git is there."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        if commit.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10)
        return {"commit": commit.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return None
