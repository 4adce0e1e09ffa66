"""Security events become recorded incidents with each party's notification deadline (clause 4).

The policy's response plan asks for "incident types that may impact third-parties" and for data
breaches to be notified "within 72 hours, unless otherwise specified by the parties (e.g. Amazon
requires 24 hour notice)". Here:

- INCIDENT_TYPES names the types, whether each may affect third parties, and its first steps;
- GUARDDUTY_TYPES, SECURITYHUB_TYPES and CIS_ALARMS map what the detectors report to a type;
- the PARTIES setting says who must be told, within how many hours, about which types;
- `handler` (EventBridge: GuardDuty, the CIS CloudWatch alarms, Security Hub) records each event
  as an incident once, with its deadlines counted from detection, and publishes it to the alerts
  topic; `escalation` chases the deadlines; `acknowledge`, `mark_notified` and `close` are what
  `dpguard incident` calls.

An event this module cannot read is recorded and published as an error, never raised: an
asynchronous Lambda that raises is retried and would fail the same way. Only DynamoDB or SNS being
unreachable raises (Lambda's retries and dead-letter queue keep the event)."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from .common import OPEN, ResponseError, iso, json_setting, parse_iso, publish, setting, utcnow


# ---- The response plan's incident types -------------------------------------------------------

@dataclass(frozen=True)
class IncidentType:
    name: str
    affects_third_parties: bool  # the policy's notification deadlines apply
    meaning: str
    procedure: str  # the first steps, sent with every incident of the type


INCIDENT_TYPES = {t.name: t for t in (
    IncidentType("data-breach", True,
                 "customer or user data read, copied, exposed or destroyed by someone not allowed to",
                 "Contain (block the principal or network path, remove public access), preserve the "
                 "logs, establish what data and whose, then notify every party before its deadline."),
    IncidentType("credential-compromise", True,
                 "a credential (access key, role session, password, root, API secret) used or exposed "
                 "outside its owner's control",
                 "Revoke and rotate the credential now, review what it did since first seen "
                 "(CloudTrail), then notify every party before its deadline if data was reachable."),
    IncidentType("compromised-workload", False,
                 "an instance, container or function running malware, a backdoor or a miner",
                 "Isolate the workload (quarantine security group), snapshot it for forensics, "
                 "replace it from a clean image; reclassify as data-breach if it held data."),
    IncidentType("reconnaissance", False,
                 "probing, scanning, brute force or denied calls: nothing reached yet",
                 "Check the source and what it tried; block it if it persists; confirm nothing "
                 "succeeded before closing."),
    IncidentType("security-configuration-change", False,
                 "a change to a security control (IAM, CloudTrail, KMS, security groups, network ACLs)",
                 "Confirm the change was planned and approved; revert it otherwise and treat the "
                 "principal as compromised."),
    IncidentType("policy-violation", False,
                 "a resource that breaks the policy's controls (a failed compliance check)",
                 "Fix the resource or record an accepted exception; check nobody used the gap."),
    IncidentType("unclassified", True,
                 "an event the plan does not recognise: treated as affecting third parties until "
                 "someone triages it (fail closed)",
                 "Triage: decide the real type; if no party needs notice, close with --force and "
                 "the reason."),
)}

SEVERITIES = ("low", "medium", "high", "critical")
SOURCES = ("guardduty", "cloudwatch-alarm", "securityhub", "secret-exposure")

# Hours to acknowledge an incident, by severity (the ACK_HOURS setting overrides any of them).
DEFAULT_ACK_HOURS = {"critical": 1, "high": 4, "medium": 24, "low": 72}

# The parties clause 4 names, used when the PARTIES setting is absent. "types" omitted: every type
# that affects third parties.
POLICY_PARTIES = [
    {"name": "customer", "hours": 72},
    {"name": "users", "hours": 72},
    {"name": "third-party-apis", "hours": 72},
    {"name": "amazon", "hours": 24, "types": ["data-breach", "credential-compromise"]},
]

# GuardDuty finding types (ThreatPurpose:ResourceType/ThreatFamily...) by prefix; the longest
# matching prefix wins, so specific exceptions sit beside their family. A type no prefix matches
# is "unclassified". See https://docs.aws.amazon.com/guardduty/latest/ug/guardduty_finding-types-active.html
GUARDDUTY_TYPES = (
    ("Exfiltration:", "data-breach"),
    ("Impact:S3/", "data-breach"),                       # anomalous or malicious deletes and writes
    ("UnauthorizedAccess:S3/", "data-breach"),
    ("Policy:S3/BucketAnonymousAccessGranted", "data-breach"),
    ("Policy:S3/BucketPublicAccessGranted", "data-breach"),
    ("Policy:IAMUser/S3BucketPublic", "data-breach"),    # Macie
    ("Policy:IAMUser/S3BucketSharedExternally", "data-breach"),  # Macie
    ("AttackSequence:S3/", "data-breach"),
    ("UnauthorizedAccess:IAMUser/", "credential-compromise"),
    ("CredentialAccess:", "credential-compromise"),
    ("CredentialAccess:RDS/MaliciousIPCaller.FailedLogin", "reconnaissance"),
    ("CredentialAccess:RDS/TorIPCaller.FailedLogin", "reconnaissance"),
    ("Policy:IAMUser/RootCredentialUsage", "credential-compromise"),
    ("Persistence:IAMUser/", "credential-compromise"),
    ("PrivilegeEscalation:IAMUser/", "credential-compromise"),
    ("DefenseEvasion:IAMUser/", "credential-compromise"),
    ("Impact:IAMUser/", "credential-compromise"),
    ("AttackSequence:IAM/", "credential-compromise"),
    ("Backdoor:", "compromised-workload"),
    ("Trojan:", "compromised-workload"),
    ("CryptoCurrency:", "compromised-workload"),
    ("Execution:", "compromised-workload"),
    ("Persistence:", "compromised-workload"),
    ("PrivilegeEscalation:", "compromised-workload"),
    ("DefenseEvasion:", "compromised-workload"),
    ("Impact:", "compromised-workload"),                 # EC2/Runtime/Kubernetes: our workload attacks others
    ("Object:", "compromised-workload"),                 # malware found in an object or volume
    ("UnauthorizedAccess:EC2/", "compromised-workload"),
    ("UnauthorizedAccess:Lambda/", "compromised-workload"),
    ("AttackSequence:", "compromised-workload"),
    ("UnauthorizedAccess:EC2/SSHBruteForce", "reconnaissance"),
    ("UnauthorizedAccess:EC2/RDPBruteForce", "reconnaissance"),
    ("Recon:", "reconnaissance"),
    ("Discovery:", "reconnaissance"),
    ("PenTest:", "reconnaissance"),
    ("Stealth:", "security-configuration-change"),       # logging disabled, password policy weakened
    ("Policy:S3/", "security-configuration-change"),     # block public access disabled
    ("Policy:IAMUser/", "security-configuration-change"),
    ("Policy:Kubernetes/", "security-configuration-change"),
    ("SensitiveData:", "policy-violation"),              # Macie: personal data found where it is kept
)

# Security Hub (ASFF) type namespaces, for findings that carry no GuardDuty-style type; longest
# prefix wins. See https://docs.aws.amazon.com/securityhub/latest/userguide/asff-required-attributes.html
SECURITYHUB_TYPES = (
    ("Effects/Data Exfiltration", "data-breach"),
    ("Effects/Data Exposure", "data-breach"),
    ("Effects/Data Destruction", "data-breach"),
    ("TTPs/Credential Access", "credential-compromise"),
    ("Unusual Behaviors/User", "credential-compromise"),
    ("TTPs/Execution", "compromised-workload"),
    ("TTPs/Command and Control", "compromised-workload"),
    ("Effects/Resource Consumption", "compromised-workload"),
    ("TTPs/Discovery", "reconnaissance"),
    ("TTPs/Initial Access", "reconnaissance"),
    ("Software and Configuration Checks", "policy-violation"),
    ("Sensitive Data Identifications", "policy-violation"),
)

# The CIS AWS Foundations Benchmark alarms (section 4, v1.4 - v3.0) by control number: the number
# is read from the alarm's description ("CIS 4.3: use of the root account. ..."), as the
# baseline's audit stack writes it. An alarm without a known number is "unclassified", medium.
CIS_ALARMS = {
    "4.1": ("reconnaissance", "high"),                   # unauthorized API calls: denied, so probing
    "4.2": ("policy-violation", "medium"),               # console sign-in without MFA
    "4.3": ("credential-compromise", "critical"),        # use of the root account
    "4.4": ("security-configuration-change", "medium"),  # IAM policy changes
    "4.5": ("security-configuration-change", "medium"),  # CloudTrail configuration changes
    "4.6": ("reconnaissance", "medium"),                 # failed console sign-ins: guessing
    "4.7": ("security-configuration-change", "medium"),  # KMS keys disabled or scheduled for deletion
    "4.8": ("security-configuration-change", "medium"),  # S3 bucket policy changes
    "4.9": ("security-configuration-change", "medium"),  # AWS Config changes
    "4.10": ("security-configuration-change", "medium"),  # security group changes
    "4.11": ("security-configuration-change", "medium"),  # network ACL changes
    "4.12": ("security-configuration-change", "medium"),  # network gateway changes
    "4.13": ("security-configuration-change", "medium"),  # route table changes
    "4.14": ("security-configuration-change", "medium"),  # VPC changes
    "4.15": ("security-configuration-change", "medium"),  # AWS Organizations changes
}
CIS_NUMBER = re.compile(r"\bCIS (\d+\.\d+)\b")


def _check_tables() -> None:
    """The mappings name only known types and severities: a typo fails at import, not at 3 a.m."""
    named = [t for _, t in GUARDDUTY_TYPES + SECURITYHUB_TYPES] + [t for t, _ in CIS_ALARMS.values()]
    unknown = sorted(set(named) - set(INCIDENT_TYPES))
    bad = sorted({s for _, s in CIS_ALARMS.values()} - set(SEVERITIES))
    for table in (GUARDDUTY_TYPES, SECURITYHUB_TYPES):
        prefixes = [p for p, _ in table]
        if len(prefixes) != len(set(prefixes)):
            raise RuntimeError("incident type tables: a prefix is listed twice")
    if unknown or bad:
        raise RuntimeError(f"incident type tables name unknown types {unknown} or severities {bad}")


_check_tables()


def _longest_prefix(text: str, table: tuple[tuple[str, str], ...]) -> str | None:
    matches = [(len(prefix), kind) for prefix, kind in table if text.startswith(prefix)]
    return max(matches)[1] if matches else None


def classify_guardduty(finding_type: str) -> str:
    """The incident type of a GuardDuty finding type, e.g. Recon:EC2/PortProbeUnprotectedPort."""
    return _longest_prefix(finding_type, GUARDDUTY_TYPES) or "unclassified"


def classify_securityhub(types: list[str], compliance: str | None) -> str:
    """The incident type of a Security Hub finding from its Types. GuardDuty findings forwarded to
    Security Hub carry their type as the last part, "/" written "-" (TTPs/Discovery/
    Recon:EC2-PortProbeUnprotectedPort); other findings are classified by namespace. If several
    types classify, one that affects third parties wins (fail closed)."""
    found = []
    for text in types:
        last = text.rsplit("/", 1)[-1]
        if ":" in last:
            purpose, _, rest = last.partition(":")
            found.append(_longest_prefix(f"{purpose}:{rest.replace('-', '/', 1)}", GUARDDUTY_TYPES))
        found.append(_longest_prefix(text, SECURITYHUB_TYPES))
    found = [kind for kind in found if kind]
    if not found:
        return "policy-violation" if compliance in ("FAILED", "WARNING") else "unclassified"
    return next((k for k in found if INCIDENT_TYPES[k].affects_third_parties), found[0])


def guardduty_severity(score: float) -> str:
    """GuardDuty's 0.1-10 score in its own bands (low < 4, medium < 7, high < 9), 9+ critical."""
    return "low" if score < 4 else "medium" if score < 7 else "high" if score < 9 else "critical"


