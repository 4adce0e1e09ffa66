"""The lambda and dynamodb collectors of `dpguard audit`, under moto (the `session` fixture).

Functions and tables are judged by the template rules (DP-LambdaLogGroup,
DP-NoSecretsInEnvironment, DP-DynamoDbKmsEncryption, the tag and key rules of clause 6 and 7)
with the template rules' ids; environment values never reach the audit's output; listings are
read across pages; denied and throttled reads give `unverifiable` findings (or a gap), never a
compliant verdict. What moto does not answer as AWS does (a function's LoggingConfig and
dead-letter queue, an AWS managed key, a stream's policy) is put into the answer with botocore
events on the very clients the audit uses.
"""
from __future__ import annotations

import io
import json
import zipfile
from typing import Any, Callable

import pytest

import botocore.awsrequest
import botocore.exceptions

from dpguard.audit.clients import Clients
from dpguard.audit.live import LiveTemplate
from dpguard.audit.run import audit
from dpguard.output import render_scan

from audit_support import ACCOUNT, REGION, collect, run  # noqa: E402,F401
SECRET = "hunter2-Pr0duction-s3cret"  # a credential in a function's environment
KEY_ID = "AKIAIOSFODNN7EXAMPLE"  # an access key id in a function's environment
LAMBDA_TRUST = {"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}


@pytest.fixture
def clients(session):
    return Clients(session)


def of_type(live: LiveTemplate, rtype: str) -> dict[str, dict]:
    """Properties by the resource's ARN."""
    return {r["Metadata"]["dpguard:live"]["arn"]: r["Properties"] for r in live.resources.values()
            if r["Type"] == rtype}


def failing(result, arn: str | None = None) -> set[tuple[str, str]]:
    """(rule id, status) of every failing finding (of one resource)."""
    return {(f.rule_id, f.status) for f in result.report.findings
            if f.fails and (arn is None or f.arn == arn)}


def service_id(client) -> str:
    return client.meta.service_model.service_id.hyphenize()


def fail(client, operation: str, code: str = "AccessDenied",
         when: Callable[[dict], bool] = lambda params: True) -> None:
    """Every call of `operation` whose parameters `when` accepts fails with `code` (every retry too)."""
    def remember(params, context, **_):
        context["test-params"] = dict(params)

    def handler(context, **_):
        if when(context.get("test-params", {})):
            raise botocore.exceptions.ClientError({"Error": {"Code": code, "Message": f"injected {code}"}},
                                                  operation)
    client.meta.events.register(f"before-parameter-build.{service_id(client)}.{operation}", remember)
    client.meta.events.register(f"before-call.{service_id(client)}.{operation}", handler)


def amend(client, operation: str, change: Callable[[dict], None]) -> None:
    """Change the parsed answer of `operation` (add what AWS answers and moto does not)."""
    client.meta.events.register(f"after-call.{service_id(client)}.{operation}",
                                lambda parsed, **_: change(parsed))


def answer(client, operation: str, respond: Callable[[dict], dict | None]) -> None:
    """Answer `operation` with `respond(params)` instead of moto, where it returns an answer."""
    def remember(params, context, **_):
        context["test-params"] = dict(params)

    def handler(context, **_):
        body = respond(context.get("test-params", {}))
        if body is not None:
            return botocore.awsrequest.AWSResponse("https://aws.invalid", 200, {}, None), body
        return None
    client.meta.events.register(f"before-parameter-build.{service_id(client)}.{operation}", remember)
    client.meta.events.register(f"before-call.{service_id(client)}.{operation}", handler)


def paged(client, operation: str, key: str, size: int, token_in: str, token_out: str) -> list[dict]:
    """Make `operation` answer `size` items a page, for operations moto answers in one page;
    returns the parameters of every call."""
    seen: list[dict] = []

    def remember(params, context, **_):
        seen.append(dict(params))
        context["page-start"] = int(params.pop(token_in, None) or 0)

    def cut(parsed, context, **_):
        start, items = context.get("page-start", 0), parsed.get(key, [])
        parsed[key] = items[start:start + size]
        parsed.pop(token_out, None)
        if start + size < len(items):
            parsed[token_out] = str(start + size)
    client.meta.events.register(f"before-parameter-build.{service_id(client)}.{operation}", remember)
    client.meta.events.register(f"after-call.{service_id(client)}.{operation}", cut)
    return seen


# ------------------------------------------------------------------------------------- Lambda

def code() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("index.py", "def handler(event, context):\n    return None\n")
    return buffer.getvalue()


def role(session) -> str:
    iam = session.client("iam")
    return iam.create_role(RoleName="fn", AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST))["Role"]["Arn"]


