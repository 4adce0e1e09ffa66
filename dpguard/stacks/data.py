"""DataStack: the baseline's data stores — a user-data bucket, its access-log bucket and a
PostgreSQL database — built from dpguard.patterns."""
from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cw, aws_cloudwatch_actions as cw_actions, aws_ec2 as ec2
from aws_cdk import aws_sns as sns
from constructs import Construct

from ..patterns import AccessLogBucket, SecureBucket, SecureDatabase
from ..patterns.acks import HIPAA, NIST_R4, NIST_R5, PCI, acknowledge_in_packs
from ..patterns.tables import SecureTable
from .keys import KeysStack
from .network import NetworkStack
from .settings import EnvironmentSettings

CLASSIFICATION = "confidential"  # user data and the logs about it


class DataStack(cdk.Stack):
    """`user_data` (SecureBucket, per-user prefixes `users/<user-id>/`), `user_records` (a
    SecureTable keyed by user id, so one Query finds a user's items), `access_logs`
    (AccessLogBucket) and `database` (SecureDatabase in the data subnets, reachable from the app
    security group and `settings.allowed_cidrs`). With `alerts_topic`, alarms on denied S3
    requests and low database storage notify it."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: EnvironmentSettings,
                 keys: KeysStack, network: NetworkStack, alerts_topic: sns.ITopic | None = None,
                 **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        owner = settings.data_owner
        self.access_logs = AccessLogBucket(self, "AccessLogs", owner=owner,
                                           retention_days=settings.retention_days)
        self.user_data = SecureBucket(self, "UserData", encryption_key=keys.data_key,
                                      classification=CLASSIFICATION, owner=owner,
                                      access_logs_bucket=self.access_logs, access_logs_prefix="user-data/")
        self.user_records = SecureTable(self, "UserRecords", partition_key="user_id", sort_key="item",
                                        encryption_key=keys.data_key, classification=CLASSIFICATION, owner=owner)
        # Request metrics for the alarm below (S3 publishes 4xx counts only with them).
        self.user_data.add_metric(id="EntireBucket")

        peers = [ec2.Peer.ipv6(c) if ":" in c else ec2.Peer.ipv4(c) for c in settings.allowed_cidrs]
        self.database = SecureDatabase(
            self, "Database", vpc=network.vpc, subnets=network.data_subnets,
            instance_identifier=f"dpg-{settings.name}-postgres",
            storage_key=keys.database_key, secret_key=keys.secrets_key, log_key=keys.logs_key,
            log_retention_days=settings.retention_days, classification=CLASSIFICATION, owner=owner,
            allow_from=[network.app_security_group, *peers])

        for bucket in (self.access_logs, self.user_data):
            acknowledge_in_packs(
                bucket, "S3BucketReplicationEnabled", (NIST_R5, NIST_R4, HIPAA, PCI),
                "The baseline is deployed to one region; replication needs a bucket and a key in a "
                "second region. Versioning keeps overwritten and deleted objects for 30 days")

        if alerts_topic is not None:
            self._alarms(alerts_topic)
        cdk.CfnOutput(self, "UserDataBucketName", value=self.user_data.bucket_name)
        # Exported by a fixed name: the response stack's grants on users/* carry it, and its
        # acknowledgment of that wildcard must name it (CDK's own export names are hashed).
        self.user_data_arn_export = f"{self.stack_name}-UserDataBucketArn"
        cdk.CfnOutput(self, "UserDataBucketArn", value=self.user_data.bucket_arn,
                      export_name=self.user_data_arn_export)
        cdk.CfnOutput(self, "UserRecordsTableName", value=self.user_records.table_name)
        cdk.CfnOutput(self, "DatabaseEndpoint", value=self.database.endpoint_address)

    def _alarms(self, topic: sns.ITopic) -> None:
        action = cw_actions.SnsAction(topic)
        denied = cw.Metric(namespace="AWS/S3", metric_name="4xxErrors", statistic="Sum",
                           period=cdk.Duration.minutes(5),
                           dimensions_map={"BucketName": self.user_data.bucket_name, "FilterId": "EntireBucket"})
        cw.Alarm(self, "UserDataDeniedRequests", metric=denied, threshold=50, evaluation_periods=1,
                 alarm_description="Many rejected requests on the user-data bucket: probing or a "
                                   "misconfigured client (clause 9, investigate)",
                 treat_missing_data=cw.TreatMissingData.NOT_BREACHING).add_alarm_action(action)
        storage = cw.Metric(namespace="AWS/RDS", metric_name="FreeStorageSpace", statistic="Minimum",
                            period=cdk.Duration.minutes(5),
                            dimensions_map={"DBInstanceIdentifier": self.database.instance.ref})
        cw.Alarm(self, "DatabaseLowStorage", metric=storage, threshold=2 * 1024 ** 3, evaluation_periods=3,
                 comparison_operator=cw.ComparisonOperator.LESS_THAN_THRESHOLD,
                 alarm_description="The database has less than 2 GiB free",
                 treat_missing_data=cw.TreatMissingData.BREACHING).add_alarm_action(action)
