"""NetworkStack: a private VPC with no way in or out of the AWS network (policy clause 1)."""
from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2, aws_kms as kms
from constructs import Construct

from ..patterns import EncryptedLogGroup, log_custom_resource_providers
from ..patterns.network import (APP_SUBNETS, AZ_COUNT, DATA_SUBNETS, GATEWAY_ENDPOINTS, INTERFACE_ENDPOINTS,
                                add_flow_logs, add_gateway_endpoints, add_interface_endpoints,
                                isolated_vpc_options)
from .settings import EnvironmentSettings


class NetworkStack(cdk.Stack):
    """A VPC over two AZs with isolated `app` and `data` subnets only (no public subnets, no
    internet or NAT gateway), flow logs of all traffic to an encrypted log group, the default
    security group stripped of its rules, a gateway endpoint for S3 and interface endpoints for
    KMS, Secrets Manager, CloudWatch Logs and metrics and STS, each for this account's principals.

    `app_security_group` is for workloads in the app subnets: it admits HTTPS only from
    `settings.allowed_cidrs`."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: EnvironmentSettings,
                 logs_key: kms.IKey, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        # The VPC, its flow logs and endpoints are built as dpguard.patterns.SecureVpc builds them,
        # with the same code; the stack keeps its own construct ids, so its template is unchanged.
        self.vpc = ec2.Vpc(self, "Vpc", **isolated_vpc_options(f"{self.node.path}/Vpc", cidr=settings.vpc_cidr))
        add_gateway_endpoints(self.vpc, GATEWAY_ENDPOINTS)
        self.app_subnets = ec2.SubnetSelection(subnet_group_name=APP_SUBNETS)
        self.data_subnets = ec2.SubnetSelection(subnet_group_name=DATA_SUBNETS)

        self.flow_logs = EncryptedLogGroup(self, "FlowLogs", encryption_key=logs_key,
                                           retention_days=settings.retention_days)
        add_flow_logs(self, self.vpc, self.flow_logs)
        # CDK's provider that empties the default security group logs like everything else.
        log_custom_resource_providers(self, encryption_key=logs_key, retention_days=settings.retention_days)
        self.endpoint_security_group = add_interface_endpoints(
            self, self.vpc, cidr=settings.vpc_cidr, subnets=self.app_subnets, services=INTERFACE_ENDPOINTS)

        self.app_security_group = ec2.SecurityGroup(
            self, "AppSecurityGroup", vpc=self.vpc, allow_all_outbound=False,
            description="Workloads in the app subnets: HTTPS from allowed networks only")
        for cidr in settings.allowed_cidrs:
            peer = ec2.Peer.ipv6(cidr) if ":" in cidr else ec2.Peer.ipv4(cidr)
            self.app_security_group.add_ingress_rule(peer, ec2.Port.tcp(443), f"HTTPS from {cidr}")
        # AWS APIs: the interface endpoints (VPC addresses) and S3 through the gateway endpoint
        # (public S3 addresses). With no internet route nothing else is reachable on 443.
        self.app_security_group.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443),
                                                "AWS APIs through the VPC endpoints")

    @property
    def availability_zones(self) -> list[str]:
        # The first two AZs of the region, chosen at deploy time (Fn::GetAZs) even when the
        # stack has an account and region: no context lookup, no credentials at synth.
        return [cdk.Fn.select(i, cdk.Fn.get_azs()) for i in range(AZ_COUNT)]
