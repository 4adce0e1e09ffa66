"""Logging and monitoring (clause 9): CloudTrail, CloudWatch Logs, access logs of the edge; and
the security alert path of clause 4 (an alarm that notifies an encrypted SNS topic)."""
from __future__ import annotations

import re
from typing import Any, Iterator

from ..engine.lazy_re import LazyPattern
from ..engine.checks import (entry_values, follow, is_set, leaves, require_true,
                             resource_targets)
from ..engine.findings import Outcome, unverifiable, violation
from ..engine.template import Resource
from ..engine.values import (_SUB_VAR, ABSENT, ResRef, Unknown, as_bool, as_int, as_text, as_written,
                             described, is_literal)
from . import rule
from .governance import DATA_STORES
from .live import listed_completely
from .apis import stage_settings
from .s3 import PUBLIC_ACCESS_BLOCK_FLAGS

TRAIL = "AWS::CloudTrail::Trail"
LOG_GROUP = "AWS::Logs::LogGroup"
BUCKET = "AWS::S3::Bucket"
LOAD_BALANCER = "AWS::ElasticLoadBalancingV2::LoadBalancer"
CLASSIC_LB = "AWS::ElasticLoadBalancing::LoadBalancer"
REST_STAGE = "AWS::ApiGateway::Stage"
REST_DEPLOYMENT = "AWS::ApiGateway::Deployment"
HTTP_STAGE = "AWS::ApiGatewayV2::Stage"
HTTP_API = "AWS::ApiGatewayV2::Api"
DISTRIBUTION = "AWS::CloudFront::Distribution"
DELIVERY_SOURCE = "AWS::Logs::DeliverySource"
ALARM = "AWS::CloudWatch::Alarm"
COMPOSITE_ALARM = "AWS::CloudWatch::CompositeAlarm"
TOPIC = "AWS::SNS::Topic"
FUNCTION = "AWS::Lambda::Function"


def is_text(value: Any) -> bool:
    """A name or ARN as a template writes it: a non-empty string (tokens allowed) or a Ref/GetAtt."""
    return isinstance(value, ResRef) or (isinstance(value, str) and value != "")


def require_text(r: Resource, path: str, missing: str, what: str) -> Iterator[Outcome]:
    """The property at `path` must be `what`, a name or ARN: not set gives the violation
    `missing`; a list, a mapping, a number or a boolean is a violation saying so, never a pass."""
    for prop_path, value in leaves(r, path):
        prop = path.rsplit(".", 1)[-1]
        if isinstance(value, Unknown):
            yield unverifiable(prop_path, f"{prop} cannot be verified: {value.reason}")
        elif not is_set(value):
            yield violation(prop_path, missing)
        elif not is_text(value):
            effect = re.sub(r" \(no [^)]*\)$", "", missing)  # "(no KmsKeyId)" would read as absent
            yield violation(prop_path, f"{prop} is {described(value)}, not {what}: {effect}")


# ---------------------------------------------------------------- CloudWatch Logs

@rule("DP-LogGroupEncrypted", clause=9, severity="error", types=[LOG_GROUP],
      title="Log groups are encrypted with a KMS key",
      rationale="Clause 9: logs are accessible only to us and protected from tampering throughout "
                "their lifecycle (clause 7 asks the same of all data at rest). CloudWatch Logs "
                "always encrypts with a service key; a KMS key of ours (KmsKeyId) is what lets "
                "the key policy decide who reads the logs. Filed under clause 9, whose row names "
                "'log groups encrypted with retention set'.",
      remediation="logs.LogGroup(self, 'Logs', encryption_key=key, retention=logs.RetentionDays.ONE_YEAR)")
def log_group_encrypted(r, t):
    yield from require_text(r, "KmsKeyId", "the log group is not encrypted with a KMS key (no KmsKeyId)",
                            "a KMS key ARN")


@rule("DP-LogGroupRetention", clause=9, severity="error", types=[LOG_GROUP],
      title="Log groups set a retention period",
      rationale="Clause 9 covers logs throughout their lifecycle, and clause 5 wants deleted data "
                "gone for good: a log group without RetentionInDays keeps every event forever.",
      remediation="logs.LogGroup(self, 'Logs', retention=logs.RetentionDays.ONE_YEAR)")
