"""Clause 7: "Any secret that is exposed must be regenerated and the owner must be prompted to
immediately delete the exposed secret."

`handle_exposure` is the one procedure; the Lambda `handler` (a secret scanner or an EventBridge
rule invokes it) and `dpguard secret-exposed` both call it:

1. describe the secret; the exposed version is the one named, else the one holding AWSCURRENT;
2. regenerate: RotateSecret when the secret rotates (a rotation function, or a service such as RDS
   owns it), else a new random value written with PutSecretValue; a value it cannot regenerate
   safely (binary, JSON without a credential field) is left alone and reported, never guessed at;
3. revoke: once another version holds AWSCURRENT, strip every label from the exposed version so
   no client can fetch it by label (Secrets Manager then deprecates it);
4. record an incident (source "secret-exposure", one per secret version);
5. tell the owner (the secret's `owner` or `data-owner` tag) on the alerts topic to delete the
   exposed credential at its source: a new stored value does not revoke a key a provider issued.

It never writes a secret's value, old or new, into a result, record, message or log: values live
only in local variables between GetSecretValue and PutSecretValue. Text a reporter supplies
(reason, reported_by) is scrubbed of the exposed value, as scanners tend to quote what they found.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import time
from typing import Any, Callable

import botocore.exceptions

from .common import DEFAULT_WAIT_SECONDS, ResponseError, json_setting, publish, setting, utcnow
from .incidents import DEFAULT_ACK_HOURS, POLICY_PARTIES, open_incident, read_ack_hours, read_parties

SOURCE = "secret-exposure"
INCIDENT_TYPE = "credential-compromise"
SEVERITY = "high"
DEFAULT_PARTIES = POLICY_PARTIES  # the same parties as every other incident

# The fields of a JSON secret that hold the credential itself, as AWS's rotation templates and
# most SDK conventions name them. Every one present is regenerated; the rest (username, host,
# port, engine...) is kept, so clients that parse the secret keep working.
CREDENTIAL_FIELDS = ("password", "secret", "token", "api_key", "apiKey", "key")
NEW_VALUE_LENGTH = 40
# Left out of new values: quotes, backslash and space break JSON, shell and config quoting;
# / @ : ? # & % = + ; , [ ] { } break URLs and connection strings (user:pass@host/db?x=y).
EXCLUDED_CHARACTERS = "\"'`\\ /@:?#&%=+;,[]{}<>|^~$"

CURRENT, PENDING = "AWSCURRENT", "AWSPENDING"
# What a step can fail with; each such failure is reported in the result, never raised past it.
STEP_ERRORS = (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError, ResponseError)

# Outcomes of the regeneration, as the result, the CLI and the message say them.
REGENERATED = "regenerated and revoked"
SUPERSEDED = "already superseded, now revoked"
ALREADY_HANDLED = "already handled"
ROTATION_PENDING = "rotation started, revocation pending"
CANNOT_REGENERATE = "cannot regenerate: turn on rotation or replace it by hand"
FAILED = "regeneration failed: fix the cause and report the exposure again"

DELETE_AT_SOURCE = ("Delete or revoke the exposed credential at its source immediately (the database "
                    "user's password, the provider's API key, the token's issuer): a new value in "
                    "Secrets Manager does not invalidate a credential another system issued or checks.")


@dataclasses.dataclass
class Step:
    name: str  # regenerate, revoke, record, notify
    status: str  # done, skipped, pending, failed
    detail: str


@dataclasses.dataclass
class ExposureResult:
    """What was done about one exposure; never holds a secret value."""
    secret_arn: str
    secret_name: str
    exposed_version: str
    outcome: str
    regenerated_by: str | None = None  # RotateSecret or PutSecretValue
    owner: str | None = None
    owner_email: str | None = None
    new_version: str | None = None
    incident_id: str | None = None
    message_id: str | None = None
    steps: list[Step] = dataclasses.field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Regenerated (or already), revoked, recorded and the owner told: nothing left to us."""
        return (self.outcome in (REGENERATED, SUPERSEDED, ALREADY_HANDLED)
                and not any(s.status in ("failed", "pending") for s in self.steps))

    def step(self, name: str, status: str, detail: str) -> None:
        self.steps.append(Step(name, status, detail))

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "complete": self.complete}


