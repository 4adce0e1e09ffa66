"""The inventory of resource types (dpguard/inventory) against the CloudFormation schemas and the
rule catalogue: every type whose properties touch encryption, TLS, logging, public access,
credentials or resource policies is judged by a rule or listed, with a reason, as exempt."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from dpguard.inventory import KINDS, PARTLY_JUDGED, exemptions, judged_types, resource_types
from dpguard.rules import catalogue

ROOT = Path(__file__).resolve().parent.parent


def test_inventory_is_generated_from_the_pinned_schemas():
    done = subprocess.run([sys.executable, "scripts/inventory.py", "--check"], cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_every_type_with_security_properties_is_judged_or_exempt():
    judged, exempt = judged_types(catalogue()), exemptions()
    missing = [f"{t} ({', '.join(topics)})" for t, topics in sorted(resource_types().items())
               if topics and t not in judged and t not in exempt]
    assert not missing, (f"{len(missing)} resource types have security-relevant properties but no rule "
                         "judges them and dpguard/inventory/exemptions.yaml does not list them:\n"
                         + "\n".join(missing))


def test_exemptions_are_current_and_give_reasons():
    judged, known = judged_types(catalogue()), resource_types()
    doc = yaml.safe_load((ROOT / "dpguard/inventory/exemptions.yaml").read_text())
    assert set(doc) == set(KINDS)
    listed = [t for kind in KINDS for t in doc[kind] or {}]
    twice = sorted({t for t in listed if listed.count(t) > 1})
    assert not twice, f"listed under two kinds: {twice}"
    problems = []
    for rtype, exemption in exemptions().items():
        if exemption.kind == PARTLY_JUDGED and rtype not in judged:
            problems.append(f"{rtype} is partly_judged but no rule judges it: move it to not_yet_judged")
        elif exemption.kind != PARTLY_JUDGED and rtype in judged:
            problems.append(f"{rtype} is judged by {', '.join(judged[rtype])}: remove its exemption "
                            "(or list what is still not judged under partly_judged)")
        elif rtype not in known:
            problems.append(f"{rtype} is not a CloudFormation type")
        elif not known[rtype]:
            problems.append(f"{rtype} has no security-relevant properties: no exemption needed")
        if len(exemption.reason) < 20 or "\n" in exemption.reason:
            problems.append(f"{rtype}: the reason must be one line of at least 20 characters")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("rtype,topic", [
    ("AWS::S3::Bucket", "encryption"), ("AWS::MSK::Cluster", "tls"), ("AWS::Logs::LogGroup", "encryption"),
    ("AWS::OpenSearchService::Domain", "logging"), ("AWS::RDS::DBInstance", "public"),
    ("AWS::Amplify::App", "credentials"), ("AWS::SQS::QueuePolicy", "policy")])
def test_inventory_finds_the_topics_everyone_knows(rtype, topic):
    assert topic in resource_types()[rtype]


def test_types_without_security_properties_have_no_topics():
    types = resource_types()
    assert types["AWS::EC2::Route"] == () and types["AWS::EC2::SubnetRouteTableAssociation"] == ()
