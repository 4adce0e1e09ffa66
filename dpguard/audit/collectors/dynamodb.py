"""DynamoDB tables: encryption, point-in-time recovery, deletion protection, resource policies,
tags.

Shape, as CloudFormation writes it: `AWS::DynamoDB::Table` {TableName, BillingMode, TableClass,
SSESpecification {SSEEnabled, SSEType, KMSMasterKeyId}, PointInTimeRecoverySpecification
{PointInTimeRecoveryEnabled, RecoveryPeriodInDays}, DeletionProtectionEnabled,
StreamSpecification {StreamViewType, ResourcePolicy {PolicyDocument}}, ResourcePolicy
{PolicyDocument} (parsed), Tags [{Key, Value}]}.

* Encryption: DynamoDB always encrypts. A table without SSEDescription (or whose SSE is DISABLED
  or DISABLING, or of SSEType AES256) is encrypted with an AWS-owned key, which a template says
  with SSEEnabled false: written as {SSEEnabled: false}, with no key. A table under KMS is named
  by its key's ARN even when that is the AWS managed key aws/dynamodb; kms:DescribeKey tells
  (rds.KeyKinds, one call per key), and that key is written as `alias/aws/dynamodb`, as a
  template would name it.
* Four calls per table (DescribeTable, DescribeContinuousBackups, ListTagsOfResource,
  GetResourcePolicy), one more for a table with a stream (the stream's policy); tables are read
  side by side, as S3's buckets are. A table deleted between the listing and DescribeTable is
  skipped. Global tables: each replica is listed in its own region and judged there.
"""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..clients import Clients, Unreadable, listing, read
from ..live import LiveTemplate, unreadable
from . import collector
from .rds import KeyKinds

GONE = ("ResourceNotFoundException",)
NO_POLICY = ("PolicyNotFoundException",)
KMS_ACTIVE = ("ENABLED", "UPDATING")  # UPDATING: moving from one KMS key to another


@collector("dynamodb")
def collect(clients: Clients, region: str, live: LiveTemplate) -> None:
    ddb = clients("dynamodb", region)
    names = listing(ddb, "list_tables", "TableNames")
    if isinstance(names, Unreadable):
        live.gap(f"DynamoDB tables in {region} could not be listed: {names.reason}")
        return
    keys = KeyKinds(clients, region, live.account, "dynamodb")
    partition = clients.session.get_partition_for_region(region)
    arn = f"arn:{partition}:dynamodb:{region}:{live.account}:table/{{}}"
    with ThreadPoolExecutor(max_workers=clients.concurrency) as pool:
        for future in [pool.submit(_table, ddb, keys, arn.format(name), name, live) for name in names]:
            future.result()


def _table(ddb: Any, keys: KeyKinds, arn: str, name: str, live: LiveTemplate) -> None:
    described = read(lambda: ddb.describe_table(TableName=name)["Table"], missing=GONE)
    if described is None:
        return  # deleted since the listing
    props: dict = {"TableName": name}
    if isinstance(described, Unreadable):
        why = unreadable(described.reason)
        # whether the table has a stream, and so a stream policy, is not known either
        props.update(SSESpecification={"SSEEnabled": why, "KMSMasterKeyId": why}, DeletionProtectionEnabled=why,
                     StreamSpecification={"ResourcePolicy": {"PolicyDocument": why}})
    else:
        arn = described.get("TableArn") or arn
        props.update(BillingMode=(described.get("BillingModeSummary") or {}).get("BillingMode"),
                     TableClass=(described.get("TableClassSummary") or {}).get("TableClass"),
                     SSESpecification=_compact(_encryption(described.get("SSEDescription"), keys)),
                     DeletionProtectionEnabled=bool(described.get("DeletionProtectionEnabled")))
        stream = described.get("StreamSpecification") or {}
        if stream.get("StreamEnabled"):
            spec = {"StreamViewType": stream.get("StreamViewType")}
            if described.get("LatestStreamArn"):
                document = _policy(ddb, described["LatestStreamArn"])
                if document is not None:
                    spec["ResourcePolicy"] = {"PolicyDocument": document}
            props["StreamSpecification"] = _compact(spec)
    backups = read(lambda: ddb.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"])
    if isinstance(backups, Unreadable):
        props["PointInTimeRecoverySpecification"] = {"PointInTimeRecoveryEnabled": unreadable(backups.reason)}
    else:
        pitr = backups.get("PointInTimeRecoveryDescription") or {}
        enabled = pitr.get("PointInTimeRecoveryStatus") == "ENABLED"
        props["PointInTimeRecoverySpecification"] = _compact({
            "PointInTimeRecoveryEnabled": enabled,
            "RecoveryPeriodInDays": pitr.get("RecoveryPeriodInDays") if enabled else None})
    document = _policy(ddb, arn)
    if document is not None:
        props["ResourcePolicy"] = {"PolicyDocument": document}
    tags = listing(ddb, "list_tags_of_resource", "Tags", ResourceArn=arn)
    if isinstance(tags, Unreadable):
        props["Tags"] = unreadable(tags.reason)
    elif tags:
        props["Tags"] = tags
    live.add(name, "AWS::DynamoDB::Table", _compact(props), arn=arn)


def _encryption(sse: dict | None, keys: KeyKinds) -> dict:
    """SSEDescription as a template's SSESpecification."""
    sse = sse or {}
    key = sse.get("KMSMasterKeyArn")
    if sse.get("Status") not in KMS_ACTIVE or sse.get("SSEType", "KMS") != "KMS":
        return {"SSEEnabled": False}  # an AWS-owned key
    # without a key named, read as a template reads SSEEnabled alone: the AWS managed key
    return {"SSEEnabled": True, "SSEType": "KMS", "KMSMasterKeyId": keys.reference(key) if key else None}


def _policy(ddb: Any, arn: str) -> Any:
    """The resource policy of a table or stream (parsed), None when it has none."""
    answer = read(lambda: ddb.get_resource_policy(ResourceArn=arn), missing=NO_POLICY)
    if answer is None or isinstance(answer, Unreadable):
        return None if answer is None else unreadable(answer.reason)
    try:
        return json.loads(answer["Policy"])
    except (KeyError, TypeError, ValueError):
        return unreadable("the resource policy DynamoDB returned is not JSON")


def _compact(props: dict) -> dict:
    return {k: v for k, v in props.items() if v is not None and v != [] and v != ""}
