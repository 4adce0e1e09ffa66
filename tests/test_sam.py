"""SAM templates judged as what they deploy: expanded by AWS's SAM translator, findings named by
the SAM resource and property the developer wrote. Fixtures in tests/data/sam are public SAM
templates (each names its source) and one written for these tests (compliant.yaml)."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from dpguard.cli import main
from dpguard.engine import Config, evaluate, load
from dpguard.rules import catalogue

DATA = Path(__file__).parent / "data" / "sam"
RULES = catalogue()


def judge(*paths: Path, trust_parameter_defaults: bool = False):
    app, errors = load([str(p) for p in paths], trust_parameter_defaults=trust_parameter_defaults)
    assert errors == []
    return app, evaluate(app, Config(trust_parameter_defaults=trust_parameter_defaults), RULES)


def named(report, rule_id: str) -> set[tuple]:
    return {(f.logical_id, f.resource_type, f.property_path) for f in report.findings
            if f.rule_id == rule_id and f.fails}


def written(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_an_inline_wildcard_statement_is_named_on_the_sam_policies():
    app, report = judge(DATA / "managed_policies_everything.yaml")
    assert named(report, "DP-IamNoWildcardAction") == {
        ("MyFunction", "AWS::Serverless::Function", "Properties/Policies"),
        ("MyStateMachine", "AWS::Serverless::StateMachine", "Properties/Policies")}
    finding = next(f for f in report.findings if f.rule_id == "DP-IamNoWildcardAction"
                   and f.logical_id == "MyFunction")
    assert "in the role SAM makes, MyFunctionRole" in finding.message
    # what was judged is what SAM deploys: the role it made, not the SAM resource as written
    assert app.templates[0].resources["MyFunctionRole"].type == "AWS::IAM::Role"
    generated = {"MyFunctionRole", "MyStateMachineRole"}
    assert not generated & {f.logical_id for f in report.findings}
    assert not any(f.rule_id == "DP-TemplateProcessed" for f in report.findings)


def test_a_compliant_sam_app_with_policy_templates_passes():
    app, report = judge(DATA / "compliant.yaml")
    assert report.failing() == []
    role = app.templates[0].resources["ReadReportsRole"]  # S3ReadPolicy, as SAM expands it
    documents = json.dumps(role.props["Policies"])
    assert "s3:GetObject" in documents and "example-reports-bucket" in documents
    assert {r.type for r in app.templates[0].resources.values()} >= {
        "AWS::Lambda::Function", "AWS::ApiGatewayV2::Api", "AWS::ApiGatewayV2::Stage", "AWS::Lambda::Permission"}


def test_an_http_api_without_auth_is_named_on_its_auth(tmp_path):
    text = (DATA / "compliant.yaml").read_text()
    open_api = text.replace("      Auth:\n        EnableIamAuthorizer: true\n        DefaultAuthorizer: AWS_IAM\n", "")
    assert open_api != text
    _, report = judge(written(tmp_path, "open.yaml", open_api))
    assert named(report, "DP-ApiGatewayOpenApiAuth") == {("ReportsApi", "AWS::Serverless::HttpApi", "Properties/Auth")}
    assert [f.rule_id for f in report.failing()] == ["DP-ApiGatewayOpenApiAuth"]


def test_rest_apis_with_and_without_auth():
    _, without = judge(DATA / "implicit_api.yaml")
    found = [f for f in without.findings if f.rule_id == "DP-ApiGatewayOpenApiAuth"]
    assert {(f.logical_id, f.resource_type, f.property_path) for f in found} == {
        ("ServerlessRestApi", "AWS::Serverless::Api", "Properties/Auth")}
    assert sorted(f.message.split(" needs")[0] for f in found) == [
        "ANY /{proxy+}", "GET /getlist", "POST /add", "POST /complete"]
    assert "the functions' events" in found[0].message
    _, with_auth = judge(DATA / "api_with_default_aws_iam_auth.yaml")
    assert named(with_auth, "DP-ApiGatewayOpenApiAuth") == set()
    # SAM's deployment also makes a stage named "Stage": judged too, and named after the fix
    assert ("MyApiWithAwsIamAuth", "AWS::Serverless::Api", "Properties/OpenApiVersion") \
        in named(with_auth, "DP-ApiGatewayAccessLogs")


def test_globals_are_judged_and_named():
    _, report = judge(DATA / "http_api_global_iam_auth_enabled.yaml")
    found = [f for f in report.findings if f.rule_id == "DP-ApiGatewayOpenApiAuth"]
    # Globals enable the IAM authorizer; only the route that does not use it is open
    assert [(f.logical_id, f.resource_type, f.property_path) for f in found] == [
        ("ServerlessHttpApi", "AWS::Serverless::HttpApi", "Properties/Auth")]
    assert found[0].message.startswith("GET /default-auth needs no authorization")
    assert "set in Globals.HttpApi" in found[0].message
    _, compliant = judge(DATA / "globals_for_function.yaml")  # VPC, log group and all from Globals
    assert compliant.failing() == []


def test_a_simple_table_is_judged_as_the_table_sam_makes():
    _, report = judge(DATA / "simpletable.yaml")
    assert named(report, "DP-DynamoDbKmsEncryption") == {
        ("MinimalTable", "AWS::Serverless::SimpleTable", "Properties/SSESpecification/SSEEnabled"),
        ("CompleteTable", "AWS::Serverless::SimpleTable", "Properties/SSESpecification/SSEEnabled")}
    assert ("MinimalTable", "AWS::Serverless::SimpleTable", "Properties/Tags") in named(report, "DP-DataClassificationTag")


def test_a_state_machine_is_named_on_its_logging():
    _, report = judge(DATA / "managed_policies_everything.yaml")
    [finding] = [f for f in report.findings if f.rule_id == "DP-StepFunctionsLogging"]
    assert (finding.logical_id, finding.resource_type, finding.property_path) == (
        "MyStateMachine", "AWS::Serverless::StateMachine", "Properties/Logging")
    assert "at Properties/LoggingConfiguration/Level" in finding.message


def test_layers_expand_even_with_a_parameter_for_their_retention():
    app, report = judge(DATA / "basic_layer.yaml")
    tpl = app.templates[0]
    written_layers = {"MinimalLayer", "LayerWithContentUriObject", "CompleteLayer", "LayerWithCondition",
                      "LayerWithCaseInsensitiveRetentionPolicy", "LayerWithRetentionPolicyParam",
                      "LayerWithArchitectures"}
    made = {tpl.sam.sources[r.logical_id].logical_id for r in tpl.of_type("AWS::Lambda::LayerVersion")}
    assert made == written_layers  # each layer once, under SAM's hashed logical id
    assert all(f.rule_id != "DP-TemplateProcessed" for f in report.findings)
    assert report.failing() == []


def test_an_s3_event_source_judges_the_templates_bucket_under_its_own_name():
    app, report = judge(DATA / "s3_lambda.yaml")
    bucket = app.templates[0].resources["SrcBucket"]
    assert bucket.props["NotificationConfiguration"]["LambdaConfigurations"]  # SAM wired the event in
    assert ("SrcBucket", "AWS::S3::Bucket", "Properties/LoggingConfiguration") in named(report, "DP-S3AccessLogs")
    assert named(report, "DP-LambdaLogGroup") == {
        ("CreateThumbnail", "AWS::Serverless::Function", "Properties/LoggingConfig/LogGroup")}
    assert {f.resource_type for f in report.failing() if f.logical_id} <= {"AWS::S3::Bucket", "AWS::Serverless::Function"}


def test_what_an_event_makes_is_named_on_the_event():
    _, report = judge(DATA / "sns_sqs.yaml")  # SqsSubscription: true makes a queue
    assert named(report, "DP-SqsEncrypted") == {
        ("SaveNotificationFunction", "AWS::Serverless::Function", "Properties/Events/NotificationTopic")}
    finding = next(f for f in report.findings if f.rule_id == "DP-SqsEncrypted")
    assert "in the queue SAM makes, SaveNotificationFunctionNotificationTopicQueue" in finding.message


def test_an_acknowledgment_on_the_sam_resource_covers_what_sam_makes_from_it(tmp_path):
    text = (DATA / "managed_policies_everything.yaml").read_text().replace(
        "  MyFunction:\n    Type: AWS::Serverless::Function\n",
        "  MyFunction:\n    Type: AWS::Serverless::Function\n    Metadata:\n      cdk_nag:\n        rules_to_suppress:\n"
        "          - {id: DP-IamNoWildcardAction, reason: break-glass function reviewed in SEC-981}\n")
    _, report = judge(written(tmp_path, "acknowledged.yaml", text))
    statuses = {(f.logical_id, f.status) for f in report.findings if f.rule_id == "DP-IamNoWildcardAction"}
    assert statuses == {("MyFunction", "acknowledged"), ("MyStateMachine", "violation")}
    records = [(a.logical_id, a.status) for a in report.acknowledgments if a.rule_id == "DP-IamNoWildcardAction"]
    assert records == [("MyFunction", "holds")]


def test_other_transforms_stay_unverifiable(tmp_path):
    text = (DATA / "simpletable.yaml").read_text().replace(
        "Transform: AWS::Serverless-2016-10-31", "Transform: [AWS::Serverless-2016-10-31, CompanyMacro]")
    app, report = judge(written(tmp_path, "macro.yaml", text))
    assert app.templates[0].data["Transform"] == ["CompanyMacro"]
    [processed] = [f for f in report.findings if f.rule_id == "DP-TemplateProcessed"]
    assert processed.status == "unverifiable" and "CompanyMacro" in processed.message
    assert named(report, "DP-DynamoDbKmsEncryption")  # SAM's part is judged all the same


def test_a_parameter_sam_must_read_leaves_the_sam_resources_unverifiable():
    path = DATA / "api_with_basic_custom_domain_intrinsics.yaml"
    _, report = judge(path)
    processed = [f for f in report.findings if f.rule_id == "DP-TemplateProcessed"]
    assert {(f.logical_id, f.status) for f in processed} == {("MyApi", "unverifiable"), ("MyFunction", "unverifiable")}
    assert all("EndpointConfiguration for Custom Domains" in f.message for f in processed)
    app, trusted = judge(path, trust_parameter_defaults=True)
    assert not any(f.rule_id == "DP-TemplateProcessed" for f in trusted.findings)
    assert app.templates[0].of_type("AWS::ApiGateway::DomainName")


AUTH_FROM_PARAMETER = """\
Transform: AWS::Serverless-2016-10-31
Parameters:
  Authorizer: {Type: String, Default: AWS_IAM}
