"""Building the review from the live templates: who can decrypt with each key, and what to flag."""
from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from typing import Any, Iterable

from ...engine.checks import Statement, action_matches, covers, first, policy_statements
from ...engine.template import App, Resource, Template
from ...engine.values import ABSENT, ResRef, Unknown, as_text
from ...rules.iam import ADMIN_MANAGED_POLICIES
from ...rules.live import MAX_KEY_AGE_DAYS, SERVICE_LINKED_PATH, UNUSED_DAYS, _activity, dated, key_status
from ..clients import Unreadable
from ..run import GAP
from .records import (CAN, DECRYPT, DECRYPTING_MANAGED, ESCALATING_MANAGED, ESCALATION_ACTIONS, FLAGS, KEY_TYPES, MAY,
                      AccessKey, Decrypter, Extras, Flag, Gap, Key, Principal, Review)


def build_review(app: App, *, today: dt.date, extras: Extras | None = None, regions: Iterable[str] = (),
                 generated_at: str | None = None) -> Review:
    """The review of the live templates of `app` (one per account and region), as of `today`."""
    gaps: list[Gap] = []
    for tpl in app.templates:
        if not tpl.live:
            continue
        for r in tpl.of_type(GAP):
            facts = r.live_facts or {}
            gaps.append(Gap(facts.get("account"), facts.get("region"), None,
                            str(r.props.get("Reason") or "part of the account could not be read")))
    builder = _Builder(app, today, extras, gaps)
    principals = builder.principals()
    keys = builder.keys()
    flags = builder.flags(principals, keys)
    accounts = builder.accounts(list(regions))
    if generated_at is None:
        generated_at = dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    return Review(today, generated_at, accounts, principals, keys, flags, _dedupe_gaps(gaps))


def _dedupe_gaps(gaps: list[Gap]) -> list[Gap]:
    seen, out = set(), []
    for g in gaps:
        key = (g.account, g.region, g.subject, g.reason)
        if key not in seen:
            seen.add(key)
            out.append(g)
    return out


@dataclass
class _Source:
    """One identity policy of a principal: its label and statements (or why it is unreadable)."""

    label: str
    statements: list[Statement] | Unknown


