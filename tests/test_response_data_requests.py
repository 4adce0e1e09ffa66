"""Deletion and return requests (clause 5), end to end on moto: what the user and the operator
see — their data gone (every version), the other users' data kept, the archive, the signed
confirmation, the tracker item and the alerts."""
from __future__ import annotations

import base64
import dataclasses
import functools
import datetime as dt
import hashlib
import io
import json
import zipfile
from decimal import Decimal
from urllib.parse import parse_qs, urlparse

import boto3
import moto
import pytest
from botocore.exceptions import ClientError

from dpguard.response import confirmation
from dpguard.response import data_requests as dr
from dpguard.response.common import OPEN_INDEX, ResponseError

DATA, RECORDS, TRACKER, PROFILES, EVENTS = "dpg-data", "dpg-records", "dpg-requests", "dpg-profiles", "dpg-events"
START = dt.datetime(2026, 11, 28, 2, 0, 0, tzinfo=dt.timezone.utc)


class Clock:
    def __init__(self):
        self.now = START

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta) -> None:
        self.now += dt.timedelta(**delta)


class Crash(BaseException):
    """Stands for the run being killed (a Lambda timeout): nothing in the function can catch it."""


class Interfering:
    """A client (or resource) whose `method` behaves differently on chosen calls: `effect(call, kwargs,
    real)` answers the call. Everything else goes to the real client."""

    def __init__(self, real, method: str, effect):
        self.real, self.method, self.effect, self.calls = real, method, effect, []

    def __getattr__(self, name):
        attribute = getattr(self.real, name)
        if name != self.method:
            return attribute

        def call(**kwargs):
            self.calls.append(kwargs)
            return self.effect(len(self.calls), kwargs, attribute)
        return call


def fail_on(number: int, error: BaseException):
    def effect(call, kwargs, real):
        if call == number:
            raise error
        return real(**kwargs)
    return effect


def client_error(code: str, operation: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "We encountered an internal error."}}, operation)


@dataclasses.dataclass
class World:
    session: object
    clients: dr.Clients
    config: dr.Config
    alice: str  # Cognito subs: the user ids of requests
    bob: str
    queue_url: str

    @functools.cached_property
    def s3(self):
        return self.session.client("s3")

    def versions(self, prefix: str) -> tuple[int, int]:
        pages = self.s3.get_paginator("list_object_versions").paginate(Bucket=DATA, Prefix=prefix)
        counts = [(len(p.get("Versions", [])), len(p.get("DeleteMarkers", []))) for p in pages]
        return sum(v for v, _ in counts), sum(m for _, m in counts)

    def items(self, table: str, user: str) -> list[dict]:
        resource = self.session.resource("dynamodb").Table(table)
        return resource.query(KeyConditionExpression="user_id = :u", ExpressionAttributeValues={":u": user})["Items"]

    def tracked(self, request_id: str) -> dict:
        return self.session.resource("dynamodb").Table(TRACKER).get_item(Key={"id": request_id})["Item"]

    def open_ids(self) -> list[str]:
        table = self.session.resource("dynamodb").Table(TRACKER)
        items = table.query(IndexName=OPEN_INDEX, KeyConditionExpression="tracking = :o",
                            ExpressionAttributeValues={":o": "open"})["Items"]
        return [item["id"] for item in items]

    def cognito_users(self) -> list[str]:
        return [u["Username"] for u in self.session.client("cognito-idp").list_users(
            UserPoolId=self.config.user_pool_id)["Users"]]

    def alerts(self) -> list[dict]:
        sqs, found = self.session.client("sqs"), []
        while True:
            messages = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                return found
            for message in messages:
                envelope = json.loads(message["Body"])
                found.append({"subject": envelope["Subject"], "message": json.loads(envelope["Message"]),
                              **{k: v["Value"] for k, v in envelope["MessageAttributes"].items()}})
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])

    def run(self, request: dict, clock: Clock | None = None, **replace) -> dict:
        clients = dataclasses.replace(self.clients, **replace)
        return dr.handle_request(request, clients=clients, config=self.config, clock=clock or Clock())


