"""Organisation-scale audit (issue 15; docs/audit-at-scale.md): `dpguard audit` of every account of
the organisation, run by AWS's engines from the auditor (delegated administrator) account.

    EventBridge Scheduler, daily   ─► Step Functions "dpguard-<env>-org-audit" (Standard)
        ListAccounts  Lambda: the organisation's accounts → s3://RESULTS/runs/date=D/accounts.json
        AuditAccounts Distributed Map over that file: one child workflow (Standard) per account,
                      AuditAccount Lambda → findings/date=D/account=A/audit.json (+ Security Hub)
        Report        Lambda: dpguard report over the day's audits → reports/date=D/
        Notify        the summary to the alerts topic
    EventBridge Scheduler, quarterly ─► AccessReview Lambda → reviews/date=D/account=A/

The handlers are dpguard.org_audit.handlers'. Their code is the dpguard package and its runtime
dependencies copied from this Python environment at synth (`org_audit_code`): nothing is
downloaded, and no Docker is needed.

The stack is off by default: `cdk synth -c org_audit=true` adds it to the baseline (app.py), with
the settings of cdk.json's `org_audit_settings` (`OrgAuditSettings`)."""
from __future__ import annotations

import atexit
import functools
import json
import re
import shutil
import tempfile
from dataclasses import dataclass, fields
from importlib import metadata
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch, aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam, aws_kms as kms, aws_lambda as lambda_
from aws_cdk import aws_s3 as s3, aws_scheduler as scheduler, aws_securityhub as securityhub
from aws_cdk import aws_sns as sns, aws_sns_subscriptions as subscriptions
from aws_cdk import aws_ssm as ssm, aws_stepfunctions as sfn, aws_stepfunctions_tasks as tasks
from constructs import Construct

from ..cdk import acknowledge
from ..output import asff
from ..patterns import AccessLogBucket, DataKey, EncryptedLogGroup, SecureBucket, SecureFunction
from ..patterns.acks import HIPAA, NIST_R4, NIST_R5, PCI, acknowledge_in_packs
from ..patterns.keys import LOGS_ACTIONS
from .settings import EnvironmentSettings, SettingsError

# The Lambda runtime of the four handlers. Python 3.13, not the newest (3.14): the asset is
# imported on a 3.13 interpreter before it is deployed (tests/test_stacks_org_audit.py), and the
# build machines have no 3.14 to do the same with.
RUNTIME = lambda_.Runtime.PYTHON_3_13
DAILY = "cron(0 2 * * ? *)"             # the drift audit, 02:00 UTC every day
QUARTERLY = "cron(0 3 1 1,4,7,10 ? *)"  # the access review, 03:00 UTC on the first day of each quarter
TOLERATED_FAILURE_PERCENTAGE = 2        # more failed accounts than this fail the run
ACCOUNT_LISTS = "runs/"                 # runs/date=D/accounts.json, written by ListAccounts
MAP_RESULTS = "runs/map/"               # the Map's ResultWriter: runs/map/<map run id>/...
SECURITY_HUB_STATE = "state/securityhub/"  # what audit_account last imported into Security Hub, per account
# What the asset leaves out of the dpguard package: the CDK side (it needs aws-cdk-lib, which the
# handlers never import) and the test helpers.
NOT_IN_FUNCTIONS = ("cdk", "stacks", "patterns", "testing.py")
# Dependencies the functions never use: SAM expansion is for templates as written, and the live
# templates of an audit never carry a transform (it needs pydantic's compiled core besides).
NOT_BUNDLED = frozenset({"aws-sam-translator"})
# Lambda service errors worth retrying (AWS's list for the lambda:invoke integration).
LAMBDA_SERVICE_ERRORS = ["Lambda.ServiceException", "Lambda.AWSLambdaException", "Lambda.SdkClientException",
                         "Lambda.TooManyRequestsException", "Lambda.ClientExecutionTimeoutException"]
_ORG_ID = re.compile(r"^o-[a-z0-9]{10,32}$")
_ROLE_NAME = re.compile(r"^[\w+=,.@-]{1,64}$")
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")


