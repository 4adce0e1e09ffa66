"""Whole templates: what the engine cannot read or see is never passed as compliant."""
from __future__ import annotations

from ..engine.coverage import NOT_JUDGED
from ..engine.findings import unverifiable, violation
from . import rule

NESTED_STACK = "AWS::CloudFormation::Stack"


@rule("DP-ResourceReadable", clause=10, severity="error", types=["*"], scope="template",
      title="Every resource can be read and judged",
      rationale="Clause 10: the policy is audited. A resource without a Type, or whose "
                "Properties are not a mapping, cannot be checked against any clause, so the "
                "audit cannot vouch for it. Neither can it vouch for the resources of a nested "
                "stack (AWS::CloudFormation::Stack) whose template is not among those scanned.",
      remediation="Give the resource a Type and a Properties mapping (`cfn-lint` shows the exact error). "
                  "For a nested stack, scan its template too (a cloud assembly directory brings "
                  "CDK's nested stacks along).")
def resource_readable(t):
    for r in t.resources.values():
        if r.problem:
            yield violation("", r.problem, logical_id=r.logical_id, template=t)
    scanned = {id(other.parent) for other in t.app.templates if other.parent is not None}
    for r in t.of_type(NESTED_STACK):
        if id(r) not in scanned and r.deployed is not False:
            yield unverifiable("Properties/TemplateURL", "the nested stack's template is not among the "
                               "scanned templates, so the resources it creates cannot be judged",
                               logical_id=r.logical_id, template=t)


SAM = "AWS::Serverless-2016-10-31"


@rule("DP-TemplateProcessed", clause=10, severity="error", types=["*"], scope="template",
      title="Templates are judged after their transforms run",
      rationale="Clause 10: a Transform (a macro, AWS::Include, AWS::LanguageExtensions, "
                "AWS::Serverless) rewrites the template at deploy time; what it creates is not in "
                "the file, so it cannot be judged here. Under the SAM transform each "
                "AWS::Serverless resource is reported (CDK's secret rotation uses one), so it can "
                "be acknowledged on its own.",
      remediation="Scan the processed template instead: `sam build` then scan "
                  ".aws-sam/build/template.yaml, or `aws cloudformation get-template "
                  "--template-stage Processed`. For a Serverless Application Repository app you "
                  "trust (e.g. CDK's rotation), acknowledge the finding with a reason.")
def template_processed(t):
    transform = t.data.get("Transform")
    names = transform if isinstance(transform, list) else [transform] if transform else []
    macros = [n if isinstance(n, str) else "a macro" for n in names if n != SAM]
    if macros:
        yield unverifiable("Transform", f"the template is rewritten at deploy time by {', '.join(macros)}; "
                                        "what it creates cannot be judged")
    if SAM in names:
        # a SAM template of a file is expanded and judged (engine/sam.py) unless SAM could not do it here
        problem = t.sam.problem if t.sam is not None else None
        why = f": {problem}" if problem else ""
        for r in t.resources.values():
            if r.type.startswith("AWS::Serverless::"):
                yield unverifiable("", f"{r.type} is expanded by the SAM transform at deploy time; "
                                       f"the resources it creates cannot be judged{why}", logical_id=r.logical_id,
                                   template=t)


@rule("DP-ResourceTypeJudged", clause=10, severity="error", types=["*"], scope="template",
      title="Every resource is of a type the rules judge (with `unjudged: fail` or --strict)",
      rationale="Clause 10: the policy is audited, and a scan that passes must not pass what it "
                "never looked at. Every scan lists the resource types that no rule judges; with "
                "`unjudged: fail` (or `dpguard scan --strict`) each resource of such a type fails "
                "until someone has reviewed it: a custom resource, a type newer than dpguard's "
                "inventory, a known gap, a type whose rules were disabled.",
      remediation="Review what the resource does with data, then acknowledge it with the reason, "
                  "e.g. Validations.of(custom_resource).acknowledge(...) or "
                  "Metadata.cdk_nag.rules_to_suppress: [{id: DP-ResourceTypeJudged, reason: ...}]. "
                  "Or leave `unjudged` at `report` to list such types without failing.")
def resource_type_judged(t):
    if getattr(t.app.config, "unjudged", "report") != "fail":
        return
    for r in t.resources.values():
        judged = t.app.coverage.get(r.type)
        if judged is not None and judged.status == NOT_JUDGED:
            yield violation("Type", f"no rule judges {r.type}: {judged.reason}", logical_id=r.logical_id,
                            template=t)