@pytest.fixture
def session(monkeypatch):
    """conftest's session on moto in us-east-1, without loading AWS managed IAM policies (nothing
    here uses IAM): a second less per test."""
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    with moto.mock_aws():
        yield boto3.Session(region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")


@pytest.fixture
def world(session) -> World:
    s3 = session.client("s3")
    for bucket in (DATA, RECORDS):
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    kms = session.client("kms")
    records_key = kms.create_key(Description="records")["KeyMetadata"]["Arn"]
    s3.put_bucket_encryption(Bucket=RECORDS, ServerSideEncryptionConfiguration={"Rules": [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": records_key}}]})
    signing_key = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"]

    cognito = session.client("cognito-idp")
    pool = cognito.create_user_pool(PoolName="users")["UserPool"]["Id"]
    subs = {}
    for name in ("alice", "bob"):
        user = cognito.admin_create_user(UserPoolId=pool, Username=name,
                                         UserAttributes=[{"Name": "email", "Value": f"{name}@example.com"}])["User"]
        subs[name] = next(a["Value"] for a in user["Attributes"] if a["Name"] == "sub")
    alice, bob = subs["alice"], subs["bob"]

    # Alice: a photo in two versions, a deleted note (a delete marker over its version), a profile.
    s3.put_object(Bucket=DATA, Key=f"users/{alice}/photo.jpg", Body=b"old photo")
    s3.put_object(Bucket=DATA, Key=f"users/{alice}/photo.jpg", Body=b"new photo")
    s3.put_object(Bucket=DATA, Key=f"users/{alice}/notes.txt", Body=b"a note")
    s3.delete_object(Bucket=DATA, Key=f"users/{alice}/notes.txt")
    s3.put_object(Bucket=DATA, Key=f"users/{alice}/docs/profile.json", Body=b'{"name": "Alice"}')
    # Bob's partition, and a neighbour whose name starts with Alice's id: neither may be touched.
    s3.put_object(Bucket=DATA, Key=f"users/{bob}/photo.jpg", Body=b"bob's photo")
    s3.put_object(Bucket=DATA, Key=f"users/{alice}0/keep.txt", Body=b"not alice's")

    dynamodb = session.client("dynamodb")
    for table, sort_key in ((PROFILES, None), (EVENTS, "item"), (TRACKER, None)):
        keys = [("user_id" if table != TRACKER else "id", "HASH")] + ([(sort_key, "RANGE")] if sort_key else [])
        attributes = {name for name, _ in keys} | ({"tracking", "next_deadline"} if table == TRACKER else set())
        extra = {"GlobalSecondaryIndexes": [{
            "IndexName": OPEN_INDEX, "Projection": {"ProjectionType": "ALL"},
            "KeySchema": [{"AttributeName": "tracking", "KeyType": "HASH"},
                          {"AttributeName": "next_deadline", "KeyType": "RANGE"}]}]} if table == TRACKER else {}
        dynamodb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                              KeySchema=[{"AttributeName": n, "KeyType": t} for n, t in keys],
                              AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in attributes],
                              **extra)
    tables = session.resource("dynamodb")
    tables.Table(PROFILES).put_item(Item={"user_id": alice, "name": "Alice", "score": Decimal("1.5"),
                                          "visits": Decimal(12), "tags": {"admin", "beta"}})
    tables.Table(PROFILES).put_item(Item={"user_id": bob, "name": "Bob"})
    with tables.Table(EVENTS).batch_writer() as batch:
        for n in range(30):  # more than one BatchWriteItem of 25
            batch.put_item(Item={"user_id": alice, "item": f"event-{n:03}", "what": "login"})
        for n in range(3):
            batch.put_item(Item={"user_id": bob, "item": f"event-{n:03}", "what": "login"})

    topic = session.client("sns").create_topic(Name="alerts")["TopicArn"]
    sqs = session.client("sqs")
    queue_url = sqs.create_queue(QueueName="alerts")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    session.client("sns").subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)

    config = dr.Config(
        request_table=TRACKER, partitions=(dr.Partition(DATA, "users/{user_id}/"),),
        user_tables=(dr.UserTable(PROFILES, "user_id"), dr.UserTable(EVENTS, "user_id", "item")),
        user_pool_id=pool, records_bucket=RECORDS, signing_key_id=signing_key, alerts_topic_arn=topic)
    return World(session, dr.Clients.from_session(session), config, alice, bob, queue_url)


def delete(world: World, request_id: str = "REQ-1", user: str | None = None) -> dict:
    return {"request_id": request_id, "user_id": user or world.alice, "type": "delete", "requested_by": "ticket 4711"}


def test_delete_removes_every_version_marker_item_and_the_sign_in(world):
    s3 = world.s3
    # More than 1000 versions and delete markers: two pages, two DeleteObjects batches.
    for n in range(1100):
        s3.put_object(Bucket=DATA, Key=f"users/{world.alice}/log/{n % 550:04}", Body=b"x")
    for n in range(150):
        s3.delete_object(Bucket=DATA, Key=f"users/{world.alice}/log/{n:04}")
    assert world.versions(f"users/{world.alice}/") == (1104, 151)
    recorder = Interfering(world.clients.s3, "delete_objects", lambda call, kwargs, real: real(**kwargs))

    result = world.run(delete(world), s3=recorder)

    assert result["status"] == "completed"
    assert [len(c["Delete"]["Objects"]) for c in recorder.calls] == [1000, 255]
    assert all(c["Delete"]["Quiet"] for c in recorder.calls)
    assert world.versions(f"users/{world.alice}/") == (0, 0)
    assert world.versions(f"users/{world.bob}/") == (1, 0)
    assert world.versions(f"users/{world.alice}0/") == (1, 0)
    assert world.items(PROFILES, world.alice) == [] and world.items(EVENTS, world.alice) == []
    assert len(world.items(PROFILES, world.bob)) == 1 and len(world.items(EVENTS, world.bob)) == 3
    assert world.cognito_users() == ["bob"]

    document = result["confirmation"]["document"]
    assert document["deleted"] == {
        "s3": [{"bucket": DATA, "prefix": f"users/{world.alice}/", "object_versions": 1104, "delete_markers": 151}],
        "dynamodb": [{"table": EVENTS, "items": 30}, {"table": PROFILES, "items": 1}],
        "cognito": {"user_pool_id": world.config.user_pool_id, "user": "deleted"}}
    assert document["found"] is True and document["export"] is None
    assert "permanently deleted: 1104 object versions and 151 delete markers" in document["statement"]
    assert (document["request_id"], document["user_id"], document["type"], document["requested_by"]) == \
        ("REQ-1", world.alice, "delete", "ticket 4711")
    assert document["signing"]["algorithm"] == "ECDSA_SHA_256"
    assert dr.verify_confirmation(result["confirmation"], world.clients.kms, key_id=world.config.signing_key_id)

    item = world.tracked("REQ-1")
    assert item["status"] == "completed" and item["kind"] == "data-request" and "tracking" not in item
    assert item["counts"]["s3"][f"s3://{DATA}/users/{world.alice}/"]["object_versions"] == 1104
    assert item["confirmation"] == {"bucket": RECORDS, "key": "confirmations/REQ-1.json"}
    assert world.open_ids() == []

    stored = s3.get_object(Bucket=RECORDS, Key="confirmations/REQ-1.json")
    assert json.loads(stored["Body"].read()) == result["confirmation"]
    assert stored["ServerSideEncryption"] == "aws:kms"  # the bucket's default, clause 7
    assert result["confirmation_location"] == f"s3://{RECORDS}/confirmations/REQ-1.json"
    assert "export_url" not in result

    [alert] = world.alerts()
    assert alert["kind"] == "data-request" and alert["status"] == "completed"
    assert alert["message"]["met_deadline"] is True and alert["message"]["request_id"] == "REQ-1"


def test_return_exports_the_data_then_deletes_it(world):
    result = world.run({"request_id": "REQ-2", "user_id": world.alice, "type": "return"})

    assert result["status"] == "completed"
    url = urlparse(result["export_url"])
    query = parse_qs(url.query)
    assert url.scheme == "https" and url.path.endswith("/exports/REQ-2.zip")
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"] and query["X-Amz-Expires"] == ["3600"]
    assert "X-Amz-Signature" in query
    assert result["export_url_expires_at"] == "2026-11-28T03:00:00Z"

    export = result["confirmation"]["document"]["export"]
    stored = world.s3.get_object(Bucket=RECORDS, Key="exports/REQ-2.zip")
    assert stored["ServerSideEncryption"] == "aws:kms"
    archive_bytes = stored["Body"].read()
    assert export == {"bucket": RECORDS, "key": "exports/REQ-2.zip", "bytes": len(archive_bytes),
                      "sha256": hashlib.sha256(archive_bytes).hexdigest(), "objects": 2, "items": 31}
    archive = zipfile.ZipFile(io.BytesIO(archive_bytes))
    prefix = f"s3/{DATA}/users/{world.alice}/"
    assert archive.read(prefix + "photo.jpg") == b"new photo"  # the current version
    assert archive.read(prefix + "docs/profile.json") == b'{"name": "Alice"}'
    assert prefix + "notes.txt" not in archive.namelist()  # deleted before the request
    assert json.loads(archive.read(f"dynamodb/{PROFILES}.json")) == [
        {"user_id": world.alice, "name": "Alice", "score": 1.5, "visits": 12, "tags": ["admin", "beta"]}]
    assert len(json.loads(archive.read(f"dynamodb/{EVENTS}.json"))) == 30
    assert json.loads(archive.read("manifest.json"))["objects"] == 2
    assert "The user's data (2 objects, 31 items) was exported" in result["confirmation"]["document"]["statement"]

    # Then deleted, like a deletion request.
    assert world.versions(f"users/{world.alice}/") == (0, 0) and world.items(EVENTS, world.alice) == []
    assert world.cognito_users() == ["bob"]
    assert world.tracked("REQ-2")["export"]["sha256"] == export["sha256"]


def test_a_user_found_nowhere_gets_a_confirmation_that_nothing_was_found(world):
    result = world.run(delete(world, "REQ-3", user="no-such-user"))

    assert result["status"] == "completed"
    document = result["confirmation"]["document"]
    assert document["found"] is False
    assert document["statement"].startswith("No data of this user was found")
    assert document["deleted"]["cognito"]["user"] == "not found"
    assert document["deleted"]["s3"][0]["object_versions"] == 0
    assert {t["items"] for t in document["deleted"]["dynamodb"]} == {0}
    assert world.cognito_users() == ["alice", "bob"] and world.versions(f"users/{world.alice}/") == (4, 1)
    assert dr.verify_confirmation(result["confirmation"], world.clients.kms)


def test_the_same_request_again_answers_the_same_confirmation_and_deletes_nothing(world):
    first = world.run(delete(world))
    world.alerts()
    world.s3.put_object(Bucket=DATA, Key=f"users/{world.alice}/new.txt", Body=b"written after")
    clock = Clock()
    clock.advance(hours=5)

    again = world.run(delete(world), clock)

    assert again == first
    assert world.versions(f"users/{world.alice}/") == (1, 0)  # a repeat is an answer, not a new deletion
    assert world.tracked("REQ-1")["counts"] == {
        "s3": {f"s3://{DATA}/users/{world.alice}/": {"bucket": DATA, "prefix": f"users/{world.alice}/",
                                                      "object_versions": 4, "delete_markers": 1}},
        "dynamodb": {PROFILES: 1, EVENTS: 30}, "cognito": "deleted"}
    assert world.alerts() == []  # announced once


def test_a_failure_leaves_the_request_open_and_invoking_again_resumes_it(world):
    for n in range(1100):
        world.s3.put_object(Bucket=DATA, Key=f"users/{world.alice}/log/{n:04}", Body=b"x")
    failing = Interfering(world.clients.s3, "delete_objects",
                          fail_on(2, client_error("InternalError", "DeleteObjects")))

    failed = world.run(delete(world), s3=failing)

    assert failed["status"] == "failed"
    assert failed["error"].startswith("ClientError: An error occurred (InternalError) when calling the DeleteObjects")
    assert "\n" not in failed["error"]
    item = world.tracked("REQ-1")
    assert (item["status"], item["tracking"], item["error"]) == ("failed", "open", failed["error"])
    assert "lease_until" not in item and world.open_ids() == ["REQ-1"]
    assert item["counts"]["s3"][f"s3://{DATA}/users/{world.alice}/"]["object_versions"] == 1000
    assert [a["status"] for a in world.alerts()] == ["failed"]

    resumed = world.run(delete(world))

    assert resumed["status"] == "completed"
    deleted = resumed["confirmation"]["document"]["deleted"]
    assert deleted["s3"][0]["object_versions"] == 1104 and deleted["s3"][0]["delete_markers"] == 1
    assert deleted["cognito"]["user"] == "deleted"  # deleted by the first run, not "not found" now
    assert world.versions(f"users/{world.alice}/") == (0, 0)
    assert "error" not in world.tracked("REQ-1") and world.open_ids() == []


def test_a_killed_run_holds_its_lease_then_the_request_resumes_without_double_counting(world):
    clock = Clock()
    # Killed during the events table, after its first batch of 25 was deleted and counted.
    crashing = Interfering(world.clients.dynamodb, "batch_write_item", fail_on(3, Crash()))
    with pytest.raises(Crash):
        world.run(delete(world), clock, dynamodb=crashing)
    assert world.tracked("REQ-1")["status"] == "in-progress"

    clock.advance(minutes=5)
    with pytest.raises(ResponseError, match="being carried out by another run .*invoke again after that"):
        world.run(delete(world), clock)

    clock.advance(minutes=11)
    result = world.run(delete(world), clock)

    assert result["status"] == "completed"
    assert result["confirmation"]["document"]["deleted"]["dynamodb"] == [
        {"table": EVENTS, "items": 30}, {"table": PROFILES, "items": 1}]
    assert world.items(EVENTS, world.alice) == []


def test_deletions_s3_refuses_fail_the_request_never_complete_it(world):
    def refuse_one(call, kwargs, real):
        objects = kwargs["Delete"]["Objects"]
        real(Bucket=kwargs["Bucket"], Delete={"Quiet": True, "Objects": objects[1:]})
        return {"Errors": [{**objects[0], "Code": "AccessDenied", "Message": "Access Denied"}]}

    result = world.run(delete(world), s3=Interfering(world.clients.s3, "delete_objects", refuse_one))

    assert result["status"] == "failed"
    assert result["error"] == (f"S3 did not delete 1 of 5 versions under s3://{DATA}/users/{world.alice}/ "
                               "(AccessDenied: Access Denied)")
    item = world.tracked("REQ-1")
    assert item["status"] == "failed" and item["tracking"] == "open" and "confirmation" not in item
    assert item["counts"]["s3"][f"s3://{DATA}/users/{world.alice}/"]["object_versions"] \
        + item["counts"]["s3"][f"s3://{DATA}/users/{world.alice}/"]["delete_markers"] == 4
    assert world.s3.list_objects_v2(Bucket=RECORDS).get("KeyCount") == 0  # no confirmation written


def test_items_dynamodb_leaves_unprocessed_are_retried(world, monkeypatch):
    monkeypatch.setattr(dr.time, "sleep", lambda seconds: None)

    def throttle_first_events(call, kwargs, real):
        [(table, requests)] = kwargs["RequestItems"].items()
        if table != EVENTS or len(requests) != 25:
            return real(**kwargs)
        real(RequestItems={table: requests[:10]})
        return {"UnprocessedItems": {table: requests[10:]}}

    throttling = Interfering(world.clients.dynamodb, "batch_write_item", throttle_first_events)
    result = world.run(delete(world), dynamodb=throttling)

    assert result["status"] == "completed" and world.items(EVENTS, world.alice) == []
    assert result["confirmation"]["document"]["deleted"]["dynamodb"][0] == {"table": EVENTS, "items": 30}
    sizes = [len(c["RequestItems"][t]) for c in throttling.calls for t in c["RequestItems"]]
    assert sizes == [1, 25, 15, 5]  # profiles; events 25, its 15 unprocessed again, then the last 5


def test_items_dynamodb_never_processes_fail_the_request(world, monkeypatch):
    monkeypatch.setattr(dr.time, "sleep", lambda seconds: None)
    stuck = Interfering(world.clients.dynamodb, "batch_write_item",
                        lambda call, kwargs, real: {"UnprocessedItems": kwargs["RequestItems"]})

    result = world.run(delete(world), dynamodb=stuck)

    assert result == {"status": "failed", "request_id": "REQ-1", "error":
                      f"DynamoDB left 1 of 1 deletions in table {PROFILES} unprocessed after 8 tries (throttled?)"}
    assert world.tracked("REQ-1")["status"] == "failed"


def test_a_request_id_used_for_another_user_or_type_is_rejected(world):
    world.run(delete(world))
    with pytest.raises(ResponseError, match="request id REQ-1 is already used for another request .*own id"):
        world.run(delete(world, user=world.bob))
    with pytest.raises(ResponseError, match="already used"):
        world.run({**delete(world), "type": "return"})
    assert world.cognito_users() == ["bob"]


@pytest.mark.parametrize("request_, message", [
    ("delete alice", "a data request is a JSON object"),
    ({"user_id": "u-1", "type": "delete"}, "request_id must be 1 to 128 letters"),
    ({"request_id": "a b", "user_id": "u-1", "type": "delete"}, "request_id must be"),
    ({"request_id": "R" * 129, "user_id": "u-1", "type": "delete"}, "request_id must be"),
    ({"request_id": "R-1", "type": "delete"}, "user_id must be"),
    ({"request_id": "R-1", "user_id": "", "type": "delete"}, "user_id must be"),
    ({"request_id": "R-1", "user_id": "u-1/../u-2", "type": "delete"}, "user_id must be"),
    ({"request_id": "R-1", "user_id": "..", "type": "delete"}, "user_id must be"),
    ({"request_id": "R-1", "user_id": "u..1", "type": "delete"}, "user_id must be"),
    ({"request_id": "R-1", "user_id": 'u" or sub ^= "', "type": "delete"}, "user_id must be"),
    ({"request_id": "R-1", "user_id": "u-1", "type": "erase"}, 'type must be "delete" or "return", not \'erase\''),
    ({"request_id": "R-1", "user_id": "u-1", "type": "delete", "requested_by": "a\nb"}, "requested_by must be"),
    ({"request_id": "R-1", "user_id": "u-1", "type": "delete", "received_at": "yesterday"}, "received_at must be"),
    ({"request_id": "R-1", "user_id": "u-1", "type": "delete", "received_at": 1764000000}, "received_at must be"),
])
def test_invalid_requests_are_rejected_in_one_line(request_, message):
    # handle_request parses the request before it touches anything; the handler test shows the answer.
    with pytest.raises(ResponseError, match=message) as caught:
        dr.parse_request(request_)
    assert "\n" not in str(caught.value)


def test_a_tampered_confirmation_does_not_verify(world):
    signed = world.run(delete(world))["confirmation"]
    kms, key = world.clients.kms, world.config.signing_key_id
    assert dr.verify_confirmation(signed, kms, key_id=key)

    document = json.loads(json.dumps(signed["document"]))
    document["deleted"]["s3"][0]["object_versions"] = 1
    assert not dr.verify_confirmation({**signed, "document": document}, kms, key_id=key)
    signature = bytearray(base64.b64decode(signed["signature"]))
    signature[-1] ^= 1
    assert not dr.verify_confirmation({**signed, "signature": base64.b64encode(bytes(signature)).decode()}, kms)
    assert not dr.verify_confirmation({**signed, "signature": "not base64!"}, kms)
    assert not dr.verify_confirmation({**signed, "algorithm": "MD5"}, kms)
    assert not dr.verify_confirmation({"document": "text"}, kms)
    # A confirmation signed with another key does not verify against the key we trust.
    other = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"]
    forged = confirmation.sign(document, kms, key_id=other)
    assert dr.verify_confirmation(forged, kms) and not dr.verify_confirmation(forged, kms, key_id=key)


def test_the_deadline_is_72_hours_after_receipt_and_a_late_answer_says_so(world):
    clock = Clock()
    failing = Interfering(world.clients.cognito, "list_users", fail_on(1, client_error("InternalErrorException",
                                                                                     "ListUsers")))
    assert world.run(delete(world), clock, cognito=failing)["status"] == "failed"
    item = world.tracked("REQ-1")
    assert (item["received_at"], item["deadline"], item["next_deadline"]) == \
        ("2026-11-28T02:00:00Z", "2026-12-01T02:00:00Z", "2026-12-01T02:00:00Z")

    clock.advance(hours=73)
    document = world.run(delete(world), clock)["confirmation"]["document"]

    assert (document["received_at"], document["deadline"], document["completed_at"]) == \
        ("2026-11-28T02:00:00Z", "2026-12-01T02:00:00Z", "2026-12-01T03:00:00Z")
    assert document["met_deadline"] is False and world.tracked("REQ-1")["met_deadline"] is False
    assert [a["message"].get("met_deadline") for a in world.alerts()] == [None, False]


def test_the_deadline_counts_from_when_the_user_asked_never_from_the_future(world):
    asked = {**delete(world), "received_at": "2026-11-26T08:30:00Z"}  # the ticket's time, 41.5 h earlier
    document = world.run(asked)["confirmation"]["document"]
    assert (document["received_at"], document["deadline"]) == ("2026-11-26T08:30:00Z", "2026-11-29T08:30:00Z")
    later = {**delete(world, "REQ-2", world.bob), "received_at": "2027-01-01T00:00:00Z"}
    assert world.run(later)["confirmation"]["document"]["received_at"] == "2026-11-28T02:00:00Z"


def test_the_deadline_follows_the_setting(world):
    world.config = dataclasses.replace(world.config, deadline_hours=24)
    document = world.run(delete(world))["confirmation"]["document"]
    assert document["deadline"] == "2026-11-29T02:00:00Z" and document["met_deadline"] is True


ENVIRONMENT = {"REQUEST_TABLE": TRACKER, "RECORDS_BUCKET": RECORDS, "EXPORT_URL_SECONDS": "600",
               "DATA_BUCKETS": json.dumps([{"bucket": DATA, "prefix": "users/{user_id}/"}]),
               "USER_TABLES": json.dumps([{"table": PROFILES, "key": "user_id"},
                                          {"table": EVENTS, "key": "user_id", "sort_key": "item"}])}


def test_the_lambda_handler_reads_its_environment(world, monkeypatch):
    for name, value in {**ENVIRONMENT, "USER_POOL_ID": world.config.user_pool_id, "AWS_DEFAULT_REGION": "us-east-1",
                        "SIGNING_KEY_ID": world.config.signing_key_id,
                        "ALERTS_TOPIC_ARN": world.config.alerts_topic_arn}.items():
        monkeypatch.setenv(name, value)

    result = dr.handler({"request_id": "REQ-9", "user_id": world.alice, "type": "return"}, None)

    assert result["status"] == "completed" and "X-Amz-Expires=600" in result["export_url"]
    assert world.cognito_users() == ["bob"] and world.tracked("REQ-9")["status"] == "completed"
    assert dr.handler({"request_id": "REQ-9", "user_id": world.alice, "type": "return"}, None)["confirmation"] \
        == result["confirmation"]

    rejected = dr.handler({"request_id": "REQ-10", "user_id": "../bob", "type": "delete"}, None)
    assert rejected["status"] == "rejected" and rejected["error"].startswith("user_id must be")
    assert world.cognito_users() == ["bob"] and world.open_ids() == []
    assert [(a["status"], a["subject"]) for a in world.alerts()] == [
        ("completed", "Data request REQ-9 completed"), ("rejected", "Data request REQ-10 rejected")]


@pytest.mark.parametrize("change, error", [
    ({"REQUEST_TABLE": ""}, "the function's environment has no REQUEST_TABLE"),
    ({"DATA_BUCKETS": "[{"}, "DATA_BUCKETS is not JSON"),
    ({"DATA_BUCKETS": json.dumps([{"bucket": DATA, "prefix": "users/"}])}, "must hold {user_id}/ once"),
    ({"DATA_BUCKETS": json.dumps([{"bucket": DATA, "prefix": "users/{user_id}"}])}, "must hold {user_id}/ once"),
    ({"DATA_BUCKETS": json.dumps({"bucket": DATA})}, "DATA_BUCKETS must be a JSON list"),
    ({"USER_TABLES": json.dumps([{"table": PROFILES}])}, "USER_TABLES must be a JSON list"),
    ({"EXPORT_URL_SECONDS": "forever"}, "EXPORT_URL_SECONDS must be a whole number from 1 to 604800"),
    ({"SIGNING_ALGORITHM": "RSAES_OAEP_SHA_256"}, "SIGNING_ALGORITHM 'RSAES_OAEP_SHA_256' is not one of"),
])
def test_a_misconfigured_function_rejects_in_one_line(monkeypatch, change, error):
    environment = {**ENVIRONMENT, "USER_POOL_ID": "us-east-1_x", "SIGNING_KEY_ID": "k", "ALERTS_TOPIC_ARN": "t",
                   **change}
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    result = dr.handler({"request_id": "REQ-1", "user_id": "u-1", "type": "delete"}, None)
    assert result["status"] == "rejected" and error in result["error"] and "\n" not in result["error"]


# --- `dpguard data-request`: the operator's list and the auditor's check ------------------------

def test_the_command_verifies_a_stored_confirmation_and_refuses_a_changed_one(world, tmp_path, capsys):
    from dpguard.cli import main

    world.run(delete(world))
    stored = world.s3.get_object(Bucket=RECORDS, Key="confirmations/REQ-1.json")["Body"].read()
    good, changed = tmp_path / "REQ-1.json", tmp_path / "changed.json"
    good.write_bytes(stored)
    edited = json.loads(stored)
    edited["document"]["deleted"] = "nothing"  # an edit after signing
    changed.write_text(json.dumps(edited))
    key = ["--key-id", world.config.signing_key_id, "--region", "us-east-1"]

    assert main(["data-request", "verify", str(good), *key]) == 0
    assert "valid: request REQ-1 (delete" in capsys.readouterr().out
    assert main(["data-request", "verify", str(changed), *key]) == 1
    assert "NOT VALID: request REQ-1" in capsys.readouterr().err
    assert main(["data-request", "verify", str(tmp_path / "missing.json"), *key]) == 2
    assert main(["data-request", "verify", str(good), "--region", "us-east-1"]) == 2  # which key?
    assert "pass --key-id" in capsys.readouterr().err


def test_the_command_lists_open_requests_by_deadline(world, capsys):
    from dpguard.cli import main

    failing = Interfering(world.clients.cognito, "list_users",
                          fail_on(1, client_error("InternalErrorException", "ListUsers")))
    world.run(delete(world, "REQ-7"), cognito=failing)  # failed: stays open
    world.run(delete(world, "REQ-8", world.bob))        # completed: not listed

    assert main(["data-request", "list", "--table", TRACKER, "--region", "us-east-1"]) == 0
    out = capsys.readouterr().out
    assert "REQ-7" in out and "failed" in out and "2026-12-01T02:00:00Z" in out and "REQ-8" not in out
