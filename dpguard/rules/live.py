"""Rules that only `dpguard audit` meets: facts of a live account that no template states
(checks that could not run, key ages, root credentials, detectors switched on). Their resource
types (`Live::...`) never occur in templates; live resources of ordinary types are judged by the
same rules as templates."""
from __future__ import annotations

import datetime as dt
from typing import Any

from ..engine.checks import first, leaves
from ..engine.findings import unverifiable, violation
from ..engine.template import LIVE
from ..engine.values import ABSENT, ResRef, Unknown, as_bool, as_int, as_text
from . import rule


@rule("DP-AuditComplete", clause=10, severity="error", types=["Live::Audit::Gap"],
      title="Every check of the live audit could run",
      rationale="Clause 10: an audit that could not read part of an account (access denied, a "
                "disabled region, throttling past retries) cannot call that part compliant.",
      remediation="Give the audit role the permissions of docs/audit-role-policy.json and audit again")
def audit_complete(r, t):
    reason = r.props.get("Reason")
    yield unverifiable("", str(reason) if reason else "part of the account could not be read")


# ---------------------------------------------------------------- clause 2: credentials

MAX_KEY_AGE_DAYS = 90  # clause 2 baseline: access keys are rotated at least quarterly
UNUSED_DAYS = 90  # clause 2: access is reviewed at least quarterly
SERVICE_LINKED_PATH = "/aws-service-role/"


def is_live(r) -> bool:
    """Was the resource read from an account by `dpguard audit`? A template cannot claim so."""
    return r.live_facts is not None


def listed_completely(tpl, rtype: str) -> bool:
    """Did the audit read every resource of `rtype` in this live template's account and region?
    Only then does a resource missing from it mean missing from the account."""
    if not tpl.live:
        return False
    facts = tpl.metadata.get(LIVE)
    return isinstance(facts, dict) and rtype in (facts.get("complete") or ())


def today(t) -> dt.date:
    """The audit's day (Config.today), so that ages are reproducible in tests and reports."""
    value = getattr(getattr(t.app, "config", None), "today", None)
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip()[:10])
        except ValueError:
            pass
    return dt.date.today()


def day_of(value: Any) -> dt.date | Unknown | Any:
    """An API timestamp as a date; ABSENT and Unknown pass through."""
    if value is ABSENT or isinstance(value, Unknown):
        return value
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = as_text(value)
    try:
        return dt.datetime.fromisoformat(str(text).strip().replace("Z", "+00:00")).date()
    except ValueError:
        try:
            return dt.date.fromisoformat(str(text).strip()[:10])
        except ValueError:
            return Unknown(f"{text!r} is not a date")


def dated(r, path: str) -> tuple[str, Any]:
    """(property path, date / ABSENT / Unknown) of one timestamp property."""
    prop_path, value = leaves(r, path)[0]
    return prop_path, day_of(value)


def key_status(r) -> Any:
    """"Active", "Inactive" or Unknown; CloudFormation's default is Active."""
    value = first(r, "Status")
    if value is ABSENT:
        return "Active"
    if isinstance(value, Unknown):
        return value
    return (as_text(value) or "").strip().capitalize()


def key_label(r) -> str:
    key_id = first(r, "AccessKeyId")
    user = first(r, "UserName")
    target = r.template.resource_of(user) if isinstance(user, ResRef) else None
    name = first(target, "UserName") if target is not None else user
    label = f"access key {key_id}" if isinstance(key_id, str) else "the access key"
    return f"{label} of {name}" if isinstance(name, str) else label


@rule("DP-IamAccessKeyAge", clause=2, severity="error", types=["AWS::IAM::AccessKey"],
      title="Active IAM access keys are younger than 90 days",
      rationale="Clause 2: baselining so that only the required accounts have access, reviewed at "
                "least quarterly. An access key that has lived longer than a quarter has outlived "
                "a review and has had time to be copied into scripts, laptops and CI settings; "
                "keys are rotated within 90 days, or better replaced by roles. Judged on keys "
                "read from a live account only (templates carry no creation date); inactive keys "
                "are left to DP-IamNoAccessKeys.",
      remediation="Rotate the key: aws iam create-access-key --user-name USER, move the workload to "
                  "the new key, then aws iam update-access-key --user-name USER --access-key-id OLD "
                  "--status Inactive and aws iam delete-access-key --user-name USER --access-key-id OLD.\n"
                  "Better: give the workload a role (CI: OIDC federation) and delete the user's keys.")
