"""Streams and message brokers: MSK (Kafka) and Amazon MQ. Brokers not reachable from the internet
(clause 1), data encrypted with keys we govern (clause 7), broker logs kept (clause 9).

MSK's TLS and public-access rules (DP-MskInTransitTls, DP-MskNotPublic) live in databases.py;
Kinesis and Firehose encryption in storage.py.
"""
from __future__ import annotations

from typing import Any, Iterator

from ..engine.checks import customer_managed_key, leaves, nested_values, require, tag_values
from ..engine.findings import Outcome, unverifiable, violation
from ..engine.values import ABSENT, Unknown, as_bool
from . import rule
from .governance import NO_CMK_NEEDED

MSK = "AWS::MSK::Cluster"
MSK_SERVERLESS = "AWS::MSK::ServerlessCluster"
MQ = "AWS::AmazonMQ::Broker"

MSK_LOG_DESTINATIONS = ("CloudWatchLogs", "Firehose", "S3")


def needs_cmk(r) -> bool | Unknown:
    """Does the resource's data need a customer-managed key? As DP-ConfidentialDataCmk decides:
    yes unless its data-classification tag says public or internal (untagged, or a value that
    is not a classification, counts as confidential)."""
    values = tag_values(r, "data-classification")
    unknown = next((v for v in values if isinstance(v, Unknown)), None)
    if any(not isinstance(v, Unknown) and v not in NO_CMK_NEEDED for v in values):
        return True
    return unknown if unknown is not None else False


def key_outcomes(r, path: str, key: Any, absent_message: str) -> Iterator[Outcome]:
    """A KMS key that is not customer managed fails unless the data is public or internal."""
    managed = customer_managed_key(r, key)
    if managed is True:
        return
    if isinstance(managed, Unknown):
        yield unverifiable(path, f"cannot tell whether the key is customer managed: {managed.reason}")
        return
    needed = needs_cmk(r)
    if needed is False:
        return
    message = absent_message if key is ABSENT else "the key is an AWS managed key, not a customer-managed one"
    if isinstance(needed, Unknown):
        yield unverifiable(path, f"{message}, and the data classification cannot be known: {needed.reason}")
    else:
        yield violation(path, f"{message}; confidential, restricted or unclassified data needs a "
                              "customer-managed KMS key")


# ---------------------------------------------------------------- MSK

@rule("DP-MskCmk", clause=7, severity="error", types=[MSK, MSK_SERVERLESS],
      title="MSK clusters holding confidential data encrypt broker storage with a customer-managed key",
      rationale="Clause 7: cryptographic material is accessible only to our processes; as for every "
                "data store (DP-ConfidentialDataCmk), confidential, restricted and untagged data "
                "needs a key we create and govern. MSK always encrypts broker volumes, but without "
                "EncryptionInfo.EncryptionAtRest.DataVolumeKMSKeyId it uses the AWS managed key "
                "aws/kafka, whose policy we cannot restrict. MSK Serverless offers no key choice at "
                "all, so it may hold only data tagged public or internal. The tag is read from the "
                "cluster's Tags (data-classification).",
      remediation="msk.CfnCluster(self, 'Kafka', encryption_info=msk.CfnCluster.EncryptionInfoProperty(\n"
                  "    encryption_at_rest=msk.CfnCluster.EncryptionAtRestProperty(data_volume_kms_key_id=key.key_arn)),\n"
                  "    tags={'data-classification': 'confidential', 'data-owner': 'events-team'}, ...)")
def msk_cmk(r, t):
    if r.type == MSK_SERVERLESS:
        needed = needs_cmk(r)
        if isinstance(needed, Unknown):
            yield unverifiable("Properties/Tags", "MSK Serverless encrypts only with an AWS managed key, "
                                                  f"and the data classification cannot be known: {needed.reason}")
        elif needed:
            yield violation("Properties/Tags", "MSK Serverless encrypts only with an AWS managed key, so it "
                                               "cannot hold confidential, restricted or unclassified data; "
                                               "use a provisioned cluster with DataVolumeKMSKeyId, or tag "
                                               "the data public or internal")
        return
    for path, key in leaves(r, "EncryptionInfo.EncryptionAtRest.DataVolumeKMSKeyId"):
        yield from key_outcomes(r, path, key, "DataVolumeKMSKeyId is not set, so the brokers' volumes "
                                               "use the AWS managed key aws/kafka")


@rule("DP-MskBrokerLogs", clause=9, severity="error", types=[MSK],
      title="MSK clusters deliver broker logs",
      rationale="Clause 9: security events are logged. Kafka's broker logs record connections, "
                "authentication and authorization failures; MSK keeps none unless "
                "LoggingInfo.BrokerLogs turns on at least one of CloudWatchLogs, Firehose or S3 "
                "(all off by default). MSK Serverless offers no broker logs.",
      remediation="msk.CfnCluster(self, 'Kafka', logging_info=msk.CfnCluster.LoggingInfoProperty(\n"
                  "    broker_logs=msk.CfnCluster.BrokerLogsProperty(cloud_watch_logs=msk.CfnCluster.CloudWatchLogsProperty(\n"
                  "        enabled=True, log_group=log_group.log_group_name))), ...)")