@dataclass(frozen=True)
class OrgAuditSettings:
    """cdk.json context `org_audit_settings` (a mapping; on the command line, a JSON string)."""
    organization_id: str = ""                       # o-...: the only organisation whose roles may be assumed
    audit_role_name: str = "dpguard-audit"          # the role in every member account (StackSet)
    lambda_role_name: str = "dpguard-audit-lambda"  # the audit function's role: member roles trust it by name
    review_role_name: str = "dpguard-access-review-lambda"  # the access review function's role, likewise
    external_id_parameter: str = "/dpguard/org-audit/external-id"  # SSM String parameter with the ExternalId
    org_role_arn: str | None = None                 # a role allowed organizations:ListAccounts; None: own account
    regions: tuple[str, ...] = ()                   # empty: every region enabled in the auditor account
    max_concurrency: int = 100                      # accounts audited at once
    security_hub_import: bool = True                # findings into Security Hub of the auditor account
    enable_security_hub: bool = False               # create AWS::SecurityHub::Hub (not if the org has one)
    results_retention_days: int | None = None       # None: the environment's retention_days
    report_memory_mb: int = 3008                    # ~450,000 findings (docs/audit-at-scale.md)

    @classmethod
    def from_context(cls, scope: Construct) -> "OrgAuditSettings":
        raw = scope.node.try_get_context("org_audit_settings") or {}
        if isinstance(raw, str):  # -c org_audit_settings='{"organization_id": "o-..."}'
            try:
                raw = json.loads(raw)
            except ValueError:
                raise SettingsError("org_audit_settings is not a JSON object") from None
        if not isinstance(raw, dict):
            raise SettingsError("org_audit_settings must be a mapping of settings")
        known = {f.name for f in fields(cls)}
        unknown = set(raw) - known
        if unknown:
            raise SettingsError(f"org_audit_settings: unknown setting(s) {', '.join(sorted(unknown))}")
        values = dict(raw)
        if isinstance(values.get("regions"), list):
            values["regions"] = tuple(values["regions"])
        settings = cls(**values)
        settings.check()
        return settings

    def check(self) -> None:
        where = "org_audit_settings"
        if not isinstance(self.organization_id, str) or not _ORG_ID.match(self.organization_id):
            raise SettingsError(f"{where}: organization_id must be your organisation's id (o-...), got "
                                f"{self.organization_id!r}; only its accounts' roles may be assumed")
        for name in ("audit_role_name", "lambda_role_name", "review_role_name"):
            value = getattr(self, name)
            if not isinstance(value, str) or not _ROLE_NAME.match(value):
                raise SettingsError(f"{where}: {name} {value!r} is not an IAM role name")
        if not isinstance(self.external_id_parameter, str) or not self.external_id_parameter.startswith("/"):
            raise SettingsError(f"{where}: external_id_parameter must be an SSM parameter name starting with '/'")
        if self.org_role_arn is not None and (not isinstance(self.org_role_arn, str)
                                              or not _ROLE_ARN.match(self.org_role_arn)):
            raise SettingsError(f"{where}: org_role_arn {self.org_role_arn!r} is not an IAM role ARN")
        if not isinstance(self.regions, tuple) or not all(isinstance(r, str) and _REGION.match(r)
                                                          for r in self.regions):
            raise SettingsError(f"{where}: regions must be a list of region names such as eu-west-1")
        # Step Functions runs at most 10,000 children of a Distributed Map at once.
        if not _whole(self.max_concurrency) or not 1 <= self.max_concurrency <= 10_000:
            raise SettingsError(f"{where}: max_concurrency must be a whole number from 1 to 10000")
        for name in ("security_hub_import", "enable_security_hub"):
            if not isinstance(getattr(self, name), bool):
                raise SettingsError(f"{where}: {name} must be true or false")
        if not _whole(self.report_memory_mb) or not 128 <= self.report_memory_mb <= 10_240:
            raise SettingsError(f"{where}: report_memory_mb must be from 128 to 10240")
        if self.results_retention_days is not None and (not _whole(self.results_retention_days)
                                                        or self.results_retention_days < 1):
            raise SettingsError(f"{where}: results_retention_days must be a positive number of days")


def _whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def enabled(scope: Construct) -> bool:
    """Whether `-c org_audit=true` (or `"org_audit": true` in cdk.json) asks for the stack."""
    flag = scope.node.try_get_context("org_audit")
    if flag in (None, False, "false", ""):
        return False
    if flag in (True, "true"):
        return True
    raise SettingsError(f"org_audit must be true or false, got {flag!r}")


