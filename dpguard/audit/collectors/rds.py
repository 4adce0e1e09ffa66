"""RDS (regional): DB instances and clusters (Aurora and Multi-AZ DB clusters) with encryption,
public access, engine, master user, IAM authentication, deletion protection and tags, and the
parameter groups they use, so that the TLS, public-access, encryption, credential and tag rules
judge them as they judge templates.

What a template would leave to inheritance is explicit in a live account (a replica's own
encryption and parameter group, a restored database's StorageEncrypted), so the source of a
replica or restore is not written: the database is judged on its own facts.

* Parameter groups of our own are written as resources with the parameters a template would
  set (Source "user") plus the TLS parameters whatever their source, read across every page of
  DescribeDBParameters (a group holds hundreds of parameters, 100 a page). Default groups
  (`default.postgres16`) are named as a template names them: the rules know their defaults by
  family, and reading them would cost several pages per engine version.
* KMS keys: RDS reports the AWS managed key aws/rds by its key ARN, which the rules cannot tell
  from a customer managed key; kms:DescribeKey tells, and an AWS managed key is written as
  `alias/aws/rds`, as a template would name it. Keys of other accounts are customer managed
  (AWS managed keys live in the database's own account).
* DocumentDB and Neptune share this API; their clusters and instances are left to their own
  collectors.
"""
from __future__ import annotations

from typing import Any, Callable

from ...rules.databases import TLS_SETTINGS
from ..clients import Clients, Unreadable, listing, read
from ..live import LiveTemplate, ref, unreadable
from . import collector

OTHER_ENGINES = ("docdb", "neptune")  # served by the RDS API, judged by other rules and collectors
TLS_PARAMETERS = {setting.parameter.lower() for setting in TLS_SETTINGS.values()}


@collector("rds")
def collect(clients: Clients, region: str, live: LiveTemplate) -> None:
    rds = clients("rds", region)
    keys = KeyKinds(clients, region, live.account, "rds")
    groups = ParameterGroups(rds, live)
    clusters: dict[str, str] = {}  # cluster identifier -> logical id
    answer = listing(rds, "describe_db_clusters", "DBClusters")
    if isinstance(answer, Unreadable):
        live.gap(f"RDS DB clusters in {region} could not be listed: {answer.reason}")
    else:
        for cluster in answer:
            if _other_engine(cluster):
                continue
            clusters[cluster["DBClusterIdentifier"]] = _cluster(cluster, live, keys, groups)
    answer = listing(rds, "describe_db_instances", "DBInstances")
    if isinstance(answer, Unreadable):
        live.gap(f"RDS DB instances in {region} could not be listed: {answer.reason}")
        return
    for instance in answer:
        if not _other_engine(instance):
            _instance(instance, rds, live, keys, groups, clusters)


def _other_engine(db: dict) -> bool:
    return str(db.get("Engine", "")).lower().startswith(OTHER_ENGINES)


def _common(db: dict, keys: "KeyKinds") -> dict:
    encrypted = bool(db.get("StorageEncrypted"))
    return {
        "Engine": db.get("Engine"), "EngineVersion": db.get("EngineVersion"),
        "StorageEncrypted": encrypted,
        # an unencrypted database has no key (moto reports a placeholder anyway)
        "KmsKeyId": keys.reference(db.get("KmsKeyId")) if encrypted and db.get("KmsKeyId") else None,
        "DeletionProtection": db.get("DeletionProtection"),
        "EnableIAMDatabaseAuthentication": db.get("IAMDatabaseAuthenticationEnabled"),
        "ManageMasterUserPassword": True if db.get("MasterUserSecret") else None,
        "Tags": db.get("TagList") or None,
        # the template's EnableCloudwatchLogsExports, as RDS reports it
        "EnableCloudwatchLogsExports": db.get("EnabledCloudwatchLogsExports") or [],
    }


def _cluster(cluster: dict, live: LiveTemplate, keys: "KeyKinds", groups: "ParameterGroups") -> str:
    name = cluster["DBClusterIdentifier"]
    group = cluster.get("DBClusterParameterGroup")
    props = {"DBClusterIdentifier": name, **_common(cluster, keys),
             "EngineMode": cluster.get("EngineMode"),
             "DBClusterInstanceClass": cluster.get("DBClusterInstanceClass"),  # Multi-AZ DB clusters only
             "PubliclyAccessible": cluster.get("PubliclyAccessible") if cluster.get("DBClusterInstanceClass") else None,
             "MasterUsername": cluster.get("MasterUsername"),
             "DBClusterParameterGroupName": groups.cluster_group(group) if group else None}
    return live.add(name, "AWS::RDS::DBCluster", _compact(props), arn=cluster["DBClusterArn"])


def _instance(instance: dict, rds: Any, live: LiveTemplate, keys: "KeyKinds", groups: "ParameterGroups",
              clusters: dict[str, str]) -> None:
    name = instance["DBInstanceIdentifier"]
    cluster = instance.get("DBClusterIdentifier")
    group = next((g["DBParameterGroupName"] for g in instance.get("DBParameterGroups", [])), None)
    props = {"DBInstanceIdentifier": name, "DBInstanceClass": instance.get("DBInstanceClass"),
             **_common(instance, keys),
             "PubliclyAccessible": bool(instance.get("PubliclyAccessible")),
             "DBParameterGroupName": groups.instance_group(group) if group else None}
    if cluster:
        # As in a template: the cluster holds the data, its key and master user.
        props.update(DBClusterIdentifier=ref(clusters[cluster]) if cluster in clusters else cluster,
                     KmsKeyId=None, MasterUsername=None, ManageMasterUserPassword=None,
                     EnableCloudwatchLogsExports=None)
    else:
        props["MasterUsername"] = instance.get("MasterUsername")
    if str(instance.get("Engine", "")).lower().startswith(("oracle", "mysql", "mariadb")):  # TDE, audit plugin
        option_group = next((g["OptionGroupName"] for g in instance.get("OptionGroupMemberships", [])), None)
        props["OptionGroupName"] = groups.option_group(option_group) if option_group else None
    live.add(name, "AWS::RDS::DBInstance", _compact(props), arn=instance["DBInstanceArn"])


