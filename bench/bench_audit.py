"""Benchmark: `dpguard audit` of one account on moto's server (loopback), at several concurrencies.

Starts moto's server (tests/deploy_support.py's MotoServer) on a free loopback port, seeds it with
1,000 S3 buckets, 500 security groups and 200 IAM roles (through a thread pool, timed on its own),
then runs, as a user would,

    dpguard audit --endpoint-url http://localhost:PORT --format json --concurrency N

for N = 1, 4, 16, interleaved, median of 3 runs each; it reports wall time, CPU time and peak
memory of that process, findings and exit code, the API calls of one in-process run
(`dpguard.audit.run.audit(...).calls`), and each collector's calls and time alone.
What it measures is dpguard plus moto on this machine: moto answers from one Python process in a
few milliseconds, so the numbers are not AWS's (docs/audit-at-scale.md turns them into AWS terms).

    .venv/bin/python bench/bench_audit.py [--json FILE] [--runs 3] [--concurrency 1 4 16]
        [--latency-ms 25]          also in-process audits with 25 ms added before every API call
        [--report-copies 1 10 50]  also `dpguard report` over that many copies of the audit's JSON
        [--buckets N --security-groups N --roles N] [--no-cli]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from deploy_support import REGION, MotoServer, _base_env, aws_env  # noqa: E402

TRUST = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]})


def policy(i: int) -> str:
    action = "s3:*" if i % 10 == 0 else "s3:GetObject"  # one role in ten over-broad on purpose
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": action, "Resource": f"arn:aws:s3:::bench-{i:05d}/*"}]})


def seed(endpoint: str, buckets: int, groups: int, roles: int, workers: int) -> dict:
    """Create the resources through `workers` threads; returns counts and seconds per kind."""
    import boto3
    from botocore.config import Config

    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)
    config = Config(max_pool_connections=workers * 2, retries={"mode": "standard", "max_attempts": 3}, proxies={})
    s3, ec2, iam = (session.client(s, endpoint_url=endpoint, config=config) for s in ("s3", "ec2", "iam"))

    def bucket(i: int) -> int:
        name = f"bench-{i:05d}"
        s3.create_bucket(Bucket=name)
        calls = 1
        if i % 2 == 0:  # half encrypted and tagged, half bare: both paths of the rules
            s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
            s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": [
                {"Key": "data-classification", "Value": "internal"}, {"Key": "data-owner", "Value": "bench"}]})
            calls += 2
        return calls

    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]

    def group(i: int) -> int:
        gid = ec2.create_security_group(GroupName=f"bench-{i:05d}", Description="bench", VpcId=vpc)["GroupId"]
        cidr = "0.0.0.0/0" if i % 10 == 0 else "10.0.0.0/16"  # one group in ten open to the world
        ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": cidr}]}])
        return 2

    def role(i: int) -> int:
        iam.create_role(RoleName=f"bench-{i:05d}", AssumeRolePolicyDocument=TRUST)
        iam.put_role_policy(RoleName=f"bench-{i:05d}", PolicyName="inline", PolicyDocument=policy(i))
        return 2

    out = {}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for kind, fn, n in (("buckets", bucket, buckets), ("security groups", group, groups), ("roles", role, roles)):
            start = time.perf_counter()
            calls = sum(pool.map(fn, range(n)))
            out[kind] = {"count": n, "calls": calls, "seconds": round(time.perf_counter() - start, 2)}
    return out


# Runs a command and writes its peak RSS (KiB) to the file named first. A child of this benchmark
# would report the benchmark's own size: Linux keeps the peak of the memory a process had before
# exec (and subprocess forks with vfork), so the measuring parent must be a small process.
PEAK = ("import os, sys\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    os.execv(sys.argv[2], sys.argv[2:])\n"
        "_, status, usage = os.wait4(pid, 0)\n"
        "open(sys.argv[1], 'w').write(f'{usage.ru_maxrss} {usage.ru_utime + usage.ru_stime}')\n"
        "sys.exit(os.waitstatus_to_exitcode(status))\n")


def measured(argv: list[str], env: dict, cwd: Path, **kwargs) -> tuple[float, int, float, int, subprocess.CompletedProcess]:
    """Wall seconds, peak RSS (MiB), CPU seconds (user + system) and exit code of one command,
    and the finished process."""
    peak = cwd / "peak-rss"
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", PEAK, str(peak), *argv], env=env, cwd=cwd, **kwargs)
    seconds = time.perf_counter() - start
    rss, cpu = peak.read_text().split()
    return seconds, int(rss) // 1024, float(cpu), done.returncode, done


def run_cli(endpoint: str, concurrency: int, env: dict, work: Path) -> dict:
    """One `dpguard audit` as a user runs it: wall time, peak RSS, exit code, findings."""
    output = work / f"audit-{concurrency}.json"
    argv = [str(ROOT / ".venv" / "bin" / "dpguard"), "audit", "--endpoint-url", endpoint, "--format", "json",
            "--concurrency", str(concurrency), "--output", str(output)]
    seconds, peak, cpu, code, done = measured(argv, env, work, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    stderr = done.stderr.decode(errors="replace")
    findings, statuses = None, Counter()
    if output.is_file():
        doc = json.loads(output.read_text())
        findings = len(doc.get("findings", []))
        statuses = Counter(f.get("status") for f in doc.get("findings", []))
    return {"seconds": seconds, "peak_mib": peak, "cpu_s": cpu, "exit": code, "findings": findings,
            "statuses": dict(statuses), "stderr": stderr[-2000:]}


def in_process(endpoint: str, concurrency: int, *, only: set[str] | None = None, latency_ms: float = 0) -> dict:
    """The same audit in this process, for the record of API calls (Clients.calls). With
    `latency_ms`, every API call first waits that long: a stand-in for the network and service
    time of AWS, which moto on loopback does not have."""
    import boto3

    from dpguard.audit.clients import Clients
    from dpguard.audit.collectors import collectors
    from dpguard.audit.run import audit

    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)
    if latency_ms:
        session.events.register("before-send", lambda **_: time.sleep(latency_ms / 1000))
    start = time.perf_counter()
    result = audit([Clients(session, endpoint_url=endpoint, max_pool=concurrency * 2)], [REGION],
                   concurrency=concurrency, only=only)
    seconds = time.perf_counter() - start
    by_service = Counter()
    for call, n in result.calls.items():
        by_service[call.split(":")[0]] += n
    return {"seconds": seconds, "calls": sum(result.calls.values()), "operations": dict(sorted(result.calls.items())),
            "by_service": dict(by_service.most_common()), "findings": len(result.report.findings),
            "collectors": [c.name for c in collectors()]}


def report_over_copies(work: Path, copies: int, env: dict) -> dict:
    """`dpguard report` over `copies` saved audit JSON files (one per account, as the last step of
    docs/audit-at-scale.md runs it): wall time, peak RSS, size of what it writes."""
    source = next(work.glob("audit-*.json"))
    inputs = work / f"accounts-{copies}"
    inputs.mkdir()
    files = []
    for i in range(copies):
        target = inputs / f"{i:012d}.json"
        target.write_bytes(source.read_bytes())
        files.append(str(target))
    out = work / f"report-{copies}"
    argv = [str(ROOT / ".venv" / "bin" / "dpguard"), "report", *files, "--out", str(out)]
    seconds, peak, cpu, code, _ = measured(argv, env, work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    size = sum(f.stat().st_size for f in out.glob("*")) if out.is_dir() else 0
    return {"copies": copies, "findings_per_copy": len(json.loads(source.read_text())["findings"]),
            "seconds": round(seconds, 2), "cpu_s": round(cpu, 2), "peak_rss_mib": peak, "exit": code, "output_mib": round(size / 2**20, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--buckets", type=int, default=1000)
    parser.add_argument("--security-groups", type=int, default=500)
    parser.add_argument("--roles", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3, help="runs per concurrency (median reported)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--seed-workers", type=int, default=16)
    parser.add_argument("--latency-ms", type=float, default=0,
                        help="also time in-process audits at each concurrency with this delay added before every "
                             "API call (AWS's latency, which moto lacks); use with fewer resources")
    parser.add_argument("--no-cli", action="store_true", help="skip the `dpguard audit` subprocess runs")
    parser.add_argument("--report-copies", type=int, nargs="*", default=[],
                        help="also time `dpguard report` over N copies of one audit's JSON (the final step of an "
                             "organisation-wide audit, docs/audit-at-scale.md), for each N given")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="dpguard-bench-audit-") as tmp:
        work = Path(tmp)
        home = work / "home"
        home.mkdir()
        env = {**_base_env(), **aws_env("unused", home)}
        env.pop("AWS_ENDPOINT_URL")  # the endpoint comes from --endpoint-url, as a user gives it
        with MotoServer(work / "moto.log", python=str(ROOT / ".venv" / "bin" / "python")) as moto:
            seeding = seed(moto.endpoint, args.buckets, args.security_groups, args.roles, args.seed_workers)
            calls = in_process(moto.endpoint, max(args.concurrency))
            per_collector = {name: in_process(moto.endpoint, 1, only={name}) for name in calls["collectors"]}
            runs: dict[int, list[dict]] = {c: [] for c in args.concurrency}
            for _ in range(0 if args.no_cli else args.runs):  # interleaved: drift hits every setting alike
                for c in args.concurrency:
                    runs[c].append(run_cli(moto.endpoint, c, env, work))
            latency: dict[int, list[float]] = {c: [] for c in args.concurrency} if args.latency_ms else {}
            for _ in range(args.runs if args.latency_ms else 0):
                for c in args.concurrency:
                    latency[c].append(in_process(moto.endpoint, c, latency_ms=args.latency_ms)["seconds"])
            endpoint = moto.endpoint
        reports = [report_over_copies(work, n, env) for n in args.report_copies]

    seeded = sum(s["count"] for s in seeding.values())
    print(f"\nseeded {seeded} resources into moto at {endpoint}: "
          + ", ".join(f"{k} {v['count']} ({v['calls']} calls, {v['seconds']:.1f} s)" for k, v in seeding.items())
          + f"; {args.seed_workers} threads")
    print(f"collectors: {', '.join(calls['collectors'])}")
    print(f"API calls of one audit (in-process, concurrency {max(args.concurrency)}): {calls['calls']} "
          f"({', '.join(f'{s} {n}' for s, n in calls['by_service'].items())}); "
          f"in-process wall {calls['seconds']:.1f} s")
    print("\n| collector alone (in-process, concurrency 1) | API calls | wall |\n|---|---|---|")
    for name, r in per_collector.items():
        own = r["calls"] - r["operations"].get("sts:GetCallerIdentity", 0)
        print(f"| {name} | {own} | {r['seconds']:.2f} s |")
    rows = []
    if not args.no_cli:
        print(f"\n| `dpguard audit --concurrency N` | wall (median of {args.runs}) | min-max | calls/s | dpguard CPU "
              "| peak RSS | findings | exit |\n|---|---|---|---|---|---|---|---|")
    for c, rs in runs.items() if not args.no_cli else ():
        wall = statistics.median(r["seconds"] for r in rs)
        low, high = min(r["seconds"] for r in rs), max(r["seconds"] for r in rs)
        row = {"concurrency": c, "wall_median_s": round(wall, 2), "wall_min_s": round(low, 2), "wall_max_s": round(high, 2),
               "calls_per_s": round(calls["calls"] / wall, 1), "peak_rss_mib": max(r["peak_mib"] for r in rs),
               "cpu_median_s": round(statistics.median(r["cpu_s"] for r in rs), 2),
               "findings": sorted({r["findings"] for r in rs}, key=str), "exit": sorted({r["exit"] for r in rs}),
               "statuses": rs[-1]["statuses"]}
        rows.append(row)
        print(f"| {c} | {wall:.1f} s | {low:.1f}-{high:.1f} s | {row['calls_per_s']:.0f} | {row['cpu_median_s']:.1f} s | "
              f"{row['peak_rss_mib']} MiB | {', '.join(map(str, row['findings']))} | {', '.join(map(str, row['exit']))} |")
    for c, rs in runs.items():
        for r in rs:
            if r["exit"] not in (0, 1, 3) and r["stderr"]:
                print(f"\nconcurrency {c} exit {r['exit']}: {r['stderr']}")
                break
    if latency:
        print(f"\n| in-process audit, {args.latency_ms:g} ms added per API call | wall (median of {args.runs}) | "
              f"calls/s |\n|---|---|---|")
        for c, seconds in latency.items():
            wall = statistics.median(seconds)
            print(f"| concurrency {c} | {wall:.1f} s | {calls['calls'] / wall:.0f} |")
    if reports:
        print("\n| `dpguard report` over N saved audits | findings | wall | CPU | peak RSS | written | exit |\n"
              "|---|---|---|---|---|---|---|")
        for r in reports:
            print(f"| {r['copies']} | {r['copies'] * r['findings_per_copy']} | {r['seconds']:.1f} s | "
                  f"{r['cpu_s']:.1f} s | {r['peak_rss_mib']} MiB | {r['output_mib']} MiB | {r['exit']} |")
    print(f"\n({os.cpu_count()} CPUs, Python {platform.python_version()}; moto answers from one process on this "
          "machine: the numbers are dpguard + moto, not AWS)")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "seeding": seeding, "api_calls": calls, "runs": rows, "reports": reports,
            "per_collector": {n: {k: r[k] for k in ("calls", "seconds", "operations")} for n, r in per_collector.items()},
            "latency": {"ms_per_call": args.latency_ms,
                        "wall_s": {str(c): s for c, s in latency.items()}} if latency else None,
            "raw": {str(c): [{k: v for k, v in r.items() if k != "stderr"} for r in rs] for c, rs in runs.items()},
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
            "argv": sys.argv}, indent=2) + "\n")


if __name__ == "__main__":
    main()