def handle_exposure(secretsmanager, table, sns, topic_arn: str, *, secret_id: str, version_id: str | None = None,
                    reason: str, reported_by: str, now: dt.datetime, wait_seconds: float,
                    parties: list[dict], ack_hours: dict | None, sleep: Callable[[float], None] = time.sleep
                    ) -> ExposureResult:
    """Regenerate, revoke, record and notify for one exposed secret version (see the module doc).
    Raises ResponseError when the secret or version is unknown or cannot be read; every later
    failure is a failed step in the result, and the owner is still told."""
    # Checked before anything changes: a bad setting found after the rotation would lose the record.
    parties, ack_hours = read_parties(parties), read_ack_hours(ack_hours)
    secret = describe(secretsmanager, secret_id)
    arn, name = secret["ARN"], secret["Name"]
    if secret.get("DeletedDate"):
        raise ResponseError(f"secret {name} is scheduled for deletion: restore it (RestoreSecret) to regenerate "
                            "it, or revoke the exposed credential at its source by hand")
    labels = version_labels(secretsmanager, arn)
    exposed = version_id or holder(labels, CURRENT)
    if not exposed:
        raise ResponseError(f"secret {name} has no version labelled {CURRENT}: name the exposed one (--version-id)")
    if exposed not in labels:
        raise ResponseError(f"secret {name} has no version {exposed} (ListSecretVersionIds)")
    owner, owner_email = owner_of(secret)
    result = ExposureResult(arn, name, exposed, outcome=FAILED, owner=owner, owner_email=owner_email)
    value, read_error = read_value(secretsmanager, arn, exposed)
    reason, reported_by = redact(reason, value), redact(reported_by, value)

    try:
        labels = regenerate(secretsmanager, secret, exposed, labels, value, read_error, result, wait_seconds, sleep)
    except STEP_ERRORS as e:
        result.outcome = FAILED
        result.step("regenerate", "failed", one_line(e))
    if result.outcome in (REGENERATED, SUPERSEDED):
        try:
            revoke(secretsmanager, arn, exposed, labels, result)
        except STEP_ERRORS as e:
            result.step("revoke", "failed", one_line(e))
    elif result.outcome == ALREADY_HANDLED:
        result.step("revoke", "skipped", "the exposed version already has no labels")
    else:
        kept = ", ".join(labels.get(exposed) or ["its labels"])
        result.step("revoke", "pending", f"the exposed version keeps {kept} until another version holds {CURRENT}")

    created = record(table, sns, topic_arn, secret, exposed, reason, reported_by, now, parties, ack_hours, result)
    if result.outcome == ALREADY_HANDLED and created is False:
        # A repeated report: the owner was told when the incident was opened.
        result.step("notify", "skipped", "the owner was told when the incident was opened")
    else:
        notify(sns, topic_arn, reason, reported_by, result)
    return result


# --- reading the secret ---------------------------------------------------------------------------

def describe(secretsmanager, secret_id: str) -> dict:
    try:
        return secretsmanager.describe_secret(SecretId=secret_id)
    except botocore.exceptions.ClientError as e:
        if e.response["Error"]["Code"] == "ResourceNotFoundException":
            region = secretsmanager.meta.region_name
            raise ResponseError(f"no secret {secret_id} in {region}: check the name or ARN and the region") from None
        raise ResponseError(f"cannot describe secret {secret_id}: {one_line(e)}") from None
    except botocore.exceptions.BotoCoreError as e:
        raise ResponseError(f"cannot describe secret {secret_id}: {one_line(e)}") from None


def version_labels(secretsmanager, arn: str) -> dict[str, list[str]]:
    """Every version, deprecated (unlabelled) ones included, with its staging labels."""
    labels: dict[str, list[str]] = {}
    kwargs: dict[str, Any] = {"SecretId": arn, "IncludeDeprecated": True}
    try:
        while True:
            page = secretsmanager.list_secret_version_ids(**kwargs)
            for version in page.get("Versions", []):
                labels[version["VersionId"]] = list(version.get("VersionStages") or [])
            if not page.get("NextToken"):
                return labels
            kwargs["NextToken"] = page["NextToken"]
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        raise ResponseError(f"cannot list the versions of secret {arn}: {one_line(e)}") from None


def holder(labels: dict[str, list[str]], label: str) -> str | None:
    return next((version for version, stages in labels.items() if label in stages), None)


def read_value(secretsmanager, arn: str, version: str) -> tuple[dict | None, str | None]:
    """The exposed version's value (to regenerate a JSON secret's fields, and to scrub it from
    reported text), or why it could not be read. A rotating secret does not need it."""
    try:
        return secretsmanager.get_secret_value(SecretId=arn, VersionId=version), None
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        return None, one_line(e)


