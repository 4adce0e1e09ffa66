"""Benchmark: what one account costs the organisation audit (docs/audit-at-scale.md, "Cost and time").

Starts moto's server on a free loopback port (tests/deploy_support.py's MotoServer), seeds one
member account with a typical set of resources in one region, and runs the real Lambda handler,
`dpguard.org_audit.handlers.audit_account`, in this process, as the state machine's Map would: with the
results bucket, key and Security Hub of an auditor account, over 1, 4 and 17 regions (the regions
beyond the first hold only their default VPC, as in a real account). Then `report` over that day.
Every AWS call of the handlers is counted by service and operation (both the member account's
reads and the auditor account's S3 and Security Hub requests), with wall and CPU time.

`--latency-ms` adds that delay before every call: moto answers in a millisecond or two, AWS in
tens (an assumption, not a measurement); the wall time with it is a model of the Lambda's
duration, and so of its GB-seconds.

The Step Functions transitions per account are counted from the stack's synthesized definition
(dpguard/stacks/org_audit.py), not measured: Step Functions Local is not available here.

    .venv/bin/python bench/bench_org_cost.py [--buckets 50 --security-groups 30 --roles 20]
        [--regions 1 4 17] [--latency-ms 40] [--runs 3] [--json FILE]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from deploy_support import REGION, MotoServer  # noqa: E402

MEMBER = "210987654321"  # moto keeps every account id apart: the audited account
ROLE = "dpguard-audit"
EXTERNAL_ID = "bench-external-id"
BUCKET = "dpguard-org-audit-results"
# The 17 regions enabled by default in an AWS account (docs/audit-at-scale.md), ours first.
REGIONS = [REGION, "us-east-2", "us-west-1", "us-west-2", "ca-central-1", "eu-west-1", "eu-west-2", "eu-west-3",
           "eu-central-1", "eu-north-1", "ap-south-1", "ap-northeast-1", "ap-northeast-2", "ap-northeast-3",
           "ap-southeast-1", "ap-southeast-2", "sa-east-1"]


def member_session():
    import boto3

    sts = boto3.client("sts")
    credentials = sts.assume_role(RoleArn=f"arn:aws:iam::{MEMBER}:role/{ROLE}", RoleSessionName="seed",
                                  ExternalId=EXTERNAL_ID)["Credentials"]
    return boto3.Session(aws_access_key_id=credentials["AccessKeyId"], aws_secret_access_key=credentials["SecretAccessKey"],
                         aws_session_token=credentials["SessionToken"], region_name=REGION)


def seed(buckets: int, groups: int, roles: int) -> dict:
    """A typical member account: half its buckets encrypted and tagged, one group in ten open to
    the world, one role in ten with s3:* (as bench_audit.py seeds, smaller)."""
    session = member_session()
    s3, ec2, iam = session.client("s3"), session.client("ec2"), session.client("iam")
    for i in range(buckets):
        name = f"member-{i:04d}"
        s3.create_bucket(Bucket=name)
        if i % 2 == 0:
            s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    for i in range(groups):
        gid = ec2.create_security_group(GroupName=f"member-{i:04d}", Description="bench", VpcId=vpc)["GroupId"]
        ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[{
            "IpProtocol": "tcp", "FromPort": 443, "ToPort": 443,
            "IpRanges": [{"CidrIp": "0.0.0.0/0" if i % 10 == 0 else "10.0.0.0/16"}]}])
    trust = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
    for i in range(roles):
        iam.create_role(RoleName=f"member-{i:04d}", AssumeRolePolicyDocument=trust)
        iam.put_role_policy(RoleName=f"member-{i:04d}", PolicyName="inline", PolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*" if i % 10 == 0 else "s3:GetObject",
                                                    "Resource": f"arn:aws:s3:::member-{i:04d}/*"}]}))
    return {"buckets": buckets, "security_groups": groups, "roles": roles}


def auditor() -> str:
    """The auditor account's results bucket, key and Security Hub; returns the key's ARN."""
    import boto3

    boto3.client("s3").create_bucket(Bucket=BUCKET)
    boto3.client("securityhub").enable_security_hub()
    return boto3.client("kms").create_key(Description="org audit results")["KeyMetadata"]["Arn"]


class Counting:
    """Every API call of every boto3 client in this process, by "service:Operation"; with
    `latency_ms`, each waits that long first."""

    def __init__(self, latency_ms: float) -> None:
        from botocore.client import BaseClient

        self.calls: Counter = Counter()
        self.seconds: Counter = Counter()
        self.latency = latency_ms / 1000
        real = BaseClient._make_api_call

        def make_api_call(client, operation, params):
            self.calls[f"{client.meta.service_model.service_name}:{operation}"] += 1
            if self.latency:
                time.sleep(self.latency)
            start = time.perf_counter()
            try:
                return real(client, operation, params)
            finally:
                self.seconds[f"{client.meta.service_model.service_name}:{operation}"] += time.perf_counter() - start
        self.patch = mock.patch.object(BaseClient, "_make_api_call", make_api_call)

    def __enter__(self) -> "Counting":
        self.patch.start()
        return self

    def __exit__(self, *exc) -> None:
        self.patch.stop()


def _loopback_subdomains():
    """S3 Control puts the account id before the endpoint's host (210987654321.localhost): make
    such names resolve to loopback at once, as they would on AWS, instead of after DNS time-outs."""
    import socket

    real = socket.getaddrinfo

    def getaddrinfo(host, *rest, **kwargs):
        if isinstance(host, str) and host.endswith(".localhost"):
            host = "127.0.0.1"
        return real(host, *rest, **kwargs)
    return mock.patch.object(socket, "getaddrinfo", getaddrinfo)


def run_handler(handler, event: dict, latency_ms: float) -> dict:
    with Counting(latency_ms) as counting:
        wall, cpu = time.perf_counter(), time.process_time()
        answer = handler(event, None)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    by_side = Counter()
    for call, n in counting.calls.items():
        by_side[call] += n
    return {"wall_s": wall, "cpu_s": cpu, "calls": sum(counting.calls.values()), "operations": dict(sorted(by_side.items())),
            "slowest": {k: round(v, 2) for k, v in counting.seconds.most_common(5)}, "answer": answer}


def transitions_per_account() -> dict:
    """State transitions from the synthesized definition: states entered once per run, and per
    Map item (the child workflow's states), without retries."""
    os.environ.setdefault("JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION", "1")
    import aws_cdk as cdk

    from dpguard.stacks.org_audit import OrgAuditSettings, OrgAuditStack, definition_of
    from dpguard.stacks.settings import EnvironmentSettings

    app = cdk.App(outdir=tempfile.mkdtemp(prefix="dpguard-bench-org-"))
    settings = EnvironmentSettings(name="bench", allowed_cidrs=("10.0.0.0/8",), alert_email="sec@example.com",
                                   retention_days=365, data_owner="bench")
    stack = OrgAuditStack(app, "OrgAudit", settings=settings, org=OrgAuditSettings(organization_id="o-a1b2c3d4e5"))
    definition = definition_of(app.synth().get_stack_by_name(stack.stack_name).template)

    def path_length(machine: dict) -> int:
        n, name = 0, machine["StartAt"]
        while name:
            n += 1
            name = machine["States"][name].get("Next")
        return n
    [child] = [s["ItemProcessor"] for s in definition["States"].values() if s["Type"] == "Map"]
    return {"per_run": path_length(definition), "per_account": path_length(child)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--buckets", type=int, default=50)
    parser.add_argument("--security-groups", type=int, default=30)
    parser.add_argument("--roles", type=int, default=20)
    parser.add_argument("--regions", type=int, nargs="+", default=[1, 4, 17])
    parser.add_argument("--latency-ms", type=float, default=40, help="delay before every call (0: moto's own speed)")
    parser.add_argument("--runs", type=int, default=3, help="runs per region count (median reported)")
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="dpguard-bench-org-") as tmp:
        home = Path(tmp, "home")
        home.mkdir()
        with MotoServer(Path(tmp, "moto.log"), python=str(ROOT / ".venv" / "bin" / "python")) as moto:
            env = {"AWS_ENDPOINT_URL": moto.endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                   "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION, "HOME": str(home),
                   "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
                   "AWS_EC2_METADATA_DISABLED": "true", "NO_PROXY": "localhost,127.0.0.1"}
            with mock.patch.dict(os.environ, env), _loopback_subdomains():
                from dpguard.org_audit import handlers as org

                seeded = seed(args.buckets, args.security_groups, args.roles)
                key_arn = auditor()
                os.environ.update({"BUCKET": BUCKET, "KEY_ARN": key_arn, "AUDIT_ROLE_NAME": ROLE,
                                   "EXTERNAL_ID": EXTERNAL_ID, "SECURITY_HUB": "on"})
                # Warm-up, not counted: moto loads each service's backend on its first call.
                run_handler(org.audit_account, {"account": MEMBER, "regions": REGIONS[:max(args.regions)],
                                                "date": "2025-12-31"}, 0)
                rows = []
                for n in args.regions:
                    runs = [run_handler(org.audit_account, {"account": MEMBER, "regions": REGIONS[:n],
                                                            "date": f"2026-01-{day + 1:02d}"}, args.latency_ms)
                            for day in range(args.runs)]
                    rows.append({"regions": n, "wall_s": round(statistics.median(r["wall_s"] for r in runs), 2),
                                 "cpu_s": round(statistics.median(r["cpu_s"] for r in runs), 2),
                                 "calls": runs[-1]["calls"], "operations": runs[-1]["operations"],
                                 "slowest": runs[-1]["slowest"],
                                 "findings": runs[-1]["answer"]["violations"] + runs[-1]["answer"]["unverifiable"],
                                 "securityhub": runs[-1]["answer"]["securityhub"]})
                report = run_handler(org.report, {"date": "2026-01-01", "bucket": BUCKET}, args.latency_ms)
    transitions = transitions_per_account()

    auditor_side = ("s3:", "securityhub:", "kms:")
    print(f"member account: {seeded}; {args.latency_ms:g} ms added before every call; median of {args.runs}")
    print("\n| regions | wall | CPU | API calls | of them: S3 (member) | auditor S3 | Security Hub | findings |\n"
          "|---|---|---|---|---|---|---|---|")
    for r in rows:
        ops = r["operations"]
        own = {k: v for k, v in ops.items() if k.startswith(auditor_side) and k.split(":")[1] in
               ("PutObject", "GetObject", "BatchImportFindings")}
        member_s3 = sum(v for k, v in ops.items() if k.startswith("s3:")) - sum(v for k, v in own.items() if k.startswith("s3:"))
        print(f"| {r['regions']} | {r['wall_s']:.1f} s | {r['cpu_s']:.1f} s | {r['calls']} | {member_s3} | "
              f"{sum(v for k, v in own.items() if k.startswith('s3:'))} | "
              f"{sum(v for k, v in own.items() if k.startswith('securityhub:'))} | {r['findings']} |")
    print(f"\nreport over one account: {report['wall_s']:.1f} s, {report['calls']} calls {report['operations']}")
    print(f"state transitions: {transitions['per_run']} per run + {transitions['per_account']} per account "
          "(from the definition, no retries)")
    if args.json:
        Path(args.json).write_text(json.dumps({"seeded": seeded, "latency_ms": args.latency_ms, "rows": rows,
                                               "report": {k: v for k, v in report.items() if k != "answer"},
                                               "transitions": transitions}, indent=1, default=str))


if __name__ == "__main__":
    main()