ASFF_LABELS = {"INFORMATIONAL": "low", "LOW": "low", "MEDIUM": "medium", "HIGH": "high", "CRITICAL": "critical"}


# ---- Settings ---------------------------------------------------------------------------------

MAX_HOURS = 24 * 366  # a deadline further off is a typo


def _is_hours(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float, Decimal)) and 0 < value <= MAX_HOURS


def read_parties(parties: Any) -> list[dict]:
    """The PARTIES setting, checked: a typo in a type name would silently drop a notification."""
    if not isinstance(parties, list) or not parties:
        raise ResponseError("PARTIES must be a non-empty JSON list of {\"name\", \"hours\", \"types\"?}")
    checked, names = [], set()
    for party in parties:
        name = party.get("name") if isinstance(party, dict) else None
        if not isinstance(name, str) or not name.strip():
            raise ResponseError(f"PARTIES: {party!r} has no name")
        name = name.strip()
        if not _is_hours(party.get("hours")):
            raise ResponseError(f"PARTIES: {name} needs hours, a number above 0 and at most {MAX_HOURS} "
                                f"(got {party.get('hours')!r})")
        types = party.get("types")
        known = isinstance(types, list) and all(isinstance(t, str) and t in INCIDENT_TYPES for t in types)
        if types is not None and not known:
            raise ResponseError(f"PARTIES: {name}'s types must be a list of {', '.join(INCIDENT_TYPES)}")
        if name in names:
            raise ResponseError(f"PARTIES: {name} is listed twice")
        names.add(name)
        checked.append({"name": name, "hours": party["hours"], "types": types})
    return checked


