"""`dpguard incident`: list the incidents and record the response (acknowledged, party notified,
closed) in the incidents table the response functions write. Exit codes: 0 done, 2 usage, an
unknown incident or party, a refused close, or AWS unreachable."""
from __future__ import annotations

import argparse
import json
import os
import sys

from ..cli_common import UsageError

TABLE_ENV = "DPGUARD_INCIDENT_TABLE"


def aws_parent(table_help: str | None = None) -> argparse.ArgumentParser:
    """The options of every response command that calls AWS (and, with `table_help`, --table)."""
    aws = argparse.ArgumentParser(add_help=False)
    if table_help:
        aws.add_argument("--table", default=None, metavar="NAME", help=table_help)
    aws.add_argument("--region", metavar="REGION", help="its region (default: the session's)")
    aws.add_argument("--endpoint-url", metavar="URL", help="AWS endpoint (e.g. moto on loopback)")
    aws.add_argument("--profile", metavar="NAME", help="AWS profile of the calling credentials")
    return aws


def add_parser(commands) -> None:
    aws = aws_parent(f"the incidents table (default: ${TABLE_ENV})")

    incident = commands.add_parser(
        "incident", help="list incidents and record the response (clause 4)",
        description="The incidents the response functions recorded from GuardDuty, the CIS alarms, "
                    "Security Hub and exposed secrets, with each party's notification deadline.")
    verbs = incident.add_subparsers(dest="incident_command", metavar="ACTION", required=True)

    listing = verbs.add_parser("list", parents=[aws], help="open incidents, nearest deadline first",
                               description="Open incidents, nearest deadline first.")
    listing.add_argument("--all", action="store_true", help="closed incidents too")
    listing.add_argument("--format", choices=("table", "json"), default="table")
    listing.set_defaults(handler=list_incidents)

    ack = verbs.add_parser("ack", parents=[aws], help="acknowledge: you own the response",
                           description="Acknowledge an incident: its acknowledgement escalations stop.")
    ack.add_argument("id", metavar="ID")
    ack.add_argument("--by", required=True, metavar="NAME")
    ack.set_defaults(handler=acknowledge)

    notified = verbs.add_parser("notified", parents=[aws], help="record that a party was notified",
                                description="Record that a party was notified: its escalations stop.")
    notified.add_argument("id", metavar="ID")
    notified.add_argument("--party", required=True, metavar="NAME")
    notified.add_argument("--by", required=True, metavar="NAME")
    notified.set_defaults(handler=mark_notified)

    close = verbs.add_parser(
        "close", parents=[aws], help="close a resolved incident",
        description="Close an incident. Refused while a party's notification is unrecorded, unless "
                    "--force (the reason then says why no notice was due).")
    close.add_argument("id", metavar="ID")
    close.add_argument("--by", required=True, metavar="NAME")
    close.add_argument("--reason", required=True, metavar="TEXT")
    close.add_argument("--force", action="store_true",
                       help="close although some parties are not recorded as notified")
    close.set_defaults(handler=close_incident)


def _run(args: argparse.Namespace, action):
    """Run `action(table)`; every failure becomes one line (exit 2)."""
    import boto3
    import botocore.exceptions

    from .common import ResponseError

    command = f"dpguard incident {args.incident_command}"
    name = args.table or os.environ.get(TABLE_ENV)
    if not name:
        raise UsageError(f"{command}: which table? pass --table NAME or set {TABLE_ENV}")
    try:
        session = boto3.Session(profile_name=args.profile, region_name=args.region)
        table = session.resource("dynamodb", endpoint_url=args.endpoint_url).Table(name)
        return action(table)
    except ResponseError as e:
        raise UsageError(f"{command}: {e}") from None
    except botocore.exceptions.ClientError as e:
        error = e.response.get("Error", {})
        raise UsageError(f"{command}: table {name}: {error.get('Code', 'Error')}: "
                         f"{error.get('Message') or 'no message'}") from None
    except botocore.exceptions.BotoCoreError as e:
        raise UsageError(f"{command}: {e}") from None


