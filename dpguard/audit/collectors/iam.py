"""IAM (global): users, groups, roles and customer managed policies as CloudFormation resources,
with their inline policies, attached managed policies and trust policies, so that the least-
privilege and credential rules judge them; each user's console password and access keys; the
last use of every principal and key; and the root user's credentials (`Live::IAM::Account`).

Users, groups, roles and policies come from iam:GetAccountAuthorizationDetails: one paginated
listing (up to 1,000 entities a page) that carries every document, attachment and RoleLastUsed,
instead of four to six calls per principal, which IAM's low request rate makes slow in accounts
with hundreds of roles. Only customer managed policies are read as documents (filter
LocalManagedPolicy): AWS managed policies are referred to by ARN, judged by name as in templates
(DP-IamNoAdminManagedPolicy), never statement by statement: AWS writes them for whole services
(AWSLambdaVPCAccessExecutionRole, the service-linked role policies) and the statement rules
would flag AWS's own documents that nobody in the account can change."""
from __future__ import annotations

import json
import urllib.parse
from datetime import date, datetime
from typing import Any

from ..clients import Clients, Unreadable, listing, read
from ..live import LiveTemplate, ref, unreadable
from . import GLOBAL, collector

DETAIL_KEYS = ("UserDetailList", "GroupDetailList", "RoleDetailList", "Policies")


