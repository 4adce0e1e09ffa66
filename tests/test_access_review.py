"""`dpguard access-review` (clause 2: the quarterly review of who can reach private data) under
moto: principals with their last use, credentials and policies; who can decrypt with each
customer-managed KMS key (key policy, grants, and the account root expanded to the principals
whose IAM policies allow kms:Decrypt); flags with their reasons; gaps where AWS would not answer;
the four output formats and the command's exit codes and one-line errors.

Dates: moto stamps every principal and key with the moment it was made, so the review is judged
on a later day (REVIEW_DAY); last uses are written into the API answers with botocore events on
the very clients the review uses."""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
from typing import Any

import pytest

import boto3
import moto
import botocore.exceptions  # noqa: E402

from dpguard.audit.access_review import CAN, MAY, build_review, parse_principal, run_review  # noqa: E402
from dpguard.audit.clients import Clients  # noqa: E402
from dpguard.cli import main  # noqa: E402
from dpguard.output.access_review_writers import render_review, safe_cell  # noqa: E402

HOME = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account
TODAY = dt.date.today()
REVIEW_DAY = TODAY + dt.timedelta(days=200)  # everything made today is 200 days old
RECENT = dt.datetime.combine(REVIEW_DAY - dt.timedelta(days=10), dt.time(12), dt.timezone.utc)
LONG_AGO = dt.datetime.combine(REVIEW_DAY - dt.timedelta(days=150), dt.time(12), dt.timezone.utc)

