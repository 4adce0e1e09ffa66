"""The organisation audit's Lambda handlers (docs/audit-at-scale.md): the Step Functions state
machine of dpguard/stacks/org_audit.py calls `list_accounts`, then `audit_account` once per
account (a Distributed Map), then `report`; a quarterly schedule calls `access_review`.
dpguard/org_audit/runner.py runs the same state machine locally.

Every setting comes from the environment (a missing one is a one-line ConfigurationError):

    BUCKET           the findings bucket (every handler)
    KEY_ARN          the KMS key every object is written with (SSE-KMS; every handler)
    AUDIT_ROLE_NAME  the read-only role in each member account (default dpguard-audit)
    EXTERNAL_ID      the ExternalId its trust policy asks for (audit_account, access_review)
    ORG_ROLE_ARN     a role in the management or delegated-administrator account that may call
                     organizations:ListAccounts (optional: else the Lambda's own credentials)
    REGIONS          the regions to audit, comma-separated (optional: else every region enabled
                     in the auditor account)
    SECURITY_HUB     "on": import audit_account's findings into Security Hub in the auditor
                     account and region (default off)
    ALERTS_TOPIC_ARN optional: `report` publishes its summary there

What each run writes, all SSE-KMS:

    runs/date=D/accounts.json                   the accounts and regions the run meant to cover
    findings/date=D/account=A/audit.json        `dpguard audit --format json` of account A
    findings/date=D/account=A/summary.json      what audit_account returned for it
    reports/date=D/dpguard-report.{html,md,json}, dpguard-findings.csv   the auditor report
    reviews/date=D/account=A/review.{json,md}   the quarterly access review
    state/securityhub/account=A.json            the ASFF findings last imported for A (to keep
                                                their CreatedAt and archive the ones gone)
"""
from __future__ import annotations

import datetime as dt
import json
import os
import re
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions

from ..engine import Config
from ..output import asff, render_scan
from ..audit.clients import Clients
from ..audit.cli import assumed, enabled_regions, organization_accounts
from ..audit.run import NotAudited, audit

ACCOUNT = re.compile(r"^\d{12}$")
REGION = re.compile(r"^[a-z]{2}(-[a-z0-9]+)+-\d{1,2}$")
DEFAULT_ROLE_NAME = "dpguard-audit"
REFRESH_DAYS = 30  # an unchanged finding is imported again after this long (Security Hub keeps 90 days)
IMPORT_BATCH = 100  # BatchImportFindings takes at most 100 findings a call
DEADLINE_MARGIN = 120  # seconds kept back from the Lambda's timeout to write what was read
AUDIT_CONCURRENCY = 16


class ConfigurationError(Exception):
    """A setting of the environment is missing or malformed."""


class ImportFailed(Exception):
    """Security Hub refused findings: the invocation fails, so that Step Functions retries it."""


# ------------------------------------------------------------------------------ the handlers

def list_accounts(event: dict, context: Any = None) -> dict:
    """Every ACTIVE account of the organisation with the regions to audit, written to
    runs/date=D/accounts.json for the Map's ItemReader."""
    bucket, key_arn = _env("BUCKET"), _env("KEY_ARN")
    day = _date(event)
    base = _own_clients()
    items = _organization(base, _home_region())
    key = f"runs/date={day}/accounts.json"
    _put(base, bucket, key, json.dumps(items, indent=1) + "\n", key_arn)
    return {"bucket": bucket, "key": key, "date": day, "accounts": len(items)}


