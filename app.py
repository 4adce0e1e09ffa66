"""The baseline CDK app: `cdk synth -c environment=dev|prod` builds the six baseline stacks of one
environment from cdk.json and judges them with dpguard and cdk-nag (synth fails on a violation).
`-c org_audit=true` adds the organisation audit (dpguard/stacks/org_audit.py) for the auditor
account, with cdk.json's `org_audit_settings`."""
from __future__ import annotations

import sys

import aws_cdk as cdk

import dpguard
from dpguard.cdk import PolicyError
from dpguard.stacks import DataStack, EnvironmentSettings, KeysStack, NetworkStack, SettingsError
from dpguard.stacks.audit import AuditStack
from dpguard.stacks.identity import IdentityStack
from dpguard.stacks.org_audit import OrgAuditSettings, OrgAuditStack, enabled as org_audit_enabled
from dpguard.stacks.response import ResponseStack


def build(app: cdk.App) -> EnvironmentSettings:
    """Add the baseline of the chosen environment to `app` and adopt the policy on it."""
    settings = EnvironmentSettings.from_context(app)
    env = (cdk.Environment(account=settings.account, region=settings.region)
           if settings.account or settings.region else None)  # None: environment-agnostic
    prefix = f"Dpg-{settings.name.title()}"
    common = dict(settings=settings, env=env)

    keys = KeysStack(app, f"{prefix}-Keys", description="dpguard baseline: KMS keys per data domain", **common)
    network = NetworkStack(app, f"{prefix}-Network", logs_key=keys.logs_key,
                           description="dpguard baseline: private VPC, endpoints, flow logs", **common)
    audit = AuditStack(app, f"{prefix}-Audit", **common)
    identity = IdentityStack(app, f"{prefix}-Identity", **common)
    data = DataStack(app, f"{prefix}-Data", keys=keys, network=network, alerts_topic=audit.alerts_topic,
              description="dpguard baseline: encrypted S3 buckets and PostgreSQL", **common)
    response = ResponseStack(
                  app, f"{prefix}-Response", alerts_topic=audit.alerts_topic, alerts_key=audit.key,
                  logs_key=keys.logs_key, data_bucket_arn_export=data.user_data_arn_export, data_key=keys.data_key,
                  user_tables=[data.user_records], user_pool=identity.user_pool, secrets_key=keys.secrets_key,
                  access_logs_bucket=data.access_logs,
                  description="dpguard baseline: incidents, deletion requests, exposed secrets", **common)
    response.add_stack_dependency(data)  # it imports the data bucket by export name
    if org_audit_enabled(app):  # off by default: the baseline's templates stay as they are
        OrgAuditStack(app, f"{prefix}-OrgAudit", org=OrgAuditSettings.from_context(app),
                      alerts_topic=audit.alerts_topic, alerts_key=audit.key,
                      access_logs_bucket=audit.access_logs_bucket,
                      description="dpguard: the organisation's daily audit and quarterly access review", **common)

    dpguard.enforce(app, **settings.dpguard)
    return settings


def main() -> int:
    app = cdk.App()
    try:
        build(app)
    except (SettingsError, PolicyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    dpguard.synth(app)  # a policy failure ends with one line and exit 1, not a traceback
    return 0


if __name__ == "__main__":
    sys.exit(main())
