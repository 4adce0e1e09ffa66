"""Audit baseline (clauses 4 and 9): a multi-region CloudTrail into a locked-down bucket and an
encrypted log group, CIS metric filters with alarms, GuardDuty, and one encrypted alerts topic.

Nothing here needs a Lambda-backed custom resource (no LogRetention, no auto-delete, no bucket
notifications): the stack deploys where Lambda cannot run, and synth needs no credentials.
"""
from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_cloudtrail as cloudtrail
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_guardduty as guardduty
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from ..cdk import acknowledge
from ..patterns.storage import AccessLogBucket
from .settings import EnvironmentSettings

METRIC_NAMESPACE = "CISBenchmark"
NONCURRENT_DAYS = 30  # a deleted or overwritten log file can be recovered for this long


@dataclass(frozen=True)
class SecurityAlarm:
    id: str
    description: str
    pattern: str


# The CloudWatch Logs filter patterns of the CIS AWS Foundations Benchmark (v1.4 - v3.0,
# section 4 "Monitoring"), as published.
CIS_ALARMS = (
    SecurityAlarm("UnauthorizedApiCalls", "CIS 4.1: unauthorized API calls",
                  '{ ($.errorCode = "*UnauthorizedOperation") || ($.errorCode = "AccessDenied*") '
                  '&& ($.sourceIPAddress != "delivery.logs.amazonaws.com") '
                  '&& ($.eventName != "HeadBucket") }'),
    SecurityAlarm("RootAccountUse", "CIS 4.3: use of the root account",
                  '{ $.userIdentity.type = "Root" && $.userIdentity.invokedBy NOT EXISTS '
                  '&& $.eventType != "AwsServiceEvent" }'),
    SecurityAlarm("IamPolicyChanges", "CIS 4.4: IAM policy changes",
                  "{ ($.eventName = DeleteGroupPolicy) || ($.eventName = DeleteRolePolicy) || "
                  "($.eventName = DeleteUserPolicy) || ($.eventName = PutGroupPolicy) || "
                  "($.eventName = PutRolePolicy) || ($.eventName = PutUserPolicy) || "
                  "($.eventName = CreatePolicy) || ($.eventName = DeletePolicy) || "
                  "($.eventName = CreatePolicyVersion) || ($.eventName = DeletePolicyVersion) || "
                  "($.eventName = AttachRolePolicy) || ($.eventName = DetachRolePolicy) || "
                  "($.eventName = AttachUserPolicy) || ($.eventName = DetachUserPolicy) || "
                  "($.eventName = AttachGroupPolicy) || ($.eventName = DetachGroupPolicy) }"),
    SecurityAlarm("CloudTrailChanges", "CIS 4.5: CloudTrail configuration changes",
                  "{ ($.eventName = CreateTrail) || ($.eventName = UpdateTrail) || "
                  "($.eventName = DeleteTrail) || ($.eventName = StartLogging) || "
                  "($.eventName = StopLogging) }"),
    SecurityAlarm("ConsoleLoginFailures", "CIS 4.6: failed console sign-ins",
                  '{ ($.eventName = ConsoleLogin) && ($.errorMessage = "Failed authentication") }'),
    SecurityAlarm("KmsKeyDisableOrDeletion", "CIS 4.7: KMS keys disabled or scheduled for deletion",
                  "{ ($.eventSource = kms.amazonaws.com) && "
                  "(($.eventName = DisableKey) || ($.eventName = ScheduleKeyDeletion)) }"),
    SecurityAlarm("SecurityGroupChanges", "CIS 4.10: security group changes",
                  "{ ($.eventName = AuthorizeSecurityGroupIngress) || "
                  "($.eventName = AuthorizeSecurityGroupEgress) || "
                  "($.eventName = RevokeSecurityGroupIngress) || "
                  "($.eventName = RevokeSecurityGroupEgress) || "
                  "($.eventName = CreateSecurityGroup) || ($.eventName = DeleteSecurityGroup) }"),
    SecurityAlarm("NetworkAclChanges", "CIS 4.11: network ACL changes",
                  "{ ($.eventName = CreateNetworkAcl) || ($.eventName = CreateNetworkAclEntry) || "
                  "($.eventName = DeleteNetworkAcl) || ($.eventName = DeleteNetworkAclEntry) || "
                  "($.eventName = ReplaceNetworkAclEntry) || "
                  "($.eventName = ReplaceNetworkAclAssociation) }"),
)

