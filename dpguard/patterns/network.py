"""VPCs with no way in or out of the AWS network (policy clause 1), as the baseline's network
stack builds them: `SecureVpc` for app teams, and the parts the baseline stack shares with it."""
from __future__ import annotations

from collections.abc import Mapping

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2, aws_iam as iam, aws_kms as kms, aws_logs as logs
from constructs import Construct

from .logs import EncryptedLogGroup, log_custom_resource_providers

APP_SUBNETS = "app"     # workloads and the interface endpoints
DATA_SUBNETS = "data"   # databases
AZ_COUNT = 2

# AWS APIs the workloads reach privately. No NAT gateway: nothing here needs the internet, and
# an isolated subnet has no route to it.
INTERFACE_ENDPOINTS: Mapping[str, ec2.InterfaceVpcEndpointAwsService] = {
    "Kms": ec2.InterfaceVpcEndpointAwsService.KMS,
    "SecretsManager": ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
    "Logs": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS,
    "Monitoring": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_MONITORING,
    "Sts": ec2.InterfaceVpcEndpointAwsService.STS,
}
GATEWAY_ENDPOINTS: Mapping[str, ec2.GatewayVpcEndpointAwsService] = {
    "S3": ec2.GatewayVpcEndpointAwsService.S3,
}


def isolated_vpc_options(where: str, *, cidr: str, max_azs: int = AZ_COUNT, app_cidr_mask: int = 20,
                         data_cidr_mask: int = 24) -> dict:
    """The `ec2.Vpc` options of a VPC over `max_azs` (at least two) AZs with isolated `app` and
    `data` subnets only: no public subnet, no internet or NAT gateway, and the default security
    group stripped of its rules. `where` names the VPC in the error about too few AZs."""
    if not isinstance(max_azs, int) or isinstance(max_azs, bool) or max_azs < 2:
        raise ValueError(f"{where}: data subnets span at least two AZs; got max_azs={max_azs!r}")
    return dict(ip_addresses=ec2.IpAddresses.cidr(cidr), max_azs=max_azs, nat_gateways=0,
                restrict_default_security_group=True,
                subnet_configuration=[
                    ec2.SubnetConfiguration(name=APP_SUBNETS, subnet_type=ec2.SubnetType.PRIVATE_ISOLATED,
                                            cidr_mask=app_cidr_mask),
                    ec2.SubnetConfiguration(name=DATA_SUBNETS, subnet_type=ec2.SubnetType.PRIVATE_ISOLATED,
                                            cidr_mask=data_cidr_mask),
                ])


def own_principals(stack: cdk.Stack) -> iam.PolicyStatement:
    """The endpoint policy statement that admits this account's principals only (clause 8):
    credentials of another account, used inside the VPC, cannot copy data out through it
    (DP-VpcEndpointPolicy)."""
    return iam.PolicyStatement(principals=[iam.AnyPrincipal()], actions=["*"], resources=["*"],
                               conditions={"StringEquals": {"aws:PrincipalAccount": stack.account}})


