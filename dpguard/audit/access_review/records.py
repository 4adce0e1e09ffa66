"""What the access review lists: principals, keys, flags with what to do, gaps and limits."""
from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any

from ... import __version__
from ...rules.live import MAX_KEY_AGE_DAYS, UNUSED_DAYS

DECRYPT = "kms:Decrypt"
CAN, MAY = "can decrypt", "may decrypt (conditional)"
KEY_TYPES = ("AWS::KMS::Key", "AWS::KMS::ReplicaKey")

# The IAM actions the review calls beyond the audit's collectors (add them to the audit role).
EXTRA_ACTIONS = {
    "iam:ListMFADevices": "`dpguard access-review` tells console users without MFA",
    "kms:ListGrants": "`dpguard access-review` lists who can decrypt with a key through a grant",
}

# AWS managed policies are collected by ARN only (dpguard/audit/collectors/iam.py): judged by name.
DECRYPTING_MANAGED = {
    "AdministratorAccess": "allows every action on every resource",
    "PowerUserAccess": "allows every action except IAM, Organizations and Account management",
}
ESCALATING_MANAGED = {
    "IAMFullAccess": "can attach any policy, kms:Decrypt included, to itself",
}
# Actions that let a principal change its own (or anyone's) permissions: admin-equivalent on "*".
ESCALATION_ACTIONS = ("iam:AttachUserPolicy", "iam:AttachRolePolicy", "iam:AttachGroupPolicy",
                      "iam:PutUserPolicy", "iam:PutRolePolicy", "iam:PutGroupPolicy",
                      "iam:CreatePolicyVersion", "iam:SetDefaultPolicyVersion", "iam:AddUserToGroup",
                      "iam:UpdateAssumeRolePolicy")

# What the review does not judge, whatever the account: stated in every report.
LIMITS = (
    "AWS managed policies are judged by name (AdministratorAccess and PowerUserAccess can decrypt, "
    "IAMFullAccess may grant itself decryption); other AWS managed policies are taken not to allow "
    "kms:Decrypt.",
    "Service control policies, resource control policies and session policies are not read: "
    "they can only narrow what is listed here.",
    "IAM Identity Center users appear through the roles of their permission sets "
    "(AWSReservedSSO_...); who is assigned to those permission sets is not read.",
    "Access to data through resource policies of other services (S3 bucket policies, Secrets "
    "Manager, SQS, SNS) is judged by `dpguard audit`, not listed here.",
    "The root user's credentials (access keys, MFA) are judged by `dpguard audit` (DP-RootAccessKeys).",
)

FLAGS = {  # code -> (severity, what to do)
    "unused": ("warning",
               "Confirm with the owner, then remove it: for a user aws iam delete-login-profile, "
               "delete-access-key and delete-user; for a role detach its policies and aws iam delete-role."),
    "access-key-old": ("error",
                       "Rotate it: create a new key, move the workload, then aws iam update-access-key "
                       "--status Inactive and delete-access-key; better, replace the user by a role."),
    "access-key-never-used": ("warning",
                              "Deactivate and delete it: aws iam update-access-key --status Inactive, "
                              "then aws iam delete-access-key."),
    "access-key-unused": ("warning",
                          "Deactivate and delete it: aws iam update-access-key --status Inactive, "
                          "then aws iam delete-access-key."),
    "console-without-mfa": ("error",
                            "Assign an MFA device (a passkey or hardware key), or remove the console "
                            "password: aws iam delete-login-profile."),
    "unused-decrypter": ("error",
                         "Remove its access to the key (the key policy statement, grant or IAM policy "
                         "that gives it) or remove the principal."),
    "admin-equivalent": ("error",
                         "Replace it by the least-privilege policy the job needs; keep administrator "
                         "access to a few break-glass roles that sign in with MFA."),
    "key-open-to-anyone": ("error",
                           "Name the principals in the key policy, or scope the statement with "
                           "aws:PrincipalOrgID / kms:CallerAccount and kms:ViaService conditions."),
}


