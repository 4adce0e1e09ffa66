"""EC2 and VPC network protection (clause 1): security groups, network ACLs, the default security
group, flow logs and public IP addresses.

Clause 1 asks for network controls that "deny access to unauthorized IP addresses". Security
group and network ACL rules are read the way EC2 reads them: IpProtocol "-1" (or -1) is every
protocol and port, a protocol number other than TCP/UDP/ICMP ignores the port range, absent
FromPort/ToPort (or -1) on TCP/UDP is the full range, and ports may be written as strings.
"""
from __future__ import annotations

import fnmatch
import functools
import ipaddress
import itertools
import math
import re
from typing import Any, Callable, Iterable, Iterator, NamedTuple

from ..engine.checks import (is_public_principal, leaves, policy_statements, require, resource_targets,
                             scoping_condition)
from ..engine.findings import Outcome, unverifiable, violation
from ..engine.template import Resource
from ..engine.values import (ABSENT, MAX_ALTERNATIVES, TOKEN_RE, ResRef, Unknown, alternatives,
                             as_bool, as_int, as_text, is_literal)
from . import rule

VPC = "AWS::EC2::VPC"
SECURITY_GROUP = "AWS::EC2::SecurityGroup"
SG_INGRESS = "AWS::EC2::SecurityGroupIngress"
SG_EGRESS = "AWS::EC2::SecurityGroupEgress"
FLOW_LOG = "AWS::EC2::FlowLog"
PREFIX_LIST = "AWS::EC2::PrefixList"
NACL_ENTRY = "AWS::EC2::NetworkAclEntry"
# What CDK's `restrict_default_security_group=True` synthesizes: a custom resource that removes
# every rule of the VPC's default security group.
RESTRICT_DEFAULT_SG = "Custom::VpcRestrictDefaultSG"
# Resources whose CIDR attributes are ranges AWS allocates (/16 to /28 for IPv4, /44 to /64 for
# IPv6): such a range is never the whole internet.
ADDRESS_RANGES = (VPC, "AWS::EC2::VPCCidrBlock", "AWS::EC2::Subnet", "AWS::EC2::SubnetCidrBlock")

ALL_PORTS = (0, 65535)
PROTOCOL_NAMES = {"-1": "all", "all": "all", "6": "tcp", "17": "udp", "1": "icmp", "58": "icmpv6"}


# ---------------------------------------------------------------- shared reading of values

def _combos(item: dict, keys: Iterable[str], tpl) -> list[dict] | Unknown:
    """Every combination of the values the keys of `item` may take (Fn::If branches,
    parameters with AllowedValues, ...), each as a dict of resolved values."""
    keys = list(keys)
    combo = {}
    for key in keys:
        value = combo[key] = item.get(key, ABSENT)
        if type(value) is dict:
            break
    else:  # no intrinsic among the values (the usual case): one combination, the values as written
        return [combo]
    options = [cidr_alternatives(item.get(key, ABSENT), tpl) for key in keys]
    if math.prod(len(o) for o in options) > MAX_ALTERNATIVES:
        return Unknown(f"more than {MAX_ALTERNATIVES} combinations of values")
    return [dict(zip(keys, combo)) for combo in itertools.product(*options)]


def cidr_alternatives(node: Any, tpl) -> list:
    """alternatives(), except that an entry picked from a VPC's or subnet's list of CIDR blocks
    (CDK writes Fn::Select [0, Fn::GetAtt [Vpc, Ipv6CidrBlocks]]) stays a reference to it."""
    if isinstance(node, dict) and list(node) == ["Fn::Select"]:
        arg = node["Fn::Select"]
        if isinstance(arg, list) and len(arg) == 2 and isinstance(arg[1], dict) \
                and list(arg[1]) == ["Fn::GetAtt"]:
            refs = alternatives(arg[1], tpl)
            if refs and all(tpl.resource_of(v, *ADDRESS_RANGES) for v in refs):
                return refs
    return alternatives(node, tpl)


# Ranges wider than these stand for "anywhere": no private range is wider than 10.0.0.0/8, and no
# organisation holds more than a /16 of IPv6. 0.0.0.0/1 + 128.0.0.0/1 is /0 in two halves.
WIDEST_ALLOWED = {4: 8, 6: 16}
IPV4_MAPPED = ipaddress.ip_network("::ffff:0:0/96")


