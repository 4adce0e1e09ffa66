"""Rules that only `dpguard audit` meets: facts of a live account that no template states
(checks that could not run, key ages, root credentials, detectors switched on). Their resource
types (`Live::...`) never occur in templates; live resources of ordinary types are judged by the
same rules as templates."""
from __future__ import annotations

from ..engine.findings import unverifiable
from . import rule


@rule("DP-AuditComplete", clause=10, severity="error", types=["Live::Audit::Gap"],
      title="Every check of the live audit could run",
      rationale="Clause 10: an audit that could not read part of an account (access denied, a "
                "disabled region, throttling past retries) cannot call that part compliant.",
      remediation="Give the audit role the permissions of docs/audit-role-policy.json and audit again")
def audit_complete(r, t):
    reason = r.props.get("Reason")
    yield unverifiable("", str(reason) if reason else "part of the account could not be read")