@collector("iam", scope=GLOBAL)
def collect(clients: Clients, region: str, live: LiveTemplate) -> None:
    iam = clients("iam", region)
    _account(iam, region, live)
    details = read(lambda: authorization_details(iam))
    if isinstance(details, Unreadable):
        live.gap(f"IAM users, groups, roles and policies could not be listed: {details.reason}")
        return
    policies = {}  # customer managed policy ARN -> logical id
    for policy in details["Policies"]:
        name = policy.get("PolicyName") or policy["Arn"].rsplit("/", 1)[-1]
        document = next((v.get("Document") for v in policy.get("PolicyVersionList", []) if v.get("IsDefaultVersion")),
                        None)
        props = {"ManagedPolicyName": name, "Path": policy.get("Path", "/"),
                 "PolicyDocument": document_of(document) if document is not None
                 else unreadable(f"the default version of {policy['Arn']} was not in the answer")}
        if policy.get("Description"):
            props["Description"] = policy["Description"]
        policies[policy["Arn"]] = live.add(name, "AWS::IAM::ManagedPolicy", props, arn=policy["Arn"])

    def attached(entity: dict) -> list:
        return [ref(policies[p["PolicyArn"]]) if p["PolicyArn"] in policies else p["PolicyArn"]
                for p in entity.get("AttachedManagedPolicies", [])]

    groups = {}  # group name -> logical id
    for group in details["GroupDetailList"]:
        props = {"GroupName": group["GroupName"], "Path": group.get("Path", "/"),
                 "Policies": inline(group.get("GroupPolicyList", [])), "ManagedPolicyArns": attached(group)}
        groups[group["GroupName"]] = live.add(group["GroupName"], "AWS::IAM::Group", _compact(props), arn=group["Arn"])

    for role in details["RoleDetailList"]:
        props = {"RoleName": role["RoleName"], "Path": role.get("Path", "/"),
                 "AssumeRolePolicyDocument": document_of(role.get("AssumeRolePolicyDocument")),
                 "Policies": inline(role.get("RolePolicyList", [])), "ManagedPolicyArns": attached(role),
                 "PermissionsBoundary": (role.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn"),
                 "Tags": role.get("Tags") or None,
                 # live facts for DP-PrincipalUnused: never used = {} (IAM tracks the last 400 days)
                 "CreateDate": timestamp(role.get("CreateDate")),
                 "RoleLastUsed": {k: timestamp(v) for k, v in (role.get("RoleLastUsed") or {}).items()}}
        live.add(role["RoleName"], "AWS::IAM::Role", _compact(props), arn=role["Arn"])

    password_use = _password_last_used(iam)
    for user in details["UserDetailList"]:
        _user(iam, live, user, attached(user), groups, password_use)


def authorization_details(iam: Any) -> dict[str, list]:
    """Every page of GetAccountAuthorizationDetails, merged (each page carries all four lists)."""
    merged: dict[str, list] = {key: [] for key in DETAIL_KEYS}
    paginator = iam.get_paginator("get_account_authorization_details")
    for page in paginator.paginate(Filter=["User", "Group", "Role", "LocalManagedPolicy"]):
        for key in DETAIL_KEYS:
            merged[key].extend(page.get(key, []))
    return merged


def _user(iam: Any, live: LiveTemplate, user: dict, managed: list, groups: dict,
          password_use: dict | Unreadable) -> None:
    name = user["UserName"]
    login = read(lambda: iam.get_login_profile(UserName=name)["LoginProfile"], missing=("NoSuchEntity",))
    if isinstance(password_use, Unreadable):
        last_password = unreadable(password_use.reason)
    else:
        last_password = timestamp(password_use.get(name))
    props = {"UserName": name, "Path": user.get("Path", "/"),
             "Policies": inline(user.get("UserPolicyList", [])), "ManagedPolicyArns": managed,
             "Groups": [ref(groups[g]) if g in groups else g for g in user.get("GroupList", [])],
             "PermissionsBoundary": (user.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn"),
             "Tags": user.get("Tags") or None,
             # A console password: its value is never known to anyone but the user.
             "LoginProfile": unreadable(login.reason) if isinstance(login, Unreadable) else
             None if login is None else {"PasswordResetRequired": bool(login.get("PasswordResetRequired"))},
             # live facts for DP-PrincipalUnused
             "CreateDate": timestamp(user.get("CreateDate")), "PasswordLastUsed": last_password}
    logical_id = live.add(name, "AWS::IAM::User", _compact(props), arn=user["Arn"])
    keys = listing(iam, "list_access_keys", "AccessKeyMetadata", UserName=name)
    if isinstance(keys, Unreadable):
        live.gap(f"the access keys of IAM user {name} could not be listed: {keys.reason}")
        return
    for number, key in enumerate(keys, 1):
        key_id = key["AccessKeyId"]
        used = read(lambda: iam.get_access_key_last_used(AccessKeyId=key_id)["AccessKeyLastUsed"])
        last_used = unreadable(used.reason) if isinstance(used, Unreadable) else timestamp(used.get("LastUsedDate"))
        key_props = {"UserName": ref(logical_id), "Status": key.get("Status", "Active"),
                     # live facts for DP-IamAccessKeyAge and DP-PrincipalUnused
                     "AccessKeyId": key_id, "CreateDate": timestamp(key.get("CreateDate")), "LastUsedDate": last_used}
        live.add(f"{name} access key {number}", "AWS::IAM::AccessKey", _compact(key_props), arn=user["Arn"])


def _password_last_used(iam: Any) -> dict | Unreadable:
    """User name -> PasswordLastUsed (ListUsers; absent when the password was never used)."""
    users = listing(iam, "list_users", "Users")
    if isinstance(users, Unreadable):
        return users
    return {u["UserName"]: u["PasswordLastUsed"] for u in users if u.get("PasswordLastUsed")}


def _account(iam: Any, region: str, live: LiveTemplate) -> None:
    """The root user's credentials, from the account summary."""
    summary = read(lambda: iam.get_account_summary()["SummaryMap"])
    keys = ("AccountAccessKeysPresent", "AccountMFAEnabled", "AccountPasswordPresent")
    if isinstance(summary, Unreadable):
        props = {k: unreadable(summary.reason) for k in keys}
    else:
        props = {k: summary[k] for k in keys if k in summary}
    live.add("root account", "Live::IAM::Account", props, arn=f"arn:{partition(region)}:iam::{live.account}:root")


def inline(policies: list[dict]) -> list[dict]:
    return [{"PolicyName": p["PolicyName"], "PolicyDocument": document_of(p.get("PolicyDocument"))} for p in policies]


def document_of(document: Any) -> Any:
    """A policy document as a mapping. botocore decodes IAM's URL-encoded JSON itself; a string
    that slipped through is decoded here, and one that is not JSON is left for the engine to call
    unreadable."""
    if isinstance(document, str):
        for text in (document, urllib.parse.unquote(document)):
            try:
                return json.loads(text)
            except ValueError:
                continue
        return unreadable("the policy document is not JSON")
    return document if document is not None else unreadable("the answer held no policy document")


def timestamp(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return value


def partition(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def _compact(props: dict) -> dict:
    """Leave out what is not configured (None, empty lists) as a template would."""
    return {k: v for k, v in props.items() if v is not None and v != [] and v != ""}
