"""DynamoDB tables that meet the policy by construction."""
from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb, aws_kms as kms
from constructs import Construct

from .acks import HIPAA, NIST_R4, NIST_R5, acknowledge_in_packs
from .tags import classify


class SecureTable(dynamodb.Table):
    """A table compliant by default: encrypted with the customer-managed `encryption_key`
    (clause 7), point-in-time recovery for 35 days, deletion protection and RETAIN (a stack
    update must not lose records), on-demand capacity, tags `data-classification` and
    `data-owner` (clause 6).

    `partition_key`/`sort_key` are attribute names of type string. A table of per-user data
    keys it by the user id, so a deletion request (clause 5) finds a user's items with one Query."""

    def __init__(self, scope: Construct, construct_id: str, *, partition_key: str, encryption_key: kms.IKey,
                 classification: str, owner: str, sort_key: str | None = None,
                 removal_policy: cdk.RemovalPolicy = cdk.RemovalPolicy.RETAIN) -> None:
        string = dynamodb.AttributeType.STRING
        super().__init__(
            scope, construct_id,
            partition_key=dynamodb.Attribute(name=partition_key, type=string),
            sort_key=dynamodb.Attribute(name=sort_key, type=string) if sort_key else None,
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED, encryption_key=encryption_key,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True),
            deletion_protection=True, billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            removal_policy=removal_policy)
        self.partition_key_name, self.sort_key_name = partition_key, sort_key
        classify(self, classification, owner)
        acknowledge_in_packs(self, "DynamoDBInBackupPlan", (NIST_R5, NIST_R4, HIPAA),
                             "Point-in-time recovery keeps every change restorable for 35 days; an AWS Backup "
                             "plan (and its vault and key) is the account's decision, not one table's")
