"""Benchmark: what expanding SAM templates costs.

For each SAM template in tests/data/sam (or the paths given), the engine's in-process time to
load and judge it as written (SAM expansion switched off: what dpguard did before, reporting each
AWS::Serverless resource unverifiable) and as SAM deploys it; then `dpguard scan` wall time of
one SAM template, which also pays for importing the translator once, beside
one plain template. Medians of --runs.

    .venv/bin/python bench/bench_sam.py [--runs 7] [TEMPLATE ...]
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dpguard.engine import Config, evaluate, load, sam  # noqa: E402
from dpguard.rules import catalogue  # noqa: E402


def judged(paths: list[str], expand: bool) -> tuple[float, int, int]:
    """Seconds to load and judge `paths`, resources judged, failing findings."""
    real = sam.is_sam
    if not expand:
        sam.is_sam = lambda data: False  # the template as written, as before
    try:
        start = time.perf_counter()
        app, _ = load(paths)
        report = evaluate(app, Config(), catalogue())
        return time.perf_counter() - start, report.resources, len(report.failing())
    finally:
        sam.is_sam = real


def median(runs: int, fn) -> tuple:
    results = [fn() for _ in range(runs)]
    return (statistics.median(r[0] for r in results),) + results[0][1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("paths", nargs="*")
    args = parser.parse_args()
    paths = args.paths or sorted(str(p) for p in (ROOT / "tests" / "data" / "sam").glob("*.yaml")
                                 if not p.name.startswith("error_"))
    judged(paths[:1], True)  # the translator's import (~0.3 s) is paid once, not per template
    print(f"{'template':48} {'as written':>12} {'expanded':>12}  resources  failing")
    total_before = total_after = 0.0
    for path in paths:
        before, n_before, f_before = median(args.runs, lambda: judged([path], False))
        after, n_after, f_after = median(args.runs, lambda: judged([path], True))
        total_before += before
        total_after += after
        print(f"{Path(path).name:48} {before * 1000:9.1f} ms {after * 1000:9.1f} ms  "
              f"{n_before:>3} -> {n_after:<3}  {f_before:>3} -> {f_after}")
    print(f"{'all ' + str(len(paths)):48} {total_before * 1000:9.1f} ms {total_after * 1000:9.1f} ms")
    plain = ROOT / "examples" / "compliant" / "audited-data-store.yaml"  # no SAM: the translator is not imported
    for path in [paths[0]] + ([str(plain)] if plain.is_file() else []):
        cli = [sys.executable, "-m", "dpguard.cli", "scan", path, "--format", "json"]
        walls = []
        for _ in range(args.runs):
            start = time.perf_counter()
            subprocess.run(cli, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
            walls.append(time.perf_counter() - start)
        print(f"dpguard scan {Path(path).name}: {statistics.median(walls):.2f} s wall (median of {args.runs})")


if __name__ == "__main__":
    main()
