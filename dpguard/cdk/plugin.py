"""dpguard as a CDK policy-validation plugin: CDK calls `validate` once per synth with the paths
of every stack template; the engine reads them (and the nested-stack templates beside them) in
Python and answers with one report. No per-resource callbacks cross the jsii bridge."""
from __future__ import annotations

import gc
import importlib.metadata
import sys
from collections import defaultdict

import aws_cdk as cdk
import jsii

from .. import __version__
from ..engine import Config, evaluate
from ..engine.coverage import headline
from ..engine.evaluate import ACK_DOES_NOT_HOLD
from ..engine.findings import ACKNOWLEDGED, Finding
from ..engine.loader import InputError, load_stack_templates
from ..rules import catalogue

PLUGIN_NAME = "dpguard"  # CDK prefixes rule ids with it: acknowledge "dpguard::DP-..."
# What judged this synth, for the auditor report's evidence (cdk-nag's packs report no version).
SYNTH_VERSIONS = {f"version:{name}": importlib.metadata.version(name) for name in ("aws-cdk-lib", "cdk-nag")}


def cdk_location(property_path: str) -> str:
    """Our `Properties/A/0/B` as CDK's `Properties.A.0.B`."""
    return property_path.replace("/", ".") if property_path else ""


@jsii.implements(cdk.IPolicyValidationPlugin)
class DpguardPlugin:
    def __init__(self, config: Config | None = None) -> None:
        self.config = config or Config()

    @property
    def name(self) -> str:
        return PLUGIN_NAME

    @property
    def version(self) -> str:
        return __version__

    @property
    def rule_ids(self) -> list[str]:
        return [r.rule_id for r in catalogue() if r.rule_id not in self.config.disabled_rules]

    def validate(self, context: cdk.IPolicyValidationContext) -> cdk.PolicyValidationPluginReport:
        # The synth process holds a large object graph (jsii proxies); parsing the templates
        # would trigger full garbage collections over all of it, a third of our time.
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            app = load_stack_templates(list(context.template_paths),
                                       trust_parameter_defaults=self.config.trust_parameter_defaults)
            report = evaluate(app, self.config, catalogue())
        except InputError as e:  # fail closed: a template we cannot read is never passed
            return cdk.PolicyValidationPluginReport(success=False, violations=[], metadata={"error": str(e)})
        finally:
            if gc_was_enabled:
                gc.enable()
        summarize(report.failing())
        not_judged = ", ".join(f"{c.resource_type} ({c.resources})" for c in report.not_judged)
        if not_judged and self.config.unjudged != "fail":
            print(f"dpguard: {headline(report.coverage)}: {not_judged} (the auditor report says why; "
                  "`unjudged: fail` makes them fail)", file=sys.stderr)
        return cdk.PolicyValidationPluginReport(
            success=not report.failing(), plugin_version=__version__,
            violations=violations(report.findings, report.failing()),
            metadata={"templates": str(len(app.templates)), "resources": str(report.resources),
                      "rules": str(len(report.rules)), "not_judged": not_judged or "none", **SYNTH_VERSIONS})


def summarize(failing: list[Finding], limit: int = 40) -> None:
    """One line per failing finding on stderr. `cdk synth` shows only the selected stacks' part
    of CDK's report (stacks inside a Stage are not selected by default) but always shows the
    app's stderr, so nobody is left with a bare "Synthesis finished with errors"."""
    if not failing:
        return
    lines = [f"dpguard: {len(failing)} finding(s) fail the Data Protection Policy:"]
    for f in failing[:limit]:
        lines.append(f"  {f.rule_id} (clause {f.clause}) at {f.construct_path or f.stack + '/' + str(f.logical_id)}: "
                     f"{f.message}")
    if len(failing) > limit:
        lines.append(f"  ... and {len(failing) - limit} more (see validation-report.json in the assembly)")
    print("\n".join(lines), file=sys.stderr)


def violations(findings: list[Finding], failing: list[Finding]) -> list[cdk.PolicyViolation]:
    """CDK violations: a rule's findings on one resource become one entry (the four Block Public
    Access flags are one problem to fix), and resources with the same problem share a violation.

    Findings that fail synth are errors; warnings stay warnings; acknowledged ones are info. A
    finding whose acknowledgment
    in the template does not hold (no reason, expired) is reported as `fatal`, the one severity
    CDK never lets an acknowledgment hide: the template itself says why it must not pass."""
    failing_ids = {id(f) for f in failing}
    per_resource: dict[tuple, list[Finding]] = defaultdict(list)
    for f in findings:
        severity = "error" if id(f) in failing_ids else "warning"
        if f.status == ACKNOWLEDGED:
            # Acknowledged in template metadata: CDK's own acknowledgments land there (copied by
            # enforce's aspect), so CDK matches this one again and files it, with its reason,
            # under suppressedViolations; one written in an included template stays as info.
            severity = "info"
        elif ACK_DOES_NOT_HOLD in f.message:
            severity = "fatal"
        per_resource[(f.rule_id, f.status, severity, f.template, f.logical_id)].append(f)
    shared: dict[tuple, list[cdk.PolicyViolatingResource]] = defaultdict(list)
    for (rule_id, status, severity, template, logical_id), group in per_resource.items():
        first = group[0]
        message = "; ".join(dict.fromkeys(f.message for f in group))
        kind = "" if status == "violation" else f" ({status})"
        if status == ACKNOWLEDGED:
            message += f" (acknowledged: {first.acknowledgment['reason']})"
        shared[(rule_id, first.clause, severity, f"{rule_id} (clause {first.clause}){kind}: {message}",
                first.remediation)].append(cdk.PolicyViolatingResource(
                    resource_logical_id=logical_id or "", template_path=template,
                    locations=list(dict.fromkeys(cdk_location(f.property_path) for f in group))))
    return [cdk.PolicyViolation(rule_name=rule_id, description=description, fix=fix, severity=severity,
                                rule_metadata={"clause": str(clause)}, violating_resources=resources)
            for (rule_id, clause, severity, description, fix), resources in shared.items()]
