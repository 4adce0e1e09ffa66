"""Containers and what load balancers send them: ECS services and task sets get no public IP
addresses (clause 1), ECS Exec sessions are logged to encrypted destinations (clause 9) and
encrypted with a key we govern (clause 7), target groups receive TLS from their load balancer
(clause 3).

Listener TLS (DP-ElbListenerTls) and literal secrets in task definitions
(DP-NoSecretsInEnvironment) are judged elsewhere.
"""
from __future__ import annotations

from typing import Any, Iterator

from ..engine.checks import customer_managed_key, is_set, leaves, nested_values, referencing
from ..engine.findings import Outcome, unverifiable, violation
from ..engine.values import ABSENT, Unknown, as_bool, as_text
from . import rule

ECS_SERVICE = "AWS::ECS::Service"
ECS_TASK_SET = "AWS::ECS::TaskSet"
ECS_CLUSTER = "AWS::ECS::Cluster"
TARGET_GROUP = "AWS::ElasticLoadBalancingV2::TargetGroup"

# Where each type sets the public IP of the tasks it runs (the awsvpc block is spelled two ways):
# services and task sets, and the EventBridge rules, schedules and pipes that start tasks.
ASSIGN_PUBLIC_IP = {ECS_SERVICE: "NetworkConfiguration.AwsvpcConfiguration.AssignPublicIp",
                    ECS_TASK_SET: "NetworkConfiguration.AwsVpcConfiguration.AssignPublicIp",
                    "AWS::Events::Rule": "Targets.*.EcsParameters.NetworkConfiguration.AwsVpcConfiguration.AssignPublicIp",
                    "AWS::Scheduler::Schedule": "Target.EcsParameters.NetworkConfiguration.AwsvpcConfiguration.AssignPublicIp",
                    "AWS::Pipes::Pipe": "TargetParameters.EcsTaskParameters.NetworkConfiguration.AwsvpcConfiguration"
                                        ".AssignPublicIp"}
EXEC = "Configuration.ExecuteCommandConfiguration"
# ECS Exec log destinations and the flag that makes the agent require an encrypted destination.
EXEC_DESTINATIONS = (("CloudWatchLogGroupName", "CloudWatchEncryptionEnabled", "the CloudWatch Logs group"),
                     ("S3BucketName", "S3EncryptionEnabled", "the S3 bucket"))


def _word(value: Any) -> str | None:
    """An enumerated CloudFormation string, upper-cased; None for what is not a string."""
    text = as_text(value) if not isinstance(value, bool) else None
    return text.strip().upper() if text is not None else None


# ---------------------------------------------------------------- clause 1: no public IPs

@rule("DP-EcsNoPublicIp", clause=1, severity="error", types=list(ASSIGN_PUBLIC_IP),
      title="ECS tasks get no public IP addresses (services, task sets, and rules, schedules and pipes that run tasks)",
      rationale="Clause 1: access from unauthorized addresses is denied at the network. With "
                "AssignPublicIp ENABLED every task's network interface gets an internet address, "
                "guarded only by its security groups, and usually sits in a public subnet. ECS "
                "assigns none unless ENABLED is set (the default is DISABLED), so absence passes. "
                "Tasks reach the internet through a NAT gateway and AWS services through VPC "
                "endpoints; clients reach them through a load balancer.",
      remediation="ecs.FargateService(self, 'Api', cluster=cluster, task_definition=task,\n"
                  "    assign_public_ip=False,\n"
                  "    vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS))")
def ecs_no_public_ip(r, t):
    for path, value in leaves(r, ASSIGN_PUBLIC_IP[r.type]):
        if value is ABSENT:
            continue
        if isinstance(value, Unknown):
            yield unverifiable(path, f"cannot verify that the tasks get no public IP address: {value.reason}")
        elif _word(value) == "ENABLED":
            yield violation(path, "the tasks get public IP addresses (AssignPublicIp ENABLED); set DISABLED "
                                  "and run them in private subnets")
        elif _word(value) != "DISABLED":
            yield violation(path, f"AssignPublicIp {value!r} is neither DISABLED nor ENABLED; set DISABLED")