Resources:
  Api:
    Type: AWS::Serverless::Api
    Properties:
      StageName: prod
      Auth: {DefaultAuthorizer: !Ref Authorizer}
  Reader:
    Type: AWS::Serverless::Function
    Properties:
      InlineCode: "def handler(event, context): return event"
      Handler: index.handler
      Runtime: python3.12
      Events:
        Get: {Type: Api, Properties: {RestApiId: !Ref Api, Path: /, Method: get}}
"""


def test_an_authorizer_chosen_at_deploy_time_is_never_judged_as_none(tmp_path):
    path = written(tmp_path, "auth.yaml", AUTH_FROM_PARAMETER)
    _, report = judge(path)
    assert not any(f.rule_id == "DP-ApiGatewayOpenApiAuth" for f in report.findings)
    processed = [f for f in report.findings if f.rule_id == "DP-TemplateProcessed"]
    assert processed and all(f.status == "unverifiable" and "Api.Auth names a parameter" in f.message
                             for f in processed)
    _, trusted = judge(path, trust_parameter_defaults=True)  # the default, AWS_IAM, then holds
    assert not any(f.rule_id in ("DP-ApiGatewayOpenApiAuth", "DP-TemplateProcessed") for f in trusted.findings)


def test_a_template_sam_rejects_is_a_one_line_error_naming_the_file(capsys):
    path = DATA / "error_s3_not_in_template.yaml"
    _, errors = load([str(path)])
    assert [e.path for e in errors] == [str(path)]
    assert "S3 events must reference an S3 bucket in the same template" in errors[0].message
    assert main(["scan", str(path)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    [line] = [line for line in err.splitlines() if str(path) in line]
    assert "the SAM transform rejects the template" in line


def test_the_json_contract_is_kept(capsys):
    assert main(["scan", str(DATA / "managed_policies_everything.yaml"), "--format", "json"]) == 1
    document = json.loads(capsys.readouterr().out)
    keys = {"rule_id", "clause", "severity", "status", "template", "stack", "logical_id", "resource_type",
            "construct_path", "property_path", "message", "remediation", "acknowledgment"}
    assert all(set(f) == keys for f in document["findings"])
    assert {f["resource_type"] for f in document["findings"] if f["logical_id"] in ("MyFunction", "MyStateMachine")} \
        == {"AWS::Serverless::Function", "AWS::Serverless::StateMachine"}


@pytest.mark.parametrize("name", sorted(p.name for p in DATA.glob("*.yaml") if not p.name.startswith("error_")))
def test_no_finding_names_a_resource_sam_made(name):
    app, report = judge(DATA / name)
    sources = app.templates[0].sam.sources
    assert sources or name == "api_with_basic_custom_domain_intrinsics.yaml"
    assert not {f.logical_id for f in report.findings} & set(sources) - {s.logical_id for s in sources.values()}


def test_the_order_of_findings_does_not_depend_on_the_order_rules_run_in():
    """One SAM resource can be named for several resources it made, and one rule can report a
    resource several times: the report lists them the same way whichever rule, and whichever
    of a rule's types, runs first."""
    paths = [str(p) for p in sorted(DATA.glob("*.yaml"))]
    reports = []
    backwards = [dataclasses.replace(r, resource_types=r.resource_types[::-1]) for r in reversed(catalogue())]
    for rules in (catalogue(), backwards):
        app, _ = load(paths)
        reports.append([f.as_dict() for f in evaluate(app, Config(), rules).findings])
    assert reports[0] == reports[1]
    names = [(f["logical_id"], f["rule_id"], f["property_path"]) for f in reports[0]]
    assert len(names) > len(set(names))  # the data has such ties: the test would see a wrong order