class OrgAuditStack(cdk.Stack):
    """The organisation audit, in the auditor (delegated administrator) account. `alerts_topic`
    and `alerts_key`: the baseline's alerts topic and its key (AuditStack), else the stack makes
    its own topic; `access_logs_bucket`: where the results bucket's access logs go (an
    AccessLogBucket), else its own."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: EnvironmentSettings,
                 org: OrgAuditSettings, alerts_topic: sns.ITopic | None = None,
                 alerts_key: kms.IKey | None = None, access_logs_bucket: s3.IBucket | None = None,
                 **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        # The Map's ResultWriter with Bucket and Prefix (without the flag, 2.275 renders none).
        self.node.set_context("@aws-cdk/aws-stepfunctions:useDistributedMapResultWriterV2", True)
        if (alerts_topic is None) != (alerts_key is None):
            raise ValueError("OrgAuditStack: pass alerts_topic together with the key that encrypts it")
        self.settings, self.org = settings, org
        owner = settings.data_owner
        self.log_prefix = f"/dpguard/{settings.name}/org-audit/"

        # One key for what the audit keeps: results, logs, function environments, dead letters.
        self.key = DataKey(self, "Key", alias=f"alias/dpg-{settings.name}/org-audit",
                           description="dpguard organisation audit: findings, reports, reviews, their logs")
        self._key_policy()

        if access_logs_bucket is None:
            access_logs_bucket = AccessLogBucket(self, "AccessLogs", owner=owner, classification="internal",
                                                 retention_days=settings.retention_days)
        # Every weakness of every account: the highest classification.
        retention = org.results_retention_days or settings.retention_days
        self.results = SecureBucket(
            self, "Results", encryption_key=self.key, classification="restricted", owner=owner,
            access_logs_bucket=access_logs_bucket, access_logs_prefix="org-audit-results/",
            lifecycle_rules=[s3.LifecycleRule(id="expire-results", expiration=cdk.Duration.days(retention))])
        self.results.add_to_resource_policy(iam.PolicyStatement(
            sid="OnlyThisAccount", effect=iam.Effect.DENY, principals=[iam.AnyPrincipal()], actions=["s3:*"],
            resources=[self.results.bucket_arn, self.results.arn_for_objects("*")],
            conditions={"StringNotEquals": {"aws:PrincipalAccount": self.account}}))
        acknowledge_in_packs(
            self.results, "S3BucketReplicationEnabled", (NIST_R5, NIST_R4, HIPAA, PCI),
            "Audit results are rebuilt by the next run from the accounts themselves; the bucket is "
            "versioned and keeps noncurrent versions 30 days")

        if alerts_topic is None:
            alerts_topic, alerts_key = self._own_topic(settings), self.key
        self.alerts_topic, self.alerts_key = alerts_topic, alerts_key

        code = org_audit_code()
        common = dict(code=code, environment_key=self.key, log_key=self.key, owner=owner,
                      log_retention_days=settings.retention_days, runtime=RUNTIME, tracing=lambda_.Tracing.ACTIVE)
        bucket_env = {"BUCKET": self.results.bucket_name, "KEY_ARN": self.key.key_arn}
        listing_env = {**bucket_env, **({"REGIONS": ",".join(org.regions)} if org.regions else {}),
                       **({"ORG_ROLE_ARN": org.org_role_arn} if org.org_role_arn else {})}
        # The ExternalId lives in SSM in this account (docs/audit-at-scale.md), read at deploy.
        external_id = ssm.StringParameter.value_for_string_parameter(self, org.external_id_parameter)
        member_env = {"AUDIT_ROLE_NAME": org.audit_role_name, "EXTERNAL_ID": external_id}

        self.list_accounts = self._function(
            "ListAccountsFunction", "list_accounts", "Lists the organisation's accounts for the audit run",
            listing_env, timeout=cdk.Duration.minutes(5), memory_size=512, **common)
        self.audit_account = self._function(
            "AuditAccountFunction", "audit_account", "Audits one member account with dpguard's rules",
            {**bucket_env, **member_env, "SECURITY_HUB": "on" if org.security_hub_import else "off"},
            timeout=cdk.Duration.minutes(15), memory_size=1024, role_name=org.lambda_role_name, **common)
        # The Map never runs more than max_concurrency at once: reserve exactly that, so a run
        # can neither starve the account's other functions nor be starved by them.
        self.audit_account.node.default_child.reserved_concurrent_executions = org.max_concurrency
        self.report = self._function(
            "ReportFunction", "report", "Writes the auditor report of one audit run",
            bucket_env, timeout=cdk.Duration.minutes(15), memory_size=org.report_memory_mb, **common)
        self.access_review = self._function(
            "AccessReviewFunction", "access_review", "The quarterly access review of every member account",
            {**listing_env, **member_env}, timeout=cdk.Duration.minutes(15), memory_size=1024,
            role_name=org.review_role_name, **common)
        self.functions = [self.list_accounts, self.audit_account, self.report, self.access_review]
        self._function_grants()

        self.state_machine = self._state_machine()
        self._schedules()
        self._failure_alarm()
        if org.enable_security_hub:
            self.hub = securityhub.CfnHub(self, "SecurityHub", auto_enable_controls=True,
                                          enable_default_standards=False)
        if org.security_hub_import:
            self._suppress_acknowledged()

        for name, value in (("ResultsBucketName", self.results.bucket_name),
                            ("StateMachineArn", self.state_machine.state_machine_arn),
                            ("AuditFunctionRoleArn", self.audit_account.role.role_arn),
                            ("AccessReviewRoleArn", self.access_review.role.role_arn)):
            cdk.CfnOutput(self, name, value=value)

    def _suppress_acknowledged(self) -> None:
        """Security Hub keeps a provider's Workflow only when it creates a finding: a finding first
        imported as a violation and acknowledged later would stay NEW. This rule suppresses every
        dpguard finding of the acknowledged type (the reason is in its ProductFields); automation
        rules cannot match ProductFields."""
        product = self.format_arn(service="securityhub", resource="product", resource_name=f"{self.account}/default")
        hub = securityhub.CfnAutomationRule
        rule = hub(self, "SuppressAcknowledged", rule_name=f"dpguard-{self.settings.name}-acknowledged", rule_order=1,
                   rule_status="ENABLED", is_terminal=False,
                   description="dpguard findings acknowledged with a reason in the template: workflow SUPPRESSED",
                   criteria=hub.AutomationRulesFindingFiltersProperty(
                       product_arn=[hub.StringFilterProperty(comparison="EQUALS", value=product)],
                       type=[hub.StringFilterProperty(comparison="EQUALS", value=asff.ACKNOWLEDGED_TYPE)]),
                   actions=[hub.AutomationRulesActionProperty(
                       type="FINDING_FIELDS_UPDATE",
                       finding_fields_update=hub.AutomationRulesFindingFieldsUpdateProperty(
                           workflow=hub.WorkflowUpdateProperty(status="SUPPRESSED"),
                           note=hub.NoteUpdateProperty(text="acknowledged in the template: see the finding's "
                                                            "dpguard/AcknowledgmentReason", updated_by="dpguard")))])
        if getattr(self, "hub", None) is not None:
            rule.add_dependency(self.hub)

    # --- the key ---------------------------------------------------------------------------

    def _key_policy(self) -> None:
        """Beside the account's own administration (DataKey's default), CloudWatch Logs may use
        the key for this stack's log groups only (their names start with `log_prefix`)."""
        self.key.add_to_resource_policy(iam.PolicyStatement(
            sid="CloudWatchLogsOfTheOrgAudit", principals=[iam.ServicePrincipal(f"logs.{self.region}.amazonaws.com")],
            actions=LOGS_ACTIONS, resources=["*"],  # in a key policy "*" means this key
            conditions={"ArnLike": {"kms:EncryptionContext:aws:logs:arn": self.format_arn(
                service="logs", resource="log-group", resource_name=f"{self.log_prefix}*",
                arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME)}}))

    def _own_topic(self, settings: EnvironmentSettings) -> sns.Topic:
        topic = sns.Topic(self, "AlertsTopic", display_name=f"dpguard {settings.name} organisation audit",
                          master_key=self.key, enforce_ssl=True)
        topic.add_subscription(subscriptions.EmailSubscription(settings.alert_email))
        # The run-failure alarm publishes as CloudWatch: SNS needs the key on its behalf, and the
        # topic admits alarms of this account only.
        topic.add_to_resource_policy(iam.PolicyStatement(
            sid="CloudWatchAlarmsOfThisAccount", principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
            actions=["sns:Publish"], resources=[topic.topic_arn],
            conditions={"ArnLike": {"aws:SourceArn": self.format_arn(service="cloudwatch", resource="alarm",
                                                                     resource_name="*",
                                                                     arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME)},
                        "StringEquals": {"aws:SourceAccount": self.account}}))
        self.key.add_to_resource_policy(iam.PolicyStatement(
            sid="CloudWatchAlarmsPublishToEncryptedTopic", principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
            actions=["kms:Decrypt", "kms:GenerateDataKey*"], resources=["*"],
            conditions={"StringEquals": {"aws:SourceAccount": self.account}}))
        return topic

    # --- the functions ---------------------------------------------------------------------

    def _function(self, construct_id: str, handler: str, description: str, environment: dict, *,
                  role_name: str | None = None, **options) -> SecureFunction:
        function = SecureFunction(self, construct_id, handler=f"dpguard.org_audit.handlers.{handler}",
                                  description=description, environment=environment, **options)
        # A fixed log group name, so that the key policy can name the stack's log groups.
        self.node.find_child(f"{construct_id}Logs").node.default_child.log_group_name = (
            f"{self.log_prefix}{construct_id.removesuffix('Function')}")
        if role_name:  # the member accounts' trust policy names these roles
            function.role.node.default_child.role_name = role_name
        acknowledge(function, "AwsSolutions::AwsSolutions-L1", _RUNTIME_REASON)
        acknowledge(function.role.node.find_child("DefaultPolicy"),
                            "AwsSolutions::AwsSolutions-IAM5[Resource::*]", _STAR_REASON)
        return function

    def _allow(self, function: SecureFunction, actions: list[str], resources: list[str], **conditions) -> None:
        function.role.add_to_principal_policy(iam.PolicyStatement(
            actions=actions, resources=resources, conditions=conditions or None))

    def _allow_objects(self, function: SecureFunction, *, read: tuple[str, ...] = (), write: tuple[str, ...] = ()) -> None:
        """Objects under the given prefixes of the results bucket, and the key only through S3."""
        via_s3 = {"StringEquals": {"kms:ViaService": f"s3.{self.region}.amazonaws.com"}}
        if read:
            self._allow(function, ["s3:GetObject"], [self.results.arn_for_objects(f"{p}*") for p in read])
            # Without ListBucket on the bucket (no prefix condition: a GetObject has no prefix), S3
            # answers a missing object with 403, not 404, and the handlers take only a 404 for
            # "not there yet" (the first run's Security Hub state, a run without an account list).
            self._allow(function, ["s3:ListBucket"], [self.results.bucket_arn])
            self._allow(function, ["kms:Decrypt"], [self.key.key_arn], **via_s3)
        if write:
            self._allow(function, ["s3:PutObject"], [self.results.arn_for_objects(f"{p}*") for p in write])
            self._allow(function, ["kms:GenerateDataKey"], [self.key.key_arn], **via_s3)
        bucket_id = self.resolve(self.get_logical_id(self.results.node.default_child))
        for prefix in read + write:
            acknowledge(function.role, f"AwsSolutions::AwsSolutions-IAM5[Resource::<{bucket_id}.Arn>/{prefix}*]",
                                "The objects of one kind of result: their names carry the run's date and "
                                "the account, so the prefix is the narrowest that names them")

    def _function_grants(self) -> None:
        org = self.org
        member_roles = f"arn:{self.partition}:iam::*:role/{org.audit_role_name}"
        for function in (self.list_accounts, self.access_review):
            if org.org_role_arn:
                self._allow(function, ["sts:AssumeRole"], [org.org_role_arn])
            else:  # the auditor account is the delegated administrator: it lists the accounts itself
                self._allow(function, ["organizations:ListAccounts"], ["*"])
            if not org.regions:
                self._allow(function, ["ec2:DescribeRegions"], ["*"])
        # Any account's audit role, but only inside our organisation (the account wildcard is in
        # the ARN, not in the action).
        for function in (self.audit_account, self.access_review):
            self._allow(function, ["sts:AssumeRole"], [member_roles],
                        StringEquals={"aws:ResourceOrgID": org.organization_id})
            acknowledge(function.role, f"AwsSolutions::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:"
                                f"iam::*:role/{org.audit_role_name}]",
                                "The audit role of every member account, and only of accounts of our "
                                "organisation (aws:ResourceOrgID); the role grants read-only actions")
        if org.security_hub_import:
            product = self.format_arn(service="securityhub", resource="product",
                                      resource_name=f"{self.account}/default")
            self._allow(self.audit_account, ["securityhub:BatchImportFindings"], [product])
        self._allow_objects(self.list_accounts, write=("runs/",))
        # With Security Hub, the findings it last imported for the account (state/securityhub/):
        # their first-seen times, and which ones to archive as gone.
        state = (SECURITY_HUB_STATE,) if org.security_hub_import else ()
        self._allow_objects(self.audit_account, read=state, write=("findings/", *state))
        self._allow_objects(self.report, read=("findings/", "runs/"), write=("reports/",))
        self._allow_objects(self.access_review, write=("reviews/",))

    # --- the workflow ----------------------------------------------------------------------

    def _invoke(self, construct_id: str, function: SecureFunction, payload: sfn.TaskInput, **options) -> tasks.LambdaInvoke:
        task = tasks.LambdaInvoke(self, construct_id, lambda_function=function, payload=payload,
                                  retry_on_service_exceptions=False, **options)
        # Throttling and Lambda's own errors: back off and try again, jittered so that a wave of
        # retries does not come back at once.
        task.add_retry(errors=LAMBDA_SERVICE_ERRORS, interval=cdk.Duration.seconds(2), max_attempts=6,
                       backoff_rate=2, max_delay=cdk.Duration.minutes(2), jitter_strategy=sfn.JitterType.FULL)
        return task

    def _state_machine(self) -> sfn.StateMachine:
        name = f"dpguard-{self.settings.name}-org-audit"
        list_accounts = self._invoke(
            "ListAccounts", self.list_accounts, sfn.TaskInput.from_json_path_at("$"),
            result_selector={"bucket.$": "$.Payload.bucket", "key.$": "$.Payload.key",
                             "date.$": "$.Payload.date", "accounts.$": "$.Payload.accounts"},
            result_path="$.list")
        audit_account = self._invoke(
            "AuditAccount", self.audit_account, sfn.TaskInput.from_json_path_at("$"), output_path="$.Payload")
        # A task failure (Security Hub refusing findings, an S3 error): once more after a pause.
        audit_account.add_retry(errors=["States.TaskFailed"], interval=cdk.Duration.seconds(30),
                                max_attempts=2, backoff_rate=2)
        audit_accounts = sfn.DistributedMap(
            self, "AuditAccounts",
            item_reader=_AccountsReader(bucket=self.results, key=sfn.JsonPath.string_at("$.list.key")),
            item_selector={"account": sfn.JsonPath.string_at("$$.Map.Item.Value.account"),
                           "regions": sfn.JsonPath.list_at("$$.Map.Item.Value.regions"),
                           "date": sfn.JsonPath.string_at("$.list.date")},
            max_concurrency=self.org.max_concurrency,
            tolerated_failure_percentage=TOLERATED_FAILURE_PERCENTAGE,
            map_execution_type=sfn.StateMachineType.STANDARD,
            result_writer_v2=_MapResultWriter(bucket=self.results, prefix=MAP_RESULTS),
            result_path="$.map")
        audit_accounts.item_processor(audit_account)
        report = self._invoke(
            "Report", self.report, sfn.TaskInput.from_object({"date": sfn.JsonPath.string_at("$.list.date"),
                                                              "bucket": sfn.JsonPath.string_at("$.list.bucket")}),
            result_selector={"summary.$": "$.Payload"}, result_path="$.report")
        notify = tasks.SnsPublish(
            self, "Notify", topic=self.alerts_topic, subject="dpguard organisation audit",
            message=sfn.TaskInput.from_object({"date": sfn.JsonPath.string_at("$.list.date"),
                                               "bucket": sfn.JsonPath.string_at("$.list.bucket"),
                                               "summary": sfn.JsonPath.object_at("$.report.summary")}),
            result_path=sfn.JsonPath.DISCARD)

        log_group = EncryptedLogGroup(self, "StateMachineLogs", encryption_key=self.key,
                                      retention_days=self.settings.retention_days,
                                      log_group_name=f"{self.log_prefix}states")
        machine = sfn.StateMachine(
            self, "StateMachine", state_machine_name=name, state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_chainable(list_accounts.next(audit_accounts).next(report).next(notify)),
            timeout=cdk.Duration.hours(6), tracing_enabled=True,
            logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=True))
        role = machine.role
        # CDK's grants for the Map's children name the executions through Fn::Select of the
        # machine's ARN, which dpguard cannot check (fail closed): the same grants, spelled out
        # with the machine's fixed name.
        if not machine.node.try_remove_child("DistributedMapPolicy"):
            raise RuntimeError("aws-cdk-lib no longer makes DistributedMapPolicy: review the Map's grants")
        executions = self.format_arn(service="states", resource="execution", resource_name=name,
                                     arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME)
        role.add_to_principal_policy(iam.PolicyStatement(actions=["states:StartExecution"], resources=[self.format_arn(
            service="states", resource="stateMachine", resource_name=name, arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME)]))
        role.add_to_principal_policy(iam.PolicyStatement(actions=["states:DescribeExecution", "states:StopExecution"],
                                                         resources=[f"{executions}:*"]))
        role.add_to_principal_policy(iam.PolicyStatement(actions=["states:RedriveExecution"],
                                                         resources=[f"{executions}/*:*"]))
        via_s3 = {"StringEquals": {"kms:ViaService": f"s3.{self.region}.amazonaws.com"}}
        # The Map reads accounts.json and writes its results with the results key.
        role.add_to_principal_policy(iam.PolicyStatement(
            actions=["kms:Decrypt", "kms:GenerateDataKey"], resources=[self.key.key_arn], conditions=via_s3))
        role.add_to_principal_policy(iam.PolicyStatement(
            actions=["kms:GenerateDataKey", "kms:Decrypt"], resources=[self.alerts_key.key_arn],
            conditions={"StringEquals": {"kms:ViaService": f"sns.{self.region}.amazonaws.com"}}))
        acknowledge_in_packs(role, "IAMNoInlinePolicy", (NIST_R5, NIST_R4, HIPAA, PCI),
                             "The role's own policy names only what this state machine calls; a managed "
                             "policy could be attached to other principals, which is broader")
        self._acknowledge_wildcards(role, "Log delivery (logs:*LogDelivery*, resource policies) and X-Ray have "
                                    "no resource type: AWS accepts them on '*' only", "*")
        self._acknowledge_wildcards(role, "Every execution of this state machine and of its Map runs (by name): "
                                    "the Map starts, watches, stops and redrives its children",
                                    f"arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:{name}:*",
                                    f"arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:{name}/*:*")
        bucket_id = self.resolve(self.get_logical_id(self.results.node.default_child))
        self._acknowledge_wildcards(role, "The Map reads the run's account list under runs/ and writes its results "
                                    "under runs/map/<map run id>/; the names carry the date and the run",
                                    f"<{bucket_id}.Arn>/{ACCOUNT_LISTS}*", f"<{bucket_id}.Arn>/{MAP_RESULTS}*")
        self._acknowledge_wildcards(role, "CDK's grant for the lambda:invoke integration: the function and its "
                                    "versions and aliases (<arn>:*), of these three functions only",
                                    *(f"<{self.resolve(self.get_logical_id(f.node.default_child))}.Arn>:*"
                                      for f in (self.list_accounts, self.audit_account, self.report)))
        return machine

    @staticmethod
    def _acknowledge_wildcards(role: iam.IRole, reason: str, *resources: str) -> None:
        """Acknowledge cdk-nag's AwsSolutions-IAM5 for exactly these resources (the ids it prints)."""
        for resource in resources:
            acknowledge(role, f"AwsSolutions::AwsSolutions-IAM5[Resource::{resource}]", reason)

    # --- schedules and alarms --------------------------------------------------------------

    def _schedule_role(self, construct_id: str, action: str, resource: str) -> iam.Role:
        role = iam.Role(self, construct_id, assumed_by=iam.ServicePrincipal(
            "scheduler.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": self.account}}),
            description=f"EventBridge Scheduler: {action} on one target only")
        role.add_to_principal_policy(iam.PolicyStatement(actions=[action], resources=[resource]))
        acknowledge_in_packs(role, "IAMNoInlinePolicy", (NIST_R5, NIST_R4, HIPAA, PCI),
                             "One action on one target; a managed policy could be attached elsewhere")
        return role

    def _schedules(self) -> None:
        audit_role = self._schedule_role("AuditScheduleRole", "states:StartExecution",
                                         self.state_machine.state_machine_arn)
        review_role = self._schedule_role("AccessReviewScheduleRole", "lambda:InvokeFunction",
                                          self.access_review.function_arn)
        self.audit_schedule = self._schedule("DailyAudit", "dpguard: the organisation's daily drift audit", DAILY,
                                             self.state_machine.state_machine_arn, audit_role)
        # A direct Lambda target: the review is one invocation (its handler goes through the
        # accounts itself); Scheduler invokes asynchronously, so Lambda's retries and the
        # function's dead-letter queue keep a failed review.
        self.review_schedule = self._schedule("QuarterlyAccessReview",
                                              "dpguard: the quarterly access review of every account", QUARTERLY,
                                              self.access_review.function_arn, review_role)

    def _schedule(self, construct_id: str, description: str, expression: str, target_arn: str,
                  role: iam.Role) -> scheduler.CfnSchedule:
        # A start that fails is tried again for an hour; the run's own failures raise the alarm.
        retry = scheduler.CfnSchedule.RetryPolicyProperty(maximum_event_age_in_seconds=3600, maximum_retry_attempts=10)
        return scheduler.CfnSchedule(
            self, construct_id, description=description, schedule_expression=expression,
            schedule_expression_timezone="UTC",
            flexible_time_window=scheduler.CfnSchedule.FlexibleTimeWindowProperty(mode="OFF"),
            target=scheduler.CfnSchedule.TargetProperty(arn=target_arn, role_arn=role.role_arn, input="{}",
                                                        retry_policy=retry))

    def _failure_alarm(self) -> None:
        """A run that fails, times out or is stopped is announced on the alerts topic. (Not named
        dpguard-<env>-...: the response stack makes incidents of those; a failed audit run is an
        operational fault, not a security event.)"""
        metric = cloudwatch.MathExpression(
            expression="failed + timedout + aborted", period=cdk.Duration.hours(1),
            using_metrics={name: self.state_machine.metric(metric, statistic="Sum")
                           for name, metric in (("failed", "ExecutionsFailed"), ("timedout", "ExecutionsTimedOut"),
                                                ("aborted", "ExecutionsAborted"))})
        alarm = cloudwatch.Alarm(
            self, "RunFailedAlarm", alarm_name=f"dpguard-org-audit-{self.settings.name}-run-failed",
            alarm_description="The organisation audit run did not finish: see the state machine's executions",
            metric=metric, threshold=1, evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING)
        alarm.add_alarm_action(cw_actions.SnsAction(self.alerts_topic))


