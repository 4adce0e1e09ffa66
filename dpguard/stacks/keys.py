"""KeysStack: one customer-managed KMS key per data domain (policy clause 7)."""
from __future__ import annotations

import aws_cdk as cdk
from constructs import Construct

from ..patterns import DataKey
from .settings import EnvironmentSettings


class KeysStack(cdk.Stack):
    """Keys for data (S3 objects, DynamoDB user tables), database (RDS storage and backups), secrets (Secrets Manager,
    including the RDS-managed master password) and logs (CloudWatch log groups). Separate keys
    keep each domain's access separate: a role that may decrypt objects cannot decrypt logs."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: EnvironmentSettings, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        alias = f"alias/dpg-{settings.name}"
        self.data_key = DataKey(self, "DataKey", alias=f"{alias}/data",
                                description="User data: objects in the S3 data buckets, items in the user tables")
        self.database_key = DataKey(self, "DatabaseKey", alias=f"{alias}/database",
                                    description="RDS storage, snapshots and backups")
        self.secrets_key = DataKey(self, "SecretsKey", alias=f"{alias}/secrets",
                                   description="Secrets Manager secrets, the RDS-managed master password included")
        self.logs_key = DataKey(self, "LogsKey", alias=f"{alias}/logs",
                                description="CloudWatch log groups: VPC flow logs, database logs")
        self.logs_key.allow_cloudwatch_logs()