def log_group_retention(r, t):
    for path, days in leaves(r, "RetentionInDays"):
        if isinstance(days, Unknown):
            yield unverifiable(path, f"RetentionInDays cannot be verified: {days.reason}")
        elif not is_set(days):
            yield violation(path, "the log group keeps events forever; set RetentionInDays")
        elif as_int(days) is None or as_int(days) < 1:
            yield violation(path, f"RetentionInDays is {described(days)}, not a number of days: the log group "
                                  f"may keep events forever; set a number of days such as 365")


# ---------------------------------------------------------------- Lambda's own log groups

LAMBDA_LOGS = "/aws/lambda/"  # where a function logs unless LoggingConfig.LogGroup says otherwise


@rule("DP-LambdaLogGroup", clause=9, severity="error", types=[FUNCTION],
      title="Lambda functions log to a log group the app defines",
      rationale="Clause 9: logs are accessible only to us throughout their lifecycle (and clause 7: "
                "data at rest is encrypted). A function logs to /aws/lambda/<function name> unless "
                "LoggingConfig.LogGroup names another group. When no scanned template creates that "
                "group, Lambda creates it on first invocation, without a KMS key of ours and kept "
                "forever, out of reach of DP-LogGroupEncrypted and DP-LogGroupRetention. Compliant: "
                "LoggingConfig.LogGroup is set, or the app has an AWS::Logs::LogGroup named "
                "/aws/lambda/<function name> (literally, or by Fn::Sub or Fn::Join of a Ref to the "
                "function). SAM functions are left to DP-TemplateProcessed. In a live account: "
                "compliant when the account has that log group in the function's region "
                "(DP-LogGroupEncrypted and DP-LogGroupRetention judge it there); unverifiable "
                "when the region's log groups could not be read.",
      remediation="lambda_.Function(self, 'Fn', ..., log_group=logs.LogGroup(self, 'FnLogs', "
                  "encryption_key=key, retention=logs.RetentionDays.ONE_YEAR))  "
                  "# or dpguard.patterns.SecureFunction\n"
                  "# CloudFormation: LoggingConfig: {LogGroup: !Ref FnLogs}, FnLogs an "
                  "AWS::Logs::LogGroup with KmsKeyId and RetentionInDays")
def lambda_log_group(r, t):
    for path, group in leaves(r, "LoggingConfig.LogGroup"):
        if isinstance(group, Unknown):
            yield unverifiable(path, f"LoggingConfig.LogGroup cannot be verified: {group.reason}")
        elif not is_set(group):
            yield from _default_log_group(r, path)
        elif not is_text(group):
            yield violation(path, f"LoggingConfig.LogGroup is {described(group)}, not a log group name, so "
                                  f"CloudFormation cannot deploy it as written; name the log group (Ref "
                                  f"to an AWS::Logs::LogGroup)")


