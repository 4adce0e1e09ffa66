"""Databases and data services: RDS, Aurora, Redshift, DocumentDB, Neptune, ElastiCache,
OpenSearch, DynamoDB and DAX, DMS, MSK. Not reachable from the internet (clause 1), TLS on every
connection (clause 3), encrypted at rest (clause 7).

Tags and customer-managed keys for confidential data are judged in governance.py.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from ..engine.checks import (entry_values, first, follow, is_set, leaves, nested_values, referencing,
                             require, require_true)
from ..engine.findings import Outcome, unverifiable, violation
from ..engine.values import ABSENT, Unknown, alternatives, as_bool, as_int, as_text, is_literal
from . import rule

RDS_INSTANCE = "AWS::RDS::DBInstance"
RDS_CLUSTER = "AWS::RDS::DBCluster"
RDS_PARAMS = "AWS::RDS::DBParameterGroup"
RDS_CLUSTER_PARAMS = "AWS::RDS::DBClusterParameterGroup"
RDS_OPTIONS = "AWS::RDS::OptionGroup"
REDSHIFT = "AWS::Redshift::Cluster"
REDSHIFT_PARAMS = "AWS::Redshift::ClusterParameterGroup"
REDSHIFT_WORKGROUP = "AWS::RedshiftServerless::Workgroup"
DOCDB = "AWS::DocDB::DBCluster"
DOCDB_PARAMS = "AWS::DocDB::DBClusterParameterGroup"
NEPTUNE = "AWS::Neptune::DBCluster"
CACHE_CLUSTER = "AWS::ElastiCache::CacheCluster"
REPLICATION_GROUP = "AWS::ElastiCache::ReplicationGroup"
SERVERLESS_CACHE = "AWS::ElastiCache::ServerlessCache"
OPENSEARCH = ("AWS::OpenSearchService::Domain", "AWS::Elasticsearch::Domain")
DYNAMODB = ("AWS::DynamoDB::Table", "AWS::DynamoDB::GlobalTable")
DAX = "AWS::DAX::Cluster"
DMS_INSTANCE = "AWS::DMS::ReplicationInstance"
MSK = "AWS::MSK::Cluster"

# ---------------------------------------------------------------- small helpers

def always_set(r, path: str) -> bool:
    """Is the property set in every variant of the template?"""
    return all(v is not ABSENT for _, v in leaves(r, path))


def mapping_parameter(group, name: str) -> list[tuple[str, Any]]:
    """(property path, value) for each value the parameter `name` may take in a group whose
    `Parameters` is a mapping (RDS, DocumentDB). ABSENT when the group does not set it; the
    name is matched without regard to case, as the database engines do."""
    out = []
    for path, params in leaves(group, "Parameters"):
        if params is ABSENT or isinstance(params, Unknown):
            out.append((path, params))
            continue
        if not isinstance(params, dict):
            out.append((path, Unknown("Parameters is not a mapping")))
            continue
        key = next((k for k in params if isinstance(k, str) and k.lower() == name.lower()), None)
        if key is None:
            out.append((f"{path}/{name}", ABSENT))
        else:
            out.extend((f"{path}/{key}", v) for v in alternatives(params[key], group.template))
    return out


def version_of(text: Any) -> tuple[int, ...] | None:
    """An engine version, or the version in a parameter group family ("postgres16",
    "sqlserver-se-15.0", "aurora-mysql8.0"), as a tuple of numbers."""
    if not isinstance(text, str):
        text = as_text(text)
    if not text:
        return None
    match = re.search(r"(\d+(?:\.\d+)*)$", text.strip())
    return tuple(int(p) for p in match.group(1).split(".")) if match else None


def engine_kind(engine: str) -> str:
    """An RDS engine name reduced to the family that decides how TLS is forced."""
    e = engine.strip().lower()
    for prefix in ("sqlserver", "oracle", "db2", "custom-"):
        if e.startswith(prefix):
            return prefix.rstrip("-")
    return e


def is_aurora(engine: Any) -> bool:
    return isinstance(engine, str) and engine.strip().lower().startswith("aurora")


# ---------------------------------------------------------------- clause 1: not public

@rule("DP-RdsNotPublic", clause=1, severity="error", types=[RDS_INSTANCE, RDS_CLUSTER],
      title="RDS instances and Multi-AZ DB clusters are not publicly accessible",
      rationale="Clause 1: access from unauthorized addresses is denied at the network. A "
                "publicly accessible database gets an internet-resolvable endpoint. When "
                "PubliclyAccessible is not set, RDS decides by the VPC: without a subnet group the "
                "instance goes to the default VPC and is public when that VPC has an internet "
                "gateway, and with a subnet group it is public when that VPC has one too. Any VPC "
                "with public subnets has one, so the template must say false. Aurora clusters "
                "are judged through their DB instances.",
      remediation="rds.DatabaseInstance(self, 'Db', publicly_accessible=False, vpc=vpc,\n"
                  "    vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED))")
def rds_not_public(r, t):
    if r.type == RDS_CLUSTER:
        engines = [v for _, v in leaves(r, "Engine")]
        if all(is_aurora(e) for e in engines):
            return  # Aurora: PubliclyAccessible belongs to each DB instance
        unsure = next((e for e in engines if not isinstance(e, str)), None)
        if unsure is not None:
            reason = unsure.reason if isinstance(unsure, Unknown) else "the engine is not set"
            for path, value in leaves(r, "PubliclyAccessible"):
                if as_bool(value) is not False:
                    yield unverifiable(path, "cannot tell whether this is a Multi-AZ DB cluster, which "
                                             f"needs PubliclyAccessible false: {reason}")
                    return
            return
    for path, value in leaves(r, "PubliclyAccessible"):
        if isinstance(value, Unknown):
            yield unverifiable(path, f"cannot verify that the database is not public: {value.reason}")
        elif value is ABSENT:
            yield violation(path, "PubliclyAccessible is not set, so RDS makes the database public "
                                  "when its VPC has an internet gateway; set it to false")
        elif as_bool(value) is not False:
            yield violation(path, "the database is publicly accessible")


@rule("DP-RedshiftNotPublic", clause=1, severity="error", types=[REDSHIFT, REDSHIFT_WORKGROUP],
      title="Redshift clusters and Serverless workgroups are not publicly accessible",
      rationale="Clause 1: access from unauthorized addresses is denied at the network. Since "
                "January 2025 Redshift creates clusters and workgroups private when "
                "PubliclyAccessible is not set, so only an explicit true is a violation.",
      remediation="redshift.CfnCluster(self, 'Dw', publicly_accessible=False, ...)")
def redshift_not_public(r, t):
    yield from require(r, "PubliclyAccessible", lambda v: v is ABSENT or as_bool(v) is False,
                       "the data warehouse is publicly accessible")


@rule("DP-DmsNotPublic", clause=1, severity="error", types=[DMS_INSTANCE],
      title="DMS replication instances are not publicly accessible",
      rationale="Clause 1: a replication instance reads whole databases. AWS makes it publicly "
                "accessible unless PubliclyAccessible is false, so the template must say so.",
      remediation="dms.CfnReplicationInstance(self, 'Dms', publicly_accessible=False, "
                  "replication_subnet_group_identifier=subnets.ref, ...)")
def dms_not_public(r, t):
    for path, value in leaves(r, "PubliclyAccessible"):
        if isinstance(value, Unknown):
            yield unverifiable(path, f"cannot verify that the instance is not public: {value.reason}")
        elif value is ABSENT:
            yield violation(path, "PubliclyAccessible is not set and DMS defaults to a public instance; "
                                  "set it to false")
        elif as_bool(value) is not False:
            yield violation(path, "the replication instance is publicly accessible")


@rule("DP-OpenSearchInVpc", clause=1, severity="error", types=list(OPENSEARCH),
      title="OpenSearch domains are placed in a VPC",
      rationale="Clause 1: a domain without VPCOptions gets a public endpoint that only its access "
                "policy guards; in a VPC, security groups deny unauthorized addresses.",
      remediation="opensearch.Domain(self, 'Search', vpc=vpc, vpc_subnets=[ec2.SubnetSelection("
                  "subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)], ...)")
def opensearch_in_vpc(r, t):
    yield from require(r, "VPCOptions.SubnetIds", lambda v: isinstance(v, list) and len(v) > 0,
                       "the domain has no VPCOptions subnets, so its endpoint is public")


@rule("DP-ElastiCacheInVpc", clause=1, severity="error",
      types=[CACHE_CLUSTER, REPLICATION_GROUP, SERVERLESS_CACHE],
      title="ElastiCache caches run in subnets the template chooses",
      rationale="Clause 1: network controls (subnets, security groups) must deny unauthorized "
                "addresses. Without a subnet group a cache lands in the default VPC, whose subnets "
                "are public and whose network controls nobody designed.",
      remediation="subnets = elasticache.CfnSubnetGroup(self, 'CacheSubnets', "
                  "subnet_ids=vpc.select_subnets(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED).subnet_ids, "
                  "description='cache')\n"
                  "elasticache.CfnReplicationGroup(self, 'Cache', cache_subnet_group_name=subnets.ref, ...)")
def elasticache_in_vpc(r, t):
    if r.type == SERVERLESS_CACHE:
        yield from require(r, "SubnetIds", lambda v: isinstance(v, list) and len(v) > 0,
                           "the serverless cache has no SubnetIds, so it runs in the default VPC")
        return
    if r.type == REPLICATION_GROUP and always_set(r, "PrimaryClusterId"):
        return  # built around an existing cluster, which brings its own subnet group
    # "default" names the subnet group ElastiCache keeps for the default VPC
    yield from require(r, "CacheSubnetGroupName",
                       lambda v: v not in (ABSENT, None, "") and str(v).strip().lower() != "default",
                       "no CacheSubnetGroupName (or the default one), so the cache runs in the default VPC")


@rule("DP-MskNotPublic", clause=1, severity="error", types=[MSK],
      title="MSK clusters have no public broker endpoints",
      rationale="Clause 1: public access gives every broker an Elastic IP reachable from the "
                "internet. MSK keeps brokers private unless PublicAccess is SERVICE_PROVIDED_EIPS.",
      remediation="Leave `connectivity_info.public_access` unset or set type='DISABLED'.")
def msk_not_public(r, t):
    yield from require(r, "BrokerNodeGroupInfo.ConnectivityInfo.PublicAccess.Type",
                       lambda v: v is ABSENT or v == "DISABLED",
                       "the brokers are reachable from the internet (public access is on)")


# ---------------------------------------------------------------- clause 3: RDS and Aurora TLS

@rule("DP-RdsProxyTls", clause=3, severity="error", types=["AWS::RDS::DBProxy"],
      title="RDS Proxy accepts only TLS connections",
      rationale="Clause 3: all data in transit over TLS, internal channels included. A proxy takes "
                "plain-text client connections unless RequireTLS is true (false by default), whatever "
                "the database behind it enforces: the proxy, not the database, is then the client's peer.",
      remediation="rds.DatabaseProxy(self, 'Proxy', proxy_target=rds.ProxyTarget.from_instance(db),\n"
                  "    secrets=[db.secret], vpc=vpc, require_tls=True)")
def rds_proxy_tls(r, t):
    yield from require_true(r, "RequireTLS", "the proxy accepts plain-text connections (RequireTLS is not true; "
                                            "false by default)")



def _forced(value: Any) -> bool:
    return as_int(value) == 1


def _secure_transport(value: Any) -> bool:
    text = as_text(value)
    return text is not None and text.strip().lower() in ("1", "on", "true")


def _ssl_only(value: Any) -> bool:
    text = as_text(value)
    return text is not None and text.strip().upper() == "SSL"


@dataclass(frozen=True)
class TlsSetting:
    """How an engine is made to refuse connections without TLS."""

    parameter: str
    wanted: str
    ok: Callable[[Any], bool]
    secure_from: tuple[int, ...] | None = None  # engine version whose default forces TLS
    secure_when_unversioned: bool = False  # AWS's default version is already >= secure_from


# Engine family -> parameter. Defaults from the RDS user guide: rds.force_ssl is 1 from
# RDS for PostgreSQL 15 (and RDS picks a current major version when none is given); MySQL turns
# require_secure_transport on by default from 9.7, MariaDB from 11.8; everything else is off.
TLS_SETTINGS: dict[str, TlsSetting] = {
    "postgres": TlsSetting("rds.force_ssl", "1", _forced, (15,), True),
    "sqlserver": TlsSetting("rds.force_ssl", "1", _forced),
    "mysql": TlsSetting("require_secure_transport", "ON", _secure_transport, (9, 7)),
    "mariadb": TlsSetting("require_secure_transport", "ON", _secure_transport, (11, 8)),
    "db2": TlsSetting("db2comm", "SSL", _ssl_only),
    "aurora-postgresql": TlsSetting("rds.force_ssl", "1", _forced),
    "aurora-mysql": TlsSetting("require_secure_transport", "ON", _secure_transport),
    "aurora": TlsSetting("require_secure_transport", "ON", _secure_transport),
}


def _default_outcome(setting: TlsSetting, version: Any, path: str, where: str) -> Outcome | None:
    """Judge a parameter left at its default; `version` is the engine version or family."""
    name = setting.parameter
    if setting.secure_from is not None:
        if isinstance(version, Unknown):
            return unverifiable(path, f"{where} leaves {name} at a default that depends on the "
                                      f"engine version: {version.reason}")
        if version is ABSENT and setting.secure_when_unversioned:
            return None
        numbers = version_of(version) if version is not ABSENT else None
        if numbers is not None and numbers >= setting.secure_from:
            return None
    return violation(path, f"{where} leaves {name} off, so connections without TLS are allowed; "
                           f"set {name}={setting.wanted}")


def _group_outcomes(r, setting: TlsSetting, group_prop: str, group_type: str,
                    versions: list, inherited: bool = False) -> Iterator[Outcome]:
    """Judge the parameter group(s) a database points at for one engine family."""
    label = "cluster parameter group" if group_type == RDS_CLUSTER_PARAMS else "parameter group"
    for path, value in leaves(r, group_prop):
        if isinstance(value, Unknown):
            yield unverifiable(path, f"cannot verify that TLS is forced: {value.reason}")
        elif value is ABSENT:
            if inherited:
                continue  # a read replica uses its source's group; the source is judged itself
            for version in versions:
                outcome = _default_outcome(setting, version, path, f"the default {label}")
                if outcome:
                    yield outcome
        elif isinstance(value, str) and is_literal(value) and value.lower().startswith("default."):
            outcome = _default_outcome(setting, value, path, f"the default {label} {value}")
            if outcome:
                yield outcome
        else:
            group = follow(r, value, group_type)
            if group is None:
                yield unverifiable(path, "cannot verify that TLS is forced: the parameter group is "
                                         "not in the scanned templates")
                continue
            family = first(group, "Family")
            where = f"{label} {group.logical_id}"
            for _, setting_value in mapping_parameter(group, setting.parameter):
                if isinstance(setting_value, Unknown):
                    yield unverifiable(path, f"cannot verify {setting.parameter} in {where}: "
                                             f"{setting_value.reason}")
                elif setting_value is ABSENT:
                    outcome = _default_outcome(setting, family, path, where)
                    if outcome:
                        yield outcome
                elif not setting.ok(setting_value):
                    yield violation(path, f"{where} sets {setting.parameter} to {setting_value!r}; "
                                          f"set {setting.parameter}={setting.wanted} to refuse "
                                          "connections without TLS")


def _oracle_outcomes(r) -> Iterator[Outcome]:
    """Oracle has no parameter that refuses plain connections: the SSL option adds a TLS
    listener beside the plain one, which only security groups can close."""
    for path, value in leaves(r, "OptionGroupName"):
        group = None if value is ABSENT or isinstance(value, Unknown) else follow(r, value, RDS_OPTIONS)
        names = [n for _, n in group.values("OptionConfigurations.*.OptionName")] if group else []
        if value is ABSENT or (group is not None and "SSL" not in names
                               and not any(isinstance(n, Unknown) for n in names)):
            yield violation(path, "the Oracle instance has no option group with the SSL option, so "
                                  "it accepts only unencrypted connections")
        else:
            yield unverifiable(path, "Oracle offers TLS through the SSL option on a second port; dpguard "
                                     "cannot verify that security groups close the plain listener")


def _engine_outcomes(r, engine: Any, engine_path: str, group_prop: str, group_type: str,
                     versions: list, inherited: bool = False) -> Iterator[Outcome]:
    if isinstance(engine, Unknown):
        yield unverifiable(engine_path, "cannot tell how to force TLS: the engine is unknown "
                                        f"({engine.reason})")
        return
    if not isinstance(engine, str):
        yield unverifiable(engine_path, "cannot tell how to force TLS: the engine is not set")
        return
    kind = engine_kind(engine)
    if kind == "oracle":
        yield from _oracle_outcomes(r)
    elif kind == "custom":
        yield unverifiable(engine_path, "RDS Custom databases are configured inside the database; "
                                        "dpguard cannot verify that TLS is forced")
    elif kind in TLS_SETTINGS:
        yield from _group_outcomes(r, TLS_SETTINGS[kind], group_prop, group_type, versions, inherited)
    else:
        yield unverifiable(engine_path, f"dpguard does not know how engine {engine!r} forces TLS")


@rule("DP-RdsForceSsl", clause=3, severity="error", types=[RDS_INSTANCE],
      title="RDS DB instances refuse connections without TLS",
      rationale="Clause 3: all data in transit over TLS, unsecured channels disabled. RDS accepts "
                "plain connections unless the parameter group forces TLS: rds.force_ssl=1 "
                "(PostgreSQL, SQL Server), require_secure_transport=ON (MySQL, MariaDB), "
                "DB2COMM=SSL (Db2). The default is on only from PostgreSQL 15, MySQL 9.7 and "
                "MariaDB 11.8. Oracle has no such parameter (its SSL option adds a TLS port beside "
                "the plain one), so Oracle instances are unverifiable unless they lack the SSL "
                "option. Instances of an Aurora or Multi-AZ cluster are judged by DP-AuroraForceSsl.",
      remediation="params = rds.ParameterGroup(self, 'Params', engine=engine,\n"
                  "    parameters={'rds.force_ssl': '1'})  # MySQL/MariaDB: {'require_secure_transport': 'ON'}\n"
                  "rds.DatabaseInstance(self, 'Db', engine=engine, parameter_group=params, ...)")
def rds_force_ssl(r, t):
    if always_set(r, "DBClusterIdentifier"):
        return
    versions = [v for _, v in leaves(r, "EngineVersion")]
    outcomes = []
    for engine_path, engine in leaves(r, "Engine"):
        if engine is ABSENT and always_set(r, "SourceDBInstanceIdentifier"):
            outcomes.extend(_replica_outcomes(r))
            continue
        inherited = always_set(r, "SourceDBInstanceIdentifier")
        if inherited and not _source_in_templates(r):
            if any(v is ABSENT for _, v in leaves(r, "DBParameterGroupName")):
                outcomes.append(unverifiable("Properties/DBParameterGroupName",
                                             "the read replica uses its source's parameter group, "
                                             "which is not in the scanned templates"))
        outcomes.extend(_engine_outcomes(r, engine, engine_path, "DBParameterGroupName", RDS_PARAMS,
                                         versions, inherited))
    yield from outcomes


def _source_in_templates(r) -> bool:
    return all(r.template.resource_of(v, RDS_INSTANCE) is not None
               for _, v in leaves(r, "SourceDBInstanceIdentifier"))


def _replica_outcomes(r) -> Iterator[Outcome]:
    """A read replica without its own Engine takes the source's engine (and, without its own
    group, the source's parameter group, judged on the source)."""
    for path, source_ref in leaves(r, "SourceDBInstanceIdentifier"):
        source = r.template.resource_of(source_ref, RDS_INSTANCE)
        if source is None:
            yield unverifiable(path, "cannot tell how to force TLS: the replica's source instance is "
                                     "not in the scanned templates")
            continue
        versions = [v for _, v in leaves(source, "EngineVersion")]
        for engine_path, engine in leaves(source, "Engine"):
            yield from _engine_outcomes(r, engine, path, "DBParameterGroupName", RDS_PARAMS,
                                        versions, inherited=True)


