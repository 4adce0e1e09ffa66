"""EC2 networking: VPCs, their flow logs, security groups (with the customer-managed prefix lists
their ingress names), and the rules left in each VPC's default security group.

Shapes, as CloudFormation writes them:
* `AWS::EC2::VPC` {CidrBlock, InstanceTenancy, Tags}; the default security group is a fact in the
  VPC's Metadata["dpguard:live"]["default_security_group"] = {"id", "ingress", "egress"} (rule
  counts) or unreadable, judged by DP-VpcDefaultSgRestricted.
* `AWS::EC2::FlowLog` {ResourceId: Ref VPC, ResourceType: VPC, TrafficType, LogDestinationType,
  LogGroupName | LogDestination, DeliverLogsPermissionArn, ...}. When flow logs cannot be listed,
  each VPC gets one FlowLog whose ResourceType is unreadable, so DP-VpcFlowLogs says why it
  cannot tell instead of reporting a missing flow log.
* `AWS::EC2::SecurityGroup` {GroupName, GroupDescription, VpcId: Ref VPC, SecurityGroupIngress,
  SecurityGroupEgress, Tags}: one CloudFormation rule per address range, group or prefix list of
  an API permission. The default group is written too: its AWS-default rules (from itself, to
  anywhere) give no DP-SgOpenIngress/DP-SgIngressAllPorts finding, and an open rule added to it
  is reported by those rules as it would be in a template.
* `AWS::EC2::PrefixList` {PrefixListName, AddressFamily, MaxEntries, Entries: [{Cidr}]} for the
  customer-managed lists that ingress rules name (AWS-managed lists stay literal ids).

VPCs and groups that another account owns (shared through RAM) are left to that account's audit.
"""
from __future__ import annotations

from ..clients import Clients, Unreadable, listing
from ..live import LIVE, LiveTemplate, ref, unreadable
from . import collector

FLOW_LOG_RESOURCE_TYPES = (("vpc-", "VPC"), ("subnet-", "Subnet"), ("eni-", "NetworkInterface"),
                           ("tgw-attach-", "TransitGatewayAttachment"), ("tgw-", "TransitGateway"))


@collector("ec2")
def collect(clients: Clients, region: str, live: LiveTemplate) -> None:
    ec2 = clients("ec2", region)
    partition = clients.session.get_partition_for_region(region)
    account = live.account

    vpcs = listing(ec2, "describe_vpcs", "Vpcs")
    if isinstance(vpcs, Unreadable):
        live.gap(f"VPCs in {region} could not be listed: {vpcs.reason}")
        vpcs = []
    groups = listing(ec2, "describe_security_groups", "SecurityGroups")
    if isinstance(groups, Unreadable):
        live.gap(f"security groups in {region} could not be listed: {groups.reason}")
    flow_logs = listing(ec2, "describe_flow_logs", "FlowLogs")

    vpc_ids: dict[str, str] = {}  # VPC id -> logical id
    for vpc in vpcs:
        if vpc.get("OwnerId", account) != account:
            continue
        vpc_id = vpc["VpcId"]
        props = {"CidrBlock": vpc.get("CidrBlock"), "InstanceTenancy": vpc.get("InstanceTenancy"),
                 "Tags": vpc.get("Tags") or None}
        logical_id = live.add(vpc_id, "AWS::EC2::VPC", _present(props),
                              arn=f"arn:{partition}:ec2:{region}:{account}:vpc/{vpc_id}")
        vpc_ids[vpc_id] = logical_id
        live.resources[logical_id]["Metadata"][LIVE]["default_security_group"] = \
            _default_group_fact(vpc_id, groups)

    if isinstance(flow_logs, Unreadable):
        for vpc_id, logical_id in vpc_ids.items():
            live.add(f"{vpc_id}FlowLogs", "AWS::EC2::FlowLog",
                     {"ResourceId": ref(logical_id), "ResourceType": unreadable(flow_logs.reason)},
                     arn=f"arn:{partition}:ec2:{region}:{account}:vpc/{vpc_id}")
    else:
        for flow_log in flow_logs:
            _add_flow_log(flow_log, vpc_ids, live, f"arn:{partition}:ec2:{region}:{account}")

    if isinstance(groups, Unreadable):
        return
    groups = [g for g in groups if g.get("OwnerId", account) == account]
    prefix_lists = _prefix_lists(ec2, groups, live, f"arn:{partition}:ec2:{region}:{account}")
    for group in groups:
        group_id = group["GroupId"]
        vpc_id = group.get("VpcId")
        props = {
            "GroupName": group.get("GroupName"),
            "GroupDescription": group.get("Description"),
            "VpcId": ref(vpc_ids[vpc_id]) if vpc_id in vpc_ids else vpc_id,
            "SecurityGroupIngress": cfn_rules(group.get("IpPermissions", []), "ingress", account, prefix_lists),
            "SecurityGroupEgress": cfn_rules(group.get("IpPermissionsEgress", []), "egress", account, prefix_lists),
            "Tags": group.get("Tags") or None,
        }
        arn = group.get("SecurityGroupArn") or f"arn:{partition}:ec2:{region}:{account}:security-group/{group_id}"
        live.add(group_id, "AWS::EC2::SecurityGroup", _present(props), arn=arn)


def _present(props: dict) -> dict:
    return {k: v for k, v in props.items() if v is not None}