def _default_log_group(fn: Resource, path: str) -> Iterator[Outcome]:
    """The group Lambda logs to by default, /aws/lambda/<name>, must be a log group of the app
    for every name the function may have."""
    live = fn.live_facts is not None
    has = "the account has" if live else "the app creates"
    by_ref = LAMBDA_LOGS + fn.ref().token()  # a Fn::Sub or Fn::Join of a Ref to the function
    parts = _name_parts(fn.props.get("FunctionName", ABSENT))
    for _, name in fn.values("FunctionName"):
        text = None if name is ABSENT or isinstance(name, Unknown) else as_text(name)
        wanted = {by_ref} | ({LAMBDA_LOGS + text} if text is not None else set())
        probe = LAMBDA_LOGS + text if text is not None else LAMBDA_LOGS if name is not ABSENT else None
        same = _merge((LAMBDA_LOGS,) + parts) if parts is not None and name is not ABSENT else None
        found = _creates(fn, wanted, same, probe)
        if found is True:
            continue
        shown = as_written(LAMBDA_LOGS + text) if text is not None else \
            LAMBDA_LOGS + ("<generated function name>" if name is ABSENT else "<function name>")
        if isinstance(name, Unknown) and found is False:
            found = Unknown(f"the function's name is known only at deploy time ({name.reason})")
        if live and found is False and not listed_completely(fn.template, LOG_GROUP):
            found = Unknown("the audit did not read the log groups of the function's account and region")
        if isinstance(found, Unknown):
            yield unverifiable(path, f"cannot tell whether {has} the function's log group "
                                     f"{shown}: {found.reason}")
        elif live:
            yield violation(path, f"the function logs to {shown}, which the account does not have: Lambda "
                                  f"creates it on first invocation, not encrypted with our KMS key and kept "
                                  f"forever (clauses 7, 9); create that log group with a KMS key and a "
                                  f"retention period, or set LoggingConfig.LogGroup")
        else:
            yield violation(path, f"the function logs to {shown}, which no scanned template creates: Lambda "
                                  f"creates it on first invocation, not encrypted with our KMS key and kept "
                                  f"forever (clauses 7, 9); set LoggingConfig.LogGroup or define that log group")


def _creates(fn: Resource, wanted: set[str], same: tuple | None, probe: str | None) -> bool | Unknown:
    """Does the app create a log group named one of `wanted` (resolved names) or written like
    `same` (in the function's template)? Unknown when a group's condition or name leaves it open;
    `probe`, the name as far as it is known, tells which unknown names might be it."""
    doubt: bool | Unknown = False
    live = fn.live_facts is not None
    for group in fn.template.app.of_type(LOG_GROUP):
        if group.deployed is False or (live and group.template is not fn.template):
            continue  # a live function logs in its own account and region
        names = [v for _, v in group.values("LogGroupName")]
        local = group.template is fn.template
        raw = _name_parts(group.props.get("LogGroupName", ABSENT))
        if all(isinstance(n, str) and n in wanted and (local or "⟨AWS::" not in n) for n in names) \
                or (local and same is not None and raw == same):
            if group.deployed or group.raw.get("Condition") == fn.raw.get("Condition"):
                return True
            doubt = doubt or Unknown(f"log group {group.logical_id} is created only under a condition "
                                     f"decided at deploy time")
            continue
        unknown = next((n for n in names if isinstance(n, Unknown)), None)
        prefix = raw[0] if raw and isinstance(raw[0], str) else ""
        if unknown is not None and probe is not None and (probe.startswith(prefix) or prefix.startswith(probe)):
            doubt = doubt or Unknown(f"the name of log group {group.logical_id} is known only at deploy "
                                     f"time ({unknown.reason})")
    return doubt


def _name_parts(node: Any) -> tuple | None:
    """A name written with text, Ref, Fn::Sub and Fn::Join (empty delimiter) as a tuple of text
    and ("Ref", name) parts; None for anything else. Names written alike in one template are
    equal whatever value a parameter they use is given at deploy time."""
    if isinstance(node, str):
        return _merge((node,))
    if not (isinstance(node, dict) and len(node) == 1):
        return None
    key, arg = next(iter(node.items()))
    if key == "Ref" and isinstance(arg, str):
        return (("Ref", arg),)
    if key == "Fn::Sub" and isinstance(arg, str):
        parts: list = []
        pos = 0
        for m in _SUB_VAR.finditer(arg):
            name = m.group(1).strip()
            parts += [arg[pos:m.start()], "${" + name[1:] + "}" if name.startswith("!") else ("Ref", name)]
            pos = m.end()
        return _merge((*parts, arg[pos:]))
    if key == "Fn::Join" and isinstance(arg, list) and len(arg) == 2 and arg[0] == "" \
            and isinstance(arg[1], list):
        items = [_name_parts(item) for item in arg[1]]
        return None if None in items else _merge(tuple(p for item in items for p in item))
    return None


def _merge(parts: tuple) -> tuple:
    out: list = []
    for part in parts:
        if isinstance(part, str) and out and isinstance(out[-1], str):
            out[-1] += part
        elif part != "":
            out.append(part)
    return tuple(out)


