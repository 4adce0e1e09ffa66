"""Clause 4 in action: security events become incidents with each party's deadline, deadlines are
escalated, and responders record the response with `dpguard incident` (moto in-process)."""
from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path
from types import SimpleNamespace

import boto3
import botocore.exceptions
import moto
import pytest

from dpguard.cli import main
from dpguard.response import escalation, incidents
from dpguard.response.common import OPEN, OPEN_INDEX, ResponseError, iso
from dpguard.response.incidents import handle_event

DATA = Path(__file__).parent / "data" / "response"
PARTIES = [{"name": "customer", "hours": 72}, {"name": "users", "hours": 72},
           {"name": "amazon", "hours": 24, "types": ["data-breach", "credential-compromise"]}]
NOW = dt.datetime(2026, 3, 2, 13, 0, tzinfo=dt.timezone.utc)


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def sample(name: str) -> dict:
    return json.loads((DATA / f"{name}.json").read_text())


def make_tracker(dynamodb, name: str):
    """A tracker table as the stack makes it: key `id`, sparse index of the open by deadline
    (keys only, so the code must not rely on projected attributes)."""
    dynamodb.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in ("id", "tracking", "next_deadline")],
        GlobalSecondaryIndexes=[{
            "IndexName": OPEN_INDEX, "Projection": {"ProjectionType": "KEYS_ONLY"},
            "KeySchema": [{"AttributeName": "tracking", "KeyType": "HASH"},
                          {"AttributeName": "next_deadline", "KeyType": "RANGE"}]}])
    return dynamodb.Table(name)


@pytest.fixture
def session(monkeypatch):
    """conftest's session without IAM's managed policies (unused here, and a second per test)."""
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    with moto.mock_aws():
        yield boto3.Session(region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")


@pytest.fixture
def aws(session):
    """The incidents and data-request tables, the alerts topic, and a queue reading the topic."""
    dynamodb, sns, sqs = session.resource("dynamodb"), session.client("sns"), session.client("sqs")
    topic_arn = sns.create_topic(Name="alerts")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="alerts-reader")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)

    def messages() -> list[dict]:
        """What the topic published since the last call."""
        out = []
        while batch := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
            for m in batch:
                envelope = json.loads(m["Body"])
                out.append({"subject": envelope.get("Subject"), "body": json.loads(envelope["Message"]),
                            "attributes": {k: v["Value"] for k, v in envelope.get("MessageAttributes", {}).items()}})
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
        return out

    return SimpleNamespace(table=make_tracker(dynamodb, "incidents"), requests=make_tracker(dynamodb, "data-requests"),
                           sns=sns, topic_arn=topic_arn, messages=messages)


def handle(aws, event, now=NOW, parties=PARTIES):
    return handle_event(event, table=aws.table, sns=aws.sns, topic_arn=aws.topic_arn, parties=parties,
                        ack_hours=None, now=now)


def items(aws, kind: str) -> list[dict]:
    return [i for i in aws.table.scan()["Items"] if i["kind"] == kind]


# ---- Events in, incidents out -----------------------------------------------------------------

def test_a_guardduty_credential_exfiltration_is_a_credential_compromise_amazon_hears_within_24_hours(aws):
    result = handle(aws, sample("guardduty-credential-exfiltration"))

    [item] = items(aws, "incident")
    assert result == {"created": [item["id"]], "duplicates": [], "ignored": [], "errors": []}
    assert item["id"].startswith("INC-") and len(item["id"]) == 20
    assert (item["type"], item["severity"], item["source"]) == ("credential-compromise", "high", "guardduty")
    assert item["affects_third_parties"] is True
    assert item["resource"] == "AccessKey ASIAZEXAMPLE7KEYID01 (user app-server-role)"
    assert (item["account"], item["region"]) == ("123456789012", "us-east-1")
    # deadlines count from GuardDuty's first sight of the activity, not from our clock
    assert item["detected_at"] == "2026-03-02T09:58:11Z"
    assert {n: p["deadline"] for n, p in item["parties"].items()} == {
        "customer": "2026-03-05T09:58:11Z", "users": "2026-03-05T09:58:11Z", "amazon": "2026-03-03T09:58:11Z"}
    assert all(p["notified_at"] is None for p in item["parties"].values())
    assert item["ack_deadline"] == "2026-03-02T13:58:11Z"  # high: 4 hours
    assert item["next_deadline"] == item["ack_deadline"] and item["tracking"] == OPEN

    [message] = aws.messages()
    assert message["attributes"] == {"kind": "incident", "severity": "high", "type": "credential-compromise"}
    body = message["body"]
    assert body["id"] == item["id"] and body["detected_at"] == "2026-03-02T09:58:11Z"
    assert body["notify"][0] == {"party": "amazon", "hours": 24, "deadline": "2026-03-03T09:58:11Z"}
    assert {p["party"]: p["hours"] for p in body["notify"]} == {"amazon": 24, "customer": 72, "users": 72}
    assert f"dpguard incident ack {item['id']} --by NAME" in body["next_steps"][0]
    assert "Revoke and rotate" in body["procedure"]
    assert item["id"] in message["subject"]


