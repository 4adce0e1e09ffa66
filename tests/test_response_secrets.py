"""Clause 7, an exposed secret: regenerated, its exposed version revoked, an incident recorded and
the owner told, on moto in-process. No secret value may reach a message, record or output."""
from __future__ import annotations

import datetime as dt
import io
import json
import zipfile

import boto3
import moto
import pytest

from dpguard.cli import main
from dpguard.response import common, secrets
from dpguard.response.secrets import handle_exposure

NOW = dt.datetime(2026, 11, 28, 2, 19, 16, tzinfo=dt.timezone.utc)
OLD = "Exposed-Value-7f3a9c2e41d8"  # the exposed secret value, searched for everywhere afterwards
TABLE = "dpguard-incidents"
OWNER = [{"Key": "owner", "Value": "alice"}, {"Key": "owner-email", "Value": "alice@example.com"}]


class Aws:
    """moto clients, the incidents table, and the alerts topic with a queue to read it back."""

    def __init__(self, session):
        self.session = session
        self.sm = session.client("secretsmanager")
        self.sns = session.client("sns")
        self.sqs = session.client("sqs")
        self.table = session.resource("dynamodb").create_table(
            TableName=TABLE, BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("id", "tracking", "next_deadline")],
            GlobalSecondaryIndexes=[{"IndexName": common.OPEN_INDEX, "Projection": {"ProjectionType": "ALL"},
                                     "KeySchema": [{"AttributeName": "tracking", "KeyType": "HASH"},
                                                   {"AttributeName": "next_deadline", "KeyType": "RANGE"}]}])
        self.topic = self.sns.create_topic(Name="alerts")["TopicArn"]
        self.queue = self.sqs.create_queue(QueueName="alerts-copy")["QueueUrl"]
        queue_arn = self.sqs.get_queue_attributes(QueueUrl=self.queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.sns.subscribe(TopicArn=self.topic, Protocol="sqs", Endpoint=queue_arn)
        self.raw: list[str] = []  # every message body the topic carried, for the no-value checks

    def secret(self, name: str, value: str | bytes = OLD, tags=OWNER) -> str:
        value_arg = {"SecretBinary": value} if isinstance(value, bytes) else {"SecretString": value}
        return self.sm.create_secret(Name=name, Tags=tags or [], **value_arg)["ARN"]

    def labels(self, secret_id: str) -> dict[str, list[str]]:
        return secrets.version_labels(self.sm, self.sm.describe_secret(SecretId=secret_id)["ARN"])

    def current(self, secret_id: str) -> str:
        return self.sm.get_secret_value(SecretId=secret_id)["SecretString"]

    def exposures(self) -> list[dict]:
        """The owner messages (kind=secret-exposure) published so far: subject, body, attributes."""
        found = []
        while True:
            batch = self.sqs.receive_message(QueueUrl=self.queue, MaxNumberOfMessages=10).get("Messages", [])
            if not batch:
                break
            for m in batch:
                self.raw.append(m["Body"])
                envelope = json.loads(m["Body"])
                attributes = {k: v["Value"] for k, v in envelope.get("MessageAttributes", {}).items()}
                if attributes.get("kind") == "secret-exposure":
                    found.append({"subject": envelope["Subject"], "body": json.loads(envelope["Message"]),
                                  "attributes": attributes})
                self.sqs.delete_message(QueueUrl=self.queue, ReceiptHandle=m["ReceiptHandle"])
        return found

    def incidents(self) -> list[dict]:
        return self.table.scan()["Items"]

    def handle(self, secret_id: str, **options):
        arguments = dict(secret_id=secret_id, reason="pushed to a public repository", reported_by="scanner",
                         now=NOW, wait_seconds=0, parties=[{"name": "customer", "hours": 72}],
                         ack_hours={"high": 4})
        return handle_exposure(self.sm, self.table, self.sns, self.topic, **{**arguments, **options})

    def assert_no_value(self, *values: str, extra: str = "") -> None:
        """Neither value anywhere: messages, incident records, the given output."""
        self.exposures()
        everything = "\n".join(self.raw) + json.dumps(self.incidents(), default=str) + extra
        for value in values:
            assert value not in everything


@pytest.fixture
def aws(monkeypatch):
    """As conftest's `session`, without loading the AWS managed IAM policies (2 s a test), and with
    moto's Lambda not running code in docker."""
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    for name in ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.setenv(name, "/nonexistent")
    with moto.mock_aws(config={"lambda": {"use_docker": False}}):
        yield Aws(boto3.Session(region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"))


def test_a_plain_string_secret_is_regenerated_revoked_recorded_and_its_owner_told(aws):
    aws.secret("app/api-key")
    exposed = aws.sm.describe_secret(SecretId="app/api-key")
    exposed_version = secrets.holder(aws.labels("app/api-key"), "AWSCURRENT")

    result = aws.handle("app/api-key", reason=f"a scanner found {OLD} in a public gist")

    new = aws.current("app/api-key")
    assert result.outcome == secrets.REGENERATED and result.complete
    assert new != OLD and len(new) == secrets.NEW_VALUE_LENGTH
    assert not set(new) & set(secrets.EXCLUDED_CHARACTERS)
    assert aws.labels("app/api-key")[exposed_version] == []  # no client can fetch it by label
    assert result.exposed_version == exposed_version and result.new_version != exposed_version
    [incident] = [i for i in aws.incidents() if i.get("resource") == exposed["ARN"]]
    assert result.incident_id == incident["id"]
    [message] = aws.exposures()
    assert message["attributes"] == {"kind": "secret-exposure", "severity": "high", "owner": "alice"}
    assert message["body"]["owner_email"] == "alice@example.com"
    assert "delete or revoke the exposed credential at its source immediately" in " ".join(
        message["body"]["action_required"]).lower()
    assert message["body"]["reason"] == "a scanner found [redacted] in a public gist"
    aws.assert_no_value(OLD, new, extra=json.dumps(result.to_dict()))


def test_a_json_secret_gets_a_new_password_and_keeps_its_other_fields(aws):
    aws.secret("app/db", json.dumps({"engine": "postgres", "host": "db.internal", "port": 5432,
                                     "username": "app", "password": OLD}))

    result = aws.handle("app/db")

    stored = json.loads(aws.current("app/db"))
    assert result.outcome == secrets.REGENERATED and result.complete
    assert stored["password"] != OLD and len(stored["password"]) == secrets.NEW_VALUE_LENGTH
    assert {k: v for k, v in stored.items() if k != "password"} == {
        "engine": "postgres", "host": "db.internal", "port": 5432, "username": "app"}
    aws.assert_no_value(OLD, stored["password"], extra=json.dumps(result.to_dict()))


@pytest.mark.parametrize("value, why", [
    (json.dumps({"certificate": OLD, "chain": "..."}), "no credential field"),
    (OLD.encode(), "binary"),
    ('{"password": ' + json.dumps(OLD), "does not parse"),
    (json.dumps({"password": {"value": OLD}}), "not a string"),
])
def test_a_secret_it_cannot_regenerate_is_left_alone_but_recorded_and_notified(aws, value, why):
    aws.secret("app/cert", value)
    before = aws.labels("app/cert")

    result = aws.handle("app/cert")

    assert result.outcome == secrets.CANNOT_REGENERATE and not result.complete
    assert aws.labels("app/cert") == before  # unchanged: the exposed version is still current
    assert why in next(s.detail for s in result.steps if s.name == "regenerate")
    assert len(aws.incidents()) >= 1 and result.incident_id
    [message] = aws.exposures()
    assert message["body"]["outcome"] == secrets.CANNOT_REGENERATE
    assert any("NOT regenerated" in line for line in message["body"]["action_required"])
    aws.assert_no_value(OLD, extra=json.dumps(result.to_dict()))


def test_a_rotating_secret_is_rotated_not_overwritten(aws):
    # moto completes RotateSecret at once when no rotation function is set (AWS would want one or
    # an owning service): enough to drive the path from RotateSecret to revocation.
    aws.secret("app/rotating", "first")
    aws.sm.rotate_secret(SecretId="app/rotating", RotationRules={"AutomaticallyAfterDays": 30})
    aws.sm.put_secret_value(SecretId="app/rotating", SecretString=OLD)
    exposed = secrets.holder(aws.labels("app/rotating"), "AWSCURRENT")
    count = len(aws.labels("app/rotating"))

    result = aws.handle("app/rotating")

    labels = aws.labels("app/rotating")
    assert result.outcome == secrets.REGENERATED and result.complete
    assert "RotateSecret" in result.steps[0].detail
    assert len(labels) == count + 1 and labels[result.new_version] == ["AWSCURRENT"] and labels[exposed] == []


def test_an_rds_managed_secret_is_rotated_through_its_owning_service(aws):
    rds = aws.session.client("rds")
    instance = rds.create_db_instance(DBInstanceIdentifier="orders", Engine="postgres", DBInstanceClass="db.t3.micro",
                                      MasterUsername="admin", ManageMasterUserPassword=True,
                                      AllocatedStorage=20)["DBInstance"]
    arn = instance["MasterUserSecret"]["SecretArn"]
    assert aws.sm.describe_secret(SecretId=arn)["OwningService"] == "rds"
    password = json.loads(aws.sm.get_secret_value(SecretId=arn)["SecretString"])["password"]

    result = aws.handle(arn)

    assert result.outcome == secrets.REGENERATED and "RotateSecret" in result.steps[0].detail
    assert aws.labels(arn)[result.exposed_version] == []
    assert result.owner is None  # RDS tags its secret without an owner
    aws.assert_no_value(password, extra=json.dumps(result.to_dict()))


def rotation_function(aws) -> str:
    """A rotation Lambda in moto; without docker its invocations do nothing, so RotateSecret leaves
    the new version AWSPENDING: a rotation that has not finished."""
    role = aws.session.client("iam").create_role(RoleName="rotation", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as z:
        z.writestr("index.py", "def handler(event, context):\n    return None\n")
    return aws.session.client("lambda").create_function(
        FunctionName="rotate", Runtime="python3.13", Role=role, Handler="index.handler",
        Code={"ZipFile": code.getvalue()})["FunctionArn"]


def test_a_rotation_that_does_not_finish_is_reported_pending_then_revoked_on_the_next_report(aws):
    aws.secret("app/slow", OLD)
    aws.sm.rotate_secret(SecretId="app/slow", RotationLambdaARN=rotation_function(aws),
                         RotationRules={"AutomaticallyAfterDays": 30}, RotateImmediately=False)
    exposed = secrets.holder(aws.labels("app/slow"), "AWSCURRENT")

    first = aws.handle("app/slow", version_id=exposed)

    labels = aws.labels("app/slow")
    assert first.outcome == secrets.ROTATION_PENDING and not first.complete
    assert "AWSCURRENT" in labels[exposed]  # never claimed done: the exposed version is still current
    assert labels[first.new_version] == ["AWSPENDING"]
    assert [s.status for s in first.steps[:2]] == ["pending", "pending"]
    [message] = aws.exposures()
    assert message["body"]["outcome"] == secrets.ROTATION_PENDING

    # The rotation function finishes later; the same report again revokes, without a second rotation.
    aws.sm.update_secret_version_stage(SecretId="app/slow", VersionStage="AWSCURRENT",
                                       MoveToVersionId=first.new_version, RemoveFromVersionId=exposed)
    second = aws.handle("app/slow", version_id=exposed)

    labels = aws.labels("app/slow")
    assert second.outcome == secrets.SUPERSEDED and second.complete
    assert labels[exposed] == [] and len(labels) == 2
    assert second.incident_id == first.incident_id


def test_a_repeated_report_is_already_handled_and_does_not_rotate_again(aws):
    aws.secret("app/api-key")
    first = aws.handle("app/api-key")
    value, labels = aws.current("app/api-key"), aws.labels("app/api-key")
    aws.exposures()

    second = aws.handle("app/api-key", version_id=first.exposed_version)

    assert second.outcome == secrets.ALREADY_HANDLED and second.complete
    assert aws.current("app/api-key") == value and aws.labels("app/api-key") == labels
    assert second.incident_id == first.incident_id
    assert aws.exposures() == []  # the owner was told the first time


def test_without_an_owner_tag_the_security_team_is_told(aws):
    aws.secret("app/orphan", tags=[])

    result = aws.handle("app/orphan")

    [message] = aws.exposures()
    assert message["body"]["warning"] == "no owner tag: the security team must find the owner"
    assert "owner" not in message["attributes"] and result.owner is None
    assert result.complete


def test_the_data_owner_tag_names_the_owner_when_there_is_no_owner_tag(aws):
    aws.secret("app/tagged", tags=[{"Key": "data-owner", "Value": "payments-team"}])

    aws.handle("app/tagged")

    assert aws.exposures()[0]["attributes"]["owner"] == "payments-team"


def test_a_notification_that_fails_leaves_the_exposure_incomplete(aws):
    aws.secret("app/api-key")
    aws.topic = aws.topic.replace(":alerts", ":no-such-topic")

    result = aws.handle("app/api-key")

    assert result.outcome == secrets.REGENERATED and not result.complete
    assert next(s for s in result.steps if s.name == "notify").status == "failed"


def cli(aws, *arguments: str) -> list[str]:
    return ["secret-exposed", *arguments, "--region", "us-east-1", "--incident-table", TABLE,
            "--alerts-topic", aws.topic]


def test_the_cli_end_to_end(aws, capsys):
    aws.secret("app/api-key")

    code = main(cli(aws, "app/api-key", "--reason", "pasted in a chat channel"))

    out = capsys.readouterr().out
    new = aws.current("app/api-key")
    assert code == 0
    assert "app/api-key" in out and "result: regenerated and revoked" in out
    for step in ("regenerate", "revoke", "record", "notify"):
        assert f"  {step}" in out
    assert "the owner deletes the exposed credential at its source" in out
    [message] = aws.exposures()
    assert message["body"]["reported_by"].startswith("arn:aws:")  # the caller, from STS
    aws.assert_no_value(OLD, new, extra=out)


def test_the_cli_json_format_and_exit_3_when_it_cannot_regenerate(aws, capsys):
    aws.secret("app/cert", json.dumps({"certificate": OLD}))

    code = main(cli(aws, "app/cert", "--reason", "leaked", "--reported-by", "bob", "--format", "json"))

    out = capsys.readouterr().out
    data = json.loads(out)
    assert code == 3
    assert data["outcome"] == secrets.CANNOT_REGENERATE and data["complete"] is False and data["incident_id"]
    assert OLD not in out


@pytest.mark.parametrize("arguments, expected", [
    (["no/such-secret", "--reason", "leaked"], "no secret no/such-secret in us-east-1"),
    (["app/api-key", "--reason", "leaked", "--version-id", "no-such-version"], "has no version no-such-version"),
    (["app/api-key", "--reason", "leaked", "--wait", "soon"], "is not a number of seconds"),
    (["app/api-key"], "the following arguments are required: --reason"),
])
def test_the_cli_says_what_is_wrong_in_one_line(aws, capsys, arguments, expected):
    aws.secret("app/api-key")

    code = main(cli(aws, *arguments))

    err = capsys.readouterr().err
    assert code == 2
    assert expected in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_the_cli_refuses_to_run_without_an_alerts_topic(aws, capsys, monkeypatch):
    monkeypatch.delenv("DPGUARD_ALERTS_TOPIC", raising=False)
    aws.secret("app/api-key")

    code = main(["secret-exposed", "app/api-key", "--reason", "leaked", "--region", "us-east-1",
                 "--incident-table", TABLE])

    assert code == 2 and "no alerts topic" in capsys.readouterr().err
    assert aws.current("app/api-key") == OLD  # nothing done before it could tell the owner


def test_the_cli_reads_parties_from_a_file(aws, capsys, tmp_path):
    aws.secret("app/api-key")
    good, bad = tmp_path / "parties.json", tmp_path / "bad.json"
    good.write_text(json.dumps({"parties": [{"name": "regulator", "hours": 24}], "ack_hours": {"high": 1}}))
    bad.write_text(json.dumps([{"name": "regulator"}]))

    assert main(cli(aws, "app/api-key", "--reason", "leaked", "--parties-file", str(bad))) == 2
    assert "bad.json: PARTIES: regulator needs hours" in capsys.readouterr().err
    assert main(cli(aws, "app/api-key", "--reason", "leaked", "--parties-file", str(good))) == 0
    assert "regulator" in json.dumps(aws.incidents(), default=str)


@pytest.fixture
def function_env(aws, monkeypatch):
    for name, value in {"INCIDENT_TABLE": TABLE, "ALERTS_TOPIC_ARN": aws.topic, "ACK_HOURS": '{"high": 4}',
                        "PARTIES": '[{"name": "customer", "hours": 72}]', "ROTATION_WAIT_SECONDS": "0",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)


def test_the_lambda_function_handles_a_scanner_event(aws, function_env, capsys):
    aws.secret("app/api-key")

    result = secrets.handler({"secret_id": "app/api-key", "reason": "found in a build log",
                              "reported_by": "secret-scanner"}, None)

    assert result["outcome"] == secrets.REGENERATED and result["complete"] is True
    assert aws.exposures()[0]["body"]["reported_by"] == "secret-scanner"
    aws.assert_no_value(OLD, aws.current("app/api-key"), extra=capsys.readouterr().out)


def test_the_lambda_function_takes_an_eventbridge_detail(aws, function_env):
    aws.secret("app/api-key")
    version = secrets.holder(aws.labels("app/api-key"), "AWSCURRENT")

    result = secrets.handler({"detail-type": "Secret exposed", "source": "scanner", "detail": {
        "secret_id": "app/api-key", "version_id": version, "reason": "leaked", "reported_by": "scanner"}}, None)

    assert result["exposed_version"] == version and result["complete"] is True


@pytest.mark.parametrize("event, expected", [
    ({"reason": "leaked", "reported_by": "scanner"}, "the event has no secret_id"),
    ({"secret_id": "app/api-key", "reported_by": "scanner"}, "the event has no reason"),
    ({"secret_id": "app/api-key", "reason": "leaked", "reported_by": "scanner", "version_id": 7}, "version_id"),
    ("app/api-key", "must be a JSON object"),
    ({"secret_id": "no/such", "reason": "leaked", "reported_by": "scanner"}, "no secret no/such in us-east-1"),
])
def test_the_lambda_function_answers_a_bad_event_in_one_line(aws, function_env, event, expected):
    aws.secret("app/api-key")

    result = secrets.handler(event, None)

    assert set(result) == {"error"} and expected in result["error"] and "\n" not in result["error"]
    assert aws.current("app/api-key") == OLD
    aws.exposures()  # drains the queue into aws.raw
    [alert] = [json.loads(body) for body in aws.raw]  # the report is not lost in a log
    assert alert["MessageAttributes"]["kind"]["Value"] == "error" and expected in alert["Message"]


def test_the_lambda_function_without_its_settings(aws, function_env, monkeypatch):
    monkeypatch.delenv("ALERTS_TOPIC_ARN")

    result = secrets.handler({"secret_id": "x", "reason": "leaked", "reported_by": "scanner"}, None)

    assert result == {"error": "the function's environment has no ALERTS_TOPIC_ARN: deploy it with the dpguard stack"}