# ---------------------------------------------------------------- CloudTrail

def first_data_store(app):
    """The app's first (readable) data store in template order, or None if it holds no data."""
    return next((r for tpl in app.templates for r in tpl.resources.values()
                 if r.type in DATA_STORES and not r.problem), None)


@rule("DP-CloudTrailPresent", clause=9, severity="warning", types=[TRAIL], scope="app",
      title="An app that holds data defines a CloudTrail trail",
      rationale="Clause 9: logs of all system activity, above all where the data is. Judged only "
                "for apps with a data store, on that store's template. A warning, not an error: "
                "app-team apps rely on the platform baseline's organization trail, which lives in "
                "another app.",
      remediation="cloudtrail.Trail(self, 'Trail', is_multi_region_trail=True, enable_file_validation=True, "
                  "encryption_key=key, send_to_cloud_watch_logs=True, bucket=trail_bucket)  "
                  "# or deploy the dpguard baseline")
def cloudtrail_present(app):
    store = first_data_store(app)
    if store is None:
        return
    states = [r.deployed for r in app.of_type(TRAIL)]
    if True in states:
        return
    where = {"template": store.template, "logical_id": None}
    if None in states:
        yield unverifiable("", "every CloudTrail trail of the app is created only under a condition "
                               "decided at deploy time", **where)
    else:
        yield violation("", "the app defines no CloudTrail trail; make sure the platform's trail covers "
                            "this account", **where)


@rule("DP-CloudTrailMultiRegion", clause=9, severity="error", types=[TRAIL],
      title="CloudTrail trails cover every region",
      rationale="Clause 9: logs of all system activity. A single-region trail misses whatever "
                "happens in the other regions, where an intruder would go.",
      remediation="cloudtrail.Trail(self, 'Trail', is_multi_region_trail=True)")
def cloudtrail_multi_region(r, t):
    yield from require_true(r, "IsMultiRegionTrail", "the trail records one region only (IsMultiRegionTrail)")


@rule("DP-CloudTrailLogValidation", clause=9, severity="error", types=[TRAIL],
      title="CloudTrail log file validation is on",
      rationale="Clause 9: logs are protected from tampering. Digest files let us prove that no "
                "log file was changed or deleted after delivery.",
      remediation="cloudtrail.Trail(self, 'Trail', enable_file_validation=True)")
def cloudtrail_log_validation(r, t):
    yield from require_true(r, "EnableLogFileValidation",
                            "log file validation is off, so tampering with log files cannot be detected")


@rule("DP-CloudTrailKms", clause=9, severity="error", types=[TRAIL],
      title="CloudTrail log files are encrypted with a KMS key",
      rationale="Clause 9: logs accessible only privately by us. Without KMSKeyId log files get "
                "S3-managed encryption, which anyone who can read the bucket can decrypt.",
      remediation="cloudtrail.Trail(self, 'Trail', encryption_key=key)")
def cloudtrail_kms(r, t):
    yield from require_text(r, "KMSKeyId", "the trail's log files are not encrypted with a KMS key (no KMSKeyId)",
                            "a KMS key ARN")


@rule("DP-CloudTrailCloudWatchLogs", clause=9, severity="error", types=[TRAIL],
      title="CloudTrail delivers events to CloudWatch Logs",
      rationale="Clause 9: mechanisms monitor the logs and trigger alarms on suspicious actions; "
                "metric filters and alarms (clause 4) need the trail in a log group, which takes "
                "both CloudWatchLogsLogGroupArn and CloudWatchLogsRoleArn.",
      remediation="cloudtrail.Trail(self, 'Trail', send_to_cloud_watch_logs=True, "
                  "cloud_watch_log_group=log_group)")
def cloudtrail_cloudwatch_logs(r, t):
    yield from require_text(r, "CloudWatchLogsLogGroupArn",
                            "the trail does not deliver to CloudWatch Logs (no CloudWatchLogsLogGroupArn)",
                            "a log group ARN")
    yield from require_text(r, "CloudWatchLogsRoleArn",
                            "the trail cannot deliver to CloudWatch Logs (no CloudWatchLogsRoleArn)",
                            "a role ARN")