class _AccountsReader(sfn.S3JsonItemReader):
    """The Map reads the account list: CDK would grant every object of the bucket, this grants runs/."""

    def provide_policy_statements(self) -> list[iam.PolicyStatement]:
        return [iam.PolicyStatement(actions=["s3:GetObject"], resources=[self.bucket.arn_for_objects(f"{ACCOUNT_LISTS}*")])]


class _MapResultWriter(sfn.ResultWriterV2):
    """The Map writes its results: CDK would grant every object of the bucket, this grants its prefix."""

    def provide_policy_statements(self) -> list[iam.PolicyStatement]:
        return [iam.PolicyStatement(
            actions=["s3:PutObject", "s3:GetObject", "s3:ListMultipartUploadParts", "s3:AbortMultipartUpload"],
            resources=[self.bucket.arn_for_objects(f"{MAP_RESULTS}*")])]


_RUNTIME_REASON = ("Python 3.13: the bundled code is imported on a 3.13 interpreter before deploy; the build "
                   "machines have no 3.14 to test it with")
_STAR_REASON = ("Actions without a resource type, which AWS accepts on '*' only: X-Ray's PutTraceSegments and "
                "PutTelemetryRecords (every function); organizations:ListAccounts and ec2:DescribeRegions (the "
                "account listing and the access review, when the settings ask for them)")