class _Builder:
    def __init__(self, app: App, today: dt.date, extras: Extras | None, gaps: list[Gap]) -> None:
        self.app = app
        self.today = today
        self.extras = extras
        self.gaps = gaps
        self.live = [t for t in app.templates if t.live]
        self.by_arn: dict[str, Principal] = {}
        self.by_name: dict[tuple[str, str, str], Principal] = {}
        self.resources: dict[str, tuple[Resource, Template]] = {}  # principal ARN -> its resource
        self.sources: dict[str, list[_Source]] = {}
        self.managed: dict[str, list[str]] = {}  # principal ARN -> AWS managed policy names
        self.uncertain: dict[str, list[str]] = {}  # principal ARN -> reasons its policies are uncertain
        self.relevant: dict[str, list[tuple[str, Statement, Any]]] = {}  # statements that may reach Decrypt
        self.boundaries: dict[str, Resource] | None = None  # customer managed policy ARN -> policy

    # -------------------------------------------------------------- principals

    def principals(self) -> list[Principal]:
        out = []
        for tpl in self.live:
            for r in tpl.of_type("AWS::IAM::User", "AWS::IAM::Role"):
                p = self._principal(r, tpl)
                out.append(p)
                self.by_arn[p.arn] = p
                self.by_name[(p.account, p.type, p.name)] = p
                self.resources[p.arn] = (r, tpl)
        out.sort(key=lambda p: (p.account, p.type != "user", p.name.lower()))
        for p in out:
            self._identity(p)
            p.admin_equivalent = self._admin_reasons(p)
        return out

    def _principal(self, r: Resource, tpl: Template) -> Principal:
        facts = r.live_facts or {}
        user = r.type == "AWS::IAM::User"
        name = _text(first(r, "UserName" if user else "RoleName")) or r.logical_id
        arn = facts.get("arn") or f"{tpl.stack}/{r.logical_id}"
        account = facts.get("account") or tpl.stack.split("/")[0]
        path = _text(first(r, "Path")) or "/"
        _, created = dated(r, "CreateDate")
        if isinstance(created, Unknown):
            self._gap(account, arn, f"when {name} was created cannot be read: {created.reason}")
        keys: list[AccessKey] = []
        dates: list[tuple[Any, str]] = []
        console: bool | None = None
        mfa: bool | None = None
        if user:
            _, password = dated(r, "PasswordLastUsed")
            dates.append((password, "console password"))
            login = first(r, "LoginProfile")
            if isinstance(login, Unknown):
                self._gap(account, arn, f"whether {name} has a console password cannot be read: {login.reason}")
            else:
                console = isinstance(login, dict)
            for k in tpl.referrers(r.logical_id, "AWS::IAM::AccessKey"):
                key = self._access_key(k, account, arn, name)
                keys.append(key)
                _, last = dated(k, "LastUsedDate")
                dates.append((last, f"access key {key.id}"))
            mfa = self._mfa(arn, account, name, console)
        else:
            _, last = dated(r, "RoleLastUsed.LastUsedDate")
            dates.append((last, "role session"))
        verdict, detail = _activity([d for d, _ in dates], created, self.today)
        known = [(d, via) for d, via in dates if isinstance(d, dt.date)]
        last_used, via = max(known, key=lambda x: x[0]) if known else (None, None)
        if verdict == "unused" and isinstance(created, dt.date) and (self.today - created).days <= UNUSED_DAYS:
            verdict = "new"
        if verdict == "unknown":
            self._gap(account, arn, f"whether {name} was used in the last {UNUSED_DAYS} days cannot be read: {detail}")
        managed, inline, groups = self._attachments(r, tpl, user)
        boundary = first(r, "PermissionsBoundary")
        return Principal(
            arn=arn, account=account, type="user" if user else "role", name=name, path=path,
            created=_iso(created), last_used=_iso(last_used), last_used_via=via,
            days_since_use=(self.today - last_used).days if last_used else None,
            activity=verdict, activity_detail=detail,
            service_linked=not user and path.startswith(SERVICE_LINKED_PATH),
            console_password=console, mfa=mfa, access_keys=keys, managed_policies=managed,
            inline_policies=inline, groups=groups,
            permissions_boundary=_text(boundary) if isinstance(boundary, str) else None)

    def _access_key(self, k: Resource, account: str, arn: str, user: str) -> AccessKey:
        key_id = _text(first(k, "AccessKeyId"))
        status = key_status(k)
        _, created = dated(k, "CreateDate")
        _, last = dated(k, "LastUsedDate")
        label = f"access key {key_id} of {user}"
        if isinstance(status, Unknown):
            self._gap(account, arn, f"the status of {label} cannot be read: {status.reason}")
        if isinstance(created, Unknown):
            self._gap(account, arn, f"the age of {label} cannot be read: {created.reason}")
        if isinstance(last, Unknown):
            self._gap(account, arn, f"the last use of {label} cannot be read: {last.reason}")
        return AccessKey(id=key_id, status=None if isinstance(status, Unknown) else status,
                         created=_iso(created),
                         age_days=(self.today - created).days if isinstance(created, dt.date) else None,
                         last_used=_iso(last),
                         last_used_unknown=last.reason if isinstance(last, Unknown) else None)

    def _mfa(self, arn: str, account: str, name: str, console: bool | None) -> bool | None:
        if not console:
            return None
        if self.extras is None:
            self._gap(account, arn, f"whether {name} signs in with MFA was not read")
            return None
        value = self.extras.mfa.get(arn)
        if isinstance(value, Unreadable):
            self._gap(account, arn, f"whether {name} signs in with MFA cannot be read: {value.reason}")
            return None
        if value is None:
            self._gap(account, arn, f"whether {name} signs in with MFA was not read")
        return value

    def _attachments(self, r: Resource, tpl: Template, user: bool) -> tuple[list[str], list[str], list[str]]:
        managed = [self._managed_name(r, v) for _, v in r.values("ManagedPolicyArns.*") if v is not ABSENT]
        inline = [_text(v) or "?" for _, v in r.values("Policies.*.PolicyName") if v is not ABSENT]
        groups = []
        if user:
            for _, value in r.values("Groups.*"):
                if value is ABSENT:
                    continue
                group = tpl.resource_of(value, "AWS::IAM::Group") if isinstance(value, ResRef) else None
                groups.append(_text(first(group, "GroupName")) if group is not None else (_text(value) or "?"))
        return managed, inline, groups

    def _managed_name(self, owner: Resource, value: Any) -> str:
        if isinstance(value, ResRef):
            policy = owner.template.resource_of(value, "AWS::IAM::ManagedPolicy")
            name = _text(first(policy, "ManagedPolicyName")) if policy is not None else None
            return name or value.logical_id
        text = _text(value)
        return text.rsplit("/", 1)[-1] if text else "?"

    def _identity(self, p: Principal) -> None:
        """The identity policies of a principal (its own and its groups'), read once."""
        r, tpl = self.resources[p.arn]
        sources: list[_Source] = []
        managed: list[str] = []
        uncertain: list[str] = []
        owners = [(r, "")]
        if p.type == "user":
            for _, value in r.values("Groups.*"):
                if value is ABSENT:
                    continue
                group = tpl.resource_of(value, "AWS::IAM::Group") if isinstance(value, ResRef) else None
                if group is None:
                    uncertain.append(f"the policies of its group {_text(value) or '?'} could not be read")
                else:
                    owners.append((group, f"group {_text(first(group, 'GroupName')) or group.logical_id}: "))
        for owner, prefix in owners:
            names = {path.rsplit("/", 1)[0]: _text(v) or "?" for path, v in owner.values("Policies.*.PolicyName")}
            by_doc: dict[str, list] = {}
            for s in policy_statements(owner, "Policies.*.PolicyDocument"):
                doc = (s[0] if isinstance(s, tuple) else s.path.split("/Statement/")[0]).rsplit("/PolicyDocument", 1)[0]
                label = f"{prefix}inline policy {names.get(doc, '?')}"
                if isinstance(s, tuple):
                    sources.append(_Source(label, s[1]))
                else:
                    by_doc.setdefault(label, []).append(s)
            sources.extend(_Source(label, statements) for label, statements in by_doc.items())
            for _, value in owner.values("ManagedPolicyArns.*"):
                if value is ABSENT:
                    continue
                if isinstance(value, Unknown):
                    uncertain.append(f"{prefix}a managed policy cannot be read: {value.reason}")
                    continue
                policy = owner.template.resource_of(value, "AWS::IAM::ManagedPolicy") \
                    if isinstance(value, ResRef) else None
                if policy is not None:
                    label = f"{prefix}managed policy {_text(first(policy, 'ManagedPolicyName')) or policy.logical_id}"
                    statements = list(policy_statements(policy, "PolicyDocument"))
                    bad = next((s for s in statements if isinstance(s, tuple)), None)
                    sources.append(_Source(label, bad[1] if bad else statements))
                    continue
                text = _text(value) or ""
                if ":iam::aws:policy/" in text:
                    managed.append(prefix + text.rsplit("/", 1)[-1])
                else:
                    uncertain.append(f"{prefix}the managed policy {text or '?'} was not among the collected policies")
        for source in sources:
            if isinstance(source.statements, Unknown):
                uncertain.append(f"{source.label} cannot be read: {source.statements.reason}")
        for reason in uncertain:
            self._gap(p.account, p.arn, f"a policy of {p.name}: {reason}")
        self.sources[p.arn] = sources
        # the statements that reach kms:Decrypt at all (or may): the only ones judged per key
        self.relevant[p.arn] = [(source.label, st, verdict) for source in sources
                                if not isinstance(source.statements, Unknown)
                                for st in source.statements
                                if (verdict := _grants_action(st)) is not False]
        self.managed[p.arn] = managed
        self.uncertain[p.arn] = uncertain

    def _admin_reasons(self, p: Principal) -> list[str]:
        if p.service_linked:
            return []
        reasons = []
        for label in self.managed[p.arn]:
            name = label.rsplit(": ", 1)[-1]
            if name in ADMIN_MANAGED_POLICIES:
                via = label.rsplit(": ", 1)[0] + " " if ": " in label else ""
                reasons.append(f"{via}has the AWS managed policy {name} attached".strip())
        for source in self.sources[p.arn]:
            if isinstance(source.statements, Unknown):
                continue
            for s in source.statements:
                if not (s.allows or isinstance(s.effect, Unknown)):
                    continue
                strings = [v for v in s.resources or () if isinstance(v, str)]
                everywhere = "*" in strings or (s.resources is None and s.not_resources is not None)
                own = covers(strings, p.arn)
                actions = [a for a in s.actions or () if isinstance(a, str)]
                why = ""
                if everywhere and any(a in ("*", "*:*") for a in actions):
                    why = "allows every action on every resource"
                elif everywhere and s.not_actions is not None:
                    why = "allows every action but those of its NotAction on every resource"
                elif (everywhere or own) and any(action_matches(a, e) for a in actions for e in ESCALATION_ACTIONS):
                    why = "can change its own permissions (" + ", ".join(
                        e for e in ESCALATION_ACTIONS if any(action_matches(a, e) for a in actions))[:120] + ")"
                if why:
                    suffix = " under a condition" if s.has_condition or isinstance(s.condition, Unknown) else ""
                    reasons.append(f"{source.label} {why}{suffix}")
        return reasons

    # -------------------------------------------------------------- keys

    def keys(self) -> list[Key]:
        audited = {p.account for p in self.by_arn.values()} | {t.stack.split("/")[0] for t in self.live}
        out = []
        for tpl in self.live:
            for r in tpl.of_type(*KEY_TYPES):
                out.append(self._key(r, tpl, audited))
        out.sort(key=lambda k: (k.account, k.region, k.aliases[:1] or ["~"], k.arn))
        for key in out:
            for d in key.decrypters:
                p = self.by_arn.get(d.principal)
                if p is not None:
                    p.can_decrypt.append({"key": key.arn, "access": d.access})
        return out

    def _key(self, r: Resource, tpl: Template, audited: set[str]) -> Key:
        facts = r.live_facts or {}
        arn = facts.get("arn") or r.logical_id
        account = facts.get("account") or tpl.stack.split("/")[0]
        region = facts.get("region") or tpl.stack.split("/")[-1]
        tags = {}
        for _, value in r.values("Tags"):
            if isinstance(value, list):
                tags = {str(t.get("Key")): str(t.get("Value")) for t in value if isinstance(t, dict)}
        aliases = (self.extras.aliases.get(arn) if self.extras else None) or []
        description = first(r, "Description")
        key = Key(arn=arn, account=account, region=region, type=r.type,
                  description=_text(description) if isinstance(description, str) else None,
                  aliases=aliases, enabled=first(r, "Enabled") if isinstance(first(r, "Enabled"), bool) else None,
                  tags=tags)
        entries: list[Decrypter] = []
        denies: list[tuple[tuple, list[str], str, bool]] = []  # principal, reasons, via, by NotPrincipal
        for s in policy_statements(r, "KeyPolicy"):
            if isinstance(s, tuple):
                reason = f"the key policy cannot be read: {s[1].reason}"
                self._gap(account, arn, reason, region)
                entries.append(Decrypter("(unknown)", "unknown", "anyone the key policy allows", None, MAY,
                                         ["key policy"], [reason]))
                continue
            matched = _combine(_grants_action(s), _covers_key(s, arn))
            if matched is False:
                continue
            reasons = _statement_reasons(s, matched)
            via = f"key policy {_sid(r, s)}"
            if s.denies:
                for principal in s.principals or ():
                    denies.append((principal, reasons, via, False))
                for principal in s.not_principals or ():
                    denies.append((principal, reasons, via, True))
                continue
            if s.principals is not None:
                for principal in s.principals:
                    entries.extend(self._expand(principal, reasons, via, account, arn, audited))
            elif s.not_principals is not None:
                names = ", ".join(str(v) for _, v in s.not_principals)
                entries.extend(self._expand(("*", "*"), reasons + [f"NotPrincipal: everyone except {names}"],
                                            via, account, arn, audited))
            else:
                entries.append(Decrypter("(unknown)", "unknown", "no principal named", None, MAY, [via],
                                         reasons + ["the statement names no principal"]))
        entries.extend(self._grants(arn, account, region, audited))
        key.decrypters, key.denied = self._apply_denies(entries, denies)
        return key

    def _grants(self, arn: str, account: str, region: str, audited: set[str]) -> list[Decrypter]:
        grants = self.extras.grants.get(arn) if self.extras is not None else None
        if grants is None or isinstance(grants, Unreadable):
            why = grants.reason if isinstance(grants, Unreadable) else "they were not read"
            reason = f"the key's grants cannot be read: {why}"
            self._gap(account, arn, reason, region)
            return [Decrypter("(grants)", "unknown", "holders of grants on the key", None, MAY, ["grants"], [reason])]
        out = []
        for grant in grants:
            operations = grant.get("Operations") or []
            if "Decrypt" not in operations:
                continue
            grantee = grant.get("GranteePrincipal") or "?"
            reasons = []
            if grant.get("Constraints"):
                reasons.append(f"grant constraints {_compact_json(grant['Constraints'])}")
            name = f" ({grant['Name']})" if grant.get("Name") else ""
            kind = "Service" if grantee.endswith(".amazonaws.com") else "AWS"
            out.extend(self._expand((kind, grantee), reasons, f"grant {grant.get('GrantId', '?')}{name}",
                                    account, arn, audited))
        return out

    def _expand(self, principal: tuple, reasons: list[str], via: str, key_account: str, key_arn: str,
                audited: set[str]) -> list[Decrypter]:
        """Decrypters of one principal element; the account root expands to the principals of
        that account whose identity policies allow kms:Decrypt on the key."""
        info = parse_principal(principal)
        if info["type"] == "account":
            acct = info["account"]
            note = ("any IAM principal of the account whose IAM policy allows it"
                    + ("" if acct in audited else "; the account was not audited, its principals are not listed"))
            out = [Decrypter(info["principal"], "account", f"account {acct}", acct, MAY if reasons else CAN,
                             [f"{via} (delegates to IAM)"], list(reasons), note)]
            for p in self.by_arn.values():
                if p.account != acct:
                    continue
                allowed = self._identity_allows(p, key_arn)
                if allowed is None:
                    continue
                mode, labels, why = allowed
                conditions = reasons + why
                out.append(Decrypter(p.arn, p.type, p.name, p.account, MAY if mode == MAY or conditions else CAN,
                                     [f"{via} → IAM: {', '.join(labels)}"], conditions))
            return out
        if info["type"] in ("user", "role"):
            p = self.by_name.get((info["account"], info["type"], info["name"])) or self.by_arn.get(info["principal"])
            if p is None:
                return [Decrypter(info["principal"], info["type"], info["name"], info["account"],
                                  MAY if reasons else CAN, [via], list(reasons),
                                  "not among the audited principals (another account, or deleted and recreated)")]
            conditions = list(reasons)
            if p.account != key_account:
                allowed = self._identity_allows(p, key_arn)
                if allowed is None:
                    conditions.append("another account's principal: its IAM policies do not allow kms:Decrypt "
                                      "on the key today")
                else:
                    conditions.extend(allowed[2])
                    if allowed[0] == MAY:
                        conditions.append("another account's principal: its IAM policies may allow it")
            return [Decrypter(p.arn, p.type, p.name, p.account, MAY if conditions else CAN, [via], conditions)]
        return [Decrypter(info["principal"], info["type"], info["name"], info.get("account"),
                          MAY if reasons or info["type"] == "unknown" else CAN, [via],
                          list(reasons) + ([info["note"]] if info.get("note") and info["type"] == "unknown" else []),
                          info.get("note") if info["type"] != "unknown" else None)]

    def _identity_allows(self, p: Principal, key_arn: str) -> tuple[str, list[str], list[str]] | None:
        """(CAN or MAY, the policies that allow, why conditional) when the principal's identity
        policies allow kms:Decrypt on the key; None when they certainly do not."""
        allows: list[tuple[str, list[str]]] = []
        maybe_denied: list[str] = []
        for label, s, action in self.relevant[p.arn]:
            matched = _combine(action, _covers_key(s, key_arn))
            if matched is False:
                continue
            reasons = _statement_reasons(s, matched)
            if s.denies:
                if not reasons:
                    return None  # an unconditional Deny that certainly matches
                maybe_denied.append(f"a Deny in {label} may apply ({'; '.join(reasons)})")
            else:
                allows.append((label, reasons))
        for label in self.managed[p.arn]:
            name = label.rsplit(": ", 1)[-1]
            if name in DECRYPTING_MANAGED:
                allows.append((f"AWS managed policy {label}", []))
            elif name in ESCALATING_MANAGED:
                allows.append((f"AWS managed policy {label}", [f"{name} {ESCALATING_MANAGED[name]}"]))
        for reason in self.uncertain[p.arn]:
            allows.append(("a policy that could not be read", [reason]))
        if not allows:
            return None
        certain = [label for label, reasons in allows if not reasons]
        why = [] if certain else sorted({r for _, rs in allows for r in rs})
        why += maybe_denied
        boundary = self._boundary(p, key_arn)
        if boundary is False:
            return None
        if isinstance(boundary, str):
            why.append(boundary)
        labels = certain or [label for label, _ in allows]
        return (MAY if why else CAN), sorted(set(labels)), why

    def _boundary(self, p: Principal, key_arn: str) -> bool | str | None:
        """None: no boundary or one that allows; False: it certainly forbids; str: why uncertain."""
        arn = p.permissions_boundary
        if not arn:
            return None
        name = arn.rsplit("/", 1)[-1]
        if ":iam::aws:policy/" in arn:
            return None if name in DECRYPTING_MANAGED else (
                f"the permissions boundary {name} (an AWS managed policy, not read) may forbid it")
        if self.boundaries is None:
            self.boundaries = {(r.live_facts or {}).get("arn"): r for t in self.live
                               for r in t.of_type("AWS::IAM::ManagedPolicy")}
        policy = self.boundaries.get(arn)
        if policy is None:
            return f"the permissions boundary {name} was not collected and may forbid it"
        statements = list(policy_statements(policy, "PolicyDocument"))
        if any(isinstance(s, tuple) for s in statements):
            return f"the permissions boundary {name} cannot be read and may forbid it"
        allowed, uncertain = False, False
        for s in statements:
            matched = _combine(_grants_action(s), _covers_key(s, key_arn))
            if matched is False:
                continue
            reasons = _statement_reasons(s, matched)
            if s.denies:
                if not reasons:
                    return False
                uncertain = True
            elif reasons:
                uncertain = True
            else:
                allowed = True
        if allowed and not uncertain:
            return None
        if allowed or uncertain:
            return f"the permissions boundary {name} allows it only under conditions"
        return False

    def _apply_denies(self, entries: list[Decrypter], denies: list) -> tuple[list[Decrypter], list[dict]]:
        merged: dict[str, Decrypter] = {}
        denied: list[dict] = []
        for entry in entries:
            certain, maybe = None, []
            for principal, reasons, via, negated in denies:
                applies = _deny_applies(principal, entry, negated)
                if applies is False:
                    continue
                if applies is True and not reasons:
                    certain = via
                    break
                maybe.append(f"a Deny ({via}) may apply" + (f": {'; '.join(reasons)}" if reasons else ""))
            if certain:
                denied.append({"principal": entry.principal, "via": f"{', '.join(entry.via)}; denied by {certain}"})
                continue
            if maybe:
                entry.conditions = entry.conditions + maybe
                entry.access = MAY
            have = merged.get(entry.principal)
            if have is None:
                merged[entry.principal] = entry
                continue
            have.via = have.via + [v for v in entry.via if v not in have.via]
            if entry.access == CAN and have.access == MAY:
                have.access, have.conditions = CAN, entry.conditions  # one certain way is enough
            elif have.access == MAY:
                have.conditions = have.conditions + [c for c in entry.conditions if c not in have.conditions]
        order = {"account": 0, "user": 1, "role": 2, "service": 3, "anyone": 4}
        return sorted(merged.values(), key=lambda d: (order.get(d.type, 5), d.access != CAN, d.principal)), denied

    # -------------------------------------------------------------- flags

    def flags(self, principals: list[Principal], keys: list[Key]) -> list[Flag]:
        out: list[Flag] = []

        def flag(p: Principal, code: str, reason: str, subject: str | None = None) -> None:
            severity, fix = FLAGS[code]
            out.append(Flag(code, severity, p.account, p.arn, p.name, p.type, reason, fix, subject))
            if code not in p.flags:
                p.flags.append(code)

        for p in principals:
            if p.service_linked:
                continue  # created, used and removed by AWS services: listed, never flagged
            what = f"the {p.type} {p.name}"
            if p.activity == "unused":
                flag(p, "unused", f"{what} was {p.activity_detail} (more than {UNUSED_DAYS} days)")
            for key in p.access_keys:
                if key.status != "Active":
                    continue
                label = f"access key {key.id}"
                if key.age_days is not None and key.age_days > MAX_KEY_AGE_DAYS:
                    flag(p, "access-key-old", f"{label} is {key.age_days} days old (created {key.created}); "
                                              f"keys are rotated within {MAX_KEY_AGE_DAYS} days", key.id)
                if key.last_used is None and key.last_used_unknown is None:
                    since = f" since it was created on {key.created}" if key.created else ""
                    flag(p, "access-key-never-used", f"{label} was never used{since}", key.id)
                elif key.last_used is not None and key.age_days is not None and key.age_days > UNUSED_DAYS:
                    days = (self.today - dt.date.fromisoformat(key.last_used)).days
                    if days > UNUSED_DAYS:
                        flag(p, "access-key-unused", f"{label} was last used {key.last_used}, {days} days ago",
                             key.id)
            if p.console_password and p.mfa is False:
                flag(p, "console-without-mfa", f"{what} has a console password and no MFA device")
            if p.activity == "unused" and p.can_decrypt:
                access = {c["key"]: c["access"] for c in p.can_decrypt}
                names = ", ".join(_key_label(k) + ("" if access[k.arn] == CAN else " (conditional)")
                                  for k in keys if k.arn in access)
                flag(p, "unused-decrypter", f"{what} can decrypt with {names} and was {p.activity_detail}")
            if p.admin_equivalent:
                flag(p, "admin-equivalent", f"{what} is admin-equivalent: {'; '.join(p.admin_equivalent)}")
        for key in keys:
            for d in key.decrypters:
                if d.type == "anyone" and d.access == CAN:
                    severity, fix = FLAGS["key-open-to-anyone"]
                    out.append(Flag("key-open-to-anyone", severity, key.account, "*", "anyone", "anyone",
                                    f"{_key_label(key)} lets any principal decrypt ({', '.join(d.via)})", fix,
                                    key.arn))
        return out

    # -------------------------------------------------------------- accounts, gaps

    def accounts(self, regions: list[str]) -> list[dict]:
        seen: dict[str, set[str]] = {}
        for tpl in self.live:
            account, _, region = tpl.stack.partition("/")
            seen.setdefault(account, set())
            if region and region != "global":
                seen[account].add(region)
        out = []
        for account in sorted(seen):
            out.append({"account": account,
                        "regions": sorted(seen[account] | set(regions)),
                        "users": sum(p.account == account and p.type == "user" for p in self.by_arn.values()),
                        "roles": sum(p.account == account and p.type == "role" for p in self.by_arn.values())})
        return out

    def _gap(self, account: str | None, subject: str | None, reason: str, region: str | None = None) -> None:
        self.gaps.append(Gap(account, region or ("global" if subject and ":iam::" in subject else region),
                             subject, reason))


