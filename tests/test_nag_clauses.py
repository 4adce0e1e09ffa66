"""dpguard/report/nag_clauses.yaml: every rule of every cdk-nag pack we run is either mapped to a
policy clause (1-11) or listed as unmapped, under the id CDK's validation report gives it.

The rule ids of the installed cdk-nag come from its own pack sources (the jsii tarball in the
wheel), not from its RULES.md: in cdk-nag 3.0.2 RULES.md misnames three rules
(`Serverless-LambdaDefaultTimeout` is listed as `LambdaFunctionDefaultTimeout`,
`Serverless-LambdaStarPermissions` as `StarPermissions`, and an R5 rule with an `R4` prefix). A
pack names a violation `<packName>-<suffix>`, the suffix being the rule's `ruleSuffixOverride`
(AwsSolutions) or else the rule function's name, which each rule file sets to its own file name."""
from __future__ import annotations

import importlib.util
import json
import re
import tarfile
from collections import Counter
from functools import cache
from pathlib import Path, PurePosixPath

import pytest
import yaml

from dpguard.report import nag_clauses
from dpguard.report.nag_clauses import DATA_FILE, base_rule_id, nag_clause

PACKS = ["AwsSolutions", "NIST.800.53.R5", "NIST.800.53.R4", "HIPAA.Security", "PCI.DSS.321", "Serverless"]
# The four packs generated from AWS Config conformance packs share rule names; one check, one clause.
CONFORMANCE_PACKS = ["NIST.800.53.R5", "NIST.800.53.R4", "HIPAA.Security", "PCI.DSS.321"]


class _DuplicateKeyLoader(yaml.SafeLoader):
    """safe_load keeps the last of two equal keys without a word; here a duplicate fails."""


def _mapping_without_duplicates(loader, node, deep=False):
    keys = [loader.construct_object(key, deep=deep) for key, _ in node.value]
    duplicates = [k for k, n in Counter(keys).items() if n > 1]
    if duplicates:
        raise yaml.constructor.ConstructorError(None, None, f"duplicate keys {duplicates}", node.start_mark)
    return loader.construct_mapping(node, deep)


_DuplicateKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)


@cache
def data() -> dict:
    return yaml.load(DATA_FILE.read_text(encoding="utf-8"), Loader=_DuplicateKeyLoader)


def mapped(pack: str) -> dict[str, int]:
    return data()["packs"][pack] or {}


def unmapped(pack: str) -> list[str]:
    return data()["unmapped"][pack] or []


# --- the rule ids of the installed cdk-nag, read from its pack sources -------------------------

@cache
def cdk_nag_sources() -> dict[str, str]:
    """lib/** .js files of the installed cdk-nag (path inside the package -> text), read from the
    jsii tarball without importing cdk_nag (which would start a Node.js process)."""
    spec = importlib.util.find_spec("cdk_nag")
    if spec is None or not spec.origin:
        pytest.skip("cdk-nag is not installed (pip install -e .[cdk])")
    tarballs = sorted((Path(spec.origin).parent / "_jsii").glob("cdk-nag@*.jsii.tgz"))
    assert len(tarballs) == 1, f"expected one cdk-nag jsii tarball, found {tarballs}"
    sources = {}
    with tarfile.open(tarballs[0]) as tar:
        for member in tar.getmembers():
            path = PurePosixPath(member.name)
            if member.isfile() and path.parts[:2] == ("package", "lib") and path.suffix == ".js":
                text = tar.extractfile(member).read().decode("utf-8")
                sources[str(PurePosixPath(*path.parts[2:]))] = text.split("//# sourceMappingURL=")[0]
    return sources


def cdk_nag_version() -> str:
    spec = importlib.util.find_spec("cdk_nag")
    tarball = next((Path(spec.origin).parent / "_jsii").glob("cdk-nag@*.jsii.tgz"))
    return tarball.name.removeprefix("cdk-nag@").removesuffix(".jsii.tgz")


def rule_name(sources: dict[str, str], rules_dir: str, export: str) -> str:
    """The `name` of rule function `export` of lib/rules/<rules_dir>: the index re-exports it
    from a file, and that file names the function after itself."""
    index = sources[f"rules/{rules_dir}/index.js"]
    found = re.search(r'var \w+ = require\("(?:\./)+(\w+)"\);\s*Object\.defineProperty\(exports, "%s"' % export, index)
    assert found, f"rules/{rules_dir}/index.js: no export {export}; cdk-nag's layout changed"
    file = found[1]
    body = sources[f"rules/{rules_dir}/{file}.js"]
    named_after_file = ("parse)(__filename).name" in body or f"'name', {{ value: '{file}' }}" in body
                        or re.search(rf"exports\.default = {file};", body) and f"function {file}(" in body)
    assert named_after_file, f"rules/{rules_dir}/{file}.js: cannot tell the rule's name; cdk-nag's layout changed"
    return file


