"""S3 buckets that meet the policy by construction: encrypted, private, TLS-only, versioned with
real deletion, access-logged and classified."""
from __future__ import annotations

import re

import aws_cdk as cdk
from aws_cdk import aws_iam as iam, aws_kms as kms, aws_s3 as s3
from constructs import Construct

from ..cdk import acknowledge
from ..rules.governance import NO_CMK_NEEDED
from .acks import HIPAA, NIST_R5, PCI, acknowledge_in_packs
from .tags import classify

# Per-user partitions (clause 1: each user's data is partitioned): every object of a user lives
# under users/<user-id>/. With Cognito identity pools the user id is the identity id, which IAM
# fills into this policy variable at request time.
USER_PARTITION = "users/"
COGNITO_IDENTITY = "${cognito-identity.amazonaws.com:sub}"
_USER_ID = re.compile(r"^[A-Za-z0-9_.:+=@-]{1,128}$")


def _private_bucket_options() -> dict:
    """What every bucket of the baseline shares: no public access of any kind (clause 1),
    TLS 1.2+ only on the bucket and its objects (clause 3), no ACLs."""
    return dict(block_public_access=s3.BlockPublicAccess.BLOCK_ALL, enforce_ssl=True,
                minimum_tls_version=1.2, object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
                versioned=True)


class AccessLogBucket(s3.Bucket):
    """The target of S3 server access logs (clause 9).

    Encrypted with SSE-S3, not with a KMS key: S3 server access logging cannot deliver to a
    bucket whose default encryption is SSE-KMS. Access logs name requesters, their addresses and
    object keys (which hold user ids), so the bucket is `confidential` by default, and the
    customer-managed-key rule (DP-ConfidentialDataCmk) is acknowledged here for that reason
    alone. The bucket does not log itself (that would loop): dpguard accepts that for any bucket
    that others log into, cdk-nag (AwsSolutions-S1) only when such a bucket is in the same stack.
    Any bucket of this account may deliver its access logs here."""

    def __init__(self, scope: Construct, construct_id: str, *, owner: str, retention_days: int,
                 classification: str = "confidential", noncurrent_days: int = 30,
                 removal_policy: cdk.RemovalPolicy = cdk.RemovalPolicy.RETAIN) -> None:
        super().__init__(
            scope, construct_id,
            encryption=s3.BucketEncryption.S3_MANAGED,  # the only encryption log delivery accepts
            lifecycle_rules=[s3.LifecycleRule(
                id="expire-logs", expiration=cdk.Duration.days(retention_days),
                noncurrent_version_expiration=cdk.Duration.days(noncurrent_days))],
            removal_policy=removal_policy, **_private_bucket_options())
        stack = cdk.Stack.of(self)
        # Log delivery by bucket policy (not the legacy LogDeliveryWrite ACL, which ACL-less
        # buckets refuse), limited to source buckets of this account.
        self.add_to_resource_policy(iam.PolicyStatement(
            sid="S3ServerAccessLogsOfThisAccount",
            principals=[iam.ServicePrincipal("logging.s3.amazonaws.com")],
            actions=["s3:PutObject"], resources=[self.arn_for_objects("*")],
            conditions={"StringEquals": {"aws:SourceAccount": stack.account}}))
        classify(self, classification, owner)
        why = ("S3 server access logging cannot deliver to a bucket encrypted with SSE-KMS; the "
               "access-log bucket uses SSE-S3 (AES-256), the only encryption AWS supports for log "
               "delivery targets")
        if classification not in NO_CMK_NEEDED:
            acknowledge(self, "DP-ConfidentialDataCmk", why)
        acknowledge_in_packs(self, "S3DefaultEncryptionKMS", (NIST_R5, HIPAA, PCI), why)