# ------------------------------------------------------------------------------ policy helpers

def _grants_action(s: Statement, action: str = DECRYPT) -> bool | Unknown:
    """Does the statement's Action / NotAction reach `action`? Unknown when it cannot be told."""
    if s.actions is not None:
        if any(action_matches(a, action) for a in s.actions if isinstance(a, str)):
            return True
        odd = next((a for a in s.actions if not isinstance(a, str)), None)
        return _unknown(odd, "an action cannot be read") if odd is not None else False
    if s.not_actions is not None:
        if any(action_matches(a, action) for a in s.not_actions if isinstance(a, str)):
            return False
        odd = next((a for a in s.not_actions if not isinstance(a, str)), None)
        # NotAction reaches every action it does not name: conservatively, kms:Decrypt too
        return _unknown(odd, "a NotAction entry cannot be read") if odd is not None else True
    return False


def _covers_key(s: Statement, key_arn: str) -> bool | Unknown:
    if s.resources is not None:
        if covers([v for v in s.resources if isinstance(v, str)], key_arn):
            return True
        odd = next((v for v in s.resources if not isinstance(v, str)), None)
        return _unknown(odd, "a resource cannot be read") if odd is not None else False
    if s.not_resources is not None:
        if covers([v for v in s.not_resources if isinstance(v, str)], key_arn):
            return False
        odd = next((v for v in s.not_resources if not isinstance(v, str)), None)
        return _unknown(odd, "a NotResource entry cannot be read") if odd is not None else True
    return True  # a key policy's statements apply to the key itself


