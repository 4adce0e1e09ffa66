"""Amazon SNS and SQS: messages travel over TLS (clause 3) and rest encrypted (clause 7)."""
from __future__ import annotations

import dataclasses

from ..engine.checks import (Statement, action_matches, denies_insecure_transport, is_set,
                             literal_name, require, tls_policy_outcomes)
from ..engine.findings import unverifiable, violation
from ..engine.values import Unknown, as_bool
from . import rule

TOPIC = "AWS::SNS::Topic"
TOPIC_POLICY = "AWS::SNS::TopicPolicy"
SUBSCRIPTION = "AWS::SNS::Subscription"
QUEUE = "AWS::SQS::Queue"
QUEUE_POLICY = "AWS::SQS::QueuePolicy"

# How templates write account and region inside ARNs built with Fn::Sub.
_REGION_ACCOUNT = "⟨AWS::Region⟩:⟨AWS::AccountId⟩"


def topic_arn_forms(topic) -> list[str]:
    """Ref of a topic is its ARN; GetAtt TopicArn and ARNs built from its name are the same."""
    forms = [topic.ref().token(), topic.ref("TopicArn").token(),
             f"arn:aws:sns:{_REGION_ACCOUNT}:{topic.ref('TopicName').token()}"]
    name = literal_name(topic, "TopicName")
    if name:
        forms.append(f"arn:aws:sns:{_REGION_ACCOUNT}:{name}")
    return forms


def queue_arn_forms(queue) -> list[str]:
    """Ref of a queue is its URL, so only GetAtt Arn and ARNs built from its name name it."""
    forms = [queue.ref("Arn").token(),
             f"arn:aws:sqs:{_REGION_ACCOUNT}:{queue.ref('QueueName').token()}"]
    name = literal_name(queue, "QueueName")
    if name:
        forms.append(f"arn:aws:sqs:{_REGION_ACCOUNT}:{name}")
    return forms


def denies_insecure_publish(s: Statement) -> bool:
    """CDK's enforceSSL for topics denies only sns:Publish without TLS: publishing is how data
    enters a topic (delivery follows each subscription's protocol). A statement that denies
    sns:Publish, or anything wider, counts."""
    if s.actions and any(action_matches(a, "sns:Publish") for a in s.actions):
        s = dataclasses.replace(s, actions=["sns:*"])
    return denies_insecure_transport(s)


@rule("DP-SnsTlsOnly", clause=3, severity="error", types=[TOPIC],
      title="SNS topics refuse publishing without TLS",
      rationale="Clause 3: all data in transit over TLS, unsecured channels disabled. SNS API "
                "endpoints also answer plain HTTP; a topic policy (AWS::SNS::TopicPolicy listing "
                "the topic) must deny sns:Publish when aws:SecureTransport is false.",
      remediation="sns.Topic(self, 'Alerts', enforce_ssl=True, master_key=key)")
def sns_tls_only(r, t):
    yield from tls_policy_outcomes(
        r, (TOPIC_POLICY,), "PolicyDocument", lambda topic: [topic_arn_forms(topic)],
        "no topic policy denies publishing without TLS (aws:SecureTransport=false)",
        denies=denies_insecure_publish)


@rule("DP-SqsTlsOnly", clause=3, severity="error", types=[QUEUE],
      title="SQS queues refuse requests without TLS",
      rationale="Clause 3: all data in transit over TLS, unsecured channels disabled. SQS "
                "endpoints also answer plain HTTP; a queue policy (AWS::SQS::QueuePolicy listing "
                "the queue) must deny sqs:* when aws:SecureTransport is false.",
      remediation="sqs.Queue(self, 'Jobs', enforce_ssl=True, encryption=sqs.QueueEncryption.KMS, "
                  "encryption_master_key=key)")
def sqs_tls_only(r, t):
    yield from tls_policy_outcomes(
        r, (QUEUE_POLICY,), "PolicyDocument", lambda queue: [queue_arn_forms(queue)],
        "no queue policy denies requests without TLS (aws:SecureTransport=false)")


@rule("DP-SnsSubscriptionHttps", clause=3, severity="error", types=[SUBSCRIPTION, TOPIC],
      title="SNS does not deliver messages over plain HTTP",
      rationale="Clause 3: all data in transit over TLS. An http subscription (a separate "
                "AWS::SNS::Subscription or a topic's inline Subscription list) sends every message "
                "unencrypted; https endpoints get the same messages over TLS.",
      remediation="topic.add_subscription(subs.UrlSubscription('https://hooks.example.com/alerts'))")
def sns_subscription_https(r, t):
    message = "the subscription delivers messages over plain HTTP; use an https endpoint"
    if r.type == SUBSCRIPTION:
        yield from require(r, "Protocol", lambda v: str(v).lower() != "http", message)
    else:
        yield from require(r, "Subscription.*.Protocol", lambda v: str(v).lower() != "http", message)


@rule("DP-SnsEncrypted", clause=7, severity="error", types=[TOPIC],
      title="SNS topics are encrypted at rest",
      rationale="Clause 7: all data at rest encrypted. SNS stores messages until delivered and "
                "encrypts them only when the topic names a KMS key (KmsMasterKeyId); there is "
                "no default encryption.",
      remediation="sns.Topic(self, 'Alerts', master_key=key)  # key = kms.Key(..., enable_key_rotation=True)")
def sns_encrypted(r, t):
    yield from require(r, "KmsMasterKeyId", is_set, "the topic is not encrypted at rest (no KmsMasterKeyId)")


@rule("DP-SqsEncrypted", clause=7, severity="error", types=[QUEUE],
      title="SQS queues are encrypted at rest, explicitly",
      rationale="Clause 7: all data at rest encrypted. SQS turns SSE-SQS on for queues created "
                "since late 2022, but older queues and SqsManagedSseEnabled: false stay "
                "unencrypted, so the template must say it: a KMS key (KmsMasterKeyId) or "
                "SqsManagedSseEnabled: true.",
      remediation="sqs.Queue(self, 'Jobs', encryption=sqs.QueueEncryption.KMS, encryption_master_key=key)  "
                  "# or encryption=sqs.QueueEncryption.SQS_MANAGED")
def sqs_encrypted(r, t):
    keys = [v for _, v in r.values("KmsMasterKeyId")]
    managed = [v for _, v in r.values("SqsManagedSseEnabled")]
    if all(is_set(v) and not isinstance(v, Unknown) for v in keys):
        return
    if all(as_bool(v) is True for v in managed):
        return
    unknown = next((v for v in keys + managed if isinstance(v, Unknown)), None)
    if unknown is not None:
        yield unverifiable("Properties", f"cannot tell whether the queue is encrypted: {unknown.reason}")
    elif any(as_bool(v) is False for v in managed):
        yield violation("Properties/SqsManagedSseEnabled",
                        "SSE-SQS is turned off and no KMS key is set: the queue is not encrypted at rest")
    else:
        yield violation("Properties", "the queue does not say how it is encrypted at rest; set "
                                      "KmsMasterKeyId or SqsManagedSseEnabled: true")