def test_reconnaissance_needs_acknowledgement_but_no_party_notice(aws):
    event = sample("guardduty-credential-exfiltration")
    event["detail"].update(id="recon-1", type="Recon:EC2/PortProbeUnprotectedPort", severity=2,
                           resource={"resourceType": "Instance", "instanceDetails": {"instanceId": "i-0abc"}})
    handle(aws, event)
    [item] = items(aws, "incident")
    assert (item["type"], item["severity"], item["resource"]) == ("reconnaissance", "low", "Instance i-0abc")
    assert item["parties"] == {} and item["affects_third_parties"] is False
    assert item["next_deadline"] == item["ack_deadline"] == "2026-03-05T09:58:11Z"  # low: 72 hours
    assert aws.messages()[0]["body"]["notify"] == []


def test_a_root_account_alarm_is_critical_and_counts_from_the_state_change(aws):
    result = handle(aws, sample("cloudwatch-alarm-root-use"))
    [item] = items(aws, "incident")
    assert result["created"] == [item["id"]]
    assert (item["type"], item["severity"], item["source"]) == ("credential-compromise", "critical", "cloudwatch-alarm")
    assert item["title"] == "CIS 4.3: use of the root account (alarm dpguard-prod-RootAccountUse)"
    assert item["resource"] == "arn:aws:cloudwatch:us-east-1:123456789012:alarm:dpguard-prod-RootAccountUse"
    assert item["detected_at"] == "2026-03-02T11:00:04Z"
    assert item["ack_deadline"] == "2026-03-02T12:00:04Z"  # critical: 1 hour
    assert item["parties"]["amazon"]["deadline"] == "2026-03-03T11:00:04Z"
    assert item["parties"]["customer"]["deadline"] == "2026-03-05T11:00:04Z"
    [message] = aws.messages()
    assert message["attributes"]["severity"] == "critical"


@pytest.mark.parametrize("state", ["OK", "INSUFFICIENT_DATA"])
def test_only_an_alarm_going_into_alarm_opens_an_incident(aws, state):
    event = sample("cloudwatch-alarm-root-use")
    event["detail"]["state"]["value"] = state
    result = handle(aws, event)
    assert result["created"] == [] and result["errors"] == []
    assert result["ignored"] == [f"alarm dpguard-prod-RootAccountUse changed to {state}: only ALARM opens an incident"]
    assert aws.table.scan()["Items"] == [] and aws.messages() == []


@pytest.mark.parametrize("description, expected", [
    ("CIS 4.1: unauthorized API calls", ("reconnaissance", "high")),
    ("CIS 4.3: use of the root account", ("credential-compromise", "critical")),
    ("CIS 4.4: IAM policy changes", ("security-configuration-change", "medium")),
    ("CIS 4.5: CloudTrail configuration changes", ("security-configuration-change", "medium")),
    ("CIS 4.6: failed console sign-ins", ("reconnaissance", "medium")),
    ("CIS 4.7: KMS keys disabled or scheduled for deletion", ("security-configuration-change", "medium")),
    ("CIS 4.10: security group changes", ("security-configuration-change", "medium")),
    ("CIS 4.11: network ACL changes", ("security-configuration-change", "medium")),
    ("Disk almost full", ("unclassified", "medium")),  # not ours: someone must triage it
])
def test_each_cis_alarm_has_its_type_and_severity(aws, description, expected):
    event = sample("cloudwatch-alarm-root-use")
    event["detail"]["configuration"]["description"] = f"{description}. Follow the incident response plan (clause 4)."
    handle(aws, event)
    [item] = items(aws, "incident")
    assert (item["type"], item["severity"]) == expected


def test_a_second_alarm_transition_is_a_new_incident_a_redelivery_is_not(aws):
    first = sample("cloudwatch-alarm-root-use")
    later = copy.deepcopy(first)
    later["detail"]["state"]["timestamp"] = "2026-03-09T08:00:00.000+0000"
    assert len(handle(aws, first)["created"]) == 1
    assert len(handle(aws, first)["duplicates"]) == 1
    assert len(handle(aws, later, now=at("2026-03-09T08:05:00Z"))["created"]) == 1
    assert len(items(aws, "incident")) == 2


def test_a_security_hub_batch_is_one_incident_per_finding(aws):
    result = handle(aws, sample("securityhub-findings-imported"))
    assert len(result["created"]) == 2 and result["errors"] == []
    by_source = {i["source"]: i for i in items(aws, "incident")}

    control = by_source["securityhub"]
    assert (control["type"], control["severity"]) == ("policy-violation", "high")
    assert control["resource"] == "AwsS3Bucket arn:aws:s3:::customer-exports-prod"
    assert control["detected_at"] == "2026-03-02T12:25:03Z" and control["parties"] == {}

    # GuardDuty's finding forwarded by Security Hub keeps GuardDuty's identity
    exfiltration = by_source["guardduty"]
    assert exfiltration["source_id"] == "b7e2c4a1d3f54b6e9c8a7d2f1e0b3c59"
    assert (exfiltration["type"], exfiltration["severity"]) == ("data-breach", "high")
    assert exfiltration["parties"]["amazon"]["deadline"] == "2026-03-03T12:02:40Z"
    assert {m["attributes"]["type"] for m in aws.messages()} == {"policy-violation", "data-breach"}