def _unknown(value: Any, default: str) -> Unknown:
    return value if isinstance(value, Unknown) else Unknown(default)


def _combine(*verdicts: bool | Unknown) -> bool | Unknown:
    if any(v is False for v in verdicts):
        return False
    return next((v for v in verdicts if isinstance(v, Unknown)), True)


def _statement_reasons(s: Statement, matched: bool | Unknown) -> list[str]:
    """Why a matching statement's effect is not certain: its condition, an unreadable part."""
    reasons = []
    if isinstance(matched, Unknown):
        reasons.append(f"whether it covers kms:Decrypt on the key cannot be told: {matched.reason}")
    if isinstance(s.effect, Unknown):
        reasons.append(f"its effect cannot be known: {s.effect.reason}")
    if isinstance(s.condition, Unknown):
        reasons.append(f"its condition cannot be read: {s.condition.reason}")
    elif s.has_condition:
        reasons.append(f"condition {_compact_json(s.condition)}")
    for principal in list(s.principals or ()) + list(s.not_principals or ()):
        if isinstance(principal[1], Unknown):
            reasons.append(f"a principal cannot be read: {principal[1].reason}")
    return reasons


def _deny_applies(principal: tuple, entry: Decrypter, negated: bool) -> bool | None:
    """Does a Deny's principal element reach the decrypter? None: perhaps (NotPrincipal, unknown)."""
    kind, value = principal
    if isinstance(value, Unknown):
        return None
    if negated:
        info = parse_principal(principal)
        if info["principal"] == entry.principal or (info["type"] == entry.type and info["name"] == entry.name
                                                    and info.get("account") == entry.account):
            return False  # named as excepted from the Deny
        return None  # everyone else is denied: conservatively, "may be denied"
    if value == "*" and kind in ("*", "AWS"):
        return True
    info = parse_principal(principal)
    if info["type"] == "account":
        return entry.account == info["account"] and entry.type in ("user", "role", "account")
    if info["type"] in ("user", "role"):
        return entry.type == info["type"] and entry.account == info["account"] and entry.name == info["name"]
    return info["principal"] == entry.principal