# ---------------------------------------------------------------- ECS Exec

def _exec_log_outcomes(r, t) -> Iterator[Outcome]:
    """Logging OVERRIDE: LogConfiguration names a destination, and every destination it names
    is required to be encrypted."""
    for path, config in leaves(r, f"{EXEC}.LogConfiguration"):
        if isinstance(config, Unknown):
            yield unverifiable(path, f"cannot verify where ECS Exec sessions are logged: {config.reason}")
            continue
        if config is ABSENT:
            yield violation(path, "Logging OVERRIDE without LogConfiguration logs ECS Exec sessions nowhere; "
                                  "set CloudWatchLogGroupName or S3BucketName")
            continue
        if not isinstance(config, dict):
            yield unverifiable(path, "cannot verify where ECS Exec sessions are logged: LogConfiguration "
                                     "is not a mapping")
            continue
        named = 0
        for destination, flag, what in EXEC_DESTINATIONS:
            targets = nested_values(config, t, destination)
            if not any(is_set(v) for v in targets):
                continue
            named += 1
            flags = nested_values(config, t, flag)
            unknown = next((v for v in flags if isinstance(v, Unknown)), None)
            if any(not isinstance(v, Unknown) and as_bool(v) is not True for v in flags):
                yield violation(f"{path}/{flag}", f"ECS Exec session logs go to {what} without {flag} true "
                                                  "(off when not set), so they may be stored unencrypted")
            elif unknown is not None:
                yield unverifiable(f"{path}/{flag}", f"{flag} cannot be verified: {unknown.reason}")
        if not named:
            yield violation(path, "LogConfiguration names neither CloudWatchLogGroupName nor S3BucketName, "
                                  "so ECS Exec sessions are logged nowhere")


@rule("DP-EcsExecLogging", clause=9, severity="error", types=[ECS_CLUSTER],
      title="ECS Exec sessions are logged, to encrypted destinations",
      rationale="Clause 9: administrative access is logged, and logs are accessible only privately. "
                "ECS Exec opens a shell in running containers; the cluster's "
                "ExecuteCommandConfiguration.Logging decides what is kept of it. NONE keeps nothing. "
                "DEFAULT (also what an absent ExecuteCommandConfiguration means) writes the session to "
                "the awslogs log group of each task definition, whose encryption and retention the log "
                "group rules judge, so it passes here. OVERRIDE must name a CloudWatch Logs group or S3 "
                "bucket in LogConfiguration with CloudWatchEncryptionEnabled / S3EncryptionEnabled true "
                "(off when not set), so that the agent refuses to write to an unencrypted destination.",
      remediation="ecs.Cluster(self, 'Cluster', vpc=vpc, execute_command_configuration=ecs.ExecuteCommandConfiguration(\n"
                  "    kms_key=key, logging=ecs.ExecuteCommandLogging.OVERRIDE,\n"
                  "    log_configuration=ecs.ExecuteCommandLogConfiguration(cloud_watch_log_group=log_group,\n"
                  "        cloud_watch_encryption_enabled=True)))")
def ecs_exec_logging(r, t):
    overridden = False
    for path, logging in leaves(r, f"{EXEC}.Logging"):
        mode = _word(logging)
        if logging is ABSENT or mode == "DEFAULT":
            continue
        if isinstance(logging, Unknown):
            yield unverifiable(path, f"cannot verify that ECS Exec sessions are logged: {logging.reason}")
        elif mode == "NONE":
            yield violation(path, "ECS Exec sessions are not logged (Logging NONE); use DEFAULT or OVERRIDE "
                                  "with an encrypted destination")
        elif mode == "OVERRIDE":
            if not overridden:
                overridden = True
                yield from _exec_log_outcomes(r, t)
        else:
            yield violation(path, f"Logging {logging!r} is not one of NONE, DEFAULT, OVERRIDE")


def _exec_enabled_by_services(r) -> bool | Unknown:
    """Does a scanned service running in this cluster turn ECS Exec on?"""
    unknown: bool | Unknown = False
    for service in referencing(r, ECS_SERVICE):
        for _, value in leaves(service, "EnableExecuteCommand"):
            if isinstance(value, Unknown):
                unknown = value
            elif as_bool(value) is True:
                return True
    return unknown


