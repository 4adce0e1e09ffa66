"""`dpguard access-review`: accounts and regions as for `dpguard audit`, a preflight, the review."""
from __future__ import annotations

import datetime as dt
import re
from typing import Any

from ...cli_common import UsageError
from ..clients import Clients
from .collection import run_review
from .records import Review

REGION_NAME = re.compile(r"^[a-z]{2}(-[a-z0-9]+)+-\d{1,2}$")
COMMAND = "dpguard access-review"


def command(args: Any) -> Review:
    """`dpguard access-review`: resolve accounts and regions as `dpguard audit` does, check that
    AWS answers (a bad region or endpoint is a one-line usage error, not an empty review), then
    run the review."""
    from ..cli import progress_bar, resolve_accounts

    if args.concurrency < 1:
        raise UsageError(f"{COMMAND}: --concurrency must be at least 1")
    today = None
    if args.today:
        try:
            today = dt.date.fromisoformat(args.today)
        except ValueError:
            raise UsageError(f"{COMMAND}: --today {args.today!r} is not a date (YYYY-MM-DD)") from None
    for region in args.region:
        if not REGION_NAME.match(region):
            raise UsageError(f"{COMMAND}: {region!r} is not a region name (e.g. eu-west-1)")
    accounts, regions = resolve_accounts(args, COMMAND)
    if not (args.role_arn or args.org):
        _preflight(accounts[0], regions, args.endpoint_url)
    generated_at = f"{today.isoformat()}T00:00:00Z" if today else None
    review, _ = run_review(accounts, regions, today=today, concurrency=args.concurrency,
                           progress=progress_bar(), generated_at=generated_at)
    return review


def _preflight(base: Clients, regions: list[str], endpoint_url: str | None) -> None:
    """One quick call to STS (and to KMS in each region botocore does not know), without
    retries: an endpoint that cannot be reached, bad credentials or an unknown region stop the
    command with one line instead of a review made only of gaps."""
    import botocore.config
    import botocore.exceptions


    quick = botocore.config.Config(retries={"mode": "standard", "max_attempts": 1}, connect_timeout=5,
                                   read_timeout=15)
    session = base.session
    home = session.region_name or "us-east-1"
    try:
        session.client("sts", region_name=home, endpoint_url=endpoint_url, config=quick).get_caller_identity()
    except botocore.exceptions.ClientError as e:
        error = e.response.get("Error", {})
        raise UsageError(f"{COMMAND}: AWS refused the caller's credentials: {error.get('Code')}: "
                         f"{error.get('Message')}") from None
    except botocore.exceptions.BotoCoreError as e:
        raise UsageError(f"{COMMAND}: cannot reach AWS: {e}") from None
    known = {r for partition in session.get_available_partitions()
             for r in session.get_available_regions("kms", partition)}
    for region in regions:
        if region in known:
            continue
        try:
            session.client("kms", region_name=region, endpoint_url=endpoint_url, config=quick).list_keys(Limit=1)
        except botocore.exceptions.ClientError as e:
            code = e.response.get("Error", {}).get("Code")
            if code in ("UnrecognizedClientException", "InvalidClientTokenId"):
                raise UsageError(f"{COMMAND}: region {region} is unknown or not enabled for the account: "
                                 f"{code}") from None
            # any other answer (access denied, say) comes from a region that exists
        except Exception as e:  # noqa: BLE001 - no endpoint, or an emulator that knows no such region
            raise UsageError(f"{COMMAND}: unknown region {region}: {type(e).__name__}: {e}") from None