_IAM_ARN = re.compile(r"^arn:(aws[a-z-]*):(iam|sts)::(\d{12}):(.+)$")
_UNIQUE_ID = re.compile(r"^A(IDA|ROA|GPA|NPA|NVA|PKA|SCA|SIA)[A-Z0-9]{12,}$")


def parse_principal(principal: tuple) -> dict:
    """{"type", "principal", "name", "account", "note"} of one (kind, value) policy principal."""
    kind, value = principal
    if isinstance(value, Unknown) or kind == "?":
        reason = value.reason if isinstance(value, Unknown) else "cannot be read"
        return {"type": "unknown", "principal": "(unknown)", "name": "a principal that cannot be read",
                "account": None, "note": f"the principal cannot be read: {reason}"}
    text = as_text(value) if not isinstance(value, str) else value
    text = text or "?"
    if kind == "*" or (kind == "AWS" and text == "*"):
        return {"type": "anyone", "principal": "*", "name": "anyone", "account": None,
                "note": "any AWS principal of any account"}
    if kind == "Service":
        return {"type": "service", "principal": text, "name": text, "account": None, "note": None}
    if kind == "Federated":
        return {"type": "federated", "principal": text, "name": text, "account": None, "note": None}
    if kind != "AWS":
        return {"type": "other", "principal": f"{kind}:{text}", "name": text, "account": None, "note": None}
    if re.fullmatch(r"\d{12}", text):
        return {"type": "account", "principal": f"arn:aws:iam::{text}:root", "name": f"account {text}",
                "account": text, "note": None}
    if _UNIQUE_ID.match(text):
        return {"type": "deleted", "principal": text, "name": text, "account": None,
                "note": "a unique id: the principal was deleted (KMS shows deleted principals by id)"}
    m = _IAM_ARN.match(text)
    if not m:
        return {"type": "other", "principal": text, "name": text, "account": None, "note": None}
    partition, service, account, rest = m.groups()
    if service == "iam" and rest == "root":
        return {"type": "account", "principal": text, "name": f"account {account}", "account": account,
                "note": None}
    if service == "iam" and rest.startswith(("user/", "role/")):
        kind_name = rest.split("/", 1)[0]
        return {"type": kind_name, "principal": text, "name": rest.rsplit("/", 1)[-1], "account": account,
                "note": None}
    if service == "sts" and rest.startswith("assumed-role/"):
        name = rest.split("/")[1] if rest.count("/") >= 1 else rest
        return {"type": "role", "principal": f"arn:{partition}:iam::{account}:role/{name}", "name": name,
                "account": account, "note": None}
    return {"type": "other", "principal": text, "name": rest, "account": account, "note": None}


# ------------------------------------------------------------------------------ small helpers

def _sid(r: Resource, s: Statement) -> str:
    """The statement's Sid, or its index, for people to find it in the key policy."""
    match = re.search(r"/Statement/(\d+)$", s.path)
    index = int(match.group(1)) if match else None
    sid = None
    document = r.props.get("KeyPolicy")
    if isinstance(document, dict) and index is not None:
        statements = document.get("Statement")
        statements = [statements] if isinstance(statements, dict) else statements
        if isinstance(statements, list) and index < len(statements) and isinstance(statements[index], dict):
            sid = statements[index].get("Sid")
    if isinstance(sid, str) and sid:
        return f'"{sid}"'
    return f"statement {index}" if index is not None else "statement"


def _key_label(key: Key) -> str:
    return f"{key.aliases[0]} ({key.arn})" if key.aliases else key.arn


def _compact_json(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return text if len(text) <= 240 else text[:237] + "..."


def _text(value: Any) -> str | None:
    if value is ABSENT or value is None or isinstance(value, Unknown):
        return None
    return as_text(value) if not isinstance(value, str) else value


def _iso(value: Any) -> str | None:
    return value.isoformat() if isinstance(value, dt.date) else None


