"""Response stack (clauses 4, 5, 7): the policy's duties that have deadlines, as functions.

- Incidents: GuardDuty findings, the CloudTrail (CIS) alarms and Security Hub findings become
  incidents in an encrypted table, with each party's notification deadline (72 h, 24 h where a
  party requires it), announced on the alerts topic; every 15 minutes a function escalates
  incidents and data requests whose deadlines come near without acknowledgment or answer.
- Deletion and return requests: one user's data deleted from the data bucket's partition, the
  user tables and Cognito (exported first for "return"), with a KMS-signed written confirmation.
- Exposed secrets: regenerated, the exposed version revoked, the exposure recorded as an
  incident and the owner told.

The code is dpguard.response (standard library and boto3); see docs/response.md."""
from __future__ import annotations

import json

import aws_cdk as cdk
from aws_cdk import aws_events as events, aws_events_targets as targets, aws_iam as iam
from aws_cdk import aws_kms as kms, aws_s3 as s3, aws_sns as sns
from aws_cdk import aws_cognito as cognito, aws_dynamodb as dynamodb
from constructs import Construct

from ..cdk import acknowledge
from ..patterns import DataKey, SecureBucket
from ..patterns.acks import HIPAA, NIST_R4, NIST_R5, PCI, acknowledge_in_packs
from ..patterns.functions import SecureFunction, dpguard_code
from ..patterns.tables import SecureTable
from ..response.common import OPEN_INDEX
from .settings import EnvironmentSettings

EXPORT_DAYS = 7  # a "return" archive is kept this long, then expires (its URL lives an hour)