def read_ack_hours(ack_hours: Any) -> dict[str, Any]:
    """ACK_HOURS over the defaults: a severity left out keeps its default."""
    if ack_hours is None:
        return dict(DEFAULT_ACK_HOURS)
    if not isinstance(ack_hours, dict) or not set(ack_hours) <= set(SEVERITIES):
        raise ResponseError(f"ACK_HOURS must be a JSON object of {', '.join(SEVERITIES)} to hours")
    for severity, hours in ack_hours.items():
        if not _is_hours(hours):
            raise ResponseError(f"ACK_HOURS: {severity} needs hours, a number above 0 and at most {MAX_HOURS} "
                                f"(got {hours!r})")
    return {**DEFAULT_ACK_HOURS, **ack_hours}


def parties_for(incident_type: str, parties: list[dict]) -> list[dict]:
    """The parties to notify of an incident of this type."""
    affects = INCIDENT_TYPES[incident_type].affects_third_parties
    return [p for p in parties if (incident_type in p["types"] if p.get("types") is not None else affects)]


# ---- Reading the events -----------------------------------------------------------------------

@dataclass
class Detection:
    """One security event, read: the arguments of open_incident."""
    source: str
    source_id: str
    type: str
    severity: str
    title: str
    description: str
    resource: str
    account: str
    region: str
    detected_at: dt.datetime
    last_seen: dt.datetime | None = None