def function(session, name: str, role_arn: str, **extra: Any) -> str:
    return session.client("lambda").create_function(
        FunctionName=name, Runtime="python3.12", Role=role_arn, Handler="index.handler",
        Code={"ZipFile": code()}, **extra)["FunctionArn"]


def log_group(session, name: str) -> None:
    """A compliant log group: our KMS key, a retention period."""
    logs = session.client("logs")
    logs.create_log_group(logGroupName=name, kmsKeyId=f"arn:aws:kms:{REGION}:{ACCOUNT}:key/logs")
    logs.put_retention_policy(logGroupName=name, retentionInDays=365)


# What Lambda answers for each function and moto leaves out: the group it logs to (the default
# /aws/lambda/<name> when nobody chose one) and the dead-letter queue.
LOGGING = {"good": {"LogFormat": "JSON", "ApplicationLogLevel": "INFO", "SystemLogLevel": "WARN",
                    "LogGroup": "/app/good"},
           "bad": {"LogFormat": "Text", "LogGroup": "/aws/lambda/bad"}}


def with_logging(parsed: dict) -> None:
    for fn in parsed.get("Functions", []):
        fn["LoggingConfig"] = LOGGING.get(fn["FunctionName"],
                                          {"LogFormat": "Text", "LogGroup": f"/aws/lambda/{fn['FunctionName']}"})
        if fn["FunctionName"] == "good":
            fn["DeadLetterConfig"] = {"TargetArn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:dead-letters"}


def seed_functions(session, clients: Clients) -> dict[str, str]:
    """good: logs to its own encrypted group with retention, holds a secret's ARN; bad: logs to
    the default group, which the account does not have, with a password and an access key id in
    its environment; default: logs to the default group, which the account has (compliant)."""
    role_arn = role(session)
    ec2 = session.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="fn", Description="fn", VpcId=vpc)["GroupId"]
    secret_arn = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:db-AbCdEf"
    arns = {
        "good": function(session, "good", role_arn, KMSKeyArn=f"arn:aws:kms:{REGION}:{ACCOUNT}:key/fn",
                         Environment={"Variables": {"DB_SECRET_ARN": secret_arn, "DEBUG": "false",
                                                    "TABLE_NAME": "orders"}},
                         VpcConfig={"SubnetIds": [subnet], "SecurityGroupIds": [group]},
                         TracingConfig={"Mode": "Active"}),
        "bad": function(session, "bad", role_arn,
                        Environment={"Variables": {"DB_PASSWORD": SECRET, "LEGACY_KEY": KEY_ID,
                                                   "TABLE_NAME": "orders"}}),
        "default": function(session, "default", role_arn),
    }
    log_group(session, "/app/good")
    log_group(session, "/aws/lambda/default")
    amend(clients("lambda", REGION), "ListFunctions", with_logging)
    return arns


