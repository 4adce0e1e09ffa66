"""Reading the review's facts from AWS: the audit's iam and kms collectors, then MFA devices and
KMS grants."""
from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterable

from ...engine import Config
from ...engine.checks import first
from ...engine.template import App, Resource
from ..clients import Clients, Unreadable, listing, read
from ..run import AuditResult, NotAudited, audit
from .judgment import build_review
from .records import KEY_TYPES, Extras, Review

COLLECTORS = frozenset({"iam", "kms"})


def run_review(accounts: list[Clients], regions: list[str], *, today: dt.date | None = None,
               concurrency: int = 8, progress: Callable[[int, int], None] | None = None,
               generated_at: str | None = None) -> tuple[Review, AuditResult]:
    """Collect IAM and KMS of every account (KMS in every region), read MFA devices and grants,
    and build the review."""
    today = today or dt.date.today()
    result = audit(accounts, regions, config=Config(today=today), only=set(COLLECTORS),
                   concurrency=concurrency, progress=progress)
    extras = supplement(accounts, result.app, concurrency=concurrency)
    review = build_review(result.app, today=today, extras=extras, regions=regions, generated_at=generated_at)
    return review, result


def supplement(accounts: list[Clients], app: App, *, concurrency: int = 8) -> Extras:
    """MFA devices of console users, and the grants and aliases of every key."""
    extras = Extras()
    by_account: dict[str, Clients] = {}
    for clients in accounts:
        if isinstance(clients, NotAudited):
            continue  # a gap of the audit already
        try:
            by_account[clients.account] = clients
        except Exception:  # noqa: BLE001 - an account that cannot be named was a gap of the audit
            continue
    tasks: list[Callable[[], None]] = []
    for tpl in app.templates:
        if not tpl.live:
            continue
        for r in tpl.of_type("AWS::IAM::User"):
            facts = r.live_facts or {}
            clients = by_account.get(facts.get("account"))
            if clients is not None and isinstance(first(r, "LoginProfile"), dict):
                tasks.append(lambda c=clients, r=r, f=facts: _read_mfa(c, r, f, extras))
        keys = tpl.of_type(*KEY_TYPES)
        regions = {(r.live_facts or {}).get("account"): (r.live_facts or {}).get("region") for r in keys}
        for account, region in regions.items():
            clients = by_account.get(account)
            if clients is not None and region:
                tasks.append(lambda c=clients, g=region, k=keys: _read_keys(c, g, k, extras))
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        for future in [pool.submit(task) for task in tasks]:
            future.result()
    return extras


def _read_mfa(clients: Clients, user: Resource, facts: dict, extras: Extras) -> None:
    name = first(user, "UserName")
    try:
        iam = clients("iam", _global_region(facts))
        devices = listing(iam, "list_mfa_devices", "MFADevices", UserName=name)
    except Exception as e:  # noqa: BLE001 - a failed read is a gap, never a crash
        devices = Unreadable(f"ListMFADevices failed: {type(e).__name__}: {e}")
    extras.mfa[facts.get("arn")] = devices if isinstance(devices, Unreadable) else bool(devices)


def _global_region(facts: dict) -> str:
    arn = facts.get("arn") or ""
    return "cn-north-1" if arn.startswith("arn:aws-cn:") else "us-gov-west-1" if arn.startswith(
        "arn:aws-us-gov:") else "us-east-1"


def _read_keys(clients: Clients, region: str, keys: list[Resource], extras: Extras) -> None:
    try:
        kms = clients("kms", region)
    except Exception as e:  # noqa: BLE001
        for r in keys:
            extras.grants[(r.live_facts or {}).get("arn")] = Unreadable(f"{type(e).__name__}: {e}")
        return
    aliases = listing(kms, "list_aliases", "Aliases")
    by_key: dict[str, list[str]] = {}
    for alias in [] if isinstance(aliases, Unreadable) else aliases:
        if alias.get("TargetKeyId"):
            by_key.setdefault(alias["TargetKeyId"], []).append(alias["AliasName"])
    for r in keys:
        arn = (r.live_facts or {}).get("arn")
        if not arn:
            continue
        extras.aliases[arn] = sorted(by_key.get(arn.rsplit("/", 1)[-1], []))
        grants = read(lambda: list(_grant_pages(kms, arn)), missing=("NotFoundException",))
        extras.grants[arn] = [] if grants is None else grants


def _grant_pages(kms: Any, key_arn: str) -> Iterable[dict]:
    for page in kms.get_paginator("list_grants").paginate(KeyId=key_arn):
        yield from page.get("Grants", [])


