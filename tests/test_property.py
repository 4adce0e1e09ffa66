"""Property-based: whatever the template, the engine answers (no exception, no hang) and no rule
crashes on it. Templates are generated from the property names and intrinsics the rules read,
so the generator reaches deep into the rules rather than bouncing off the first type check."""
from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dpguard.engine import Config, evaluate
from dpguard.engine.template import App
from dpguard.output import SCAN_FORMATS, render_scan
from dpguard.rules import catalogue

TYPES = sorted({t for r in catalogue() for t in r.resource_types if t != "*"}) + ["Custom::Thing", "AWS::X::Y"]
IDS = ["A", "B", "C", "Key", "Bucket"]
PARAMS = ["P", "Q"]
KEYS = ["BucketEncryption", "ServerSideEncryptionConfiguration", "ServerSideEncryptionByDefault",
        "SSEAlgorithm", "KMSMasterKeyID", "KmsKeyId", "KmsMasterKeyId", "Tags", "Key", "Value",
        "PolicyDocument", "KeyPolicy", "AssumeRolePolicyDocument", "Policies", "Statement", "Effect",
        "Action", "NotAction", "Resource", "Principal", "AWS", "Service", "Condition", "Bool",
        "aws:SecureTransport", "SecurityGroupIngress", "CidrIp", "CidrIpv6", "FromPort", "ToPort",
        "IpProtocol", "GroupId", "Bucket", "Topics", "Queues", "StorageEncrypted", "Encrypted",
        "PubliclyAccessible", "Protocol", "DefaultActions", "SslPolicy", "Listeners", "Enabled",
        "EnableKeyRotation", "IsMultiRegionTrail", "S3BucketName", "LoggingConfiguration",
        "VersioningConfiguration", "Status", "LifecycleConfiguration", "Rules", "Parameters",
        "DBParameterGroupName", "Engine", "EngineVersion", "Environment", "Variables", "ExplicitAuthFlows",
        "ManagedPolicyArns", "RetentionInDays", "PublicAccessBlockConfiguration", "DistributionConfig",
        "ViewerCertificate", "AlarmActions", "SecretId", "ResourceId", "Type", "Name"]
SCALARS = (st.none() | st.booleans() | st.integers(-5, 70000) | st.floats(allow_nan=False)
           | st.sampled_from(["true", "false", "0.0.0.0/0", "::/0", "*", "s3:*", "Allow", "Deny", "-1",
                              "443", "aws:kms", "Enabled", "HTTP", "postgres", "", "${A.Arn}/*", "${P}"])
           | st.text(max_size=8))


def intrinsics(children):
    names = st.sampled_from(IDS + PARAMS + ["AWS::NoValue", "AWS::Region", "Missing"])
    return st.one_of(
        st.builds(lambda n: {"Ref": n}, names),
        st.builds(lambda n, a: {"Fn::GetAtt": [n, a]}, names, st.sampled_from(["Arn", "DefaultSecurityGroup"])),
        st.builds(lambda a, b: {"Fn::If": ["C1", a, b]}, children, children),
        st.builds(lambda s: {"Fn::Sub": s}, st.sampled_from(["arn:${AWS::Partition}:s3:::${Bucket}/*", "${A.Arn}",
                                                              "${P}-${!x}", "${", "x"])),
        st.builds(lambda xs: {"Fn::Join": ["", xs]}, st.lists(children, max_size=3)),
        st.builds(lambda i, xs: {"Fn::Select": [i, xs]}, children, children),
        st.builds(lambda k: {"Fn::FindInMap": ["M", k, "v"]}, children),
        st.builds(lambda n: {"Fn::ImportValue": n}, st.sampled_from(["e1", "e2", "nope"])),
        st.builds(lambda x: {"Fn::Split": [",", x]}, children),
        st.builds(lambda x: {"Fn::Unheard": x}, children),
    )


VALUES = st.recursive(SCALARS, lambda children: st.one_of(
    st.lists(children, max_size=4),
    st.dictionaries(st.sampled_from(KEYS), children, max_size=4),
    intrinsics(children)), max_leaves=25)

RESOURCE = st.one_of(
    st.fixed_dictionaries({"Type": st.sampled_from(TYPES)},
                          optional={"Properties": VALUES, "Metadata": VALUES, "Condition": SCALARS}),
    VALUES)

TEMPLATE = st.fixed_dictionaries(
    {"Resources": st.dictionaries(st.sampled_from(IDS + ["D", "E"]), RESOURCE, max_size=6)},
    optional={"Parameters": st.dictionaries(st.sampled_from(PARAMS), VALUES, max_size=2),
              "Conditions": st.dictionaries(st.sampled_from(["C1", "C2"]), VALUES, max_size=2),
              "Mappings": VALUES,
              "Outputs": st.dictionaries(st.sampled_from(["O1", "O2"]), st.fixed_dictionaries(
                  {"Value": VALUES, "Export": st.fixed_dictionaries({"Name": st.sampled_from(["e1", "e2"])})}),
                  max_size=2),
              "Metadata": VALUES})


@settings(max_examples=300, deadline=5000, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(TEMPLATE, min_size=1, max_size=2), st.booleans())
def test_engine_always_answers_and_no_rule_crashes(templates, trust):
    app = App(trust_parameter_defaults=trust)
    for index, template in enumerate(templates):
        app.add(f"t{index}.json", template, f"S{index}")
    if len(app.templates) == 2 and "D" in app.templates[0].resources:
        app.templates[1].parent = app.templates[0].resources["D"]  # a nested stack, possibly a cycle
    report = evaluate(app, Config(), catalogue())
    crashes = [f"{f.rule_id}: {f.message}" for f in report.findings if "rule error" in f.message]
    assert not crashes, crashes
    for fmt in SCAN_FORMATS:
        assert render_scan(report, fmt)
    json.dumps(report.summary())
