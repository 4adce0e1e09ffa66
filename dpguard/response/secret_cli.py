"""`dpguard secret-exposed SECRET`: clause 7 from an operator's machine, the same procedure as the
Lambda function (dpguard.response.secrets.handle_exposure). Exit codes: 0 regenerated, revoked,
recorded and the owner told; 2 usage, unknown secret or AWS error; 3 incomplete (rotation still
pending, cannot regenerate, or recording or notifying failed)."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from ..cli_common import EXIT_CLEAN, EXIT_INCOMPLETE, UsageError

COMMAND = "dpguard secret-exposed"


def add_parser(commands) -> None:
    from .common import DEFAULT_WAIT_SECONDS

    parser = commands.add_parser(
        "secret-exposed", help="regenerate an exposed secret, revoke the exposed version, tell its owner",
        description="Clause 7: regenerate an exposed Secrets Manager secret (RotateSecret if it rotates, else a "
                    "new random value), remove every label from the exposed version, record an incident and "
                    "tell the owner (the secret's owner or data-owner tag) on the alerts topic to delete the "
                    "exposed credential at its source. No secret value is ever printed. Exit codes: 0 done, "
                    "2 usage, unknown secret or AWS error, 3 incomplete (rotation pending, cannot regenerate, "
                    "or recording or notifying failed).")
    parser.add_argument("secret", metavar="SECRET", help="the secret's name or ARN")
    parser.add_argument("--version-id", metavar="ID", help="the exposed version (default: the one labelled AWSCURRENT)")
    parser.add_argument("--reason", required=True, help="where and how it was exposed (recorded and sent to the owner)")
    parser.add_argument("--reported-by", metavar="WHO",
                        help="who reports it (default: your AWS identity, else $USER)")
    parser.add_argument("--incident-table", default=os.environ.get("DPGUARD_INCIDENT_TABLE"), metavar="NAME",
                        help="the incidents DynamoDB table (default: $DPGUARD_INCIDENT_TABLE)")
    parser.add_argument("--alerts-topic", default=os.environ.get("DPGUARD_ALERTS_TOPIC"), metavar="ARN",
                        help="the alerts SNS topic the owner is told on (default: $DPGUARD_ALERTS_TOPIC)")
    parser.add_argument("--parties-file", metavar="FILE",
                        help='JSON: the parties to notify and their deadlines, [{"name": "customer", "hours": 72}] '
                             '(the default), or {"parties": [...], "ack_hours": {"high": 4}}')
    parser.add_argument("--wait", type=seconds, default=DEFAULT_WAIT_SECONDS, metavar="SECONDS",
                        help=f"how long to wait for a rotation to finish (default {DEFAULT_WAIT_SECONDS})")
    parser.add_argument("--region", metavar="REGION", help="the secret's region (default: the session's)")
    parser.add_argument("--endpoint-url", metavar="URL", help="AWS endpoint (e.g. moto on loopback)")
    parser.add_argument("--profile", metavar="NAME", help="AWS profile of the calling credentials")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.set_defaults(handler=run)


def seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 900:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds from 0 to 900")
    return value


def run(args: argparse.Namespace) -> int:
    import boto3
    import botocore.exceptions

    from .common import ResponseError, utcnow
    from .secrets import handle_exposure

    if not args.incident_table:
        raise UsageError(f"{COMMAND}: no incident table: pass --incident-table or set DPGUARD_INCIDENT_TABLE")
    if not args.alerts_topic:
        raise UsageError(f"{COMMAND}: no alerts topic, so the owner cannot be told: pass --alerts-topic or set "
                         "DPGUARD_ALERTS_TOPIC")
    if not args.reason.strip():
        raise UsageError(f"{COMMAND}: --reason is empty: say where and how the secret was exposed")
    parties, ack_hours = load_parties(args.parties_file)
    try:
        session = boto3.Session(profile_name=args.profile, region_name=args.region)
        if not session.region_name:
            raise UsageError(f"{COMMAND}: no region: pass --region or configure one for the profile")
        secretsmanager, sns, sts = (session.client(service, endpoint_url=args.endpoint_url)
                                    for service in ("secretsmanager", "sns", "sts"))
        table = session.resource("dynamodb", endpoint_url=args.endpoint_url).Table(args.incident_table)
        result = handle_exposure(
            secretsmanager, table, sns, args.alerts_topic, secret_id=args.secret, version_id=args.version_id,
            reason=args.reason.strip(), reported_by=args.reported_by or caller(sts), now=utcnow(),
            wait_seconds=args.wait, parties=parties, ack_hours=ack_hours)
    except ResponseError as e:
        raise UsageError(f"{COMMAND}: {e}") from None
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
        raise UsageError(f"{COMMAND}: {' '.join(str(e).split())}") from None
    sys.stdout.write(json.dumps(result.to_dict(), indent=2) + "\n" if args.format == "json" else render(result))
    return EXIT_CLEAN if result.complete else EXIT_INCOMPLETE


def load_parties(path: str | None) -> tuple[list[dict], dict | None]:
    from .common import ResponseError
    from .incidents import read_ack_hours, read_parties
    from .secrets import DEFAULT_PARTIES

    if not path:
        return DEFAULT_PARTIES, None
    from ..engine.loader import InputError, read_capped

    try:
        data = json.loads(read_capped(Path(path), 1 << 20).decode("utf-8"))  # a FIFO or /dev/zero never ends
    except InputError as e:
        raise UsageError(f"{COMMAND}: {e}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UsageError(f"{COMMAND}: {path} is not JSON: {e}") from None
    parties, ack_hours = (data.get("parties"), data.get("ack_hours")) if isinstance(data, dict) else (data, None)
    try:
        return read_parties(parties), read_ack_hours(ack_hours)
    except ResponseError as e:
        raise UsageError(f"{COMMAND}: {path}: {e}") from None


def caller(sts) -> str:
    """Who runs the command, for the record: the AWS identity, else the login name."""
    import botocore.exceptions

    try:
        return sts.get_caller_identity()["Arn"]
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError):
        return os.environ.get("USER") or os.environ.get("USERNAME") or "unknown"


def render(result) -> str:
    lines = [f"{COMMAND}: {result.secret_name}, exposed version {result.exposed_version}",
             f"  secret   {result.secret_arn}",
             f"  owner    {result.owner or 'none (no owner or data-owner tag): the security team must find the owner'}"]
    lines += [f"  {s.name:<10} {s.status:<8} {s.detail}" for s in result.steps]
    lines.append(f"result: {result.outcome}" + ("" if result.complete else " (incomplete)"))
    lines.append("next: the owner deletes the exposed credential at its source, immediately")
    return "\n".join(lines) + "\n"
