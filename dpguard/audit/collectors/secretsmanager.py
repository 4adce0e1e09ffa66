"""Secrets Manager (regional): each secret with its KMS key, replicas, tags and rotation, so that
DP-SecretCmk and DP-SecretRotation judge them. Secret values are never read.

ListSecrets carries everything needed (KmsKeyId, RotationEnabled, RotationRules, Tags), so no
call is made per secret. Secrets Manager leaves KmsKeyId out for secrets under the AWS managed
key aws/secretsmanager, which is what DP-SecretCmk reads as "no customer-managed key". A secret
that rotates gets an `AWS::SecretsManager::RotationSchedule` pointing at it, as a template
would write it.

Secrets that another service creates and manages (OwningService: RDS master user passwords,
EventBridge connection credentials, ...) are left out, as they are in templates, where they are
no Secret resources: their owner rotates them or cannot have them rotated, and they are judged,
where at all, through the owning resource."""
from __future__ import annotations

from ..clients import Clients, Unreadable, listing
from ..live import LiveTemplate, ref
from . import collector


@collector("secretsmanager")
def collect(clients: Clients, region: str, live: LiveTemplate) -> None:
    sm = clients("secretsmanager", region)
    secrets = listing(sm, "list_secrets", "SecretList")
    if isinstance(secrets, Unreadable):
        live.gap(f"Secrets Manager secrets in {region} could not be listed: {secrets.reason}")
        return
    for secret in secrets:
        if secret.get("OwningService"):
            continue
        props = {"Name": secret["Name"], "Description": secret.get("Description"),
                 "KmsKeyId": secret.get("KmsKeyId"), "Tags": secret.get("Tags") or None}
        logical_id = live.add(secret["Name"], "AWS::SecretsManager::Secret",
                              {k: v for k, v in props.items() if v is not None}, arn=secret["ARN"])
        if secret.get("RotationEnabled"):
            rules = {k: v for k, v in (secret.get("RotationRules") or {}).items()
                     if k in ("AutomaticallyAfterDays", "Duration", "ScheduleExpression")}
            schedule = {"SecretId": ref(logical_id), "RotationRules": rules or None,
                        "RotationLambdaARN": secret.get("RotationLambdaARN")}
            live.add(f"{secret['Name']} rotation", "AWS::SecretsManager::RotationSchedule",
                     {k: v for k, v in schedule.items() if v is not None}, arn=secret["ARN"])
