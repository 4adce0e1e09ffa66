"""An RDS for PostgreSQL instance compliant by construction."""
from __future__ import annotations

from collections.abc import Sequence

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2, aws_iam as iam, aws_kms as kms, aws_rds as rds
from constructs import Construct

from .acks import HIPAA, NIST_R4, NIST_R5, acknowledge_in_packs
from .logs import EncryptedLogGroup
from .tags import classify

DEFAULT_PORT = 5433          # not PostgreSQL's 5432 (AwsSolutions-RDS11: scanners try the default)
MIN_BACKUP_DAYS = 7
LOG_EXPORTS = ("postgresql", "upgrade")
DEFAULT_USERS = {"postgres", "admin", "root", "master", "rdsadmin"}


class SecureDatabase(Construct):
    """RDS for PostgreSQL, private, encrypted and TLS-only.

    * storage, snapshots and automated backups encrypted with `storage_key` (clause 7);
    * no password anywhere: RDS manages the master password in Secrets Manager, encrypted with
      `secret_key`, and rotates it itself (ManageMasterUserPassword) — no rotation Lambda;
      applications sign in with IAM database authentication (`grant_connect`) (clauses 2, 7);
    * a parameter group with `rds.force_ssl=1` and TLS 1.2 as the lowest protocol (clause 3);
    * in the `subnets` given (isolated ones), not publicly accessible, behind its own security
      group that admits only the `allow_from` peers on the database port (clause 1);
    * Multi-AZ, deletion protection, automated backups kept `backup_retention_days` (≥ 7) days,
      a final snapshot when the resource is deleted or replaced;
    * PostgreSQL and upgrade logs exported to log groups made here first, encrypted with
      `log_key` and kept `log_retention_days` (clause 9), with connections and disconnections
      logged;
    * tags `data-classification` and `data-owner` (clause 6).

    `instance_identifier` is the instance's name; it is fixed because the exported log groups
    are named after it (an RDS-created log group would be unencrypted and kept forever)."""

    def __init__(self, scope: Construct, construct_id: str, *, vpc: ec2.IVpc,
                 subnets: ec2.SubnetSelection, instance_identifier: str, storage_key: kms.IKey,
                 secret_key: kms.IKey, log_key: kms.IKey, log_retention_days: int,
                 classification: str, owner: str, allow_from: Sequence[ec2.IPeer] = (),
                 engine_version: str = "16", instance_class: str = "db.t4g.micro",
                 port: int = DEFAULT_PORT, allocated_storage_gib: int = 20,
                 max_allocated_storage_gib: int = 100, backup_retention_days: int = MIN_BACKUP_DAYS,
                 master_username: str = "dpg_admin", database_name: str | None = None,
                 multi_az: bool = True) -> None:
        super().__init__(scope, construct_id)
        if backup_retention_days < MIN_BACKUP_DAYS:
            raise ValueError(f"{self.node.path}: keep automated backups at least {MIN_BACKUP_DAYS} days")
        if master_username.lower() in DEFAULT_USERS:
            raise ValueError(f"{self.node.path}: {master_username!r} is a default user name (clause 2)")
        self.port = port

        self.security_group = ec2.SecurityGroup(
            self, "SecurityGroup", vpc=vpc, allow_all_outbound=False,
            description=f"{instance_identifier}: PostgreSQL clients only")
        self.connections = ec2.Connections(security_groups=[self.security_group],
                                           default_port=ec2.Port.tcp(port))
        for peer in allow_from:
            self.connections.allow_default_port_from(peer, "PostgreSQL over TLS")

        subnet_group = rds.SubnetGroup(self, "SubnetGroup", vpc=vpc, vpc_subnets=subnets,
                                       description=f"{instance_identifier}: isolated subnets")
        major = engine_version.split(".")[0]
        parameters = rds.CfnDBParameterGroup(
            self, "Parameters", family=f"postgres{major}",
            description=f"{instance_identifier}: TLS only, connections logged",
            parameters={"rds.force_ssl": "1", "ssl_min_protocol_version": "TLSv1.2",
                        "log_connections": "1", "log_disconnections": "1"})
        log_groups = [EncryptedLogGroup(self, f"{name.title()}Logs", encryption_key=log_key,
                                        retention_days=log_retention_days,
                                        log_group_name=f"/aws/rds/instance/{instance_identifier}/{name}")
                      for name in LOG_EXPORTS]

        self.instance = rds.CfnDBInstance(
            self, "Instance",
            db_instance_identifier=instance_identifier,
            engine="postgres", engine_version=engine_version, auto_minor_version_upgrade=True,
            db_instance_class=instance_class, multi_az=multi_az, port=str(port),
            storage_type="gp3", allocated_storage=str(allocated_storage_gib),
            max_allocated_storage=max_allocated_storage_gib,
            storage_encrypted=True, kms_key_id=storage_key.key_arn,
            master_username=master_username, manage_master_user_password=True,
            master_user_secret=rds.CfnDBInstance.MasterUserSecretProperty(kms_key_id=secret_key.key_arn),
            enable_iam_database_authentication=True,
            db_name=database_name,
            db_subnet_group_name=subnet_group.subnet_group_name, db_parameter_group_name=parameters.ref,
            vpc_security_groups=[self.security_group.security_group_id],
            publicly_accessible=False,
            ca_certificate_identifier="rds-ca-rsa2048-g1",
            deletion_protection=True,
            backup_retention_period=backup_retention_days, copy_tags_to_snapshot=True,
            enable_cloudwatch_logs_exports=list(LOG_EXPORTS))
        for group in log_groups:  # ours must exist before RDS would create its own
            self.instance.node.add_dependency(group)
        self.instance.cfn_options.deletion_policy = cdk.CfnDeletionPolicy.SNAPSHOT
        self.instance.cfn_options.update_replace_policy = cdk.CfnDeletionPolicy.SNAPSHOT
        classify(self, classification, owner)
        acknowledge_in_packs(
            self, "RDSEnhancedMonitoringEnabled", (NIST_R5, NIST_R4, HIPAA),
            "Enhanced Monitoring writes OS metrics to RDSOSMetrics, a log group RDS creates for the "
            "whole account without KMS encryption, through a role with an AWS managed policy; the "
            "instance is watched through its CloudWatch metrics and encrypted log exports instead")
        acknowledge_in_packs(
            self, "RDSInBackupPlan", (NIST_R5, NIST_R4, HIPAA),
            "Recovery relies on RDS automated backups (at least 7 days, encrypted with the database "
            "key, Multi-AZ) and a final snapshot on deletion; an AWS Backup plan is not part of this "
            "pattern")

    @property
    def endpoint_address(self) -> str:
        return self.instance.attr_endpoint_address

    @property
    def master_secret_arn(self) -> str:
        """The ARN of the secret RDS keeps the master password in (for break-glass use only)."""
        return self.instance.attr_master_user_secret_secret_arn

    def grant_connect(self, grantee: iam.IGrantable, db_user: str) -> iam.Grant:
        """Let `grantee` sign in as `db_user` with IAM database authentication (the user must
        exist in PostgreSQL and have the `rds_iam` role)."""
        stack = cdk.Stack.of(self)
        arn = (f"arn:{stack.partition}:rds-db:{stack.region}:{stack.account}:dbuser:"
               f"{self.instance.attr_dbi_resource_id}/{db_user}")
        return iam.Grant.add_to_principal(grantee=grantee, actions=["rds-db:connect"], resource_arns=[arn])