# --- the functions' code -------------------------------------------------------------------

@functools.cache  # one copy per process, removed at exit (CDK copies it into cdk.out at synth)
def _staged_code() -> str:
    """The dpguard package (without its CDK side) and every runtime dependency of it, boto3
    included, copied from this Python environment into a folder of their own. boto3 is bundled,
    though the Lambda runtime has one, so that the functions run the boto3 the collectors are
    tested with (requirements.txt's pin). Compiled extensions are left out: they are built for
    this interpreter, not the runtime's, and PyYAML falls back to its pure-Python parser."""
    staging = Path(tempfile.mkdtemp(prefix="dpguard-org-audit-"))
    atexit.register(shutil.rmtree, staging, True)
    package = Path(__file__).resolve().parent.parent
    shutil.copytree(package, staging / "dpguard",
                    ignore=lambda folder, names: {n for n in names if n == "__pycache__" or n.endswith((".pyc", ".so"))
                                                  or (Path(folder) == package and n in NOT_IN_FUNCTIONS)})
    for dist in runtime_distributions():
        for file in dist.files or ():
            parts = Path(str(file)).parts
            if parts[0] == ".." or "__pycache__" in parts or file.suffix in (".pyc", ".so"):
                continue  # scripts in bin/, byte code, compiled extensions
            source = Path(dist.locate_file(file))
            if source.is_file():
                target = staging / file
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)
    return str(staging)