class ParameterGroups:
    """Each parameter group (and Oracle option group) written once per region, on first use."""

    def __init__(self, rds: Any, live: LiveTemplate) -> None:
        self.rds = rds
        self.live = live
        self.seen: dict[tuple[str, str], str] = {}

    def instance_group(self, name: str) -> Any:
        return self._group("AWS::RDS::DBParameterGroup", name, self._instance_group)

    def cluster_group(self, name: str) -> Any:
        return self._group("AWS::RDS::DBClusterParameterGroup", name, self._cluster_group)

    def option_group(self, name: str) -> Any:
        return self._group("AWS::RDS::OptionGroup", name, self._option_group)

    def _group(self, rtype: str, name: str, write: Callable[[str], str]) -> Any:
        if name.lower().startswith("default."):
            return name  # judged by family, as the rules judge a template that names it
        if (rtype, name) not in self.seen:
            self.seen[(rtype, name)] = write(name)
        return ref(self.seen[(rtype, name)])

    def _instance_group(self, name: str) -> str:
        rds = self.rds
        described = read(lambda: rds.describe_db_parameter_groups(DBParameterGroupName=name)["DBParameterGroups"][0])
        parameters = listing(rds, "describe_db_parameters", "Parameters", DBParameterGroupName=name)
        props = {"DBParameterGroupName": name, **_group_facts(described, "DBParameterGroupFamily"),
                 "Parameters": _parameters(parameters)}
        arn = described.get("DBParameterGroupArn") if isinstance(described, dict) else None
        return self.live.add(name, "AWS::RDS::DBParameterGroup", _compact(props),
                             arn=arn or self._arn("pg", name))

    def _cluster_group(self, name: str) -> str:
        rds = self.rds
        described = read(lambda: rds.describe_db_cluster_parameter_groups(
            DBClusterParameterGroupName=name)["DBClusterParameterGroups"][0])
        parameters = listing(rds, "describe_db_cluster_parameters", "Parameters", DBClusterParameterGroupName=name)
        props = {"DBClusterParameterGroupName": name, **_group_facts(described, "DBParameterGroupFamily"),
                 "Parameters": _parameters(parameters)}
        arn = described.get("DBClusterParameterGroupArn") if isinstance(described, dict) else None
        return self.live.add(name, "AWS::RDS::DBClusterParameterGroup", _compact(props),
                             arn=arn or self._arn("cluster-pg", name))

    def _option_group(self, name: str) -> str:
        rds = self.rds
        described = read(lambda: rds.describe_option_groups(OptionGroupName=name)["OptionGroupsList"][0])
        if isinstance(described, Unreadable):
            props = {"OptionGroupName": name, "OptionConfigurations": unreadable(described.reason)}
            arn = None
        else:
            props = {"OptionGroupName": name, "EngineName": described.get("EngineName"),
                     "MajorEngineVersion": described.get("MajorEngineVersion"),
                     "OptionConfigurations": [{"OptionName": o["OptionName"]} for o in described.get("Options", [])]}
            arn = described.get("OptionGroupArn")
        return self.live.add(name, "AWS::RDS::OptionGroup", _compact(props), arn=arn or self._arn("og", name))

    def _arn(self, kind: str, name: str) -> str:
        return f"arn:aws:rds:{self.live.region}:{self.live.account}:{kind}:{name}"


def _group_facts(described: Any, family_key: str) -> dict:
    if isinstance(described, Unreadable):
        return {"Family": unreadable(described.reason)}
    return {"Family": described.get(family_key), "Description": described.get("Description")}


def _parameters(answer: Any) -> Any:
    """The parameters a template would set (Source "user"), plus the TLS parameters from any source,
    as CloudFormation's name -> value mapping."""
    if isinstance(answer, Unreadable):
        return unreadable(answer.reason)
    out = {}
    for p in answer:
        name = p.get("ParameterName")
        if not name or "ParameterValue" not in p:
            continue
        if p.get("Source", "user") == "user" or name.lower() in TLS_PARAMETERS:
            out[name] = p["ParameterValue"]
    return out


class KeyKinds:
    """Writes a KMS key as the rules read it: AWS managed keys as `alias/aws/<service>`, customer
    managed keys as their ARN, a key whose kind cannot be read as unreadable. One DescribeKey per
    key and region."""

    def __init__(self, clients: Clients, region: str, account: str, service: str) -> None:
        self.clients = clients
        self.region = region
        self.account = account
        self.service = service
        self.seen: dict[str, Any] = {}

    def reference(self, key: str) -> Any:
        parts = key.split(":")
        if key.startswith("arn:") and len(parts) > 4 and parts[4] and parts[4] != self.account:
            return key  # a key of another account is never AWS managed for our resources
        if key not in self.seen:
            kms = self.clients("kms", self.region)
            meta = read(lambda: kms.describe_key(KeyId=key)["KeyMetadata"])
            if isinstance(meta, Unreadable):
                self.seen[key] = unreadable(f"whether the KMS key {key} is customer managed cannot be read: "
                                            f"{meta.reason}")
            elif meta.get("KeyManager") == "AWS":
                self.seen[key] = f"alias/aws/{self.service}"
            else:
                self.seen[key] = key
        return self.seen[key]


def _compact(props: dict) -> dict:
    return {k: v for k, v in props.items() if v is not None and v != [] and v != ""}
