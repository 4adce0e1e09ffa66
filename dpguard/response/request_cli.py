"""`dpguard data-request`: what an operator and an auditor do with deletion and return requests
(clause 5) outside the function: list the open ones by deadline, and verify a written
confirmation against the signing key. Exit codes: 0 done (verify: the signature holds),
1 verify: it does not hold, 2 usage, an unreadable file or AWS unreachable."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from ..cli_common import UsageError
from .incident_cli import aws_parent, print_columns

TABLE_ENV = "DPGUARD_REQUEST_TABLE"
KEY_ENV = "DPGUARD_SIGNING_KEY"
CONFIRMATION_MAX_BYTES = 16 * 1024 * 1024  # a confirmation is a few kilobytes


def add_parser(commands) -> None:
    aws = aws_parent()

    requests = commands.add_parser(
        "data-request", help="deletion and return requests: open ones, verify a confirmation (clause 5)",
        description="Deletion and return requests are sent to the response stack's data-request "
                    "function (docs/response.md). Here: the open ones by deadline, and the check of a "
                    "written confirmation's signature.")
    verbs = requests.add_subparsers(dest="request_command", metavar="ACTION", required=True)

    listing = verbs.add_parser("list", parents=[aws_parent(f"the requests table (default: ${TABLE_ENV})")],
                               help="open requests, nearest deadline first",
                               description="Requests not yet completed, nearest deadline first.")
    listing.add_argument("--format", choices=("table", "json"), default="table")
    listing.set_defaults(handler=list_requests)

    verify = verbs.add_parser(
        "verify", parents=[aws], help="check a confirmation's signature with the signing key",
        description="Check that a confirmation (confirmations/<request id>.json of the records bucket) "
                    "was signed by the signing key and not changed since. Exit 0 it holds, 1 it does not.")
    verify.add_argument("file", metavar="FILE")
    verify.add_argument("--key-id", metavar="ARN",
                        help=f"the signing key you trust (default: ${KEY_ENV}); the key named inside the "
                             "file is only what the file claims")
    verify.set_defaults(handler=verify_confirmation)


def _session(args: argparse.Namespace):
    import boto3

    return boto3.Session(profile_name=args.profile, region_name=args.region)


def _aws_error(command: str, error: Exception):

    response = getattr(error, "response", None)
    if response:
        detail = f"{response.get('Error', {}).get('Code', 'Error')}: {response.get('Error', {}).get('Message', '')}"
    else:
        detail = str(error)
    return UsageError(f"{command}: {detail}")


def verify_confirmation(args: argparse.Namespace) -> int:
    import botocore.exceptions

    from ..engine.loader import InputError, read_capped
    from .common import ResponseError
    from .confirmation import verify

    command = "dpguard data-request verify"
    key = args.key_id or os.environ.get(KEY_ENV)
    if not key:
        raise UsageError(f"{command}: which key? pass --key-id ARN (the SigningKeyArn output) or set {KEY_ENV}")
    try:
        # capped, and refused unless a regular file: /dev/zero would never end, a FIFO never open
        signed = json.loads(read_capped(Path(args.file), CONFIRMATION_MAX_BYTES).decode("utf-8"))
    except InputError as e:
        raise UsageError(f"{command}: {e}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UsageError(f"{command}: {args.file} is not JSON ({e})") from None
    except (ValueError, RecursionError) as e:  # numbers too long, nesting too deep
        raise UsageError(f"{command}: {args.file} is not a confirmation ({' '.join(str(e).split())})") from None
    try:
        valid = verify(signed, _session(args).client("kms", endpoint_url=args.endpoint_url), key_id=key)
    except ResponseError as e:
        raise UsageError(f"{command}: {e}") from None
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
        raise _aws_error(command, e) from None
    document = signed.get("document") if isinstance(signed, dict) else None
    what = (f"request {document.get('request_id')} ({document.get('type')}, completed {document.get('completed_at')})"
            if isinstance(document, dict) else args.file)
    if valid:
        print(f"valid: {what} was signed by {key} and has not changed since")
        return 0
    print(f"NOT VALID: {what}: the signature does not match the document and key {key}", file=sys.stderr)
    return 1


def list_requests(args: argparse.Namespace) -> int:
    import botocore.exceptions

    from .common import open_items
    from .incidents import plain

    command = "dpguard data-request list"
    name = args.table or os.environ.get(TABLE_ENV)
    if not name:
        raise UsageError(f"{command}: which table? pass --table NAME (the RequestTableName output) or set {TABLE_ENV}")
    try:
        table = _session(args).resource("dynamodb", endpoint_url=args.endpoint_url).Table(name)
        requests = open_items(table, "data-request")
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
        raise _aws_error(command, e) from None
    if args.format == "json":
        sys.stdout.write(json.dumps(plain(requests), indent=2, sort_keys=True) + "\n")
        return 0
    if not requests:
        print("no open data requests")
        return 0
    rows = [("REQUEST", "TYPE", "STATUS", "RECEIVED", "DEADLINE", "ERROR")]
    rows += [(r["id"], r.get("request_type", ""), r.get("status", ""), r.get("received_at", ""),
              r.get("deadline", ""), str(r.get("error") or "")[:80]) for r in requests]
    print_columns(rows)
    return 0
