"""Writers of `dpguard access-review`: table (terminal), json (the structure below), csv (one row
per principal with its flags) and markdown (the quarterly review record, with a sign-off).

JSON (`--format json`; dates are YYYY-MM-DD, lists are never null):

    {"tool": {"name": "dpguard", "version": "...", "command": "access-review"},
     "generated_at": "YYYY-MM-DDTHH:MM:SSZ"  (midnight of --today when given: reproducible),
     "as_of": "YYYY-MM-DD"  (the review's day: ages and "unused" are counted to it),
     "thresholds": {"unused_days": 90, "access_key_age_days": 90},
     "summary": {"accounts", "users", "roles", "keys", "flags", "flagged_principals", "gaps"},
     "accounts": [{"account", "regions": [...], "users", "roles"}],
     "principals": [{"arn", "account", "type": "user|role", "name", "path", "created",
                     "last_used", "last_used_via", "days_since_use",
                     "activity": "used|unused|new|unknown", "activity_detail", "service_linked",
                     "console_password": true|false|null, "mfa": true|false|null,
                     "access_keys": [{"id", "status", "created", "age_days", "last_used",
                                      "last_used_unknown"}],
                     "managed_policies": [...], "inline_policies": [...], "groups": [...],
                     "permissions_boundary", "admin_equivalent": ["reason", ...],
                     "can_decrypt": [{"key": "KMS key ARN", "access": "can decrypt|may decrypt (conditional)"}],
                     "flags": ["code", ...]}],
     "keys": [{"arn", "account", "region", "type", "description", "aliases": [...], "enabled",
               "tags": {...},
               "decrypters": [{"principal", "type": "account|user|role|service|anyone|federated|deleted|unknown|other",
                               "name", "account", "access": "can decrypt|may decrypt (conditional)",
                               "via": ["key policy \"Sid\"", "grant ID", "key policy ... → IAM: policy", ...],
                               "conditions": ["why the access is conditional", ...], "note"}],
               "denied": [{"principal", "via"}]}],
     "flags": [{"code", "severity": "error|warning", "account", "principal", "name", "type",
                "reason", "fix", "subject"}],
     "gaps": [{"account", "region", "subject", "reason"}],
     "limits": ["what the review never judges", ...]}

Flag codes: unused, access-key-old, access-key-never-used, access-key-unused, console-without-mfa,
unused-decrypter, admin-equivalent, key-open-to-anyone."""
from __future__ import annotations

import csv
import io
import json
from typing import Any

from ..audit.access_review import CAN, Review

REVIEW_FORMATS = ("table", "json", "csv", "markdown")

CSV_COLUMNS = ("account", "type", "name", "arn", "created", "last_used", "last_used_via", "days_since_use",
               "activity", "service_linked", "console_password", "mfa", "access_keys", "managed_policies",
               "inline_policies", "groups", "admin_equivalent", "can_decrypt", "flags", "flag_reasons")


def render_review(review: Review, fmt: str, *, color: bool = False) -> str:
    if fmt == "json":
        return json.dumps(review.as_dict(), indent=2) + "\n"
    if fmt == "csv":
        return render_csv(review)
    if fmt == "markdown":
        return render_markdown(review)
    if fmt == "table":
        return render_table(review, color=color)
    raise ValueError(f"unknown format {fmt!r}")


# ------------------------------------------------------------------------------ shared wording

def yes_no(value: Any) -> str:
    return "unknown" if value is None else "yes" if value else "no"


def last_used(p) -> str:
    if p.last_used:
        return f"{p.last_used} ({p.days_since_use} d ago, {p.last_used_via})"
    if p.activity == "unknown":
        return "unknown"
    return "never"


def key_text(k) -> str:
    status = k.status or "status unknown"
    age = f"{k.age_days} d old" if k.age_days is not None else "age unknown"
    used = k.last_used or ("unknown" if k.last_used_unknown else "never")
    return f"{k.id} {status}, {age}, last used {used}"


def console_text(p) -> str:
    if p.type != "user":
        return "—"
    if p.console_password is None:
        return "password unknown"
    if not p.console_password:
        return "no console"
    return f"password, MFA {yes_no(p.mfa)}"


def decrypt_text(review: Review, p) -> list[str]:
    labels = {k.arn: (k.aliases[0] if k.aliases else k.arn.rsplit("/", 1)[-1]) for k in review.keys}
    return [f"{labels.get(c['key'], c['key'])}{'' if c['access'] == CAN else ' (conditional)'}"
            for c in p.can_decrypt]


def key_title(k) -> str:
    name = ", ".join(k.aliases) if k.aliases else k.arn.rsplit("/", 1)[-1]
    extra = []
    if k.description:
        extra.append(k.description)
    for tag in ("data-classification", "data-owner"):
        if tag in k.tags:
            extra.append(f"{tag}={k.tags[tag]}")
    if k.enabled is False:
        extra.append("disabled")
    return f"{name}" + (f" — {'; '.join(extra)}" if extra else "")