def list_incidents(args: argparse.Namespace) -> int:
    from boto3.dynamodb.conditions import Attr

    from .common import OPEN, open_items
    from .incidents import plain

    def read(table) -> list[dict]:
        if args.all:
            pages, request = [], {"FilterExpression": Attr("kind").eq("incident")}
            while True:
                page = table.scan(**request)
                pages += page.get("Items", [])
                if "LastEvaluatedKey" not in page:
                    break
                request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
            # the open first, nearest deadline first; then the closed, latest detected first
            open_ = sorted((i for i in pages if i.get("tracking") == OPEN), key=lambda i: i.get("next_deadline", ""))
            closed = sorted((i for i in pages if i.get("tracking") != OPEN),
                            key=lambda i: i.get("detected_at", ""), reverse=True)
            return open_ + closed
        return open_items(table, "incident")

    incidents = _run(args, read)
    if args.format == "json":
        sys.stdout.write(json.dumps(plain(incidents), indent=2, sort_keys=True) + "\n")
    elif not incidents:
        print("no open incidents" if not args.all else "no incidents")
    else:
        _print_table(incidents)
    return 0


def _print_table(incidents: list[dict]) -> None:
    from .common import OPEN, ResponseError
    from .incidents import pending_deadlines

    rows = [("ID", "SEVERITY", "TYPE", "STATUS", "NEXT DEADLINE", "DUE", "TITLE")]
    for item in incidents:
        try:
            pending = pending_deadlines(item) if item.get("tracking") == OPEN else []
        except ResponseError:  # edited by hand: show it, do not fail the list
            pending = [("unreadable deadlines", "?", None)]
        status = ("closed" if item.get("tracking") != OPEN
                  else "acknowledged" if item.get("acknowledged_at") else "open")
        rows.append((item["id"], item.get("severity", ""), item.get("type", ""), status,
                     pending[0][1] if pending else "-", pending[0][0] if pending else "-",
                     str(item.get("title", ""))[:60]))
    print_columns(rows)


def print_columns(rows: list[tuple]) -> None:
    """Rows of text as aligned columns; the last column is left ragged."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1])


def acknowledge(args: argparse.Namespace) -> int:
    from .common import utcnow
    from .incidents import acknowledge as ack

    item = _run(args, lambda table: ack(table, args.id, args.by, utcnow()))
    print(f"{item['id']} acknowledged by {item['acknowledged_by']} at {item['acknowledged_at']}")
    _print_next(item)
    return 0


def mark_notified(args: argparse.Namespace) -> int:
    from .common import utcnow
    from .incidents import mark_notified as notified

    item = _run(args, lambda table: notified(table, args.id, args.party, args.by, utcnow()))
    party = item["parties"][args.party]
    print(f"{item['id']}: {args.party} notified (recorded by {party['notified_by']} at {party['notified_at']}; "
          f"deadline {party['deadline']})")
    _print_next(item)
    return 0


def close_incident(args: argparse.Namespace) -> int:
    from .common import utcnow
    from .incidents import close

    item = _run(args, lambda table: close(table, args.id, args.by, args.reason, utcnow(), force=args.force))
    print(f"{item['id']} closed by {item['closed_by']} at {item['closed_at']}: {item['close_reason']}")
    if item.get("closed_unnotified"):
        print(f"  not notified (forced): {', '.join(item['closed_unnotified'])}")
    return 0


def _print_next(item: dict) -> None:
    from .common import OPEN
    from .incidents import pending_deadlines

    if item.get("tracking") != OPEN:
        print("  the incident is closed")
        return
    pending = pending_deadlines(item)
    if pending:
        print(f"  next: {pending[0][0]} by {pending[0][1]}")
    else:
        print("  every deadline is met: close it when resolved")
