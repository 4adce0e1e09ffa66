"""Benchmark: dpguard over a generated cloud assembly of 10 stacks x ~200 resources.

Reports the engine's in-process time (rules only, and load + rules), `dpguard scan` wall time and
peak memory, and Checkov's wall time on the same directory with the ratio, measured side by side
in this one run. Medians throughout.

    ./dev bench                      # dpguard alone
    ./dev bench --checkov            # also Checkov (installs it into .venv-checkov once)
    ./dev bench --checkov-bin PATH   # a Checkov you already have
    ./dev bench --profile            # also cProfile's top functions of one evaluate()

The per-rule table times each rule's check over the whole assembly (median of the runs). Work
that rules share (a resource's parsed policy documents, its property walks, the index of who
references whom) is cached on first use: it is charged to the first rule that asks for it, so
a rule near the top of the table may be paying for the ones after it.
"""
from __future__ import annotations

import argparse
import cProfile
import dataclasses
import gc
import io
import json
import pstats
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dpguard.engine import Config, evaluate, load  # noqa: E402
from dpguard.rules import catalogue  # noqa: E402

CHECKOV_PIN = "checkov==3.3.30"


def stack_template(stack: int, size: int = 200) -> dict:
    """About `size` resources in CDK's shapes, a few of them non-compliant on purpose."""
    resources: dict = {}

    def add(logical_id: str, rtype: str, props: dict) -> None:
        resources[logical_id] = {"Type": rtype, "Properties": props,
                                 "Metadata": {"aws:cdk:path": f"Stack{stack}/{logical_id}/Resource"}}

    group = 0
    while len(resources) < size:
        g = f"G{group}"
        add(f"Key{g}", "AWS::KMS::Key", {
            "EnableKeyRotation": group % 7 != 0,
            "KeyPolicy": {"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Action": "kms:*", "Resource": "*",
                "Principal": {"AWS": {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":iam::",
                                                        {"Ref": "AWS::AccountId"}, ":root"]]}}}]}})
        add(f"Bucket{g}", "AWS::S3::Bucket", {
            "BucketEncryption": {"ServerSideEncryptionConfiguration": [{"ServerSideEncryptionByDefault": {
                "SSEAlgorithm": "aws:kms", "KMSMasterKeyID": {"Fn::GetAtt": [f"Key{g}", "Arn"]}}}]},
            "PublicAccessBlockConfiguration": {"BlockPublicAcls": True, "BlockPublicPolicy": True,
                                               "IgnorePublicAcls": True, "RestrictPublicBuckets": group % 5 != 0},
            "VersioningConfiguration": {"Status": "Enabled"},
            "LifecycleConfiguration": {"Rules": [{"Status": "Enabled",
                                                  "NoncurrentVersionExpiration": {"NoncurrentDays": 30}}]},
            "Tags": [{"Key": "data-classification", "Value": "confidential"},
                     {"Key": "data-owner", "Value": "team"}]})
        add(f"Bucket{g}Policy", "AWS::S3::BucketPolicy", {
            "Bucket": {"Ref": f"Bucket{g}"},
            "PolicyDocument": {"Version": "2012-10-17", "Statement": [{
                "Action": "s3:*", "Effect": "Deny", "Principal": {"AWS": "*"},
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                "Resource": [{"Fn::GetAtt": [f"Bucket{g}", "Arn"]},
                             {"Fn::Join": ["", [{"Fn::GetAtt": [f"Bucket{g}", "Arn"]}, "/*"]]}]}]}})
        add(f"Role{g}", "AWS::IAM::Role", {
            "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{
                "Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}}]},
            "Policies": [{"PolicyName": "inline", "PolicyDocument": {"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Action": ["s3:GetObject*", "s3:List*"] if group % 6 else "s3:*",
                "Resource": [{"Fn::GetAtt": [f"Bucket{g}", "Arn"]},
                             {"Fn::Join": ["", [{"Fn::GetAtt": [f"Bucket{g}", "Arn"]}, "/*"]]}]}]}}]})
        add(f"Policy{g}", "AWS::IAM::ManagedPolicy", {
            "PolicyDocument": {"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                "Resource": {"Fn::GetAtt": [f"Key{g}", "Arn"]}}]},
            "Roles": [{"Ref": f"Role{g}"}]})
        add(f"Sg{g}", "AWS::EC2::SecurityGroup", {
            "GroupDescription": "app", "VpcId": "vpc-12345678",
            "SecurityGroupIngress": [{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443,
                                      "CidrIp": "0.0.0.0/0" if group % 9 == 0 else "10.0.0.0/16"}],
            "SecurityGroupEgress": [{"IpProtocol": "-1", "CidrIp": "0.0.0.0/0"}]})
        add(f"Logs{g}", "AWS::Logs::LogGroup", {
            "RetentionInDays": 365, "KmsKeyId": {"Fn::GetAtt": [f"Key{g}", "Arn"]}})
        group += 1
    return {"Resources": resources, "Parameters": {"BootstrapVersion": {
        "Type": "AWS::SSM::Parameter::Value<String>", "Default": "/cdk-bootstrap/hnb659fds/version"}}}


def write_assembly(directory: Path, stacks: int = 10) -> int:
    artifacts = {}
    total = 0
    for i in range(stacks):
        template = stack_template(i)
        total += len(template["Resources"])
        name = f"Stack{i}"
        (directory / f"{name}.template.json").write_text(json.dumps(template, indent=1))
        artifacts[name] = {"type": "aws:cloudformation:stack", "displayName": name,
                           "properties": {"templateFile": f"{name}.template.json"}}
    (directory / "manifest.json").write_text(json.dumps({"version": "48.0.0", "artifacts": artifacts}))
    return total


def timed_run(argv: list[str], env: dict | None = None) -> tuple[float, int, int]:
    """Wall seconds, peak resident memory (MiB) and exit code of one command."""
    start = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    return elapsed, usage.ru_maxrss // 1024, os.waitstatus_to_exitcode(status)


def timed_rules(rules: list, spent: dict) -> list:
    """The rules, each check wrapped to add its seconds to spent[rule_id] (a check is a
    generator: its time is the time to exhaust it)."""
    def wrap(rule):
        check = rule.check

        def run(*args):
            start = time.perf_counter()
            try:
                return list(check(*args))
            finally:
                spent[rule.rule_id] = spent.get(rule.rule_id, 0.0) + time.perf_counter() - start
        return dataclasses.replace(rule, check=run)
    return [wrap(rule) for rule in rules]


def per_rule_table(assembly: Path, runs: int, top: int) -> list[str]:
    """Markdown rows: the slowest rules, ms each (median of `runs` evaluations of a freshly
    loaded assembly) and share of the time all rules took."""
    per_run: list[dict] = []
    for _ in range(runs):
        spent: dict = {}
        app, _ = load([str(assembly)])
        evaluate(app, Config(), timed_rules(catalogue(), spent))
        per_run.append(spent)
    medians = {rule_id: statistics.median(run.get(rule_id, 0.0) for run in per_run) for rule_id in per_run[0]}
    total = sum(medians.values()) or 1.0
    rows = ["| rule | ms | share of all rules |", "|---|---:|---:|"]
    for rule_id, seconds in sorted(medians.items(), key=lambda item: -item[1])[:top]:
        rows.append(f"| {rule_id} | {seconds * 1000:.2f} | {seconds / total:.1%} |")
    rows.append(f"| all {len(medians)} rules that ran | {total * 1000:.1f} | 100% |")
    return rows


def profile(assembly: Path, top: int) -> str:
    """cProfile's top functions (by own time) of one evaluate() of a freshly loaded assembly.
    The profiler's cost per call inflates small functions: read it for where, not how long."""
    rules = catalogue()
    app, _ = load([str(assembly)])
    profiler = cProfile.Profile()
    profiler.enable()
    evaluate(app, Config(), rules)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).strip_dirs().sort_stats("tottime").print_stats(top)
    return out.getvalue()