def msk_broker_logs(r, t):
    for path, logs in leaves(r, "LoggingInfo.BrokerLogs"):
        if isinstance(logs, Unknown):
            yield unverifiable(path, f"cannot verify that broker logs are delivered: {logs.reason}")
            continue
        if logs is ABSENT:
            yield violation(path, "the cluster delivers no broker logs (LoggingInfo.BrokerLogs is not set; "
                                  "off by default); enable CloudWatchLogs, Firehose or S3")
            continue
        if not isinstance(logs, dict):
            yield unverifiable(path, "cannot verify that broker logs are delivered: BrokerLogs is not a mapping")
            continue
        unknown = None
        for destination in MSK_LOG_DESTINATIONS:
            enabled = nested_values(logs, r.template, destination, "Enabled")
            if all(as_bool(v) is True for v in enabled):
                break
            unknown = unknown or next((v for v in enabled if isinstance(v, Unknown)), None)
        else:
            if unknown is not None:
                yield unverifiable(path, f"cannot verify that broker logs are delivered: {unknown.reason}")
            else:
                yield violation(path, "no broker log destination is enabled; set Enabled true on "
                                      "CloudWatchLogs, Firehose or S3")


# ---------------------------------------------------------------- Amazon MQ

def _engines(r) -> list[tuple[str, Any]]:
    """(path, engine) for each engine the broker may run, upper-cased: ACTIVEMQ or RABBITMQ."""
    out = []
    for path, engine in leaves(r, "EngineType"):
        out.append((path, engine.strip().upper() if isinstance(engine, str) else engine))
    return out


@rule("DP-MqNotPublic", clause=1, severity="error", types=[MQ],
      title="Amazon MQ brokers are not publicly accessible",
      rationale="Clause 1: access from unauthorized addresses is denied at the network. A publicly "
                "accessible broker gets an internet-resolvable endpoint outside our VPC's security "
                "groups, guarded only by broker passwords. Amazon MQ creates private brokers unless "
                "PubliclyAccessible is true.",
      remediation="amazonmq.CfnBroker(self, 'Broker', publicly_accessible=False, "
                  "subnet_ids=private_subnet_ids, security_groups=[sg.security_group_id], ...)")
def mq_not_public(r, t):
    yield from require(r, "PubliclyAccessible", lambda v: v is ABSENT or as_bool(v) is False,
                       "the broker is publicly accessible; set PubliclyAccessible to false")


@rule("DP-MqLogs", clause=9, severity="error", types=[MQ],
      title="Amazon MQ brokers publish general logs, and ActiveMQ brokers audit logs",
      rationale="Clause 9: access and administrative actions are logged. Logs.General (connections, "
                "errors) and Logs.Audit (management actions through JMX and the web console, "
                "ActiveMQ only; RabbitMQ has no audit log and rejects the setting) are off unless "
                "set to true, and then go to CloudWatch Logs.",
      remediation="amazonmq.CfnBroker(self, 'Broker', logs=amazonmq.CfnBroker.LogListProperty(general=True, "
                  "audit=True), ...)  # RabbitMQ: general=True only")
def mq_logs(r, t):
    yield from require(r, "Logs.General", lambda v: as_bool(v) is True,
                       "the broker does not publish general logs (Logs.General is not true; off by default)")
    for path, engine in _engines(r):
        if engine == "RABBITMQ":
            continue
        if isinstance(engine, Unknown):
            yield unverifiable(path, f"cannot tell whether the broker needs an audit log: {engine.reason}")
        elif engine == "ACTIVEMQ":
            yield from require(r, "Logs.Audit", lambda v: as_bool(v) is True,
                               "the ActiveMQ broker does not publish audit logs (Logs.Audit is not true; "
                               "off by default)")
        else:
            yield unverifiable(path, f"dpguard does not know engine {engine!r}")


@rule("DP-MqCmk", clause=7, severity="error", types=[MQ],
      title="ActiveMQ brokers encrypt with a KMS key in our account",
      rationale="Clause 7: cryptographic material is accessible only to our processes. Without "
                "EncryptionOptions, or with UseAwsOwnedKey true, Amazon MQ encrypts with an "
                "AWS-owned key we cannot see, audit or revoke: always a violation. UseAwsOwnedKey "
                "false without KmsKeyId uses the AWS managed key aws/mq, enough only for data tagged "
                "public or internal; confidential, restricted and untagged data needs KmsKeyId with a "
                "customer-managed key (as DP-ConfidentialDataCmk). RabbitMQ brokers cannot choose "
                "their key (AWS-owned only), so this rule does not apply to them.",
      remediation="amazonmq.CfnBroker(self, 'Broker', encryption_options=amazonmq.CfnBroker.EncryptionOptionsProperty(\n"
                  "    use_aws_owned_key=False, kms_key_id=key.key_arn), ...)")
def mq_cmk(r, t):
    engines = _engines(r)
    if all(engine == "RABBITMQ" for _, engine in engines):
        return
    unknown = next((e for _, e in engines if isinstance(e, Unknown)), None)
    outcomes = list(_mq_key_outcomes(r))
    if unknown is not None and not any(e == "ACTIVEMQ" for _, e in engines):
        # only an ActiveMQ broker can do better; the engine is not known
        for o in outcomes:
            yield unverifiable(o.property_path, f"{o.message} (if the engine is ActiveMQ; the engine "
                                                f"cannot be known: {unknown.reason})")
        return
    yield from outcomes


def _mq_key_outcomes(r) -> Iterator[Outcome]:
    for path, owned in leaves(r, "EncryptionOptions.UseAwsOwnedKey"):
        if isinstance(owned, Unknown):
            yield unverifiable(path, f"cannot verify which key encrypts the broker: {owned.reason}")
        elif as_bool(owned) is not False:
            yield violation(path, "the broker is encrypted with an AWS-owned key (UseAwsOwnedKey is not "
                                  "false), which we cannot audit; set UseAwsOwnedKey false and KmsKeyId")
        else:
            for key_path, key in leaves(r, "EncryptionOptions.KmsKeyId"):
                yield from key_outcomes(r, key_path, key, "KmsKeyId is not set, so the broker uses the "
                                                           "AWS managed key aws/mq")