def world_cidr(value: Any, tpl) -> bool | Unknown:
    """Is one resolved CIDR value the whole internet (any /0, IPv4 or IPv6), or so much of it
    that it is as good as (see WIDEST_ALLOWED)?"""
    if value is ABSENT:
        return False
    if isinstance(value, Unknown):
        return value
    if isinstance(value, ResRef):
        if tpl.resource_of(value, *ADDRESS_RANGES):
            return False
        return Unknown(f"the CIDR is an attribute of {value.logical_id}, known only at deploy time")
    text = as_text(value)
    if text is None:
        return Unknown("the CIDR is not a string")
    text = text.strip()
    if not is_literal(text):
        whole = TOKEN_RE.fullmatch(text)
        if whole and _token_is_address_range(text, tpl):
            return False
        prefix = re.search(r"/(\d+)$", text)  # "${Eip}/32": whatever the address, not the world
        if prefix and int(prefix.group(1)) >= WIDEST_ALLOWED[4]:
            return False
        return Unknown("the CIDR is built from values known only at deploy time")
    return _literal_world(text)


@functools.lru_cache(maxsize=4096)
def _literal_world(text: str) -> bool | Unknown:
    """world_cidr() of a literal CIDR, judged once per text: most templates repeat a few."""
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return Unknown(f"{text!r} is not a CIDR block")
    if network.version == 6 and network.subnet_of(IPV4_MAPPED):  # ::ffff:0:0/96 is all of IPv4
        return network.prefixlen - IPV4_MAPPED.prefixlen < WIDEST_ALLOWED[4]
    return network.prefixlen < WIDEST_ALLOWED[network.version]


def _token_is_address_range(token: str, tpl) -> bool:
    """A whole-string token such as ⟨0:Vpc.CidrBlock⟩ (from Fn::Sub) naming a VPC or subnet."""
    uid, _, rest = token[1:-1].partition(":")
    if not uid.isdigit():
        return False
    other = tpl.app.template(int(uid))
    target = other.resources.get(rest.split(".", 1)[0]) if other else None
    return target is not None and target.type in ADDRESS_RANGES


def _show(value: Any) -> str:
    """A resolved value as a developer would recognise it in a message."""
    if isinstance(value, ResRef):
        return f"{value.logical_id}.{value.attr}" if value.attr else value.logical_id
    if isinstance(value, Unknown):
        return "a value chosen at deploy time"
    text = as_text(value)
    return text if text is not None else "?"


def port_range(from_port: Any, to_port: Any) -> tuple[int, int] | Unknown:
    """A TCP/UDP port range; absent ends or -1 mean the end of the full range (fail closed)."""
    low = _port(from_port, ALL_PORTS[0])
    if isinstance(low, Unknown):
        return low
    high = _port(to_port, ALL_PORTS[1])
    if isinstance(high, Unknown):
        return high
    if low > high:
        low, high = high, low
    return (max(low, ALL_PORTS[0]), min(high, ALL_PORTS[1]))


def _port(value: Any, default: int) -> int | Unknown:
    """One end of a port range: its number, `default` when absent or -1."""
    if type(value) is int:  # the usual case
        return default if value == -1 else value
    if isinstance(value, Unknown):
        return value
    number = default if value is ABSENT else as_int(value)
    if number is None:
        return Unknown(f"port {_show(value)} is not a number")
    return default if number == -1 else number


def protocol_name(value: Any) -> str | Unknown:
    """"all", "tcp", "udp", "icmp", "icmpv6", or another protocol's number as text."""
    if isinstance(value, Unknown):
        return value
    if value is ABSENT:
        return "all"  # IpProtocol is required; a rule without one is judged as the widest
    text = as_text(value)
    if text is None or not is_literal(text):
        return Unknown("the protocol is known only at deploy time")
    return _protocol_of(text)


@functools.lru_cache(maxsize=256)
def _protocol_of(text: str) -> str:
    text = text.strip().lower()
    return PROTOCOL_NAMES.get(text, text)


def describe(protocol: str, ports: tuple[int, int] | None) -> str:
    if protocol == "all":
        return "all traffic"
    if protocol in ("tcp", "udp") and ports:
        low, high = ports
        if ports == ALL_PORTS:
            return f"all {protocol.upper()} ports"
        return f"{protocol.upper()} port {low}" if low == high else f"{protocol.upper()} ports {low}-{high}"
    if protocol in ("icmp", "icmpv6"):
        return protocol.upper()
    return f"IP protocol {protocol}"