def runtime_distributions() -> list[metadata.Distribution]:
    """dpguard's dependencies and its `aws` extra (boto3), with theirs, as installed here."""
    wanted = [name for r in metadata.requires("dpguard") or []
              if (name := _needed(r, extras=("aws",))) and name not in NOT_BUNDLED]
    found: dict[str, metadata.Distribution] = {}
    while wanted:
        name = wanted.pop()
        if name not in found:
            found[name] = dist = metadata.distribution(name)
            wanted += [n for r in dist.requires or [] if (n := _needed(r))]
    return sorted(found.values(), key=lambda d: d.metadata["Name"].lower())


def _needed(requirement: str, extras: tuple[str, ...] = ()) -> str | None:
    """The distribution a requirement line names, or None when only an extra we do not install
    needs it. Any other environment marker stops the synth: it would need the runtime's Python."""
    name, _, marker = requirement.partition(";")
    extra = re.search(r"""extra\s*==\s*['"]([^'"]+)['"]""", marker)
    if extra:
        if extra.group(1) not in extras:
            return None
    elif marker.strip():
        raise ValueError(f"the functions' code: cannot decide whether Lambda needs {requirement!r}")
    return re.match(r"\s*([A-Za-z0-9._-]+)", name).group(1).lower().replace("_", "-")