@rule("DP-CloudTrailLogging", clause=9, severity="error", types=[TRAIL],
      title="CloudTrail trails are logging",
      rationale="Clause 9: logs of all system activity. IsLogging false deploys a stopped trail "
                "that records nothing.",
      remediation="cloudtrail.Trail(...) logs by default; remove any override of IsLogging to false.")
def cloudtrail_logging(r, t):
    yield from require_true(r, "IsLogging", "the trail is stopped (IsLogging is not true)")


def _trail_bucket_outcomes(bucket) -> Iterator[Outcome]:
    path = "Properties/S3BucketName"
    for _, status in bucket.values("VersioningConfiguration.Status"):
        if isinstance(status, Unknown):
            yield unverifiable(path, f"cannot tell whether the trail's bucket {bucket.logical_id} is "
                                     f"versioned: {status.reason}")
        elif status != "Enabled":
            yield violation(path, f"the trail's bucket {bucket.logical_id} is not versioned, so log files "
                                  f"can be overwritten or deleted for good")
    for flag in PUBLIC_ACCESS_BLOCK_FLAGS:
        for _, value in bucket.values(f"PublicAccessBlockConfiguration.{flag}"):
            if isinstance(value, Unknown):
                yield unverifiable(path, f"cannot tell whether the trail's bucket {bucket.logical_id} "
                                         f"blocks public access: {value.reason}")
            elif as_bool(value) is not True:
                yield violation(path, f"the trail's bucket {bucket.logical_id} does not turn on all four "
                                      f"Block Public Access flags")


@rule("DP-CloudTrailBucketProtected", clause=9, severity="error", types=[TRAIL],
      title="CloudTrail writes to a versioned bucket that blocks public access",
      rationale="Clause 9: logs are accessible only privately and protected from tampering "
                "throughout their lifecycle. The trail's bucket (S3BucketName, followed by Ref or "
                "name to a bucket of the app) must be versioned and block all public access; a "
                "bucket outside the scanned templates cannot be vouched for.",
      remediation="bucket = s3.Bucket(self, 'TrailLogs', versioned=True, "
                  "block_public_access=s3.BlockPublicAccess.BLOCK_ALL, enforce_ssl=True, "
                  "encryption=s3.BucketEncryption.KMS, encryption_key=key)\n"
                  "cloudtrail.Trail(self, 'Trail', bucket=bucket)")
def cloudtrail_bucket_protected(r, t):
    outcomes: list = []
    for target in resource_targets(r, "S3BucketName", BUCKET):
        if isinstance(target, Unknown):
            outcomes.append(unverifiable("Properties/S3BucketName",
                                         f"cannot check the trail's bucket: {target.reason}"))
        else:
            outcomes.extend(_trail_bucket_outcomes(target))
    yield from outcomes


# ---------------------------------------------------------------- access logs at the edge

@rule("DP-ElbAccessLogs", clause=9, severity="error", types=[LOAD_BALANCER, CLASSIC_LB],
      title="Load balancers write access logs",
      rationale="Clause 9: logs of access to applications, to detect and investigate security "
                "events. Application and network load balancers (access_logs.s3.enabled) and "
                "classic ones (AccessLoggingPolicy) log nothing by default. Gateway load "
                "balancers have no access logs and are exempt.",
      remediation="alb.log_access_logs(log_bucket, prefix='alb')")
def elb_access_logs(r, t):
    if r.type == CLASSIC_LB:
        yield from require_true(r, "AccessLoggingPolicy.Enabled", "the load balancer writes no access logs")
        return
    types = [v for _, v in r.values("Type")]
    if types and all(v == "gateway" for v in types):
        return
    outcomes = []
    for value in entry_values(r, "LoadBalancerAttributes", "access_logs.s3.enabled"):
        if isinstance(value, Unknown):
            outcomes.append(unverifiable("Properties/LoadBalancerAttributes",
                                         f"cannot tell whether access logs are on: {value.reason}"))
        elif as_bool(value) is not True:
            outcomes.append(violation("Properties/LoadBalancerAttributes",
                                      "the load balancer writes no access logs (access_logs.s3.enabled)"))
    yield from outcomes


