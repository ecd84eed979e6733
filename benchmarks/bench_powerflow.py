"""Time a day of AC power flow on one model: power-grid-model batch against a runpp loop.

    python benchmarks/bench_powerflow.py [--model jiuke_oasis] [--steps 96] [--repeat 5]

Steps are 15 min. Loads follow a daily sine (70 % ± 30 % of their static p and q, peak at
14:00), PV sgens a clear-sky half sine from 06:00 to 18:00 on their static p, storage charges at
midday and discharges in the evening at up to half its rating. Prints wall times, the speed-up
and the largest differences between the engines; exits 1 if a bus voltage differs by more than
1e-6 pu, if the engines disagree on which buses are dead or which steps converged.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout as is

from network_models import load_model
from network_models.powerflow import (
    PowerFlowEngine,
    TimeSeriesInjections,
    TimeSeriesResult,
    run_time_series,
)

V_TOL_PU = 1e-6
STEP_H = 0.25


def daily_injections(net, steps: int) -> TimeSeriesInjections:
    """Deterministic load, PV and storage profiles scaled on the net's static values."""
    hour = (np.arange(steps) * STEP_H) % 24.0
    load_shape = 0.7 + 0.3 * np.sin(2 * np.pi * (hour - 8.0) / 24.0)
    pv_shape = np.clip(np.sin(np.pi * (hour - 6.0) / 12.0), 0.0, None)
    evening = np.clip(np.sin(np.pi * (hour - 17.0) / 5.0), 0.0, None) * (hour >= 17.0)
    storage_shape = 0.5 * (pv_shape - evening)  # > 0 charges (pandapower sign)
    rating_mw = np.zeros(len(net.storage))
    if len(net.storage):
        rating = net.storage.get("max_p_mw", net.storage["sn_mva"]).astype(float)
        rating_mw = rating.fillna(net.storage["sn_mva"]).fillna(0.0).abs().to_numpy()
    return TimeSeriesInjections(
        load_p_mw=np.outer(load_shape, net.load["p_mw"].to_numpy(dtype=float)),
        load_q_mvar=np.outer(load_shape, net.load["q_mvar"].to_numpy(dtype=float)),
        sgen_p_mw=np.outer(pv_shape, net.sgen["p_mw"].to_numpy(dtype=float)),
        storage_p_mw=np.outer(storage_shape, rating_mw),
    )


def timed(net, injections: TimeSeriesInjections, engine: PowerFlowEngine):
    start = time.perf_counter()
    result = run_time_series(net, injections, engine=engine)
    return result, time.perf_counter() - start


def max_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    both = np.isfinite(a) & np.isfinite(b)
    return float(np.max(np.abs(a[both] - b[both]))) if both.any() else 0.0


def pandapower_solver() -> str:
    numba = importlib.util.find_spec("numba") is not None
    lightsim = importlib.util.find_spec("lightsim2grid") is not None
    return (
        f"pandapower {version('pandapower')} runpp Newton-Raphson (algorithm='nr'), "
        f"numba JIT {'on' if numba else 'off'}, lightsim2grid "
        f"{'installed (runpp may use it)' if lightsim else 'not installed'}; "
        "init='results' after the first step"
    )


def report(by_pp: TimeSeriesResult, by_pgm: TimeSeriesResult) -> bool:
    """Print the differences; True when the engines agree within tolerance."""
    dv = max_abs_diff(by_pp.vm_pu, by_pgm.vm_pu)
    same_dead = np.array_equal(np.isnan(by_pp.vm_pu), np.isnan(by_pgm.vm_pu))
    same_converged = np.array_equal(by_pp.converged, by_pgm.converged)
    print(f"max |dV|                {dv:.2e} pu (tolerance {V_TOL_PU:.0e})")
    print(f"max |d va|              {max_abs_diff(by_pp.va_degree, by_pgm.va_degree):.2e} deg")
    print("max |d line loading|    "
          f"{max_abs_diff(by_pp.line_loading_pct, by_pgm.line_loading_pct):.2e} %-points")
    print("max |d trafo loading|   "
          f"{max_abs_diff(by_pp.trafo_loading_pct, by_pgm.trafo_loading_pct):.2e} %-points")
    print(f"max |d losses|          {max_abs_diff(by_pp.losses_mw, by_pgm.losses_mw) * 1e3:.2e} kW")
    print(f"dead buses agree        {same_dead} ({int(np.isnan(by_pgm.vm_pu[0]).sum())} in step 0)")
    print(f"converged steps agree   {same_converged} "
          f"({int(by_pgm.converged.sum())}/{by_pgm.steps} converged)")
    return dv <= V_TOL_PU and same_dead and same_converged


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="jiuke_oasis", help="built-in model name or file")
    parser.add_argument("--steps", type=int, default=96, help="15-min steps (default 96, a day)")
    parser.add_argument("--repeat", type=int, default=5, help="power-grid-model runs to median")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.repeat < 1:
        parser.error("--steps and --repeat must be at least 1")

    net = load_model(args.model).net
    injections = daily_injections(net, args.steps)
    print(f"model {args.model}: {len(net.bus)} buses, {len(net.line)} lines, "
          f"{len(net.trafo)} trafos, {len(net.switch)} switches, {len(net.load)} loads, "
          f"{len(net.sgen)} sgens, {len(net.storage)} storage; {args.steps} steps")
    print(f"pandapower engine:       {pandapower_solver()}")
    print(f"power-grid-model engine: power-grid-model {version('power-grid-model')} batch "
          "Newton-Raphson, own converter, one scenario per step, sequential")

    warm = TimeSeriesInjections()  # first calls pay numba JIT compilation and imports
    _, pp_warm_s = timed(net, warm, PowerFlowEngine.PANDAPOWER)
    _, pgm_warm_s = timed(net, warm, PowerFlowEngine.POWER_GRID_MODEL)
    print(f"warm-up (1 step, untimed below): pandapower {pp_warm_s:.2f} s, "
          f"power-grid-model {pgm_warm_s * 1e3:.1f} ms")

    by_pp, pp_s = timed(net, injections, PowerFlowEngine.PANDAPOWER)
    pgm_runs = [
        timed(net, injections, PowerFlowEngine.POWER_GRID_MODEL) for _ in range(args.repeat)
    ]
    by_pgm = pgm_runs[-1][0]
    pgm_s = statistics.median(seconds for _, seconds in pgm_runs)
    print(f"pandapower loop         {pp_s:8.3f} s  ({pp_s / args.steps * 1e3:.1f} ms/step)")
    print(f"power-grid-model batch  {pgm_s:8.4f} s  ({pgm_s / args.steps * 1e3:.2f} ms/step, "
          f"median of {args.repeat}, conversion included)")
    print(f"speed-up                {pp_s / pgm_s:8.0f} x")
    agree = report(by_pp, by_pgm)
    print("PASS: engines agree" if agree else "FAIL: engines disagree")
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
