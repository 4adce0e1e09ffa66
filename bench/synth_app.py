"""The CDK app behind bench/bench_synth.py: 10 stacks of about 200 CloudFormation resources each,
compliant with dpguard (and with cdk-nag's AwsSolutions, one reasoned acknowledgment per stack),
synthesized the way `cdk synth` runs an app: as its own process.

    python bench/synth_app.py --mode a --outdir /tmp/out   # plain synth
    python bench/synth_app.py --mode b --outdir /tmp/out   # + dpguard.enforce(app, packs=[])
    python bench/synth_app.py --mode c --outdir /tmp/out   # + dpguard.enforce(app)  (AwsSolutions)
    python bench/synth_app.py --mode d --outdir /tmp/out   # + a one-rule cdk-nag pack written in Python
    cdk synth -q --no-notices -o /tmp/out --app "python bench/synth_app.py --mode b"   # through the CLI

The last line on stdout is one JSON object with in-process timings (seconds): imports, building the
construct tree, app.synth() (which includes every validation plugin), and the time CDK spent
inside dpguard's plugin `validate` (timed by wrapping the method here, in the benchmark only).
With CDK_PERF_COUNTERS_FILE set, CDK writes its own phase timings (ms) to that file.
"""
from __future__ import annotations

import time

T0 = time.perf_counter()

import argparse  # noqa: E402
import functools  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import aws_cdk as cdk  # noqa: E402
from aws_cdk import (Duration, Tags, aws_cloudtrail as cloudtrail, aws_cloudwatch as cw,  # noqa: E402
                     aws_cloudwatch_actions as cw_actions, aws_ec2 as ec2, aws_iam as iam,
                     aws_kms as kms, aws_logs as logs, aws_s3 as s3, aws_sns as sns, aws_sqs as sqs)
from constructs import Construct  # noqa: E402

T_CDK = time.perf_counter()

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

STACKS = 10
UNITS = 14  # 14 resources per unit, so about 200 resources per stack
RULE_CALLS: list[int] = []  # calls of the Python rule in mode d
MODES = {"a": "no enforce", "b": "enforce(app, packs=[])", "c": "enforce(app)  (dpguard + AwsSolutions)",
         "d": "one-rule cdk-nag pack in Python"}


class Unit(Construct):
    """One slice of a data service (14 resources): a CMK, a queue with its dead-letter queue, an
    alert topic, a log group, a bucket, a role with a scoped policy, a security group, an alarm."""

    def __init__(self, scope: Construct, id: str, *, vpc: ec2.IVpc, access_logs: s3.IBucket) -> None:
        super().__init__(scope, id)
        key = kms.Key(self, "Key", enable_key_rotation=True, description=f"{id} data key")
        dlq = sqs.Queue(self, "Dlq", encryption=sqs.QueueEncryption.KMS, encryption_master_key=key,
                        enforce_ssl=True, retention_period=Duration.days(14))
        queue = sqs.Queue(self, "Jobs", encryption=sqs.QueueEncryption.KMS, encryption_master_key=key,
                          enforce_ssl=True, dead_letter_queue=sqs.DeadLetterQueue(queue=dlq, max_receive_count=5))
        topic = sns.Topic(self, "Alerts", master_key=key, enforce_ssl=True)
        logs.LogGroup(self, "Logs", encryption_key=key, retention=logs.RetentionDays.ONE_YEAR)
        bucket = s3.Bucket(self, "Data", encryption=s3.BucketEncryption.KMS, encryption_key=key,
                           bucket_key_enabled=True, block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
                           enforce_ssl=True, versioned=True,
                           lifecycle_rules=[s3.LifecycleRule(noncurrent_version_expiration=Duration.days(30))],
                           server_access_logs_bucket=access_logs, server_access_logs_prefix=f"{id}/")
        role = iam.Role(self, "Worker", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                        description=f"{id} worker")
        role.add_to_policy(iam.PolicyStatement(actions=["s3:GetObject", "s3:PutObject"],
                                               resources=[bucket.arn_for_objects("reports/latest.json")]))
        role.add_to_policy(iam.PolicyStatement(actions=["sqs:ReceiveMessage", "sqs:DeleteMessage"],
                                               resources=[queue.queue_arn]))
        role.add_to_policy(iam.PolicyStatement(actions=["kms:Decrypt", "kms:GenerateDataKey"],
                                               resources=[key.key_arn]))
        sg = ec2.SecurityGroup(self, "Sg", vpc=vpc, description=f"{id} service", allow_all_outbound=False)
        sg.add_ingress_rule(ec2.Peer.ipv4("10.0.0.0/8"), ec2.Port.tcp(443), "HTTPS from the corporate network")
        sg.add_egress_rule(ec2.Peer.ipv4("10.0.0.0/8"), ec2.Port.tcp(443), "HTTPS to internal services")
        alarm = cw.Alarm(self, "Backlog", metric=dlq.metric_approximate_number_of_messages_visible(),
                         threshold=1, evaluation_periods=1)
        alarm.add_alarm_action(cw_actions.SnsAction(topic))
        Tags.of(self).add("data-classification", "confidential")
        Tags.of(self).add("data-owner", "orders-team")


