"""Chase the deadlines (clauses 4 and 5): the scheduled function, every 15 minutes.

An incident's acknowledgement (until someone acknowledges it), each party's notification (until
it is recorded) and a data request's answer (until it is completed) are escalated to the alerts
topic when their deadline is ESCALATE_BEFORE_HOURS away (default 24, 6 and 1 hours), and once
more when it has passed. Acknowledging an incident stops only its acknowledgement escalations:
the parties must still be told, so their reminders go on until each notice is recorded.

Each escalation is sent once: before publishing, a run claims the key (what, deadline, stage)
with a conditional update of the item's `escalated` set, so two overlapping runs cannot both
send it; the sent escalation is then appended to the item's `escalations` list. A run that finds
a deadline already past several thresholds sends only the nearest (a 24-hour warning 2 hours
before is noise)."""
from __future__ import annotations

import datetime as dt
import json
from typing import Any, Iterator

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from .common import OPEN, OPEN_INDEX, ResponseError, iso, json_setting, parse_iso, publish, setting, utcnow
from .incidents import pending_deadlines

DEFAULT_BEFORE_HOURS = [24, 6, 1]


def read_before_hours(value: Any) -> list[float]:
    if (not isinstance(value, list) or not value
            or not all(isinstance(h, (int, float)) and not isinstance(h, bool) and 0 < h <= 24 * 366 for h in value)):
        raise ResponseError("ESCALATE_BEFORE_HOURS must be a JSON list of hours above 0, e.g. [24, 6, 1] "
                            f"(got {value!r})")
    return sorted(set(value))


def stage(deadline: dt.datetime, now: dt.datetime, before_hours: list[float]) -> str | None:
    """"overdue", the nearest threshold crossed ("6h"), or None when the deadline is further off."""
    left = (deadline - now).total_seconds() / 3600
    if left <= 0:
        return "overdue"
    crossed = [h for h in before_hours if left <= h]
    return f"{min(crossed):g}h" if crossed else None


def escalate(incidents_table, requests_table, sns, topic_arn: str, *, before_hours: list[float],
             now: dt.datetime) -> dict:
    """Escalate every open incident and data request whose deadline is near or past. Returns what
    was escalated, how many items were checked and the items that could not be read."""
    before_hours = read_before_hours(before_hours)
    horizon = now + dt.timedelta(hours=max(before_hours))
    summary: dict[str, Any] = {"escalated": [], "checked": 0, "errors": []}
    for table, tracker in ((incidents_table, "incident"), (requests_table, "data-request")):
        for item_id in _open_before(table, horizon):
            # the index is eventually consistent and may project only keys: read the item itself
            item = table.get_item(Key={"id": item_id}, ConsistentRead=True).get("Item")
            if not item or item.get("tracking") != OPEN:
                continue
            summary["checked"] += 1
            try:
                due = _incident_due(item) if tracker == "incident" else _request_due(item)
                stages = [(what, party, text, stage(parse_iso(text), now, before_hours)) for what, party, text in due]
            except (ResponseError, ValueError, TypeError, KeyError, AttributeError) as e:
                error = " ".join(f"{type(e).__name__}: {e}".split())[:300]
                summary["errors"].append({"id": item_id, "error": error})
                _report_unreadable(table, sns, topic_arn, item, tracker, error, now)
                continue
            for what, party, deadline, current in stages:
                if current and _escalate_one(table, sns, topic_arn, item, tracker, what, party, deadline, current, now):
                    summary["escalated"].append({"tracker": tracker, "id": item_id, "due": what, "stage": current})
    return summary


