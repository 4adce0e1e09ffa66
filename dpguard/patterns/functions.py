"""Lambda functions that meet the policy by construction."""
from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cw, aws_cloudwatch_actions as cw_actions, aws_iam as iam
from aws_cdk import aws_kms as kms, aws_lambda as lambda_, aws_sns as sns, aws_sqs as sqs
from constructs import Construct

from .acks import HIPAA, NIST_R4, NIST_R5, PCI, acknowledge_in_packs
from .guards import acknowledge_star_only_actions
from .logs import EncryptedLogGroup
from .tags import classify

RUNTIME = lambda_.Runtime.PYTHON_3_14  # the newest Python runtime (cdk-nag AwsSolutions-L1)


class SecureFunction(lambda_.Function):
    """A Python function compliant by default:

    * its own role with no managed policy (AWSLambdaBasicExecutionRole would let it write to any
      log group): grant what it touches on `role`, naming the resources (clause 8);
    * logs in its own log group, encrypted with `log_key` and kept `log_retention_days` days
      (clauses 7, 9); without it Lambda creates /aws/lambda/<name> unencrypted, kept forever;
    * environment variables encrypted with `environment_key` (they name resources, never secrets);
    * events it fails to handle after Lambda's retries go to `dead_letter_queue`, an encrypted,
      TLS-only queue kept 14 days, so nothing is lost and nothing loops;
    * with `alerts_topic` (an encrypted topic, e.g. a `SecureTopic`), an alarm that notifies it
      as soon as an event reaches the dead-letter queue. The queue holds data, so an app needs
      an alert path (DP-SecurityAlertPath, clause 4): this alarm is one, or the app has its own."""

    def __init__(self, scope: Construct, construct_id: str, *, code: lambda_.Code, handler: str,
                 description: str, environment: dict[str, str], environment_key: kms.IKey,
                 log_key: kms.IKey, log_retention_days: int, owner: str, timeout: cdk.Duration = cdk.Duration.minutes(1),
                 memory_size: int = 256, runtime: lambda_.Runtime = RUNTIME,
                 tracing: lambda_.Tracing | None = None, alerts_topic: sns.ITopic | None = None) -> None:
        role = iam.Role(scope, f"{construct_id}Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                        description=f"{description} (dpguard: only what the function touches)")
        log_group = EncryptedLogGroup(scope, f"{construct_id}Logs", encryption_key=log_key,
                                      retention_days=log_retention_days)
        dead_letters = sqs.Queue(scope, f"{construct_id}DeadLetters", encryption=sqs.QueueEncryption.KMS,
                                 encryption_master_key=environment_key, enforce_ssl=True,
                                 retention_period=cdk.Duration.days(14))
        super().__init__(scope, construct_id, runtime=runtime, code=code, handler=handler, role=role,
                         description=description, environment=environment, environment_encryption=environment_key,
                         log_group=log_group, dead_letter_queue=dead_letters, timeout=timeout,
                         memory_size=memory_size, retry_attempts=2, tracing=tracing)
        log_group.grant_write(role)
        # Lambda sends failed events to the queue as the function's role: SQS needs the key for it.
        role.add_to_principal_policy(iam.PolicyStatement(
            actions=["kms:GenerateDataKey", "kms:Decrypt"], resources=[environment_key.key_arn],
            conditions={"StringEquals": {"kms:ViaService": f"sqs.{cdk.Stack.of(self).region}.amazonaws.com"}}))
        if tracing not in (None, lambda_.Tracing.DISABLED):
            # Lambda's X-Ray upload takes no resource; CDK grants it on "*".
            acknowledge_star_only_actions(role.node.find_child("DefaultPolicy"),
                                          "X-Ray trace upload, which CDK grants a traced function, supports no "
                                          "resource-level permissions; every other action of the role names its "
                                          "resources (checked at synth)")
        self.dead_letters = dead_letters
        self.dead_letter_alarm = None
        if alerts_topic is not None:
            self.dead_letter_alarm = cw.Alarm(
                scope, f"{construct_id}DeadLettersAlarm",
                alarm_description=f"Events that {self.node.path} failed to handle wait in its dead-letter queue",
                metric=dead_letters.metric_approximate_number_of_messages_visible(
                    period=cdk.Duration.minutes(5), statistic="Maximum"),
                threshold=1, evaluation_periods=1,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING)
            self.dead_letter_alarm.add_alarm_action(cw_actions.SnsAction(alerts_topic))
        # The queue is where failed events end; giving it a queue of its own would only move them.
        # Failed events hold what the function handles: security findings, user ids.
        classify(dead_letters, "confidential", owner)
        acknowledge_in_packs(dead_letters, "SQSQueueDLQ", (NIST_R5, NIST_R4, HIPAA, PCI),
                             "This queue is the dead-letter queue of a function: failed events end here")
        # What the NIST, HIPAA and PCI packs ask of every function, and why these differ:
        acknowledge_in_packs(role, "IAMNoInlinePolicy", (NIST_R5, NIST_R4, HIPAA, PCI),
                             "The role's own policy names only the resources this one function touches; a "
                             "managed policy could be attached to other principals, which is broader")
        acknowledge_in_packs(self, "LambdaInsideVPC", (NIST_R5, NIST_R4, HIPAA, PCI),
                             "The function calls AWS APIs only, over TLS with SigV4, and nothing can reach it "
                             "but its triggers; in a VPC it would need an endpoint per service it calls")
        acknowledge_in_packs(self, "LambdaConcurrency", (NIST_R5, HIPAA),
                             "Reserved concurrency would take capacity from the account's shared pool and "
                             "could throttle an incident or a deletion when it is most needed")


@functools.cache  # one copy per process, removed at exit (CDK copies it into cdk.out at synth)
def _staged_code() -> str:
    """The functions' code: `dpguard/__init__.py` and the modules of `dpguard/response` (standard
    library and boto3, which the runtime has), copied to a folder of their own so that the asset,
    and its hash, hold nothing else."""
    package = Path(__file__).resolve().parent.parent
    staging = Path(tempfile.mkdtemp(prefix="dpguard-functions-"))
    atexit.register(shutil.rmtree, staging, True)
    (staging / "dpguard" / "response").mkdir(parents=True)
    shutil.copy2(package / "__init__.py", staging / "dpguard" / "__init__.py")
    for module in (package / "response").glob("*.py"):
        if not module.name.endswith("_cli.py"):  # the command line is not part of the functions
            shutil.copy2(module, staging / "dpguard" / "response" / module.name)
    return str(staging)


def dpguard_code() -> lambda_.Code:
    return lambda_.Code.from_asset(_staged_code())
