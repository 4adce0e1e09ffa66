"""CloudWatch log groups that meet clause 9: encrypted with our key, with a retention period."""
from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_kms as kms, aws_logs as logs
from constructs import Construct

# The retention periods CloudWatch Logs accepts, in days.
RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827,
                  2192, 2557, 2922, 3288, 3653)


def check_retention(days: int) -> int:
    if not isinstance(days, int) or isinstance(days, bool) or days not in RETENTION_DAYS:
        raise ValueError(f"log retention {days!r} days is not one CloudWatch Logs accepts "
                         f"({', '.join(map(str, RETENTION_DAYS))})")
    return days


class EncryptedLogGroup(logs.LogGroup):
    """A log group encrypted with a customer-managed KMS key and kept `retention_days` days.

    The key must let CloudWatch Logs use it (`DataKey.allow_cloudwatch_logs()`). RETAIN by
    default: deleting a stack must not delete the evidence in its logs (clause 9, tampering)."""

    def __init__(self, scope: Construct, construct_id: str, *, encryption_key: kms.IKey,
                 retention_days: int, log_group_name: str | None = None,
                 removal_policy: cdk.RemovalPolicy = cdk.RemovalPolicy.RETAIN) -> None:
        days = check_retention(retention_days)
        super().__init__(scope, construct_id, log_group_name=log_group_name,
                         encryption_key=encryption_key, removal_policy=removal_policy)
        # Set the number itself: the RetentionDays enum has no lookup by number.
        self.node.default_child.retention_in_days = days


def log_custom_resource_providers(stack: cdk.Stack, *, encryption_key: kms.IKey, retention_days: int) -> None:
    """Give each of CDK's custom-resource provider functions in `stack` (e.g. the one
    `ec2.Vpc(restrict_default_security_group=True)` deploys) an encrypted log group with
    retention. Without it the provider logs to a /aws/lambda/ group that Lambda creates
    unencrypted and keeps forever (DP-LambdaLogGroup). Call it once the stack's constructs exist.
    The providers' roles are CDK's, with AWS's basic execution policy, so no grant is needed."""
    for child in stack.node.children:
        if not isinstance(child, cdk.CustomResourceProviderBase):
            continue
        handler = child.node.try_find_child("Handler")
        if handler is None or child.node.try_find_child("Logs") is not None:
            continue
        log_group = EncryptedLogGroup(child, "Logs", encryption_key=encryption_key, retention_days=retention_days)
        handler.add_property_override("LoggingConfig", {"LogGroup": log_group.log_group_name})