def iam_access_key_age(r, t):
    if not is_live(r):
        return
    path, created = dated(r, "CreateDate")
    if isinstance(created, Unknown):
        yield unverifiable(path, f"the age of {key_label(r)} cannot be read: {created.reason}")
        return
    if created is ABSENT:
        yield unverifiable(path, f"the creation date of {key_label(r)} is not known")
        return
    age = (today(t) - created).days
    if age <= MAX_KEY_AGE_DAYS:
        return
    status = key_status(r)
    message = (f"{key_label(r)} is {age} days old (created {created.isoformat()}); "
               f"rotate keys within {MAX_KEY_AGE_DAYS} days")
    if isinstance(status, Unknown):
        yield unverifiable("Properties/Status",
                           f"{message}, if it is active (its status cannot be read: {status.reason})")
    elif status == "Active":
        yield violation(path, message)


@rule("DP-RootAccessKeys", clause=2, severity="error", types=["Live::IAM::Account"],
      title="The root user has no access keys and signs in with MFA",
      rationale="Clause 2: no generic, shared or default credentials. The root user is the "
                "account's default identity and cannot be limited by IAM policies: access keys "
                "for it are a permanent, all-powerful credential, and a root password without MFA "
                "is one phished password away from the whole account. Accounts whose root "
                "password was removed (centralized root access of AWS Organizations, "
                "AccountPasswordPresent 0) need no root MFA.",
      remediation="Signed in as root: Security credentials > Access keys > Delete (or, in an "
                  "organization: aws iam enable-organizations-root-credentials-management, then "
                  "aws sts assume-root ... and aws iam delete-access-key).\n"
                  "Root MFA: Security credentials > Multi-factor authentication > Assign MFA device "
                  "(a passkey or hardware key).")
def root_access_keys(r, t):
    for path, keys in leaves(r, "AccountAccessKeysPresent"):
        if isinstance(keys, Unknown):
            yield unverifiable(path, f"whether the root user has access keys cannot be read: {keys.reason}")
        elif keys is ABSENT or as_int(keys) is None:
            yield unverifiable(path, "the account summary does not say whether the root user has access keys")
        elif as_int(keys) > 0:
            yield violation(path, "the root user has access keys")
    password = first(r, "AccountPasswordPresent")
    if as_int(password) == 0:
        return  # no root password (centralized root access): nothing to protect with MFA
    for path, mfa in leaves(r, "AccountMFAEnabled"):
        if isinstance(mfa, Unknown):
            yield unverifiable(path, f"whether the root user has MFA cannot be read: {mfa.reason}")
        elif mfa is ABSENT or as_int(mfa) is None:
            yield unverifiable(path, "the account summary does not say whether the root user has MFA")
        elif as_int(mfa) != 1:
            if isinstance(password, Unknown):
                yield unverifiable(path, "the root user has no MFA, if it has a password (cannot verify: "
                                         f"{password.reason})")
            else:
                yield violation(path, "the root user signs in without MFA")


def _activity(dates: list, created: Any, now: dt.date) -> tuple[str, str | None]:
    """Judge a principal's last activity: ("used", None), ("unused", message) or
    ("unknown", reason). `dates` are the dates of each way it can act (ABSENT = never)."""
    known = [d for d in dates if isinstance(d, dt.date)]
    latest = max(known) if known else None
    if latest is not None and (now - latest).days <= UNUSED_DAYS:
        return "used", None
    unknown = next((d for d in dates if isinstance(d, Unknown)), None)
    if unknown is not None:
        return "unknown", unknown.reason
    if latest is not None:
        return "unused", f"last used {latest.isoformat()}, {(now - latest).days} days ago"
    since = f" since it was created on {created.isoformat()}" if isinstance(created, dt.date) else ""
    return "unused", f"never used{since}"


@rule("DP-PrincipalUnused", clause=2, severity="warning",
      types=["AWS::IAM::User", "AWS::IAM::Role", "AWS::IAM::AccessKey"],
      title="IAM users, roles and access keys unused for 90 days are reviewed and removed",
      rationale="Clause 2: the list of people and services with access is reviewed at least "
                "quarterly and accounts that no longer need access are removed. This is that "
                "review's list: users with no console sign-in and no key use, roles not assumed, "
                "and active keys not used, in the last 90 days. Principals younger than 90 days, "
                "inactive keys and AWS service-linked roles (created, used and removed by AWS "
                "services) are not listed. Judged on principals read from a live account only.",
      remediation="Confirm with the owner (IAM console > Access management > Last activity), then "
                  "remove: aws iam update-access-key --status Inactive and aws iam delete-access-key; "
                  "aws iam delete-login-profile and aws iam delete-user; for roles, detach their "
                  "policies and aws iam delete-role --role-name ROLE.")