@rule("DP-AuroraForceSsl", clause=3, severity="error", types=[RDS_CLUSTER],
      title="Aurora and Multi-AZ DB clusters refuse connections without TLS",
      rationale="Clause 3: all data in transit over TLS. A cluster accepts plain connections "
                "unless its cluster parameter group sets rds.force_ssl=1 (Aurora PostgreSQL) or "
                "require_secure_transport=ON (Aurora MySQL). Aurora's default cluster groups "
                "leave both off, so a cluster without its own group is a violation; Multi-AZ DB "
                "clusters follow the RDS engine defaults (PostgreSQL 15+ forces TLS).",
      remediation="params = rds.ParameterGroup(self, 'ClusterParams', engine=engine,\n"
                  "    parameters={'rds.force_ssl': '1'})  # Aurora MySQL: {'require_secure_transport': 'ON'}\n"
                  "rds.DatabaseCluster(self, 'Db', engine=engine, parameter_group=params, ...)")
def aurora_force_ssl(r, t):
    versions = [v for _, v in leaves(r, "EngineVersion")]
    outcomes = []
    for engine_path, engine in leaves(r, "Engine"):
        outcomes.extend(_engine_outcomes(r, engine, engine_path, "DBClusterParameterGroupName",
                                         RDS_CLUSTER_PARAMS, versions))
    yield from outcomes