@rule("DP-EcsExecSessionKms", clause=7, severity="warning", types=[ECS_CLUSTER],
      title="ECS Exec sessions are encrypted with a customer-managed KMS key",
      rationale="Clause 7: cryptographic material is accessible only to our processes. An ECS Exec "
                "session carries whatever the shell shows (data, secrets). Without "
                "ExecuteCommandConfiguration.KmsKeyId it is protected only by the TLS 1.2 channel AWS "
                "provides; with a customer-managed key it is also encrypted end to end with a key whose "
                "policy decides who may open sessions. A warning, since the channel is encrypted "
                "either way. The rule applies to clusters that configure ECS Exec, or that a scanned "
                "service with EnableExecuteCommand true runs in.",
      remediation="ecs.Cluster(self, 'Cluster', vpc=vpc, execute_command_configuration=ecs.ExecuteCommandConfiguration(\n"
                  "    kms_key=kms.Key(self, 'ExecKey', enable_key_rotation=True), logging=ecs.ExecuteCommandLogging.DEFAULT))")
def ecs_exec_session_kms(r, t):
    configured = any(v is not ABSENT for _, v in leaves(r, EXEC))
    used = configured or _exec_enabled_by_services(r)
    if used is False:
        return
    for path, key in leaves(r, f"{EXEC}.KmsKeyId"):
        managed = customer_managed_key(r, key)
        if managed is True:
            continue
        if isinstance(managed, Unknown):
            yield unverifiable(path, f"cannot tell whether ECS Exec sessions use a customer-managed key: "
                                     f"{managed.reason}")
        elif isinstance(used, Unknown):
            yield unverifiable(path, "no customer-managed KmsKeyId for ECS Exec sessions, and whether a "
                                     f"service enables ECS Exec cannot be known: {used.reason}")
        elif key is ABSENT:
            yield violation(path, "ECS Exec sessions are protected only by AWS's TLS channel (no KmsKeyId); "
                                  "set KmsKeyId to a customer-managed key")
        else:
            yield violation(path, "ECS Exec sessions use an AWS managed key, not a customer-managed one")


# ---------------------------------------------------------------- clause 3: load balancer to targets

@rule("DP-TargetGroupTls", clause=3, severity="warning", types=[TARGET_GROUP],
      title="Load balancers reach their targets over TLS",
      rationale="Clause 3: data in transit is encrypted, on internal channels too. A target group "
                "with Protocol HTTP makes the load balancer send requests (bodies, cookies, tokens) "
                "to its targets in plain text inside the VPC. Only HTTP is certainly plaintext: TCP, "
                "UDP and TCP_UDP groups of a Network Load Balancer may carry TLS end to end (TLS "
                "passthrough), and GENEVE carries traffic to appliances as it came. Lambda targets "
                "have no protocol. A warning, since plaintext behind a TLS listener inside a VPC is "
                "common; prefer HTTPS (the targets need a certificate, which ALBs do not validate).",
      remediation="elbv2.ApplicationTargetGroup(self, 'Targets', vpc=vpc, port=443,\n"
                  "    protocol=elbv2.ApplicationProtocol.HTTPS, targets=[service])")
def target_group_tls(r, t):
    types = [v for _, v in leaves(r, "TargetType")]
    if all(_word(v) == "LAMBDA" for v in types):
        return
    for path, protocol in leaves(r, "Protocol"):
        if protocol is ABSENT:
            continue  # only lambda targets may leave it out
        if isinstance(protocol, Unknown):
            yield unverifiable(path, f"cannot verify that targets are reached over TLS: {protocol.reason}")
        elif _word(protocol) is None:
            yield unverifiable(path, "cannot verify that targets are reached over TLS: Protocol is not a string")
        elif _word(protocol) == "HTTP":
            yield violation(path, "the load balancer sends requests to the targets in plain text (Protocol "
                                  "HTTP); use HTTPS")