def audit_account(event: dict, context: Any = None) -> dict:
    """Audit one account (all its regions) through its audit role, save the audit JSON, and
    import the findings into Security Hub if SECURITY_HUB is "on". An account whose role cannot
    be assumed is not an error: its audit JSON says it was not audited, and so does the summary."""
    start = time.monotonic()
    account, regions, day = _item(event)
    bucket, key_arn = _env("BUCKET"), _env("KEY_ARN")
    role_name = os.environ.get("AUDIT_ROLE_NAME") or DEFAULT_ROLE_NAME
    external_id = _env("EXTERNAL_ID")
    base = _own_clients()
    home = _home_region()
    target = assumed(base, home, f"arn:aws:iam::{account}:role/{role_name}", None, AUDIT_CONCURRENCY, external_id)
    result = audit([target], regions, concurrency=AUDIT_CONCURRENCY, deadline=_deadline(context))
    prefix = f"findings/date={day}/account={account}"
    _put(base, bucket, f"{prefix}/audit.json", render_scan(result.report, "json"), key_arn)
    summary = result.report.summary()
    out = {"account": account, "audited": not isinstance(target, NotAudited), "key": f"{prefix}/audit.json",
           "violations": summary["violations"], "unverifiable": summary["unverifiable"],
           "acknowledged": summary["acknowledged"], "calls": sum(result.calls.values()),
           "incomplete": result.incomplete, "securityhub": None}
    if isinstance(target, NotAudited):
        out["reason"] = target.reason
    if os.environ.get("SECURITY_HUB", "off") == "on":
        out["securityhub"] = import_to_security_hub(base, home, bucket, key_arn, account, result.report)
    out["seconds"] = round(time.monotonic() - start, 1)
    _put(base, bucket, f"{prefix}/summary.json", json.dumps(out, indent=1) + "\n", key_arn)
    return out


def report(event: dict, context: Any = None) -> dict:
    """The auditor report of one run's audit JSON files, to reports/date=D/. An account the run
    meant to cover (runs/date=D/accounts.json) that has no audit JSON is reported as not
    audited: a Map item that failed after its retries is never silently left out."""
    from .. import report as auditor_report

    bucket = event.get("bucket") or _env("BUCKET")
    key_arn = _env("KEY_ARN")
    day = _date(event)
    clients = _own_clients()
    s3 = clients("s3", _home_region())
    audits: dict[str, str] = {}
    summaries: dict[str, dict] = {}
    for obj in _objects(s3, bucket, f"findings/date={day}/"):
        match = re.match(rf"^findings/date={re.escape(day)}/account=(\d{{12}})/(audit|summary)\.json$", obj)
        if match and match.group(2) == "audit":
            audits[match.group(1)] = obj
        elif match:
            summaries[match.group(1)] = json.loads(_get(s3, bucket, obj))
    planned = _planned(s3, bucket, day)
    missing = sorted(set(planned) - set(audits))
    with tempfile.TemporaryDirectory(prefix="dpguard-report-") as work:
        inputs = Path(work, "audits")
        inputs.mkdir()
        paths = []
        for account, key in sorted(audits.items()):
            path = inputs / f"{account}.json"
            path.write_bytes(_get(s3, bucket, key))
            paths.append(str(path))
        for account in missing:
            gap = audit([NotAudited(account, "the run listed it, but its audit task left no result "
                                             "(it failed after its retries)")], planned[account] or ["us-east-1"])
            path = inputs / f"{account}.missing.json"
            path.write_text(render_scan(gap.report, "json"), encoding="utf-8")
            paths.append(str(path))
        if not paths:
            raise ValueError(f"report: no audit results under s3://{bucket}/findings/date={day}/ "
                             f"and no account list in runs/date={day}/")
        data = auditor_report.build(paths, Config())
        files = auditor_report.write(data, Path(work, "report"))
        keys = []
        for path in files.values():
            key = f"reports/date={day}/{path.name}"
            _put(clients, bucket, key, path.read_bytes(), key_arn)
            keys.append(key)
    not_audited = sorted(a for a, s in summaries.items() if s.get("audited") is False)
    s = data["summary"]
    out = {"date": day, "bucket": bucket, "violations": s["violations"], "unverifiable": s["unverifiable"],
           "acknowledged": s["acknowledged"],
           "accounts": {"planned": len(planned), "audited": len(audits) - len(not_audited),
                        "not_audited": not_audited, "missing": missing},
           "problems": len(data["evidence"]["problems"]), "keys": sorted(keys)}
    if os.environ.get("ALERTS_TOPIC_ARN"):
        clients("sns", _home_region()).publish(
            TopicArn=os.environ["ALERTS_TOPIC_ARN"], Subject=f"dpguard organisation audit {day}",
            Message=json.dumps(out, indent=1))
    return out