def verdict(review: Review) -> str:
    s = review.summary()
    text = (f"{s['users']} user(s), {s['roles']} role(s), {s['keys']} key(s) in {s['accounts']} account(s) "
            f"as of {review.as_of.isoformat()}: {s['flags']} flag(s) on {s['flagged_principals']} "
            f"principal(s), {s['gaps']} gap(s)")
    return text


# ------------------------------------------------------------------------------ table

def render_table(review: Review, color: bool = False) -> str:
    from rich.table import Table
    from rich.text import Text

    from .table import console

    out, buffer = console(color)
    principals = Table(title="Principals with access", show_lines=True, header_style="bold")
    for name in ("Principal", "Created", "Last used", "Console", "Access keys", "Policies", "Can decrypt", "Flags"):
        principals.add_column(name, overflow="fold")
    for p in review.principals:
        who = Text(f"{p.type} {p.name}", style="bold")
        who.append(f"\n{p.arn}", style="dim")
        if p.service_linked:
            who.append("\nservice-linked (never flagged)", style="dim")
        policies = [f"managed: {m}" for m in p.managed_policies] + [f"inline: {i}" for i in p.inline_policies]
        policies += [f"group: {g}" for g in p.groups]
        flags = Text("\n".join(p.flags) or "—", style="bold red" if p.flags else "green")
        principals.add_row(who, p.created or "unknown", last_used(p), console_text(p),
                           "\n".join(key_text(k) for k in p.access_keys) or "—", "\n".join(policies) or "—",
                           "\n".join(decrypt_text(review, p)) or "—", flags)
    if review.principals:
        out.print(principals)
    keys = Table(title="Who can decrypt each data key", show_lines=True, header_style="bold")
    for name in ("Key", "Decrypter", "Access", "Through"):
        keys.add_column(name, overflow="fold")
    for k in review.keys:
        title = Text(key_title(k), style="bold")
        title.append(f"\n{k.arn}", style="dim")
        first = True
        for d in k.decrypters:
            access = Text(d.access, style="red" if d.access == CAN else "yellow")
            through = "\n".join(d.via + [f"if: {c}" for c in d.conditions] + ([d.note] if d.note else []))
            who = d.name if d.type in ("account", "anyone") else f"{d.type} {d.name}"
            keys.add_row(title if first else "", who, access, through)
            first = False
        if first:
            keys.add_row(title, "nobody", "", "")
    if review.keys:
        out.print(keys)
    if review.flags:
        flags = Table(title="Flags: remove or fix", show_lines=True, header_style="bold")
        for name in ("Flag", "Principal", "Reason and fix"):
            flags.add_column(name, overflow="fold")
        for f in review.flags:
            reason = Text(f.reason)
            reason.append(f"\nfix: {f.fix}", style="magenta")
            flags.add_row(Text(f"{f.code}\n{f.severity}", style="bold red" if f.severity == "error" else "yellow"),
                          f"{f.type} {f.name}\n{f.principal}", reason)
        out.print(flags)
    for g in review.gaps:
        where = " ".join(x for x in (g.account, g.region, g.subject) if x)
        out.print(Text(f"gap: {where}: {g.reason}", style="yellow"))
    style = "bold red" if review.flags else "bold yellow" if review.gaps else "bold green"
    out.print(Text(verdict(review), style=style))
    return buffer.getvalue()


# ------------------------------------------------------------------------------ csv

