"""`dpguard audit` collectors for identity and data services (IAM, RDS, Cognito, Secrets Manager,
GuardDuty) under moto: compliant and non-compliant resources judged by the catalogue with the
template rules' ids and clauses, pagination beyond one page, and injected faults (access denied,
throttling) that make the affected checks unverifiable without stopping the run."""
from __future__ import annotations

import datetime as dt
import json
import urllib.parse
from typing import Any

import pytest

import boto3
import moto
import botocore.awsrequest  # noqa: E402
import botocore.exceptions  # noqa: E402

from dpguard.audit.clients import Clients  # noqa: E402
from dpguard.audit.live import LIVE, LiveTemplate  # noqa: E402
from dpguard.audit.run import audit  # noqa: E402
from dpguard.engine import Config  # noqa: E402

HOME, OTHER = "us-east-1", "eu-west-1"
ACCOUNT = "123456789012"  # moto's default account
LATER = dt.date.today() + dt.timedelta(days=200)  # an audit day when everything made today is old

LAMBDA_TRUST = {"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
ANYONE_TRUST = {"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]}
READ_ONE_BUCKET = {"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "arn:aws:s3:::dp-data/*"}]}
EVERYTHING = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
ALL_S3 = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}


def run(clients: Clients, only: set[str], regions=(HOME,), today: dt.date | None = None):
    config = Config(today=today) if today else None
    return audit([clients], list(regions), only=only, config=config)


def failing(result, rule_id: str | None = None, status: str | None = None) -> list:
    return [f for f in result.report.findings if f.fails and (rule_id is None or f.rule_id == rule_id)
            and (status is None or f.status == status)]


def ids(result) -> set[tuple[str, str, str]]:
    """(rule id, status, logical id) of every failing finding."""
    return {(f.rule_id, f.status, f.logical_id) for f in failing(result)}


def collect(name: str, clients: Clients, region: str = HOME) -> LiveTemplate:
    """Run one collector directly, to look at the resources it writes."""
    from dpguard.audit.collectors import collectors
    collector = next(c for c in collectors() if c.name == name)
    live = LiveTemplate(ACCOUNT, "global" if collector.scope == "global" else region)
    collector.collect(clients, region, live)
    return live


def of_type(live: LiveTemplate, rtype: str) -> dict[str, dict]:
    return {lid: r["Properties"] for lid, r in live.resources.items() if r["Type"] == rtype}


def fail_with(clients: Clients, service: str, operation: str, code: str = "AccessDenied",
              region: str = HOME) -> None:
    """Make every call of `operation` on the audit's own client raise `code`."""
    def handler(**_: Any) -> None:
        raise botocore.exceptions.ClientError(
            {"Error": {"Code": code, "Message": f"injected {code}"}}, operation)
    client = clients(service, region)
    client.meta.events.register(f"before-call.{client.meta.service_model.service_id.hyphenize()}.{operation}",
                                handler)


def serve_pages(clients: Clients, service: str, operation: str, pages: list[dict], region: str = HOME,
                token: str = "Marker") -> list:
    """Answer `operation` with `pages`, chained by `token` (Marker, or NextToken), as AWS does for
    large results and moto does not (or only slowly). Returns the tokens the collector sent, one
    per call."""
    client = clients(service, region)
    service_id = client.meta.service_model.service_id.hyphenize()
    sent: list = []

    def remember(params, context, **_: Any) -> None:
        context["test-marker"] = params.get(token)

    def answer(context, **_: Any):
        marker = context.get("test-marker")
        sent.append(marker)
        index = 0 if marker is None else int(marker)
        page = dict(pages[index])
        if index + 1 < len(pages):
            page[token] = str(index + 1)
            if token == "Marker":
                page["IsTruncated"] = True
        response = botocore.awsrequest.AWSResponse("https://aws.invalid", 200, {}, None)
        return response, page

    client.meta.events.register(f"before-parameter-build.{service_id}.{operation}", remember)
    client.meta.events.register(f"before-call.{service_id}.{operation}", answer)
    return sent


# ------------------------------------------------------------------------------------------ IAM

def seed_iam(session) -> dict:
    iam = session.client("iam")
    iam.create_role(RoleName="app", AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST))
    iam.put_role_policy(RoleName="app", PolicyName="read", PolicyDocument=json.dumps(READ_ONE_BUCKET))
    scoped = iam.create_policy(PolicyName="scoped", PolicyDocument=json.dumps(READ_ONE_BUCKET))["Policy"]["Arn"]
    iam.attach_role_policy(RoleName="app", PolicyArn=scoped)
    # A customer managed policy whose first version was fine; the default (v2) is not.
    broad = iam.create_policy(PolicyName="broad", PolicyDocument=json.dumps(READ_ONE_BUCKET))["Policy"]["Arn"]
    iam.create_policy_version(PolicyArn=broad, PolicyDocument=json.dumps(ALL_S3), SetAsDefault=True)
    iam.create_role(RoleName="open", AssumeRolePolicyDocument=json.dumps(ANYONE_TRUST))
    iam.attach_role_policy(RoleName="open", PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
    iam.attach_role_policy(RoleName="open", PolicyArn=broad)
    iam.create_user(UserName="alice")
    iam.create_login_profile(UserName="alice", Password="Correct-Horse-Battery-9")
    iam.put_user_policy(UserName="alice", PolicyName="all", PolicyDocument=json.dumps(EVERYTHING))
    active = iam.create_access_key(UserName="alice")["AccessKey"]["AccessKeyId"]
    inactive = iam.create_access_key(UserName="alice")["AccessKey"]["AccessKeyId"]
    iam.update_access_key(UserName="alice", AccessKeyId=inactive, Status="Inactive")
    iam.create_group(GroupName="ops")
    iam.put_group_policy(GroupName="ops", PolicyName="all", PolicyDocument=json.dumps(EVERYTHING))
    iam.add_user_to_group(GroupName="ops", UserName="alice")
    iam.create_service_linked_role(AWSServiceName="elasticbeanstalk.amazonaws.com")
    return {"active": active, "inactive": inactive}


def test_iam_resources_have_the_template_shapes(session):
    seed_iam(session)
    live = collect("iam", Clients(session))
    users = of_type(live, "AWS::IAM::User")
    assert set(users) == {"Alice"}
    alice = users["Alice"]
    assert alice["UserName"] == "alice"
    assert alice["LoginProfile"] == {"PasswordResetRequired": False}
    assert alice["Policies"] == [{"PolicyName": "all", "PolicyDocument": EVERYTHING}]
    assert alice["Groups"] == [{"Ref": "Ops"}]
    keys = of_type(live, "AWS::IAM::AccessKey")
    assert {k["Status"] for k in keys.values()} == {"Active", "Inactive"}
    assert all(k["UserName"] == {"Ref": "Alice"} and k["CreateDate"] for k in keys.values())
    assert all("SecretAccessKey" not in json.dumps(k) for k in keys.values())
    roles = of_type(live, "AWS::IAM::Role")
    assert roles["App"]["AssumeRolePolicyDocument"] == LAMBDA_TRUST
    assert roles["App"]["Policies"] == [{"PolicyName": "read", "PolicyDocument": READ_ONE_BUCKET}]
    assert roles["App"]["ManagedPolicyArns"] == [{"Ref": "Scoped"}]  # customer managed: a reference
    assert roles["Open"]["ManagedPolicyArns"] == ["arn:aws:iam::aws:policy/AdministratorAccess", {"Ref": "Broad"}]
    assert roles["App"]["RoleLastUsed"] == {}  # read, never used
    policies = of_type(live, "AWS::IAM::ManagedPolicy")
    assert policies["Broad"]["PolicyDocument"] == ALL_S3  # the default version, not v1
    assert of_type(live, "AWS::IAM::Group")["Ops"]["Policies"][0]["PolicyDocument"] == EVERYTHING
    account = of_type(live, "Live::IAM::Account")["RootAccount"]
    assert account["AccountAccessKeysPresent"] == 0 and account["AccountMFAEnabled"] == 0
    assert live.resources["Alice"]["Metadata"][LIVE]["arn"] == f"arn:aws:iam::{ACCOUNT}:user/alice"
    assert not live.gaps


def test_iam_findings_carry_the_template_rule_ids_and_clauses(session):
    seed_iam(session)
    result = run(Clients(session), {"iam"})
    found = ids(result)
    expected = {
        ("DP-IamNoUsers", "violation", "Alice"),
        ("DP-IamNoLoginProfile", "violation", "Alice"),
        ("DP-IamNoWildcardAction", "violation", "Alice"),
        ("DP-IamNoWildcardAction", "violation", "Ops"),
        ("DP-IamNoWildcardAction", "violation", "Broad"),
        ("DP-IamNoWildcardResourceWrite", "violation", "Broad"),
        ("DP-IamNoAdminManagedPolicy", "violation", "Open"),
        ("DP-IamTrustNoWildcardPrincipal", "violation", "Open"),
        ("DP-RootAccessKeys", "violation", "RootAccount"),
    }
    assert expected <= found
    keys = {f.logical_id for f in failing(result, "DP-IamNoAccessKeys")}
    assert keys == {"AliceAccessKey1", "AliceAccessKey2"}  # inactive keys can be switched back on
    # Compliant principals have no finding at all; keys made today are neither old nor unused.
    assert not [f for f in failing(result) if f.logical_id in ("App", "Scoped")]
    assert not failing(result, "DP-IamAccessKeyAge") and not failing(result, "DP-PrincipalUnused")
    clauses = {f.rule_id: f.clause for f in result.report.findings}
    assert clauses["DP-IamNoUsers"] == 2 and clauses["DP-IamNoAdminManagedPolicy"] == 8
    assert clauses["DP-RootAccessKeys"] == 2
    open_role = next(f for f in failing(result, "DP-IamTrustNoWildcardPrincipal"))
    assert open_role.arn == f"arn:aws:iam::{ACCOUNT}:role/open" and open_role.region == "global"
    assert open_role.account == ACCOUNT
    assert not failing(result, "DP-AuditComplete")


def test_old_keys_and_unused_principals_on_a_later_audit_day(session):
    keys = seed_iam(session)
    result = run(Clients(session), {"iam"}, today=LATER)
    aged = failing(result, "DP-IamAccessKeyAge")
    assert [f.logical_id for f in aged] == ["AliceAccessKey1"]  # the active one only
    assert keys["active"] in aged[0].message and aged[0].clause == 2 and aged[0].severity == "error"
    unused = {f.logical_id: f for f in failing(result, "DP-PrincipalUnused")}
    assert {"App", "Open", "Alice", "AliceAccessKey1"} <= set(unused)
    assert "AliceAccessKey2" not in unused  # inactive
    assert not [lid for lid in unused if "Elasticbeanstalk" in lid]  # service-linked role: AWS's own
    assert all(f.severity == "warning" and f.clause == 2 for f in unused.values())
    assert "never used" in unused["App"].message


def test_iam_pagination_collects_every_user_and_role(session):
    iam = session.client("iam")
    for n in range(130):
        iam.create_user(UserName=f"user{n:03}")
        iam.create_role(RoleName=f"role{n:03}", AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST))
    result = run(Clients(session), {"iam"}, today=LATER)
    assert len({f.arn for f in failing(result, "DP-IamNoUsers")}) == 130
    roles = {f.arn for f in failing(result, "DP-PrincipalUnused") if ":role/" in f.arn}
    assert len(roles) == 130


def test_authorization_details_are_read_across_pages(session):
    seed_iam(session)
    full = wire(session.client("iam").get_account_authorization_details(
        Filter=["User", "Group", "Role", "LocalManagedPolicy"]))
    keys = ("UserDetailList", "GroupDetailList", "RoleDetailList", "Policies")
    # Three pages: the users on the last one, roles and policies split across the first two.
    roles, policies = full["RoleDetailList"], full["Policies"]
    pages = [{"UserDetailList": [], "GroupDetailList": full["GroupDetailList"], "RoleDetailList": roles[:1],
              "Policies": policies[:1]},
             {"UserDetailList": [], "GroupDetailList": [], "RoleDetailList": roles[1:], "Policies": policies[1:]},
             {k: (full["UserDetailList"] if k == "UserDetailList" else []) for k in keys}]
    clients = Clients(session)
    sent = serve_pages(clients, "iam", "GetAccountAuthorizationDetails", pages)
    live = collect("iam", clients)
    assert sent == [None, "1", "2"]
    assert set(of_type(live, "AWS::IAM::Role")) >= {"App", "Open"}
    assert set(of_type(live, "AWS::IAM::ManagedPolicy")) == {"Scoped", "Broad"}
    assert set(of_type(live, "AWS::IAM::User")) == {"Alice"}
    assert of_type(live, "AWS::IAM::Role")["Open"]["ManagedPolicyArns"][1] == {"Ref": "Broad"}


def wire(node: Any) -> Any:
    """IAM's policy documents as the wire carries them (URL-encoded JSON), for answers served by
    the test: botocore decodes them again after the call."""
    if isinstance(node, dict):
        return {k: urllib.parse.quote(json.dumps(v)) if k in DOCUMENTS and isinstance(v, dict) else wire(v)
                for k, v in node.items()}
    if isinstance(node, list):
        return [wire(v) for v in node]
    return node


DOCUMENTS = ("PolicyDocument", "AssumeRolePolicyDocument", "Document")


def test_denied_login_profile_and_summary_are_unverifiable_and_the_run_goes_on(session):
    seed_iam(session)
    clients = Clients(session)
    fail_with(clients, "iam", "GetLoginProfile")
    fail_with(clients, "iam", "GetAccountSummary")
    result = run(clients, {"iam"})
    login = failing(result, "DP-IamNoLoginProfile")
    assert [f.status for f in login] == ["unverifiable"]
    assert "GetLoginProfile" in login[0].message and "AccessDenied" in login[0].message
    root = failing(result, "DP-RootAccessKeys")
    assert root and all(f.status == "unverifiable" and "GetAccountSummary" in f.message for f in root)
    # Everything else was still read and judged.
    assert ("DP-IamTrustNoWildcardPrincipal", "violation", "Open") in ids(result)
    assert result.incomplete


def test_denied_authorization_details_leave_a_gap(session):
    seed_iam(session)
    clients = Clients(session)
    fail_with(clients, "iam", "GetAccountAuthorizationDetails")
    result = run(clients, {"iam"})
    gaps = failing(result, "DP-AuditComplete")
    assert len(gaps) == 1 and "GetAccountAuthorizationDetails" in gaps[0].message
    assert gaps[0].clause == 10
    assert failing(result, "DP-RootAccessKeys")  # the account summary was still read


def test_throttled_last_used_is_unverifiable_without_a_crash(session):
    seed_iam(session)
    clients = Clients(session)
    fail_with(clients, "iam", "GetAccessKeyLastUsed", code="Throttling")
    fail_with(clients, "iam", "ListUsers", code="ThrottlingException")
    result = run(clients, {"iam"}, today=LATER)
    unused = {f.logical_id: f for f in failing(result, "DP-PrincipalUnused")}
    assert unused["AliceAccessKey1"].status == "unverifiable"
    assert "GetAccessKeyLastUsed" in unused["AliceAccessKey1"].message
    assert unused["Alice"].status == "unverifiable"  # neither password nor key use could be read
    assert unused["App"].status == "violation"  # roles do not depend on those calls
    assert failing(result, "DP-IamAccessKeyAge")  # the key's age came with its listing


# ------------------------------------------------------------------------------------------ RDS

def seed_rds(session) -> dict:
    rds, kms = session.client("rds"), session.client("kms")
    key = kms.create_key(Description="orders")["KeyMetadata"]["Arn"]
    rds.create_db_parameter_group(DBParameterGroupName="tls", DBParameterGroupFamily="postgres16", Description="tls")
    rds.modify_db_parameter_group(DBParameterGroupName="tls", Parameters=[
        {"ParameterName": "rds.force_ssl", "ParameterValue": "1", "ApplyMethod": "immediate"}])
    rds.create_db_parameter_group(DBParameterGroupName="plain", DBParameterGroupFamily="postgres16", Description="x")
    rds.modify_db_parameter_group(DBParameterGroupName="plain", Parameters=[
        {"ParameterName": "rds.force_ssl", "ParameterValue": "0", "ApplyMethod": "immediate"}])
    tags = [{"Key": "data-classification", "Value": "confidential"}, {"Key": "data-owner", "Value": "orders"}]
    rds.create_db_instance(DBInstanceIdentifier="orders", Engine="postgres", EngineVersion="16.3",
                           DBInstanceClass="db.t3.micro", MasterUsername="orders_owner", MasterUserPassword="x" * 16,
                           StorageEncrypted=True, KmsKeyId=key, PubliclyAccessible=False,
                           DBParameterGroupName="tls", Tags=tags, EnableCloudwatchLogsExports=["postgresql"])
    rds.create_db_instance(DBInstanceIdentifier="legacy", Engine="postgres", EngineVersion="16.3",
                           DBInstanceClass="db.t3.micro", MasterUsername="postgres", MasterUserPassword="x" * 16,
                           StorageEncrypted=False, PubliclyAccessible=True, DBParameterGroupName="plain")
    rds.create_db_cluster_parameter_group(DBClusterParameterGroupName="aurora-tls",
                                          DBParameterGroupFamily="aurora-postgresql15", Description="tls")
    rds.modify_db_cluster_parameter_group(DBClusterParameterGroupName="aurora-tls", Parameters=[
        {"ParameterName": "rds.force_ssl", "ParameterValue": "1", "ApplyMethod": "immediate"}])
    rds.create_db_cluster_parameter_group(DBClusterParameterGroupName="aurora-plain",
                                          DBParameterGroupFamily="aurora-postgresql15", Description="x")
    rds.create_db_cluster(DBClusterIdentifier="ledger", Engine="aurora-postgresql", MasterUsername="ledger_owner",
                          MasterUserPassword="x" * 16, DBClusterParameterGroupName="aurora-tls",
                          StorageEncrypted=True, KmsKeyId=key, Tags=tags, EnableCloudwatchLogsExports=["postgresql"])
    rds.create_db_instance(DBInstanceIdentifier="ledger-1", Engine="aurora-postgresql", DBInstanceClass="db.r5.large",
                           DBClusterIdentifier="ledger", PubliclyAccessible=False, Tags=tags)
    rds.create_db_cluster(DBClusterIdentifier="scratch", Engine="aurora-postgresql", MasterUsername="admin",
                          MasterUserPassword="x" * 16, DBClusterParameterGroupName="aurora-plain",
                          StorageEncrypted=False)
    return {"key": key}


def test_rds_resources_have_the_template_shapes(session):
    seeded = seed_rds(session)
    live = collect("rds", Clients(session))
    instances = of_type(live, "AWS::RDS::DBInstance")
    orders = instances["Orders"]
    assert orders["StorageEncrypted"] is True and orders["KmsKeyId"] == seeded["key"]
    assert orders["PubliclyAccessible"] is False and orders["MasterUsername"] == "orders_owner"
    assert orders["DBParameterGroupName"] == {"Ref": "Tls"} and orders["Engine"] == "postgres"
    assert {"Key": "data-owner", "Value": "orders"} in orders["Tags"]
    assert "KmsKeyId" not in instances["Legacy"]  # unencrypted: no key
    member = instances["Ledger1"]
    assert member["DBClusterIdentifier"] == {"Ref": "Ledger"} and "MasterUsername" not in member
    groups = of_type(live, "AWS::RDS::DBParameterGroup")
    assert groups["Tls"] == {"DBParameterGroupName": "tls", "Family": "postgres16", "Description": "tls",
                             "Parameters": {"rds.force_ssl": "1"}}
    cluster_groups = of_type(live, "AWS::RDS::DBClusterParameterGroup")
    assert cluster_groups["AuroraTls"]["Parameters"] == {"rds.force_ssl": "1"}
    assert cluster_groups["AuroraPlain"]["Family"] == "aurora-postgresql15"
    cluster = of_type(live, "AWS::RDS::DBCluster")["Ledger"]
    assert cluster["DBClusterParameterGroupName"] == {"Ref": "AuroraTls"} and cluster["StorageEncrypted"] is True
    assert live.resources["Orders"]["Metadata"][LIVE]["arn"] == f"arn:aws:rds:{HOME}:{ACCOUNT}:db:orders"


def test_rds_findings(session):
    seed_rds(session)
    result = run(Clients(session), {"rds"})
    found = ids(result)
    assert {
        ("DP-RdsNotPublic", "violation", "Legacy"),
        ("DP-RdsStorageEncrypted", "violation", "Legacy"),
        ("DP-RdsForceSsl", "violation", "Legacy"),
        ("DP-DbDefaultMasterUsername", "violation", "Legacy"),
        ("DP-DataClassificationTag", "violation", "Legacy"),
        ("DP-DataOwnerTag", "violation", "Legacy"),
        ("DP-AuroraForceSsl", "violation", "Scratch"),
        ("DP-RdsStorageEncrypted", "violation", "Scratch"),
        ("DP-DbDefaultMasterUsername", "violation", "Scratch"),
        ("DP-RdsLogExports", "violation", "Legacy"),  # exports nothing
    } <= found
    compliant = [(f.rule_id, f.logical_id, f.message) for f in failing(result)
                 if f.logical_id in ("Orders", "Ledger", "Ledger1")]
    assert not compliant
    clauses = {f.rule_id: f.clause for f in failing(result)}
    assert (clauses["DP-RdsNotPublic"], clauses["DP-RdsForceSsl"], clauses["DP-RdsStorageEncrypted"],
            clauses["DP-DataOwnerTag"], clauses["DP-DbDefaultMasterUsername"]) == (1, 3, 7, 6, 2)
    ssl = next(f for f in failing(result, "DP-RdsForceSsl"))
    assert ssl.arn == f"arn:aws:rds:{HOME}:{ACCOUNT}:db:legacy" and ssl.region == HOME


def test_an_aws_managed_key_is_not_a_customer_managed_key(session):
    rds = session.client("rds")
    tags = [{"Key": "data-classification", "Value": "confidential"}, {"Key": "data-owner", "Value": "x"}]
    rds.create_db_instance(DBInstanceIdentifier="aws-key", Engine="postgres", EngineVersion="16.3",
                           DBInstanceClass="db.t3.micro", MasterUsername="app_owner", MasterUserPassword="x" * 16,
                           StorageEncrypted=True, KmsKeyId=f"arn:aws:kms:{HOME}:{ACCOUNT}:key/1111-aws-rds",
                           PubliclyAccessible=False, Tags=tags)
    clients = Clients(session)
    kms = clients("kms", HOME)

    def aws_managed(**_: Any):
        answer = {"KeyMetadata": {"KeyId": "1111-aws-rds", "KeyManager": "AWS"}}
        return botocore.awsrequest.AWSResponse("https://aws.invalid", 200, {}, None), answer
    kms.meta.events.register("before-call.kms.DescribeKey", aws_managed)
    result = run(clients, {"rds"})
    cmk = failing(result, "DP-ConfidentialDataCmk")
    assert [(f.status, f.logical_id) for f in cmk] == [("violation", "AwsKey")]
    assert not failing(result, "DP-RdsStorageEncrypted")


def test_parameters_are_read_across_pages(session):
    rds = session.client("rds")
    rds.create_db_parameter_group(DBParameterGroupName="big", DBParameterGroupFamily="postgres16", Description="x")
    rds.create_db_instance(DBInstanceIdentifier="db", Engine="postgres", EngineVersion="16.3",
                           DBInstanceClass="db.t3.micro", MasterUsername="app_owner", MasterUserPassword="x" * 16,
                           StorageEncrypted=True, PubliclyAccessible=False, DBParameterGroupName="big")
    filler = [{"ParameterName": f"p{n}", "ParameterValue": "1", "Source": "engine-default"} for n in range(100)]
    clients = Clients(session)
    # rds.force_ssl turned off on the second page: read only the first and the engine's default
    # (on from PostgreSQL 15) would wrongly pass.
    sent = serve_pages(clients, "rds", "DescribeDBParameters", [
        {"Parameters": filler},
        {"Parameters": [{"ParameterName": "rds.force_ssl", "ParameterValue": "0", "Source": "user"},
                        {"ParameterName": "log_connections", "ParameterValue": "1", "Source": "user"}]}])
    live = collect("rds", clients)
    assert sent == [None, "1"]
    assert of_type(live, "AWS::RDS::DBParameterGroup")["Big"]["Parameters"] == {
        "rds.force_ssl": "0", "log_connections": "1"}  # engine defaults other than TLS left out
    clients = Clients(session)
    serve_pages(clients, "rds", "DescribeDBParameters", [
        {"Parameters": filler}, {"Parameters": [{"ParameterName": "rds.force_ssl", "ParameterValue": "0"}]}])
    assert [f.logical_id for f in failing(run(clients, {"rds"}), "DP-RdsForceSsl")] == ["Db"]


def test_rds_faults(session):
    seed_rds(session)
    clients = Clients(session)
    fail_with(clients, "rds", "DescribeDBParameters")
    fail_with(clients, "kms", "DescribeKey", code="Throttling")
    result = run(clients, {"rds"})
    ssl = {f.logical_id: f for f in failing(result, "DP-RdsForceSsl")}
    assert ssl["Orders"].status == "unverifiable" and "DescribeDBParameters" in ssl["Orders"].message
    cmk = {f.logical_id: f for f in failing(result, "DP-ConfidentialDataCmk")}
    assert cmk["Orders"].status == "unverifiable" and "DescribeKey" in cmk["Orders"].message
    assert ("DP-RdsNotPublic", "violation", "Legacy") in ids(result)  # the rest was judged
    clients = Clients(session)
    fail_with(clients, "rds", "DescribeDBInstances")
    result = run(clients, {"rds"})
    gaps = failing(result, "DP-AuditComplete")
    assert len(gaps) == 1 and "DescribeDBInstances" in gaps[0].message
    assert ("DP-AuroraForceSsl", "violation", "Scratch") in ids(result)  # clusters were still read


# -------------------------------------------------------------------------------------- Cognito

def test_cognito_clients_are_judged_and_secrets_never_kept(session):
    idp = session.client("cognito-idp")
    pool = idp.create_user_pool(PoolName="customers", MfaConfiguration="OFF")["UserPool"]["Id"]
    password = idp.create_user_pool_client(UserPoolId=pool, ClientName="legacy", GenerateSecret=True,
                                           ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"])
    idp.create_user_pool_client(UserPoolId=pool, ClientName="web",
                                ExplicitAuthFlows=["ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"])
    idp.create_user_pool_client(UserPoolId=pool, ClientName="default")
    clients = Clients(session)
    live = collect("cognito", clients)
    secret = password["UserPoolClient"]["ClientSecret"]
    assert secret not in json.dumps(live.resources)
    app_clients = of_type(live, "AWS::Cognito::UserPoolClient")
    assert app_clients["LegacyClient"]["GenerateSecret"] is True
    assert app_clients["LegacyClient"]["UserPoolId"] == {"Ref": "Customers"}
    assert "ExplicitAuthFlows" not in app_clients["DefaultClient"]
    assert of_type(live, "AWS::Cognito::UserPool")["Customers"]["MfaConfiguration"] == "OFF"
    result = run(Clients(session), {"cognito"})
    flows = failing(result, "DP-CognitoNoPasswordFlows")
    assert [(f.status, f.logical_id, f.clause) for f in flows] == [("violation", "LegacyClient", 2)]
    assert flows[0].arn.startswith(f"arn:aws:cognito-idp:{HOME}:{ACCOUNT}:userpool/{pool}")


def test_cognito_pagination(session):
    idp = session.client("cognito-idp")
    pools = []
    for n in range(3):  # moto makes a signing key per pool (slow): pools are paged by the test
        pools.append(idp.create_user_pool(PoolName=f"pool{n}")["UserPool"]["Id"])
        idp.create_user_pool_client(UserPoolId=pools[-1], ClientName=f"c{n}", ExplicitAuthFlows=["USER_PASSWORD_AUTH"])
    for n in range(62):  # a ListUserPoolClients page holds 60: moto pages these itself
        idp.create_user_pool_client(UserPoolId=pools[0], ClientName=f"big{n:02}",
                                    ExplicitAuthFlows=["ALLOW_ADMIN_USER_PASSWORD_AUTH"])
    summaries = idp.list_user_pools(MaxResults=60)["UserPools"]
    clients = Clients(session)
    sent = serve_pages(clients, "cognito-idp", "ListUserPools",
                       [{"UserPools": summaries[:1]}, {"UserPools": summaries[1:2]}, {"UserPools": summaries[2:]}],
                       token="NextToken")
    result = run(clients, {"cognito"})
    assert sent == [None, "1", "2"]
    assert len({f.arn for f in failing(result, "DP-CognitoNoPasswordFlows")}) == 65
    assert clients.calls["cognito-idp:ListUserPoolClients"] == 4  # two pages for the big pool


def test_cognito_faults(session):
    idp = session.client("cognito-idp")
    pool = idp.create_user_pool(PoolName="customers")["UserPool"]["Id"]
    idp.create_user_pool_client(UserPoolId=pool, ClientName="web")
    clients = Clients(session)
    fail_with(clients, "cognito-idp", "DescribeUserPoolClient")
    result = run(clients, {"cognito"})
    flows = failing(result, "DP-CognitoNoPasswordFlows")
    assert [f.status for f in flows] == ["unverifiable"] and "DescribeUserPoolClient" in flows[0].message
    clients = Clients(session)
    fail_with(clients, "cognito-idp", "ListUserPools", code="ThrottlingException")
    gaps = failing(run(clients, {"cognito"}), "DP-AuditComplete")
    assert len(gaps) == 1 and "ListUserPools" in gaps[0].message


# ------------------------------------------------------------------------------ Secrets Manager

def test_secrets_are_judged_without_reading_values(session):
    sm, kms = session.client("secretsmanager"), session.client("kms")
    key = kms.create_key()["KeyMetadata"]["Arn"]
    sm.create_secret(Name="plain", SecretString="hunter2")
    sm.create_secret(Name="guarded", SecretString="hunter2", KmsKeyId=key)
    try:  # moto records the rotation before it fails to find the function
        sm.rotate_secret(SecretId="guarded", RotationLambdaARN=f"arn:aws:lambda:{HOME}:{ACCOUNT}:function:rotate",
                         RotationRules={"AutomaticallyAfterDays": 30})
    except botocore.exceptions.ClientError:
        pass
    clients = Clients(session)
    live = collect("secretsmanager", clients)
    assert "hunter2" not in json.dumps(live.resources)
    secrets = of_type(live, "AWS::SecretsManager::Secret")
    assert secrets["Guarded"]["KmsKeyId"] == key and "KmsKeyId" not in secrets["Plain"]
    schedules = of_type(live, "AWS::SecretsManager::RotationSchedule")
    assert list(schedules.values()) == [{
        "SecretId": {"Ref": "Guarded"}, "RotationRules": {"AutomaticallyAfterDays": 30},
        "RotationLambdaARN": f"arn:aws:lambda:{HOME}:{ACCOUNT}:function:rotate"}]
    result = run(clients, {"secretsmanager"})
    assert ids(result) == {("DP-SecretCmk", "violation", "Plain"), ("DP-SecretRotation", "violation", "Plain")}
    assert {f.clause for f in failing(result)} == {7}
    assert not [call for call in clients.calls if "GetSecretValue" in call]


def test_secrets_pagination_and_denied_listing(session):
    sm = session.client("secretsmanager")
    for n in range(105):  # ListSecrets pages hold 100
        sm.create_secret(Name=f"s{n:03}", SecretString="x")
    result = run(Clients(session), {"secretsmanager"})
    assert len({f.arn for f in failing(result, "DP-SecretRotation")}) == 105
    clients = Clients(session)
    fail_with(clients, "secretsmanager", "ListSecrets")
    result = run(clients, {"secretsmanager"})
    assert [f.rule_id for f in failing(result)] == ["DP-AuditComplete"]
    assert "ListSecrets" in failing(result)[0].message


def test_secrets_of_other_services_are_left_to_their_owner(session):
    sm = session.client("secretsmanager")
    sm.create_secret(Name="mine", SecretString="x")
    entries = sm.list_secrets()["SecretList"]
    owned = dict(entries[0], Name="events!connection/partner/abc", OwningService="events",
                 ARN=f"arn:aws:secretsmanager:{HOME}:{ACCOUNT}:secret:events!connection/partner/abc-Xyz")
    clients = Clients(session)
    sent = serve_pages(clients, "secretsmanager", "ListSecrets", [{"SecretList": entries}, {"SecretList": [owned]}],
                       token="NextToken")
    live = collect("secretsmanager", clients)
    assert sent == [None, "1"]
    assert [p["Name"] for p in of_type(live, "AWS::SecretsManager::Secret").values()] == ["mine"]


# ------------------------------------------------------------------------------------ GuardDuty

def test_guardduty_per_region(session):
    session.client("guardduty", region_name=OTHER).create_detector(Enable=True)
    result = run(Clients(session), {"guardduty"}, regions=(HOME, OTHER, "ap-southeast-2"))
    missing = failing(result, "DP-GuardDutyEnabled")
    assert sorted((f.region, f.status) for f in missing) == [("ap-southeast-2", "violation"), (HOME, "violation")]
    assert all(f.clause == 4 and "no detector" in f.message for f in missing)
    assert next(f for f in missing if f.region == HOME).arn == f"arn:aws:guardduty:{HOME}:{ACCOUNT}:detector"
    session.client("guardduty").create_detector(Enable=False)
    result = run(Clients(session), {"guardduty"}, regions=(HOME, OTHER))
    assert [(f.region, f.status, "DISABLED" in f.message) for f in failing(result, "DP-GuardDutyEnabled")] == [
        (HOME, "violation", True)]


def test_guardduty_faults(session):
    session.client("guardduty", region_name=OTHER).create_detector(Enable=True)
    clients = Clients(session)
    fail_with(clients, "guardduty", "ListDetectors")
    fail_with(clients, "guardduty", "GetDetector", code="Throttling", region=OTHER)
    result = run(clients, {"guardduty"}, regions=(HOME, OTHER))
    by_region = {f.region: f for f in failing(result, "DP-GuardDutyEnabled")}
    assert by_region[HOME].status == "unverifiable" and "ListDetectors" in by_region[HOME].message
    assert by_region[OTHER].status == "unverifiable" and "GetDetector" in by_region[OTHER].message
    assert result.incomplete