class ServiceStack(cdk.Stack):
    def __init__(self, scope: Construct, id: str, *, trail: bool = False) -> None:
        super().__init__(scope, id)
        vpc = ec2.Vpc.from_vpc_attributes(self, "Vpc", vpc_id="vpc-0123456789abcdef0",
                                          availability_zones=["eu-west-1a", "eu-west-1b"])
        key = kms.Key(self, "LogsKey", enable_key_rotation=True)
        access_logs = s3.Bucket(self, "AccessLogs", encryption=s3.BucketEncryption.S3_MANAGED,
                                block_public_access=s3.BlockPublicAccess.BLOCK_ALL, enforce_ssl=True,
                                object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED)
        Tags.of(access_logs).add("data-classification", "internal")
        Tags.of(access_logs).add("data-owner", "platform-team")
        cdk.Validations.of(access_logs).acknowledge(cdk.Acknowledgment(
            id="AwsSolutions-S1",
            reason="This is the stack's server access log bucket; logging it into itself would loop."))
        if trail:  # one organization-style trail for the whole app (dpguard's DP-CloudTrailPresent)
            trail_logs = logs.LogGroup(self, "TrailLogs", encryption_key=key, retention=logs.RetentionDays.ONE_YEAR)
            trail_bucket = s3.Bucket(
                self, "TrailBucket", encryption=s3.BucketEncryption.KMS, encryption_key=key,
                block_public_access=s3.BlockPublicAccess.BLOCK_ALL, enforce_ssl=True, versioned=True,
                lifecycle_rules=[s3.LifecycleRule(noncurrent_version_expiration=Duration.days(365))],
                server_access_logs_bucket=access_logs, server_access_logs_prefix="trail/")
            Tags.of(trail_bucket).add("data-classification", "internal")
            Tags.of(trail_bucket).add("data-owner", "platform-team")
            cloudtrail.Trail(self, "Trail", bucket=trail_bucket, encryption_key=key, is_multi_region_trail=True,
                             enable_file_validation=True, send_to_cloud_watch_logs=True,
                             cloud_watch_log_group=trail_logs)
        for u in range(UNITS):
            Unit(self, f"Unit{u}", vpc=vpc, access_logs=access_logs)


# ------------------------------------------------------------------ (d) a cdk-nag pack in Python