def all_true(facts: Iterable[bool | Unknown]) -> bool | Unknown:
    """False if any fact is false, else the first Unknown, else True."""
    facts = list(facts)
    if any(f is False for f in facts):
        return False
    return next((f for f in facts if isinstance(f, Unknown)), True)


def _first_outcome(outcomes: Iterable[Outcome]) -> Iterator[Outcome]:
    """The first violation, else the first unverifiable outcome: one finding per rule entry."""
    outcomes = list(outcomes)
    chosen = next((o for o in outcomes if o.status == "violation"), None) or next(iter(outcomes), None)
    if chosen is not None:
        yield chosen


# ---------------------------------------------------------------- security group rules

class Exposure(NamedTuple):
    """One way an ingress rule from address ranges may turn out once deployed."""

    source: str                              # for messages: "0.0.0.0/0", "prefix list pl-1", ...
    world: bool | Unknown                    # the whole internet
    protocol: str | Unknown                  # see protocol_name()
    ports: tuple[int, int] | None | Unknown  # None when the protocol has no ports


SG_RULE_KEYS = ("IpProtocol", "FromPort", "ToPort", "CidrIp", "CidrIpv6", "SourcePrefixListId")


def ingress_rules(r: Resource) -> Iterator[tuple[str, Any]]:
    """(property path, rule) for the inline rules of a security group, or the one rule of a
    SecurityGroupIngress resource. A rule is a dict of unresolved values, or an Unknown."""
    if r.type == SG_INGRESS:
        yield "Properties", r.props
        return
    for path, item in r.values("SecurityGroupIngress.*"):
        if item is not ABSENT:
            yield path, item


def ingress_exposures(r: Resource) -> list[tuple[str, list[Exposure] | Unknown]]:
    """(property path, exposures) of each ingress rule of `r`, read once for the rules that ask."""
    found = r.cache.get("ingress_exposures")
    if found is None:
        found = r.cache["ingress_exposures"] = [(path, exposures(item, r.template))
                                                for path, item in ingress_rules(r)]
    return found


def exposures(item: Any, tpl) -> list[Exposure] | Unknown:
    """The exposures of one ingress rule. Rules whose source is a security group give none."""
    if isinstance(item, Unknown):
        return item
    if not isinstance(item, dict):
        return Unknown("the ingress rule is not a mapping")
    combos = _combos(item, SG_RULE_KEYS, tpl)
    if isinstance(combos, Unknown):
        return combos
    out = []
    for c in combos:
        protocol = protocol_name(c["IpProtocol"])
        ports: Any = None
        if isinstance(protocol, Unknown):
            ports = protocol
        elif protocol == "all":
            ports = ALL_PORTS
        elif protocol in ("tcp", "udp"):
            ports = port_range(c["FromPort"], c["ToPort"])
        for key in ("CidrIp", "CidrIpv6"):
            if c[key] is not ABSENT:
                out.append(Exposure(_show(c[key]), world_cidr(c[key], tpl), protocol, ports))
        if c["SourcePrefixListId"] is not ABSENT:
            out.append(Exposure(f"prefix list {_show(c['SourcePrefixListId'])}",
                                prefix_list_world(c["SourcePrefixListId"], tpl), protocol, ports))
    return out


def prefix_list_world(value: Any, tpl) -> bool | Unknown:
    """Does a prefix list contain the whole internet? Lists defined in the scanned templates are
    read entry by entry. Lists defined elsewhere (AWS-managed lists such as CloudFront's
    origin-facing list, or shared lists) are named allow-lists of addresses and taken as such."""
    target = tpl.resource_of(value, PREFIX_LIST)
    if target is None:
        return False
    verdicts = [world_cidr(cidr, target.template) for _, cidr in target.values("Entries.*.Cidr")]
    if True in verdicts:
        return True
    return next((v for v in verdicts if isinstance(v, Unknown)), False)


