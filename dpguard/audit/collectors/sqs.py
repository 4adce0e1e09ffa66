"""SQS queues: encryption, queue policy, tags.

Shapes, as CloudFormation writes them:
* `AWS::SQS::Queue` {QueueName, KmsMasterKeyId, SqsManagedSseEnabled (boolean), FifoQueue,
  Tags [{Key, Value}]}.
* `AWS::SQS::QueuePolicy` {Queues: [Ref queue] (a queue's Ref is its URL), PolicyDocument
  (parsed)}, only for queues that have a policy.

ListQueues returns at most 1000 URLs and paginates only when asked for a page size, so the
listing always asks for one. A queue deleted between the listing and GetQueueAttributes is skipped.
"""
from __future__ import annotations

import json

from ..clients import Clients, Unreadable, listing, read
from ..live import LiveTemplate, ref, unreadable
from . import collector

GONE = ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist")
PAGE = {"PageSize": 1000}


@collector("sqs")
def collect(clients: Clients, region: str, live: LiveTemplate) -> None:
    sqs = clients("sqs", region)
    partition = clients.session.get_partition_for_region(region)
    urls = listing(sqs, "list_queues", "QueueUrls", PaginationConfig=PAGE)
    if isinstance(urls, Unreadable):
        live.gap(f"SQS queues in {region} could not be listed: {urls.reason}")
        return
    for url in urls:
        account, name = url.rstrip("/").split("/")[-2:]
        attributes = read(lambda: sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])
                          .get("Attributes", {}), missing=GONE)
        if attributes is None:
            continue  # deleted since the listing
        props: dict = {"QueueName": name}
        arn = f"arn:{partition}:sqs:{region}:{account}:{name}"
        document = None
        if isinstance(attributes, Unreadable):
            props["KmsMasterKeyId"] = unreadable(attributes.reason)
            props["SqsManagedSseEnabled"] = unreadable(attributes.reason)
            document = unreadable(attributes.reason)
        else:
            arn = attributes.get("QueueArn") or arn
            managed = attributes.get("SqsManagedSseEnabled")
            props.update(KmsMasterKeyId=attributes.get("KmsMasterKeyId") or None,
                         SqsManagedSseEnabled=None if managed is None else managed.lower() == "true",
                         FifoQueue=True if attributes.get("FifoQueue") == "true" else None)
            if attributes.get("Policy"):
                document = _parse(attributes["Policy"])
        tags = read(lambda: sqs.list_queue_tags(QueueUrl=url).get("Tags", {}))
        if isinstance(tags, Unreadable):
            props["Tags"] = unreadable(tags.reason)
        elif tags:
            props["Tags"] = [{"Key": k, "Value": v} for k, v in sorted(tags.items())]
        logical_id = live.add(name, "AWS::SQS::Queue", {k: v for k, v in props.items() if v is not None}, arn=arn)
        if document is not None:
            live.add(f"{name}Policy", "AWS::SQS::QueuePolicy",
                     {"Queues": [ref(logical_id)], "PolicyDocument": document}, arn=arn)


def _parse(document: str):
    try:
        return json.loads(document)
    except ValueError:
        return unreadable("the queue policy SQS returned is not JSON")
