"""Reading input: YAML short forms, cloud assemblies, and bad input that must never crash."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from dpguard.engine.loader import InputError, load, parse_file

YAML_TEMPLATE = """\
AWSTemplateFormatVersion: 2010-09-09
Description: short forms
Conditions:
  Prod: !Equals [!Ref "AWS::Region", eu-west-1]
Resources:
  Data:
    Type: AWS::S3::Bucket
    Properties:
      BucketName: !Sub "${AWS::StackName}-data"
      Tags:
        - Key: arn
          Value: !GetAtt Key.Arn
        - Key: pick
          Value: !If [Prod, !Select [0, !Split [",", "a,b"]], !Join ["-", [x, !Ref Key]]]
        - Key: mapped
          Value: !FindInMap [M, !Ref "AWS::Region", v]
        - Key: imported
          Value: !ImportValue shared
        - Key: encoded
          Value: !Base64 text
  Key:
    Type: AWS::KMS::Key
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_yaml_short_forms_become_long_forms_and_dates_stay_strings(tmp_path):
    data = parse_file(write(tmp_path, "t.yaml", YAML_TEMPLATE))
    assert data["AWSTemplateFormatVersion"] == "2010-09-09"
    props = data["Resources"]["Data"]["Properties"]
    assert props["BucketName"] == {"Fn::Sub": "${AWS::StackName}-data"}
    tags = {t["Key"]: t["Value"] for t in props["Tags"]}
    assert tags["arn"] == {"Fn::GetAtt": ["Key", "Arn"]}
    assert tags["pick"]["Fn::If"][1] == {"Fn::Select": [0, {"Fn::Split": [",", "a,b"]}]}
    assert tags["mapped"] == {"Fn::FindInMap": ["M", {"Ref": "AWS::Region"}, "v"]}
    assert data["Conditions"]["Prod"] == {"Fn::Equals": [{"Ref": "AWS::Region"}, "eu-west-1"]}


def make_assembly(root: Path) -> Path:
    """A cloud assembly as `cdk synth` writes it: a stack with a nested stack, and a Stage."""
    out = root / "cdk.out"
    write(out, "manifest.json", json.dumps({"version": "48.0.0", "artifacts": {
        "Tree": {"type": "cdk:tree", "properties": {"file": "tree.json"}},
        "App": {"type": "aws:cloudformation:stack", "properties": {"templateFile": "App.template.json"},
                "displayName": "App"},
        "assembly-Prod": {"type": "cdk:cloud-assembly",
                          "properties": {"directoryName": "assembly-Prod", "displayName": "Prod"}}}}))
    write(out, "App.template.json", json.dumps({"Resources": {
        "Key": {"Type": "AWS::KMS::Key"},
        "Child": {"Type": "AWS::CloudFormation::Stack",
                  "Properties": {"Parameters": {"KeyArn": {"Fn::GetAtt": ["Key", "Arn"]}}},
                  "Metadata": {"aws:asset:path": "AppChild1234.nested.template.json"}}}}))
    write(out, "AppChild1234.nested.template.json", json.dumps({
        "Parameters": {"KeyArn": {"Type": "String"}},
        "Resources": {"Q": {"Type": "AWS::SQS::Queue", "Properties": {"KmsMasterKeyId": {"Ref": "KeyArn"}},
                            "Metadata": {"aws:cdk:path": "App/Child/Q/Resource"}}}}))
    write(out, "assembly-Prod/manifest.json", json.dumps({"version": "48.0.0", "artifacts": {
        "ProdData": {"type": "aws:cloudformation:stack",
                     "properties": {"templateFile": "ProdData.template.json"}, "displayName": "Prod/Data"}}}))
    write(out, "assembly-Prod/ProdData.template.json", json.dumps({"Resources": {"B": {"Type": "AWS::S3::Bucket"}}}))
    return out


def test_cloud_assembly_with_stage_and_nested_stack(tmp_path):
    out = make_assembly(tmp_path)
    app, errors = load([str(out)])
    assert errors == []
    stacks = sorted(t.stack for t in app.templates)
    assert stacks == ["App", "App/Child", "Prod/Data"]
    child = next(t for t in app.templates if t.stack == "App/Child")
    assert child.parent is not None and child.parent.logical_id == "Child"