def find_checkov(args) -> str | None:
    if args.checkov_bin:
        return args.checkov_bin
    venv = ROOT / ".venv-checkov"
    binary = venv / "bin" / "checkov"
    if args.checkov and not binary.exists():
        print(f"installing {CHECKOV_PIN} into {venv} (once) ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", CHECKOV_PIN], check=True)
    if binary.exists() and (args.checkov or args.checkov_bin):
        return str(binary)
    return None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--checkov", action="store_true", help="compare with Checkov (installed on first use)")
    parser.add_argument("--checkov-bin", help="path of a checkov executable")
    parser.add_argument("--runs", type=int, default=7, help="runs of dpguard scan (median reported)")
    parser.add_argument("--checkov-runs", type=int, default=3)
    parser.add_argument("--top", type=int, default=15, help="rules in the per-rule table (and functions with --profile)")
    parser.add_argument("--profile", action="store_true", help="print cProfile's top functions of one evaluate()")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="dpguard-bench-"))
    try:
        assembly = work / "cdk.out"
        assembly.mkdir()
        resources = write_assembly(assembly)

        load_times, rule_times = [], []
        for _ in range(15):
            gc.collect()  # each run starts without the garbage of the one before
            start = time.perf_counter()
            app, errors = load([str(assembly)])
            loaded = time.perf_counter()
            report = evaluate(app, Config(), catalogue())
            done = time.perf_counter()
            load_times.append(loaded - start)
            rule_times.append(done - loaded)
        assert not errors
        rules = len(report.rules)

        dpguard = str(Path(sys.executable).parent / "dpguard")
        # An installed dpguard runs from byte code (pip compiles it); a checkout run with
        # PYTHONDONTWRITEBYTECODE would compile every module on every start instead. The byte
        # code goes to the bench's own folder, not into the source tree; one run writes it.
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
        command = [dpguard, "scan", str(assembly), "--output", os.devnull, "--format"]
        timed_run(command + ["json"], env)
        scans = {fmt: [timed_run(command + [fmt], env) for _ in range(args.runs)] for fmt in ("json", "table")}
        scan_wall = statistics.median(s[0] for s in scans["json"])
        table_wall = statistics.median(s[0] for s in scans["table"])
        scan_peak = max(s[1] for s in scans["json"] + scans["table"])

        rows = [
            ("resources / templates / rules", f"{resources} / {len(app.templates)} / {rules}"),
            ("findings (violations, unverifiable)",
             f"{report.summary()['violations']}, {report.summary()['unverifiable']}"),
            ("engine: all rules, in-process (median of 15)", f"{statistics.median(rule_times) * 1000:.1f} ms"),
            ("engine: load + all rules, in-process", f"{statistics.median([a + b for a, b in zip(load_times, rule_times)]) * 1000:.1f} ms"),
            (f"`dpguard scan --format json` wall time (median of {args.runs})", f"{scan_wall * 1000:.0f} ms"),
            (f"`dpguard scan --format table` wall time (median of {args.runs})", f"{table_wall * 1000:.0f} ms"),
            ("`dpguard scan` peak memory (max RSS)", f"{scan_peak} MiB"),
        ]
        checkov = find_checkov(args)
        if checkov:
            runs = [timed_run([checkov, "-d", str(assembly), "--framework", "cloudformation", "--quiet",
                               "--compact", "-o", "json", "--skip-download"]) for _ in range(args.checkov_runs)]
            checkov_wall = statistics.median(r[0] for r in runs)
            rows += [(f"`checkov -d` wall time (median of {args.checkov_runs})", f"{checkov_wall * 1000:.0f} ms"),
                     ("`checkov -d` peak memory", f"{max(r[1] for r in runs)} MiB"),
                     ("speed-up of dpguard scan over checkov", f"{checkov_wall / scan_wall:.1f}x")]
        else:
            rows.append(("checkov", "not run (pass --checkov)"))
        print("\n| measure | value |\n|---|---|")
        for name, value in rows:
            print(f"| {name} | {value} |")
        print(f"\n({os.cpu_count()} CPUs, Python {sys.version.split()[0]})")
        print(f"\nSlowest rules (median of 7 evaluations; shared work is charged to the first rule that asks):\n")
        print("\n".join(per_rule_table(assembly, 7, args.top)))
        if args.profile:
            print(f"\ncProfile of one evaluate(), top {args.top} by own time:\n")
            print(profile(assembly, args.top))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