def allowed_ports(app, resources: list[Resource]) -> set[int]:
    """Ports on which the run's `allowed_ingress` setting accepts ingress from anywhere for any of
    `resources` (matched by logical id or construct path, as globs). No config, no ports."""
    entries = getattr(getattr(app, "config", None), "allowed_ingress", None) or ()
    ports: set[int] = set()
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        globs = entry.get("resources") or ()
        globs = [globs] if isinstance(globs, str) else globs
        if not any(_named_by(r, g) for r in resources for g in globs if isinstance(g, str)):
            continue
        listed = entry.get("ports") or ()
        for port in [listed] if isinstance(listed, (int, str)) else listed:
            ports |= _ports_of(port)
    return ports


def _named_by(r: Resource, glob: str) -> bool:
    path = r.construct_path
    return fnmatch.fnmatchcase(r.logical_id, glob) or (path is not None and fnmatch.fnmatchcase(path, glob))


def _ports_of(entry: Any) -> set[int]:
    """443, "443" or "8000-8100"; anything else allows nothing."""
    number = as_int(entry)
    if number is not None:
        return {number} if 0 <= number <= 65535 else set()
    if isinstance(entry, str) and re.fullmatch(r"\s*\d+\s*-\s*\d+\s*", entry):
        low, high = (int(p) for p in entry.split("-"))
        return set(range(max(low, 0), min(high, 65535) + 1))
    return set()


def _not_allowed(e: Exposure, allowed: set[int]) -> bool | Unknown:
    if isinstance(e.protocol, Unknown):
        return e.protocol
    if isinstance(e.ports, Unknown):
        return e.ports
    if e.protocol in ("tcp", "udp") and e.ports and allowed:
        low, high = e.ports
        return not all(p in allowed for p in range(low, high + 1))
    return True  # other protocols, and all traffic, are never allow-listed


def _groups_of(r: Resource) -> list[Resource]:
    """The security groups a SecurityGroupIngress resource adds its rule to."""
    found = resource_targets(r, "GroupId", SECURITY_GROUP) + resource_targets(r, "GroupName", SECURITY_GROUP)
    return [g for g in found if isinstance(g, Resource)]


def _port_list(ports: set[int]) -> str:
    shown = sorted(ports)
    return ", ".join(map(str, shown[:8])) + (", ..." if len(shown) > 8 else "")


@rule("DP-SgOpenIngress", clause=1, severity="error", types=[SECURITY_GROUP, SG_INGRESS],
      title="Security groups allow no ingress from anywhere, except allow-listed ports",
      rationale="Clause 1: network controls deny access to unauthorized IP addresses. Ingress "
                "from 0.0.0.0/0 or ::/0 admits every address on the internet; it is accepted only "
                "on the ports and resources the `allowed_ingress` setting names (for example 443 "
                "on a public load balancer). Inline rules and separate SecurityGroupIngress "
                "resources are both checked; a CIDR chosen at deploy time cannot be vouched for.",
      remediation="Allow a known peer instead of any address, e.g.\n"
                  "sg.add_ingress_rule(ec2.Peer.ipv4('10.0.0.0/16'), ec2.Port.tcp(443))\n"
                  "or, for a public entry point, list it in cdk.json: \"allowed_ingress\": "
                  "[{\"ports\": [443], \"resources\": [\"*/PublicAlb/*\"]}]")
def sg_open_ingress(r, t):
    allowed = None  # read when an exposure may be the whole internet
    for path, found in ingress_exposures(r):
        if isinstance(found, Unknown):
            yield unverifiable(path, f"cannot tell whether ingress is open to anywhere: {found.reason}")
            continue
        outcomes = []
        for e in found:
            if e.world is False:
                continue
            if allowed is None:
                allowed = allowed_ports(t.app, [r] + (_groups_of(r) if r.type == SG_INGRESS else []))
            verdict = all_true([e.world, _not_allowed(e, allowed)])
            if verdict is True:
                hint = f" (allowed_ingress permits only {_port_list(allowed)} here)" if allowed else ""
                outcomes.append(violation(path, f"ingress allows {describe(e.protocol, e.ports)} "
                                                f"from anywhere ({e.source}){hint}"))
            elif isinstance(verdict, Unknown):
                outcomes.append(unverifiable(path, f"cannot tell whether ingress is open to anywhere: "
                                                   f"{verdict.reason}"))
        yield from _first_outcome(outcomes)


