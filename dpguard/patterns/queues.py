"""SQS queues that meet the policy by construction: encrypted with our key, TLS-only, classified,
and with a dead-letter queue that is all of these too."""
from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cw, aws_cloudwatch_actions as cw_actions, aws_kms as kms
from aws_cdk import aws_sns as sns, aws_sqs as sqs
from constructs import Construct

from .acks import HIPAA, NIST_R4, NIST_R5, PCI, acknowledge_in_packs
from .tags import classify

MAX_RETENTION_DAYS = 14   # the longest SQS keeps a message


def _check_days(path: str, what: str, days: int) -> int:
    if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= MAX_RETENTION_DAYS:
        raise ValueError(f"{path}: {what} must be 1 to {MAX_RETENTION_DAYS} days (SQS keeps messages "
                         f"no longer); got {days!r}")
    return days


def _encrypted_queue_options(encryption_key: kms.IKey) -> dict:
    """What every queue here shares: SSE-KMS with the customer-managed key (clause 7), a queue
    policy that denies requests without TLS (clause 3)."""
    if encryption_key is None:
        raise ValueError("a customer-managed KMS key (encryption_key) is required: clause 7")
    return dict(encryption=sqs.QueueEncryption.KMS, encryption_master_key=encryption_key,
                enforce_ssl=True)


class SecureQueue(sqs.Queue):
    """A queue compliant by default:

    * SSE-KMS with the customer-managed `encryption_key` (clause 7; when an AWS service such as
      EventBridge sends to the queue, the key policy must let that service use the key);
    * a queue policy that refuses requests without TLS (clause 3);
    * a dead-letter queue (`.dead_letters`, a sibling named `<id>DeadLetters`) with the same key,
      the same TLS policy and the same tags, kept 14 days, receiving a message after
      `max_receive_count` failed receives, so a poison message neither loops nor is lost;
    * tags `data-classification` and `data-owner` on both (clause 6);
    * with `alerts_topic` (an encrypted topic, e.g. a `SecureTopic`), an alarm that notifies it
      as soon as a message reaches the dead-letter queue (clause 4: it is also the app's alert
      path, DP-SecurityAlertPath).

    All `sqs.Queue` methods (`grant_send_messages`, `grant_consume_messages`, ...) work; they
    grant the key too."""

    def __init__(self, scope: Construct, construct_id: str, *, encryption_key: kms.IKey,
                 classification: str, owner: str, max_receive_count: int = 3,
                 retention_days: int = 4, dead_letter_retention_days: int = MAX_RETENTION_DAYS,
                 visibility_timeout: cdk.Duration = cdk.Duration.seconds(30), fifo: bool = False,
                 content_based_deduplication: bool | None = None, queue_name: str | None = None,
                 alerts_topic: sns.ITopic | None = None,
                 removal_policy: cdk.RemovalPolicy = cdk.RemovalPolicy.DESTROY) -> None:
        path = f"{scope.node.path}/{construct_id}"
        _check_days(path, "retention_days", retention_days)
        _check_days(path, "dead_letter_retention_days", dead_letter_retention_days)
        if not isinstance(max_receive_count, int) or not 1 <= max_receive_count <= 1000:
            raise ValueError(f"{path}: max_receive_count must be 1 to 1000; got {max_receive_count!r}")
        options = _encrypted_queue_options(encryption_key)
        fifo_options = dict(fifo=True) if fifo else {}
        self.dead_letters = sqs.Queue(
            scope, f"{construct_id}DeadLetters", retention_period=cdk.Duration.days(dead_letter_retention_days),
            removal_policy=removal_policy, **fifo_options, **options)
        super().__init__(
            scope, construct_id, queue_name=queue_name, retention_period=cdk.Duration.days(retention_days),
            visibility_timeout=visibility_timeout, content_based_deduplication=content_based_deduplication,
            dead_letter_queue=sqs.DeadLetterQueue(queue=self.dead_letters, max_receive_count=max_receive_count),
            removal_policy=removal_policy, **fifo_options, **options)
        classify(self, classification, owner)
        classify(self.dead_letters, classification, owner)
        # The dead-letter queue is where failed messages end; a queue of its own would only move them.
        acknowledge_in_packs(self.dead_letters, "SQSQueueDLQ", (NIST_R5, NIST_R4, HIPAA, PCI),
                             "This queue is the dead-letter queue of another queue: failed messages end here")
        self.dead_letter_alarm = None
        if alerts_topic is not None:
            self.dead_letter_alarm = cw.Alarm(
                scope, f"{construct_id}DeadLettersAlarm",
                alarm_description=f"Messages of {path} failed {max_receive_count} times and wait in its "
                                  f"dead-letter queue",
                metric=self.dead_letters.metric_approximate_number_of_messages_visible(
                    period=cdk.Duration.minutes(5), statistic="Maximum"),
                threshold=1, evaluation_periods=1,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING)
            self.dead_letter_alarm.add_alarm_action(cw_actions.SnsAction(alerts_topic))