def rotates(secret: dict) -> bool:
    """Rotation is configured (a rotation function), or a service manages the secret (RDS master
    passwords: managed rotation, and PutSecretValue would desynchronise it from the database)."""
    return bool(secret.get("RotationEnabled") or secret.get("RotationLambdaARN") or secret.get("OwningService"))


def owner_of(secret: dict) -> tuple[str | None, str | None]:
    """The `owner` tag, else `data-owner` (the policy's data-store tag); keys in any case."""
    tags = {t["Key"].lower(): t["Value"].strip() for t in secret.get("Tags") or [] if t.get("Value", "").strip()}
    return tags.get("owner") or tags.get("data-owner"), tags.get("owner-email")


# --- regenerating ---------------------------------------------------------------------------------

def regenerate(secretsmanager, secret: dict, exposed: str, labels: dict[str, list[str]], value: dict | None,
               read_error: str | None, result: ExposureResult, wait_seconds: float,
               sleep: Callable[[float], None]) -> dict[str, list[str]]:
    """Sets the result's outcome and regenerate step; returns the versions' labels afterwards."""
    if not labels[exposed]:
        result.outcome = ALREADY_HANDLED
        result.step("regenerate", "skipped", "the exposed version is no longer current and has no labels")
        return labels
    if CURRENT not in labels[exposed]:
        result.outcome = SUPERSEDED
        result.step("regenerate", "skipped", f"another version ({holder(labels, CURRENT)}) already holds {CURRENT}")
        return labels
    if rotates(secret):
        return rotate(secretsmanager, secret["ARN"], exposed, labels, result, wait_seconds, sleep)
    return replace_value(secretsmanager, secret["ARN"], exposed, value, read_error, result)


def rotate(secretsmanager, arn: str, exposed: str, labels: dict[str, list[str]], result: ExposureResult,
           wait_seconds: float, sleep: Callable[[float], None]) -> dict[str, list[str]]:
    """Start a rotation (or join the one already under way) and wait, bounded, for a new version
    to hold AWSCURRENT. Until it does, the exposed version stays current: say so, claim nothing."""
    pending = holder(labels, PENDING)
    if pending and pending != exposed:
        # Secrets Manager refuses a second RotateSecret while one is under way: wait for that one.
        started = f"a rotation was already under way (version {pending})"
    else:
        pending = secretsmanager.rotate_secret(SecretId=arn, RotateImmediately=True).get("VersionId")
        started = f"RotateSecret started version {pending}"
    deadline = time.monotonic() + max(wait_seconds, 0)
    while True:
        labels = version_labels(secretsmanager, arn)
        current = holder(labels, CURRENT)
        if current and current != exposed:
            result.outcome, result.new_version, result.regenerated_by = REGENERATED, current, "RotateSecret"
            result.step("regenerate", "done", f"{started}; version {current} now holds {CURRENT}")
            return labels
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            result.outcome, result.new_version, result.regenerated_by = ROTATION_PENDING, pending, "RotateSecret"
            result.step("regenerate", "pending", f"{started}; not finished after {wait_seconds:g} s: check the "
                                                 "rotation function's logs, then report the exposure again to revoke")
            return labels
        sleep(min(2.0, remaining))


def replace_value(secretsmanager, arn: str, exposed: str, value: dict | None, read_error: str | None,
                  result: ExposureResult) -> dict[str, list[str]]:
    """Write a new random value with PutSecretValue (which moves AWSCURRENT to it and leaves the
    exposed version AWSPREVIOUS), or say why this secret cannot be regenerated safely."""
    if value is None:
        result.outcome = FAILED
        result.step("regenerate", "failed", f"cannot read the exposed version: {read_error}")
        return version_labels(secretsmanager, arn)
    new_text, what = regenerated(secretsmanager, value)
    if new_text is None:
        result.outcome = CANNOT_REGENERATE
        result.step("regenerate", "failed", f"{what}: not changed")
        return version_labels(secretsmanager, arn)
    new_version = secretsmanager.put_secret_value(SecretId=arn, SecretString=new_text)["VersionId"]
    labels = version_labels(secretsmanager, arn)
    if CURRENT not in labels.get(new_version, []):  # fail closed: revoke only behind a current value
        result.outcome = FAILED
        result.step("regenerate", "failed", f"PutSecretValue wrote version {new_version}, which does not hold "
                                            f"{CURRENT}")
        return labels
    result.outcome, result.new_version, result.regenerated_by = REGENERATED, new_version, "PutSecretValue"
    result.step("regenerate", "done", f"PutSecretValue wrote {what} as version {new_version} ({CURRENT}); "
                                      "set it where the credential is checked")
    return labels