def test_a_guardduty_finding_seen_directly_and_through_security_hub_is_one_incident(aws):
    direct = sample("guardduty-credential-exfiltration")
    direct["detail"].update(id="b7e2c4a1d3f54b6e9c8a7d2f1e0b3c59", type="Exfiltration:S3/MaliciousIPCaller")
    created = handle(aws, direct)["created"]
    result = handle(aws, sample("securityhub-findings-imported"))
    assert result["duplicates"] == created
    assert len(items(aws, "incident")) == 2  # that one and the Security Hub control


@pytest.mark.parametrize("change, reason", [
    ({"Compliance": {"Status": "PASSED"}}, "passed its compliance check"),
    ({"RecordState": "ARCHIVED"}, "is archived"),
    ({"Workflow": {"Status": "RESOLVED"}}, "is resolved"),
    ({"Workflow": {"Status": "SUPPRESSED"}}, "is suppressed"),
])
def test_security_hub_updates_that_end_a_finding_are_ignored(aws, change, reason):
    event = sample("securityhub-findings-imported")
    event["detail"]["findings"] = [{**event["detail"]["findings"][0], **change}]
    result = handle(aws, event)
    assert result["created"] == [] and len(result["ignored"]) == 1 and reason in result["ignored"][0]
    assert items(aws, "incident") == [] and aws.messages() == []


def test_the_same_finding_again_counts_an_occurrence_without_a_second_alert(aws):
    event = sample("guardduty-credential-exfiltration")
    first = handle(aws, event)
    again = copy.deepcopy(event)  # GuardDuty re-publishes an ongoing finding with a higher count
    again["detail"]["service"].update(count=2, eventLastSeen="2026-03-02T12:40:00.000Z")
    second = handle(aws, again, now=NOW + dt.timedelta(hours=1))

    assert second["duplicates"] == first["created"] and second["created"] == []
    [item] = items(aws, "incident")
    assert item["occurrences"] == 2 and item["last_seen"] == "2026-03-02T12:40:00Z"
    assert item["recorded_at"] == iso(NOW) and item["parties"]["amazon"]["deadline"] == "2026-03-03T09:58:11Z"
    assert len(aws.messages()) == 1


class SnsDownOnce:
    """The alerts topic unreachable for the first publish, as in an outage."""

    def __init__(self, sns):
        self.sns, self.down = sns, True

    def publish(self, **kwargs):
        if self.down:
            self.down = False
            raise botocore.exceptions.EndpointConnectionError(endpoint_url="https://sns.us-east-1.amazonaws.com")
        return self.sns.publish(**kwargs)


def test_an_alert_lost_to_an_sns_outage_is_sent_when_lambda_retries(aws):
    event = sample("guardduty-credential-exfiltration")
    sns = SnsDownOnce(aws.sns)
    with pytest.raises(botocore.exceptions.EndpointConnectionError):  # Lambda retries the event
        handle_event(event, table=aws.table, sns=sns, topic_arn=aws.topic_arn, parties=PARTIES, ack_hours=None, now=NOW)
    retry = handle_event(event, table=aws.table, sns=sns, topic_arn=aws.topic_arn, parties=PARTIES, ack_hours=None,
                         now=NOW)
    assert len(retry["duplicates"]) == 1
    assert [m["attributes"]["kind"] for m in aws.messages()] == ["incident"]
    handle(aws, event)  # a third delivery: already alerted
    assert aws.messages() == []


# ---- The mapping is data, and tested as data ---------------------------------------------------

@pytest.mark.parametrize("finding_type, expected", [
    ("UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS", "credential-compromise"),
    ("UnauthorizedAccess:IAMUser/ConsoleLoginSuccess.B", "credential-compromise"),
    ("CredentialAccess:IAMUser/AnomalousBehavior", "credential-compromise"),
    ("CredentialAccess:RDS/MaliciousIPCaller.SuccessfulLogin", "credential-compromise"),
    ("CredentialAccess:RDS/MaliciousIPCaller.FailedLogin", "reconnaissance"),
    ("Policy:IAMUser/RootCredentialUsage", "credential-compromise"),
    ("Exfiltration:S3/AnomalousBehavior", "data-breach"),
    ("Exfiltration:IAMUser/AnomalousBehavior", "data-breach"),
    ("UnauthorizedAccess:S3/TorIPCaller", "data-breach"),
    ("Impact:S3/AnomalousBehavior.Delete", "data-breach"),
    ("Policy:S3/BucketAnonymousAccessGranted", "data-breach"),
    ("Policy:S3/BucketBlockPublicAccessDisabled", "security-configuration-change"),
    ("Stealth:IAMUser/CloudTrailLoggingDisabled", "security-configuration-change"),
    ("Backdoor:EC2/C&CActivity.B!DNS", "compromised-workload"),
    ("CryptoCurrency:EC2/BitcoinTool.B!DNS", "compromised-workload"),
    ("Trojan:EC2/DNSDataExfiltration", "compromised-workload"),
    ("Execution:Runtime/NewBinaryExecuted", "compromised-workload"),
    ("UnauthorizedAccess:EC2/TorClient", "compromised-workload"),
    ("UnauthorizedAccess:EC2/SSHBruteForce", "reconnaissance"),
    ("Recon:EC2/PortProbeUnprotectedPort", "reconnaissance"),
    ("Discovery:S3/MaliciousIPCaller", "reconnaissance"),
    ("Something:New/NeverSeen", "unclassified"),
])
def test_guardduty_types_map_to_incident_types(finding_type, expected):
    assert incidents.classify_guardduty(finding_type) == expected


