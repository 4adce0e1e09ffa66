"""The response stack (clauses 4, 5, 7): the functions that carry out the policy's duties with
deadlines, deployed so that they pass the policy themselves.

One enforced synth of the whole dev app for the module (enforce() raises on any unacknowledged
finding); the assertions read the response stack's template property by property."""
from __future__ import annotations

import importlib
import json
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

import dpguard
from dpguard.response.common import OPEN_INDEX
from dpguard.stacks import EnvironmentSettings, SettingsError

ROOT = Path(__file__).resolve().parent.parent
CONTEXT = json.loads((ROOT / "cdk.json").read_text())["context"]
HANDLERS = {"IncidentFunction": "dpguard.response.incidents.handler",
            "EscalationFunction": "dpguard.response.escalation.handler",
            "DataRequestFunction": "dpguard.response.data_requests.handler",
            "SecretExposureFunction": "dpguard.response.secrets.handler"}


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory):
    import app as baseline  # the project's app.py

    outdir = tmp_path_factory.mktemp("cdk.out")
    app = cdk.App(outdir=str(outdir), context={**CONTEXT, "environment": "dev"})
    baseline.build(app)
    assembly = app.synth()
    stack = app.node.find_child("Dpg-Dev-Response")
    return {"outdir": outdir, "stack": stack,
            "template": Template.from_json(assembly.get_stack_by_name("Dpg-Dev-Response").template)}


@pytest.fixture(scope="module")
def template(synthesized) -> dict:
    return synthesized["template"].to_json()


def resources(template: dict, resource_type: str) -> dict[str, dict]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == resource_type}


def function(template: dict, construct_id: str) -> dict:
    [found] = [r for k, r in resources(template, "AWS::Lambda::Function").items() if k.startswith(construct_id)]
    return found


def role_statements(template: dict, construct_id: str) -> list[dict]:
    role = function(template, construct_id)["Properties"]["Role"]["Fn::GetAtt"][0]
    policies = [p for p in resources(template, "AWS::IAM::Policy").values()
                if {"Ref": role} in p["Properties"]["Roles"]]
    return [s for p in policies for s in p["Properties"]["PolicyDocument"]["Statement"]]


def actions_of(statements: list[dict]) -> set[str]:
    return {a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}


# --- the policy gate ----------------------------------------------------------------------------

def test_the_response_stack_passes_the_policy_with_only_its_documented_acknowledgments(synthesized):
    report = json.loads((synthesized["outdir"] / "validation-report.json").read_text())
    assert [v for p in report["pluginReports"] for v in p["violations"]] == []
    mine = {(v["ruleName"], c["constructPath"].removeprefix("Dpg-Dev-Response/"))
            for p in report["pluginReports"] for v in p["suppressedViolations"]
            for c in v["violatingConstructs"] if c["constructPath"].startswith("Dpg-Dev-Response/")}
    # Wildcards only where a deletion names per-user prefixes and where any secret may leak.
    assert {rule.split("[")[0] for rule, _ in mine} == {"AwsSolutions-IAM5", "DP-IamNoWildcardResourceWrite"}
    assert {path.split("/")[0] for _, path in mine} == {"DataRequestFunctionRole", "SecretExposureFunctionRole"}
    assert {rule for rule, _ in mine if rule.startswith("AwsSolutions-IAM5")} == {
        "AwsSolutions-IAM5[Resource::Dpg-Dev-Data-UserDataBucketArn/users/*]",
        *{f"AwsSolutions-IAM5[Resource::<{rid}.Arn>/{prefix}/*]"
          for rid in [k for k in resources(synthesized["template"].to_json(), "AWS::S3::Bucket")]
          for prefix in ("exports", "confirmations")},
        "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:secret:*]",
        "AwsSolutions-IAM5[Resource::*]"}


# --- functions ----------------------------------------------------------------------------------

@pytest.mark.parametrize("construct_id", HANDLERS)
def test_each_function_runs_its_handler_on_the_newest_python(template, construct_id):
    props = function(template, construct_id)["Properties"]
    assert props["Handler"] == HANDLERS[construct_id]
    assert props["Runtime"] == "python3.14"
    module, name = props["Handler"].rsplit(".", 1)
    assert callable(getattr(importlib.import_module(module), name))


