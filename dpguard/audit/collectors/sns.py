"""SNS topics: encryption, topic policy, subscriptions, tags.

Shapes, as CloudFormation writes them:
* `AWS::SNS::Topic` {TopicName, DisplayName, KmsMasterKeyId, FifoTopic, Tags [{Key, Value}]}.
  When its subscriptions cannot be listed, Subscription (the topic's inline list) is unreadable,
  so DP-SnsSubscriptionHttps says why it cannot tell.
* `AWS::SNS::TopicPolicy` {Topics: [Ref topic], PolicyDocument (parsed)}: every topic has one
  (SNS writes a default policy), read from GetTopicAttributes' Policy.
* `AWS::SNS::Subscription` {TopicArn: Ref topic, Protocol, Endpoint}.

Subscriptions are listed per topic (ListSubscriptionsByTopic), which shows the topic owner every
subscription, including those other accounts made. A topic deleted between the listing and the
calls about it is skipped, with its subscriptions.
"""
from __future__ import annotations

import json

from ..clients import Clients, Unreadable, listing, pages, read
from ..live import LiveTemplate, ref, unreadable
from . import collector

GONE = ("NotFound", "NotFoundException")


@collector("sns")
def collect(clients: Clients, region: str, live: LiveTemplate) -> None:
    sns = clients("sns", region)
    topics = listing(sns, "list_topics", "Topics")
    if isinstance(topics, Unreadable):
        live.gap(f"SNS topics in {region} could not be listed: {topics.reason}")
        return
    for topic in topics:
        arn = topic["TopicArn"]
        name = arn.rsplit(":", 1)[-1]
        attributes = read(lambda: sns.get_topic_attributes(TopicArn=arn)["Attributes"], missing=GONE)
        if attributes is None:
            continue  # deleted since the listing
        props: dict = {"TopicName": name}
        if isinstance(attributes, Unreadable):
            props["KmsMasterKeyId"] = unreadable(attributes.reason)
            document = unreadable(attributes.reason)
        else:
            props.update(DisplayName=attributes.get("DisplayName") or None,
                         KmsMasterKeyId=attributes.get("KmsMasterKeyId") or None,
                         FifoTopic=True if attributes.get("FifoTopic") == "true" else None)
            document = _parse(attributes["Policy"]) if attributes.get("Policy") else None
        # By topic: ListSubscriptions shows only the subscriptions our account made, not those
        # other accounts made to our topics.
        subscriptions = read(lambda: list(pages(sns, "list_subscriptions_by_topic", "Subscriptions", TopicArn=arn)),
                             missing=GONE)
        if subscriptions is None:
            continue  # deleted since the listing
        if isinstance(subscriptions, Unreadable):
            props["Subscription"] = unreadable(subscriptions.reason)
        tags = read(lambda: sns.list_tags_for_resource(ResourceArn=arn).get("Tags", []))
        if isinstance(tags, Unreadable):
            props["Tags"] = unreadable(tags.reason)
        elif tags:
            props["Tags"] = tags
        logical_id = live.add(name, "AWS::SNS::Topic", {k: v for k, v in props.items() if v is not None}, arn=arn)
        if document is not None:
            live.add(f"{name}Policy", "AWS::SNS::TopicPolicy",
                     {"Topics": [ref(logical_id)], "PolicyDocument": document}, arn=arn)
        for subscription in [] if isinstance(subscriptions, Unreadable) else subscriptions:
            sub = {"TopicArn": ref(logical_id), "Protocol": subscription.get("Protocol"),
                   "Endpoint": subscription.get("Endpoint")}
            sub_arn = subscription.get("SubscriptionArn", "")
            live.add(f"{name}Subscription", "AWS::SNS::Subscription", {k: v for k, v in sub.items() if v is not None},
                     arn=sub_arn if sub_arn.startswith("arn:") else arn)  # "PendingConfirmation" has no ARN yet


def _parse(document: str):
    try:
        return json.loads(document)
    except ValueError:
        return unreadable("the topic policy SNS returned is not JSON")