MANAGED_OVERRIDES = "AWS::ApiGatewayV2::ApiGatewayManagedOverrides"


@rule("DP-ApiGatewayAccessLogs", clause=9, severity="error",
      types=[REST_STAGE, REST_DEPLOYMENT, HTTP_STAGE, HTTP_API, MANAGED_OVERRIDES],
      title="API Gateway stages write access logs",
      rationale="Clause 9: logs of access to applications. A stage logs requests only with an "
                "access log destination (DestinationArn) and a Format, which API Gateway requires "
                "with it; absent, nothing is logged. This covers REST stages, HTTP and WebSocket "
                "API stages (AWS::ApiGatewayV2::Stage), the stage a REST deployment creates with "
                "StageName, and the $default stage of an HTTP API's quick create (Target), which "
                "logs only when an AWS::ApiGatewayV2::ApiGatewayManagedOverrides for the API sets "
                "Stage.AccessLogSettings (the overrides are judged with their API).",
      remediation="apigw.RestApi(self, 'Api', deploy_options=apigw.StageOptions("
                  "access_log_destination=apigw.LogGroupLogDestination(log_group), "
                  "access_log_format=apigw.AccessLogFormat.json_with_standard_fields(...)))\n"
                  "apigwv2.HttpStage(self, 'Stage', http_api=api, access_log_settings=...)  "
                  "# or CfnStage(access_log_settings=apigwv2.CfnStage.AccessLogSettingsProperty("
                  "destination_arn=log_group.log_group_arn, format='$context.requestId ...'))")
def api_gateway_access_logs(r, t):
    if r.type == REST_STAGE:
        yield from _access_log_outcomes(r, "AccessLogSetting", "the stage")
    elif r.type == HTTP_STAGE:
        yield from _access_log_outcomes(r, "AccessLogSettings", "the stage")
    elif r.type == REST_DEPLOYMENT:
        if any(is_set(v) for _, v in r.values("StageName")):
            yield from _access_log_outcomes(r, "StageDescription.AccessLogSetting",
                                            "the stage the deployment creates")
    elif r.type == HTTP_API and any(is_set(v) for _, v in r.values("Target")):
        yield from _quick_create_outcomes(r)


def _access_log_outcomes(r, base: str, what: str) -> Iterator[Outcome]:
    destination = list(require_text(r, f"{base}.DestinationArn",
                                    f"{what} writes no access logs (no access log destination)",
                                    "a log destination ARN"))
    yield from destination
    if not destination:
        yield from require_text(r, f"{base}.Format",
                                f"{what} names an access log destination but no Format, which API "
                                f"Gateway needs to write access logs", "a log format")


def _quick_create_outcomes(api) -> Iterator[Outcome]:
    """The $default stage of a quick-create HTTP API logs only through managed overrides."""
    message = ("quick create (Target) adds a $default stage that writes no access logs; set "
               "Stage.AccessLogSettings in an AWS::ApiGatewayV2::ApiGatewayManagedOverrides for "
               "the API, or define an AWS::ApiGatewayV2::Stage with access logs")
    overrides = [o for o in api.template.app.referrers(api, MANAGED_OVERRIDES)
                 if any(api.template.resource_of(v, HTTP_API) is api for _, v in o.values("ApiId"))]
    for override in overrides:
        outcomes = list(_access_log_outcomes(override, "Stage.AccessLogSettings",
                                             "the $default stage of the quick-create API"))
        if not outcomes:
            return
        if all(o.status == "unverifiable" for o in outcomes):
            for o in outcomes:
                yield unverifiable("Properties/Target", f"{o.message} (in {override.logical_id})")
            return
    yield violation("Properties/Target", message)


EXECUTION_LOG_LEVELS = ("ERROR", "INFO")