@dataclass
class Ignored:
    reason: str


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []


def _text(mapping: Any, key: str) -> str:
    value = _dict(mapping).get(key)
    return value.strip() if isinstance(value, str) else ""


def _required(mapping: Any, key: str, where: str) -> str:
    value = _text(mapping, key)
    if not value:
        raise ResponseError(f"{where} has no {key}")
    return value


def _time(text: str, what: str) -> dt.datetime:
    try:
        return parse_iso(text)
    except ValueError:
        raise ResponseError(f"{what} is not a time: {text[:60]!r}") from None


def _first_time(event: dict, *candidates: Any) -> dt.datetime:
    """The first of `candidates` present, else the event's own time."""
    for text in (*candidates, event.get("time")):
        if isinstance(text, str) and text.strip():
            return _time(text.strip(), "the event's time")
    raise ResponseError("the event carries no time")


def _read_guardduty(event: dict, detail: dict) -> list:
    where = "the GuardDuty finding"
    finding_id = _required(detail, "id", where)
    finding_type = _required(detail, "type", where)
    score = detail.get("severity")
    if isinstance(score, bool) or not isinstance(score, (int, float)) or not 0 <= score <= 10:
        raise ResponseError(f"{where} {finding_id} has no severity between 0 and 10 (got {score!r})")
    service = _dict(detail.get("service"))
    if service.get("archived") is True:
        return [Ignored(f"GuardDuty finding {finding_id} is archived")]
    description = _text(detail, "description")
    return [Detection(
        source="guardduty", source_id=finding_id, type=classify_guardduty(finding_type),
        severity=guardduty_severity(score), title=_text(detail, "title") or finding_type,
        description=f"{description} [GuardDuty {finding_type}, severity {score}]".strip(),
        resource=_guardduty_resource(detail.get("resource")),
        account=_text(detail, "accountId") or _text(event, "account"),
        region=_text(detail, "region") or _text(event, "region"),
        detected_at=_first_time(event, service.get("eventFirstSeen"), detail.get("createdAt")),
        last_seen=_first_time(event, service.get("eventLastSeen"), detail.get("updatedAt")))]


# GuardDuty's resource.resourceType -> the details key and the fields that name the resource.
_GUARDDUTY_RESOURCES = {
    "AccessKey": ("accessKeyDetails", ("accessKeyId", "userName")),
    "Instance": ("instanceDetails", ("instanceId",)),
    "S3Bucket": ("s3BucketDetails", ("arn", "name")),
    "S3Object": ("s3BucketDetails", ("arn", "name")),
    "EKSCluster": ("eksClusterDetails", ("arn", "name")),
    "RDSDBInstance": ("rdsDbInstanceDetails", ("dbInstanceArn", "dbInstanceIdentifier")),
    "RDSLimitlessDB": ("rdsLimitlessDbDetails", ("dbShardGroupArn", "dbShardGroupIdentifier")),
    "Lambda": ("lambdaDetails", ("functionArn", "functionName")),
    "ECSCluster": ("ecsClusterDetails", ("arn", "name")),
    "Container": ("containerDetails", ("id", "name")),
}


def _guardduty_resource(resource: Any) -> str:
    kind = _text(resource, "resourceType")
    key, fields = _GUARDDUTY_RESOURCES.get(kind, ("", ()))
    details = _dict(resource).get(key)
    if isinstance(details, list):  # S3 findings list the buckets involved
        details = details[0] if details else {}
    names = [_text(details, f) for f in fields if _text(details, f)]
    if kind == "AccessKey" and len(names) == 2:
        return f"AccessKey {names[0]} (user {names[1]})"
    return f"{kind} {names[0]}" if names else kind


def _read_alarm(event: dict, detail: dict) -> list:
    name = _required(detail, "alarmName", "the alarm state change")
    state = detail.get("state")
    value = _required(state, "value", f"the state of alarm {name}")
    if value != "ALARM":
        return [Ignored(f"alarm {name} changed to {value}: only ALARM opens an incident")]
    arn = next((r for r in _list(event.get("resources")) if isinstance(r, str) and r), name)
    stamp = _text(state, "timestamp") or _text(event, "time")
    if not stamp:
        raise ResponseError(f"the state of alarm {name} has no timestamp")
    described = _text(detail.get("configuration"), "description")
    number = CIS_NUMBER.search(described)
    incident_type, severity = CIS_ALARMS.get(number.group(1) if number else "", ("unclassified", "medium"))
    return [Detection(
        # one incident per transition to ALARM: a redelivery has the same timestamp, a new
        # root sign-in tomorrow is a new incident
        source="cloudwatch-alarm", source_id=f"{arn}@{stamp}", type=incident_type, severity=severity,
        title=f"{described.split('. ')[0] or 'alarm'} (alarm {name})",
        description=f"{described} {_text(state, 'reason')}".strip(), resource=arn,
        account=_text(event, "account"), region=_text(event, "region"),
        detected_at=_time(stamp, f"the state timestamp of alarm {name}"))]