class ResponseStack(cdk.Stack):
    def __init__(self, scope: Construct, construct_id: str, *, settings: EnvironmentSettings,
                 alerts_topic: sns.ITopic, alerts_key: kms.IKey, logs_key: kms.IKey,
                 data_bucket_arn_export: str, data_key: kms.IKey, user_tables: list[SecureTable],
                 user_pool: cognito.IUserPool, secrets_key: kms.IKey, access_logs_bucket: s3.IBucket,
                 **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.settings = settings
        self.alerts_topic, self.alerts_key, self.logs_key = alerts_topic, alerts_key, logs_key
        owner = settings.data_owner
        data_bucket = s3.Bucket.from_bucket_arn(self, "UserData", cdk.Fn.import_value(data_bucket_arn_export))
        self.key = DataKey(self, "ResponseKey", alias=f"alias/dpg-{settings.name}/response",
                           description="Incident and data-request records, exports and confirmations")
        # Records of incidents and requests name people and resources: confidential.
        self.incidents = self._tracker("Incidents", owner)
        self.requests = self._tracker("DataRequests", owner)
        self.records = SecureBucket(
            self, "Records", encryption_key=self.key, classification="confidential", owner=owner,
            access_logs_bucket=access_logs_bucket, access_logs_prefix="response-records/",
            # The bucket is versioned: an expired archive would otherwise stay 30 more days.
            lifecycle_rules=[s3.LifecycleRule(id="expire-exports", prefix="exports/",
                                              expiration=cdk.Duration.days(EXPORT_DAYS),
                                              noncurrent_version_expiration=cdk.Duration.days(1))])
        acknowledge_in_packs(
            self.records, "S3BucketReplicationEnabled", (NIST_R5, NIST_R4, HIPAA, PCI),
            "The baseline is deployed to one region; the bucket is versioned, each request's outcome "
            "and counts are also in the requests table (point-in-time recovery), exports live 7 days")
        # Confirmations are signed with a key that only signs: whoever holds the public key can
        # check one years later; only this account's signer can make one.
        self.signing_key = kms.Key(
            self, "ConfirmationSigningKey", alias=f"alias/dpg-{settings.name}/confirmations",
            description="Signs the written confirmations of deletion and return requests (clause 5)",
            key_spec=kms.KeySpec.ECC_NIST_P256, key_usage=kms.KeyUsage.SIGN_VERIFY,
            pending_window=cdk.Duration.days(30), removal_policy=cdk.RemovalPolicy.RETAIN)

        code = dpguard_code()
        common = dict(code=code, environment_key=self.key, log_key=logs_key,
                      log_retention_days=settings.retention_days, owner=owner)
        parties = json.dumps(settings.notify_parties, separators=(",", ":"))
        self.incident_function = SecureFunction(
            self, "IncidentFunction", handler="dpguard.response.incidents.handler",
            description="Security events to recorded incidents with notification deadlines (clause 4)",
            environment={"INCIDENT_TABLE": self.incidents.table_name, "ALERTS_TOPIC_ARN": alerts_topic.topic_arn,
                         "PARTIES": parties}, **common)
        self.escalation_function = SecureFunction(
            self, "EscalationFunction", handler="dpguard.response.escalation.handler",
            description="Escalates incidents and data requests whose deadlines come near (clauses 4, 5)",
            environment={"INCIDENT_TABLE": self.incidents.table_name, "REQUEST_TABLE": self.requests.table_name,
                         "ALERTS_TOPIC_ARN": alerts_topic.topic_arn}, **common)
        self.data_request_function = SecureFunction(
            self, "DataRequestFunction", handler="dpguard.response.data_requests.handler",
            description="Deletes or returns one user's data, with a signed confirmation (clause 5)",
            timeout=cdk.Duration.minutes(15), memory_size=1024,
            environment={
                "REQUEST_TABLE": self.requests.table_name, "ALERTS_TOPIC_ARN": alerts_topic.topic_arn,
                "DATA_BUCKETS": cdk.Fn.to_json_string([{"bucket": data_bucket.bucket_name,
                                                        "prefix": "users/{user_id}/"}]),
                "USER_TABLES": cdk.Fn.to_json_string([
                    {"table": t.table_name, "key": t.partition_key_name,
                     **({"sort_key": t.sort_key_name} if t.sort_key_name else {})} for t in user_tables]),
                "USER_POOL_ID": user_pool.user_pool_id, "RECORDS_BUCKET": self.records.bucket_name,
                "SIGNING_KEY_ID": self.signing_key.key_arn}, **common)
        self.secret_function = SecureFunction(
            self, "SecretExposureFunction", handler="dpguard.response.secrets.handler",
            description="Regenerates an exposed secret, revokes the exposed version, tells the owner (clause 7)",
            timeout=cdk.Duration.minutes(3),
            environment={"INCIDENT_TABLE": self.incidents.table_name, "ALERTS_TOPIC_ARN": alerts_topic.topic_arn,
                         "PARTIES": parties}, **common)

        for function in (self.incident_function, self.escalation_function, self.data_request_function,
                         self.secret_function):
            self._allow_publish(function.role)
        self._allow_table(self.incident_function.role, self.incidents, "dynamodb:PutItem",
                          "dynamodb:GetItem", "dynamodb:UpdateItem")
        self._allow_table(self.secret_function.role, self.incidents, "dynamodb:PutItem",
                          "dynamodb:GetItem", "dynamodb:UpdateItem")
        for table in (self.incidents, self.requests):
            self._allow_table(self.escalation_function.role, table, "dynamodb:GetItem", "dynamodb:UpdateItem")
            self._allow_index(self.escalation_function.role, table, "dynamodb:Query")
        self._allow_table(self.data_request_function.role, self.requests, "dynamodb:PutItem",
                          "dynamodb:GetItem", "dynamodb:UpdateItem")
        self._data_request_grants(data_bucket, data_bucket_arn_export, data_key, user_tables, user_pool)
        self._secret_grants(secrets_key)
        self._event_sources()

        for name, value in (("IncidentTableName", self.incidents.table_name),
                            ("RequestTableName", self.requests.table_name),
                            ("RecordsBucketName", self.records.bucket_name),
                            ("SigningKeyArn", self.signing_key.key_arn),
                            ("DataRequestFunctionName", self.data_request_function.function_name),
                            ("SecretExposureFunctionName", self.secret_function.function_name)):
            cdk.CfnOutput(self, name, value=value)

    def _tracker(self, construct_id: str, owner: str) -> SecureTable:
        """A table of tracked duties: key `id`, and an index of the open ones by next deadline
        (sparse: an item leaves it when its `tracking` attribute is removed)."""
        table = SecureTable(self, construct_id, partition_key="id", encryption_key=self.key,
                            classification="confidential", owner=owner)
        table.add_global_secondary_index(
            index_name=OPEN_INDEX,
            partition_key=dynamodb.Attribute(name="tracking", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="next_deadline", type=dynamodb.AttributeType.STRING))
        return table

    # Grants name each resource and action; none uses a wildcard action. KMS use is limited to
    # the service that needs the key on the function's behalf (kms:ViaService).
    def _via(self, *services: str) -> dict:
        return {"StringEquals": {"kms:ViaService": [f"{s}.{self.region}.amazonaws.com" for s in services]}}

    def _allow_publish(self, role: iam.IRole) -> None:
        role.add_to_principal_policy(iam.PolicyStatement(actions=["sns:Publish"],
                                                         resources=[self.alerts_topic.topic_arn]))
        role.add_to_principal_policy(iam.PolicyStatement(
            actions=["kms:GenerateDataKey", "kms:Decrypt"], resources=[self.alerts_key.key_arn],
            conditions=self._via("sns")))

    def _allow_table(self, role: iam.IRole, table: SecureTable, *actions: str) -> None:
        role.add_to_principal_policy(iam.PolicyStatement(actions=list(actions), resources=[table.table_arn]))
        self._allow_table_key(role, table)

    def _allow_index(self, role: iam.IRole, table: SecureTable, *actions: str) -> None:
        """The open index only; the table's key comes with `_allow_table`, which every caller makes."""
        role.add_to_principal_policy(iam.PolicyStatement(
            actions=list(actions), resources=[f"{table.table_arn}/index/{OPEN_INDEX}"]))

    def _allow_table_key(self, role: iam.IRole, table: SecureTable) -> None:
        role.add_to_principal_policy(iam.PolicyStatement(
            actions=["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
            resources=[table.encryption_key.key_arn], conditions=self._via("dynamodb")))

    def _data_request_grants(self, data_bucket: s3.IBucket, data_bucket_export: str, data_key: kms.IKey, user_tables: list[SecureTable],
                             user_pool: cognito.IUserPool) -> None:
        role = self.data_request_function.role
        partitions = data_bucket.arn_for_objects("users/*")
        role.add_to_principal_policy(iam.PolicyStatement(
            actions=["s3:ListBucketVersions", "s3:ListBucket"], resources=[data_bucket.bucket_arn],
            conditions={"StringLike": {"s3:prefix": ["users/*"]}}))
        role.add_to_principal_policy(iam.PolicyStatement(
            actions=["s3:GetObject", "s3:DeleteObject", "s3:DeleteObjectVersion"],
            resources=[partitions]))
        role.add_to_principal_policy(iam.PolicyStatement(
            actions=["kms:Decrypt"], resources=[data_key.key_arn], conditions=self._via("s3")))
        for table in user_tables:
            self._allow_table(role, table, "dynamodb:Query", "dynamodb:BatchWriteItem")
        role.add_to_principal_policy(iam.PolicyStatement(
            actions=["cognito-idp:ListUsers", "cognito-idp:AdminDeleteUser"],
            # From the pool id (a Ref), not its Arn attribute: the same ARN, and one export fewer.
            resources=[self.format_arn(service="cognito-idp", resource="userpool",
                                       resource_name=user_pool.user_pool_id)]))
        records = [self.records.arn_for_objects("exports/*"), self.records.arn_for_objects("confirmations/*")]
        role.add_to_principal_policy(iam.PolicyStatement(actions=["s3:PutObject", "s3:GetObject"],
                                                         resources=records))
        role.add_to_principal_policy(iam.PolicyStatement(
            actions=["kms:GenerateDataKey", "kms:Decrypt"], resources=[self.key.key_arn], conditions=self._via("s3")))
        role.add_to_principal_policy(iam.PolicyStatement(actions=["kms:Sign"],
                                                         resources=[self.signing_key.key_arn]))
        records_id = self.resolve(self.get_logical_id(self.records.node.default_child))
        self._acknowledge_wildcards(
            role, "Deletion requests reach every user's partition (users/*) of the data bucket and "
                  "write exports/* and confirmations/* of the records bucket: the object names are "
                  "per user and per request, so these prefixes are the narrowest that name them",
            f"{data_bucket_export}/users/*", f"<{records_id}.Arn>/exports/*", f"<{records_id}.Arn>/confirmations/*")

    def _secret_grants(self, secrets_key: kms.IKey) -> None:
        role = self.secret_function.role
        role.add_to_principal_policy(iam.PolicyStatement(
            actions=["secretsmanager:DescribeSecret", "secretsmanager:ListSecretVersionIds",
                     "secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue",
                     "secretsmanager:RotateSecret", "secretsmanager:UpdateSecretVersionStage"],
            resources=[self.format_arn(service="secretsmanager", resource="secret", resource_name="*",
                                       arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME)]))
        role.add_to_principal_policy(iam.PolicyStatement(actions=["secretsmanager:GetRandomPassword"],
                                                         resources=["*"]))
        role.add_to_principal_policy(iam.PolicyStatement(
            actions=["kms:Decrypt", "kms:GenerateDataKey"], resources=[secrets_key.key_arn],
            conditions=self._via("secretsmanager")))
        why = ("An exposure can hit any secret of the account: the responder must regenerate whichever "
               "secret leaked, so it may act on every secret of this account and region, with the "
               "regeneration actions only (no delete, no policy or tag changes)")
        self._acknowledge_wildcards(role, why + "; GetRandomPassword has no resource",
                                    "arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:secret:*", "*")
        acknowledge(role.node.find_child("DefaultPolicy"), "DP-IamNoWildcardResourceWrite", why)

    @staticmethod
    def _acknowledge_wildcards(role: iam.IRole, reason: str, *resources: str) -> None:
        """Acknowledge cdk-nag's AwsSolutions-IAM5 for exactly these resources (the ids it prints)."""
        for resource in resources:
            acknowledge(role, f"AwsSolutions::AwsSolutions-IAM5[Resource::{resource}]", reason)

    def _event_sources(self) -> None:
        # EventBridge puts events it could not deliver into the incident function's dead-letter
        # queue, which the response key encrypts: it may use the key for that, from this stack's
        # rules only.
        self.key.add_to_resource_policy(iam.PolicyStatement(
            sid="EventBridgeDeadLettersOfThisStack", principals=[iam.ServicePrincipal("events.amazonaws.com")],
            actions=["kms:GenerateDataKey", "kms:Decrypt"], resources=["*"],
            conditions={"ArnLike": {"aws:SourceArn": self.format_arn(service="events", resource="rule",
                                                                     resource_name=f"{self.stack_name}-*")},
                        "StringEquals": {"aws:SourceAccount": self.account}}))
        target = targets.LambdaFunction(self.incident_function, retry_attempts=4,
                                        max_event_age=cdk.Duration.hours(6),
                                        dead_letter_queue=self.incident_function.dead_letters)
        events.Rule(self, "GuardDutyFindings", description="GuardDuty findings become incidents (clause 4)",
                    event_pattern=events.EventPattern(source=["aws.guardduty"], detail_type=["GuardDuty Finding"]),
                    targets=[target])
        events.Rule(self, "SecurityAlarms", description="The CloudTrail security alarms become incidents (clause 4)",
                    event_pattern=events.EventPattern(
                        source=["aws.cloudwatch"], detail_type=["CloudWatch Alarm State Change"],
                        detail={"alarmName": [{"prefix": f"dpguard-{self.settings.name}-"}],
                                "state": {"value": ["ALARM"]}}),
                    targets=[target])
        events.Rule(self, "SecurityHubFindings",
                    description="New high and critical Security Hub findings become incidents (clause 4)",
                    event_pattern=events.EventPattern(
                        source=["aws.securityhub"], detail_type=["Security Hub Findings - Imported"],
                        detail={"findings": {"Severity": {"Label": ["HIGH", "CRITICAL"]},
                                             "Workflow": {"Status": ["NEW"]}, "RecordState": ["ACTIVE"]}}),
                    targets=[target])
        events.Rule(self, "EscalationSchedule", description="Escalate deadlines that come near (clauses 4, 5)",
                    schedule=events.Schedule.rate(cdk.Duration.minutes(15)),
                    targets=[targets.LambdaFunction(self.escalation_function, retry_attempts=0)])