# ---------------------------------------------------------------- clause 3: other services

def redshift_parameter(group, name: str) -> list:
    """Every value `name` may take in a Redshift parameter group (a list of {ParameterName,
    ParameterValue}); ABSENT when the group does not set it."""
    return entry_values(group, "Parameters", name, "ParameterName", "ParameterValue")


@rule("DP-RedshiftRequireSsl", clause=3, severity="error", types=[REDSHIFT, REDSHIFT_PARAMS],
      title="Redshift clusters and parameter groups refuse connections without TLS",
      rationale="Clause 3: all data in transit over TLS. The parameter require_ssl must be true. "
                "Since January 2025 a cluster without a parameter group gets default.redshift-2.0, "
                "where require_ssl is true, and so do custom groups of the redshift-2.0 family "
                "that leave it unset; the redshift-1.0 family (and default.redshift-1.0) defaults "
                "to false. A parameter group that no scanned cluster uses is judged on its own, "
                "since the next cluster attached to it would accept plain connections.",
      remediation="redshift.CfnClusterParameterGroup(self, 'Params', parameter_group_family='redshift-2.0',\n"
                  "    description='TLS only', parameters=[redshift.CfnClusterParameterGroup.ParameterProperty(\n"
                  "        parameter_name='require_ssl', parameter_value='true')])")
