"""Deletion and return requests (clause 5): "We will respond with data requests within 72 hours
and you may ask for data to be permanently deleted, with written confirmation after it is
completed."

An operator or the ticketing integration invokes the function directly (lambda:InvokeFunction)
with {"request_id": "...", "user_id": "<the user's Cognito sub>", "type": "delete" | "return",
"requested_by": "..." (optional)}. For one request it:

1. records the request in the tracker (REQUEST_TABLE) with its deadline, received + 72 hours;
   the escalation function chases it while it is open;
2. for "return", exports the current version of every object in the user's partitions and the
   user's table items into one zip archive, RECORDS_BUCKET/exports/<request_id>.zip, and answers
   a presigned HTTPS URL to it (EXPORT_URL_SECONDS, default an hour). The URL is signed with the
   function's session credentials, so it stops working when those expire, whatever its expiry
   says; the stack expires the archive itself after a few days. A URL is a bearer link: hand it
   only to the requester, over the ticket;
3. deletes, permanently: the Cognito user first (so they can no longer sign in and add data),
   then every object version and delete marker under the user's prefix in each data bucket, and
   the user's items in each user table. Counts are persisted batch by batch, after each batch
   is deleted: a resumed request never counts an item twice; a crash between a batch and its
   count (a fraction of a second) would leave that one batch uncounted;
4. writes the written confirmation: a JSON document signed with KMS (see confirmation.py),
   stored at RECORDS_BUCKET/confirmations/<request_id>.json, and announces the outcome on the
   alerts topic.

It fails closed: a refused deletion, a batch left unprocessed or any error leaves the request
open ("failed", with the error), never "completed". Invoking again with the same request resumes
it; the same request after completion answers the stored confirmation and deletes nothing. A
run holds a 15-minute lease on the request (Lambda's longest run) so that two runs never delete
and count the same data at once.

Scope: the live data in the configured buckets, tables and user pool. Backups (point-in-time
recovery, AWS Backup) and replicas age out by their own retention."""
from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
import zipfile
from decimal import Decimal
from typing import Any

import boto3
from boto3.dynamodb.conditions import Key
from boto3.dynamodb.types import Binary
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

from . import confirmation
from .common import OPEN, Clock, ResponseError, iso, json_setting, parse_iso, publish, setting, utcnow

log = logging.getLogger(__name__)

KIND = "data-request"
TYPES = ("delete", "return")
IN_PROGRESS, COMPLETED, FAILED = "in-progress", "completed", "failed"
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# The user id goes into S3 prefixes, a Cognito filter and DynamoDB keys: no "/", quotes or spaces.
USER_ID = re.compile(r"[A-Za-z0-9._:@+=-]{1,128}")
LEASE = dt.timedelta(minutes=15)  # Lambda's longest run: a lease older than that is a dead run's
S3_BATCH = 1000  # ListObjectVersions pages and DeleteObjects calls hold at most 1000 keys
DYNAMODB_BATCH = 25  # BatchWriteItem's limit
WRITE_ATTEMPTS = 8  # tries for a batch whose items DynamoDB leaves unprocessed (throttling)
MAX_URL_SECONDS = 7 * 24 * 3600  # the longest a SigV4 presigned URL may live


@dataclasses.dataclass(frozen=True)
class Request:
    request_id: str
    user_id: str
    type: str
    requested_by: str | None = None
    received_at: dt.datetime | None = None  # when the user asked, if earlier than this invocation


@dataclasses.dataclass(frozen=True)
class Partition:
    """A data bucket's per-user partition: `prefix` is a template holding "{user_id}/"."""
    bucket: str
    prefix: str

    def for_user(self, user_id: str) -> str:
        return self.prefix.replace("{user_id}", user_id)


@dataclasses.dataclass(frozen=True)
class UserTable:
    """A DynamoDB table whose partition key (`key`) holds the user id."""
    table: str
    key: str
    sort_key: str | None = None