@rule("DP-SgIngressAllPorts", clause=1, severity="warning", types=[SECURITY_GROUP, SG_INGRESS],
      title="Security group ingress from address ranges names its ports",
      rationale="Clause 1: expose only what is needed. Ingress from a CIDR or prefix list that "
                "opens every protocol (-1) or every port (0-65535) admits services nobody meant "
                "to publish, even when the range is internal. Rules whose source is another "
                "security group are not judged here.",
      remediation="sg.add_ingress_rule(ec2.Peer.ipv4(vpc.vpc_cidr_block), ec2.Port.tcp(5432)) "
                  "instead of ec2.Port.all_traffic() or ec2.Port.all_tcp()")
def sg_ingress_all_ports(r, t):
    for path, found in ingress_exposures(r):
        if isinstance(found, Unknown):
            yield unverifiable(path, f"cannot tell which ports the ingress rule opens: {found.reason}")
            continue
        outcomes = []
        for e in found:
            if isinstance(e.protocol, Unknown) or isinstance(e.ports, Unknown):
                reason = (e.protocol if isinstance(e.protocol, Unknown) else e.ports).reason
                outcomes.append(unverifiable(path, f"cannot tell which ports the ingress rule opens: {reason}"))
            elif e.protocol == "all" or e.ports == ALL_PORTS:
                outcomes.append(violation(path, f"ingress allows {describe(e.protocol, e.ports)} from {e.source}"))
        yield from _first_outcome(outcomes)


# ---------------------------------------------------------------- VPC companions

def resource_condition(r: Resource) -> str | None:
    condition = r.raw.get("Condition") if isinstance(r.raw, dict) else None
    return condition if isinstance(condition, str) else None


def created_with(other: Resource, subject: Resource) -> bool:
    """Is `other` created whenever `subject` is? (Resource-level Conditions.)"""
    condition = resource_condition(other)
    if condition is None or other.template.condition_value(condition) is True:
        return True
    return other.template is subject.template and resource_condition(subject) == condition


def always(r: Resource, path: str, ok: Callable[[Any], bool]) -> bool | Unknown:
    """Does every value the property may take satisfy `ok`? Unknown when one cannot be known."""
    values = [v for _, v in r.values(path)]
    unknown = next((v for v in values if isinstance(v, Unknown)), None)
    if unknown is not None:
        return unknown
    return bool(values) and all(ok(v) for v in values)


def companion_outcomes(subject: Resource, types: tuple[str, ...], covers: Callable[[Resource], bool | Unknown],
                       missing: str, question: str) -> Iterator[Outcome]:
    """`subject` needs a resource of `types` that references it, covers it in every variant of
    the template and is created whenever the subject is. `missing` is the violation message,
    `question` completes "cannot tell ..." for the unverifiable one."""
    problem: Unknown | None = None
    conditional: Resource | None = None
    for other in subject.template.app.referrers(subject, *types):
        verdict = covers(other)
        if isinstance(verdict, Unknown):
            problem = problem or verdict
        elif verdict and created_with(other, subject):
            return
        elif verdict:
            conditional = conditional or other
    if problem is not None:
        yield unverifiable("Properties", f"cannot tell {question}: {problem.reason}")
    elif conditional is not None:
        yield violation("Properties", f"{missing} unless condition {resource_condition(conditional)} holds "
                                      f"({conditional.logical_id} is created only then)")
    else:
        yield violation("Properties", missing)


@rule("DP-VpcDefaultSgRestricted", clause=1, severity="error", types=[VPC, SG_INGRESS, SG_EGRESS],
      title="VPC default security groups are restricted",
      rationale="Clause 1: every VPC's default security group allows all traffic between its "
                "members and all egress, and anything launched without a security group lands in "
                "it. Its rules must be removed (CDK's restrict_default_security_group creates the "
                "Custom::VpcRestrictDefaultSG resource that does so), and no template may add "
                "rules to it.",
      remediation="ec2.Vpc(self, 'Vpc', restrict_default_security_group=True)")