# The retention periods CloudWatch Logs accepts.
_RETENTION = {
    1: logs.RetentionDays.ONE_DAY, 3: logs.RetentionDays.THREE_DAYS, 5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK, 14: logs.RetentionDays.TWO_WEEKS, 30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS, 90: logs.RetentionDays.THREE_MONTHS,
    120: logs.RetentionDays.FOUR_MONTHS, 150: logs.RetentionDays.FIVE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS, 365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS, 545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS, 1096: logs.RetentionDays.THREE_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS, 2192: logs.RetentionDays.SIX_YEARS,
    2557: logs.RetentionDays.SEVEN_YEARS, 2922: logs.RetentionDays.EIGHT_YEARS,
    3288: logs.RetentionDays.NINE_YEARS, 3653: logs.RetentionDays.TEN_YEARS,
}


def log_retention(days: int) -> logs.RetentionDays:
    """The shortest retention CloudWatch Logs accepts that keeps logs at least `days` days."""
    allowed = [d for d in sorted(_RETENTION) if d >= days]
    return _RETENTION[allowed[0]] if allowed else logs.RetentionDays.INFINITE


class AuditStack(cdk.Stack):
    def __init__(self, scope: Construct, construct_id: str, *, settings: EnvironmentSettings,
                 **kwargs) -> None:
        kwargs.setdefault("env", cdk.Environment(account=settings.account, region=settings.region))
        super().__init__(scope, construct_id, **kwargs)
        # Access logs are delivered under a bucket policy, not the LogDeliveryWrite ACL, so every
        # bucket here can disable ACLs (BucketOwnerEnforced). Set here, before any bucket, for
        # apps whose cdk.json lacks the flag.
        self.node.set_context("@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy", True)

        # Fixed names: the key policy names the trail and the log group, and it cannot refer to
        # them by attribute (the log group and the trail depend on the key).
        trail_name = f"dpguard-{settings.name}-trail"
        log_group_name = f"/dpguard/{settings.name}/cloudtrail"
        trail_arn = self.format_arn(service="cloudtrail", resource="trail", resource_name=trail_name)
        log_group_arn = self.format_arn(service="logs", resource="log-group", resource_name=log_group_name,
                                        arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME)

        self.key = kms.Key(
            self, "AuditKey",
            alias=f"alias/dpguard-{settings.name}-audit",
            description="dpguard audit baseline: CloudTrail logs, their log group and the alerts topic",
            enable_key_rotation=True,
            pending_window=cdk.Duration.days(30),
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        self._key_policy(trail_arn, log_group_arn)

        self.alerts_topic = self._alerts_topic(settings)
        self.trail_bucket = self._trail_bucket(settings, trail_arn)

        self.log_group = logs.LogGroup(
            self, "TrailLogGroup",
            log_group_name=log_group_name,
            encryption_key=self.key,
            retention=log_retention(settings.retention_days),
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        _data_tags(self.log_group, "confidential", settings)

        self.trail = cloudtrail.Trail(
            self, "Trail",
            trail_name=trail_name,
            bucket=self.trail_bucket,
            encryption_key=self.key,
            is_multi_region_trail=True,
            include_global_service_events=True,
            enable_file_validation=True,
            management_events=cloudtrail.ReadWriteType.ALL,
            send_to_cloud_watch_logs=True,
            cloud_watch_log_group=self.log_group,
        )

        acknowledge(
            self.trail, "NIST.800.53.R5::NIST.800.53.R5-IAMNoInlinePolicy",
            "The CloudTrail-to-CloudWatch Logs role is CDK's: its one policy allows only "
            "logs:CreateLogStream and logs:PutLogEvents on the trail's own log group, and the "
            "role can be assumed by cloudtrail.amazonaws.com only; a managed policy would be "
            "attachable elsewhere, which is broader.")

        self.alarms = [self._alarm(spec, settings) for spec in CIS_ALARMS]
        self._guardduty()

        cdk.CfnOutput(self, "AlertsTopicArn", value=self.alerts_topic.topic_arn)
        cdk.CfnOutput(self, "TrailBucketName", value=self.trail_bucket.bucket_name)

    def _key_policy(self, trail_arn: str, log_group_arn: str) -> None:
        """Beside the account's own administration (CDK's default statement), each service may use
        the key only for its own resource, named in the encryption context or the source ARN."""
        account, partition = self.account, self.partition
        self.key.add_to_resource_policy(iam.PolicyStatement(
            sid="CloudTrailEncryptsItsLogs",
            principals=[iam.ServicePrincipal("cloudtrail.amazonaws.com")],
            actions=["kms:GenerateDataKey*"],
            resources=["*"],
            conditions={
                "StringEquals": {"aws:SourceArn": trail_arn},
                "StringLike": {"kms:EncryptionContext:aws:cloudtrail:arn":
                               f"arn:{partition}:cloudtrail:*:{account}:trail/*"},
            }))
        self.key.add_to_resource_policy(iam.PolicyStatement(
            sid="CloudTrailDescribesTheKey",
            principals=[iam.ServicePrincipal("cloudtrail.amazonaws.com")],
            actions=["kms:DescribeKey"],
            resources=["*"],
            conditions={"StringEquals": {"aws:SourceArn": trail_arn}}))
        self.key.add_to_resource_policy(iam.PolicyStatement(
            sid="CloudWatchLogsEncryptsTheTrailLogGroup",
            principals=[iam.ServicePrincipal(f"logs.{self.region}.amazonaws.com")],
            actions=["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
            resources=["*"],
            conditions={"ArnEquals": {"kms:EncryptionContext:aws:logs:arn": log_group_arn}}))
        # Alarms publish to the encrypted topic as CloudWatch; SNS then needs the key on their
        # behalf. This is AWS's documented statement for alarms on encrypted topics. (GuardDuty
        # findings reach the topic through a role of our own, whose IAM policy grants the key.)
        self.key.add_to_resource_policy(iam.PolicyStatement(
            sid="CloudWatchAlarmsPublishToEncryptedTopic",
            principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
            actions=["kms:Decrypt", "kms:GenerateDataKey*"],
            resources=["*"]))

    def _alerts_topic(self, settings: EnvironmentSettings) -> sns.Topic:
        topic = sns.Topic(
            self, "AlertsTopic",
            display_name=f"dpguard {settings.name} security alerts",
            master_key=self.key,
            enforce_ssl=True,
        )
        # Our own topic policy replaces SNS's default one, so CloudWatch alarms need a statement,
        # limited to alarms of this account (no confused deputy).
        topic.add_to_resource_policy(iam.PolicyStatement(
            sid="CloudWatchAlarmsOfThisAccount",
            principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
            actions=["sns:Publish"],
            resources=[topic.topic_arn],
            conditions={
                "ArnLike": {"aws:SourceArn": f"arn:{self.partition}:cloudwatch:{self.region}:{self.account}:alarm:*"},
                "StringEquals": {"aws:SourceAccount": self.account},
            }))
        topic.add_subscription(subscriptions.EmailSubscription(settings.alert_email))
        return topic

    def _trail_bucket(self, settings: EnvironmentSettings, trail_arn: str) -> s3.Bucket:
        # Who read the audit logs, when and from where: access metadata of CloudTrail's own log
        # files (no user ids in their keys), so `internal`.
        self.access_logs_bucket = access_logs = AccessLogBucket(
            self, "AccessLogsBucket", owner=settings.data_owner, retention_days=settings.retention_days,
            classification="internal", noncurrent_days=NONCURRENT_DAYS)

        bucket = s3.Bucket(
            self, "TrailBucket",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            encryption=s3.BucketEncryption.KMS,
            encryption_key=self.key,
            bucket_key_enabled=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=True,
            server_access_logs_bucket=access_logs,
            server_access_logs_prefix="trail-bucket/",
            lifecycle_rules=[s3.LifecycleRule(
                expiration=cdk.Duration.days(settings.retention_days),
                noncurrent_version_expiration=cdk.Duration.days(NONCURRENT_DAYS),
                abort_incomplete_multipart_upload_after=cdk.Duration.days(7))],
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        _data_tags(bucket, "confidential", settings)
        # CDK's Trail lets cloudtrail.amazonaws.com write under AWSLogs/<account>/ whatever the
        # trail; only ours may (confused-deputy protection).
        bucket.add_to_resource_policy(iam.PolicyStatement(
            sid="OnlyOurTrailWrites",
            effect=iam.Effect.DENY,
            principals=[iam.ServicePrincipal("cloudtrail.amazonaws.com")],
            actions=["s3:PutObject"],
            resources=[bucket.arn_for_objects("*")],
            conditions={"StringNotEquals": {"aws:SourceArn": trail_arn}}))
        return bucket

    def _alarm(self, spec: SecurityAlarm, settings: EnvironmentSettings) -> cloudwatch.Alarm:
        metric_filter = logs.MetricFilter(
            self, f"{spec.id}Filter",
            log_group=self.log_group,
            filter_pattern=logs.FilterPattern.literal(spec.pattern),
            metric_namespace=METRIC_NAMESPACE,
            metric_name=spec.id,
            metric_value="1",
        )
        alarm = cloudwatch.Alarm(
            self, f"{spec.id}Alarm",
            alarm_name=f"dpguard-{settings.name}-{spec.id}",
            alarm_description=f"{spec.description}. Follow the incident response plan (clause 4).",
            metric=metric_filter.metric(statistic="Sum", period=cdk.Duration.minutes(5)),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        alarm.add_alarm_action(cw_actions.SnsAction(self.alerts_topic))
        return alarm

    def _guardduty(self) -> None:
        # One detector per account and region: deploy this stack once per region it covers.
        self.detector = guardduty.CfnDetector(
            self, "GuardDuty", enable=True, finding_publishing_frequency="FIFTEEN_MINUTES")
        self.guardduty_rule = events.Rule(
            self, "GuardDutyFindings",
            description="GuardDuty findings to the security alerts topic (clause 4)",
            event_pattern=events.EventPattern(source=["aws.guardduty"], detail_type=["GuardDuty Finding"]),
            # A role of our own instead of a topic policy open to events.amazonaws.com, which
            # any account's rules could use.
            targets=[targets.SnsTopic(self.alerts_topic, authorize_using_role=True)],
        )
        acknowledge(
            self.guardduty_rule, "AwsSolutions::AwsSolutions-IAM5[Action::kms:GenerateDataKey*]",
            "CDK's topic.grant_publish gives the EventBridge role kms:GenerateDataKey* so SNS can "
            "encrypt the finding it publishes; the resource is the single audit key ARN, and the "
            "role is assumable only by events.amazonaws.com. The wildcard adds only the "
            "GenerateDataKey variants on that one key.")
        acknowledge(
            self.guardduty_rule, "NIST.800.53.R5::NIST.800.53.R5-IAMNoInlinePolicy",
            "The EventBridge target role is CDK's: its one policy allows only sns:Publish on the "
            "alerts topic and the audit key for it, and only events.amazonaws.com can assume the "
            "role; a managed policy would be attachable elsewhere, which is broader.")


def _data_tags(resource: Construct, classification: str, settings: EnvironmentSettings) -> None:
    cdk.Tags.of(resource).add("data-classification", classification)
    cdk.Tags.of(resource).add("data-owner", settings.data_owner)