def regenerated(secretsmanager, value: dict) -> tuple[str | None, str]:
    """(the new SecretString, what was regenerated) or (None, why not)."""
    if "SecretString" not in value:
        return None, "the secret is binary"
    text = value["SecretString"]
    if not text.lstrip().startswith(("{", "[")):
        return new_password(secretsmanager), "a new random value"
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return None, "the secret looks like JSON but does not parse"
    if not isinstance(data, dict):
        return None, "the secret is JSON but not an object"
    fields = [f for f in CREDENTIAL_FIELDS if f in data]
    if not fields:
        return None, f"the secret is JSON with no credential field ({', '.join(CREDENTIAL_FIELDS)})"
    if any(not isinstance(data[f], str) for f in fields):
        return None, f"the credential field {next(f for f in fields if not isinstance(data[f], str))} is not a string"
    for f in fields:
        data[f] = new_password(secretsmanager)
    return json.dumps(data), f"a new random {', '.join(fields)} (other fields kept)"


def new_password(secretsmanager) -> str:
    return secretsmanager.get_random_password(PasswordLength=NEW_VALUE_LENGTH, ExcludeCharacters=EXCLUDED_CHARACTERS,
                                              RequireEachIncludedType=True)["RandomPassword"]


def revoke(secretsmanager, arn: str, exposed: str, labels: dict[str, list[str]], result: ExposureResult) -> None:
    """Strip every label from the exposed version (AWSCURRENT is already elsewhere, checked)."""
    removed = list(labels[exposed])
    for stage in removed:
        secretsmanager.update_secret_version_stage(SecretId=arn, VersionStage=stage, RemoveFromVersionId=exposed)
    left = version_labels(secretsmanager, arn).get(exposed)
    if left:
        result.step("revoke", "failed", f"the exposed version still has {', '.join(left)}")
    else:
        result.step("revoke", "done", f"removed {', '.join(removed) or 'no labels'} from version {exposed}: no "
                                      "client can fetch it by label")


# --- recording and telling the owner --------------------------------------------------------------

def record(table, sns, topic_arn: str, secret: dict, exposed: str, reason: str, reported_by: str, now: dt.datetime,
           parties: list[dict], ack_hours: dict[str, Any], result: ExposureResult) -> bool | None:
    """Open (or find) the incident of this exposure; True when it is new, None when it failed."""
    arn = secret["ARN"]
    _, _, _, region, account, *_ = arn.split(":")
    try:
        incident, created = open_incident(
            table, sns, topic_arn, source=SOURCE, source_id=f"{arn}:{exposed}", type=INCIDENT_TYPE,
            severity=SEVERITY, title=f"Secret {secret['Name']} exposed",
            description=(f"Version {exposed} of secret {secret['Name']} was reported exposed by {reported_by}: "
                         f"{reason}. Outcome: {result.outcome}."),
            resource=arn, account=account, region=region, detected_at=now, parties=parties,
            ack_hours=ack_hours, now=now)
    except STEP_ERRORS as e:  # the owner must still be told; the message shows this step failed
        result.step("record", "failed", f"could not record the incident: {one_line(e)}")
        return None
    result.incident_id = incident.get("id")
    result.step("record", "done", f"incident {result.incident_id} ({'opened' if created else 'already open'})")
    return created


