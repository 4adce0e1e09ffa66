"""NetworkStack: a private VPC with no way in or out of the AWS network (policy clause 1)."""
from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2, aws_iam as iam, aws_kms as kms
from constructs import Construct

from ..patterns import EncryptedLogGroup, log_custom_resource_providers
from .settings import EnvironmentSettings

APP_SUBNETS = "app"     # workloads and the interface endpoints
DATA_SUBNETS = "data"   # databases
AZ_COUNT = 2

# AWS APIs the workloads and the baseline reach privately. No NAT gateway: nothing here needs the
# internet, and an isolated subnet has no route to it.
INTERFACE_ENDPOINTS = {
    "Kms": ec2.InterfaceVpcEndpointAwsService.KMS,
    "SecretsManager": ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
    "Logs": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS,
    "Monitoring": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_MONITORING,
    "Sts": ec2.InterfaceVpcEndpointAwsService.STS,
}


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
        self.vpc = ec2.Vpc(
            self, "Vpc", ip_addresses=ec2.IpAddresses.cidr(settings.vpc_cidr), max_azs=AZ_COUNT,
            nat_gateways=0, restrict_default_security_group=True,
            subnet_configuration=[
                ec2.SubnetConfiguration(name=APP_SUBNETS, subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=20),
                ec2.SubnetConfiguration(name=DATA_SUBNETS, subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=24),
            ])
        # Every endpoint admits this account's principals only (clause 8): credentials of another
        # account, used inside the VPC, cannot copy data out through it (DP-VpcEndpointPolicy).
        own_principals = iam.PolicyStatement(
            principals=[iam.AnyPrincipal()], actions=["*"], resources=["*"],
            conditions={"StringEquals": {"aws:PrincipalAccount": self.account}})
        self.vpc.add_gateway_endpoint("S3", service=ec2.GatewayVpcEndpointAwsService.S3).add_to_policy(own_principals)
        self.app_subnets = ec2.SubnetSelection(subnet_group_name=APP_SUBNETS)
        self.data_subnets = ec2.SubnetSelection(subnet_group_name=DATA_SUBNETS)

        self.flow_logs = EncryptedLogGroup(self, "FlowLogs", encryption_key=logs_key,
                                           retention_days=settings.retention_days)
        # The delivery role gets a customer-managed policy instead of CDK's inline one (NIST
        # packs refuse inline policies), and may be assumed only for this account's flow logs.
        flow_log_role = iam.Role(self, "FlowLogRole", assumed_by=iam.ServicePrincipal(
            "vpc-flow-logs.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": self.account}}))
        delivery = iam.ManagedPolicy(self, "FlowLogDelivery", roles=[flow_log_role], statements=[
            iam.PolicyStatement(actions=["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                                resources=[self.flow_logs.log_group_arn])])
        flow_log = self.vpc.add_flow_log(
            "FlowLog", traffic_type=ec2.FlowLogTrafficType.ALL,
            destination=ec2.FlowLogDestination.to_cloud_watch_logs(
                self.flow_logs, flow_log_role.without_policy_updates()))
        flow_log.node.add_dependency(delivery)  # permissions in place before delivery starts
        # CDK's provider that empties the default security group logs like everything else.
        log_custom_resource_providers(self, encryption_key=logs_key, retention_days=settings.retention_days)

        # One group for all interface endpoints: HTTPS from inside the VPC only.
        self.endpoint_security_group = ec2.SecurityGroup(
            self, "EndpointSecurityGroup", vpc=self.vpc, allow_all_outbound=False,
            description="Interface VPC endpoints: HTTPS from inside the VPC")
        self.endpoint_security_group.add_ingress_rule(  # the literal CIDR: checkable at synth
            ec2.Peer.ipv4(settings.vpc_cidr), ec2.Port.tcp(443), "HTTPS from the VPC")
        for name, service in INTERFACE_ENDPOINTS.items():
            self.vpc.add_interface_endpoint(
                name, service=service, subnets=self.app_subnets, private_dns_enabled=True,
                security_groups=[self.endpoint_security_group], open=False).add_to_policy(own_principals)

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