def test_project_directory_finds_the_assembly_inside(tmp_path):
    make_assembly(tmp_path)
    write(tmp_path, "package.json", '{"name": "x"}')
    app, errors = load([str(tmp_path)])
    assert errors == [] and len(app.templates) == 3


@pytest.mark.parametrize("name,text,message", [
    ("bad.json", '{"Resources": ', "invalid JSON at line 1"),
    ("bad.yaml", "Resources: [unclosed", "invalid YAML"),
    ("list.yaml", "- a\n- b\n", "must be a mapping, not a list"),
    ("empty.yaml", "", "must be a mapping, not empty"),
    ("nores.yaml", "Description: x\n", "no Resources section"),
    ("shape.yaml", "Resources: [a, b]\n", "Resources must be a mapping"),
    ("tag.yaml", "Resources:\n  A: !Bogus x\n", "unknown tag !Bogus"),
    ("bin.json", None, "not UTF-8"),
    ("bomb.yaml", "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
        f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(8)) + "Resources: {}\n", "alias bomb"),
    ("cycle.yaml", "a: &a [*a]\nResources: {}\n", "recursive"),
    ("dup.yaml", "Resources:\n  A: {Type: AWS::S3::Bucket}\n  A: {Type: AWS::SNS::Topic}\n", "duplicate key 'A'"),
    ("dup.json", '{"Resources": {"A": {"Type": "AWS::S3::Bucket"}, "A": {"Type": "AWS::SNS::Topic"}}}',
     "duplicate key 'A'"),
    ("dupprops.template", '{"Resources": {"B": {"Type": "AWS::S3::Bucket", "Properties": {}, '
                          '"Properties": {"BucketName": "x"}}}}', "duplicate key 'Properties'"),
    ("mapcycle.yaml", "a: &a {x: *a}\nResources: {}\n", "recursive"),
    ("deep.json", "[" * 5000 + "]" * 5000, "nested"),
])
def test_bad_input_is_one_clear_error(tmp_path, name, text, message):
    path = tmp_path / name
    if text is None:
        path.write_bytes(b"\xff\xfe\x00bad")
    else:
        path.write_text(text)
    app, errors = load([str(path)])
    assert len(errors) == 1 and message in errors[0].message, errors
    assert str(path) in str(errors[0]) and "\n" not in str(errors[0])