@pytest.mark.parametrize("types, compliance, expected", [
    (["TTPs/Discovery/Recon:EC2-PortProbeUnprotectedPort"], None, "reconnaissance"),
    (["TTPs/Initial Access/UnauthorizedAccess:IAMUser-ConsoleLoginSuccess.B"], None, "credential-compromise"),
    (["Effects/Data Exposure/Policy:S3-BucketAnonymousAccessGranted"], None, "data-breach"),
    (["Software and Configuration Checks/Vulnerabilities/CVE"], None, "policy-violation"),
    (["Sensitive Data Identifications/PII/CustomerRecords"], None, "policy-violation"),
    ([], "FAILED", "policy-violation"),
    ([], None, "unclassified"),
    # two types: the one that may reach third parties wins (fail closed)
    (["Software and Configuration Checks/AWS Security Best Practices", "Effects/Data Exposure"], "FAILED",
     "data-breach"),
])
def test_security_hub_types_map_to_incident_types(types, compliance, expected):
    assert incidents.classify_securityhub(types, compliance) == expected


@pytest.mark.parametrize("score, severity", [(0.1, "low"), (3.9, "low"), (4, "medium"), (6.9, "medium"),
                                             (7, "high"), (8.9, "high"), (9, "critical"), (10, "critical")])
def test_guardduty_severity_bands(score, severity):
    assert incidents.guardduty_severity(score) == severity


def test_every_mapping_names_a_known_type_and_third_party_types_are_the_breaches():
    named = {t for _, t in incidents.GUARDDUTY_TYPES + incidents.SECURITYHUB_TYPES}
    assert named | {t for t, _ in incidents.CIS_ALARMS.values()} <= set(incidents.INCIDENT_TYPES)
    affecting = {n for n, t in incidents.INCIDENT_TYPES.items() if t.affects_third_parties}
    assert affecting == {"data-breach", "credential-compromise", "unclassified"}
    assert all(t.procedure and t.meaning for t in incidents.INCIDENT_TYPES.values())


# ---- Unreadable events: recorded, announced, never raised ---------------------------------------

def gd(**detail) -> dict:
    event = sample("guardduty-credential-exfiltration")
    event["detail"].update(detail)
    return event


@pytest.mark.parametrize("event, error", [
    ("hello", "the event is a JSON str, not an EventBridge event"),
    ([1, 2], "the event is a JSON list"),
    (None, "the event is a JSON NoneType"),
    ({"detail": {}}, "unknown event: source None, detail-type None"),
    ({"source": "aws.s3", "detail-type": "Object Created", "detail": {}}, "unknown event: source 'aws.s3'"),
    ({"source": "aws.guardduty", "detail-type": "GuardDuty Finding", "detail": "x"}, "has no detail object"),
    (gd(id=None), "the GuardDuty finding has no id"),
    (gd(severity="HIGH"), "has no severity between 0 and 10 (got 'HIGH')"),
    (gd(service={"eventFirstSeen": "yesterday"}), "the event's time is not a time: 'yesterday'"),
    ({"source": "aws.cloudwatch", "detail-type": "CloudWatch Alarm State Change", "detail": {"alarmName": "a"}},
     "the state of alarm a has no value"),
    ({"source": "aws.securityhub", "detail-type": "Security Hub Findings - Imported", "detail": {"findings": {}}},
     "the Security Hub event has no findings"),
])
def test_an_unreadable_event_is_recorded_and_announced_not_raised(aws, event, error):
    result = handle(aws, event)
    assert result["created"] == [] and len(result["errors"]) == 1
    assert error in result["errors"][0]["error"] and "\n" not in result["errors"][0]["error"]
    [item] = items(aws, "error")
    assert item["id"] == result["errors"][0]["id"] and item["id"].startswith("ERR-")
    assert json.loads(item["event"]) == event and "tracking" not in item
    [message] = aws.messages()
    assert message["attributes"] == {"kind": "error"}
    assert message["subject"].startswith("could not read a security event")
    assert message["body"]["error"] == result["errors"][0]["error"]