def redshift_require_ssl(r, t):
    if r.type == REDSHIFT_PARAMS:
        if not referencing(r, REDSHIFT):  # used groups are judged through their clusters
            yield from _redshift_group_ssl(r, "Properties/Parameters",
                                          "this parameter group (attached to no scanned cluster)")
        return
    for path, value in leaves(r, "ClusterParameterGroupName"):
        if isinstance(value, Unknown):
            yield unverifiable(path, f"cannot verify that TLS is required: {value.reason}")
        elif value is ABSENT:
            continue  # default.redshift-2.0: require_ssl true
        elif isinstance(value, str) and is_literal(value) and value.startswith("default."):
            if value != "default.redshift-2.0":
                yield violation(path, f"the default group {value} leaves require_ssl false, so the "
                                      "cluster accepts connections without TLS")
        else:
            group = follow(r, value, REDSHIFT_PARAMS)
            if group is None:
                yield unverifiable(path, "cannot verify that TLS is required: the parameter group is "
                                         "not in the scanned templates")
                continue
            yield from _redshift_group_ssl(group, path, f"parameter group {group.logical_id}")


def _redshift_group_ssl(group, path: str, where: str) -> Iterator[Outcome]:
    """require_ssl in a Redshift parameter group, reported at `path` (the cluster's property, or
    the group's own Parameters when no cluster uses it)."""
    family = first(group, "ParameterGroupFamily")
    for setting in redshift_parameter(group, "require_ssl"):
        if isinstance(setting, Unknown):
            yield unverifiable(path, f"cannot verify require_ssl in {where}: {setting.reason}")
        elif setting is ABSENT:
            if isinstance(family, Unknown):
                yield unverifiable(path, f"require_ssl is left at the family default, and the "
                                         f"family is unknown: {family.reason}")
            elif family != "redshift-2.0":
                yield violation(path, f"{where} ({family}) leaves require_ssl at its default, false, so "
                                      "its clusters accept connections without TLS")
        elif as_bool(setting) is not True:
            yield violation(path, f"{where}: require_ssl is not true, so its clusters accept "
                                  "connections without TLS")


@rule("DP-ElastiCacheInTransitEncryption", clause=3, severity="error",
      types=[REPLICATION_GROUP, CACHE_CLUSTER],
      title="ElastiCache caches require TLS",
      rationale="Clause 3: all data in transit over TLS. TransitEncryptionEnabled is off by "
                "default, and TransitEncryptionMode 'preferred' still accepts plain connections. "
                "(ElastiCache Serverless always uses TLS.)",
      remediation="elasticache.CfnReplicationGroup(self, 'Cache', transit_encryption_enabled=True, "
                  "transit_encryption_mode='required', ...)")
def elasticache_in_transit(r, t):
    yield from require_true(r, "TransitEncryptionEnabled", "in-transit encryption (TLS) is off")
    yield from require(r, "TransitEncryptionMode", lambda v: v is ABSENT or v == "required",
                       "TransitEncryptionMode must be 'required'; 'preferred' still accepts plain "
                       "connections")


@rule("DP-OpenSearchHttpsTls12", clause=3, severity="error", types=list(OPENSEARCH),
      title="OpenSearch domains enforce HTTPS with TLS 1.2 or later",
      rationale="Clause 3: all data in transit over TLS. EnforceHTTPS is off by default and the "
                "default TLS policy (Policy-Min-TLS-1-0-2019-07) still allows TLS 1.0.",
      remediation="opensearch.Domain(self, 'Search', enforce_https=True, "
                  "tls_security_policy=opensearch.TLSSecurityPolicy.TLS_1_2, ...)")
def opensearch_https(r, t):
    yield from require_true(r, "DomainEndpointOptions.EnforceHTTPS",
                            "the domain accepts plain HTTP (EnforceHTTPS is not true)")
    yield from require(r, "DomainEndpointOptions.TLSSecurityPolicy",
                       lambda v: isinstance(v, str) and v.startswith("Policy-Min-TLS-1-2"),
                       "the TLS security policy allows TLS older than 1.2; use Policy-Min-TLS-1-2-*")


@rule("DP-OpenSearchNodeToNode", clause=3, severity="error", types=list(OPENSEARCH),
      title="OpenSearch domains encrypt traffic between nodes",
      rationale="Clause 3 covers internal channels too: node-to-node encryption is off unless "
                "enabled.",
      remediation="opensearch.Domain(self, 'Search', node_to_node_encryption=True, ...)")
def opensearch_node_to_node(r, t):
    yield from require_true(r, "NodeToNodeEncryptionOptions.Enabled", "node-to-node encryption is off")


@rule("DP-MskInTransitTls", clause=3, severity="error", types=[MSK],
      title="MSK clusters use TLS between clients and brokers and inside the cluster",
      rationale="Clause 3: all data in transit over TLS. MSK defaults to TLS for both; "
                "ClientBroker PLAINTEXT or TLS_PLAINTEXT, or InCluster false, opens plain channels.",
      remediation="msk.CfnCluster(self, 'Kafka', encryption_info=msk.CfnCluster.EncryptionInfoProperty(\n"
                  "    encryption_in_transit=msk.CfnCluster.EncryptionInTransitProperty(client_broker='TLS', "
                  "in_cluster=True)), ...)")
def msk_in_transit(r, t):
    base = "EncryptionInfo.EncryptionInTransit"
    yield from require(r, f"{base}.ClientBroker", lambda v: v is ABSENT or v == "TLS",
                       "clients may reach the brokers without TLS (ClientBroker must be TLS)")
    yield from require(r, f"{base}.InCluster", lambda v: v is ABSENT or as_bool(v) is True,
                       "traffic between brokers is not encrypted (InCluster is false)")


@rule("DP-DocDbTls", clause=3, severity="error", types=[DOCDB],
      title="DocumentDB clusters keep TLS on",
      rationale="Clause 3: all data in transit over TLS. DocumentDB requires TLS by default "
                "(parameter tls=enabled); a cluster parameter group that sets tls=disabled turns "
                "it off.",
      remediation="docdb.CfnDBClusterParameterGroup(self, 'Params', family='docdb5.0', "
                  "description='TLS', parameters={'tls': 'enabled'})")
def docdb_tls(r, t):
    for path, value in leaves(r, "DBClusterParameterGroupName"):
        if value is ABSENT:
            continue  # the default group has tls=enabled
        if isinstance(value, Unknown):
            yield unverifiable(path, f"cannot verify that TLS is on: {value.reason}")
            continue
        if isinstance(value, str) and is_literal(value) and value.startswith("default."):
            continue
        group = follow(r, value, DOCDB_PARAMS)
        if group is None:
            yield unverifiable(path, "cannot verify that TLS is on: the parameter group is not in "
                                     "the scanned templates")
            continue
        for _, setting in mapping_parameter(group, "tls"):
            if isinstance(setting, Unknown):
                yield unverifiable(path, f"cannot verify tls in {group.logical_id}: {setting.reason}")
            elif (as_text(setting) or "").strip().lower() == "disabled":
                yield violation(path, f"parameter group {group.logical_id} turns TLS off (tls=disabled)")


@rule("DP-DaxInTransitTls", clause=3, severity="error", types=[DAX],
      title="DAX clusters encrypt their endpoint with TLS",
      rationale="Clause 3: all data in transit over TLS. DAX endpoints are plain unless "
                "ClusterEndpointEncryptionType is TLS, which can only be set at creation.",
      remediation="dax.CfnCluster(self, 'Dax', cluster_endpoint_encryption_type='TLS', ...)")