def vpc_default_sg_restricted(r, t):
    if r.type != VPC:
        for path, group in r.values("GroupId"):
            if isinstance(group, ResRef) and group.attr == "DefaultSecurityGroup" and t.resource_of(group, VPC):
                yield violation(path, f"adds a rule to the default security group of {group.logical_id}; "
                                      "use a security group of your own")
        for path, name in r.values("GroupName"):  # by name: the default VPC's default group
            if isinstance(name, str) and name.strip().lower() == "default":
                yield violation(path, "adds a rule to the default security group of the default VPC; "
                                      "use a security group of your own")
        return
    if r.live_facts is not None:
        yield from _live_default_group(r, t)
        return
    wanted = r.ref("DefaultSecurityGroup")
    yield from companion_outcomes(
        r, (RESTRICT_DEFAULT_SG,), lambda c: always(c, "DefaultSecurityGroupId", lambda v: v == wanted),
        "no Custom::VpcRestrictDefaultSG removes the rules of the VPC's default security group",
        "whether the rules of the VPC's default security group are removed")


def _live_default_group(r: Resource, t) -> Iterator[Outcome]:
    """A VPC read from a live account (`dpguard audit`), which never has CDK's custom resource:
    the audit states what its default group holds, Metadata["dpguard:live"]
    ["default_security_group"] = {"id", "ingress", "egress"} (numbers of rules), or could not read
    it. Any rule left in the group breaks the policy."""
    fact = r.live_facts.get("default_security_group", ABSENT)
    values = [ABSENT] if fact is ABSENT else alternatives(fact, t)
    for value in values:
        counts = [as_int(value.get(k)) for k in ("ingress", "egress")] if isinstance(value, dict) else [None]
        if isinstance(value, Unknown):
            yield unverifiable("Properties", f"cannot tell whether the VPC's default security group has rules: "
                                             f"{value.reason}")
        elif None in counts or any(n < 0 for n in counts):
            yield unverifiable("Properties", "the audit did not read the VPC's default security group")
        elif any(counts):
            group = value.get("id") if isinstance(value.get("id"), str) else "of the VPC"
            yield violation("Properties", f"the default security group {group} still has {counts[0]} inbound and "
                                          f"{counts[1]} outbound rule(s); remove them all and use security "
                                          f"groups of your own")


@rule("DP-VpcFlowLogs", clause=1, severity="error", types=[VPC],
      title="VPCs have flow logs",
      rationale="Clause 1 (and clause 9): denied and accepted connections must be visible to tell "
                "unauthorized addresses apart. Every VPC needs an AWS::EC2::FlowLog on the whole "
                "VPC (ResourceType VPC); flow logs of single subnets or interfaces leave gaps. Any "
                "traffic type is accepted.",
      remediation="ec2.Vpc(self, 'Vpc', flow_logs={'all': ec2.FlowLogOptions("
                  "destination=ec2.FlowLogDestination.to_cloud_watch_logs(log_group))})")
def vpc_flow_logs(r, t):
    def covers(flow_log):
        return all_true([always(flow_log, "ResourceType", lambda v: v == "VPC"),
                         always(flow_log, "ResourceId", lambda v: v == r.ref())])

    yield from companion_outcomes(r, (FLOW_LOG,), covers, "the VPC has no flow log",
                                  "whether a flow log covers the VPC")


# ---------------------------------------------------------------- public IP addresses

PUBLIC_IP_PATHS = {
    "AWS::EC2::Instance": "NetworkInterfaces.*.AssociatePublicIpAddress",
    "AWS::EC2::LaunchTemplate": "LaunchTemplateData.NetworkInterfaces.*.AssociatePublicIpAddress",
    "AWS::AutoScaling::LaunchConfiguration": "AssociatePublicIpAddress",
}
ELASTIC_IPS = ("AWS::EC2::EIP", "AWS::EC2::EIPAssociation")


def false_or_absent(value: Any) -> bool:
    return value is ABSENT or as_bool(value) is False


@rule("DP-Ec2NoPublicIp", clause=1, severity="error", types=[*PUBLIC_IP_PATHS, *ELASTIC_IPS],
      title="EC2 instances get no public IP address",
      rationale="Clause 1: instances are reached through load balancers, VPC endpoints or SSM "
                "Session Manager, never directly from the internet. AssociatePublicIpAddress true "
                "on an instance, launch template or launch configuration, or an Elastic IP "
                "attached to an instance, gives it an internet address. When the property is "
                "absent the subnet decides (see DP-SubnetNoAutoPublicIp). Elastic IPs of NAT "
                "gateways and load balancers are not judged here.",
      remediation="ec2.Instance(self, 'Host', ..., associate_public_ip_address=False, "
                  "vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS))")