def _default_group_fact(vpc_id: str, groups: list | Unreadable) -> dict:
    """{"id", "ingress", "egress"} of the VPC's default security group, or why it is not known."""
    if isinstance(groups, Unreadable):
        return unreadable(groups.reason)
    default = next((g for g in groups if g.get("VpcId") == vpc_id and g.get("GroupName") == "default"), None)
    if default is None:
        return unreadable(f"the default security group of {vpc_id} was not in the listing "
                          f"(the VPC may have been deleted during the audit)")
    return {"id": default["GroupId"],
            "ingress": len(cfn_rules(default.get("IpPermissions", []), "ingress", "", {})),
            "egress": len(cfn_rules(default.get("IpPermissionsEgress", []), "egress", "", {}))}


def _add_flow_log(flow_log: dict, vpc_ids: dict[str, str], live: LiveTemplate, arn_prefix: str) -> None:
    resource_id = flow_log.get("ResourceId", "")
    resource_type = next((t for prefix, t in FLOW_LOG_RESOURCE_TYPES if resource_id.startswith(prefix)), None)
    props = {
        "ResourceId": ref(vpc_ids[resource_id]) if resource_id in vpc_ids else resource_id,
        "ResourceType": resource_type,
        "TrafficType": flow_log.get("TrafficType"),
        "LogDestinationType": flow_log.get("LogDestinationType"),
        "LogGroupName": flow_log.get("LogGroupName"),
        "LogDestination": flow_log.get("LogDestination"),
        "DeliverLogsPermissionArn": flow_log.get("DeliverLogsPermissionArn"),
        "LogFormat": flow_log.get("LogFormat"),
        "MaxAggregationInterval": flow_log.get("MaxAggregationInterval"),
        "Tags": flow_log.get("Tags") or None,
    }
    flow_log_id = flow_log.get("FlowLogId", resource_id)
    live.add(flow_log_id, "AWS::EC2::FlowLog", _present(props), arn=f"{arn_prefix}:vpc-flow-log/{flow_log_id}")


def cfn_rules(permissions: list[dict], direction: str, account: str, prefix_lists: dict[str, str]) -> list[dict]:
    """EC2 API IpPermissions as CloudFormation's SecurityGroupIngress/Egress: one rule per
    address range, security group or prefix list, as CloudFormation writes them."""
    ingress = direction == "ingress"
    rules = []
    for permission in permissions:
        base = {"IpProtocol": str(permission.get("IpProtocol", "-1"))}
        for port in ("FromPort", "ToPort"):
            if port in permission:
                base[port] = permission[port]
        for r in permission.get("IpRanges") or []:
            rules.append(_with_description({**base, "CidrIp": r["CidrIp"]}, r))
        for r in permission.get("Ipv6Ranges") or []:
            rules.append(_with_description({**base, "CidrIpv6": r["CidrIpv6"]}, r))
        for r in permission.get("PrefixListIds") or []:
            pl = r["PrefixListId"]
            key = "SourcePrefixListId" if ingress else "DestinationPrefixListId"
            rules.append(_with_description({**base, key: ref(prefix_lists[pl]) if pl in prefix_lists else pl}, r))
        for pair in permission.get("UserIdGroupPairs") or []:
            rule = dict(base)
            if pair.get("GroupId"):
                rule["SourceSecurityGroupId" if ingress else "DestinationSecurityGroupId"] = pair["GroupId"]
            elif pair.get("GroupName") and ingress:
                rule["SourceSecurityGroupName"] = pair["GroupName"]
            if ingress and pair.get("UserId") and pair["UserId"] != account:
                rule["SourceSecurityGroupOwnerId"] = pair["UserId"]
            rules.append(_with_description(rule, pair))
    return rules


def _with_description(rule: dict, source: dict) -> dict:
    if source.get("Description"):
        rule["Description"] = source["Description"]
    return rule


def _prefix_lists(ec2, groups: list[dict], live: LiveTemplate, arn_prefix: str) -> dict[str, str]:
    """Customer-managed prefix lists (ours or shared with us) named by ingress rules, added as
    AWS::EC2::PrefixList so that DP-SgOpenIngress reads their entries; returns prefix list id ->
    logical id. AWS-managed lists (owner "AWS": service address ranges) stay literal ids, which
    the rule takes as named allow-lists."""
    wanted = sorted({r["PrefixListId"] for g in groups for p in g.get("IpPermissions", [])
                     for r in p.get("PrefixListIds") or [] if r.get("PrefixListId")})
    if not wanted:
        return {}
    found = listing(ec2, "describe_managed_prefix_lists", "PrefixLists", PrefixListIds=wanted)
    if isinstance(found, Unreadable):
        # Without the list we cannot tell what it admits: an unreadable entry list says so.
        return {pl: live.add(pl, "AWS::EC2::PrefixList", {"Entries": unreadable(found.reason)},
                             arn=f"{arn_prefix}:prefix-list/{pl}") for pl in wanted}
    out = {}
    for pl in found:
        if pl.get("OwnerId", "AWS") == "AWS":
            continue
        pl_id = pl["PrefixListId"]
        entries = listing(ec2, "get_managed_prefix_list_entries", "Entries", PrefixListId=pl_id)
        props = {"PrefixListName": pl.get("PrefixListName"), "AddressFamily": pl.get("AddressFamily"),
                 "MaxEntries": pl.get("MaxEntries"),
                 "Entries": unreadable(entries.reason) if isinstance(entries, Unreadable)
                 else [_with_description({"Cidr": e["Cidr"]}, e) for e in entries]}
        out[pl_id] = live.add(pl.get("PrefixListName") or pl_id, "AWS::EC2::PrefixList", _present(props),
                              arn=pl.get("PrefixListArn") or f"{arn_prefix}:prefix-list/{pl_id}")
    return out
