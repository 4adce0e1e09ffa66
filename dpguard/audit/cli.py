"""`dpguard audit`: whose credentials, which accounts and regions, and a progress bar."""
from __future__ import annotations

import argparse
import re
import sys

import boto3
import botocore.exceptions

from ..cli_common import UsageError
from ..engine import Config
from .clients import Clients, pages
from .run import AuditResult, NotAudited, audit

SESSION_NAME = "dpguard-audit"
ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::(\d{12}):role/[\w+=,.@/-]+$")




def run_audit(args: argparse.Namespace, config: Config) -> AuditResult:
    accounts, regions = resolve_accounts(args)
    return audit(accounts, regions, config=config, concurrency=args.concurrency, progress=progress_bar(),
                 deadline=args.deadline)


def resolve_accounts(args: argparse.Namespace, command: str = "dpguard audit") -> tuple[list[Clients], list[str]]:
    """The accounts (their clients) and regions named by the account options shared by `audit`
    and `access-review` (--profile, --endpoint-url, --role-arn, --org, --region, --all-regions)."""

    malformed = [arn for arn in args.role_arn if not ROLE_ARN.match(arn)]
    if malformed:
        raise UsageError(f"{command}: --role-arn {malformed[0]!r} is not a role ARN "
                         "(arn:aws:iam::123456789012:role/NAME)")
    try:
        session = boto3.Session(profile_name=args.profile)
        home = session.region_name or "us-east-1"
        base = Clients(session, endpoint_url=args.endpoint_url, max_pool=args.concurrency * 2)
        accounts = [base]
        if args.role_arn:
            accounts = [assumed(base, home, arn, args.endpoint_url, args.concurrency, args.external_id)
                        for arn in args.role_arn]
        elif args.org:
            accounts = [assumed(base, home, f"arn:aws:iam::{account}:role/{args.org_role}", args.endpoint_url,
                                args.concurrency, args.external_id) for account in organization_accounts(base, home)]
        regions = args.region or ([r for r in enabled_regions(base, home)] if args.all_regions else [home])
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
        raise UsageError(f"{command}: {e}") from None
    return accounts, regions


def assumed(base: Clients, region: str, role_arn: str, endpoint_url: str | None, concurrency: int,
            external_id: str | None = None) -> Clients | NotAudited:
    """Clients of the account behind `role_arn`, through STS with the caller's credentials; an
    account whose role cannot be assumed is not audited, and the others still are."""
    extra = {"ExternalId": external_id} if external_id else {}
    try:
        credentials = base("sts", region).assume_role(RoleArn=role_arn, RoleSessionName=SESSION_NAME,
                                                      **extra)["Credentials"]
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
        return NotAudited(role_arn.split(":")[4], f"its role {role_arn} could not be assumed: {e}")
    session = boto3.Session(aws_access_key_id=credentials["AccessKeyId"],
                            aws_secret_access_key=credentials["SecretAccessKey"],
                            aws_session_token=credentials["SessionToken"], region_name=region)
    return Clients(session, endpoint_url=endpoint_url, account=role_arn.split(":")[4], max_pool=concurrency * 2)


def organization_accounts(base: Clients, region: str) -> list[str]:
    organizations = base("organizations", region)
    return [a["Id"] for a in pages(organizations, "list_accounts", "Accounts") if a.get("Status") == "ACTIVE"]


def enabled_regions(base: Clients, region: str) -> list[str]:
    answer = base("ec2", region).describe_regions(
        Filters=[{"Name": "opt-in-status", "Values": ["opt-in-not-required", "opted-in"]}])
    return sorted(r["RegionName"] for r in answer["Regions"])


def progress_bar():
    """A progress bar on a terminal (stderr), nothing otherwise."""
    if not sys.stderr.isatty():
        return None
    from rich.progress import Progress

    bar = Progress(transient=True)
    task = {}

    def update(done: int, total: int) -> None:
        if not task:
            bar.start()
            task["id"] = bar.add_task("reading the account", total=total)
        bar.update(task["id"], completed=done)
        if done >= total:
            bar.stop()
    return update
