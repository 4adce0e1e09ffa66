"""AWS Security Finding Format (ASFF, schema 2018-10-08) for live audit findings, as AWS Security
Hub's BatchImportFindings takes them.

One ASFF finding per account, region, rule and resource: every dpguard finding of that rule on
that resource (an open security group has one per open rule) is folded into it, so its `Id`
(`dpguard/ACCOUNT/REGION/RULE/RESOURCE`) is the same in every run for as long as the problem
lasts. That is what lets a later run update it, and archive it once the problem is gone
(`archived`).

Status mapping (fail closed: nothing unread is ever PASSED):

    dpguard status  Compliance.Status  Severity.Label          Workflow.Status
    violation       FAILED             error HIGH, warning MEDIUM   NEW
    unverifiable    WARNING            the same as a violation  NEW
    acknowledged    FAILED             the same                SUPPRESSED (Note: the reason)
    (gone, archived) PASSED, RecordState ARCHIVED

Security Hub takes `Workflow` and `Note` from the provider only when it creates a finding, and
ignores them on every later import (they belong to BatchUpdateFindings): an acknowledgment
made after a finding first appeared shows in `ProductFields` ("dpguard/Status":
"acknowledged", the reason and expiry), which a Security Hub automation rule can turn into
SUPPRESSED (docs/audit-at-scale.md).

`importer` names the account and region that call BatchImportFindings. Security Hub accepts a
finding of the default product only from the account in its `AwsAccountId`, in the region of its
`ProductArn`; so the organisation audit, which imports every account's findings in the auditor
account, sets both to the auditor's, and the audited account stays in the resource ARN and in
"dpguard/Account". Without an importer (`dpguard audit --format asff`) each finding belongs to its
own account and region, ready to import there."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections import defaultdict
from typing import Any, Iterable

from .. import __version__
from ..engine.findings import ACKNOWLEDGED, UNVERIFIABLE, VIOLATION

SCHEMA_VERSION = "2018-10-08"
FINDING_TYPE = "Software and Configuration Checks/Industry and Regulatory Standards/dpguard Data Protection Policy"
# An acknowledged finding carries this type too: Security Hub automation rules can match a type
# (not ProductFields), and the org audit stack suppresses findings of it (Workflow is kept from
# the first import only).
ACKNOWLEDGED_TYPE = FINDING_TYPE + " (acknowledged)"
GLOBAL = "global"
DEFAULT_REGION = "us-east-1"  # for global findings when the report names no region at all

# Field limits of the Security Hub API reference (AwsSecurityFinding and its parts).
MAX_ID = 512
MAX_TITLE = 256
MAX_DESCRIPTION = 1024
MAX_RECOMMENDATION = 512
MAX_PRODUCT_FIELDS = 50
MAX_PRODUCT_FIELD_KEY = 128
MAX_PRODUCT_FIELD_VALUE = 2048
MAX_RELATED_REQUIREMENTS = 32
MAX_RESOURCES = 32

SEVERITY = {"error": "HIGH", "warning": "MEDIUM", "fatal": "CRITICAL"}
COMPLIANCE = {VIOLATION: "FAILED", UNVERIFIABLE: "WARNING", ACKNOWLEDGED: "FAILED"}
WORST_FIRST = (VIOLATION, UNVERIFIABLE, ACKNOWLEDGED)

# The resource types of the live audit that ASFF names (ResourceDetails of the API); any other is
# "Other". Account-wide facts (root credentials, the account's S3 Block Public Access, audit
# gaps) are about the account: "AwsAccount", with Security Hub's id form for accounts.
RESOURCE_TYPES = {
    "AWS::CloudTrail::Trail": "AwsCloudTrailTrail",
    "AWS::DynamoDB::Table": "AwsDynamoDbTable",
    "AWS::EC2::SecurityGroup": "AwsEc2SecurityGroup",
    "AWS::EC2::VPC": "AwsEc2Vpc",
    "AWS::IAM::AccessKey": "AwsIamAccessKey",
    "AWS::IAM::Group": "AwsIamGroup",
    "AWS::IAM::ManagedPolicy": "AwsIamPolicy",
    "AWS::IAM::Role": "AwsIamRole",
    "AWS::IAM::User": "AwsIamUser",
    "AWS::KMS::Key": "AwsKmsKey",
    "AWS::Lambda::Function": "AwsLambdaFunction",
    "AWS::RDS::DBCluster": "AwsRdsDbCluster",
    "AWS::RDS::DBInstance": "AwsRdsDbInstance",
    "AWS::S3::Bucket": "AwsS3Bucket",
    "AWS::SNS::Topic": "AwsSnsTopic",
    "AWS::SQS::Queue": "AwsSqsQueue",
    "AWS::SecretsManager::Secret": "AwsSecretsManagerSecret",
    "Live::GuardDuty::Detector": "AwsGuardDutyDetector",
}
ACCOUNT_TYPES = frozenset({"Live::IAM::Account", "Live::S3::AccountPublicAccessBlock", "Live::Audit::Gap"})


def timestamp(when: dt.datetime | None = None) -> str:
    when = (when or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def findings(report, *, importer: tuple[str, str] | None = None, now: str | None = None,
             created: dict[str, str] | None = None) -> list[dict]:
    """The ASFF findings of an audit report's failing and acknowledged findings. `importer` is
    (account, region) of the caller of BatchImportFindings; `created` maps the Ids of findings
    already in Security Hub to their CreatedAt, which a new import keeps."""
    now = now or timestamp()
    created = created or {}
    titles = {r.rule_id: r.title for r in report.rules}
    home = _home_region(report)
    groups: dict[str, list] = defaultdict(list)
    for f in report.findings:
        if f.status in COMPLIANCE:
            groups[finding_id(f)].append(f)
    return [_asff(fid, group, titles, importer, home, now, created.get(fid, now))
            for fid, group in sorted(groups.items())]


def render(report) -> str:
    """`dpguard audit --format asff`: a JSON list of ASFF findings, each for its own account."""
    return json.dumps(findings(report), indent=2, ensure_ascii=False) + "\n"


def finding_id(f) -> str:
    """dpguard/ACCOUNT/REGION/RULE/RESOURCE: the same in every run while the problem lasts (an Id
    longer than Security Hub's limit ends in a SHA-256 of the whole instead)."""
    account, region, _, resource_id = _where(f)
    fid = f"dpguard/{account}/{region}/{f.rule_id}/{resource_id}"
    if len(fid) > MAX_ID:
        fid = f"dpguard/{account}/{region}/{f.rule_id}/sha256:{hashlib.sha256(fid.encode()).hexdigest()}"
    return fid


def archived(previous: dict, now: str) -> dict:
    """A finding of an earlier import that the latest complete audit no longer reports: the same
    finding, ARCHIVED and PASSED (Security Hub then marks its workflow RESOLVED)."""
    out = {k: v for k, v in previous.items() if k not in ("Workflow", "Note")}
    out["UpdatedAt"] = now
    out["RecordState"] = "ARCHIVED"
    out["Compliance"] = {**previous.get("Compliance", {}), "Status": "PASSED"}
    out["ProductFields"] = {**previous.get("ProductFields", {}), "dpguard/Status": "resolved"}
    return out


def problems(finding: dict) -> list[str]:
    """What Security Hub would refuse in `finding` (required fields, lengths, counts); [] if none."""
    out = []
    for name in ("SchemaVersion", "Id", "ProductArn", "GeneratorId", "AwsAccountId", "CreatedAt", "UpdatedAt",
                 "Title", "Description", "Resources"):
        value = finding.get(name)
        if not value or (isinstance(value, str) and not value.strip()):
            out.append(f"{name} is missing or empty")
    for name, limit in (("Id", MAX_ID), ("GeneratorId", MAX_ID), ("Title", MAX_TITLE),
                        ("Description", MAX_DESCRIPTION)):
        if len(finding.get(name) or "") > limit:
            out.append(f"{name} is longer than {limit} characters")
    text = finding.get("Remediation", {}).get("Recommendation", {}).get("Text", "")
    if len(text) > MAX_RECOMMENDATION:
        out.append(f"Remediation.Recommendation.Text is longer than {MAX_RECOMMENDATION} characters")
    fields = finding.get("ProductFields", {})
    if len(fields) > MAX_PRODUCT_FIELDS:
        out.append(f"ProductFields has more than {MAX_PRODUCT_FIELDS} entries")
    for key, value in fields.items():
        if not 1 <= len(key) <= MAX_PRODUCT_FIELD_KEY or len(value) > MAX_PRODUCT_FIELD_VALUE:
            out.append(f"ProductFields {key[:40]!r}: key or value too long")
    if len(finding.get("Compliance", {}).get("RelatedRequirements", [])) > MAX_RELATED_REQUIREMENTS:
        out.append(f"Compliance.RelatedRequirements has more than {MAX_RELATED_REQUIREMENTS} entries")
    if len(finding.get("Resources") or []) > MAX_RESOURCES:
        out.append(f"Resources has more than {MAX_RESOURCES} entries")
    if len(finding.get("AwsAccountId", "")) != 12:
        out.append("AwsAccountId is not a 12-digit account id")
    if not (finding.get("Severity", {}).get("Label") or finding.get("FindingProviderFields", {}).get("Severity")):
        out.append("Severity.Label is missing")
    return out


# ------------------------------------------------------------------------------ one finding

def _asff(fid: str, group: list, titles: dict, importer: tuple[str, str] | None, home: str, now: str,
          created: str) -> dict:
    group = sorted(group, key=lambda f: (WORST_FIRST.index(f.status), f.property_path))
    first = group[0]
    account, region, resource_type, resource_id = _where(first)
    product_account, product_region = importer or (account, region if region != GLOBAL else home)
    partition = resource_id.split(":")[1] if resource_id.startswith("arn:") else "aws"
    severity = SEVERITY.get(first.severity, "HIGH")
    resource = {"Type": resource_type, "Id": resource_id, "Partition": partition}
    if region != GLOBAL:
        resource["Region"] = region
    messages = list(dict.fromkeys(f.message for f in group))
    fields = {"dpguard/RuleId": first.rule_id, "dpguard/Clause": str(first.clause),
              "dpguard/Status": first.status, "dpguard/Severity": first.severity,
              "dpguard/Account": account, "dpguard/Region": region,
              "dpguard/ResourceType": first.resource_type or "",
              "dpguard/PropertyPaths": _clip(", ".join(dict.fromkeys(f.property_path for f in group if f.property_path)),
                                             MAX_PRODUCT_FIELD_VALUE),
              "dpguard/Version": __version__}
    ack = first.acknowledgment if first.status == ACKNOWLEDGED else None
    if ack:
        fields["dpguard/AcknowledgmentReason"] = _clip(ack.get("reason") or "", MAX_PRODUCT_FIELD_VALUE)
        if ack.get("expires"):
            fields["dpguard/AcknowledgmentExpires"] = str(ack["expires"])
    types = [FINDING_TYPE, ACKNOWLEDGED_TYPE] if ack else [FINDING_TYPE]
    out: dict[str, Any] = {
        "SchemaVersion": SCHEMA_VERSION,
        "Id": fid,
        "ProductArn": f"arn:{partition}:securityhub:{product_region}:{product_account}:product/{product_account}/default",
        "GeneratorId": first.rule_id,
        "AwsAccountId": product_account,
        "Types": types,
        "CreatedAt": created,
        "UpdatedAt": now,
        "Severity": {"Label": severity, "Original": first.severity},
        "Title": _clip(f"{first.rule_id} (clause {first.clause}): {titles.get(first.rule_id, first.rule_id)}", MAX_TITLE),
        "Description": _clip(" | ".join(messages) or titles.get(first.rule_id, first.rule_id), MAX_DESCRIPTION),
        "Remediation": {"Recommendation": {"Text": _clip(first.remediation or "see dpguard rules", MAX_RECOMMENDATION)}},
        "ProductFields": fields,
        "Resources": [resource],
        "Compliance": {"Status": COMPLIANCE[first.status],
                       "RelatedRequirements": [f"dpguard clause {first.clause}"]},
        "FindingProviderFields": {"Severity": {"Label": severity, "Original": first.severity},
                                  "Types": types},
        "RecordState": "ACTIVE",
        "Workflow": {"Status": "SUPPRESSED" if ack else "NEW"},
    }
    if ack:
        out["Note"] = {"Text": _clip(f"acknowledged: {ack.get('reason') or ''}", MAX_RECOMMENDATION),
                       "UpdatedBy": "dpguard", "UpdatedAt": now}
    return out


def _where(f) -> tuple[str, str, str, str]:
    """(account, region, ASFF resource type, resource id) of a live finding. App-wide findings
    (no resource) and account-wide facts are about the account."""
    path_account, path_region = _template_place(f.template)
    account = f.account or path_account or "unknown"
    region = f.region or path_region or GLOBAL
    if f.resource_type in ACCOUNT_TYPES or not (f.arn or f.logical_id):
        return account, region, "AwsAccount", f"AWS::::Account:{account}"
    return account, region, RESOURCE_TYPES.get(f.resource_type or "", "Other"), f.arn or f"{f.stack}/{f.logical_id}"


def _template_place(template: str) -> tuple[str | None, str | None]:
    # live templates are named aws://ACCOUNT/REGION (dpguard/audit/run.py)
    if not template.startswith("aws://"):
        return None, None
    account, _, region = template[len("aws://"):].partition("/")
    return account or None, region or None


def _home_region(report) -> str:
    regions: Iterable[str] = (_template_place(t.path)[1] for t in report.templates)
    return next((r for r in regions if r and r != GLOBAL), DEFAULT_REGION)


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"
