"""Where SARIF results point: the user's frame of a CDK creation stack trace, and a resource's
line in a JSON or YAML template. (The whole path, from a real `cdk synth` to the SARIF, is in
tests/test_ci_integrations.py.)"""
from __future__ import annotations

import json

import pytest

from dpguard.engine import sources


@pytest.mark.parametrize("trace,expected", [
    # what aws-cdk-lib 2.275 records for a Python app synthesized with JSII_HOST_STACK_TRACES=1
    (["...aws-cdk-lib, jsii runtime, node internals...",
      "(no user code in 10 frames, use --stack-trace-limit to capture more)",
      "__init__ (/work/app/stacks/orders.py:9)", "<module> (/work/app/app.py:13)"],
     ("/work/app/stacks/orders.py", 9)),
    # the shape CDK's renderCallStackJustMyCode gives a JavaScript app's frames (written for this test)
    (["...constructs, aws-cdk-lib...", "new Orders (/home/dev/app/lib/orders-stack.ts:12:5)",
      "Object.<anonymous> (/home/dev/app/bin/app.ts:7:1)"], ("/home/dev/app/lib/orders-stack.ts", 12)),
    (["    at new Orders (file:///home/dev/app/lib/orders.mjs:3:9)"], ("/home/dev/app/lib/orders.mjs", 3)),
    # an L3 construct from an installed package is not the user's code; the stack that uses it is
    (["__init__ (/venv/lib/python3.12/site-packages/acme_constructs/bucket.py:40)",
      "__init__ (/usr/lib/python3.12/runpy.py:88)",
      "new X (/app/node_modules/@acme/constructs/lib/x.js:5:3)",
      "__init__ (/repo/stacks/data.py:21)"], ("/repo/stacks/data.py", 21)),
    (["...aws-cdk-lib, jsii runtime...", "(no user code in 10 frames, use --stack-trace-limit to capture more)"], None),
    (["__init__ (app.py:9)"], None),  # relative: where the app ran is unknown
    ("not a list", None),
])
def test_the_first_frame_in_the_users_code(trace, expected):
    assert sources.user_frame(trace) == expected


def test_creation_sites_from_the_metadata_in_the_manifest_or_its_own_file(tmp_path):
    """CDK before 2.1xx kept metadata in manifest.json, with a `trace` on each entry."""
    (tmp_path / "S.template.json").write_text('{"Resources": {}}')
    (tmp_path / "manifest.json").write_text(json.dumps({"version": "36.0.0", "artifacts": {"S": {
        "type": "aws:cloudformation:stack", "properties": {"templateFile": "S.template.json"},
        "metadata": {"/S/Bucket/Resource": [{"type": "aws:cdk:logicalId", "data": "Bucket83908E77",
                                             "trace": ["new Bucket (/a/node_modules/aws-cdk-lib/aws-s3/lib/bucket.js:1:1)",
                                                       "new S (/a/lib/s.js:4:5)"]}],
                     "/S/Other": [{"type": "aws:cdk:info", "data": "x", "trace": ["f (/a/lib/s.js:9:1)"]}]}}}}))
    assert sources.creation_sites([str(tmp_path / "S.template.json")]) == {"S/Bucket/Resource": ("/a/lib/s.js", 4)}


def test_a_metadata_file_outside_the_assembly_is_not_read(tmp_path):
    (tmp_path / "outside.json").write_text(json.dumps(
        {"/S/B/Resource": [{"type": "aws:cdk:logicalId", "data": "B"},
                           {"type": "aws:cdk:creationStack", "data": ["f (/x/y.py:1)"]}]}))
    cdk_out = tmp_path / "cdk.out"
    cdk_out.mkdir()
    (cdk_out / "manifest.json").write_text(json.dumps({"artifacts": {"S": {
        "type": "aws:cloudformation:stack", "properties": {"templateFile": "S.template.json"},
        "additionalMetadataFile": "../outside.json"}}}))
    assert sources.creation_sites([str(cdk_out / "S.template.json")]) == {}


def test_resource_lines_in_json(tmp_path):
    path = tmp_path / "t.json"
    path.write_text('{"Parameters": {"Resources": {"Type": "String"}},\n'
                    ' "Resources": {\n'
                    '  "First": {"Type": "AWS::S3::Bucket", "Properties": {"Tags": [{"Key": "a\\"b:", "Value": "{"}]}},\n'
                    '\n'
                    '  "Second\\u00e9": {"Type": "AWS::SQS::Queue",\n'
                    '    "Metadata": {"Nested": {"Third": 1}}}},\n'
                    ' "Outputs": {"Fourth": {"Value": 1}}}')
    assert sources.resource_lines(str(path)) == {"First": 3, "Secondé": 5}


def test_resource_lines_in_yaml_with_short_form_tags(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text("AWSTemplateFormatVersion: '2010-09-09'\n"
                    "Resources:\n"
                    "  # a comment\n"
                    "  Bucket:\n"
                    "    Type: AWS::S3::Bucket\n"
                    "    Properties: {BucketName: !Sub '${AWS::StackName}-data'}\n"
                    "  Policy:\n"
                    "    Type: AWS::S3::BucketPolicy\n"
                    "    Properties: {Bucket: !Ref Bucket}\n")
    assert sources.resource_lines(str(path)) == {"Bucket": 4, "Policy": 7}


@pytest.mark.parametrize("text", ["Resources: [", "{\"Resources\": ", "- a list", ""])
def test_resource_lines_of_what_is_no_template_are_none(tmp_path, text):
    path = tmp_path / "t.yaml"
    path.write_text(text)
    assert sources.resource_lines(str(path)) == {}
    assert sources.resource_lines(str(tmp_path / "missing.json")) == {}


def test_the_source_root_is_the_repository(tmp_path):
    (tmp_path / ".git").mkdir()
    (tmp_path / "app" / "cdk.out").mkdir(parents=True)
    assert sources.source_root(tmp_path / "app" / "cdk.out") == tmp_path
    assert sources.source_root(tmp_path / "app") == tmp_path