@rule("DP-ApiGatewayExecutionLogs", clause=9, severity="error", types=[REST_STAGE, REST_DEPLOYMENT],
      title="API Gateway REST stages write execution logs",
      rationale="Clause 9: logs to detect and investigate security events. Execution logs record "
                "what API Gateway did with each request: authorizer and IAM denials, throttling, "
                "integration errors. They are on only when the method setting for all methods "
                "(HttpMethod \"*\", ResourcePath \"/*\"; for a deployment that creates its "
                "stage, StageDescription.LoggingLevel) has LoggingLevel ERROR or INFO; absent, "
                "API Gateway's default is OFF. A per-method setting with LoggingLevel OFF turns "
                "them off again for that method and fails too; one that does not set "
                "LoggingLevel inherits the stage's. The account also needs its API Gateway "
                "CloudWatch role (AWS::ApiGateway::Account), which CDK's RestApi creates.",
      remediation="apigw.RestApi(self, 'Api', deploy_options=apigw.StageOptions("
                  "logging_level=apigw.MethodLoggingLevel.ERROR, data_trace_enabled=False))")
def api_gateway_execution_logs(r, t):
    outcomes: list = []
    for variant in stage_settings(r):
        if isinstance(variant, tuple):
            outcomes.append(unverifiable(variant[0], f"cannot tell whether the stage writes execution logs: "
                                                     f"{variant[1].reason}"))
        else:
            outcomes.extend(_execution_log_outcomes(variant))
    yield from outcomes


def _level(value: Any) -> str | None:
    text = as_text(value)
    return text.strip().upper() if text is not None else None


def _execution_log_outcomes(s) -> Iterator[Outcome]:
    for path, problem in s.problems:
        yield unverifiable(path, f"cannot tell whether the stage writes execution logs: {problem.reason}")
    if s.problems:
        return
    path, levels = s.default_values("LoggingLevel")
    for level in levels:
        if isinstance(level, Unknown):
            yield unverifiable(path, f"the stage's execution logging level cannot be verified: {level.reason}")
        elif level is ABSENT:
            if s.unsure:
                yield unverifiable(s.unsure[0][0], "no method setting for all methods turns execution "
                                                   f"logging on, unless this one does: {s.unsure[0][2].reason}")
            else:
                yield violation(path, "the stage writes no execution logs: API Gateway's default LoggingLevel "
                                      "is OFF; set LoggingLevel ERROR or INFO for all methods (HttpMethod "
                                      "\"*\", ResourcePath \"/*\")")
        elif _level(level) not in EXECUTION_LOG_LEVELS:
            yield violation(path, f"the stage writes no execution logs (LoggingLevel {as_text(level)}); "
                                  f"set ERROR or INFO")
    for entry_path, entry in s.overrides + [(p, e) for p, e, _ in s.unsure]:
        if "LoggingLevel" not in entry:
            continue
        for level in s.values(entry, "LoggingLevel"):
            if isinstance(level, Unknown):
                yield unverifiable(f"{entry_path}/LoggingLevel",
                                   f"the logging level of {s.label(entry)} cannot be verified: {level.reason}")
            elif level is not ABSENT and _level(level) not in EXECUTION_LOG_LEVELS:
                yield violation(f"{entry_path}/LoggingLevel",
                                f"the method setting for {s.label(entry)} turns execution logging off "
                                f"(LoggingLevel {as_text(level)}); remove it or set ERROR or INFO")


@rule("DP-CloudFrontLogging", clause=9, severity="warning", types=[DISTRIBUTION],
      title="CloudFront distributions write access logs",
      rationale="Clause 9: logs of access to applications. Standard logging (DistributionConfig."
                "Logging) or a CloudWatch Logs delivery source for the distribution both count. "
                "A warning: viewer logs of a public static site add little.",
      remediation="cloudfront.Distribution(self, 'Cdn', ..., enable_logging=True, log_bucket=log_bucket)")
def cloudfront_logging(r, t):
    if r.template.app.referrers(r, DELIVERY_SOURCE):
        return
    yield from require_text(r, "DistributionConfig.Logging.Bucket", "the distribution writes no access logs",
                            "a bucket domain name")