def _read_securityhub(event: dict, detail: dict) -> list:
    findings = detail.get("findings")
    if not isinstance(findings, list) or not findings:
        raise ResponseError("the Security Hub event has no findings")
    results: list = []
    for number, finding in enumerate(findings, 1):
        try:
            results.append(_read_asff(event, finding))
        except Exception as e:  # reading is pure: any failure means this one finding is unreadable
            results.append(ResponseError(f"finding {number} of {len(findings)}: {_describe(e)}"))
    return results


def _read_asff(event: dict, finding: Any) -> Detection | Ignored:
    if not isinstance(finding, dict):
        raise ResponseError("not a JSON object")
    finding_id = _required(finding, "Id", "the finding")
    workflow = _text(finding.get("Workflow"), "Status") or _text(finding, "WorkflowState")
    compliance = _text(finding.get("Compliance"), "Status") or None
    # Security Hub re-sends a finding on every update: these say it is over, not that it began
    if _text(finding, "RecordState") == "ARCHIVED":
        return Ignored(f"Security Hub finding {finding_id} is archived")
    if workflow in ("RESOLVED", "SUPPRESSED"):
        return Ignored(f"Security Hub finding {finding_id} is {workflow.lower()}")
    if compliance == "PASSED":
        return Ignored(f"Security Hub finding {finding_id} passed its compliance check")
    types = [t for t in _list(finding.get("Types")) if isinstance(t, str)]
    source, source_id = "securityhub", finding_id
    if _text(finding, "ProductArn").endswith("/guardduty") and "/finding/" in finding_id:
        # the GuardDuty finding that also arrives straight from GuardDuty: one incident, not two
        source, source_id = "guardduty", finding_id.rsplit("/finding/", 1)[1]
    resource = next((r for r in _list(finding.get("Resources")) if _text(r, "Id")), {})
    return Detection(
        source=source, source_id=source_id, type=classify_securityhub(types, compliance),
        severity=_asff_severity(finding.get("Severity"), finding_id), title=_text(finding, "Title") or finding_id,
        description=_text(finding, "Description"),
        resource=f"{_text(resource, 'Type')} {_text(resource, 'Id')}".strip(),
        account=_text(finding, "AwsAccountId") or _text(event, "account"),
        region=_text(finding, "Region") or _text(event, "region"),
        detected_at=_first_time(event, finding.get("FirstObservedAt"), finding.get("CreatedAt")),
        last_seen=_first_time(event, finding.get("LastObservedAt"), finding.get("UpdatedAt")))


def _asff_severity(severity: Any, finding_id: str) -> str:
    label = _text(severity, "Label")
    if label in ASFF_LABELS:
        return ASFF_LABELS[label]
    normalized = _dict(severity).get("Normalized")  # findings from before Label existed
    if isinstance(normalized, (int, float)) and not isinstance(normalized, bool) and 0 <= normalized <= 100:
        return "low" if normalized < 40 else "medium" if normalized < 70 else "high" if normalized < 90 else "critical"
    raise ResponseError(f"finding {finding_id} has no Severity.Label ({', '.join(ASFF_LABELS)})")


READERS = {
    ("aws.guardduty", "GuardDuty Finding"): _read_guardduty,
    ("aws.cloudwatch", "CloudWatch Alarm State Change"): _read_alarm,
    ("aws.securityhub", "Security Hub Findings - Imported"): _read_securityhub,
}


def read_event(event: Any) -> list[Detection | Ignored | ResponseError]:
    """What an EventBridge event reports: one result per finding (Security Hub sends lists).
    Raises ResponseError when the event as a whole cannot be read."""
    if not isinstance(event, dict):
        raise ResponseError(f"the event is a JSON {type(event).__name__}, not an EventBridge event (an object)")
    source, detail_type = event.get("source"), event.get("detail-type")
    reader = READERS.get((source, detail_type)) if isinstance(source, str) and isinstance(detail_type, str) else None
    if reader is None:
        raise ResponseError(f"unknown event: source {source!r}, detail-type {detail_type!r} (expected GuardDuty "
                            "findings, CloudWatch alarm state changes or Security Hub findings)")
    if not isinstance(event.get("detail"), dict):
        raise ResponseError(f"the {detail_type} event has no detail object")
    return reader(event, event["detail"])


def _describe(error: Exception) -> str:
    """One line for any reading failure."""
    text = str(error) if isinstance(error, ResponseError) else f"{type(error).__name__}: {error}"
    return " ".join(text.split())[:300]


# ---- Recording --------------------------------------------------------------------------------

NO_DEADLINE = "9999-12-31T23:59:59Z"  # sorts after every deadline: listed as open, never escalated
DESCRIPTION_LIMIT = 1000
RAW_EVENT_LIMIT = 8 * 1024