def access_review(event: dict, context: Any = None) -> dict:
    """The quarterly access review (clause 2), one review per account to
    reviews/date=D/account=A/review.json and .md. With "account" in the event, that account
    only (a Map item, as for audit_account); without, every account of the organisation."""
    from ..output.access_review_writers import render_review
    from ..audit.access_review import run_review

    bucket, key_arn = _env("BUCKET"), _env("KEY_ARN")
    role_name = os.environ.get("AUDIT_ROLE_NAME") or DEFAULT_ROLE_NAME
    external_id = _env("EXTERNAL_ID")
    day = _date(event)
    base = _own_clients()
    home = _home_region()
    if "account" in event:
        items = [_item({**event, "date": day})[:2]]
    else:
        items = [(a["account"], a["regions"]) for a in _organization(base, home)]

    def review_one(account: str, regions: list[str]) -> dict:
        target = assumed(base, home, f"arn:aws:iam::{account}:role/{role_name}", None, 8, external_id)
        review, _ = run_review([target], regions, today=dt.date.fromisoformat(day),
                               generated_at=f"{day}T00:00:00Z")
        prefix = f"reviews/date={day}/account={account}"
        _put(base, bucket, f"{prefix}/review.json", render_review(review, "json"), key_arn)
        _put(base, bucket, f"{prefix}/review.md", render_review(review, "markdown"), key_arn)
        return {"account": account, "audited": not isinstance(target, NotAudited), "key": f"{prefix}/review.json",
                "flags": len(review.flags), "gaps": len(review.gaps)}

    with ThreadPoolExecutor(max_workers=min(8, max(1, len(items)))) as pool:
        reviews = list(pool.map(lambda item: review_one(*item), items))
    return {"date": day, "accounts": len(reviews), "flags": sum(r["flags"] for r in reviews),
            "not_audited": sorted(r["account"] for r in reviews if not r["audited"]), "reviews": reviews}


# ------------------------------------------------------------------------------ Security Hub

def import_to_security_hub(base: Clients, home: str, bucket: str, key_arn: str, account: str, audit_report) -> dict:
    """Import the account's findings into Security Hub in the auditor account and region, and
    archive the ones an earlier run imported that this audit no longer reports. Archiving needs
    a complete audit: after a gap (an account not audited, a listing that failed) the earlier
    findings stay active, since what was not read has not been shown to be fixed. The state
    (what was imported) is written only after every batch was accepted, so a retry redoes the
    same import."""
    auditor = base.account
    now = asff.timestamp()
    state_key = f"state/securityhub/account={account}.json"
    s3 = base("s3", home)
    previous = _previous_state(s3, bucket, state_key)
    created = {f["Id"]: f["CreatedAt"] for f in previous}
    current = asff.findings(audit_report, importer=(auditor, home), now=now, created=created)
    broken = [(f["Id"], p) for f in current for p in asff.problems(f)]
    if broken:
        raise ImportFailed(f"finding {broken[0][0]} is not valid ASFF: {broken[0][1]}")
    ids = {f["Id"] for f in current}
    gone = [f for f in previous if f["Id"] not in ids]
    complete = not any(f.rule_id == "DP-AuditComplete" for f in audit_report.findings)
    resolved = [asff.archived(f, now) for f in gone] if complete else []
    # Security Hub bills every import: a finding that has not changed since it was last imported
    # is not sent again, until it is REFRESH_DAYS old (Security Hub deletes one not updated for 90).
    before = {f["Id"]: f for f in previous}
    changed = [f for f in current if _changed(f, before.get(f["Id"]), now)]
    sent = {f["Id"] for f in changed}
    current = [f if f["Id"] in sent else before[f["Id"]] for f in current]  # as last imported
    securityhub = base("securityhub", home)
    batch = changed + resolved
    for i in range(0, len(batch), IMPORT_BATCH):
        part = batch[i:i + IMPORT_BATCH]
        answer = securityhub.batch_import_findings(Findings=part)
        if answer.get("FailedCount"):
            first = (answer.get("FailedFindings") or [{}])[0]
            raise ImportFailed(f"Security Hub refused {answer['FailedCount']} of {len(part)} findings of account "
                               f"{account}: {first.get('Id')}: {first.get('ErrorCode')}: {first.get('ErrorMessage')}")
    kept = current + ([] if complete else gone)  # not archived: to be archived by a complete audit
    _put(base, bucket, state_key, json.dumps({"updated_at": now, "findings": kept}) + "\n", key_arn)
    return {"imported": len(changed), "unchanged": len(current) - len(changed), "archived": len(resolved),
            "kept_active": 0 if complete else len(gone)}


def _changed(finding: dict, before: dict | None, now: str) -> bool:
    """Whether `finding` must be imported: new, different from what was imported `before` (times
    aside), or last imported REFRESH_DAYS ago or more."""
    if before is None or "UpdatedAt" not in before:
        return True
    age = _instant(now) - _instant(before["UpdatedAt"])
    return age >= dt.timedelta(days=REFRESH_DAYS) or _content(finding) != _content(before)


