"""Whole templates: what the engine cannot read or see is never passed as compliant."""
from __future__ import annotations

from ..engine.findings import unverifiable, violation
from . import rule


@rule("DP-ResourceReadable", clause=10, severity="error", types=["*"], scope="template",
      title="Every resource can be read and judged",
      rationale="Clause 10: the policy is audited. A resource without a Type, or whose "
                "Properties are not a mapping, cannot be checked against any clause, so the "
                "audit cannot vouch for it.",
      remediation="Give the resource a Type and a Properties mapping (`cfn-lint` shows the exact error).")
def resource_readable(t):
    for r in t.resources.values():
        if r.problem:
            yield violation("", r.problem, logical_id=r.logical_id, template=t)


@rule("DP-TemplateProcessed", clause=10, severity="error", types=["*"], scope="template",
      title="Templates are judged after their transforms run",
      rationale="Clause 10: a Transform (AWS::Serverless, a macro, AWS::LanguageExtensions) "
                "rewrites the template at deploy time; the resources it creates are not in the "
                "file, so they cannot be judged here.",
      remediation="Scan the processed template instead: `sam build` then scan "
                  ".aws-sam/build/template.yaml, or `aws cloudformation get-template "
                  "--template-stage Processed`; CDK templates need no transform.")
def template_processed(t):
    transform = t.data.get("Transform")
    if transform:
        names = transform if isinstance(transform, list) else [transform]
        shown = ", ".join(n if isinstance(n, str) else "a macro" for n in names)
        yield unverifiable("Transform", f"the template is rewritten at deploy time by {shown}; "
                                        "what it creates cannot be judged")