def dax_in_transit(r, t):
    yield from require(r, "ClusterEndpointEncryptionType", lambda v: v == "TLS",
                       "the DAX endpoint does not use TLS (ClusterEndpointEncryptionType must be TLS)")


# ---------------------------------------------------------------- clause 7: encryption at rest

def _restored_encryption(r, encrypted: str, sources: tuple[str, ...]) -> Iterator[Outcome]:
    """StorageEncrypted for a database that may be restored from a snapshot or copied from a
    source, which then passes on its own encryption unless a KMS key is given."""
    restored = [p for p in sources if any(v is not ABSENT for _, v in leaves(r, p))]
    keyed = always_set(r, "KmsKeyId")  # a key given on restore or replica encrypts the copy
    for path, value in leaves(r, encrypted):
        if isinstance(value, Unknown):
            yield unverifiable(path, f"cannot verify that storage is encrypted: {value.reason}")
        elif as_bool(value) is True or (value is ABSENT and keyed):
            continue
        elif value is ABSENT and restored:
            yield unverifiable(path, f"the encryption is inherited from {restored[0]}, which dpguard "
                                     "cannot see; set StorageEncrypted true (with KmsKeyId)")
        else:
            yield violation(path, "storage encryption is off")


@rule("DP-RdsStorageEncrypted", clause=7, severity="error", types=[RDS_INSTANCE, RDS_CLUSTER],
      title="RDS instances and Aurora/Multi-AZ clusters encrypt storage",
      rationale="Clause 7: all data at rest encrypted. StorageEncrypted defaults to false. A "
                "read replica of an instance in the scanned templates is judged through its "
                "source; a restore from a snapshot without StorageEncrypted or KmsKeyId inherits "
                "an encryption dpguard cannot see and is unverifiable. Instances of a cluster are "
                "judged on the cluster; Aurora Serverless v1 is always encrypted.",
      remediation="rds.DatabaseInstance(self, 'Db', storage_encrypted=True, storage_encryption_key=key, ...)\n"
                  "rds.DatabaseCluster(self, 'Db', storage_encrypted=True, storage_encryption_key=key, ...)")
def rds_storage_encrypted(r, t):
    if r.type == RDS_CLUSTER:
        if all(v == "serverless" for _, v in leaves(r, "EngineMode")):
            return
        yield from _restored_encryption(r, "StorageEncrypted",
                                        ("SnapshotIdentifier", "SourceDBClusterIdentifier",
                                         "ReplicationSourceIdentifier"))
        return
    if always_set(r, "DBClusterIdentifier"):
        return
    if always_set(r, "SourceDBInstanceIdentifier") and _source_in_templates(r):
        return  # a replica has its source's encryption; the source is judged itself
    yield from _restored_encryption(r, "StorageEncrypted",
                                    ("DBSnapshotIdentifier", "SourceDBInstanceIdentifier",
                                     "SourceDBInstanceAutomatedBackupsArn", "SourceDbiResourceId",
                                     "DBClusterSnapshotIdentifier"))


@rule("DP-DocDbStorageEncrypted", clause=7, severity="error", types=[DOCDB],
      title="DocumentDB clusters encrypt storage",
      rationale="Clause 7: all data at rest encrypted. StorageEncrypted defaults to false in "
                "CloudFormation; a restore without it inherits the snapshot's encryption.",
      remediation="docdb.DatabaseCluster(self, 'Docs', storage_encrypted=True, kms_key=key, ...)")
def docdb_storage_encrypted(r, t):
    yield from _restored_encryption(r, "StorageEncrypted",
                                    ("SnapshotIdentifier", "SourceDBClusterIdentifier"))


@rule("DP-NeptuneStorageEncrypted", clause=7, severity="error", types=[NEPTUNE],
      title="Neptune clusters encrypt storage",
      rationale="Clause 7: all data at rest encrypted. StorageEncrypted defaults to false; a "
                "restore without it inherits the snapshot's encryption.",
      remediation="neptune.CfnDBCluster(self, 'Graph', storage_encrypted=True, kms_key_id=key.key_arn, ...)")
def neptune_storage_encrypted(r, t):
    yield from _restored_encryption(r, "StorageEncrypted",
                                    ("SnapshotIdentifier", "SourceDBClusterIdentifier"))


@rule("DP-DynamoDbKmsEncryption", clause=7, severity="error", types=list(DYNAMODB),
      title="DynamoDB tables are encrypted with a KMS key in our account",
      rationale="Clause 7: the cryptographic material is accessible only to our processes. "
                "Without SSESpecification.SSEEnabled, DynamoDB encrypts with an AWS-owned key that "
                "we cannot see, audit or revoke; with it, a KMS key in our account (AWS managed or "
                "customer managed) is used and every use is logged.",
      remediation="dynamodb.Table(self, 'Table', encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED, "
                  "encryption_key=key, ...)")
def dynamodb_kms_encryption(r, t):
    yield from require_true(r, "SSESpecification.SSEEnabled",
                            "the table is encrypted with an AWS-owned key; enable SSE with KMS")


@rule("DP-DaxEncrypted", clause=7, severity="error", types=[DAX],
      title="DAX clusters encrypt the cache at rest",
      rationale="Clause 7: all data at rest encrypted. DAX caches DynamoDB items and writes them "
                "to disk unencrypted unless SSESpecification.SSEEnabled is true.",
      remediation="dax.CfnCluster(self, 'Dax', sse_specification=dax.CfnCluster.SSESpecificationProperty("
                  "sse_enabled=True), ...)")
def dax_encrypted(r, t):
    yield from require_true(r, "SSESpecification.SSEEnabled", "encryption at rest is off")


@rule("DP-ElastiCacheAtRestEncryption", clause=7, severity="error",
      types=[REPLICATION_GROUP, CACHE_CLUSTER],
      title="ElastiCache caches encrypt data at rest",
      rationale="Clause 7: all data at rest encrypted. Replication groups encrypt at rest only "
                "when AtRestEncryptionEnabled is true. A node-based CacheCluster cannot encrypt at "
                "rest at all (disk during sync, swap and backups), so it is always a violation: use "
                "a Valkey/Redis replication group or ElastiCache Serverless, which is always "
                "encrypted.",
      remediation="elasticache.CfnReplicationGroup(self, 'Cache', at_rest_encryption_enabled=True, "
                  "kms_key_id=key.key_arn, ...)")
def elasticache_at_rest(r, t):
    if r.type == REPLICATION_GROUP:
        yield from require_true(r, "AtRestEncryptionEnabled", "encryption at rest is off")
        return
    engine = first(r, "Engine")
    if engine == "memcached":
        message = ("a Memcached CacheCluster cannot encrypt at rest; use ElastiCache Serverless or a "
                   "Valkey/Redis replication group")
    else:
        message = ("a CacheCluster cannot encrypt at rest; use a ReplicationGroup with "
                   "AtRestEncryptionEnabled (or ElastiCache Serverless)")
    yield violation("Properties", message)


@rule("DP-OpenSearchAtRest", clause=7, severity="error", types=list(OPENSEARCH),
      title="OpenSearch domains encrypt data at rest",
      rationale="Clause 7: all data at rest encrypted. Encryption at rest is off unless "
                "EncryptionAtRestOptions.Enabled is true.",
      remediation="opensearch.Domain(self, 'Search', encryption_at_rest=opensearch.EncryptionAtRestOptions("
                  "enabled=True, kms_key=key), ...)")
def opensearch_at_rest(r, t):
    yield from require_true(r, "EncryptionAtRestOptions.Enabled", "encryption at rest is off")