def ec2_no_public_ip(r, t):
    if r.type in ELASTIC_IPS:
        yield from require(r, "InstanceId", lambda v: v is ABSENT,
                           "an Elastic IP address is attached to an instance")
        if r.type == "AWS::EC2::EIPAssociation":  # NAT gateways and load balancers take no association
            yield from require(r, "NetworkInterfaceId", lambda v: v is ABSENT,
                               "an Elastic IP address is attached to a network interface, "
                               "which gives its instance an internet address")
    else:
        yield from require(r, PUBLIC_IP_PATHS[r.type], false_or_absent,
                           "the instance gets a public IP address (AssociatePublicIpAddress is true)")


@rule("DP-SubnetNoAutoPublicIp", clause=1, severity="warning", types=["AWS::EC2::Subnet"],
      title="Subnets do not give instances public IP addresses automatically",
      rationale="Clause 1: with MapPublicIpOnLaunch every instance launched in the subnet gets "
                "an internet address unless it opts out. The AWS default for a subnet a template "
                "creates is false; CDK's public subnets turn it on.",
      remediation="ec2.SubnetConfiguration(name='public', subnet_type=ec2.SubnetType.PUBLIC, "
                  "map_public_ip_on_launch=False)")
def subnet_no_auto_public_ip(r, t):
    yield from require(r, "MapPublicIpOnLaunch", false_or_absent,
                       "instances launched in the subnet get public IP addresses (MapPublicIpOnLaunch is true)")


# ---------------------------------------------------------------- network ACLs

ADMIN_PORTS = {"tcp": {22: "SSH", 3389: "RDP"}, "udp": {3389: "RDP"}}
EPHEMERAL_FROM = 1024  # 1024-65535, 32768-65535, 49152-65535: return traffic, not a service
NACL_KEYS = ("Egress", "RuleAction", "CidrBlock", "Ipv6CidrBlock", "Protocol", "From", "To")


def _nacl_entries(r: Resource) -> list[dict] | Unknown:
    """The entry's properties with PortRange.From/To lifted to the top, one dict per variant."""
    out = []
    for _, port_range_value in r.values("PortRange"):
        if isinstance(port_range_value, Unknown):
            return port_range_value
        ports = port_range_value if isinstance(port_range_value, dict) else {}
        out.append({**r.props, "From": ports.get("From", ABSENT), "To": ports.get("To", ABSENT)})
    return out


@rule("DP-NetworkAclOpenAdminPorts", clause=1, severity="warning", types=[NACL_ENTRY],
      title="Network ACLs do not admit SSH, RDP or all traffic from anywhere",
      rationale="Clause 1: network ACLs are the subnet-wide layer of the controls that deny "
                "unauthorized addresses. An inbound allow from 0.0.0.0/0 or ::/0 of SSH (22), RDP "
                "(3389) or every protocol leaves only security groups between the internet and "
                "remote administration. Ephemeral ranges ending at 65535 and starting at 1024 or "
                "above are the return traffic a stateless ACL must admit and are not judged.",
      remediation="nacl.add_entry('Ssh', rule_number=100, cidr=ec2.AclCidr.ipv4('10.0.0.0/16'), "
                  "traffic=ec2.AclTraffic.tcp_port(22), direction=ec2.TrafficDirection.INGRESS); "
                  "better, reach hosts through SSM Session Manager and open no admin port")
def network_acl_open_admin_ports(r, t):
    entries = _nacl_entries(r)
    if isinstance(entries, Unknown):
        yield unverifiable("Properties/PortRange", f"cannot tell which ports the entry opens: {entries.reason}")
        return
    outcomes = []
    for entry in entries:
        combos = _combos(entry, NACL_KEYS, t)
        if isinstance(combos, Unknown):
            outcomes.append(unverifiable("Properties", f"cannot judge the entry: {combos.reason}"))
            continue
        for c in combos:
            inbound = c["Egress"] if isinstance(c["Egress"], Unknown) else as_bool(c["Egress"]) is not True
            allows = c["RuleAction"] if isinstance(c["RuleAction"], Unknown) \
                else str(as_text(c["RuleAction"]) or "").lower() == "allow"
            sources = [(c[k], world_cidr(c[k], t)) for k in ("CidrBlock", "Ipv6CidrBlock") if c[k] is not ABSENT]
            world = True if any(w is True for _, w in sources) else \
                next((w for _, w in sources if isinstance(w, Unknown)), False)
            source = next((_show(v) for v, w in sources if w is not False), "")
            what = _admin_exposure(c)
            verdict = all_true([inbound, allows, world, what if isinstance(what, Unknown) else bool(what)])
            if verdict is True:
                outcomes.append(violation("Properties", f"the network ACL allows {what} from anywhere ({source})"))
            elif isinstance(verdict, Unknown):
                outcomes.append(unverifiable("Properties", f"cannot tell whether the network ACL admits "
                                                           f"admin ports from anywhere: {verdict.reason}"))
    yield from _first_outcome(outcomes)


