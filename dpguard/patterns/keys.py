"""Customer-managed KMS keys, one per data domain (policy clause 7)."""
from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam, aws_kms as kms
from constructs import Construct

# What CloudWatch Logs needs to encrypt and read a log group (AWS's documented key policy for
# encrypted log groups), spelled out instead of `kms:Encrypt*`-style wildcards.
LOGS_ACTIONS = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo",
                "kms:GenerateDataKey", "kms:GenerateDataKeyWithoutPlaintext", "kms:DescribeKey"]


class DataKey(kms.Key):
    """A symmetric customer-managed key for one data domain: automatic yearly rotation, an
    alias, a 30-day deletion window and RETAIN (data encrypted with a deleted key is lost).

    The key policy is CDK's default: the account root, which hands control of the key to IAM
    policies of this account only (accepted by DP-KmsKeyPolicyNoWildcard). Grant use with
    `key.grant_encrypt_decrypt(role)` or a statement that names the key; AWS services that must
    use the key themselves get a statement of their own, scoped by a condition (see
    `allow_cloudwatch_logs`)."""

    def __init__(self, scope: Construct, construct_id: str, *, alias: str, description: str,
                 removal_policy: cdk.RemovalPolicy = cdk.RemovalPolicy.RETAIN) -> None:
        super().__init__(scope, construct_id, alias=alias, description=description,
                         enable_key_rotation=True, pending_window=cdk.Duration.days(30),
                         removal_policy=removal_policy)

    def allow_cloudwatch_logs(self) -> None:
        """Let CloudWatch Logs encrypt log groups of this account and region with the key (the
        condition keeps every other account's log groups out)."""
        stack = cdk.Stack.of(self)
        self.add_to_resource_policy(iam.PolicyStatement(
            sid="CloudWatchLogsOfThisAccount",
            principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
            actions=LOGS_ACTIONS,
            resources=["*"],  # in a key policy "*" means this key
            conditions={"ArnLike": {"kms:EncryptionContext:aws:logs:arn":
                                    f"arn:{stack.partition}:logs:{stack.region}:{stack.account}:log-group:*"}}))
