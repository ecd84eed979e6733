"""Time the feeder-section fault drill end to end through OPC UA on Jiuke Oasis.

    python benchmarks/bench_drill.py [--repeat 3] [--scenario feeder_section_fault]

Each run starts the simulator (127.0.0.1, free port, operator user) and the controller runtime
with FLISR, injects the fault over OPC UA and steps the simulated clock as fast as the runtime
keeps up. Prints per run: the total wall time (start-up included), the drill's own wall time
(from the runtime's first plan to the end), the simulated span, the ticks and
the restoration time in simulated seconds; then the medians.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout as is

from gridctl.commands.drill_runner import run_drill
from gridctl.commands.drill_scenario import drill_scenario_path, load_drill_scenario
from gridctl.planner import warm_up
from network_models import load_model


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--scenario", default="feeder_section_fault")
    args = parser.parse_args()
    warm_up()  # as gridctl drill does: the planner's fork server imports while the model loads
    model = load_model("jiuke_oasis")
    scenario = load_drill_scenario(drill_scenario_path(args.scenario), model)
    totals, drills = [], []
    for k in range(args.repeat):
        t0 = time.perf_counter()
        report = asyncio.run(run_drill(scenario, model))
        total = time.perf_counter() - t0
        totals.append(total)
        drills.append(report.drill_wall_s)
        print(f"run {k + 1}: total {total:.2f} s wall, drill {report.drill_wall_s:.2f} s wall "
              f"for {scenario.duration_min:g} simulated min in {report.ticks} ticks; "
              f"restoration {report.restoration_s} s simulated; customer-minutes "
              f"{report.customer_minutes_interrupted} (manual "
              f"{report.baseline['customer_minutes_interrupted']}); MPC decisions "
              f"{report.mpc_decisions}; runtime errors {len(report.runtime_errors)}")
    print(f"median: total {statistics.median(totals):.2f} s, drill "
          f"{statistics.median(drills):.2f} s (wall)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