def _admin_exposure(c: dict) -> str | Unknown:
    """What admin access the entry opens ("SSH (TCP 22)", "all traffic"), or "" for none."""
    protocol = protocol_name(c["Protocol"])
    if isinstance(protocol, Unknown) or protocol == "all":
        return protocol if isinstance(protocol, Unknown) else "all traffic"
    if protocol not in ADMIN_PORTS:
        return ""
    ports = port_range(c["From"], c["To"])
    if isinstance(ports, Unknown):
        return ports
    if ports[0] >= EPHEMERAL_FROM and ports[1] == ALL_PORTS[1]:
        return ""  # the ephemeral range that stateless ACLs must open for return traffic
    hits = [f"{name} ({protocol.upper()} {port})" for port, name in ADMIN_PORTS[protocol].items()
            if ports[0] <= port <= ports[1]]
    return " and ".join(hits)


# Condition keys that keep a VPC endpoint to our own principals or our own resources. The source
# keys (aws:SourceVpc, aws:SourceVpce, aws:SourceIp) hold for every request through the endpoint,
# so they narrow nothing there.
ENDPOINT_PERIMETER_KEYS = frozenset({"aws:principalaccount", "aws:principalorgid", "aws:principalorgpaths",
                                     "aws:principalarn", "aws:resourceaccount", "aws:resourceorgid",
                                     "aws:resourceorgpaths"})


@rule("DP-VpcEndpointPolicy", clause=8, severity="warning", types=["AWS::EC2::VPCEndpoint"],
      title="VPC endpoints admit only our own principals or our own resources",
      rationale="Clause 8: access is granted on a need-to-know basis, and data must not leave through "
                "the network path built to keep it in. An endpoint without PolicyDocument allows every "
                "action of the service, by any principal, on any account's resources: credentials from "
                "another account, used inside the VPC, can copy data out through it. A policy that "
                "allows \"*\" must limit it with aws:PrincipalAccount / aws:PrincipalOrgID (who) or "
                "aws:ResourceAccount / aws:ResourceOrgID (where); aws:SourceVpc and aws:SourceVpce are "
                "true of every request through the endpoint and narrow nothing. A warning: CDK's "
                "endpoints carry no policy unless one is added.",
      remediation="endpoint = vpc.add_interface_endpoint('Kms', service=ec2.InterfaceVpcEndpointAwsService.KMS)\n"
                  "endpoint.add_to_policy(iam.PolicyStatement(principals=[iam.AnyPrincipal()], actions=['*'],\n"
                  "    resources=['*'], conditions={'StringEquals': {'aws:PrincipalAccount': Aws.ACCOUNT_ID}}))")
def vpc_endpoint_policy(r, t):
    if any(v is ABSENT for _, v in leaves(r, "PolicyDocument")):
        yield violation("Properties/PolicyDocument", "the endpoint has no policy, so it allows any principal "
                                                     "every action on any account's resources")
        return
    for s in policy_statements(r, "PolicyDocument"):
        if isinstance(s, tuple):
            yield unverifiable(s[0], f"the endpoint policy cannot be read: {s[1].reason}")
        elif s.allows and s.unknown is not None:
            yield unverifiable(s.path, f"the endpoint policy cannot be verified: {s.unknown.reason}")
        elif s.allows and any(is_public_principal(p) for p in s.principals or [("*", "*")]) \
                and not scoping_condition(s, ENDPOINT_PERIMETER_KEYS):
            yield violation(f"{s.path}/Principal", "allows any principal without aws:PrincipalAccount, "
                                                   "aws:PrincipalOrgID or aws:ResourceAccount in a condition")