LAMBDA_TRUST = {"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}


def doc(*statements: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def arn(kind: str, name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:{kind}/{name}"


DECRYPT_ANY = {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*"}


def after(clients: Clients, service: str, operation: str, change) -> None:
    """Rewrite the parsed answer of `operation` on the review's own client."""
    client = clients(service, HOME)
    service_id = client.meta.service_model.service_id.hyphenize()
    client.meta.events.register(f"after-call.{service_id}.{operation}", lambda parsed, **_: change(parsed))


def fail_with(clients: Clients, service: str, operation: str, code: str = "AccessDenied") -> None:
    def handler(**_: Any) -> None:
        raise botocore.exceptions.ClientError({"Error": {"Code": code, "Message": f"injected {code}"}}, operation)
    client = clients(service, HOME)
    client.meta.events.register(f"before-call.{client.meta.service_model.service_id.hyphenize()}.{operation}",
                                handler)


def used(clients: Clients, roles: dict[str, dt.datetime] = {}, passwords: dict[str, dt.datetime] = {},  # noqa: B006
         keys: dict[str, dt.datetime] = {}) -> None:  # noqa: B006
    """Last uses, as IAM would report them: role sessions, console sign-ins, access keys (by user)."""
    def role_use(parsed: dict) -> None:
        for role in parsed.get("RoleDetailList", []):
            if role["RoleName"] in roles:
                role["RoleLastUsed"] = {"LastUsedDate": roles[role["RoleName"]], "Region": HOME}

    def password_use(parsed: dict) -> None:
        for user in parsed.get("Users", []):
            if user["UserName"] in passwords:
                user["PasswordLastUsed"] = passwords[user["UserName"]]

    def key_use(parsed: dict) -> None:
        if parsed.get("UserName") in keys:
            parsed["AccessKeyLastUsed"] = {"LastUsedDate": keys[parsed["UserName"]], "ServiceName": "s3",
                                           "Region": HOME}
    after(clients, "iam", "GetAccountAuthorizationDetails", role_use)
    after(clients, "iam", "ListUsers", password_use)
    after(clients, "iam", "GetAccessKeyLastUsed", key_use)


def seed(session) -> dict:
    """An account with one of every case the review must tell apart."""
    iam, kms = session.client("iam"), session.client("kms")
    trust = json.dumps(LAMBDA_TRUST)
    for role in ("reader", "etl", "idle", "stale-reader", "admin", "blocked", "granted"):
        iam.create_role(RoleName=role, AssumeRolePolicyDocument=trust)
    iam.attach_role_policy(RoleName="admin", PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
    iam.put_role_policy(RoleName="blocked", PolicyName="decrypt-all", PolicyDocument=doc(DECRYPT_ANY))
    iam.create_service_linked_role(AWSServiceName="elasticbeanstalk.amazonaws.com")

    policy = doc(
        {"Sid": "Root", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
         "Action": "kms:*", "Resource": "*"},
        {"Sid": "Reader", "Effect": "Allow", "Principal": {"AWS": arn("role", "reader")},
         "Action": ["kms:Decrypt", "kms:DescribeKey"], "Resource": "*"},
        {"Sid": "EtlThroughS3", "Effect": "Allow", "Principal": {"AWS": arn("role", "etl")},
         "Action": "kms:Decrypt", "Resource": "*",
         "Condition": {"StringEquals": {"kms:ViaService": f"s3.{HOME}.amazonaws.com"}}},
        {"Sid": "NeverBlocked", "Effect": "Deny", "Principal": {"AWS": arn("role", "blocked")},
         "Action": ["kms:Decrypt", "kms:ReEncrypt*"], "Resource": "*"})
    key = kms.create_key(Description="customer records", Policy=policy)["KeyMetadata"]
    kms.create_alias(AliasName="alias/customers", TargetKeyId=key["KeyId"])
    kms.tag_resource(KeyId=key["KeyId"], Tags=[{"TagKey": "data-classification", "TagValue": "confidential"}])
    kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=arn("role", "granted"), Operations=["Decrypt"],
                     Name="etl-batch")
    kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=arn("role", "idle"), Operations=["Encrypt"])
    iam.put_role_policy(RoleName="stale-reader", PolicyName="read-customers",
                        PolicyDocument=doc({"Effect": "Allow", "Action": "kms:Decrypt", "Resource": key["Arn"]}))
    open_key = kms.create_key(Description="scratch", Policy=doc(
        {"Sid": "Root", "Effect": "Allow", "Principal": {"AWS": ACCOUNT}, "Action": "kms:*", "Resource": "*"},
        {"Sid": "Anyone", "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "kms:Decrypt", "Resource": "*"}))
    kms.create_alias(AliasName="alias/scratch", TargetKeyId=open_key["KeyMetadata"]["KeyId"])

    # alice: console with MFA, decrypts everything through an inline policy
    iam.create_user(UserName="alice")
    iam.create_login_profile(UserName="alice", Password="Correct-Horse-Battery-9")
    device = iam.create_virtual_mfa_device(VirtualMFADeviceName="alice")["VirtualMFADevice"]["SerialNumber"]
    iam.enable_mfa_device(UserName="alice", SerialNumber=device, AuthenticationCode1="123456",
                          AuthenticationCode2="654321")
    iam.put_user_policy(UserName="alice", PolicyName="decrypt-all", PolicyDocument=doc(DECRYPT_ANY))
    iam.create_access_key(UserName="alice")
    # bob: console without MFA, a key never used, never signed in
    iam.create_user(UserName="bob")
    iam.create_login_profile(UserName="bob", Password="Correct-Horse-Battery-9")
    iam.create_access_key(UserName="bob")
    # carol: admin-equivalent through her group (NotAction), which also lets her decrypt
    iam.create_group(GroupName="ops")
    iam.put_group_policy(GroupName="ops", PolicyName="power", PolicyDocument=doc(
        {"Effect": "Allow", "NotAction": ["iam:*", "organizations:*"], "Resource": "*"}))
    iam.create_user(UserName="carol")
    iam.add_user_to_group(GroupName="ops", UserName="carol")
    iam.create_access_key(UserName="carol")
    # dave: may decrypt, under a condition; erin: allowed, but a conditional Deny may apply
    iam.create_user(UserName="dave")
    iam.put_user_policy(UserName="dave", PolicyName="decrypt-with-mfa", PolicyDocument=doc(
        dict(DECRYPT_ANY, Condition={"Bool": {"aws:MultiFactorAuthPresent": "true"}})))
    iam.create_user(UserName="erin")
    iam.put_user_policy(UserName="erin", PolicyName="decrypt", PolicyDocument=doc(
        DECRYPT_ANY, {"Effect": "Deny", "Action": "kms:*", "Resource": "*",
                      "Condition": {"IpAddressIfExists": {"aws:SourceIp": "10.0.0.0/8"}}}))
    # frank: may decrypt another key only
    iam.create_user(UserName="frank")
    iam.put_user_policy(UserName="frank", PolicyName="other-key", PolicyDocument=doc(
        {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": f"arn:aws:kms:{HOME}:{ACCOUNT}:key/other"}))
    for user in ("dave", "erin", "frank"):
        iam.create_access_key(UserName=user)
    return {"customers": key["Arn"], "scratch": open_key["KeyMetadata"]["Arn"]}


def review_of(session, today=REVIEW_DAY, setup=None):
    clients = Clients(session)
    used(clients, roles={"reader": RECENT, "etl": RECENT, "admin": RECENT, "blocked": RECENT, "granted": RECENT,
                         "stale-reader": LONG_AGO},
         passwords={"alice": RECENT}, keys={"alice": RECENT, "carol": RECENT, "dave": RECENT, "erin": RECENT,
                                            "frank": RECENT})
    if setup:
        setup(clients)
    return run_review([clients], [HOME], today=today)


def principal(review, name: str):
    return next(p for p in review.principals if p.name == name)


def key_of(review, alias: str):
    return next(k for k in review.keys if alias in k.aliases)


def decrypters(key) -> dict[str, str]:
    return {d.name: d.access for d in key.decrypters}


def flags(review) -> set[tuple[str, str]]:
    return {(f.name, f.code) for f in review.flags}


# ------------------------------------------------------------------------------ the review

def test_principals_are_listed_with_their_credentials_and_policies(session):
    seed(session)
    review, _ = review_of(session)
    names = {p.name for p in review.principals}
    assert {"reader", "etl", "idle", "stale-reader", "admin", "blocked", "granted", "alice", "bob", "carol", "dave",
            "erin", "frank"} <= names
    alice = principal(review, "alice")
    assert alice.type == "user" and alice.arn == arn("user", "alice") and alice.account == ACCOUNT
    assert alice.created == TODAY.isoformat()
    assert alice.console_password is True and alice.mfa is True
    assert alice.inline_policies == ["decrypt-all"]
    assert alice.last_used == RECENT.date().isoformat() and alice.days_since_use == 10
    assert alice.activity == "used"
    [key] = alice.access_keys
    assert key.status == "Active" and key.age_days == 200 and key.last_used == RECENT.date().isoformat()
    bob = principal(review, "bob")
    assert bob.console_password is True and bob.mfa is False and bob.last_used is None
    assert bob.activity == "unused" and bob.access_keys[0].last_used is None
    carol = principal(review, "carol")
    assert carol.groups == ["ops"] and carol.console_password is False and carol.mfa is None
    admin = principal(review, "admin")
    assert admin.managed_policies == ["AdministratorAccess"] and admin.console_password is None
    linked = next(p for p in review.principals if p.service_linked)
    assert linked.type == "role" and linked.path.startswith("/aws-service-role/") and not linked.flags
    assert review.accounts == [{"account": ACCOUNT, "regions": [HOME], "users": 6, "roles": 8}]
    assert not review.gaps


def test_who_can_decrypt_each_key(session):
    arns = seed(session)
    review, _ = review_of(session)
    customers = key_of(review, "alias/customers")
    assert customers.arn == arns["customers"] and customers.tags == {"data-classification": "confidential"}
    found = decrypters(customers)
    # the account root: any principal of the account whose IAM policy allows it
    root = next(d for d in customers.decrypters if d.type == "account")
    assert root.principal == f"arn:aws:iam::{ACCOUNT}:root" and "IAM policy allows it" in root.note
    # named by the key policy, by a grant, by IAM policies through the root delegation
    assert found["reader"] == CAN and found["granted"] == CAN
    assert found["alice"] == CAN and found["stale-reader"] == CAN and found["admin"] == CAN
    assert found["carol"] == CAN  # NotAction iam:* also allows kms:Decrypt
    # conditions: never dropped, listed as conditional with the reason
    assert found["etl"] == MAY and found["dave"] == MAY and found["erin"] == MAY
    etl = next(d for d in customers.decrypters if d.name == "etl")
    assert any("kms:ViaService" in c for c in etl.conditions)
    erin = next(d for d in customers.decrypters if d.name == "erin")
    assert any("Deny" in c for c in erin.conditions)
    # an unconditional Deny removes a principal, and says so
    assert "blocked" not in found
    assert [d["principal"] for d in customers.denied] == [arn("role", "blocked")]
    # no access: IAM policy on another key, no policy at all, a grant without Decrypt
    assert "frank" not in found and "bob" not in found and "idle" not in found
    granted = next(d for d in customers.decrypters if d.name == "granted")
    assert any("grant" in v and "etl-batch" in v for v in granted.via)
    # the principals know what they can decrypt
    assert principal(review, "alice").can_decrypt == [{"key": arns["customers"], "access": CAN},
                                                       {"key": arns["scratch"], "access": CAN}]
    assert principal(review, "dave").can_decrypt[0] == {"key": arns["customers"], "access": MAY}
    assert {c["key"] for c in principal(review, "admin").can_decrypt} == {arns["customers"], arns["scratch"]}
    # a key any principal may use
    scratch = key_of(review, "alias/scratch")
    assert decrypters(scratch)["anyone"] == CAN


def test_flags_name_what_to_remove_or_fix(session):
    arns = seed(session)
    review, result = review_of(session)
    got = flags(review)
    expected = {
        ("idle", "unused"),
        ("stale-reader", "unused"), ("stale-reader", "unused-decrypter"),
        ("bob", "unused"), ("bob", "access-key-old"), ("bob", "access-key-never-used"),
        ("bob", "console-without-mfa"),
        ("alice", "access-key-old"), ("carol", "access-key-old"), ("dave", "access-key-old"),
        ("erin", "access-key-old"), ("frank", "access-key-old"),
        ("admin", "admin-equivalent"), ("carol", "admin-equivalent"),
        ("anyone", "key-open-to-anyone"),
    }
    assert got == expected
    stale = next(f for f in review.flags if f.name == "stale-reader" and f.code == "unused-decrypter")
    assert "alias/customers" in stale.reason and "150 days ago" in stale.reason
    assert stale.principal == arn("role", "stale-reader") and stale.fix
    carol = next(f for f in review.flags if f.name == "carol" and f.code == "admin-equivalent")
    assert "group ops" in carol.reason and "NotAction" in carol.reason
    open_key = next(f for f in review.flags if f.code == "key-open-to-anyone")
    assert open_key.subject == arns["scratch"]
    assert not any(p.flags for p in review.principals if p.service_linked)
    # "unused" is the same verdict as the audit's DP-PrincipalUnused on the same day
    unused_rule = {f.arn for f in result.report.findings if f.rule_id == "DP-PrincipalUnused"
                   and f.resource_type in ("AWS::IAM::User", "AWS::IAM::Role") and f.fails}
    assert unused_rule == {f.principal for f in review.flags if f.code == "unused"}
    old_rule = {f.message.split()[2] for f in result.report.findings if f.rule_id == "DP-IamAccessKeyAge" and f.fails}
    assert old_rule == {f.subject for f in review.flags if f.code == "access-key-old"}
    assert review.flagged and not review.incomplete


def test_the_same_account_reviewed_on_the_day_it_was_made(session):
    arns = seed(session)
    _, result = review_of(session)
    review = build_review(result.app, today=TODAY, extras=None)  # no extras: MFA and grants are gaps
    got = flags(review)
    assert not {code for _, code in got} & {"unused", "access-key-old", "unused-decrypter", "access-key-unused"}
    assert ("bob", "access-key-never-used") in got  # a key never used is flagged whatever its age
    assert ("admin", "admin-equivalent") in got
    assert principal(review, "idle").activity == "new"
    assert ("bob", "console-without-mfa") not in got  # MFA was not read: a gap, not a verdict
    reasons = [g.reason for g in review.gaps]
    assert any("MFA" in r and "bob" in r for r in reasons)
    assert any("grants" in r for r in reasons)
    customers = next(k for k in review.keys if k.arn == arns["customers"])
    assert decrypters(customers)["holders of grants on the key"] == MAY


def test_denied_reads_are_gaps_never_silence(session):
    seed(session)

    def faults(clients):
        fail_with(clients, "iam", "ListMFADevices")
        fail_with(clients, "kms", "ListGrants")
        fail_with(clients, "kms", "GetKeyPolicy")
    review, _ = review_of(session, setup=faults)
    assert principal(review, "bob").mfa is None
    assert ("bob", "console-without-mfa") not in flags(review)
    reasons = " ".join(g.reason for g in review.gaps)
    assert "MFA" in reasons and "ListMFADevices" in reasons and "AccessDenied" in reasons
    assert "grants cannot be read" in reasons and "key policy cannot be read" in reasons
    customers = key_of(review, "alias/customers")
    unknown = [d for d in customers.decrypters if d.type == "unknown"]
    assert unknown and all(d.access == MAY and d.conditions for d in unknown)
    assert review.incomplete


def test_collector_gaps_reach_the_review(session):
    seed(session)
    review, _ = review_of(session, setup=lambda c: fail_with(c, "iam", "GetAccountAuthorizationDetails"))
    assert not review.principals
    assert any("IAM users, groups, roles and policies could not be listed" in g.reason for g in review.gaps)
    assert review.incomplete


def test_an_empty_account_is_clean(session):
    review, _ = run_review([Clients(session)], [HOME], today=REVIEW_DAY)
    assert not review.principals and not review.keys and not review.flags and not review.gaps


def test_principal_elements():
    assert parse_principal(("AWS", ACCOUNT))["type"] == "account"
    assert parse_principal(("AWS", f"arn:aws:iam::{ACCOUNT}:root"))["account"] == ACCOUNT
    role = parse_principal(("AWS", f"arn:aws:iam::{ACCOUNT}:role/path/to/app"))
    assert (role["type"], role["name"]) == ("role", "app")
    session = parse_principal(("AWS", f"arn:aws:sts::{ACCOUNT}:assumed-role/app/session-1"))
    assert (session["type"], session["principal"]) == ("role", arn("role", "app"))
    assert parse_principal(("AWS", "AROAEXAMPLEEXAMPLE123"))["type"] == "deleted"
    assert parse_principal(("*", "*"))["type"] == "anyone"
    assert parse_principal(("Service", "rds.amazonaws.com"))["type"] == "service"


# ------------------------------------------------------------------------------ formats

def test_every_format_renders_the_review(session):
    seed(session)
    review, _ = review_of(session)
    data = json.loads(render_review(review, "json"))
    assert set(data) >= {"tool", "generated_at", "accounts", "principals", "keys", "flags", "gaps"}
    assert data["tool"]["name"] == "dpguard" and data["as_of"] == REVIEW_DAY.isoformat()
    key = next(k for k in data["keys"] if "alias/customers" in k["aliases"])
    assert {"arn", "decrypters"} <= set(key) and any(d["name"] == "reader" for d in key["decrypters"])
    rows = list(csv.DictReader(io.StringIO(render_review(review, "csv"))))
    assert len(rows) == len(review.principals)
    bob = next(r for r in rows if r["name"] == "bob")
    assert "console-without-mfa" in bob["flags"] and "no MFA" in bob["flag_reasons"] and bob["mfa"] == "no"
    markdown = render_review(review, "markdown")
    assert markdown.startswith(f"# Quarterly access review — {REVIEW_DAY.isoformat()}")
    for heading in ("## Flags", "## Who can decrypt each data key", "## People and services with access",
                    "## What the review could not see", "## Sign-off"):
        assert heading in markdown
    table = render_review(review, "table")
    assert "stale-reader" in table and "unused-decrypter" in table and "alias/customers" in table


def test_csv_cells_never_run_as_formulas():
    assert safe_cell("=HYPERLINK(1)") == "'=HYPERLINK(1)" and safe_cell("+1") == "'+1"
    assert safe_cell("alice") == "alice" and safe_cell(None) == ""


# ------------------------------------------------------------------------------ the command

@pytest.fixture
def cli_env(monkeypatch):
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    monkeypatch.setenv("AWS_DEFAULT_REGION", HOME)


@pytest.mark.parametrize("fmt", ["table", "json", "csv", "markdown"])
def test_command_writes_each_format(cli_env, tmp_path, fmt):
    out = tmp_path / f"review.{fmt}"
    with moto.mock_aws():
        iam = boto3.client("iam", region_name=HOME)
        iam.create_user(UserName="bob")
        iam.create_access_key(UserName="bob")
        boto3.client("kms", region_name=HOME).create_key(Description="data")
        code = main(["access-review", "--format", fmt, "--output", str(out), "--today", REVIEW_DAY.isoformat()])
    assert code == 1  # bob is flagged
    text = out.read_text(encoding="utf-8")
    assert "bob" in text
    if fmt == "json":
        data = json.loads(text)
        assert data["generated_at"] == f"{REVIEW_DAY.isoformat()}T00:00:00Z"  # reproducible with --today
        assert {f["code"] for f in data["flags"]} == {"unused", "access-key-old", "access-key-never-used"}
        assert len(data["keys"]) == 1 and data["keys"][0]["decrypters"][0]["type"] == "account"
    if fmt == "csv":
        assert text.splitlines()[0].startswith("account,type,name,arn")


def test_command_on_a_clean_account_exits_0(cli_env, capsys):
    with moto.mock_aws():
        assert main(["access-review", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["flags"] == []


def test_command_exits_3_when_incomplete(cli_env, monkeypatch, capsys):
    from dpguard.audit import access_review

    with moto.mock_aws():
        session = boto3.Session(region_name=HOME)
        clients = Clients(session)
        fail_with(clients, "kms", "ListKeys")
        review, _ = run_review([clients], [HOME], today=REVIEW_DAY)
    monkeypatch.setattr(access_review, "command", lambda args: review)
    assert main(["access-review", "--format", "markdown"]) == 3
    assert "could not be listed" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["--region", "xx-mars-1"], "unknown region xx-mars-1"),
    (["--region", "not a region"], "is not a region name"),
    (["--today", "2026-13-01"], "is not a date"),
    (["--concurrency", "0"], "--concurrency must be at least 1"),
    (["--format", "sarif"], "invalid choice"),
])
def test_bad_input_is_one_line(cli_env, capsys, argv, message):
    with moto.mock_aws():
        code = main(["access-review", *argv])
    err = capsys.readouterr().err
    assert code == 2 and message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_unreachable_endpoint_is_one_line(cli_env, capsys):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("localhost", 0))
        port = s.getsockname()[1]
    code = main(["access-review", "--endpoint-url", f"http://localhost:{port}", "--region", "xx-mars-1"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("dpguard access-review: ") and len(err.strip().splitlines()) == 1


def test_managed_policies_and_permissions_boundaries(session):
    iam, kms = session.client("iam"), session.client("kms")
    key = kms.create_key(Description="data")["KeyMetadata"]
    decrypt = iam.create_policy(PolicyName="decrypt-data", PolicyDocument=doc(
        {"Effect": "Allow", "Action": ["kms:Decrypt"], "Resource": key["Arn"]}))["Policy"]["Arn"]
    s3_only = iam.create_policy(PolicyName="s3-only", PolicyDocument=doc(
        {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}))["Policy"]["Arn"]
    trust = json.dumps(LAMBDA_TRUST)
    iam.create_role(RoleName="plain", AssumeRolePolicyDocument=trust)
    iam.create_role(RoleName="bounded", AssumeRolePolicyDocument=trust, PermissionsBoundary=s3_only)
    iam.create_role(RoleName="aws-bounded", AssumeRolePolicyDocument=trust,
                    PermissionsBoundary="arn:aws:iam::aws:policy/ReadOnlyAccess")
    iam.create_role(RoleName="iam-admin", AssumeRolePolicyDocument=trust)
    for role in ("plain", "bounded", "aws-bounded"):
        iam.attach_role_policy(RoleName=role, PolicyArn=decrypt)
    iam.attach_role_policy(RoleName="iam-admin", PolicyArn="arn:aws:iam::aws:policy/IAMFullAccess")
    review, _ = run_review([Clients(session)], [HOME], today=TODAY)
    [data] = review.keys
    found = {d.name: d for d in data.decrypters}
    assert found["plain"].access == CAN and "managed policy decrypt-data" in found["plain"].via[0]
    assert "bounded" not in found  # its boundary allows only S3
    assert found["aws-bounded"].access == MAY and "ReadOnlyAccess" in " ".join(found["aws-bounded"].conditions)
    assert found["iam-admin"].access == MAY  # IAMFullAccess can give itself kms:Decrypt
    assert principal(review, "plain").managed_policies == ["decrypt-data"]
    assert principal(review, "bounded").permissions_boundary == s3_only
    assert ("iam-admin", "admin-equivalent") in flags(review)