@dataclasses.dataclass(frozen=True)
class Config:
    request_table: str
    partitions: tuple[Partition, ...]
    user_tables: tuple[UserTable, ...]
    user_pool_id: str
    records_bucket: str
    signing_key_id: str
    alerts_topic_arn: str
    signing_algorithm: str = confirmation.DEFAULT_ALGORITHM
    export_url_seconds: int = 3600
    deadline_hours: int = 72

    @classmethod
    def from_env(cls, environ: dict | None = None) -> Config:
        environ = os.environ if environ is None else environ
        algorithm = environ.get("SIGNING_ALGORITHM") or confirmation.DEFAULT_ALGORITHM
        if algorithm not in confirmation.ALGORITHMS:
            raise ResponseError(f"SIGNING_ALGORITHM {algorithm!r} is not one of {', '.join(confirmation.ALGORITHMS)}")
        return cls(
            request_table=setting("REQUEST_TABLE", environ),
            partitions=_partitions(json_setting("DATA_BUCKETS", environ=environ)),
            user_tables=_user_tables(json_setting("USER_TABLES", environ=environ)),
            user_pool_id=setting("USER_POOL_ID", environ),
            records_bucket=setting("RECORDS_BUCKET", environ),
            signing_key_id=setting("SIGNING_KEY_ID", environ),
            alerts_topic_arn=setting("ALERTS_TOPIC_ARN", environ),
            signing_algorithm=algorithm,
            export_url_seconds=_int_setting("EXPORT_URL_SECONDS", 3600, 1, MAX_URL_SECONDS, environ),
            deadline_hours=_int_setting("REQUEST_DEADLINE_HOURS", 72, 1, 24 * 365, environ))


def _partitions(value: Any) -> tuple[Partition, ...]:
    shape = 'DATA_BUCKETS must be a JSON list of {"bucket": "name", "prefix": "users/{user_id}/"}'
    if not isinstance(value, list):
        raise ResponseError(shape)
    partitions = []
    for entry in value:
        if not (isinstance(entry, dict) and isinstance(entry.get("bucket"), str) and entry["bucket"]
                and isinstance(entry.get("prefix"), str)):
            raise ResponseError(f"{shape}, not {json.dumps(entry)[:80]}")
        # "{user_id}/" and nothing else: a prefix "users/u-1" would also delete users/u-10/.
        if entry["prefix"].count("{user_id}") != 1 or "{user_id}/" not in entry["prefix"]:
            raise ResponseError(f"DATA_BUCKETS prefix {entry['prefix']!r} of bucket {entry['bucket']} must hold "
                                "{user_id}/ once, so that it names exactly one user's partition")
        partitions.append(Partition(entry["bucket"], entry["prefix"]))
    return tuple(partitions)


def _user_tables(value: Any) -> tuple[UserTable, ...]:
    shape = 'USER_TABLES must be a JSON list of {"table": "name", "key": "user_id", "sort_key": "..." (optional)}'
    if not isinstance(value, list):
        raise ResponseError(shape)
    tables = []
    for entry in value:
        if not (isinstance(entry, dict) and all(isinstance(entry.get(k), str) and entry[k] for k in ("table", "key"))
                and isinstance(entry.get("sort_key") or "", str)):
            raise ResponseError(f"{shape}, not {json.dumps(entry)[:80]}")
        tables.append(UserTable(entry["table"], entry["key"], entry.get("sort_key") or None))
    return tuple(tables)