@dataclass
class AccessKey:
    id: str | None
    status: str | None
    created: str | None
    age_days: int | None
    last_used: str | None  # a date, or None: never used (or unknown: see `last_used_unknown`)
    last_used_unknown: str | None = None


@dataclass
class Principal:
    arn: str
    account: str
    type: str  # "user" or "role"
    name: str
    path: str
    created: str | None
    last_used: str | None
    last_used_via: str | None
    days_since_use: int | None
    activity: str  # "used", "unused", "new" (younger than 90 days, unused), "unknown"
    activity_detail: str | None
    service_linked: bool
    console_password: bool | None  # None: unknown (or not applicable to roles)
    mfa: bool | None
    access_keys: list[AccessKey] = field(default_factory=list)
    managed_policies: list[str] = field(default_factory=list)
    inline_policies: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    permissions_boundary: str | None = None
    admin_equivalent: list[str] = field(default_factory=list)  # reasons
    can_decrypt: list[dict] = field(default_factory=list)  # {"key", "access"}
    flags: list[str] = field(default_factory=list)  # flag codes

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Decrypter:
    principal: str  # an ARN, an account root ARN, a service principal, "*" ...
    type: str  # user, role, account, service, anyone, federated, deleted, unknown, other
    name: str
    account: str | None
    access: str  # CAN or MAY
    via: list[str] = field(default_factory=list)
    conditions: list[str] = field(default_factory=list)  # why the access is conditional
    note: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Key:
    arn: str
    account: str
    region: str
    type: str
    description: str | None
    aliases: list[str]
    enabled: Any
    tags: dict[str, str]
    decrypters: list[Decrypter] = field(default_factory=list)
    denied: list[dict] = field(default_factory=list)  # {"principal", "via"}: certainly denied

    def as_dict(self) -> dict:
        return {**{k: v for k, v in asdict(self).items() if k not in ("decrypters",)},
                "decrypters": [d.as_dict() for d in self.decrypters]}


@dataclass
class Flag:
    code: str
    severity: str
    account: str | None
    principal: str  # ARN (or "*" for a key open to anyone)
    name: str
    type: str
    reason: str
    fix: str
    subject: str | None = None  # the access key id or KMS key ARN the flag is about


@dataclass
class Gap:
    account: str | None
    region: str | None
    subject: str | None
    reason: str


@dataclass
class Extras:
    """What the review reads beyond the collectors: MFA (user ARN -> bool | Unreadable), grants
    and aliases (key ARN -> list | Unreadable)."""

    mfa: dict[str, Any] = field(default_factory=dict)
    grants: dict[str, Any] = field(default_factory=dict)
    aliases: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class Review:
    as_of: dt.date
    generated_at: str
    accounts: list[dict]
    principals: list[Principal]
    keys: list[Key]
    flags: list[Flag]
    gaps: list[Gap]
    limits: tuple[str, ...] = LIMITS

    @property
    def flagged(self) -> bool:
        return bool(self.flags)

    @property
    def incomplete(self) -> bool:
        return bool(self.gaps)

    def summary(self) -> dict:
        return {"accounts": len(self.accounts),
                "users": sum(p.type == "user" for p in self.principals),
                "roles": sum(p.type == "role" for p in self.principals),
                "keys": len(self.keys),
                "flags": len(self.flags),
                "flagged_principals": len({f.principal for f in self.flags}),
                "gaps": len(self.gaps)}

    def as_dict(self) -> dict:
        return {"tool": {"name": "dpguard", "version": __version__, "command": "access-review"},
                "generated_at": self.generated_at,
                "as_of": self.as_of.isoformat(),
                "thresholds": {"unused_days": UNUSED_DAYS, "access_key_age_days": MAX_KEY_AGE_DAYS},
                "summary": self.summary(),
                "accounts": self.accounts,
                "principals": [p.as_dict() for p in self.principals],
                "keys": [k.as_dict() for k in self.keys],
                "flags": [asdict(f) for f in self.flags],
                "gaps": [asdict(g) for g in self.gaps],
                "limits": list(self.limits)}