@pytest.mark.parametrize("construct_id", HANDLERS)
def test_each_function_logs_to_its_own_encrypted_log_group_with_retention(template, construct_id):
    log_group = function(template, construct_id)["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
    props = template["Resources"][log_group]["Properties"]
    assert "KmsKeyId" in props and props["RetentionInDays"] == 365
    writes = [s for s in role_statements(template, construct_id) if {"Fn::GetAtt": [log_group, "Arn"]} == s["Resource"]]
    assert actions_of(writes) == {"logs:CreateLogStream", "logs:PutLogEvents"}


@pytest.mark.parametrize("construct_id", HANDLERS)
def test_each_function_has_an_encrypted_environment_and_dead_letter_queue(template, construct_id):
    props = function(template, construct_id)["Properties"]
    assert "KmsKeyArn" in props
    queue = props["DeadLetterConfig"]["TargetArn"]["Fn::GetAtt"][0]
    queue_props = template["Resources"][queue]["Properties"]
    assert "KmsMasterKeyId" in queue_props
    assert {t["Key"]: t["Value"] for t in queue_props["Tags"]}["data-classification"] == "confidential"


@pytest.mark.parametrize("construct_id", HANDLERS)
def test_each_role_may_use_the_key_of_its_dead_letter_queue_through_sqs(template, construct_id):
    props = function(template, construct_id)["Properties"]
    queue = template["Resources"][props["DeadLetterConfig"]["TargetArn"]["Fn::GetAtt"][0]]["Properties"]
    key = queue["KmsMasterKeyId"]["Fn::GetAtt"][0]
    uses = [s for s in role_statements(template, construct_id)
            if s["Resource"] == {"Fn::GetAtt": [key, "Arn"]} and "sqs" in json.dumps(s.get("Condition"))]
    assert uses and {"kms:GenerateDataKey", "kms:Decrypt"} <= actions_of(uses)


def test_eventbridge_may_use_the_key_for_dead_letters_from_this_stacks_rules_only(template):
    [key] = [r for r in resources(template, "AWS::KMS::Key").values()
             if r["Properties"].get("KeyUsage", "ENCRYPT_DECRYPT") == "ENCRYPT_DECRYPT"]
    [statement] = [s for s in key["Properties"]["KeyPolicy"]["Statement"]
                   if s.get("Principal") == {"Service": "events.amazonaws.com"}]
    assert statement["Condition"]["ArnLike"]["aws:SourceArn"]["Fn::Join"][1][-1].endswith(":rule/Dpg-Dev-Response-*")
    assert "aws:SourceAccount" in statement["Condition"]["StringEquals"]


@pytest.mark.parametrize("construct_id", HANDLERS)
def test_roles_have_no_managed_policy_and_no_wildcard_action(template, construct_id):
    role = function(template, construct_id)["Properties"]["Role"]["Fn::GetAtt"][0]
    assert "ManagedPolicyArns" not in template["Resources"][role]["Properties"]
    assert not [a for a in actions_of(role_statements(template, construct_id)) if "*" in a]


def test_escalation_reads_the_open_index_and_updates_records_only(template):
    statements = role_statements(template, "EscalationFunction")
    queries = [s for s in statements if s["Action"] == "dynamodb:Query"]
    assert len(queries) == 2 and all(s["Resource"]["Fn::Join"][1][-1] == f"/index/{OPEN_INDEX}" for s in queries)
    assert {a for a in actions_of(statements) if a.startswith("dynamodb:")} == {
        "dynamodb:Query", "dynamodb:GetItem", "dynamodb:UpdateItem"}  # no Scan, Put or Delete


def test_deletion_lists_only_user_partitions(template):
    statements = role_statements(template, "DataRequestFunction")
    [listing] = [s for s in statements if "s3:ListBucketVersions" in actions_of([s])]
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["users/*"]}}
    assert "cognito-idp:AdminDeleteUser" in actions_of(statements)
    assert "kms:Sign" in actions_of(statements)
    kms_uses = [s for s in statements if "kms:Decrypt" in actions_of([s])]
    assert kms_uses and all("kms:ViaService" in s["Condition"]["StringEquals"] for s in kms_uses)


def test_secret_responder_regenerates_but_cannot_delete_or_change_policies(template):
    actions = actions_of(role_statements(template, "SecretExposureFunction"))
    assert {"secretsmanager:PutSecretValue", "secretsmanager:RotateSecret",
            "secretsmanager:UpdateSecretVersionStage"} <= actions
    assert not {a for a in actions if a.startswith("secretsmanager:") and
                ("Delete" in a or "Policy" in a or "Tag" in a)}


def test_parties_and_their_deadlines_come_from_the_settings(template):
    env = function(template, "IncidentFunction")["Properties"]["Environment"]["Variables"]
    parties = {p["name"]: p["hours"] for p in json.loads(env["PARTIES"])}
    assert parties == {"customer": 72, "users": 72, "third-party-apis": 72, "amazon": 24}


def test_function_code_is_only_the_response_modules(synthesized, template):
    asset = synthesized["outdir"] / f"asset.{function(template, 'IncidentFunction')['Properties']['Code']['S3Key'].removesuffix('.zip')}"
    files = sorted(str(p.relative_to(asset)) for p in asset.rglob("*") if p.is_file())
    assert "dpguard/__init__.py" in files and "dpguard/response/common.py" in files
    assert all(f == "dpguard/__init__.py" or f.startswith("dpguard/response/") for f in files)
    assert not [f for f in files if f.endswith("_cli.py")]


# --- event sources ------------------------------------------------------------------------------