@rule("DP-RedshiftEncrypted", clause=7, severity="error", types=[REDSHIFT],
      title="Redshift clusters are encrypted",
      rationale="Clause 7: all data at rest encrypted. Encrypted must be true in the template: "
                "clusters created before 2025 defaulted to unencrypted, and newer ones fall back to "
                "an AWS-owned key that we cannot audit.",
      remediation="redshift.CfnCluster(self, 'Dw', encrypted=True, kms_key_id=key.key_id, ...)")
def redshift_encrypted(r, t):
    yield from require_true(r, "Encrypted", "the cluster is not encrypted (Encrypted is not true)")


# ---------------------------------------------------------------- clause 9: database logs

def exported_logs(r, path: str = "EnableCloudwatchLogsExports") -> list[tuple[str, set, Unknown | None]]:
    """(property path, log types named, the reason some entry cannot be known) for every variant
    of a list of log types. A list that is not a list gives an empty set and the reason."""
    out = []
    for prop_path, value in leaves(r, path):
        if value is ABSENT:
            out.append((prop_path, set(), None))
        elif isinstance(value, Unknown):
            out.append((prop_path, set(), value))
        elif not isinstance(value, list):
            out.append((prop_path, set(), Unknown(f"{path} is not a list")))
        else:
            names, unknown = set(), None
            for item in value:
                for v in alternatives(item, r.template):
                    text = as_text(v) if is_literal(v) else None
                    if text is not None:
                        names.add(text.strip().lower())
                    elif v is not ABSENT:
                        unknown = v if isinstance(v, Unknown) else Unknown("a log type is not a string")
            out.append((prop_path, names, unknown))
    return out


def missing_logs(r, wanted: tuple[str, ...], what: str, path: str = "EnableCloudwatchLogsExports"
                 ) -> Iterator[Outcome]:
    """Every variant of the export list must name each of `wanted`."""
    for prop_path, names, unknown in exported_logs(r, path):
        missing = [w for w in wanted if w not in names]
        if not missing:
            continue
        listed = ", ".join(f"'{m}'" for m in missing)
        if unknown is not None:
            yield unverifiable(prop_path, f"cannot verify that {listed} logs are exported to CloudWatch "
                                          f"Logs: {unknown.reason}")
        elif not names:
            yield violation(prop_path, f"{what} exports no logs to CloudWatch Logs (none by default); "
                                       f"add {listed} to {path}")
        else:
            noun, pronoun = ("log", "it") if len(missing) == 1 else ("logs", "them")
            yield violation(prop_path, f"{what} does not export the {listed} {noun} to CloudWatch Logs; "
                                       f"add {pronoun} to {path}")


# Engine -> the logs that record who connected and what they did (Security Hub RDS.9, RDS.34,
# RDS.36, RDS.37, RDS.40 ask for these among others). MySQL and MariaDB instances: the audit log
# (MariaDB audit plugin); Multi-AZ MySQL clusters cannot load the plugin, so the general log.
INSTANCE_LOGS: dict[str, tuple[str, ...]] = {
    "postgres": ("postgresql",),
    "mysql": ("audit",),
    "mariadb": ("audit",),
    "sqlserver": ("error", "agent"),
    "sqlserver-ex": ("error",),  # Express has no SQL Server Agent
    "oracle": ("alert", "audit"),
    "db2": ("diag.log",),
}
CLUSTER_LOGS: dict[str, tuple[str, ...]] = {
    "aurora-postgresql": ("postgresql",),
    "aurora-mysql": ("audit",),
    "aurora": ("audit",),
    "postgres": ("postgresql",),
    "mysql": ("general",),
}


def _log_kind(engine: str) -> str:
    e = engine.strip().lower()
    if e == "sqlserver-ex":
        return e
    return engine_kind(e)


def _audit_enabled_outcomes(r, kind: str) -> Iterator[Outcome]:
    """The audit log is written only when the engine is told to: Aurora MySQL needs
    server_audit_logging=1 in the cluster parameter group, RDS for MySQL and MariaDB need the
    MARIADB_AUDIT_PLUGIN option. Without that the exported log stays empty."""
    if kind in ("aurora-mysql", "aurora"):
        yield from _cluster_parameter_outcomes(r, RDS_CLUSTER_PARAMS, "server_audit_logging", lambda v: as_int(v) == 1,
                                               "1", "the exported audit log stays empty")
    elif kind in ("mysql", "mariadb") and r.type == RDS_INSTANCE:
        for path, group in _groups(r, "OptionGroupName", RDS_OPTIONS, "default:", "cannot verify the audit plugin"):
            if isinstance(group, Outcome):
                yield group
                continue
            names = [n for _, n in group.values("OptionConfigurations.*.OptionName")] if group else []
            if "MARIADB_AUDIT_PLUGIN" in names:
                continue
            unknown = next((n for n in names if isinstance(n, Unknown)), None)
            if unknown is not None:
                yield unverifiable(path, f"cannot verify the audit plugin: {unknown.reason}")
            else:
                yield violation(path, "no option group with MARIADB_AUDIT_PLUGIN, so the exported "
                                      "audit log stays empty; add the option")


def _groups(r, prop: str, rtype: str, default_prefix: str, cannot: str) -> Iterator[tuple[str, Any]]:
    """(path, group) for each value of the parameter or option group property: the group
    resource, None for the engine's default group, or an unverifiable Outcome when the name
    cannot be followed."""
    for path, value in leaves(r, prop):
        if isinstance(value, Unknown):
            yield path, unverifiable(path, f"{cannot}: {value.reason}")
        elif value is ABSENT or (isinstance(value, str) and value.startswith(default_prefix)):
            yield path, None
        else:
            group = follow(r, value, rtype)
            yield path, group if group is not None else unverifiable(
                path, f"{cannot}: the group is not in the scanned templates")


@rule("DP-RdsLogExports", clause=9, severity="error", types=[RDS_INSTANCE, RDS_CLUSTER],
      title="RDS and Aurora databases publish their audit-relevant logs to CloudWatch Logs",
      rationale="Clause 9: access to data is logged and the logs kept where the database's own "
                "administrators cannot erase them. RDS exports no logs unless "
                "EnableCloudwatchLogsExports names them. Required per engine (the access-relevant "
                "subset of Security Hub RDS.9/RDS.34/RDS.36/RDS.37/RDS.40): PostgreSQL and Aurora "
                "PostgreSQL 'postgresql'; MySQL and MariaDB instances 'audit' (with the "
                "MARIADB_AUDIT_PLUGIN option), Aurora MySQL 'audit' (with server_audit_logging=1), "
                "Multi-AZ MySQL clusters 'general'; SQL Server 'error' and 'agent' ('error' for "
                "Express); Oracle 'alert' and 'audit'; Db2 'diag.log'. Instances of an Aurora or "
                "Multi-AZ cluster are judged on the cluster; Aurora Serverless v1 cannot export.",
      remediation="rds.DatabaseInstance(self, 'Db', engine=engine,\n"
                  "    cloudwatch_logs_exports=['postgresql'],  # MySQL: ['audit'] with the MARIADB_AUDIT_PLUGIN option\n"
                  "    cloudwatch_logs_retention=logs.RetentionDays.ONE_YEAR, ...)\n"
                  "rds.DatabaseCluster(self, 'Db', engine=engine, cloudwatch_logs_exports=['audit'],\n"
                  "    parameters={'server_audit_logging': '1'}, ...)  # Aurora PostgreSQL: ['postgresql']")