def add_flow_logs(scope: Construct, vpc: ec2.Vpc, log_group: logs.ILogGroup) -> ec2.FlowLog:
    """Flow logs of all traffic of `vpc` to `log_group` (an `EncryptedLogGroup`), delivered by a
    role (`FlowLogRole` in `scope`) that has a customer-managed policy instead of CDK's inline
    one (NIST packs refuse inline policies) and may be assumed only for this account's flow logs."""
    account = cdk.Stack.of(scope).account
    role = iam.Role(scope, "FlowLogRole", assumed_by=iam.ServicePrincipal(
        "vpc-flow-logs.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": account}}))
    delivery = iam.ManagedPolicy(scope, "FlowLogDelivery", roles=[role], statements=[
        iam.PolicyStatement(actions=["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                            resources=[log_group.log_group_arn])])
    flow_log = vpc.add_flow_log(
        "FlowLog", traffic_type=ec2.FlowLogTrafficType.ALL,
        destination=ec2.FlowLogDestination.to_cloud_watch_logs(log_group, role.without_policy_updates()))
    flow_log.node.add_dependency(delivery)  # permissions in place before delivery starts
    return flow_log


def add_gateway_endpoints(vpc: ec2.Vpc, services: Mapping[str, ec2.GatewayVpcEndpointAwsService]) -> None:
    statement = own_principals(cdk.Stack.of(vpc))
    for name, service in services.items():
        vpc.add_gateway_endpoint(name, service=service).add_to_policy(statement)


def add_interface_endpoints(scope: Construct, vpc: ec2.Vpc, *, cidr: str, subnets: ec2.SubnetSelection,
                            services: Mapping[str, ec2.InterfaceVpcEndpointAwsService]) -> ec2.SecurityGroup:
    """Interface endpoints in `subnets`, with private DNS and one security group
    (`EndpointSecurityGroup` in `scope`) that admits HTTPS from `cidr`, the VPC's, only."""
    group = ec2.SecurityGroup(scope, "EndpointSecurityGroup", vpc=vpc, allow_all_outbound=False,
                              description="Interface VPC endpoints: HTTPS from inside the VPC")
    group.add_ingress_rule(ec2.Peer.ipv4(cidr), ec2.Port.tcp(443),  # the literal CIDR: checkable at synth
                           "HTTPS from the VPC")
    statement = own_principals(cdk.Stack.of(vpc))
    for name, service in services.items():
        vpc.add_interface_endpoint(name, service=service, subnets=subnets, private_dns_enabled=True,
                                   security_groups=[group], open=False).add_to_policy(statement)
    return group


class SecureVpc(ec2.Vpc):
    """A VPC as the baseline's network stack builds it, for an app of its own:

    * isolated `app` (/`app_cidr_mask`) and `data` (/`data_cidr_mask`) subnets over `max_azs`
      (≥ 2) AZs, no public subnet, no internet or NAT gateway (clause 1);
    * flow logs of all traffic to `.flow_logs`, encrypted with `log_key` and kept
      `log_retention_days` (clauses 1, 7, 9), delivered by a role of their own;
    * the default security group without rules (CDK's custom resource, whose provider function
      also logs to an encrypted log group with retention);
    * gateway endpoints (`gateway_endpoints`, S3 by default) and interface endpoints
      (`interface_endpoints`: KMS, Secrets Manager, CloudWatch Logs and metrics, STS by default)
      in the app subnets behind `.endpoint_security_group` (HTTPS from the VPC only), each
      admitting this account's principals only (clause 8).

    `.app_subnets` and `.data_subnets` are the selections to place workloads and databases in.
    An app that must reach the internet adds its own egress, reviewed; this VPC has none."""

    def __init__(self, scope: Construct, construct_id: str, *, log_key: kms.IKey, log_retention_days: int,
                 cidr: str = "10.0.0.0/16", max_azs: int = AZ_COUNT, app_cidr_mask: int = 20,
                 data_cidr_mask: int = 24,
                 interface_endpoints: Mapping[str, ec2.InterfaceVpcEndpointAwsService] = INTERFACE_ENDPOINTS,
                 gateway_endpoints: Mapping[str, ec2.GatewayVpcEndpointAwsService] = GATEWAY_ENDPOINTS) -> None:
        super().__init__(scope, construct_id, **isolated_vpc_options(
            f"{scope.node.path}/{construct_id}", cidr=cidr, max_azs=max_azs, app_cidr_mask=app_cidr_mask,
            data_cidr_mask=data_cidr_mask))
        self.app_subnets = ec2.SubnetSelection(subnet_group_name=APP_SUBNETS)
        self.data_subnets = ec2.SubnetSelection(subnet_group_name=DATA_SUBNETS)
        add_gateway_endpoints(self, gateway_endpoints)
        self.flow_logs = EncryptedLogGroup(self, "FlowLogs", encryption_key=log_key, retention_days=log_retention_days)
        add_flow_logs(self, self, self.flow_logs)
        log_custom_resource_providers(cdk.Stack.of(self), encryption_key=log_key, retention_days=log_retention_days)
        self.endpoint_security_group = add_interface_endpoints(
            self, self, cidr=cidr, subnets=self.app_subnets, services=interface_endpoints)