def notify(sns, topic_arn: str, reason: str, reported_by: str, result: ExposureResult) -> None:
    todo = [DELETE_AT_SOURCE]
    if result.regenerated_by == "PutSecretValue":
        # A random value only the secret knows: until the checking side has it too, clients fail.
        todo.append(f"Make the new value (version {result.new_version}) the credential where it is checked (e.g. "
                    "the database user's password); for a key a provider issues, create a new key there and put "
                    "it in the secret.")
    if result.outcome == ROTATION_PENDING:
        todo.append("The rotation has not finished: the exposed version is still current. Check the rotation "
                    "function, then report the exposure again to revoke it.")
    if result.outcome in (CANNOT_REGENERATE, FAILED):
        todo.append("The secret was NOT regenerated: turn on rotation or put a new value by hand, then report "
                    "the exposure again to revoke the exposed version.")
    message = {
        "kind": SOURCE, "secret": result.secret_name, "secret_arn": result.secret_arn,
        "exposed_version": result.exposed_version, "outcome": result.outcome, "new_version": result.new_version,
        "incident": result.incident_id, "owner": result.owner, "owner_email": result.owner_email,
        "reason": reason, "reported_by": reported_by, "action_required": todo,
        "steps": [dataclasses.asdict(s) for s in result.steps],
    }
    if not result.owner:
        message["warning"] = "no owner tag: the security team must find the owner"
    subject = (f"Secret {result.secret_name} was exposed: delete the exposed credential now"
               if result.owner else f"Secret {result.secret_name} was exposed (no owner tag)")
    try:
        result.message_id = publish(sns, topic_arn, subject=subject, message=message,
                                    attributes={"kind": SOURCE, "severity": SEVERITY, "owner": result.owner or ""})
    except STEP_ERRORS as e:
        result.step("notify", "failed", f"could not publish to {topic_arn}: {one_line(e)}")
        return
    result.step("notify", "done", f"told {result.owner or 'the security team (no owner tag)'} on the alerts topic "
                                  f"(message {result.message_id})")


def redact(text: str, value: dict | None) -> str:
    """`text` without the exposed value or any of its credential fields."""
    found = []
    if value and isinstance(value.get("SecretString"), str):
        found.append(value["SecretString"])
        try:
            data = json.loads(value["SecretString"])
        except json.JSONDecodeError:
            data = None
        if isinstance(data, dict):
            found += [data[f] for f in CREDENTIAL_FIELDS if isinstance(data.get(f), str)]
    # longest first, so a field inside the whole value is not half-replaced; very short values
    # would redact ordinary words
    for s in sorted((s for s in found if len(s) >= 4), key=len, reverse=True):
        text = text.replace(s, "[redacted]")
    return text


def one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


# --- the Lambda function --------------------------------------------------------------------------

def parse_event(event: Any) -> dict:
    """{"secret_id", "version_id"?, "reason", "reported_by"}, directly or as an EventBridge event's
    detail (a scanner's PutEvents)."""
    if isinstance(event, dict) and isinstance(event.get("detail"), dict):
        event = event["detail"]
    if not isinstance(event, dict):
        raise ResponseError("the event must be a JSON object with secret_id, reason and reported_by")
    request = {}
    for key in ("secret_id", "reason", "reported_by"):
        if not isinstance(event.get(key), str) or not event[key].strip():
            raise ResponseError(f"the event has no {key} (a non-empty string)")
        request[key] = event[key].strip()
    version = event.get("version_id")
    if version is not None and (not isinstance(version, str) or not version.strip()):
        raise ResponseError("version_id must be a non-empty string when given")
    request["version_id"] = version.strip() if version else None
    return request


def handler(event, context):
    """Returns the result, or {"error": "..."} for an event or setting it cannot act on: raising
    would make an asynchronous invocation retry what fails the same way."""
    import boto3

    try:
        request = parse_event(event)
        table = boto3.resource("dynamodb").Table(setting("INCIDENT_TABLE"))
        topic_arn = setting("ALERTS_TOPIC_ARN")
        parties = json_setting("PARTIES", DEFAULT_PARTIES)
        ack_hours = json_setting("ACK_HOURS", DEFAULT_ACK_HOURS)
        try:
            wait_seconds = float(os.environ.get("ROTATION_WAIT_SECONDS") or DEFAULT_WAIT_SECONDS)
        except ValueError:
            raise ResponseError("ROTATION_WAIT_SECONDS is not a number") from None
        result = handle_exposure(boto3.client("secretsmanager"), table, boto3.client("sns"), topic_arn,
                                 now=utcnow(), wait_seconds=wait_seconds, parties=parties, ack_hours=ack_hours,
                                 **request).to_dict()
    except ResponseError as e:
        result = {"error": str(e)}
        # A report nobody acts on leaves an exposed secret valid: say so where people look.
        topic_arn = os.environ.get("ALERTS_TOPIC_ARN")
        if topic_arn:
            publish(boto3.client("sns"), topic_arn, subject="An exposed-secret report could not be acted on",
                    message={"error": str(e), "action": "regenerate the secret by hand or report it again: "
                                                        "dpguard secret-exposed SECRET --reason ..."},
                    attributes={"kind": "error", "severity": "high"})
    print(json.dumps(result, default=str))  # the function's log: never holds a value
    return result