def test_json_template_with_a_duplicate_key_fails_the_scan_with_one_line(tmp_path, capsys):
    """json.loads keeps the last of two equal keys: a second, compliant `Properties` would hide
    the first from us while another tool deploys or judges the first. Refused, as YAML is."""
    from dpguard.cli import main

    path = write(tmp_path, "t.json", '{"Resources": {"B": {"Type": "AWS::SNS::Topic", "Properties": {}, '
                                     '"Properties": {"KmsMasterKeyId": "alias/aws/sns"}}}}')
    assert main(["scan", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"dpguard: error: {path}: invalid JSON: duplicate key 'Properties' (a key may appear once in each object)"


def test_missing_file_and_directory_of_good_and_bad(tmp_path):
    _, errors = load([str(tmp_path / "nope.yaml")])
    assert "no such file" in errors[0].message
    write(tmp_path, "d/good.yaml", "Resources:\n  B: {Type: AWS::S3::Bucket}\n")
    write(tmp_path, "d/broken.yaml", "Resources: {")
    write(tmp_path, "d/other.yaml", "name: not a template\n")
    app, errors = load([str(tmp_path / "d")])
    assert [Path(t.path).name for t in app.templates] == ["good.yaml"]
    assert [Path(e.path).name for e in errors] == ["broken.yaml"]


def test_broken_manifest(tmp_path):
    write(tmp_path, "out/manifest.json", '{"artifacts": 3}')
    _, errors = load([str(tmp_path / "out")])
    assert "not a cloud assembly manifest" in errors[0].message
    write(tmp_path, "out2/manifest.json", json.dumps({"artifacts": {"S": {
        "type": "aws:cloudformation:stack", "properties": {"templateFile": "missing.json"}}}}))
    _, errors = load([str(tmp_path / "out2")])
    assert "no such file" in errors[0].message


def test_input_error_is_one_line():
    e = InputError("x.yaml", "broken")
    assert str(e) == "x.yaml: broken"


def test_large_template_is_judged_in_reasonable_time(tmp_path):
    import time

    from dpguard.engine import Config, evaluate
    from dpguard.rules import catalogue

    resources = {f"Bucket{i}": {"Type": "AWS::S3::Bucket", "Properties": {
        "Tags": [{"Key": "note", "Value": "x" * 2000}]}} for i in range(5000)}
    path = tmp_path / "large.json"
    path.write_text(json.dumps({"Resources": resources}))
    assert path.stat().st_size > 10_000_000
    start = time.perf_counter()
    app, errors = load([str(path)])
    report = evaluate(app, Config(), catalogue())
    assert errors == [] and report.summary()["resources"] == 5000
    assert time.perf_counter() - start < 60  # a generous bound: this guards against a hang, not speed


def test_rain_and_rules_section_tags(tmp_path):
    path = write(tmp_path, "rain.yaml", "Resources:\n  A:\n    Type: AWS::S3::Bucket\n    Properties: !Rain::Embed x.json\n")
    _, errors = load([str(path)])
    assert "rain pkg" in errors[0].message
    path = write(tmp_path, "rules.yaml", "Rules:\n  R:\n    Assertions:\n      - Assert: !Contains [[a], !ValueOf [P, Tag]]\n"
                                         "Resources:\n  A: {Type: AWS::S3::Bucket}\n")
    app, errors = load([str(path)])
    assert errors == [] and app.templates[0].data["Rules"]["R"]["Assertions"][0]["Assert"] == {
        "Fn::Contains": [["a"], {"Fn::ValueOf": ["P", "Tag"]}]}


def test_nested_stack_found_through_cdk_asset_manifest_without_metadata(tmp_path):
    """`app.synth()` without the CLI writes no aws:asset:path metadata: the TemplateURL's object
    key, looked up in the stack's *.assets.json, still finds the child."""
    out = tmp_path / "cdk.out"
    write(out, "manifest.json", json.dumps({"artifacts": {"P": {
        "type": "aws:cloudformation:stack", "properties": {"templateFile": "P.template.json"}}}}))
    write(out, "P.template.json", json.dumps({"Resources": {
        "Key": {"Type": "AWS::KMS::Key"},
        "Child": {"Type": "AWS::CloudFormation::Stack", "Properties": {
            "Parameters": {"KeyArn": {"Fn::GetAtt": ["Key", "Arn"]}},
            "TemplateURL": {"Fn::Join": ["", ["https://s3.", {"Ref": "AWS::Region"}, ".",
                                              {"Ref": "AWS::URLSuffix"}, "/bucket/abc123.json"]]}}}}}))
    write(out, "P.assets.json", json.dumps({"files": {"abc123": {
        "source": {"path": "PChild99.nested.template.json", "packaging": "file"},
        "destinations": {"d": {"bucketName": "b", "objectKey": "abc123.json"}}}}}))
    write(out, "PChild99.nested.template.json", json.dumps({
        "Parameters": {"KeyArn": {"Type": "String"}}, "Resources": {}}))
    app, errors = load([str(out)])
    child = next(t for t in app.templates if t.path.endswith("PChild99.nested.template.json"))
    assert errors == [] and child.parent is not None and child.stack == "P/Child"


def test_plain_nested_template_found_by_template_url_file_name(tmp_path):
    write(tmp_path, "parent.yaml", "Resources:\n  Net:\n    Type: AWS::CloudFormation::Stack\n"
                                   "    Properties:\n      TemplateURL: https://example-bucket.s3.amazonaws.com/child.yaml\n"
                                   "      Parameters: {Open: 'false'}\n")
    write(tmp_path, "child.yaml", "Parameters: {Open: {Type: String}}\nResources: {}\n")
    app, errors = load([str(tmp_path)])
    child = next(t for t in app.templates if t.path.endswith("child.yaml"))
    assert child.parent is not None and child.parent.logical_id == "Net"


def test_a_template_named_twice_is_judged_once(tmp_path):
    out = make_assembly(tmp_path)
    app, errors = load([str(out), str(out / "App.template.json"), str(tmp_path)])
    assert errors == [] and len(app.templates) == 3
