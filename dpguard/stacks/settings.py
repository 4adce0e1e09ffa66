"""Per-environment settings of the baseline, read from cdk.json context (`environments`)."""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from constructs import Construct

from ..patterns.logs import RETENTION_DAYS
from ..response.common import ResponseError
from ..response.incidents import POLICY_PARTIES, read_parties


class SettingsError(ValueError):
    """A bad cdk.json environment: one line naming the environment and the setting."""


@dataclass(frozen=True)
class EnvironmentSettings:
    name: str
    allowed_cidrs: tuple[str, ...]   # sources admitted to the network's entry points
    alert_email: str                 # who is told of security alarms (clause 4)
    retention_days: int              # log retention (clause 9)
    data_owner: str                  # `data-owner` tag of the baseline's data stores (clause 6)
    account: str | None = None       # None: environment-agnostic synth, no lookups
    region: str | None = None
    vpc_cidr: str = "10.20.0.0/16"
    dpguard: dict = field(default_factory=dict)  # options for dpguard.enforce()
    # Who must hear of a breach, and within how many hours of its detection (clause 4): 72 by
    # default, less where a party's rules say so (Amazon: 24). `types` limits a party to some
    # incident types (default: every type that may affect third parties).
    notify_parties: tuple = tuple(POLICY_PARTIES)

    @classmethod
    def from_context(cls, scope: Construct, name: str | None = None) -> "EnvironmentSettings":
        environments = scope.node.try_get_context("environments") or {}
        name = name or scope.node.try_get_context("environment") or "dev"
        if name not in environments:
            raise SettingsError(f"cdk.json has no environment {name!r} under context.environments "
                                f"(known: {', '.join(environments) or 'none'}); pick one with -c environment=NAME")
        raw = dict(environments[name])
        known = set(cls.__dataclass_fields__) - {"name"}
        unknown = set(raw) - known
        if unknown:
            raise SettingsError(f"environment {name!r}: unknown setting(s) {', '.join(sorted(unknown))}")
        try:
            settings = cls(name=name, **{**raw, "allowed_cidrs": tuple(raw.get("allowed_cidrs") or ())})
        except TypeError as e:
            raise SettingsError(f"environment {name!r}: {e}") from None
        settings.check()
        return settings

    def check(self) -> None:
        where = f"environment {self.name!r}"
        if not re.fullmatch(r"[a-z][a-z0-9-]{0,19}", self.name):  # it is part of stack and resource names
            raise SettingsError(f"{where}: the name must be lower-case letters, digits and '-' "
                                f"(at most 20, starting with a letter)")
        for cidr in self.allowed_cidrs + (self.vpc_cidr,):
            try:
                net = ipaddress.ip_network(cidr)
            except ValueError:
                raise SettingsError(f"{where}: {cidr!r} is not a CIDR block") from None
            if net.prefixlen == 0:
                raise SettingsError(f"{where}: {cidr} admits the whole internet (clause 1)")
        if "@" not in self.alert_email:
            raise SettingsError(f"{where}: alert_email {self.alert_email!r} is not an e-mail address")
        if not isinstance(self.retention_days, int) or self.retention_days < 1:
            raise SettingsError(f"{where}: retention_days must be a positive number of days")
        if self.retention_days not in RETENTION_DAYS:  # log groups take only these
            raise SettingsError(f"{where}: retention_days {self.retention_days} is not a CloudWatch Logs "
                                f"retention period ({', '.join(map(str, RETENTION_DAYS))})")
        try:  # the incident function's own check, at synth instead of at the first incident
            parties = read_parties(list(self.notify_parties) if isinstance(self.notify_parties, tuple)
                                   else self.notify_parties)
        except ResponseError as e:
            raise SettingsError(f"{where}: notify_parties: {e} (clause 4)") from None
        if any(party["hours"] > 72 for party in parties):
            raise SettingsError(f"{where}: notify_parties: no party may wait longer than the policy's 72 hours")
        if not self.data_owner:
            raise SettingsError(f"{where}: data_owner is required (the data-owner tag, clause 6)")