def incident_id(source: str, source_id: str) -> str:
    return "INC-" + hashlib.sha256(f"{source}\0{source_id}".encode()).hexdigest()[:16]


def _hours(value: Any) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _as_time(value: dt.datetime | str, what: str) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
    if isinstance(value, str):
        return _time(value, what)
    raise ResponseError(f"{what} must be a time, got {value!r}")


def pending_deadlines(item: dict) -> list[tuple[str, str, str | None]]:
    """(what, deadline, party) still to meet, earliest first: acknowledgement while nobody has
    acknowledged, and each party not yet recorded as notified."""
    pending = []
    try:
        if not item.get("acknowledged_at"):
            pending.append(("acknowledgement", item["ack_deadline"], None))
        for name, party in (item.get("parties") or {}).items():
            if not party.get("notified_at"):
                pending.append((f"notify {name}", party["deadline"], name))
        return sorted(pending, key=lambda p: p[1])
    except (KeyError, TypeError, AttributeError) as e:  # an item edited by hand
        raise ResponseError(f"incident {item.get('id')} has unreadable deadlines ({type(e).__name__}: {e})") from None


def next_deadline(item: dict) -> str:
    pending = pending_deadlines(item)
    return pending[0][1] if pending else NO_DEADLINE


def _conditional_failed(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def _put_new(table, item: dict) -> bool:
    """Write `item` unless its id exists; False if it did (a redelivery)."""
    try:
        table.put_item(Item=item, ConditionExpression="attribute_not_exists(id)")
        return True
    except ClientError as e:
        if _conditional_failed(e):
            return False
        raise


def open_incident(table, sns, topic_arn: str, *, source: str, source_id: str, type: str, severity: str,
                  title: str, description: str, resource: str, account: str, region: str,
                  detected_at: dt.datetime | str, parties: list[dict], ack_hours: dict | None, now: dt.datetime,
                  last_seen: dt.datetime | None = None) -> tuple[dict, bool]:
    """Record an incident once and publish it; (item, created). The same source and source_id
    again only counts an occurrence: no new message, deadlines unchanged."""
    if source not in SOURCES:
        raise ResponseError(f"unknown incident source {source!r} (one of {', '.join(SOURCES)})")
    if type not in INCIDENT_TYPES:
        raise ResponseError(f"unknown incident type {type!r} (one of {', '.join(INCIDENT_TYPES)})")
    if severity not in SEVERITIES:
        raise ResponseError(f"unknown severity {severity!r} (one of {', '.join(SEVERITIES)})")
    if not source_id:
        raise ResponseError(f"a {source} incident needs the id the source gave it")
    parties, ack_hours = read_parties(parties), read_ack_hours(ack_hours)
    # deadlines never start after we heard of it (a clock ahead of ours would push them later)
    detected = min(_as_time(detected_at, "detected_at"), now)
    seen = iso(last_seen or now)
    item = {
        "id": incident_id(source, source_id), "kind": "incident", "type": type, "severity": severity,
        "title": title[:300], "description": description[:DESCRIPTION_LIMIT], "source": source,
        "source_id": source_id, "resource": resource, "account": account, "region": region,
        "detected_at": iso(detected), "recorded_at": iso(now),
        "affects_third_parties": INCIDENT_TYPES[type].affects_third_parties,
        "parties": {p["name"]: {"hours": _hours(p["hours"]),
                                "deadline": iso(detected + dt.timedelta(hours=float(p["hours"]))),
                                "notified_at": None, "notified_by": None}
                    for p in parties_for(type, parties)},
        "ack_deadline": iso(detected + dt.timedelta(hours=float(ack_hours[severity]))),
        "acknowledged_at": None, "acknowledged_by": None, "escalations": [], "occurrences": 1,
        "last_seen": seen, "alerted_at": None, "revision": 1, "tracking": OPEN,
    }
    item["next_deadline"] = next_deadline(item)
    created = _put_new(table, item)
    if not created:
        try:
            item = table.update_item(
                Key={"id": item["id"]}, ConditionExpression="attribute_exists(id)",
                UpdateExpression="ADD occurrences :one SET last_seen = :seen",
                ExpressionAttributeValues={":one": 1, ":seen": seen}, ReturnValues="ALL_NEW")["Attributes"]
        except ClientError as e:
            if _conditional_failed(e):  # deleted between the two calls: nothing sensible to add to
                raise ResponseError(f"incident {item['id']} vanished while it was being updated") from None
            raise
    if not item.get("alerted_at"):  # new, or the first try's publish failed: a lost alert is worse than two
        _announce(table, sns, topic_arn, item, now, subject=f"[{severity}] {type} {item['id']}: {title}",
                  message=incident_message(item), attributes={"kind": "incident", "severity": severity, "type": type})
    return item, created


def _announce(table, sns, topic_arn: str, item: dict, now: dt.datetime, **message: Any) -> None:
    """Publish, then note it on the item: a retry after a failed publish publishes again."""
    publish(sns, topic_arn, **message)
    item["alerted_at"] = iso(now)
    table.update_item(Key={"id": item["id"]}, UpdateExpression="SET alerted_at = :at",
                      ExpressionAttributeValues={":at": item["alerted_at"]})


def incident_message(item: dict) -> dict:
    """The alert a responder reads: what, where, when, the deadlines and the next commands."""
    iid = item["id"]
    notify = sorted(({"party": name, "hours": plain(p["hours"]), "deadline": p["deadline"]}
                     for name, p in item["parties"].items()), key=lambda p: p["deadline"])
    steps = [f"acknowledge by {item['ack_deadline']}: dpguard incident ack {iid} --by NAME"]
    steps += [f"notify {p['party']} by {p['deadline']}, then: dpguard incident notified {iid} "
              f"--party {p['party']} --by NAME" for p in notify]
    steps.append(f"when resolved: dpguard incident close {iid} --by NAME --reason TEXT")
    kind = INCIDENT_TYPES[item["type"]]
    return {
        "kind": "incident", "id": iid, "type": item["type"], "severity": item["severity"],
        "affects_third_parties": item["affects_third_parties"], "title": item["title"],
        "description": item["description"], "source": item["source"], "resource": item["resource"],
        "account": item["account"], "region": item["region"], "detected_at": item["detected_at"],
        "acknowledge_by": item["ack_deadline"], "notify": notify, "meaning": kind.meaning,
        "procedure": kind.procedure, "next_steps": steps,
    }


def record_error(table, sns, topic_arn: str, *, raw: Any, error: str, now: dt.datetime,
                 part: int | None = None) -> dict:
    """Keep an event that could not be read (it may still be a real incident) and say so, once."""
    text = json.dumps(raw, sort_keys=True, default=repr, ensure_ascii=False)
    key = text if part is None else f"{text}\0{part}"
    item = {
        "id": "ERR-" + hashlib.sha256(key.encode()).hexdigest()[:16], "kind": "error", "error": error,
        "event": text.encode()[:RAW_EVENT_LIMIT].decode(errors="ignore"), "recorded_at": iso(now), "alerted_at": None,
    }
    if not _put_new(table, item):
        item = table.get_item(Key={"id": item["id"]}, ConsistentRead=True).get("Item") or item
    if not item.get("alerted_at"):
        source = raw.get("source") if isinstance(raw, dict) else None
        _announce(table, sns, topic_arn, item, now, subject=f"could not read a security event ({item['id']})",
                  message={"kind": "error", "id": item["id"], "error": error, "source": source,
                           "recorded_at": item["recorded_at"],
                           "next_step": f"read the event kept in item {item['id']} of the incidents table and "
                                        "triage it: it may be a real incident"},
                  attributes={"kind": "error"})
    return item


def handle_event(event: Any, *, table, sns, topic_arn: str, parties: list[dict], ack_hours: dict | None,
                 now: dt.datetime) -> dict:
    """Record what one EventBridge event reports. Returns lists of the incidents created, the
    duplicates, the ignored events and the errors; raises only when AWS cannot be reached (or the
    settings are wrong: then every event would fail, and Lambda's dead-letter queue keeps them)."""
    parties, ack_hours = read_parties(parties), read_ack_hours(ack_hours)
    summary: dict[str, list] = {"created": [], "duplicates": [], "ignored": [], "errors": []}

    def failed(error: str, part: int | None = None) -> None:
        item = record_error(table, sns, topic_arn, raw=event, error=error, now=now, part=part)
        summary["errors"].append({"id": item["id"], "error": error})

    try:
        results = read_event(event)
    except Exception as e:  # reading is pure: any failure means the event is unreadable
        failed(_describe(e))
        return summary
    for part, result in enumerate(results):
        if isinstance(result, Ignored):
            summary["ignored"].append(result.reason)
        elif isinstance(result, ResponseError):
            failed(_describe(result), part)
        else:
            try:
                item, created = open_incident(table, sns, topic_arn, parties=parties, ack_hours=ack_hours,
                                              now=now, **vars(result))
            except ResponseError as e:
                failed(_describe(e), part)
                continue
            summary["created" if created else "duplicates"].append(item["id"])
    return summary


def handler(event: Any, context: Any) -> dict:
    """The Lambda entry point (EventBridge rules of GuardDuty, the CIS alarms and Security Hub)."""
    import boto3

    summary = handle_event(
        event, table=boto3.resource("dynamodb").Table(setting("INCIDENT_TABLE")), sns=boto3.client("sns"),
        topic_arn=setting("ALERTS_TOPIC_ARN"), parties=json_setting("PARTIES", POLICY_PARTIES),
        ack_hours=json_setting("ACK_HOURS", DEFAULT_ACK_HOURS), now=utcnow())
    print(json.dumps(summary))  # the function's log: one line per event
    return summary


# ---- What responders do: acknowledge, record notifications, close ----------------------------

def get_incident(table, incident_id: str) -> dict:
    item = table.get_item(Key={"id": incident_id}, ConsistentRead=True).get("Item")
    if not item or item.get("kind") != "incident":
        raise ResponseError(f"no incident {incident_id} in table {table.name} (see `dpguard incident list --all`)")
    return item


def _change(table, incident_id: str, edit) -> dict:
    """Read, edit, write back with the recomputed next deadline, unless someone else changed the
    incident meanwhile (its revision moved): then read again. `edit(item)` changes the item in
    place and returns the attributes it changed, or None if there is nothing to do."""
    for _ in range(5):
        item = get_incident(table, incident_id)
        revision = item.get("revision")
        changed = edit(item)
        if changed is None:
            return item
        names, values, sets, removes = {"#revision": "revision"}, {":one": 1, ":zero": 0}, [], []
        if revision is None:  # an item made by hand
            condition = "attribute_not_exists(#revision)"
        else:
            condition, values[":old"] = "#revision = :old", revision
        if item.get("tracking") == OPEN:
            item["next_deadline"] = next_deadline(item)
            changed = [*changed, "next_deadline"]
        for n, attribute in enumerate(dict.fromkeys(changed)):
            names[f"#a{n}"] = attribute
            if attribute in item:
                values[f":v{n}"] = item[attribute]
                sets.append(f"#a{n} = :v{n}")
            else:
                removes.append(f"#a{n}")
        expression = "SET " + ", ".join(sets + ["#revision = if_not_exists(#revision, :zero) + :one"])
        if removes:
            expression += " REMOVE " + ", ".join(removes)
        try:
            answer = table.update_item(
                Key={"id": incident_id}, UpdateExpression=expression, ConditionExpression=condition,
                ExpressionAttributeNames=names, ExpressionAttributeValues=values, ReturnValues="ALL_NEW")
            return answer["Attributes"]
        except ClientError as e:
            if not _conditional_failed(e):
                raise
    raise ResponseError(f"{incident_id} keeps changing under us: try again")


def _who(by: str) -> str:
    if not isinstance(by, str) or not by.strip():
        raise ResponseError("say who is acting (--by NAME): the record of the response needs it")
    return by.strip()


def acknowledge(table, incident_id: str, by: str, now: dt.datetime) -> dict:
    """Someone owns the incident: acknowledgement escalations stop. Acknowledging twice keeps
    the first acknowledgement."""
    by = _who(by)

    def edit(item: dict):
        if item.get("acknowledged_at"):
            return None
        if item.get("tracking") != OPEN:
            raise ResponseError(f"{incident_id} is closed")
        item.update(acknowledged_at=iso(now), acknowledged_by=by)
        return ["acknowledged_at", "acknowledged_by"]
    return _change(table, incident_id, edit)


def mark_notified(table, incident_id: str, party: str, by: str, now: dt.datetime) -> dict:
    """Record that `party` was told: its escalations stop. Allowed after closing too (a late
    notice is still worth recording); recording twice keeps the first."""
    by = _who(by)

    def edit(item: dict):
        parties = item.get("parties") or {}
        if party not in parties:
            known = ", ".join(sorted(parties)) or "none: this type of incident needs no notice"
            raise ResponseError(f"{incident_id} has no party {party!r} to notify (its parties: {known})")
        if parties[party].get("notified_at"):
            return None
        parties[party].update(notified_at=iso(now), notified_by=by)
        return ["parties"]
    return _change(table, incident_id, edit)


def close(table, incident_id: str, by: str, reason: str, now: dt.datetime, *, force: bool = False) -> dict:
    """Close the incident: it leaves the open index and escalation. While a party's notification
    is unrecorded, closing is refused unless `force` (the reason then says why no notice was due,
    and the parties left unnotified are kept with it)."""
    by = _who(by)
    if not isinstance(reason, str) or not reason.strip():
        raise ResponseError("say why the incident is closed (--reason TEXT)")

    def edit(item: dict):
        if item.get("tracking") != OPEN:
            raise ResponseError(f"{incident_id} is already closed ({item.get('closed_at')}, "
                                f"by {item.get('closed_by')})")
        unnotified = sorted(n for n, p in (item.get("parties") or {}).items() if not p.get("notified_at"))
        if unnotified and not force:
            raise ResponseError(
                f"{incident_id} still has {', '.join(unnotified)} to notify: record each with `dpguard incident "
                f"notified {incident_id} --party NAME --by NAME`, or close with --force if no notice is due")
        item.update(closed_at=iso(now), closed_by=by, close_reason=reason.strip(), closed_unnotified=unnotified)
        del item["tracking"], item["next_deadline"]
        return ["closed_at", "closed_by", "close_reason", "closed_unnotified", "tracking", "next_deadline"]
    return _change(table, incident_id, edit)


def plain(value: Any) -> Any:
    """DynamoDB's Decimals as ints or floats, for JSON."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, set):
        return sorted(plain(v) for v in value)
    return value
