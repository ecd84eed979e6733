"""Time the Monte Carlo reliability study of Jiuke Oasis on 1 and 2 Dask workers.

    python benchmarks/bench_reliability.py [--years 1000] [--workers 1 2] [--budget-s 300]

For each worker count: a whole study into a fresh store (its plans, then its years), then the
years alone of another seed (10 x the years) from the stored plans: simulated years per second.
The figures must be the same for every worker count. Prints one line per run and exits 1 if a
whole study takes longer than the budget (issue 17: 1,000 years in 5 min on 2 cores) or the
figures differ. The machine's load average is printed beside: the cores may be shared.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout as is

from gridctl.studies.reliability import ReliabilitySettings, run_reliability
from gridctl.studies.reliability_assumptions import read_assumptions
from network_models import load_model


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--years", type=int, default=1000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--budget-s", type=float, default=300.0)
    args = parser.parse_args()
    model, table = load_model("jiuke_oasis"), read_assumptions()
    figures, failed = [], False
    for workers in args.workers:
        with tempfile.TemporaryDirectory() as folder:
            store = Path(folder) / "tasks.sqlite"
            start = time.perf_counter()
            whole = run_reliability(model, table, ReliabilitySettings(years=args.years),
                                    workers=workers, store=store)
            wall = time.perf_counter() - start
            more = run_reliability(model, table, ReliabilitySettings(years=10 * args.years,
                                                                     seed=1),
                                   workers=workers, store=store)
        figures.append(whole.figures)
        failed |= wall > args.budget_s
        print(f"{workers} worker(s): {args.years} years in {wall:.1f} s (plans "
              f"{whole.plans_made} in {whole.plans_wall_s:.1f} s, years "
              f"{whole.years_wall_s:.1f} s); {10 * args.years} years from stored plans in "
              f"{more.years_wall_s:.1f} s = {10 * args.years / more.years_wall_s:.0f} years/s; "
              f"load average {os.getloadavg()[0]:.1f}")
    same = all(f == figures[0] for f in figures)
    print("figures identical for every worker count:", same)
    return 1 if failed or not same else 0


if __name__ == "__main__":
    sys.exit(main())