def principal_unused(r, t):
    if not is_live(r):
        return
    now = today(t)
    path, created = dated(r, "CreateDate")
    if isinstance(created, dt.date) and (now - created).days <= UNUSED_DAYS:
        return
    if r.type == "AWS::IAM::Role":
        role_path = first(r, "Path")
        if isinstance(role_path, str) and role_path.startswith(SERVICE_LINKED_PATH):
            return
        where, last = dated(r, "RoleLastUsed.LastUsedDate")
        verdict, detail = _activity([last], created, now)
        what = f"the role {first(r, 'RoleName')}"
    elif r.type == "AWS::IAM::User":
        where, password = dated(r, "PasswordLastUsed")
        dates = [password]
        for key in t.referrers(r.logical_id, "AWS::IAM::AccessKey"):
            dates.append(dated(key, "LastUsedDate")[1])
        verdict, detail = _activity(dates, created, now)
        what = f"the user {first(r, 'UserName')} (console and access keys)"
    else:
        status = key_status(r)
        if status == "Inactive":
            return
        where, last = dated(r, "LastUsedDate")
        verdict, detail = _activity([last], created, now)
        if verdict == "unused" and isinstance(status, Unknown):
            verdict, detail = "unknown", status.reason
        what = key_label(r)
    if verdict == "unused":
        yield violation(where, f"{what} was {detail}: review it and remove it if it is no longer needed")
    elif verdict == "unknown":
        yield unverifiable(where, f"whether {what} was used in the last {UNUSED_DAYS} days cannot be read: {detail}")


# ---------------------------------------------------------------- clause 4: detection

@rule("DP-GuardDutyEnabled", clause=4, severity="error", types=["Live::GuardDuty::Detector"],
      title="GuardDuty is enabled in every audited region",
      rationale="Clause 4: tooling is in place to detect security incidents. GuardDuty is the "
                "detector whose findings the baseline routes to the security alerts topic; a "
                "region without an enabled detector is a region where credential misuse, crypto "
                "mining or data exfiltration goes unseen. GuardDuty is regional, so every audited "
                "region needs its own detector.",
      remediation="aws guardduty create-detector --enable --region REGION "
                  "(a suspended one: aws guardduty update-detector --detector-id ID --enable), or "
                  "deploy the baseline audit stack in the region; with AWS Organizations, enable it "
                  "for all accounts from the delegated administrator.")
def guardduty_enabled(r, t):
    region = (r.live_facts or {}).get("region") or "this region"
    for path, status in leaves(r, "Status"):
        if isinstance(status, Unknown):
            yield unverifiable(path, f"whether GuardDuty is enabled in {region} cannot be read: {status.reason}")
        elif status is ABSENT:
            yield violation(path, f"GuardDuty has no detector in {region}")
        elif (as_text(status) or "").strip().upper() != "ENABLED":
            yield violation(path, f"the GuardDuty detector in {region} is {status}, not ENABLED")


# ---------------------------------------------------------------- clause 1: the account's S3 guard

ACCOUNT_BLOCK_FLAGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")


@rule("DP-S3AccountPublicAccessBlock", clause=1, severity="error", types=["Live::S3::AccountPublicAccessBlock"],
      title="The account blocks public access to S3 for every bucket",
      rationale="Clause 1: data is available only to authenticated users. The account-level Block "
                "Public Access covers every bucket, also those created later outside the templates.",
      remediation="aws s3control put-public-access-block --account-id ACCOUNT --public-access-block-configuration "
                  "BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true")
def s3_account_public_access_block(r, t):
    for flag in ACCOUNT_BLOCK_FLAGS:
        for path, value in leaves(r, flag):
            if isinstance(value, Unknown):
                yield unverifiable(path, f"cannot tell whether the account's {flag} is on: {value.reason}")
            elif value is ABSENT or as_bool(value) is not True:
                yield violation(path, f"the account's S3 Block Public Access has {flag} off")