class SecureBucket(s3.Bucket):
    """A data bucket compliant by default.

    * SSE-KMS with the customer-managed `encryption_key` and an S3 bucket key (clause 7);
    * Block Public Access on all four flags, no ACLs (clause 1);
    * a bucket policy that denies requests without TLS 1.2+, on the bucket and its objects (clause 3);
    * versioning, with noncurrent versions and orphaned delete markers expired after
      `noncurrent_days`, so a delete is final within that time (clause 5);
    * server access logs to `access_logs_bucket` (an `AccessLogBucket`) under
      `access_logs_prefix` (clause 9);
    * tags `data-classification` and `data-owner` (clause 6);
    * RETAIN on stack deletion.

    Per-user partitions: keep each user's objects under `SecureBucket.user_prefix(user_id)`
    (`users/<user-id>/`) and give user-facing roles `grant_user_partition(role)`, which lets a
    caller reach only its own prefix."""

    def __init__(self, scope: Construct, construct_id: str, *, encryption_key: kms.IKey,
                 classification: str, owner: str, access_logs_bucket: s3.IBucket,
                 access_logs_prefix: str | None = None, noncurrent_days: int = 30,
                 lifecycle_rules: list[s3.LifecycleRule] | None = None,
                 removal_policy: cdk.RemovalPolicy = cdk.RemovalPolicy.RETAIN) -> None:
        super().__init__(
            scope, construct_id,
            encryption=s3.BucketEncryption.KMS, encryption_key=encryption_key, bucket_key_enabled=True,
            lifecycle_rules=[s3.LifecycleRule(
                id="expire-noncurrent", noncurrent_version_expiration=cdk.Duration.days(noncurrent_days),
                expired_object_delete_marker=True,
                abort_incomplete_multipart_upload_after=cdk.Duration.days(7)), *(lifecycle_rules or [])],
            removal_policy=removal_policy, **_private_bucket_options())
        # Set on the template directly rather than with `server_access_logs_bucket`, whose grant
        # to the log bucket depends on a feature flag (ACL or policy); AccessLogBucket's policy
        # already admits every bucket of the account.
        self.node.default_child.logging_configuration = s3.CfnBucket.LoggingConfigurationProperty(
            destination_bucket_name=access_logs_bucket.bucket_name,
            log_file_prefix=access_logs_prefix or f"{self.node.path}/")
        classify(self, classification, owner)

    @staticmethod
    def user_prefix(user_id: str) -> str:
        """The key prefix of one user's objects: `users/<user-id>/`. Deleting a user's data
        (clause 5) means deleting every object under it; versions go after `noncurrent_days`."""
        if not isinstance(user_id, str) or not _USER_ID.match(user_id):
            raise ValueError(f"not a user id for an S3 prefix: {user_id!r}")
        return f"{USER_PARTITION}{user_id}/"

    def grant_user_partition(self, grantee: iam.IGrantable, *, user_variable: str = COGNITO_IDENTITY,
                             write: bool = True) -> None:
        """Let `grantee` (e.g. a Cognito identity pool's authenticated role) list, read and, with
        `write`, put and delete objects under `users/<its own id>/` only. `user_variable` is the
        IAM policy variable that holds the caller's id: the Cognito identity id by default, or
        e.g. `${aws:PrincipalTag/user-id}` for sessions tagged by a broker. The key may be used
        only through S3 (kms:ViaService)."""
        own = f"{USER_PARTITION}{user_variable}/"
        actions = ["s3:GetObject"] + (["s3:PutObject", "s3:DeleteObject"] if write else [])
        iam.Grant.add_to_principal(grantee=grantee, actions=actions,
                                   resource_arns=[self.arn_for_objects(f"{own}*")])
        iam.Grant.add_to_principal(grantee=grantee, actions=["s3:ListBucket"], resource_arns=[self.bucket_arn],
                                   conditions={"StringLike": {"s3:prefix": [own, f"{own}*"]}})
        stack = cdk.Stack.of(self)
        iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["kms:Decrypt"] + (["kms:GenerateDataKey"] if write else []),
            resource_arns=[self.encryption_key.key_arn],
            conditions={"StringEquals": {"kms:ViaService": f"s3.{stack.region}.amazonaws.com"}})
        # cdk-nag's IAM5 flags the `/*` of the partition; acknowledge exactly that resource, with
        # the id cdk-nag prints, when grantee and bucket share a stack (else the id differs and
        # the app acknowledges what synth prints).
        if isinstance(grantee, Construct) and cdk.Stack.of(grantee) is stack:
            logical_id = stack.resolve(stack.get_logical_id(self.node.default_child))
            shown = own.replace("${", "<").replace("}", ">")
            acknowledge(grantee, f"AwsSolutions::AwsSolutions-IAM5[Resource::<{logical_id}.Arn>/{shown}*]",
                        "Per-user partition: the wildcard covers only objects under the caller's own "
                        "users/<id>/ prefix, and IAM fills in the id from the caller's identity")