def test_security_events_reach_the_incident_function_with_retries_and_dead_letters(template):
    rules = {json.dumps(r["Properties"].get("EventPattern"), sort_keys=True): r["Properties"]
             for r in resources(template, "AWS::Events::Rule").values() if "EventPattern" in r["Properties"]}
    sources = sorted(json.loads(p)["source"][0] for p in rules)
    assert sources == ["aws.cloudwatch", "aws.guardduty", "aws.securityhub"]
    for props in rules.values():
        [target] = props["Targets"]
        assert target["RetryPolicy"]["MaximumRetryAttempts"] == 4
        assert "DeadLetterConfig" in target
    alarm = next(json.loads(p) for p in rules if "aws.cloudwatch" in p)
    assert alarm["detail"] == {"alarmName": [{"prefix": "dpguard-dev-"}], "state": {"value": ["ALARM"]}}


def test_escalation_runs_every_15_minutes(template):
    [schedule] = [r["Properties"] for r in resources(template, "AWS::Events::Rule").values()
                  if "ScheduleExpression" in r["Properties"]]
    assert schedule["ScheduleExpression"] == "rate(15 minutes)"


# --- records ------------------------------------------------------------------------------------

def test_trackers_are_encrypted_recoverable_and_index_open_items_by_deadline(template):
    tables = resources(template, "AWS::DynamoDB::Table")
    assert len(tables) == 2
    for table in tables.values():
        props = table["Properties"]
        assert props["SSESpecification"]["SSEEnabled"] is True and "KMSMasterKeyId" in props["SSESpecification"]
        assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
        assert props["DeletionProtectionEnabled"] is True and table["DeletionPolicy"] == "Retain"
        [index] = props["GlobalSecondaryIndexes"]
        assert index["IndexName"] == OPEN_INDEX
        assert [k["AttributeName"] for k in index["KeySchema"]] == ["tracking", "next_deadline"]


def test_confirmations_are_signed_with_an_asymmetric_signing_key(template):
    keys = [r["Properties"] for r in resources(template, "AWS::KMS::Key").values()
            if r["Properties"].get("KeyUsage") == "SIGN_VERIFY"]
    assert [k["KeySpec"] for k in keys] == ["ECC_NIST_P256"]


def test_exports_expire_and_confirmations_stay(template):
    [bucket] = resources(template, "AWS::S3::Bucket").values()
    rules = bucket["Properties"]["LifecycleConfiguration"]["Rules"]
    exports = [r for r in rules if r.get("Prefix") == "exports/"]
    assert exports and exports[0]["ExpirationInDays"] == 7
    assert exports[0]["NoncurrentVersionExpiration"]["NoncurrentDays"] == 1  # versioned bucket
    assert not [r for r in rules if "ExpirationInDays" in r and r.get("Prefix") != "exports/"]


# --- settings -----------------------------------------------------------------------------------

@pytest.mark.parametrize("parties", [[], [{"name": "amazon", "hours": 96}], [{"name": "", "hours": 24}],
                                     [{"name": "customer", "hours": "72"}], ["customer"]])
def test_bad_notify_parties_are_refused_in_one_line(parties):
    context = {**CONTEXT, "environments": {"dev": {**CONTEXT["environments"]["dev"], "notify_parties": parties}}}
    with pytest.raises(SettingsError, match="notify_parties"):
        EnvironmentSettings.from_context(cdk.App(context=context), "dev")


def test_enforce_is_what_passes_the_stack():
    # Without enforce() the gate above would be vacuous: the same app with a wildcard grant fails.
    import app as baseline

    app = cdk.App(context={**CONTEXT, "environment": "dev"})
    baseline.build(app)
    stack = app.node.find_child("Dpg-Dev-Response")
    stack.escalation_function.role.add_to_principal_policy(
        cdk.aws_iam.PolicyStatement(actions=["dynamodb:*"], resources=["*"]))
    with pytest.raises(RuntimeError, match="Validation failed|ValidationFailed"):
        app.synth()
    assert dpguard  # the public entry points stay importable


def test_the_other_cdk_nag_packs_pass_the_response_stack_too(tmp_path):
    # An environment may turn on NIST, HIPAA or PCI: the patterns acknowledge what those packs ask
    # of every function, table and bucket, each with its reason.
    import app as baseline

    context = json.loads(json.dumps(CONTEXT))
    context["environments"]["dev"]["dpguard"] = {
        "packs": ["AwsSolutions", "NIST80053R5", "NIST80053R4", "HIPAASecurity", "PCIDSS321"]}
    app = cdk.App(outdir=str(tmp_path), context={**context, "environment": "dev"})
    baseline.build(app)
    with pytest.raises(RuntimeError):  # other stacks of the baseline do not pass every pack (README)
        app.synth()
    report = json.loads((tmp_path / "validation-report.json").read_text())
    failing = {v["ruleName"] for p in report["pluginReports"] for v in p["violations"]
               for c in v["violatingConstructs"] if c["constructPath"].startswith("Dpg-Dev-Response/")}
    # Object lock on every bucket is a retention decision the baseline leaves open (docs/baseline.md).
    assert failing == {"NIST.800.53.R4-S3BucketDefaultLockEnabled"}