def test_functions_have_the_template_shapes(session, clients):
    arns = seed_functions(session, clients)
    props = of_type(collect(clients, "lambda"), "AWS::Lambda::Function")
    assert set(props) == set(arns.values())
    good, bad = props[arns["good"]], props[arns["bad"]]
    assert {k: good[k] for k in ("FunctionName", "Runtime", "Handler", "Role", "KmsKeyArn")} == {
        "FunctionName": "good", "Runtime": "python3.12", "Handler": "index.handler",
        "Role": f"arn:aws:iam::{ACCOUNT}:role/fn", "KmsKeyArn": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/fn"}
    # a group chosen by name is kept; Lambda's default group is what a template says by leaving it out
    assert good["LoggingConfig"] == LOGGING["good"]
    assert bad["LoggingConfig"] == {"LogFormat": "Text"}
    assert good["DeadLetterConfig"] == {"TargetArn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:dead-letters"}
    assert good["TracingConfig"] == {"Mode": "Active"}
    assert set(good["VpcConfig"]) >= {"SubnetIds", "SecurityGroupIds"} and good["VpcConfig"]["SubnetIds"]
    assert "VpcConfig" not in bad and "DeadLetterConfig" not in bad and "Tags" not in bad
    # names kept; inert values (ARNs, booleans) kept; everything else redacted, an access key id
    # marked as one without its digits
    assert good["Environment"]["Variables"]["DB_SECRET_ARN"].startswith("arn:aws:secretsmanager:")
    assert good["Environment"]["Variables"]["DEBUG"] == "false"
    variables = bad["Environment"]["Variables"]
    assert set(variables) == {"DB_PASSWORD", "LEGACY_KEY", "TABLE_NAME"}
    assert SECRET not in json.dumps(props) and KEY_ID not in json.dumps(props)
    assert "orders" not in json.dumps(props)


def test_functions_are_judged_and_no_secret_reaches_the_output(session, clients):
    arns = seed_functions(session, clients)
    result = run(clients, "lambda", "logs")
    assert failing(result) == {("DP-LambdaLogGroup", "violation"), ("DP-NoSecretsInEnvironment", "violation")}
    assert {f.arn for f in result.report.findings if f.fails} == {arns["bad"]}
    by_rule = {}
    for f in result.report.findings:
        by_rule.setdefault(f.rule_id, []).append(f)
    [log] = by_rule["DP-LambdaLogGroup"]
    assert log.clause == 9 and log.property_path == "Properties/LoggingConfig/LogGroup"
    assert "/aws/lambda/bad, which the account does not have" in log.message
    assert "no scanned template" not in log.message
    secrets = {f.property_path: f.message for f in by_rule["DP-NoSecretsInEnvironment"]}
    assert secrets == {
        "Properties/Environment/Variables/DB_PASSWORD": "DB_PASSWORD looks like a credential and has a literal value",
        "Properties/Environment/Variables/LEGACY_KEY": "LEGACY_KEY holds an AWS access key id"}
    for fmt in ("json", "sarif", "table", "markdown"):
        out = render_scan(result.report, fmt)
        assert SECRET not in out and KEY_ID not in out, fmt
    # nor does the audit keep them in what it read
    assert SECRET not in json.dumps([t.data for t in result.app.templates], default=str)


def test_unread_log_groups_make_the_default_group_unverifiable(session, clients):
    arns = seed_functions(session, clients)
    fail(clients("logs", REGION), "DescribeLogGroups")
    for result in (run(clients, "lambda", "logs"), run(clients, "lambda")):  # denied; not read at all
        logged = [f for f in result.report.findings if f.rule_id == "DP-LambdaLogGroup"]
        # neither the function whose group is missing nor the one whose group exists can be
        # judged; the one that names its group can
        assert {(f.arn, f.status) for f in logged} == {(arns["bad"], "unverifiable"),
                                                        (arns["default"], "unverifiable")}
        assert all("did not read the log groups" in f.message for f in logged)


def test_log_groups_of_another_region_do_not_count(session, clients):
    arn = function(session, "solo", role(session))
    session.client("logs", region_name="eu-west-1").create_log_group(logGroupName="/aws/lambda/solo")
    result = audit([clients], [REGION, "eu-west-1"], only={"lambda", "logs"})
    assert {(f.rule_id, f.status) for f in result.report.findings if f.arn == arn} == {
        ("DP-LambdaLogGroup", "violation")}


def test_function_listing_denied_is_a_gap(session, clients):
    seed_functions(session, clients)
    fail(clients("lambda", REGION), "ListFunctions", "AccessDeniedException")
    result = run(clients, "lambda", "logs")
    [gap] = [f for f in result.report.findings if f.rule_id == "DP-AuditComplete"]
    assert gap.status == "unverifiable" and "ListFunctions failed: AccessDeniedException" in gap.message
    assert not [f for f in result.report.findings if f.resource_type == "AWS::Lambda::Function"]
    assert result.incomplete


def test_an_environment_lambda_cannot_decrypt_is_unverifiable(session, clients):
    arn = function(session, "locked", role(session), Environment={"Variables": {"DB_PASSWORD": SECRET}})

    def locked(parsed: dict) -> None:
        for fn in parsed.get("Functions", []):
            fn["Environment"] = {"Error": {"ErrorCode": "KMSAccessDeniedException", "Message": "key disabled"}}
    amend(clients("lambda", REGION), "ListFunctions", locked)
    result = run(clients, "lambda", "logs")
    [env] = [f for f in result.report.findings if f.rule_id == "DP-NoSecretsInEnvironment"]
    assert (env.status, env.arn) == ("unverifiable", arn) and "KMSAccessDeniedException" in env.message


def test_functions_are_read_across_pages(session, clients):
    role_arn = role(session)
    for i in range(7):
        function(session, f"fn{i}", role_arn)
    seen = paged(clients("lambda", REGION), "ListFunctions", "Functions", 3, "Marker", "NextMarker")
    assert len(of_type(collect(clients, "lambda"), "AWS::Lambda::Function")) == 7
    assert [p.get("Marker") for p in seen] == [None, "3", "6"]


# ------------------------------------------------------------------------------------ DynamoDB

KEY_SCHEMA = {"KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
              "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
              "BillingMode": "PAY_PER_REQUEST"}
CONFIDENTIAL = [{"Key": "data-classification", "Value": "confidential"}, {"Key": "data-owner", "Value": "orders-team"}]
STORE_RULES = {"DP-DynamoDbKmsEncryption", "DP-DataClassificationTag", "DP-DataOwnerTag", "DP-ConfidentialDataCmk"}


def table(session, name: str, **extra: Any) -> str:
    created = session.client("dynamodb").create_table(TableName=name, **KEY_SCHEMA, **extra)
    return created["TableDescription"]["TableArn"]


def seed_tables(session) -> tuple[str, str, str]:
    """A table under our KMS key, tagged, with point-in-time recovery, deletion protection and a
    resource policy; an untagged one under DynamoDB's AWS-owned key. Returns (key, cmk, plain)."""
    key = session.client("kms").create_key(Description="orders")["KeyMetadata"]["Arn"]
    cmk = table(session, "orders", SSESpecification={"Enabled": True, "SSEType": "KMS", "KMSMasterKeyId": key},
                Tags=CONFIDENTIAL, DeletionProtectionEnabled=True)
    ddb = session.client("dynamodb")
    ddb.update_continuous_backups(TableName="orders",
                                  PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True})
    ddb.put_resource_policy(ResourceArn=cmk, Policy=json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/orders"},
        "Action": "dynamodb:GetItem", "Resource": cmk}]}))
    plain = table(session, "plain")
    return key, cmk, plain