@cache
def cdk_nag_rule_ids() -> dict[str, list[str]]:
    """pack name -> the rule ids its violations carry, in the order the pack applies them."""
    sources = cdk_nag_sources()
    packs: dict[str, list[str]] = {}
    for path, text in sorted(sources.items()):
        if not path.startswith("packs/"):
            continue
        pack = re.search(r"this\.packName = '([^']+)'", text)[1]
        modules = dict(re.findall(r'const (\w+) = require\("\.\./rules/([\w-]+)"\)', text))
        calls = text.split("this.applyRule({")[1:]
        ids = []
        for call in calls:
            params = call.split("});")[0]
            override = re.search(r"ruleSuffixOverride: '([^']+)'", params)
            rule = re.search(r"\brule: (\w+)\.(\w+)", params)
            assert rule, f"{path}: an applyRule call without `rule: module.Rule`; cdk-nag's layout changed"
            suffix = override[1] if override else rule_name(sources, modules[rule[1]], rule[2])
            ids.append(f"{pack}-{suffix}")
        assert len(ids) == text.count("this.applyRule("), f"{path}: some applyRule calls were not read"
        packs[pack] = ids
    return packs


# --- the data file -------------------------------------------------------------------------------

def test_the_file_covers_exactly_the_six_packs():
    assert list(data()["packs"]) == PACKS
    assert list(data()["unmapped"]) == PACKS


def test_every_clause_is_a_policy_clause():
    for pack in PACKS:
        for rule_id, clause in mapped(pack).items():
            assert type(clause) is int and 1 <= clause <= 11, (rule_id, clause)


def test_ids_are_pack_dash_rule_under_their_own_pack():
    for pack in PACKS:
        for rule_id in [*mapped(pack), *unmapped(pack)]:
            assert re.fullmatch(re.escape(pack) + r"-[A-Za-z0-9]+", rule_id), (pack, rule_id)


def test_no_rule_is_listed_twice():
    # Duplicate keys under `packs` already fail in the loader above.
    for pack in PACKS:
        listed = Counter([*mapped(pack), *unmapped(pack)])
        assert [r for r, n in listed.items() if n > 1] == [], pack


def test_the_conformance_packs_give_one_check_one_clause():
    clause_of: dict[str, set] = {}
    for pack in CONFORMANCE_PACKS:
        for rule_id in [*mapped(pack), *unmapped(pack)]:
            clause_of.setdefault(rule_id.removeprefix(pack + "-"), set()).add(mapped(pack).get(rule_id))
    assert {rule: c for rule, c in clause_of.items() if len(c) > 1} == {}


# --- against the installed cdk-nag ------------------------------------------------------------

def test_the_file_names_the_installed_cdk_nag_version():
    assert data()["cdk_nag_version"] == cdk_nag_version()


def test_the_packs_of_the_installed_cdk_nag_are_the_six():
    assert sorted(cdk_nag_rule_ids()) == sorted(PACKS)


@pytest.mark.parametrize("pack", PACKS)
def test_every_rule_of_the_pack_is_mapped_or_unmapped_and_no_other(pack):
    rules = cdk_nag_rule_ids()[pack]
    assert len(rules) == len(set(rules)), f"{pack} applies a rule twice"
    listed = {*mapped(pack), *unmapped(pack)}
    assert sorted(set(rules) - listed) == [], f"rules of {pack} missing from nag_clauses.yaml"
    assert sorted(listed - set(rules)) == [], f"ids in nag_clauses.yaml that {pack} does not have"