def _open_before(table, horizon: dt.datetime) -> Iterator[str]:
    """Ids of the open items whose next deadline is at or before `horizon`, or unreadable (a
    deadline nobody can read must be reported, not skipped), every page."""
    query = {"IndexName": OPEN_INDEX, "KeyConditionExpression": Key("tracking").eq(OPEN)}
    while True:
        page = table.query(**query)
        for key in page.get("Items", []):
            if not _later_than(key.get("next_deadline"), horizon):
                yield key["id"]
        if "LastEvaluatedKey" not in page:
            return
        query["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _later_than(text: Any, horizon: dt.datetime) -> bool:
    try:
        return parse_iso(text) > horizon
    except (TypeError, ValueError, AttributeError):
        return False


def _incident_due(item: dict) -> list[tuple[str, str | None, str]]:
    if item.get("kind") != "incident":
        raise ResponseError(f"kind is {item.get('kind')!r}, not incident")
    return [(what, party, deadline) for what, deadline, party in pending_deadlines(item)]


def _request_due(item: dict) -> list[tuple[str, str | None, str]]:
    if item.get("status") == "completed":
        return []
    deadline = item.get("deadline") or item.get("next_deadline")
    if not isinstance(deadline, str):
        raise ResponseError("the data request has no deadline")
    return [(f"answer the {item.get('request_type', 'data')} request", None, deadline)]


def _escalate_one(table, sns, topic_arn: str, item: dict, tracker: str, what: str, party: str | None,
                  deadline: str, current: str, now: dt.datetime) -> bool:
    key = f"{what}|{deadline}|{current}"
    if not _claim(table, item["id"], key):
        return False  # sent before, by this run's predecessor or a run beside it
    hours_left = round((parse_iso(deadline) - now).total_seconds() / 3600, 1)
    if tracker == "incident":
        message, severity = _incident_message(item, what, party, deadline, hours_left, current), item["severity"]
    else:
        message, severity = _request_message(item, what, deadline, hours_left, current), (
            "critical" if current == "overdue" else "high")
    when = f"was due {deadline}" if current == "overdue" else f"due in {hours_left:g} h ({deadline})"
    subject = f"{'OVERDUE' if current == 'overdue' else 'Escalation'}: {item['id']} {what} {when}"
    try:
        message_id = publish(sns, topic_arn, subject=subject, message=message,
                             attributes={"kind": "escalation", "severity": severity, "stage": current,
                                         "tracker": tracker})
    except Exception:
        _unclaim(table, item["id"], key)  # the next run tries again rather than never
        raise
    table.update_item(
        Key={"id": item["id"]},
        UpdateExpression="SET escalations = list_append(if_not_exists(escalations, :none), :one)",
        ExpressionAttributeValues={":none": [], ":one": [{"due": what, "deadline": deadline, "stage": current,
                                                          "at": iso(now), "message_id": message_id}]})
    return True


def _claim(table, item_id: str, key: str) -> bool:
    try:
        table.update_item(
            Key={"id": item_id}, UpdateExpression="ADD escalated :keys",
            ConditionExpression="#tracking = :open AND NOT contains(escalated, :key)",
            ExpressionAttributeNames={"#tracking": "tracking"},
            ExpressionAttributeValues={":keys": {key}, ":key": key, ":open": OPEN})
        return True
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            return False
        raise


def _unclaim(table, item_id: str, key: str) -> None:
    try:
        table.update_item(Key={"id": item_id}, UpdateExpression="DELETE escalated :keys",
                          ExpressionAttributeValues={":keys": {key}})
    except ClientError:
        pass  # the publish error is the one to report


def _incident_message(item: dict, what: str, party: str | None, deadline: str, hours_left: float,
                      current: str) -> dict:
    iid = item["id"]
    if party is None:
        step = f"acknowledge: dpguard incident ack {iid} --by NAME"
    else:
        step = f"notify {party}, then record it: dpguard incident notified {iid} --party {party} --by NAME"
    if current == "overdue":
        step = f"the deadline has passed: {step}, and record why it was late"
    return {
        "kind": "escalation", "tracker": "incident", "id": iid, "title": item.get("title"), "type": item.get("type"),
        "severity": item.get("severity"), "due": what, "party": party, "deadline": deadline,
        "hours_left": hours_left, "stage": current, "detected_at": item.get("detected_at"),
        "acknowledged_by": item.get("acknowledged_by"), "next_step": step,
    }


def _request_message(item: dict, what: str, deadline: str, hours_left: float, current: str) -> dict:
    step = (f"complete the {item.get('request_type', 'data')} request {item['id']} of user {item.get('user_id')} "
            "and send the written confirmation (clause 5)")
    return {
        "kind": "escalation", "tracker": "data-request", "id": item["id"], "user_id": item.get("user_id"),
        "request_type": item.get("request_type"), "status": item.get("status"), "received_at": item.get("received_at"),
        "due": what, "deadline": deadline, "hours_left": hours_left, "stage": current,
        "next_step": f"the deadline has passed: {step} now" if current == "overdue" else step,
    }


def _report_unreadable(table, sns, topic_arn: str, item: dict, tracker: str, error: str, now: dt.datetime) -> None:
    """An open item whose deadline cannot be read is a deadline nobody chases: say so, once."""
    if _claim(table, item["id"], f"unreadable|{item.get('next_deadline')}"):
        publish(sns, topic_arn, subject=f"cannot chase the deadline of {tracker} {item['id']}",
                message={"kind": "error", "tracker": tracker, "id": item["id"], "error": error, "at": iso(now),
                         "next_step": "fix the item in its table: its deadline is not escalated until then"},
                attributes={"kind": "error", "tracker": tracker})


def handler(event: Any, context: Any) -> dict:
    """The Lambda entry point (an EventBridge schedule)."""
    import boto3

    dynamodb = boto3.resource("dynamodb")
    summary = escalate(
        dynamodb.Table(setting("INCIDENT_TABLE")), dynamodb.Table(setting("REQUEST_TABLE")), boto3.client("sns"),
        setting("ALERTS_TOPIC_ARN"), before_hours=json_setting("ESCALATE_BEFORE_HOURS", DEFAULT_BEFORE_HOURS),
        now=utcnow())
    print(json.dumps(summary))
    return summary