def test_a_bad_finding_does_not_lose_the_good_ones_in_its_batch(aws):
    event = sample("securityhub-findings-imported")
    event["detail"]["findings"].insert(1, {"Id": "broken", "Severity": {"Label": "SEVERE"}})
    result = handle(aws, event)
    assert len(result["created"]) == 2
    assert [e["error"] for e in result["errors"]] == [
        "finding 2 of 3: finding broken has no Severity.Label (INFORMATIONAL, LOW, MEDIUM, HIGH, CRITICAL)"]
    assert len(items(aws, "incident")) == 2 and len(items(aws, "error")) == 1
    assert sorted(m["attributes"]["kind"] for m in aws.messages()) == ["error", "incident", "incident"]


def test_a_redelivered_unreadable_event_is_announced_once(aws):
    handle(aws, {"source": "nobody"})
    handle(aws, {"source": "nobody"})
    assert len(items(aws, "error")) == 1 and len(aws.messages()) == 1


def test_a_huge_unreadable_event_is_kept_truncated(aws):
    handle(aws, {"source": "nobody", "detail": {"blob": "x" * 50_000}})
    [item] = items(aws, "error")
    assert len(item["event"].encode()) <= 8 * 1024


def test_wrong_settings_fail_loudly_in_one_line(aws):
    with pytest.raises(ResponseError, match="PARTIES: amazon's types must be a list of data-breach"):
        handle(aws, sample("guardduty-credential-exfiltration"),
               parties=[{"name": "amazon", "hours": 24, "types": ["data_breach"]}])
    with pytest.raises(ResponseError, match="PARTIES: users needs hours"):
        handle(aws, sample("guardduty-credential-exfiltration"), parties=[{"name": "users", "hours": 0}])
    assert aws.table.scan()["Items"] == []


# ---- Other modules open incidents too (secrets.py: an exposed secret) ---------------------------

def test_open_incident_for_a_secret_exposure(aws):
    item, created = incidents.open_incident(
        aws.table, aws.sns, aws.topic_arn, source="secret-exposure", source_id="prod/stripe-key@v3",
        type="credential-compromise", severity="critical", title="prod/stripe-key exposed in a public repository",
        description="x" * 5000, resource="arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/stripe-key",
        account="123456789012", region="us-east-1", detected_at="2026-03-02T12:00:00Z", parties=PARTIES,
        ack_hours={"critical": 0.5}, now=NOW)
    assert created and item["source"] == "secret-exposure"
    assert item["ack_deadline"] == "2026-03-02T12:30:00Z" and len(item["description"]) == 1000
    assert item["parties"]["amazon"]["deadline"] == "2026-03-03T12:00:00Z"
    again, created = incidents.open_incident(
        aws.table, aws.sns, aws.topic_arn, source="secret-exposure", source_id="prod/stripe-key@v3",
        type="credential-compromise", severity="critical", title="t", description="", resource="", account="",
        region="", detected_at="2026-03-02T12:00:00Z", parties=PARTIES, ack_hours=None, now=NOW)
    assert not created and again["id"] == item["id"] and again["occurrences"] == 2
    with pytest.raises(ResponseError, match="unknown incident type 'leak'"):
        incidents.open_incident(aws.table, aws.sns, aws.topic_arn, source="secret-exposure", source_id="s",
                                type="leak", severity="high", title="", description="", resource="", account="",
                                region="", detected_at=NOW, parties=PARTIES, ack_hours=None, now=NOW)