def rds_log_exports(r, t):
    if r.type == RDS_INSTANCE:
        if always_set(r, "DBClusterIdentifier"):
            return
        table = INSTANCE_LOGS
    else:
        if all(v == "serverless" for _, v in leaves(r, "EngineMode")):
            return
        table = CLUSTER_LOGS
    engines = leaves(r, "Engine")
    if r.type == RDS_INSTANCE and all(e is ABSENT for _, e in engines) \
            and always_set(r, "SourceDBInstanceIdentifier"):
        engines = []
        for path, ref in leaves(r, "SourceDBInstanceIdentifier"):
            source = r.template.resource_of(ref, RDS_INSTANCE)
            engines.extend([(path, e) for _, e in leaves(source, "Engine")] if source is not None else
                           [(path, Unknown("the replica's source instance is not in the scanned templates"))])
    outcomes: list[Outcome] = []
    for engine_path, engine in engines:
        if isinstance(engine, Unknown):
            outcomes.append(unverifiable(engine_path, f"cannot tell which logs to export: the engine is "
                                                      f"unknown ({engine.reason})"))
            continue
        if not isinstance(engine, str):
            outcomes.append(unverifiable(engine_path, "cannot tell which logs to export: the engine is "
                                                      "not set"))
            continue
        kind = _log_kind(engine)
        if kind == "custom":
            outcomes.append(unverifiable(engine_path, "RDS Custom cannot export logs to CloudWatch Logs; "
                                                      "dpguard cannot verify how its logs are kept"))
            continue
        wanted = table.get(kind)
        if wanted is None:
            outcomes.append(unverifiable(engine_path, f"dpguard does not know which logs engine "
                                                      f"{engine!r} must export"))
            continue
        found = list(missing_logs(r, wanted, "the database"))
        outcomes.extend(found)
        if not found and "audit" in wanted:
            outcomes.extend(_audit_enabled_outcomes(r, kind))
    seen = set()
    for outcome in outcomes:  # Fn::If over engines of one family says the same thing twice
        if outcome not in seen:
            seen.add(outcome)
            yield outcome


# OpenSearch publishes a log only when LogPublishingOptions.<type> is Enabled with a log group.
def opensearch_log_outcomes(r, log_type: str, label: str) -> Iterator[Outcome]:
    base = f"LogPublishingOptions.{log_type}"
    for path, option in leaves(r, base):
        if isinstance(option, Unknown):
            yield unverifiable(path, f"cannot verify that {label} are published: {option.reason}")
            continue
        if option is ABSENT:
            yield violation(path, f"the domain does not publish {label} (off by default); enable "
                                  f"{log_type} with a CloudWatch Logs group")
            continue
        if not isinstance(option, dict):
            yield unverifiable(path, f"cannot verify that {label} are published: {log_type} is not a mapping")
            continue
        enabled = nested_values(option, r.template, "Enabled")
        arns = nested_values(option, r.template, "CloudWatchLogsLogGroupArn")
        unknown = next((v for v in enabled + arns if isinstance(v, Unknown)), None)
        if any(as_bool(v) is not True and not isinstance(v, Unknown) for v in enabled):
            yield violation(f"{path}/Enabled", f"{label} are not published ({log_type} Enabled is not true)")
        elif any(not is_set(v) for v in arns):
            yield violation(f"{path}/CloudWatchLogsLogGroupArn",
                            f"{log_type} names no CloudWatchLogsLogGroupArn, so {label} go nowhere")
        elif unknown is not None:
            yield unverifiable(path, f"cannot verify that {label} are published: {unknown.reason}")


@rule("DP-OpenSearchAuditLogs", clause=9, severity="error", types=list(OPENSEARCH),
      title="OpenSearch domains publish audit logs, with fine-grained access control on",
      rationale="Clause 9: access to data is logged. Only audit logs record who read or changed "
                "which index; OpenSearch publishes none unless LogPublishingOptions.AUDIT_LOGS is "
                "Enabled with a CloudWatchLogsLogGroupArn. Audit logs exist only on domains with "
                "fine-grained access control (AdvancedSecurityOptions.Enabled, off by default), so "
                "that is required too.",
      remediation="opensearch.Domain(self, 'Search', fine_grained_access_control=opensearch.AdvancedSecurityOptions(\n"
                  "    master_user_arn=admin_role.role_arn),\n"
                  "    logging=opensearch.LoggingOptions(audit_log_enabled=True, audit_log_group=log_group), ...)")
def opensearch_audit_logs(r, t):
    yield from opensearch_log_outcomes(r, "AUDIT_LOGS", "audit logs")
    yield from require_true(r, "AdvancedSecurityOptions.Enabled",
                            "fine-grained access control is off (AdvancedSecurityOptions.Enabled is not "
                            "true), and without it the domain writes no audit log")


@rule("DP-OpenSearchErrorLogs", clause=9, severity="error", types=list(OPENSEARCH),
      title="OpenSearch domains publish error (application) logs",
      rationale="Clause 9: security-relevant events are logged. The application log records "
                "errors, failed requests and cluster problems; OpenSearch publishes it only when "
                "LogPublishingOptions.ES_APPLICATION_LOGS is Enabled with a CloudWatchLogsLogGroupArn "
                "(off by default).",
      remediation="opensearch.Domain(self, 'Search', logging=opensearch.LoggingOptions("
                  "app_log_enabled=True, app_log_group=log_group), ...)")
def opensearch_error_logs(r, t):
    yield from opensearch_log_outcomes(r, "ES_APPLICATION_LOGS", "error (application) logs")


@rule("DP-OpenSearchSlowLogs", clause=9, severity="warning", types=list(OPENSEARCH),
      title="OpenSearch domains publish search and index slow logs",
      rationale="Clause 9 (monitoring). Slow logs (SEARCH_SLOW_LOGS, INDEX_SLOW_LOGS, off by "
                "default) show expensive queries, which helps spot scraping and abuse, but they are "
                "performance diagnostics, not an access record, and they stay empty until index "
                "thresholds are set. Advisory: a warning, while audit and error logs are errors.",
      remediation="opensearch.Domain(self, 'Search', logging=opensearch.LoggingOptions(\n"
                  "    slow_search_log_enabled=True, slow_search_log_group=log_group,\n"
                  "    slow_index_log_enabled=True, slow_index_log_group=log_group), ...)")
def opensearch_slow_logs(r, t):
    yield from opensearch_log_outcomes(r, "SEARCH_SLOW_LOGS", "search slow logs")
    yield from opensearch_log_outcomes(r, "INDEX_SLOW_LOGS", "index slow logs")


NEPTUNE_PARAMS = "AWS::Neptune::DBClusterParameterGroup"


def _cluster_parameter_outcomes(r, group_type: str, name: str, ok: Callable[[Any], bool],
                                wanted: str, effect: str) -> Iterator[Outcome]:
    """The cluster parameter group (default when none is named) must set `name` so that `ok`
    holds; default groups leave it at its off default."""
    for path, group in _groups(r, "DBClusterParameterGroupName", group_type, "default.", f"cannot verify {name}"):
        if isinstance(group, Outcome):
            yield group
            continue
        where = f"cluster parameter group {group.logical_id}" if group else "the default cluster parameter group"
        for _, setting in (mapping_parameter(group, name) if group else [(path, ABSENT)]):
            if isinstance(setting, Unknown):
                yield unverifiable(path, f"cannot verify {name} in {where}: {setting.reason}")
            elif setting is ABSENT or not ok(setting):
                yield violation(path, f"{where} does not turn {name} on (off by default), so {effect}; "
                                      f"set {name}={wanted}")


def _docdb_audit_on(value: Any) -> bool:
    text = (as_text(value) or "").strip().lower()
    return bool(text) and text not in ("disabled", "none")