# ---------------------------------------------------------------- clause 4: the alert path

_WHOLE_TOKEN = LazyPattern(r"^⟨(\d+):([^.⟩]+)(?:\.([^⟩]+))?⟩$")
# The last part of an ARN, where tokens such as ⟨1:Topic.TopicName⟩ have colons of their own.
_LAST_ARN_PART = LazyPattern(r"(?:⟨[^⟩]*⟩|[^:⟨⟩])*$")


def _topic_of(alarm, value: Any):
    """The SNS topic an alarm action names: a Ref/GetAtt, or an ARN whose last part is a topic name
    or a reference to one. Returns a Resource, None (not a topic), or Unknown."""
    app = alarm.template.app
    if isinstance(value, Unknown):
        return value
    if isinstance(value, ResRef):
        return alarm.template.resource_of(value, TOPIC)
    text = as_text(value)
    if text is None:
        return None
    if text.startswith("arn:"):
        if ":sns:" not in text:
            return None  # an Auto Scaling, EC2 or Systems Manager action
        text = _LAST_ARN_PART.search(text).group(0)
    token = _WHOLE_TOKEN.match(text)
    if token:
        tpl = app.template(int(token.group(1)))
        target = tpl.resources.get(token.group(2)) if tpl else None
        return target if target is not None and target.type == TOPIC else None
    if is_literal(text):
        topic = follow(alarm, text, TOPIC)
        return topic if topic is not None else Unknown(f"topic {text} is not defined in the scanned templates")
    return Unknown("the alarm action cannot be followed to a topic")


def _alarm_alerts(alarm) -> bool | Unknown:
    """Does the alarm certainly notify an encrypted SNS topic?"""
    exists = alarm.deployed
    if exists is False:
        return False
    if exists is None:
        return Unknown(f"alarm {alarm.logical_id} is created only under a condition decided at deploy time")
    for _, enabled in alarm.values("ActionsEnabled"):
        if isinstance(enabled, Unknown):
            return enabled
        if as_bool(enabled) is False:
            return False
    doubt: Unknown | None = None
    for _, action in alarm.values("AlarmActions.*"):
        if action is ABSENT:
            continue
        topic = _topic_of(alarm, action)
        if isinstance(topic, Unknown):
            doubt = doubt or topic
            continue
        if topic is None or topic.deployed is False:
            continue
        keys = [v for _, v in topic.values("KmsMasterKeyId")]
        unknown = next((v for v in keys if isinstance(v, Unknown)), None)
        if topic.deployed is None:
            doubt = doubt or Unknown(f"topic {topic.logical_id} is created only under a condition")
        elif unknown is not None:
            doubt = doubt or unknown
        elif all(is_set(v) for v in keys):
            return True
    return doubt if doubt is not None else False


@rule("DP-SecurityAlertPath", clause=4, severity="error", types=list(DATA_STORES), scope="app",
      title="An app that holds data has a security alert path",
      rationale="Clause 4: tooling detects security incidents and escalates them. An app with a "
                "data store needs at least one CloudWatch alarm whose AlarmActions notify an "
                "encrypted SNS topic (alarm contents describe the data and the incident). The "
                "finding lands on the app's first data store.",
      remediation="alerts = sns.Topic(self, 'SecurityAlerts', master_key=key, enforce_ssl=True)\n"
                  "alarm.add_alarm_action(cw_actions.SnsAction(alerts))")
def security_alert_path(app):
    store = first_data_store(app)
    if store is None:
        return
    verdicts = [_alarm_alerts(a) for a in app.of_type(ALARM, COMPOSITE_ALARM)]
    if True in verdicts:
        return
    where = {"template": store.template, "logical_id": store.logical_id}
    doubt = next((v for v in verdicts if isinstance(v, Unknown)), None)
    if doubt is not None:
        yield unverifiable("", f"cannot verify that an alarm notifies an encrypted SNS topic: {doubt.reason}",
                           **where)
    else:
        yield violation("", "the app holds data but no CloudWatch alarm notifies an encrypted SNS topic",
                        **where)
