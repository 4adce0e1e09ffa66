"""What the response functions share: time, settings from the environment, the alerts topic and
the trackers (the DynamoDB tables of incidents and data requests)."""
from __future__ import annotations

import datetime as dt
import json
import os
from typing import Any, Callable

Clock = Callable[[], dt.datetime]

# How long `secret-exposed` waits for a rotation to finish (here, not in secrets.py: the CLI's
# help text needs it, and `dpguard` must not import boto3 to build its parser).
DEFAULT_WAIT_SECONDS = 60

# Both trackers have the key `id` and a sparse index of what is still open, by its next deadline:
# an item carries `tracking` = "open" until it is closed, and `next_deadline` (ISO-8601 UTC).
OPEN_INDEX = "open-by-deadline"
OPEN = "open"


class ResponseError(Exception):
    """A request or event the function cannot act on: one line, recorded and answered, never
    retried (a retry would fail the same way)."""


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def iso(t: dt.datetime) -> str:
    """ISO-8601 in UTC to the second, e.g. 2026-11-28T02:19:16Z: sorts as text in DynamoDB."""
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> dt.datetime:
    """The times AWS events carry (2026-11-28T02:19:16Z, with or without fractions or an offset)."""
    t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)


def setting(name: str, environ: dict | None = None) -> str:
    """A required environment variable of the function (the stack sets them all)."""
    value = (os.environ if environ is None else environ).get(name)
    if not value:
        raise ResponseError(f"the function's environment has no {name}: deploy it with the dpguard stack")
    return value


def json_setting(name: str, default: Any = None, environ: dict | None = None) -> Any:
    raw = (os.environ if environ is None else environ).get(name)
    if not raw:
        if default is None:
            raise ResponseError(f"the function's environment has no {name}: deploy it with the dpguard stack")
        return default
    try:
        return json.loads(raw)
    except json.JSONDecodeError as e:
        raise ResponseError(f"{name} is not JSON ({e.msg} at {e.pos})") from None


def publish(sns, topic_arn: str, *, subject: str, message: dict, attributes: dict[str, str]) -> str:
    """Publish a structured message (JSON) to the alerts topic. `attributes` become SNS message
    attributes (e.g. kind, severity, owner) so subscriptions can filter on them."""
    subject = "".join(c if 32 <= ord(c) < 127 else "?" for c in subject)[:100]  # SNS: ASCII, 100
    response = sns.publish(
        TopicArn=topic_arn, Subject=subject, Message=json.dumps(message, indent=2, sort_keys=True, default=str),
        MessageAttributes={k: {"DataType": "String", "StringValue": str(v)} for k, v in attributes.items() if v})
    return response["MessageId"]


def open_items(table, kind: str) -> list[dict]:
    """The open items of a tracker of this `kind` ("incident", "data-request"), nearest deadline
    first: every page of the open index, each item read whole (the index may project only keys)."""
    from boto3.dynamodb.conditions import Key

    keys, query = [], {"IndexName": OPEN_INDEX, "KeyConditionExpression": Key("tracking").eq(OPEN)}
    while True:
        page = table.query(**query)
        keys += page.get("Items", [])
        if "LastEvaluatedKey" not in page:
            break
        query["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return [item for k in keys if (item := table.get_item(Key={"id": k["id"]}).get("Item"))
            and item.get("kind") == kind]