def test_tables_have_the_template_shapes(session, clients):
    key, cmk, plain = seed_tables(session)
    props = of_type(collect(clients, "dynamodb"), "AWS::DynamoDB::Table")
    assert set(props) == {cmk, plain}
    orders = props[cmk]
    assert orders["TableName"] == "orders" and orders["BillingMode"] == "PAY_PER_REQUEST"
    assert orders["SSESpecification"] == {"SSEEnabled": True, "SSEType": "KMS", "KMSMasterKeyId": key}
    assert orders["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert orders["DeletionProtectionEnabled"] is True
    assert orders["Tags"] == CONFIDENTIAL
    assert orders["ResourcePolicy"]["PolicyDocument"]["Statement"][0]["Action"] == "dynamodb:GetItem"
    # the AWS-owned key, as a template says it: SSE not enabled, no key
    assert props[plain]["SSESpecification"] == {"SSEEnabled": False}
    assert props[plain]["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": False}
    assert "Tags" not in props[plain] and "ResourcePolicy" not in props[plain]


def test_tables_are_judged_by_the_template_rules(session, clients):
    _, cmk, plain = seed_tables(session)
    result = run(clients, "dynamodb", "kms")
    assert not failing(result, cmk)
    assert failing(result, plain) == {(rule, "violation") for rule in STORE_RULES}
    [encryption] = [f for f in result.report.findings if f.rule_id == "DP-DynamoDbKmsEncryption"]
    assert encryption.clause == 7 and "AWS-owned key" in encryption.message


def test_the_aws_managed_key_is_kms_but_not_customer_managed(session, clients):
    arn = table(session, "managed", SSESpecification={"Enabled": True, "SSEType": "KMS"}, Tags=CONFIDENTIAL)
    answer(clients("kms", REGION), "DescribeKey",
           lambda params: {"KeyMetadata": {"KeyId": "aws-dynamodb", "KeyManager": "AWS"}})
    live = collect(clients, "dynamodb")
    assert of_type(live, "AWS::DynamoDB::Table")[arn]["SSESpecification"]["KMSMasterKeyId"] == "alias/aws/dynamodb"
    result = run(clients, "dynamodb")
    assert failing(result, arn) == {("DP-ConfidentialDataCmk", "violation")}


def test_a_stream_policy_open_to_everyone_is_found(session, clients):
    arn = table(session, "events", StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
                Tags=CONFIDENTIAL)
    everyone = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": "*", "Action": "dynamodb:GetRecords", "Resource": "*"}]})
    # moto keeps no policy on a stream: answer as AWS does
    answer(clients("dynamodb", REGION), "GetResourcePolicy",
           lambda params: {"Policy": everyone, "RevisionId": "1"} if "/stream/" in params["ResourceArn"] else None)
    props = of_type(collect(clients, "dynamodb"), "AWS::DynamoDB::Table")[arn]
    assert props["StreamSpecification"]["StreamViewType"] == "NEW_IMAGE"
    result = run(clients, "dynamodb")
    [finding] = [f for f in result.report.findings if f.rule_id == "DP-ResourcePolicyNoWildcardPrincipal"]
    assert finding.status == "violation" and finding.arn == arn
    assert "StreamSpecification" in finding.property_path


def test_denied_reads_are_unverifiable_never_compliant(session, clients):
    _, cmk, plain = seed_tables(session)
    ddb = clients("dynamodb", REGION)
    fail(ddb, "DescribeTable", when=lambda params: params.get("TableName") == "orders")
    fail(ddb, "ListTagsOfResource", "ThrottlingException", when=lambda params: params["ResourceArn"] == plain)
    fail(ddb, "GetResourcePolicy", when=lambda params: params["ResourceArn"] == plain)
    fail(ddb, "DescribeContinuousBackups")
    result = run(clients, "dynamodb")
    orders = {f.rule_id: f for f in result.report.findings if f.arn == cmk}
    # what DescribeTable answers (encryption, the key, a stream's policy) cannot be known; the
    # tags, read by another call, still pass
    assert {r: f.status for r, f in orders.items()} == {
        "DP-DynamoDbKmsEncryption": "unverifiable", "DP-ConfidentialDataCmk": "unverifiable",
        "DP-ResourcePolicyNoWildcardPrincipal": "unverifiable", "DP-IamNoNotAction": "unverifiable",
        "DP-ResourcePolicyNoWildcardAction": "unverifiable"}
    assert "DescribeTable failed: AccessDenied" in orders["DP-DynamoDbKmsEncryption"].message
    plain_findings = {(f.rule_id, f.status) for f in result.report.findings if f.arn == plain}
    assert plain_findings == {("DP-DynamoDbKmsEncryption", "violation"), ("DP-DataClassificationTag", "unverifiable"),
                              ("DP-DataOwnerTag", "unverifiable"), ("DP-ConfidentialDataCmk", "unverifiable"),
                              ("DP-ResourcePolicyNoWildcardPrincipal", "unverifiable"),
                              ("DP-IamNoNotAction", "unverifiable"),
                              ("DP-ResourcePolicyNoWildcardAction", "unverifiable")}
    assert result.incomplete


def test_a_key_whose_kind_cannot_be_read_is_unverifiable(session, clients):
    _, cmk, _ = seed_tables(session)
    fail(clients("kms", REGION), "DescribeKey")
    result = run(clients, "dynamodb")
    assert failing(result, cmk) == {("DP-ConfidentialDataCmk", "unverifiable")}


@pytest.mark.parametrize("code", ["AccessDeniedException", "ThrottlingException"])
def test_table_listing_fails(session, clients, code):
    seed_tables(session)
    fail(clients("dynamodb", REGION), "ListTables", code)
    result = run(clients, "dynamodb")
    [gap] = [f for f in result.report.findings if f.rule_id == "DP-AuditComplete"]
    assert gap.status == "unverifiable" and f"ListTables failed: {code}" in gap.message
    assert not [f for f in result.report.findings if f.resource_type == "AWS::DynamoDB::Table"]


def test_a_table_deleted_during_the_audit_is_skipped(session, clients):
    _, cmk, plain = seed_tables(session)
    other = session.client("dynamodb")
    clients("dynamodb", REGION).meta.events.register(
        "before-parameter-build.dynamodb.DescribeTable",
        lambda params, **_: other.delete_table(TableName="plain") if params.get("TableName") == "plain" else None)
    live = collect(clients, "dynamodb")
    assert set(of_type(live, "AWS::DynamoDB::Table")) == {cmk}
    assert not live.gaps


def test_tables_and_tags_are_read_across_pages(session, clients):
    tags = [{"Key": f"k{i:02d}", "Value": "v"} for i in range(23)]  # moto answers 10 tags a page
    for i in range(5):
        table(session, f"t{i}", Tags=tags)
    seen = paged(clients("dynamodb", REGION), "ListTables", "TableNames", 2,
                 "ExclusiveStartTableName", "LastEvaluatedTableName")
    props = of_type(collect(clients, "dynamodb"), "AWS::DynamoDB::Table")
    assert len(props) == 5 and all(len(p["Tags"]) == 23 for p in props.values())
    assert len(seen) == 3
    assert clients.calls["dynamodb:ListTagsOfResource"] == 5 * 3