def org_audit_code() -> lambda_.Code:
    return lambda_.Code.from_asset(_staged_code())


# --- the definition, for readers and the local runner --------------------------------------

def definition_of(template: dict, state_machine_id: str | None = None) -> dict:
    """The ASL definition of a state machine of a synthesized `template`, as a dict: CDK writes
    it as an Fn::Join of strings and references; each reference becomes `${LogicalId}`,
    `${LogicalId.Attribute}` or `${AWS::Partition}` (Fn::Sub's spelling), and another stack's
    export `${ImportValue:ExportName}`, so a function's ARN reads `${AuditAccountFunctionABC123.Arn}`
    and names its resource in `template`."""
    machines = {k: r for k, r in template.get("Resources", {}).items()
                if r.get("Type") == "AWS::StepFunctions::StateMachine"}
    if state_machine_id is None and len(machines) != 1:
        raise ValueError(f"the template has {len(machines)} state machines; name one")
    body = machines[state_machine_id or next(iter(machines))]["Properties"]["DefinitionString"]
    return json.loads(_flatten(body))


def _flatten(value) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        (fn, arg), = value.items()
        if fn == "Fn::Join":
            separator, parts = arg
            return separator.join(_flatten(p) for p in parts)
        if fn == "Ref":
            return f"${{{arg}}}"
        if fn == "Fn::GetAtt":
            return f"${{{arg[0]}.{arg[1]}}}"
        if fn == "Fn::ImportValue" and isinstance(arg, str):  # another stack's export
            return f"${{ImportValue:{arg}}}"
    raise ValueError(f"cannot read this part of the definition: {json.dumps(value)[:200]}")
