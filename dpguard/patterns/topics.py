"""SNS topics that meet the policy by construction: encrypted with our key, publishing over TLS
only, delivering over TLS only."""
from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam, aws_kms as kms, aws_sns as sns
from constructs import Construct


class SecureTopic(sns.Topic):
    """A topic compliant by default:

    * messages at rest encrypted with the customer-managed `master_key` (clause 7);
    * a topic policy that denies publishing without TLS (clause 3);
    * `add_subscription` refuses plain-HTTP endpoints (clause 3, DP-SnsSubscriptionHttps).

    `allow_cloudwatch_alarms()` makes it an alert path (clause 4): CloudWatch alarms of this
    account may publish to it and use its key."""

    def __init__(self, scope: Construct, construct_id: str, *, master_key: kms.IKey,
                 display_name: str | None = None, topic_name: str | None = None, fifo: bool = False,
                 content_based_deduplication: bool | None = None) -> None:
        if master_key is None:
            raise ValueError(f"{scope.node.path}/{construct_id}: a customer-managed KMS key (master_key) "
                             f"is required: clause 7")
        super().__init__(scope, construct_id, master_key=master_key, enforce_ssl=True,
                         display_name=display_name, topic_name=topic_name, fifo=fifo or None,
                         content_based_deduplication=content_based_deduplication)

    def add_subscription(self, subscription: sns.ITopicSubscription) -> sns.Subscription:
        added = super().add_subscription(subscription)
        protocol = added.node.default_child.protocol
        if isinstance(protocol, str) and protocol.lower() == "http":
            raise ValueError(f"{self.node.path}: a subscription over plain HTTP sends every message "
                             f"unencrypted (clause 3); use an https:// endpoint")
        return added

    def allow_cloudwatch_alarms(self) -> None:
        """Let CloudWatch alarms of this account publish to the topic, and, when the key is
        defined in this app, let CloudWatch use the key for it (AWS's documented statement for
        alarms on encrypted topics). An imported key needs that statement in its own policy."""
        stack = cdk.Stack.of(self)
        self.add_to_resource_policy(iam.PolicyStatement(
            sid="CloudWatchAlarmsOfThisAccount",
            principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
            actions=["sns:Publish"], resources=[self.topic_arn],
            conditions={
                "ArnLike": {"aws:SourceArn": f"arn:{stack.partition}:cloudwatch:{stack.region}:{stack.account}:alarm:*"},
                "StringEquals": {"aws:SourceAccount": stack.account}}))
        key = self.master_key  # sns.Topic keeps the key it was given
        if isinstance(key, kms.Key) and not getattr(key, "_dpguard_alarms_may_use", False):
            key._dpguard_alarms_may_use = True  # one statement per key, however many topics share it
            key.add_to_resource_policy(iam.PolicyStatement(
                sid="CloudWatchAlarmsPublishToEncryptedTopics",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"], resources=["*"]))