def _int_setting(name: str, default: int, low: int, high: int, environ) -> int:
    raw = environ.get(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise ResponseError(f"{name} must be a whole number from {low} to {high}, not {raw!r}")
    return value


@dataclasses.dataclass(frozen=True)
class Clients:
    s3: Any
    dynamodb: Any  # the DynamoDB service resource: tables as boto3 Table resources
    cognito: Any
    kms: Any
    sns: Any

    @classmethod
    def from_session(cls, session) -> Clients:
        return cls(s3=session.client("s3", config=BotoConfig(signature_version="s3v4")),
                   dynamodb=session.resource("dynamodb"), cognito=session.client("cognito-idp"),
                   kms=session.client("kms"), sns=session.client("sns"))


def handler(event, context) -> dict:
    """The Lambda entry point. Never raises for a request it cannot act on (an asynchronous
    invocation that raises is retried, and a retry would fail the same way): the answer is
    {"status": "rejected", "error"}. It does raise when the tracker itself cannot be reached, as
    then the request is not recorded anywhere: Lambda retries it, then keeps it in the dead-letter
    queue."""
    try:
        config = Config.from_env()
    except ResponseError as e:
        log.error("data request rejected: %s", e)
        return {"status": "rejected", "error": str(e)}
    clients = Clients.from_session(boto3.Session())
    try:
        return handle_request(event, clients=clients, config=config)
    except ResponseError as e:
        log.error("data request rejected: %s", e)
        request_id = event.get("request_id") if isinstance(event, dict) else None
        named = request_id if isinstance(request_id, str) and REQUEST_ID.fullmatch(request_id) else "(no valid id)"
        _alert(clients, config, f"Data request {named} rejected", status="rejected",
               message={"request_id": named, "status": "rejected", "error": str(e)})
        return {"status": "rejected", "error": str(e)}


def verify_confirmation(signed: Any, kms, *, key_id: str | None = None) -> bool:
    """True if the signed confirmation is authentic and untouched (kms:Verify). Pass `key_id`, the
    signing key you trust (SIGNING_KEY_ID): the key id inside `signed` is only what it claims."""
    return confirmation.verify(signed, kms, key_id=key_id)


def parse_request(event: Any) -> Request:
    """The request, or ResponseError saying in one line what is wrong with it."""
    if not isinstance(event, dict):
        raise ResponseError('a data request is a JSON object {"request_id", "user_id", "type": "delete" | "return", '
                            f'"requested_by"}}, not {_shown(event)}')
    request_id, user_id, kind = event.get("request_id"), event.get("user_id"), event.get("type")
    if not (isinstance(request_id, str) and REQUEST_ID.fullmatch(request_id)):
        raise ResponseError(f"request_id must be 1 to 128 letters, digits or . _ : -, not {_shown(request_id)}")
    if not (isinstance(user_id, str) and USER_ID.fullmatch(user_id)) or ".." in user_id or not user_id.strip("."):
        raise ResponseError(f"user_id must be the user's id (1 to 128 letters, digits or . _ : @ + = -, "
                            f"no '..'), not {_shown(user_id)}")
    if kind not in TYPES:
        raise ResponseError(f'type must be "delete" or "return", not {_shown(kind)}')
    requested_by = event.get("requested_by")
    if requested_by is not None and not (isinstance(requested_by, str) and 0 < len(requested_by) <= 256
                                         and requested_by.isprintable()):
        raise ResponseError("requested_by must be a name of up to 256 printable characters, "
                            f"not {_shown(requested_by)}")
    received_at = event.get("received_at")
    if received_at is not None:
        try:
            received_at = parse_iso(received_at)
        except (AttributeError, TypeError, ValueError):
            raise ResponseError(f"received_at must be an ISO-8601 time (when the user asked), not {_shown(received_at)}"
                                ) from None
    return Request(request_id, user_id, kind, requested_by, received_at)


def handle_request(event: Any, *, clients: Clients, config: Config, clock: Clock = utcnow) -> dict:
    """Carry out one request; return {"status": "completed", "request_id", "confirmation" (the
    signed confirmation), "confirmation_location", and for "return" "export_url" and
    "export_url_expires_at"} or {"status": "failed", "request_id", "error"} (the request stays
    open; invoke again to resume). Raises ResponseError for a request it will not act on."""
    request = parse_request(event)
    tracker = clients.dynamodb.Table(config.request_table)
    item = _begin(tracker, request, config, clock())
    if item["status"] == COMPLETED:
        signed = _read_json(clients.s3, item["confirmation"]["bucket"], item["confirmation"]["key"])
        return _answer(item, signed, clients, config, clock())
    try:
        item, signed = _carry_out(request, item, tracker, clients, config, clock)
    except Exception as e:  # noqa: BLE001 - whatever stops the work, the request stays open and says why
        error = _one_line(e)
        log.exception("data request %s failed: %s", request.request_id, error)
        _mark_failed(tracker, request.request_id, error)
        _alert(clients, config, f"Data request {request.request_id} failed", status=FAILED,
               message={"request_id": request.request_id, "type": request.type, "status": FAILED,
                        "error": error, "deadline": item["deadline"],
                        "action": "fix the cause, then invoke again with the same request to resume it"})
        return {"status": FAILED, "request_id": request.request_id, "error": error}
    document = signed["document"]
    _alert(clients, config, f"Data request {request.request_id} completed", status=COMPLETED,
           message={"request_id": request.request_id, "type": request.type, "status": COMPLETED,
                    "received_at": document["received_at"], "deadline": document["deadline"],
                    "completed_at": document["completed_at"], "met_deadline": document["met_deadline"],
                    "found": document["found"],
                    "confirmation": f"s3://{item['confirmation']['bucket']}/{item['confirmation']['key']}"})
    return _answer(item, signed, clients, config, clock())


# --- tracking --------------------------------------------------------------------------------

def _begin(tracker, request: Request, config: Config, now: dt.datetime) -> dict:
    """The request's tracker item, leased to this run (new or resumed), or the completed item."""
    # The clock runs from when the user asked (a ticket's time), never from later than now.
    received = min(request.received_at or now, now)
    deadline = iso(received + dt.timedelta(hours=config.deadline_hours))
    item = {"id": request.request_id, "kind": KIND, "user_id": request.user_id, "request_type": request.type,
            "status": IN_PROGRESS, "received_at": iso(received), "deadline": deadline, "next_deadline": deadline,
            "tracking": OPEN, "counts": {"s3": {}, "dynamodb": {}}, "lease_until": iso(now + LEASE)}
    if request.requested_by:
        item["requested_by"] = request.requested_by
    try:
        tracker.put_item(Item=item, ConditionExpression="attribute_not_exists(id)")
        return item
    except ClientError as e:
        if _code(e) != "ConditionalCheckFailedException":
            raise
    existing = _get(tracker, request.request_id)
    if (existing.get("kind") != KIND or existing.get("user_id") != request.user_id
            or existing.get("request_type") != request.type):
        raise ResponseError(f"request id {request.request_id} is already used for another request (received "
                            f"{existing.get('received_at', '?')}): give this request its own id")
    if existing["status"] == COMPLETED:
        return existing
    try:
        tracker.update_item(
            Key={"id": request.request_id},
            UpdateExpression="SET #status = :in_progress, lease_until = :lease REMOVE #error",
            ConditionExpression="#status <> :completed AND (attribute_not_exists(lease_until) OR lease_until < :now)",
            ExpressionAttributeNames={"#status": "status", "#error": "error"},
            ExpressionAttributeValues={":in_progress": IN_PROGRESS, ":completed": COMPLETED,
                                       ":lease": iso(now + LEASE), ":now": iso(now)})
    except ClientError as e:
        if _code(e) != "ConditionalCheckFailedException":
            raise
        existing = _get(tracker, request.request_id)
        if existing["status"] == COMPLETED:
            return existing
        raise ResponseError(f"request {request.request_id} is being carried out by another run (until "
                            f"{existing.get('lease_until')}): invoke again after that to resume it") from None
    return _get(tracker, request.request_id)


def _get(tracker, request_id: str) -> dict:
    item = tracker.get_item(Key={"id": request_id}, ConsistentRead=True).get("Item")
    if item is None:
        raise ResponseError(f"request {request_id} vanished from the tracker while being carried out")
    return item


def _mark_failed(tracker, request_id: str, error: str) -> None:
    """Failed, still open (`tracking` stays, so it is still escalated), the lease released."""
    try:
        tracker.update_item(
            Key={"id": request_id}, UpdateExpression="SET #status = :failed, #error = :error REMOVE lease_until",
            ConditionExpression="#status = :in_progress",
            ExpressionAttributeNames={"#status": "status", "#error": "error"},
            ExpressionAttributeValues={":failed": FAILED, ":error": error, ":in_progress": IN_PROGRESS})
    except (ClientError, BotoCoreError) as e:  # the lease then runs out by itself
        log.error("could not record that request %s failed: %s", request_id, _one_line(e))


def _carry_out(request: Request, item: dict, tracker, clients: Clients, config: Config,
               clock: Clock) -> tuple[dict, dict]:
    counts = _Counts(tracker, request.request_id)
    if request.type == "return" and "export" not in item:
        # Recorded before anything is deleted: a resumed run must not export what is left.
        export = _export(request, clients, config, clock())
        tracker.update_item(Key={"id": request.request_id}, UpdateExpression="SET #export = :export",
                            ExpressionAttributeNames={"#export": "export"},
                            ExpressionAttributeValues={":export": export})
    counts.cognito(_delete_cognito_user(clients.cognito, config.user_pool_id, request.user_id))
    for partition in config.partitions:
        _delete_versions(clients.s3, partition.bucket, partition.for_user(request.user_id), counts)
    for table in config.user_tables:
        _delete_items(clients.dynamodb, table, request.user_id, counts)

    item = _get(tracker, request.request_id)
    completed_at = clock()
    document = _document(request, item, config, completed_at)
    signed = confirmation.sign(document, clients.kms, key_id=config.signing_key_id,
                               algorithm=config.signing_algorithm)
    location = {"bucket": config.records_bucket, "key": f"confirmations/{request.request_id}.json"}
    # The bucket's default encryption (SSE-KMS) applies: no key is named here.
    clients.s3.put_object(Bucket=location["bucket"], Key=location["key"], ContentType="application/json",
                          Body=json.dumps(signed, indent=2, sort_keys=True, ensure_ascii=False).encode("utf-8"))
    tracker.update_item(
        Key={"id": request.request_id},
        UpdateExpression="SET #status = :completed, completed_at = :at, met_deadline = :met, confirmation = :where "
                         "REMOVE tracking, lease_until, #error",
        ConditionExpression="#status = :in_progress",
        ExpressionAttributeNames={"#status": "status", "#error": "error"},
        ExpressionAttributeValues={":completed": COMPLETED, ":at": document["completed_at"],
                                   ":met": document["met_deadline"], ":where": location, ":in_progress": IN_PROGRESS})
    return _get(tracker, request.request_id), signed


class _Counts:
    """What was deleted, in the tracker item's `counts` map, added to batch by batch."""

    def __init__(self, tracker, request_id: str):
        self.tracker, self.key = tracker, {"id": request_id}

    def start_partition(self, bucket: str, prefix: str) -> str:
        name = f"s3://{bucket}/{prefix}"
        self.tracker.update_item(
            Key=self.key, UpdateExpression="SET counts.s3.#p = if_not_exists(counts.s3.#p, :zero)",
            ExpressionAttributeNames={"#p": name},
            ExpressionAttributeValues={":zero": {"bucket": bucket, "prefix": prefix, "object_versions": 0,
                                                 "delete_markers": 0}})
        return name

    def add_versions(self, name: str, versions: int, markers: int) -> None:
        self.tracker.update_item(
            Key=self.key, UpdateExpression="SET counts.s3.#p.object_versions = counts.s3.#p.object_versions + :v, "
                                           "counts.s3.#p.delete_markers = counts.s3.#p.delete_markers + :m",
            ExpressionAttributeNames={"#p": name}, ExpressionAttributeValues={":v": versions, ":m": markers})

    def add_items(self, table: str, items: int) -> None:
        self.tracker.update_item(
            Key=self.key, UpdateExpression="SET counts.dynamodb.#t = if_not_exists(counts.dynamodb.#t, :zero) + :n",
            ExpressionAttributeNames={"#t": table}, ExpressionAttributeValues={":zero": 0, ":n": items})

    def cognito(self, outcome: str) -> None:
        # "not found" never overwrites "deleted": a resumed run finds no user because the first deleted it.
        value = "if_not_exists(counts.cognito, :outcome)" if outcome == "not found" else ":outcome"
        self.tracker.update_item(Key=self.key, UpdateExpression=f"SET counts.cognito = {value}",
                                 ExpressionAttributeValues={":outcome": outcome})


# --- deleting --------------------------------------------------------------------------------

def _delete_cognito_user(cognito, user_pool_id: str, user_id: str) -> str:
    """"deleted" or "not found". The user id is the user's `sub`, which is not the username."""
    users = cognito.list_users(UserPoolId=user_pool_id, Filter=f'sub = "{user_id}"')["Users"]
    deleted = False
    for user in users:
        try:
            cognito.admin_delete_user(UserPoolId=user_pool_id, Username=user["Username"])
            deleted = True
        except ClientError as e:
            if _code(e) != "UserNotFoundException":  # gone since we listed it: nothing to do
                raise
    return "deleted" if deleted else "not found"


def _delete_versions(s3, bucket: str, prefix: str, counts: _Counts) -> None:
    """Every version and delete marker under the prefix, 1000 at a time. Each round lists from
    the start again: what is left after a batch is exactly what remains to delete."""
    name = counts.start_partition(bucket, prefix)
    previous: set = set()
    while True:
        page = s3.list_object_versions(Bucket=bucket, Prefix=prefix, MaxKeys=S3_BATCH)
        versions = [(v["Key"], v["VersionId"]) for v in page.get("Versions", [])]
        markers = [(m["Key"], m["VersionId"]) for m in page.get("DeleteMarkers", [])]
        if not versions and not markers:
            return
        if previous & set(versions + markers):
            raise ResponseError(f"s3://{bucket}/{prefix} still lists versions that S3 said it deleted")
        response = s3.delete_objects(Bucket=bucket, Delete={
            "Quiet": True, "Objects": [{"Key": key, "VersionId": version} for key, version in versions + markers]})
        errors = response.get("Errors", [])
        refused = {(e.get("Key"), e.get("VersionId")) for e in errors}
        counts.add_versions(name, sum(v not in refused for v in versions), sum(m not in refused for m in markers))
        if errors:
            for error in errors:
                log.error("S3 did not delete s3://%s/%s version %s: %s", bucket, error.get("Key"),
                          error.get("VersionId"), error.get("Code"))
            first = errors[0]
            raise ResponseError(f"S3 did not delete {len(errors)} of {len(versions) + len(markers)} versions under "
                                f"s3://{bucket}/{prefix} ({first.get('Code')}: {first.get('Message')})")
        previous = set(versions + markers)


def _delete_items(dynamodb, table: UserTable, user_id: str, counts: _Counts) -> None:
    """Every item whose partition key is the user id, 25 at a time. Like the versions, each round
    queries from the start again."""
    names = {"#k": table.key, **({"#s": table.sort_key} if table.sort_key else {})}
    query = dict(KeyConditionExpression=Key(table.key).eq(user_id), ConsistentRead=True,
                 ProjectionExpression=", ".join(names), ExpressionAttributeNames=names)
    resource = dynamodb.Table(table.table)
    counts.add_items(table.table, 0)  # the table is listed in the confirmation even when it held nothing
    while True:
        keys = resource.query(**query).get("Items", [])
        if not keys:
            return
        for start in range(0, len(keys), DYNAMODB_BATCH):
            batch = keys[start:start + DYNAMODB_BATCH]
            left = _batch_delete(dynamodb, table.table, batch)
            counts.add_items(table.table, len(batch) - left)
            if left:
                raise ResponseError(f"DynamoDB left {left} of {len(batch)} deletions in table {table.table} "
                                    f"unprocessed after {WRITE_ATTEMPTS} tries (throttled?)")


def _batch_delete(dynamodb, table: str, keys: list[dict]) -> int:
    """Delete the items (full keys), retrying what DynamoDB leaves unprocessed; the number left."""
    requests = [{"DeleteRequest": {"Key": key}} for key in keys]
    for attempt in range(WRITE_ATTEMPTS):
        if attempt:
            time.sleep(min(0.05 * 2 ** attempt, 2))
        response = dynamodb.batch_write_item(RequestItems={table: requests})
        requests = response.get("UnprocessedItems", {}).get(table, [])
        if not requests:
            return 0
    return len(requests)


# --- exporting -------------------------------------------------------------------------------

def _export(request: Request, clients: Clients, config: Config, now: dt.datetime) -> dict:
    """One zip archive of the user's data, built in a temporary file (/tmp in Lambda, so the
    archive can be as large as the function's ephemeral storage), then uploaded."""
    key = f"exports/{request.request_id}.zip"
    objects = items = 0
    with tempfile.TemporaryFile() as file:
        with zipfile.ZipFile(file, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for partition in config.partitions:
                objects += _export_objects(clients.s3, partition.bucket, partition.for_user(request.user_id), archive)
            for table in config.user_tables:
                items += _export_items(clients.dynamodb, table, request.user_id, archive)
            archive.writestr("manifest.json", json.dumps({
                "request_id": request.request_id, "user_id": request.user_id, "exported_at": iso(now),
                "objects": objects, "items": items,
                "layout": "s3/<bucket>/<key>: each object's current version; dynamodb/<table>.json: the items"},
                indent=2))
        size = file.seek(0, os.SEEK_END)
        file.seek(0)
        digest = hashlib.sha256()
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
        file.seek(0)
        # S3 checks the upload against our digest; the bucket's default encryption (SSE-KMS) applies.
        clients.s3.put_object(Bucket=config.records_bucket, Key=key, Body=file, ContentType="application/zip",
                              ChecksumSHA256=base64.b64encode(digest.digest()).decode("ascii"))
    return {"bucket": config.records_bucket, "key": key, "bytes": size, "sha256": digest.hexdigest(),
            "objects": objects, "items": items}


def _export_objects(s3, bucket: str, prefix: str, archive: zipfile.ZipFile) -> int:
    exported = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for listed in page.get("Contents", []):
            try:
                body = s3.get_object(Bucket=bucket, Key=listed["Key"])["Body"]
            except ClientError as e:
                if _code(e) == "NoSuchKey":  # deleted since it was listed: not the user's data any more
                    continue
                raise
            with body, archive.open(_archive_name("s3", bucket, listed["Key"]), "w", force_zip64=True) as out:
                shutil.copyfileobj(body, out, 1 << 20)
            exported += 1
    return exported


def _export_items(dynamodb, table: UserTable, user_id: str, archive: zipfile.ZipFile) -> int:
    """The items as a JSON list, written item by item so no table has to fit in memory."""
    resource, exported = dynamodb.Table(table.table), 0
    query: dict = dict(KeyConditionExpression=Key(table.key).eq(user_id), ConsistentRead=True)
    with archive.open(_archive_name("dynamodb", f"{table.table}.json"), "w", force_zip64=True) as out:
        out.write(b"[")
        while True:
            page = resource.query(**query)
            for item in page.get("Items", []):
                out.write((",\n" if exported else "\n").encode() + json.dumps(_plain(item), sort_keys=True).encode())
                exported += 1
            if "LastEvaluatedKey" not in page:
                break
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        out.write(b"\n]\n")
    return exported


def _archive_name(*parts: str) -> str:
    """A path inside the archive that cannot climb out of the folder it is extracted to."""
    segments = "/".join(parts).split("/")
    return "/".join(s if s not in ("", ".", "..") else "_" for s in segments)


def _plain(value: Any) -> Any:
    """DynamoDB's types as JSON: exact numbers (a number JSON cannot hold exactly becomes its
    text), sets as sorted lists, binary as base64."""
    if isinstance(value, Decimal):
        if value == value.to_integral_value():
            return int(value)
        return float(value) if Decimal(repr(float(value))) == value else str(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((_plain(v) for v in value), key=str)
    if isinstance(value, Binary):
        value = value.value
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode("ascii")
    return value


# --- the confirmation and the answer ----------------------------------------------------------

def _document(request: Request, item: dict, config: Config, completed_at: dt.datetime) -> dict:
    counts = _plain(item.get("counts", {}))
    s3 = sorted(counts.get("s3", {}).values(), key=lambda p: (p["bucket"], p["prefix"]))
    tables = [{"table": name, "items": n} for name, n in sorted(counts.get("dynamodb", {}).items())]
    cognito = counts.get("cognito", "not found")
    versions = sum(p["object_versions"] for p in s3)
    markers = sum(p["delete_markers"] for p in s3)
    table_items = sum(t["items"] for t in tables)
    found = bool(versions or markers or table_items or cognito == "deleted")
    export = _plain(item["export"]) if "export" in item else None
    finished = iso(completed_at)
    if not found:
        statement = "No data of this user was found in the stores listed below; there was nothing to delete."
    else:
        statement = (f"All data of this user found in the stores listed below was permanently deleted: "
                     f"{versions} object versions and {markers} delete markers in S3, {table_items} items "
                     f"in DynamoDB, and the sign-in account (Cognito user {cognito}).")
    if export:
        statement = (f"The user's data ({export['objects']} objects, {export['items']} items) was exported "
                     f"to the archive below before deletion. ") + statement
    return {
        "title": "Written confirmation of a data request (Data Protection Policy, clause 5)",
        "request_id": request.request_id, "user_id": request.user_id, "type": request.type,
        "requested_by": item.get("requested_by"),
        "received_at": item["received_at"], "deadline": item["deadline"], "completed_at": finished,
        "met_deadline": finished <= item["deadline"],  # same ISO format: text order is time order
        "found": found, "statement": statement,
        "deleted": {"s3": s3, "dynamodb": tables,
                    "cognito": {"user_pool_id": config.user_pool_id, "user": cognito}},
        "export": export,
        "scope": "Live data in the buckets, tables and user pool listed; backups and replicas expire by "
                 "their own retention.",
        "signing": {"key_id": config.signing_key_id, "algorithm": config.signing_algorithm,
                    "message_type": "DIGEST", "digest": "SHA-256", "canonical_form": confirmation.CANONICAL_FORM},
    }


def _answer(item: dict, signed: dict, clients: Clients, config: Config, now: dt.datetime) -> dict:
    location = item["confirmation"]
    answer = {"status": COMPLETED, "request_id": item["id"], "confirmation": signed,
              "confirmation_location": f"s3://{location['bucket']}/{location['key']}"}
    if "export" in item:
        # A fresh URL each time: one handed out earlier may have expired with its credentials.
        answer["export_url"] = clients.s3.generate_presigned_url(
            "get_object", Params={"Bucket": item["export"]["bucket"], "Key": item["export"]["key"]},
            ExpiresIn=config.export_url_seconds)
        answer["export_url_expires_at"] = iso(now + dt.timedelta(seconds=config.export_url_seconds))
    return answer


def _read_json(s3, bucket: str, key: str) -> dict:
    return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def _alert(clients: Clients, config: Config, subject: str, *, status: str, message: dict) -> None:
    """Tell the operators. The work is done or recorded either way: a lost alert is logged, not fatal."""
    try:
        publish(clients.sns, config.alerts_topic_arn, subject=subject, message=message,
                attributes={"kind": KIND, "status": status})
    except (ClientError, BotoCoreError) as e:
        log.error("could not publish the alert %r: %s", subject, _one_line(e))


def _code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "")


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return (text if isinstance(error, ResponseError) else f"{type(error).__name__}: {text}")[:500]


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