def _content(finding: dict) -> dict:
    out = {k: v for k, v in finding.items() if k != "UpdatedAt"}
    if isinstance(out.get("Note"), dict):
        out["Note"] = {k: v for k, v in out["Note"].items() if k != "UpdatedAt"}
    return out


def _instant(timestamp: str) -> dt.datetime:
    return dt.datetime.fromisoformat(timestamp.replace("Z", "+00:00"))


def _previous_state(s3: Any, bucket: str, key: str) -> list[dict]:
    try:
        raw = _get(s3, bucket, key)
    except botocore.exceptions.ClientError as e:
        if e.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            return []
        raise
    return json.loads(raw).get("findings", [])


# ------------------------------------------------------------------------------ plumbing

def _env(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise ConfigurationError(f"dpguard organisation audit: the environment variable {name} is not set")
    return value


def _date(event: dict) -> str:
    day = event.get("date") or dt.datetime.now(dt.timezone.utc).date().isoformat()
    try:
        return dt.date.fromisoformat(str(day)).isoformat()
    except ValueError:
        raise ValueError(f"the event's date {day!r} is not a date (YYYY-MM-DD)") from None


def _item(event: dict) -> tuple[str, list[str], str]:
    account, regions = str(event.get("account", "")), event.get("regions")
    if not ACCOUNT.match(account):
        raise ValueError(f"the event's account {account!r} is not a 12-digit account id")
    if not isinstance(regions, list) or not regions or not all(isinstance(r, str) and REGION.match(r) for r in regions):
        raise ValueError(f"the event's regions {regions!r} are not a list of region names")
    return account, regions, _date(event)


def _organization(base: Clients, home: str) -> list[dict]:
    """[{"account", "regions"}] of every ACTIVE account, through ORG_ROLE_ARN when it is set."""
    lister = base
    if os.environ.get("ORG_ROLE_ARN"):
        lister = assumed(base, home, os.environ["ORG_ROLE_ARN"], None, 4, os.environ.get("EXTERNAL_ID") or None)
        if isinstance(lister, NotAudited):
            raise ConfigurationError(f"dpguard organisation audit: ORG_ROLE_ARN: {lister.reason}")
    regions = _regions(base, home)
    return [{"account": account, "regions": regions} for account in sorted(organization_accounts(lister, home))]


def _regions(base: Clients, home: str) -> list[str]:
    named = [r.strip() for r in os.environ.get("REGIONS", "").split(",") if r.strip()]
    bad = [r for r in named if not REGION.match(r)]
    if bad:
        raise ConfigurationError(f"dpguard organisation audit: REGIONS names {bad[0]!r}, which is not a region name")
    return named or enabled_regions(base, home)


def _home_region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


def _own_clients() -> Clients:
    """The Lambda's own credentials (the endpoint comes from AWS_ENDPOINT_URL when set)."""
    return Clients(boto3.Session(region_name=_home_region()), max_pool=AUDIT_CONCURRENCY * 2)


def _deadline(context: Any) -> float:
    """Seconds the audit may read before it reports what is left as gaps: the Lambda's remaining
    time less a margin for judging and writing, or an hour outside Lambda."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if remaining is None:
        return 3600.0
    return max(30.0, remaining() / 1000 - DEADLINE_MARGIN)


def _put(clients: Clients, bucket: str, key: str, body: str | bytes, key_arn: str) -> None:
    clients("s3", _home_region()).put_object(
        Bucket=bucket, Key=key, Body=body.encode("utf-8") if isinstance(body, str) else body,
        ServerSideEncryption="aws:kms", SSEKMSKeyId=key_arn, ChecksumAlgorithm="SHA256")


def _get(s3: Any, bucket: str, key: str) -> bytes:
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def _objects(s3: Any, bucket: str, prefix: str) -> list[str]:
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [o["Key"] for o in page.get("Contents", [])]
    return keys


def _planned(s3: Any, bucket: str, day: str) -> dict[str, list[str]]:
    try:
        items = json.loads(_get(s3, bucket, f"runs/date={day}/accounts.json"))
    except botocore.exceptions.ClientError as e:
        if e.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            return {}
        raise
    return {str(i["account"]): list(i.get("regions") or []) for i in items}
