"""docs/json-contract.md cannot drift from what the writers produce: its tables of top-level keys,
summary counts and finding keys are compared with a real `dpguard scan --format json`."""
from __future__ import annotations

import json
import re
from pathlib import Path

from dpguard.audit.run import AuditFinding
from dpguard.cli import main
from dpguard.rules import catalogue

ROOT = Path(__file__).resolve().parent.parent
DOC = (ROOT / "docs" / "json-contract.md").read_text(encoding="utf-8")


def table_keys(heading: str) -> list[str]:
    """The backticked first cells of the table under `heading`."""
    section = DOC.split(heading, 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([a-z_]+)` \|", section, re.M)


def scanned(capsys, *argv, code: int = 1) -> dict:
    assert main(["scan", str(ROOT / "examples"), "--format", "json", *argv]) == code
    return json.loads(capsys.readouterr().out)


def test_the_documented_keys_are_the_written_keys(capsys):
    doc = scanned(capsys)
    assert table_keys("Top-level keys:") == list(doc)
    finding_keys = [k for k in table_keys("## A finding") if k != "baselined"]
    assert all(list(f) == finding_keys for f in doc["findings"])
    summary = re.search(r"`summary` \| counts: (.+) \|", DOC).group(1)
    assert re.findall(r"`([a-z_]+)`", summary) == list(doc["summary"])


def test_baselined_and_the_audit_keys_are_documented(capsys, tmp_path):
    baseline = tmp_path / "baseline.json"
    main(["scan", str(ROOT / "examples"), "--baseline", str(baseline), "--update-baseline"])
    capsys.readouterr()
    doc = scanned(capsys, "--baseline", str(baseline), code=0)  # everything is in the baseline
    assert "baselined" in table_keys("## A finding") and all("baselined" in f for f in doc["findings"])
    audit = AuditFinding("DP-X", 1, "error", "violation", "t", "s", "L", "AWS::S3::Bucket", None, "", "m", "r",
                         None, arn="arn:aws:s3:::b", region="eu-west-1", account="111122223333")
    extra = [k for k in audit.as_dict() if k not in table_keys("## A finding")]
    assert extra == ["arn", "region", "account"] and "`arn`, `region` and `account`" in DOC


def test_the_rule_catalogue_keys_are_documented():
    listed = re.search(r"`dpguard rules --format json`: every rule with (.+)\.", DOC, re.S).group(1)
    assert re.findall(r"`([a-z_]+)`", listed) == list(catalogue()[0].as_dict())


def test_the_readme_s_adoption_section_uses_what_exists():
    import tomllib

    import dpguard

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Add dpguard to your app", 1)[1].split("\n## ", 1)[0]
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert set(re.findall(r"dpguard\[(\w+)\]", section)) <= set(extras)
    for snippet in re.findall(r"```python\n(.*?)```", section, re.S):
        compile(snippet, "README", "exec")  # valid Python
    assert {name for name in re.findall(r"dpguard\.(\w+)\(", section)} <= set(dir(dpguard))
    for link in re.findall(r"\]\((docs/[^)]+)\)", section):
        assert (ROOT / link).is_file(), link


def scan_assembly(outdir: str, capsys) -> list[tuple[str, str]]:
    main(["scan", outdir, "--format", "json"])
    return [(f["rule_id"], f["status"]) for f in json.loads(capsys.readouterr().out)["findings"]]


def test_the_readme_s_acknowledgment_for_other_languages_reaches_dpguard_scan(tmp_path, capsys):
    """README, "Add dpguard to your app": an app without dpguard (a TypeScript app, here its
    Python twin: the same jsii classes) acknowledges with CDK's own API and cdk-nag's aspect;
    `dpguard scan cdk.out` then sees the acknowledgment, and no longer once it has expired."""
    import aws_cdk as cdk
    import cdk_nag
    from aws_cdk import aws_kms as kms

    def synth(name: str, reason: str, aspect: bool = True) -> str:
        app = cdk.App(outdir=str(tmp_path / name))
        key = kms.Key(cdk.Stack(app, "Orders"), "LegacyKey", enable_key_rotation=False)
        cdk.Validations.of(key).acknowledge(cdk.Acknowledgment(id="dpguard::DP-KmsKeyRotation", reason=reason))
        if aspect:
            cdk.Aspects.of(app).add(cdk_nag.WriteNagSuppressionsToCloudFormationAspect())
        app.synth()
        return app.outdir

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    reason = re.search(r"id: 'dpguard::DP-KmsKeyRotation',\s+reason: '([^']+)'", readme).group(1)
    assert "WriteNagSuppressionsToCloudFormationAspect()" in readme
    assert "(expires 2027-03-31)" in reason
    held = reason.replace("2027-03-31", "2099-12-31")  # the README's date, kept in the future
    assert scan_assembly(synth("held", held), capsys) == [("DP-KmsKeyRotation", "acknowledged")]
    expired = reason.replace("2027-03-31", "2020-01-31")
    assert scan_assembly(synth("expired", expired), capsys) == [("DP-KmsKeyRotation", "violation")]
    assert scan_assembly(synth("no-aspect", held, aspect=False), capsys) == [("DP-KmsKeyRotation", "violation")]


def example_document() -> dict:
    """The page's example document, with its `[ ... ]` placeholders read as empty lists."""
    block = re.search(r"## The document\n\n```json\n(.*?)```", DOC, re.S).group(1)
    return json.loads(re.sub(r"\[ \.\.\. [^\]]*\]", "[]", block))


def test_the_example_document_has_the_shape_a_scan_writes(tmp_path, capsys):
    """Written for this test: a custom resource (a type no rule judges), an acknowledgment that
    matches nothing, and a file that cannot be read, so every list of the document has an entry."""
    template = tmp_path / "stack.yaml"
    template.write_text("""Resources:
  Thing:
    Type: Custom::Thing
    Properties: {ServiceToken: arn:aws:lambda:us-east-1:111122223333:function:provider}
  Key:
    Type: AWS::KMS::Key
    Metadata:
      cdk_nag:
        rules_to_suppress:
          - {id: DP-KmsKeyRotation, reason: rotation used to be off for this key}
    Properties: {EnableKeyRotation: true}
""", encoding="utf-8")
    broken = tmp_path / "broken.json"
    broken.write_text('{"Resources": ', encoding="utf-8")
    assert main(["scan", str(template), str(broken), "--format", "json"]) == 2
    written = json.loads(capsys.readouterr().out)
    example = example_document()
    assert list(example) == list(written)
    for key in ("tool", "summary", "coverage"):
        assert list(example[key]) == list(written[key]), key
    for key in ("rules", "unused_acknowledgments", "errors"):
        assert written[key], key
        assert [list(e) for e in example[key]] == [list(written[key][0])], key
    assert list(example["coverage"]["not_judged"][0]) == list(written["coverage"]["not_judged"][0])