def test_the_rule_ids_match_a_real_validation_report(tmp_path):
    """The ids derived from the sources are the ruleNames CDK's validation report carries: synth a
    small non-compliant app with all six packs and read validation-report.json."""
    cdk_nag_sources()  # skips when cdk-nag is not installed
    import aws_cdk as cdk
    import cdk_nag
    from aws_cdk import aws_ec2 as ec2
    from aws_cdk import aws_iam as iam
    from aws_cdk import aws_lambda as lambda_
    from aws_cdk import aws_s3 as s3

    app = cdk.App(outdir=str(tmp_path))
    stack = cdk.Stack(app, "Open")
    s3.CfnBucket(stack, "Bucket")
    function = lambda_.Function(stack, "Function", runtime=lambda_.Runtime.PYTHON_3_12, handler="index.handler",
                                code=lambda_.Code.from_inline("def handler(e, c): pass"))
    function.add_to_role_policy(iam.PolicyStatement(actions=["s3:*"], resources=["*"]))
    iam.CfnRole(stack, "LambdaRole", assume_role_policy_document={"Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]},
        policies=[{"policyName": "all", "policyDocument": {"Statement": [
            {"Effect": "Allow", "Action": "*", "Resource": "*"}]}}])
    ec2.CfnSecurityGroup(stack, "Ssh", group_description="ssh", security_group_ingress=[
        {"ipProtocol": "tcp", "fromPort": 22, "toPort": 22, "cidrIp": "0.0.0.0/0"}])
    cdk.Validations.of(app).add_plugins(
        cdk_nag.AwsSolutionsChecks(app), cdk_nag.NIST80053R5Checks(app), cdk_nag.NIST80053R4Checks(app),
        cdk_nag.HIPAASecurityChecks(app), cdk_nag.PCIDSS321Checks(app), cdk_nag.ServerlessChecks(app))
    with pytest.raises(RuntimeError):
        app.synth()

    report = json.loads((tmp_path / "validation-report.json").read_text())
    seen = {p["pluginName"]: [v["ruleName"] for v in p["violations"]]
            for p in report["pluginReports"] if p["pluginName"] in PACKS}
    assert sorted(seen) == sorted(PACKS)
    for pack, names in seen.items():
        for name in names:
            assert base_rule_id(name) in cdk_nag_rule_ids()[pack], name
            assert base_rule_id(name) in {*mapped(pack), *unmapped(pack)}, name
    # Granular findings carry their suffix; RULES.md's names for these two are not the real ones.
    assert "AwsSolutions-IAM5[Action::s3:*]" in seen["AwsSolutions"]
    assert {"Serverless-LambdaDefaultTimeout", "Serverless-LambdaStarPermissions"} <= set(seen["Serverless"])


# --- the loader -------------------------------------------------------------------------------

@pytest.mark.parametrize("rule_id, clause", [
    ("AwsSolutions-S1", 9),
    ("AwsSolutions-S10", 3),
    ("AwsSolutions-IAM5[Action::s3:*]", 8),
    ("AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]", 8),
    ("AwsSolutions::AwsSolutions-IAM5[Resource::*]", 8),  # as CDK's acknowledgment ids name it
    ("NIST.800.53.R5-S3DefaultEncryptionKMS", 7),
    ("HIPAA.Security-S3BucketSSLRequestsOnly", 3),
    ("PCI.DSS.321-EC2RestrictedSSH", 1),
    ("Serverless-LambdaStarPermissions", 8),
    ("AwsSolutions-SQS3", None),  # unmapped: a dead-letter queue is about availability
    ("Serverless-LambdaDLQ", None),
    ("AwsSolutions-NOPE1", None),  # unknown
    ("DP-S3Encryption", None),  # dpguard's own rules carry their clause themselves
    ("", None),
])
def test_nag_clause(rule_id, clause):
    assert nag_clause(rule_id) == clause


def test_the_loader_reads_what_the_file_says():
    expected = {rule_id: clause for pack in PACKS for rule_id, clause in mapped(pack).items()}
    assert dict(nag_clauses.nag_clauses()) == expected


@pytest.mark.parametrize("text, problem", [
    ("packs: {AwsSolutions: {AwsSolutions-S1: 12}}", "not a number from 1 to 11"),
    ("packs: {AwsSolutions: {AwsSolutions-S1: true}}", "not a number from 1 to 11"),
    ("packs: {AwsSolutions: {S1: 9}}", "not a rule id"),
    ("packs: {AwsSolutions: {NIST.800.53.R5-S3BucketLoggingEnabled: 9}}", "not a rule id"),
    ("packs: {AwsSolutions: {AwsSolutions-S1: 9}}\nunmapped: {AwsSolutions: [AwsSolutions-S1]}", "listed twice"),
])
def test_a_malformed_file_fails_loudly(tmp_path, text, problem):
    path = tmp_path / "nag_clauses.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=problem):
        nag_clauses._load(path)
