"""CloudWatch Logs log groups: their KMS key and retention.

Shape, as CloudFormation writes it: `AWS::Logs::LogGroup` {LogGroupName, KmsKeyId,
RetentionInDays, LogGroupClass}. No RetentionInDays means the events never expire, as in a
template; no KmsKeyId means the service's own key.

The listing is read whole, so the live template says it holds every log group of the region
(`LiveTemplate.listed`): DP-LambdaLogGroup may then read a function's missing default log group
/aws/lambda/<name> as missing from the account, not merely unread.
"""
from __future__ import annotations

from ..clients import Clients, Unreadable, listing
from ..live import LiveTemplate
from . import collector


@collector("logs")
def collect(clients: Clients, region: str, live: LiveTemplate) -> None:
    logs = clients("logs", region)
    partition = clients.session.get_partition_for_region(region)
    groups = listing(logs, "describe_log_groups", "logGroups")
    if isinstance(groups, Unreadable):
        live.gap(f"log groups in {region} could not be listed: {groups.reason}")
        return
    for group in groups:
        name = group["logGroupName"]
        arn = group.get("logGroupArn") or (group.get("arn") or "").removesuffix(":*") \
            or f"arn:{partition}:logs:{region}:{live.account}:log-group:{name}"
        props = {"LogGroupName": name, "KmsKeyId": group.get("kmsKeyId"),
                 "RetentionInDays": group.get("retentionInDays"), "LogGroupClass": group.get("logGroupClass")}
        live.add(name, "AWS::Logs::LogGroup", {k: v for k, v in props.items() if v is not None}, arn=arn)
    live.listed("AWS::Logs::LogGroup")
