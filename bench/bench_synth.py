"""Benchmark: what `dpguard.enforce` adds to `cdk synth` of an app of about 2,000 resources.

bench/synth_app.py (10 stacks x ~200 resources, compliant with dpguard and AwsSolutions) is run
as its own process, the way `cdk synth` runs an app, in these modes:

    (a) no enforce                     plain synth (CDK's built-in template validation included)
    (b) dpguard.enforce(app, packs=[]) dpguard's validation plugin alone
    (c) dpguard.enforce(app)           dpguard + cdk-nag's AwsSolutions pack
    (d) --python-nag                   (a) + a one-rule cdk-nag NagPack written in Python

Wall time of the whole process (time.perf_counter around subprocess.run), median of --runs
rounds; each round runs every mode once, the order rotating from round to round, so machine noise
hits all modes alike. One untimed warm-up round comes first. Overheads are given from the medians
and as the median of the per-round differences ("paired"), with the CPU time (user + system) of the
app and its Node.js process next to them. The app also reports its own in-process timings, among
them the time CDK spent inside dpguard's plugin `validate`, and CDK's own validation counters.

(c) passes because each stack acknowledges AwsSolutions-S1 on its access-log bucket (CDK's
Validations.acknowledge, in every mode); synth fails on any unacknowledged violation, so a
benchmark run that does not exit 0 stops the benchmark.

    python bench/bench_synth.py                      # 5 rounds of a/b/c
    python bench/bench_synth.py --runs 9 --python-nag --json synth.json
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "bench" / "synth_app.py"
TARGET_PERCENT, AIM_PERCENT = 10.0, 5.0
LABELS = {"a": "(a) no enforce", "b": "(b) enforce(app, packs=[])", "c": "(c) enforce(app)",
          "d": "(d) Python NagPack, 1 rule"}
PHASE_NAMES = {
    "wall": "**wall time of the process**",
    "cpu": "CPU time (app + its Node.js process)",
    "in_process": "in-process total",
    "import_cdk": "import aws_cdk",
    "import_dpguard": "import dpguard (and cdk_nag)",
    "construct": "build the constructs (+ enforce or the pack)",
    "synth": "app.synth()",
    "cdk_validation": "of it: CDK validation, all plugins",
    "cdk_builtin_validation": "of that: built-in CloudFormation Validate, validate() calls",
    "validate": "of that: dpguard plugin validate()",
}
PHASES = tuple(k for k in PHASE_NAMES if k not in ("wall", "cpu"))


def run_app(mode: str, outdir: Path, stacks: int, env: dict) -> dict:
    """One synth as a process: wall seconds, CPU seconds (user + system of the app and of the
    Node.js process jsii runs for it, which the app reaps), the app's own timings, and CDK's
    validation report."""
    argv = [sys.executable, str(APP), "--mode", mode, "--outdir", str(outdir), "--stacks", str(stacks)]
    perf = outdir.parent / f"{outdir.name}.perf.json"  # CDK's own counters: validation phases
    env = {**env, "CDK_PERF_COUNTERS_FILE": str(perf)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=outdir.parent)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"synth failed in mode {mode} (exit {done.returncode}):\n{done.stderr[-4000:]}")
    timings = json.loads(done.stdout.strip().splitlines()[-1])
    report = json.loads((outdir / "validation-report.json").read_text())
    counters = json.loads(perf.read_text())["counters"] if perf.exists() else {}
    for key, name in (("cdk_validation", "validateTemplates"),
                      ("cdk_builtin_validation", "CloudFormationValidate.validate")):
        timings[key] = counters[name] / 1000 if name in counters else None
    timings["reported_violations"] = sum(len(r.get("violations", [])) for r in report["pluginReports"])
    timings["wall"] = wall
    timings["cpu"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return timings


def scan(outdir: Path) -> dict:
    """`dpguard scan --fail-on warning` of one synthesized cloud assembly: is the app compliant?"""
    dpguard = str(Path(sys.executable).parent / "dpguard")
    done = subprocess.run([dpguard, "scan", str(outdir), "--format", "json", "--fail-on", "warning"],
                          capture_output=True, text=True)
    return {"exit": done.returncode, **json.loads(done.stdout)["summary"]}


def ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:,.0f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="timed rounds (median reported); default 5")
    parser.add_argument("--python-nag", action="store_true",
                        help="also (d): a one-rule cdk-nag pack written in Python (jsii callbacks per resource)")
    parser.add_argument("--stacks", type=int, default=10)
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON here")
    args = parser.parse_args()

    modes = ["a", "b", "c"] + (["d"] if args.python_nag else [])
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # jsii needs node
    load = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="dpguard-bench-synth-"))
    runs: list[dict] = []
    try:
        print(f"warm-up: {', '.join(modes)}", file=sys.stderr, flush=True)
        warm = {m: run_app(m, work / f"warm-{m}", args.stacks, env) for m in modes}
        compliance = scan(work / "warm-a")
        for m in modes:
            shutil.rmtree(work / f"warm-{m}", ignore_errors=True)
        for r in range(args.runs):
            order = modes[r % len(modes):] + modes[:r % len(modes)]
            for m in order:
                outdir = work / f"run{r}-{m}"
                t = run_app(m, outdir, args.stacks, env)
                shutil.rmtree(outdir, ignore_errors=True)
                runs.append({"round": r, **t})
            this = {x["mode"]: x for x in runs if x["round"] == r}
            print(f"round {r + 1}/{args.runs}: " + ", ".join(
                f"{m} {this[m]['wall']:.2f}s (cpu {this[m]['cpu']:.2f}s)" for m in order), file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    def med(mode: str, key: str) -> float | None:
        values = [x[key] for x in runs if x["mode"] == mode and x.get(key) is not None]
        return statistics.median(values) if values else None

    def paired(mode: str, key: str) -> float:
        """Median over rounds of (mode - a): noise that hits one whole round cancels out."""
        by_round = {(x["round"], x["mode"]): x[key] for x in runs}
        return statistics.median(by_round[r, mode] - by_round[r, "a"] for r in range(args.runs))

    medians = {m: {k: med(m, k) for k in ("wall", "cpu") + PHASES} for m in modes}
    overhead = {m: {f"{key}_{unit}": value for key in ("wall", "cpu") for unit, value in (
                    ("ms", (medians[m][key] - medians["a"][key]) * 1000),
                    ("percent", (medians[m][key] - medians["a"][key]) / medians["a"][key] * 100),
                    ("paired_ms", paired(m, key) * 1000))}
                for m in modes if m != "a"}
    resources = warm["b"].get("resources")

    def verdict(p: float) -> str:
        return "within aim" if p <= AIM_PERCENT else "within target" if p <= TARGET_PERCENT else "OVER TARGET"

    rows = [
        ("app: stacks / resources", f"{args.stacks} / {resources:,}"),
        ("`dpguard scan --fail-on warning` of its cdk.out", f"exit {compliance['exit']}: {compliance['violations']} "
                                                            f"violations, {compliance['unverifiable']} unverifiable"),
        ("violations in CDK's validation report, all runs of (b) / (c)",
         " / ".join(str(sum(x["reported_violations"] for x in [warm[m], *runs] if x["mode"] == m)) for m in "bc")
         + " (every synth exited 0)"),
    ]
    for m in modes:
        rows.append((f"{LABELS[m]}: synth wall time (median of {args.runs})",
                     f"{ms(medians[m]['wall'])} (CPU {ms(medians[m]['cpu'])})"))
    for m in overhead:
        o = overhead[m]
        note = (f"; {verdict(o['wall_percent'])} (target <= {TARGET_PERCENT:.0f} %, aim {AIM_PERCENT:.0f} %)"
                if m == "b" else "")
        rows.append((f"overhead of {m} over a: wall", f"**{o['wall_percent']:+.1f} %** ({o['wall_ms']:+,.0f} ms; "
                                                      f"paired per round {o['wall_paired_ms']:+,.0f} ms){note}"))
        rows.append((f"overhead of {m} over a: CPU", f"{o['cpu_percent']:+.1f} % ({o['cpu_ms']:+,.0f} ms; "
                                                     f"paired per round {o['cpu_paired_ms']:+,.0f} ms)"))
    for m in ("b", "c"):
        rows.append((f"dpguard plugin `validate`, in-process, {m} (median)", ms(medians[m]["validate"])))

    print("\n| measure | value |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")
    print("\nMedians per phase, in-process (the app's own clock, and CDK's own counters; the rest of the "
          "wall time is interpreter start-up and exit):\n")
    print("| phase | " + " | ".join(LABELS[m] for m in modes) + " |")
    print("|---" * (len(modes) + 1) + "|")
    for key, name in PHASE_NAMES.items():
        print(f"| {name} | " + " | ".join(ms(medians[m][key]) for m in modes) + " |")
    if "d" in modes:
        print(f"\n(d) called its Python rule {warm['d'].get('python_rule_calls', 0):,} times per synth "
              f"(once per CfnResource), each call a round trip through jsii.")
    print(f"\n({os.cpu_count()} CPUs, Python {sys.version.split()[0]}, {args.runs} rounds after 1 warm-up, "
          f"modes interleaved, order rotating; load average {load[0]:.1f} at start, {os.getloadavg()[0]:.1f} at end)")

    if args.json:
        Path(args.json).write_text(json.dumps({
            "app": {"stacks": args.stacks, "resources": resources, "scan": compliance},
            "runs": args.runs, "modes": {m: LABELS[m] for m in modes},
            "medians_seconds": medians, "overhead_vs_a": overhead,
            "target_percent": TARGET_PERCENT, "aim_percent": AIM_PERCENT,
            "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0],
                        "loadavg_start": load, "loadavg_end": os.getloadavg()},
            "samples": runs}, indent=1))
        print(f"results written to {args.json}")


if __name__ == "__main__":
    main()
