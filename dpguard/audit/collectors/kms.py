"""KMS keys that we manage: rotation, key policy, spec, state, tags.

Shapes, as CloudFormation writes them:
* `AWS::KMS::Key` {Description, Enabled, KeySpec, KeyUsage, Origin, MultiRegion,
  EnableKeyRotation, RotationPeriodInDays, KeyPolicy (the "default" policy, parsed), Tags [{Key, Value}]}.
* `AWS::KMS::ReplicaKey` {PrimaryKeyArn, Description, Enabled, KeyPolicy, Tags} for replicas of
  multi-Region keys (their rotation follows the primary key, judged in its region).

Left out: AWS-managed keys (KeyManager AWS, or an alias in the reserved `alias/aws/` namespace),
which we cannot configure; and keys pending deletion, which can no longer encrypt and
will be gone. A key deleted between the listing and DescribeKey is skipped. Rotation is read only
where KMS supports automatic rotation (symmetric keys with AWS_KMS key material); elsewhere
EnableKeyRotation is left out, as a template would.
"""
from __future__ import annotations

import json

from ..clients import Clients, Unreadable, listing, read
from ..live import LiveTemplate, unreadable
from . import collector

SYMMETRIC = "SYMMETRIC_DEFAULT"
GONE = ("NotFoundException",)
PENDING_DELETION = ("PendingDeletion", "PendingReplicaDeletion")


@collector("kms")
def collect(clients: Clients, region: str, live: LiveTemplate) -> None:
    kms = clients("kms", region)
    keys = listing(kms, "list_keys", "Keys")
    if isinstance(keys, Unreadable):
        live.gap(f"KMS keys in {region} could not be listed: {keys.reason}")
        return
    aliases = listing(kms, "list_aliases", "Aliases")
    names: dict[str, list[str]] = {}
    for alias in [] if isinstance(aliases, Unreadable) else aliases:
        if alias.get("TargetKeyId"):
            names.setdefault(alias["TargetKeyId"], []).append(alias["AliasName"])
    for key in keys:
        _collect_key(kms, key, names.get(key["KeyId"], []), live)


def _collect_key(kms, key: dict, aliases: list[str], live: LiveTemplate) -> None:
    key_id, arn = key["KeyId"], key["KeyArn"]
    if any(a.startswith("alias/aws/") for a in aliases):
        return  # the alias/aws/ prefix is reserved for AWS managed keys
    hint = aliases[0].removeprefix("alias/") if aliases else f"key-{key_id}"
    meta = read(lambda: kms.describe_key(KeyId=key_id)["KeyMetadata"], missing=GONE)
    if meta is None:
        return  # deleted since the listing
    if isinstance(meta, Unreadable):
        # Whose key it is cannot be told: judged as one of ours, every fact unreadable.
        live.add(hint, "AWS::KMS::Key", {"EnableKeyRotation": unreadable(meta.reason),
                                         "KeyPolicy": unreadable(meta.reason)}, arn=arn)
        return
    if meta.get("KeyManager") == "AWS" or meta.get("KeyState") in PENDING_DELETION:
        return
    spec = meta.get("KeySpec") or meta.get("CustomerMasterKeySpec")
    props = {"Description": meta.get("Description") or None, "Enabled": meta.get("Enabled"),
             "KeyUsage": meta.get("KeyUsage"), "Origin": meta.get("Origin")}
    replica = (meta.get("MultiRegionConfiguration") or {}).get("MultiRegionKeyType") == "REPLICA"
    if replica:
        primary = (meta["MultiRegionConfiguration"].get("PrimaryKey") or {}).get("Arn")
        props = {"PrimaryKeyArn": primary, "Description": props["Description"], "Enabled": props["Enabled"]}
    else:
        props.update(KeySpec=spec, MultiRegion=meta.get("MultiRegion"))
        if spec == SYMMETRIC and meta.get("Origin", "AWS_KMS") == "AWS_KMS":
            rotation = read(lambda: kms.get_key_rotation_status(KeyId=key_id))
            if isinstance(rotation, Unreadable):
                props["EnableKeyRotation"] = unreadable(rotation.reason)
            else:
                props["EnableKeyRotation"] = bool(rotation.get("KeyRotationEnabled"))
                if rotation.get("KeyRotationEnabled") and rotation.get("RotationPeriodInDays"):
                    props["RotationPeriodInDays"] = rotation["RotationPeriodInDays"]
    policy = read(lambda: kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"])
    props["KeyPolicy"] = unreadable(policy.reason) if isinstance(policy, Unreadable) else _parse(policy)
    tags = listing(kms, "list_resource_tags", "Tags", KeyId=key_id)
    if isinstance(tags, Unreadable):
        props["Tags"] = unreadable(tags.reason)
    elif tags:
        props["Tags"] = [{"Key": t["TagKey"], "Value": t["TagValue"]} for t in tags]
    live.add(hint, "AWS::KMS::ReplicaKey" if replica else "AWS::KMS::Key",
             {k: v for k, v in props.items() if v is not None}, arn=arn)


def _parse(document: str):
    try:
        return json.loads(document)
    except ValueError:
        return unreadable("the key policy KMS returned is not JSON")
