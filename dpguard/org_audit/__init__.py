"""The organisation-scale audit (docs/audit-at-scale.md): the Lambda handlers that the state
machine of dpguard/stacks/org_audit.py runs (handlers.py), and a local runner of that state
machine's definition (runner.py). They compose the audit, the writers and the auditor report,
as the CLI does."""