def test_the_lambda_entry_point_reads_its_settings(aws, monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("INCIDENT_TABLE", "incidents")
    monkeypatch.setenv("ALERTS_TOPIC_ARN", aws.topic_arn)
    monkeypatch.setenv("PARTIES", json.dumps([{"name": "customer", "hours": 48}]))
    monkeypatch.delenv("ACK_HOURS", raising=False)  # the defaults apply
    result = incidents.handler(sample("guardduty-credential-exfiltration"), None)
    [item] = items(aws, "incident")
    assert result["created"] == [item["id"]]
    assert item["parties"] == {"customer": {"hours": 48, "deadline": "2026-03-04T09:58:11Z",
                                            "notified_at": None, "notified_by": None}}
    assert incidents.handler("garbage", None)["errors"]  # returns, does not raise

    monkeypatch.setenv("PARTIES", "[{")
    with pytest.raises(ResponseError, match="PARTIES is not JSON"):
        incidents.handler(sample("guardduty-credential-exfiltration"), None)


# ---- The response: acknowledge, notify, close --------------------------------------------------

@pytest.fixture
def breach(aws):
    """A credential compromise detected at 09:58:11 (ack by 13:58:11, amazon 24 h, others 72 h)."""
    [iid] = handle(aws, sample("guardduty-credential-exfiltration"))["created"]
    aws.messages()
    return iid


def test_acknowledging_and_notifying_move_the_next_deadline(aws, breach):
    item = incidents.acknowledge(aws.table, breach, "alice", NOW)
    assert (item["acknowledged_by"], item["acknowledged_at"]) == ("alice", iso(NOW))
    assert item["next_deadline"] == "2026-03-03T09:58:11Z"  # amazon's, now the nearest
    assert incidents.acknowledge(aws.table, breach, "bob", NOW)["acknowledged_by"] == "alice"

    item = incidents.mark_notified(aws.table, breach, "amazon", "alice", NOW)
    assert item["parties"]["amazon"]["notified_by"] == "alice" and item["next_deadline"] == "2026-03-05T09:58:11Z"
    incidents.mark_notified(aws.table, breach, "customer", "alice", NOW)
    item = incidents.mark_notified(aws.table, breach, "users", "alice", NOW)
    assert item["next_deadline"] == incidents.NO_DEADLINE and item["tracking"] == OPEN


def test_a_change_racing_another_is_not_lost(aws, breach):
    real = aws.table

    class Racing:
        """Bob records amazon's notice between Alice's read and her write."""
        name, raced = real.name, False

        def get_item(self, **kwargs):
            return real.get_item(**kwargs)

        def update_item(self, **kwargs):
            if not self.raced:
                self.raced = True
                incidents.mark_notified(real, breach, "amazon", "bob", NOW)
            return real.update_item(**kwargs)

    item = incidents.acknowledge(Racing(), breach, "alice", NOW)
    assert item["acknowledged_by"] == "alice" and item["parties"]["amazon"]["notified_by"] == "bob"
    assert item["next_deadline"] == "2026-03-05T09:58:11Z"  # the others' deadline, not amazon's


def test_unknown_ids_and_parties_are_one_line_errors(aws, breach):
    with pytest.raises(ResponseError, match="no incident INC-0000 in table incidents"):
        incidents.acknowledge(aws.table, "INC-0000", "alice", NOW)
    with pytest.raises(ResponseError, match=r"no party 'regulator' to notify \(its parties: amazon, customer, users\)"):
        incidents.mark_notified(aws.table, breach, "regulator", "alice", NOW)
    with pytest.raises(ResponseError, match="say who is acting"):
        incidents.acknowledge(aws.table, breach, " ", NOW)


def test_closing_is_refused_while_a_party_is_not_notified_unless_forced(aws, breach):
    with pytest.raises(ResponseError, match="still has amazon, customer, users to notify"):
        incidents.close(aws.table, breach, "alice", "contained", NOW)
    item = incidents.close(aws.table, breach, "alice", "test credentials, no data reachable", NOW, force=True)
    assert "tracking" not in item and "next_deadline" not in item
    assert item["closed_unnotified"] == ["amazon", "customer", "users"]
    assert item["close_reason"] == "test credentials, no data reachable"
    with pytest.raises(ResponseError, match="already closed"):
        incidents.close(aws.table, breach, "alice", "again", NOW, force=True)
    # a late notice can still be recorded after the close
    assert incidents.mark_notified(aws.table, breach, "amazon", "alice", NOW)["parties"]["amazon"]["notified_at"]


def test_closing_after_every_notice_needs_no_force(aws, breach):
    for party in ("amazon", "customer", "users"):
        incidents.mark_notified(aws.table, breach, party, "alice", NOW)
    assert incidents.close(aws.table, breach, "alice", "rotated, customers told", NOW)["closed_unnotified"] == []


# ---- Escalation --------------------------------------------------------------------------------

def run_escalation(aws, now):
    return escalation.escalate(aws.table, aws.requests, aws.sns, aws.topic_arn, before_hours=[24, 6, 1], now=now)


def test_a_party_deadline_escalates_once_per_threshold_then_once_overdue(aws):
    item, _ = incidents.open_incident(
        aws.table, aws.sns, aws.topic_arn, source="secret-exposure", source_id="s1", type="data-breach",
        severity="medium", title="customer export read", description="", resource="", account="", region="",
        detected_at="2026-03-02T00:00:00Z", parties=[{"name": "customer", "hours": 72}], ack_hours=None, now=NOW)
    incidents.acknowledge(aws.table, item["id"], "alice", NOW)  # escalation goes on: the customer must be told
    aws.messages()
    t0 = at("2026-03-02T00:00:00Z")
    fired = {}
    for hours in (47, 48, 50, 66, 66.5, 71, 71.9, 73, 80, 200):
        result = run_escalation(aws, t0 + dt.timedelta(hours=hours))
        fired[hours] = [e["stage"] for e in result["escalated"]]
    assert fired == {47: [], 48: ["24h"], 50: [], 66: ["6h"], 66.5: [], 71: ["1h"], 71.9: [], 73: ["overdue"],
                     80: [], 200: []}

    messages = aws.messages()
    assert [m["attributes"]["stage"] for m in messages] == ["24h", "6h", "1h", "overdue"]
    assert all(m["attributes"]["kind"] == "escalation" and m["attributes"]["severity"] == "medium" for m in messages)
    first, overdue = messages[0]["body"], messages[-1]["body"]
    assert (first["id"], first["party"], first["deadline"], first["hours_left"]) == (
        item["id"], "customer", "2026-03-05T00:00:00Z", 24)
    assert f"dpguard incident notified {item['id']} --party customer --by NAME" in first["next_step"]
    assert overdue["hours_left"] == -1 and overdue["next_step"].startswith("the deadline has passed")
    assert messages[-1]["subject"].startswith(f"OVERDUE: {item['id']} notify customer")
    recorded = incidents.get_incident(aws.table, item["id"])["escalations"]
    assert [(e["due"], e["stage"]) for e in recorded] == [
        ("notify customer", s) for s in ("24h", "6h", "1h", "overdue")]


def test_a_late_run_sends_only_the_nearest_threshold(aws, breach):
    # 2 hours before amazon's deadline, nothing sent yet: one 6-hour escalation, not 24 h and 6 h
    incidents.acknowledge(aws.table, breach, "alice", NOW)
    result = run_escalation(aws, at("2026-03-03T07:58:11Z"))
    assert [(e["due"], e["stage"]) for e in result["escalated"]] == [("notify amazon", "6h")]


def test_acknowledgement_stops_the_acknowledgement_escalations(aws, breach):
    # 12:00: the acknowledgement (due 13:58:11) is within 6 hours; amazon's deadline within 24
    result = run_escalation(aws, at("2026-03-02T12:00:00Z"))
    assert sorted((e["due"], e["stage"]) for e in result["escalated"]) == [
        ("acknowledgement", "6h"), ("notify amazon", "24h")]
    incidents.acknowledge(aws.table, breach, "alice", at("2026-03-02T12:30:00Z"))
    assert run_escalation(aws, at("2026-03-02T13:00:00Z"))["escalated"] == []  # its 1-hour mark passes quietly
    assert run_escalation(aws, at("2026-03-02T15:00:00Z"))["escalated"] == []  # and so does the deadline
    body = [m["body"] for m in aws.messages() if m["body"]["due"] == "acknowledgement"][0]
    assert body["next_step"] == f"acknowledge: dpguard incident ack {breach} --by NAME"


def test_a_notified_party_stops_only_its_own_escalations(aws, breach):
    incidents.acknowledge(aws.table, breach, "alice", NOW)
    incidents.mark_notified(aws.table, breach, "amazon", "alice", NOW)
    result = run_escalation(aws, at("2026-03-04T10:00:00Z"))  # 24 h before the others' deadline
    assert sorted(e["due"] for e in result["escalated"]) == ["notify customer", "notify users"]


def test_a_closed_incident_is_not_escalated(aws, breach):
    incidents.close(aws.table, breach, "alice", "false positive: our own pen test", NOW, force=True)
    result = run_escalation(aws, at("2026-03-10T00:00:00Z"))
    assert result == {"escalated": [], "checked": 0, "errors": []}


def test_two_runs_at_the_same_moment_escalate_once(aws, breach):
    first = run_escalation(aws, at("2026-03-02T12:00:00Z"))
    second = run_escalation(aws, at("2026-03-02T12:00:00Z"))
    assert len(first["escalated"]) == 2 and second["escalated"] == []
    assert len(aws.messages()) == 2


def test_an_escalation_lost_to_an_sns_outage_is_sent_by_the_next_run(aws, breach):
    sns = SnsDownOnce(aws.sns)
    with pytest.raises(botocore.exceptions.EndpointConnectionError):
        escalation.escalate(aws.table, aws.requests, sns, aws.topic_arn, before_hours=[24, 6, 1],
                            now=at("2026-03-02T12:00:00Z"))
    later = escalation.escalate(aws.table, aws.requests, sns, aws.topic_arn, before_hours=[24, 6, 1],
                                now=at("2026-03-02T12:15:00Z"))
    assert sorted(e["due"] for e in later["escalated"]) == ["acknowledgement", "notify amazon"]
    assert len(aws.messages()) == 2


def data_request(rid: str, deadline: str, **extra) -> dict:
    return {"id": rid, "kind": "data-request", "user_id": "user-42", "request_type": "delete", "status": "received",
            "received_at": "2026-03-01T00:00:00Z", "deadline": deadline, "next_deadline": deadline,
            "tracking": OPEN, **extra}


def test_data_requests_escalate_until_completed(aws):
    aws.requests.put_item(Item=data_request("REQ-1", "2026-03-04T00:00:00Z"))
    aws.requests.put_item(Item=data_request("REQ-2", "2026-03-04T00:00:00Z", status="completed"))
    done = data_request("REQ-3", "2026-03-04T00:00:00Z", status="completed")
    del done["tracking"]
    aws.requests.put_item(Item=done)

    result = run_escalation(aws, at("2026-03-03T19:00:00Z"))
    assert result["escalated"] == [{"tracker": "data-request", "id": "REQ-1", "due": "answer the delete request",
                                    "stage": "6h"}]
    [message] = aws.messages()
    assert message["attributes"] == {"kind": "escalation", "severity": "high", "stage": "6h", "tracker": "data-request"}
    assert message["body"]["user_id"] == "user-42" and "written confirmation" in message["body"]["next_step"]

    assert [e["stage"] for e in run_escalation(aws, at("2026-03-04T01:00:00Z"))["escalated"]] == ["overdue"]
    assert aws.messages()[0]["attributes"]["severity"] == "critical"
    assert [e["stage"] for e in aws.requests.get_item(Key={"id": "REQ-1"})["Item"]["escalations"]] == ["6h", "overdue"]


def test_an_unreadable_tracker_item_is_reported_once(aws):
    aws.requests.put_item(Item=data_request("REQ-9", "soon"))
    for _ in range(2):
        result = run_escalation(aws, NOW)
        assert result["errors"][0]["id"] == "REQ-9"
    [message] = aws.messages()
    assert message["attributes"]["kind"] == "error" and "REQ-9" in message["subject"]


def test_the_escalation_entry_point_reads_its_settings(aws, breach, monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for name, value in {"INCIDENT_TABLE": "incidents", "REQUEST_TABLE": "data-requests",
                        "ALERTS_TOPIC_ARN": aws.topic_arn, "ESCALATE_BEFORE_HOURS": "[8000]"}.items():
        monkeypatch.setenv(name, value)
    # with a threshold this far out (about 11 months) everything open is due, whatever the clock
    assert {e["due"] for e in escalation.handler({}, None)["escalated"]} == {
        "acknowledgement", "notify amazon", "notify customer", "notify users"}
    monkeypatch.setenv("ESCALATE_BEFORE_HOURS", "[0]")
    with pytest.raises(ResponseError, match="ESCALATE_BEFORE_HOURS must be a JSON list of hours above 0"):
        escalation.handler({}, None)


# ---- dpguard incident ...  ---------------------------------------------------------------------

def cli(*args: str) -> int:
    return main(["incident", *args, "--table", "incidents", "--region", "us-east-1"])


def test_the_cli_lists_open_incidents_by_next_deadline(aws, breach, capsys):
    handle(aws, sample("cloudwatch-alarm-root-use"))  # ack due 12:00:04, before the breach's 13:58:11
    assert cli("list") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:5] == ["ID", "SEVERITY", "TYPE", "STATUS", "NEXT"]
    assert "critical" in lines[1] and "2026-03-02T12:00:04Z" in lines[1] and "acknowledgement" in lines[1]
    assert lines[2].startswith(breach) and "2026-03-02T13:58:11Z" in lines[2]

    assert cli("list", "--format", "json") == 0
    listed = json.loads(capsys.readouterr().out)
    assert [i["type"] for i in listed] == ["credential-compromise", "credential-compromise"]
    assert listed[1]["parties"]["amazon"]["hours"] == 24  # plain numbers, not Decimals


def test_the_cli_records_the_response(aws, breach, capsys):
    assert cli("ack", breach, "--by", "alice") == 0
    out = capsys.readouterr().out
    assert f"{breach} acknowledged by alice" in out and "next: notify amazon by 2026-03-03T09:58:11Z" in out

    assert cli("notified", breach, "--party", "amazon", "--by", "alice") == 0
    assert "amazon notified" in capsys.readouterr().out

    assert cli("close", breach, "--by", "alice", "--reason", "contained") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "still has customer, users to notify" in err and "Traceback" not in err

    assert cli("close", breach, "--by", "alice", "--reason", "no customer data reachable", "--force") == 0
    assert "not notified (forced): customer, users" in capsys.readouterr().out

    assert cli("list") == 0
    assert capsys.readouterr().out == "no open incidents\n"
    assert cli("list", "--all") == 0
    assert "closed" in capsys.readouterr().out


@pytest.mark.parametrize("args, error", [
    (["ack", "INC-nothing", "--by", "alice"], "dpguard incident ack: no incident INC-nothing in table incidents"),
    (["notified", "{id}", "--party", "regulator", "--by", "alice"], "has no party 'regulator'"),
    (["close", "{id}", "--by", "alice"], "the following arguments are required: --reason"),
    (["ack", "{id}"], "the following arguments are required: --by"),
])
def test_cli_mistakes_are_one_line_and_exit_2(aws, breach, capsys, args, error):
    assert cli(*[a.format(id=breach) for a in args]) == 2
    err = capsys.readouterr().err
    assert error in err and err.count("\n") == 1


def test_cli_without_a_table_or_with_a_missing_one(aws, capsys, monkeypatch):
    monkeypatch.delenv("DPGUARD_INCIDENT_TABLE", raising=False)
    assert main(["incident", "list", "--region", "us-east-1"]) == 2
    assert "pass --table NAME or set DPGUARD_INCIDENT_TABLE" in capsys.readouterr().err
    monkeypatch.setenv("DPGUARD_INCIDENT_TABLE", "no-such-table")
    assert main(["incident", "list", "--region", "us-east-1"]) == 2
    err = capsys.readouterr().err
    assert "table no-such-table: ResourceNotFoundException" in err and err.count("\n") == 1