def safe_cell(value: Any) -> str:
    """A cell a spreadsheet will not run as a formula (IAM names may start with = + - @)."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def render_csv(review: Review) -> str:
    reasons: dict[str, list[str]] = {}
    for f in review.flags:
        reasons.setdefault(f.principal, []).append(f"{f.code}: {f.reason}")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for p in review.principals:
        row = {"account": p.account, "type": p.type, "name": p.name, "arn": p.arn, "created": p.created,
               "last_used": p.last_used, "last_used_via": p.last_used_via, "days_since_use": p.days_since_use,
               "activity": p.activity, "service_linked": yes_no(p.service_linked),
               "console_password": yes_no(p.console_password) if p.type == "user" else "",
               "mfa": yes_no(p.mfa) if p.console_password else "",
               "access_keys": "; ".join(key_text(k) for k in p.access_keys),
               "managed_policies": "; ".join(p.managed_policies), "inline_policies": "; ".join(p.inline_policies),
               "groups": "; ".join(p.groups), "admin_equivalent": "; ".join(p.admin_equivalent),
               "can_decrypt": "; ".join(f"{c['key']} ({c['access']})" for c in p.can_decrypt),
               "flags": "; ".join(p.flags), "flag_reasons": "; ".join(reasons.get(p.arn, []))}
        writer.writerow([safe_cell(row[c]) for c in CSV_COLUMNS])
    return out.getvalue()


# ------------------------------------------------------------------------------ markdown

def cell(value: Any) -> str:
    return str(value if value is not None else "").replace("|", "\\|").replace("\n", "<br>") or "—"


def render_markdown(review: Review) -> str:
    s = review.summary()
    accounts = ", ".join(f"`{a['account']}` ({', '.join(a['regions']) or 'IAM only'})" for a in review.accounts)
    if review.flags:
        result = f"❌ **{s['flags']} flag(s)** on {s['flagged_principals']} principal(s) to remove or fix"
    else:
        result = "✅ nothing to remove or fix"
    if review.gaps:
        result += f"; ⚠️ **{s['gaps']} gap(s)**: parts the review could not see (below)"
    lines = [
        f"# Quarterly access review — {review.as_of.isoformat()}", "",
        "Data Protection Policy, clause 2: *\"We will regularly review the list of people and services "
        "with access to private information on a regular basis (at least quarterly), and remove accounts "
        "that no longer require access.\"*", "",
        f"Generated by dpguard `access-review` at {review.generated_at}; accounts: {accounts or '—'}.", "",
        f"**Result:** {result}.", "",
        "| Users | Roles | Data keys | Flags | Gaps |", "|---|---|---|---|---|",
        f"| {s['users']} | {s['roles']} | {s['keys']} | {s['flags']} | {s['gaps']} |", "",
    ]
    lines += ["## Flags: to remove or fix", ""]
    if review.flags:
        lines += ["| # | Principal | Flag | Reason | Fix | Decision (remove / fix / keep, why) |",
                  "|---|---|---|---|---|---|"]
        for n, f in enumerate(review.flags, 1):
            lines.append(f"| {n} | {f.type} `{cell(f.name)}`<br>`{cell(f.principal)}` | `{f.code}` ({f.severity}) "
                         f"| {cell(f.reason)} | {cell(f.fix)} | |")
    else:
        lines.append("Nothing flagged.")
    lines += ["", "## Who can decrypt each data key", ""]
    if not review.keys:
        lines.append("No customer-managed KMS keys were found.")
    for k in review.keys:
        lines += [f"### {cell(key_title(k))}", "", f"`{k.arn}` ({k.account}, {k.region})", ""]
        if k.decrypters:
            lines += ["| Principal | Type | Access | Through | Conditions |", "|---|---|---|---|---|"]
            for d in k.decrypters:
                note = f"<br>{cell(d.note)}" if d.note else ""
                lines.append(f"| `{cell(d.name)}`<br>`{cell(d.principal)}` | {d.type} | {d.access} "
                             f"| {cell('; '.join(d.via))}{note} | {cell('; '.join(d.conditions))} |")
        else:
            lines.append("Nobody can decrypt with this key.")
        for d in k.denied:
            lines.append(f"- denied: `{cell(d['principal'])}` ({cell(d['via'])})")
        lines.append("")
    lines += ["## People and services with access", "",
              "| Principal | Created | Last used | Console | Access keys | Policies | Can decrypt | Flags |",
              "|---|---|---|---|---|---|---|---|"]
    for p in review.principals:
        policies = [f"managed: {m}" for m in p.managed_policies] + [f"inline: {i}" for i in p.inline_policies]
        policies += [f"group: {g}" for g in p.groups]
        who = f"{p.type} `{cell(p.name)}`<br>`{cell(p.arn)}`" + ("<br>service-linked" if p.service_linked else "")
        lines.append(f"| {who} | {cell(p.created or 'unknown')} | {cell(last_used(p))} | {cell(console_text(p))} "
                     f"| {cell('<br>'.join(key_text(k) for k in p.access_keys))} | {cell('<br>'.join(policies))} "
                     f"| {cell('<br>'.join(decrypt_text(review, p)))} | {cell(', '.join(p.flags))} |")
    lines += ["", "## What the review could not see", ""]
    if review.gaps:
        for g in review.gaps:
            where = ", ".join(x for x in (g.account, g.region, g.subject) if x)
            lines.append(f"- ⚠️ {cell(where)}: {cell(g.reason)}")
    else:
        lines.append("- Every read of the review succeeded.")
    lines += ["", "Not judged by this review, in any account:", ""]
    lines += [f"- {limit}" for limit in review.limits]
    lines += ["", "## Sign-off", "",
              "Each flag above has a decision; accounts that no longer require access are removed.", "",
              "| Reviewed by | Date | Signature |", "|---|---|---|", "| | | |", ""]
    return "\n".join(lines)