@rule("DP-DocDbAuditLogs", clause=9, severity="error", types=[DOCDB],
      title="DocumentDB clusters write audit logs and export them to CloudWatch Logs",
      rationale="Clause 9: access to data is logged. DocumentDB records authentication, "
                "authorization and DDL events only when the cluster parameter group sets audit_logs "
                "(disabled in the default group) and exports them only when "
                "EnableCloudwatchLogsExports names 'audit' (nothing is exported by default). The "
                "profiler log is optional.",
      remediation="params = docdb.CfnDBClusterParameterGroup(self, 'Params', family='docdb5.0', description='audit',\n"
                  "    parameters={'tls': 'enabled', 'audit_logs': 'enabled'})\n"
                  "docdb.DatabaseCluster(self, 'Docs', parameter_group=docdb.ClusterParameterGroup.from_parameter_group_name(\n"
                  "    self, 'P', params.ref), export_audit_logs_to_cloud_watch=True, ...)")
def docdb_audit_logs(r, t):
    found = list(missing_logs(r, ("audit",), "the cluster"))
    yield from found
    if not found:
        yield from _cluster_parameter_outcomes(r, DOCDB_PARAMS, "audit_logs", _docdb_audit_on, "enabled",
                                               "the exported audit log stays empty")


@rule("DP-NeptuneAuditLogs", clause=9, severity="error", types=[NEPTUNE],
      title="Neptune clusters write audit logs and export them to CloudWatch Logs",
      rationale="Clause 9: access to data is logged. Neptune writes audit logs (every query, with "
                "its caller) only when the cluster parameter group sets neptune_enable_audit_log=1 "
                "(0 in the default group), and exports them only when EnableCloudwatchLogsExports "
                "names 'audit' (nothing is exported by default).",
      remediation="params = neptune.CfnDBClusterParameterGroup(self, 'Params', family='neptune1.3', description='audit',\n"
                  "    parameters={'neptune_enable_audit_log': 1})\n"
                  "neptune.CfnDBCluster(self, 'Graph', db_cluster_parameter_group_name=params.ref,\n"
                  "    enable_cloudwatch_logs_exports=['audit'], ...)")
def neptune_audit_logs(r, t):
    found = list(missing_logs(r, ("audit",), "the cluster"))
    yield from found
    if not found:
        yield from _cluster_parameter_outcomes(r, NEPTUNE_PARAMS, "neptune_enable_audit_log",
                                               lambda v: as_int(v) == 1, "1", "the exported audit log stays empty")


REDSHIFT_NAMESPACE = "AWS::RedshiftServerless::Namespace"
REDSHIFT_AUDIT_LOGS = ("connectionlog", "userlog")


@rule("DP-RedshiftAuditLogging", clause=9, severity="error", types=[REDSHIFT],
      title="Redshift clusters keep audit logs (connections and user changes)",
      rationale="Clause 9: access to data is logged. Redshift keeps no audit log unless "
                "LoggingProperties names an S3 BucketName, or sets LogDestinationType cloudwatch with "
                "LogExports. The connection log (who connected, from where) and the user log "
                "(changes to database users) are required; when LogExports is given it must name "
                "both. The user activity log also needs enable_user_activity_logging in the "
                "parameter group and is optional here.",
      remediation="redshift.CfnCluster(self, 'Dw', logging_properties=redshift.CfnCluster.LoggingPropertiesProperty(\n"
                  "    log_destination_type='cloudwatch', log_exports=['connectionlog', 'userlog', 'useractivitylog']), ...)")
def redshift_audit_logging(r, t):
    seen = set()
    for outcome in _redshift_logging_outcomes(r, t):  # LogExports is read once per variant
        if outcome not in seen:
            seen.add(outcome)
            yield outcome


def _redshift_logging_outcomes(r, t) -> Iterator[Outcome]:
    for path, logging in leaves(r, "LoggingProperties"):
        if isinstance(logging, Unknown):
            yield unverifiable(path, f"cannot verify audit logging: {logging.reason}")
            continue
        if logging is ABSENT:
            yield violation(path, "the cluster keeps no audit logs (LoggingProperties is not set; off by "
                                  "default); log to CloudWatch Logs or an S3 bucket")
            continue
        if not isinstance(logging, dict):
            yield unverifiable(path, "cannot verify audit logging: LoggingProperties is not a mapping")
            continue
        for destination in nested_values(logging, t, "LogDestinationType"):
            if isinstance(destination, Unknown):
                yield unverifiable(f"{path}/LogDestinationType", f"cannot verify audit logging: {destination.reason}")
            elif destination == "cloudwatch":
                yield from _named_logs(r, "LoggingProperties.LogExports", REDSHIFT_AUDIT_LOGS,
                                       "the cluster", required=True)
            elif destination in (ABSENT, "s3"):
                buckets = nested_values(logging, t, "BucketName")
                if any(not is_set(b) for b in buckets):
                    yield violation(f"{path}/BucketName", "audit logs go to S3 but no BucketName is set")
                elif any(isinstance(b, Unknown) for b in buckets):
                    continue  # a bucket chosen at deploy time still receives the logs
                else:
                    yield from _named_logs(r, "LoggingProperties.LogExports", REDSHIFT_AUDIT_LOGS,
                                           "the cluster", required=False)
            else:
                yield violation(f"{path}/LogDestinationType", f"unknown log destination {destination!r}")


def _named_logs(r, path: str, wanted: tuple[str, ...], what: str, required: bool) -> Iterator[Outcome]:
    """A LogExports list must name each of `wanted`; when not `required`, an absent list means
    every log."""
    if not required and all(v is ABSENT for _, v in leaves(r, path)):
        return
    yield from missing_logs(r, wanted, what, path)


@rule("DP-RedshiftServerlessLogs", clause=9, severity="error", types=[REDSHIFT_NAMESPACE],
      title="Redshift Serverless namespaces export connection and user logs",
      rationale="Clause 9: access to data is logged. A Serverless namespace exports no audit logs "
                "to CloudWatch Logs unless LogExports names them; 'connectionlog' and 'userlog' are "
                "required ('useractivitylog' is optional).",
      remediation="redshiftserverless.CfnNamespace(self, 'Ns', namespace_name='analytics',\n"
                  "    log_exports=['connectionlog', 'userlog', 'useractivitylog'], ...)")
def redshift_serverless_logs(r, t):
    yield from missing_logs(r, REDSHIFT_AUDIT_LOGS, "the namespace", "LogExports")


@rule("DP-RedshiftServerlessCmk", clause=7, severity="error", types=[REDSHIFT_NAMESPACE],
      title="Redshift Serverless namespaces encrypt with a KMS key we govern",
      rationale="Clause 7: cryptographic material is accessible only to our processes. A namespace "
                "without KmsKeyId (or with AWS_OWNED_KMS_KEY) is encrypted with an AWS-owned key we "
                "cannot see, audit or revoke: always a violation, as for Amazon MQ (DP-MqCmk). An AWS "
                "managed key is enough only for data tagged public or internal; confidential, "
                "restricted and untagged data needs a customer-managed key (as DP-ConfidentialDataCmk).",
      remediation="redshiftserverless.CfnNamespace(self, 'Ns', namespace_name='analytics', kms_key_id=key.key_arn,\n"
                  "    tags=[CfnTag(key='data-classification', value='confidential')], ...)")
def redshift_serverless_cmk(r, t):
    from .streaming import key_outcomes  # one judgement of keys for the stores outside governance.py
    for path, key in leaves(r, "KmsKeyId"):
        if key is ABSENT or key == "AWS_OWNED_KMS_KEY":
            yield violation(path, "the namespace is encrypted with an AWS-owned key (KmsKeyId is not set), "
                                  "which we cannot audit; set KmsKeyId to a customer-managed key")
        else:
            yield from key_outcomes(r, path, key, "")