def python_nag_pack(scope: Construct):
    """A one-rule NagPack written in Python (cdk-nag 3): CDK calls the pack's `validate` (in
    JavaScript), which walks the construct tree and calls back into Python `checkResource` for every
    CfnResource; `applyRule` then calls the Python rule and reads the IApplyRule properties back
    across the jsii bridge. The rule itself is trivial: buckets must have a `Tags` property."""
    import cdk_nag
    import jsii

    @jsii.implements(cdk_nag.IApplyRule)
    class BucketTagged:
        """cdk-nag's IApplyRule, implemented in Python. jsii only sees members the class declares
        (properties, not instance attributes), so each is a property; JavaScript reads every one
        of them back through the bridge for every resource."""

        def __init__(self, node: cdk.CfnResource) -> None:
            self._node = node

        @property
        def node(self) -> cdk.CfnResource:
            return self._node

        @property
        def info(self) -> str:
            return "The S3 bucket has no tags."

        @property
        def explanation(self) -> str:
            return "Tags record the data's classification and owner."

        @property
        def level(self):
            return cdk_nag.NagMessageLevel.ERROR

        @property
        def rule_suffix_override(self) -> str:
            return "S3Tagged"

        def rule(self, node: cdk.CfnResource):
            RULE_CALLS.append(1)
            if node.cfn_resource_type != "AWS::S3::Bucket":
                return cdk_nag.NagRuleCompliance.NOT_APPLICABLE
            tags = cdk.Stack.of(node).resolve(node.tags.render_tags())
            return cdk_nag.NagRuleCompliance.COMPLIANT if tags else cdk_nag.NagRuleCompliance.NON_COMPLIANT

    class PythonChecks(cdk_nag.NagPack):
        def __init__(self, scope: Construct) -> None:
            super().__init__(scope)
            self._pack_name = "PyNag"

        @property
        def name(self) -> str:
            return "PyNag"

        def _check_resource(self, node: cdk.CfnResource) -> None:
            self._apply_rule(BucketTagged(node))

    return PythonChecks(scope)


# ------------------------------------------------------------------ main

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=sorted(MODES), required=True)
    parser.add_argument("--outdir", default=os.environ.get("CDK_OUTDIR"),
                        help="the cloud assembly directory (default: $CDK_OUTDIR, as set by `cdk synth`)")
    parser.add_argument("--stacks", type=int, default=STACKS)
    args = parser.parse_args()
    if not args.outdir:
        parser.error("--outdir is required outside `cdk synth`")

    timings: dict = {"mode": args.mode}
    validate_calls: list[float] = []
    reports: list = []  # what the plugin answered CDK
    if args.mode in "bc":
        t = time.perf_counter()
        import dpguard
        from dpguard.cdk.plugin import DpguardPlugin
        timings["import_dpguard"] = time.perf_counter() - t

        original = DpguardPlugin.validate

        @functools.wraps(original)
        def timed_validate(self, context):  # benchmark instrumentation only
            start = time.perf_counter()
            try:
                result = original(self, context)
                reports.append(result)
                return result
            finally:
                validate_calls.append(time.perf_counter() - start)

        DpguardPlugin.validate = timed_validate

    t = time.perf_counter()
    # As in a `cdk init` project's cdk.json: server access logs are granted by bucket policy, not ACL.
    context = {"@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy": True}
    if os.environ.get("CDK_PERF_COUNTERS_FILE"):  # CDK's own phase timings, written at the end of synth
        context["@aws-cdk/core.slowSynthThreshold"] = 0
    app = cdk.App(outdir=args.outdir, context=context)
    for i in range(args.stacks):
        ServiceStack(app, f"Service{i}", trail=i == 0)
    if args.mode == "b":
        dpguard.enforce(app, packs=[])
    elif args.mode == "c":
        dpguard.enforce(app)
    elif args.mode == "d":
        cdk.Validations.of(app).add_plugins(python_nag_pack(app))
    timings["construct"] = time.perf_counter() - t

    t = time.perf_counter()
    app.synth()  # raises if a validation plugin reports a failure (CDK's "unknown" app mode)
    timings["synth"] = time.perf_counter() - t
    timings["validate"] = sum(validate_calls) if args.mode in "bc" else None
    timings["validate_calls"] = len(validate_calls)
    if args.mode == "d":
        timings["python_rule_calls"] = len(RULE_CALLS)
    timings["import_cdk"] = T_CDK - T0
    timings["in_process"] = time.perf_counter() - T0
    if args.mode in "bc" and reports:
        timings["resources"] = int(reports[-1].metadata["resources"])
        timings["findings"] = len(reports[-1].violations)
        timings["failing"] = 0 if reports[-1].success else len(reports[-1].violations)
    print(json.dumps(timings), flush=True)


if __name__ == "__main__":
    main()
