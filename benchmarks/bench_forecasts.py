"""How long forecasts take on Jiuke Oasis: a day, a forecast issue, and a year of 15-min steps.

Run: PYTHONPATH=. python benchmarks/bench_forecasts.py [--model jiuke_oasis] [--repeat 3]
Prints medians; the year must build in under 30 s (issue 3).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from forecasts import TruthAndForecasts, build
from network_models import load_model


def median_s(work: Callable[[], object], repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="jiuke_oasis")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    t0 = time.perf_counter()
    model = load_model(args.model)
    print(f"load model {args.model}: {time.perf_counter() - t0:.2f} s "
          f"({len(model.registry.pv)} PV, {len(model.registry.loads)} loads, "
          f"{sum(s.n_connectors for s in model.registry.ev_sites)} EV connectors)")

    day_s, day = median_s(lambda: build(model, "2026-07-15", "24h", seed=1, weather="mixed"),
                          args.repeat)
    print(f"build one day (96 steps): {day_s * 1000:.0f} ms, {len(day.ev_sessions)} sessions")

    scenario = TruthAndForecasts.build(model, "2026-07-15", "48h", seed=1, weather="partly_cloudy")
    issue_s, _ = median_s(lambda: scenario.forecast_at("2026-07-15 09:00"), args.repeat)
    print(f"forecast_at, 39 h ahead: {issue_s * 1000:.0f} ms")

    year_s, year = median_s(lambda: build(model, "2026-01-01", "365D", seed=1, weather="mixed"),
                            args.repeat)
    print(f"build a year (35,040 steps): {year_s:.1f} s, {len(year.ev_sessions)} sessions "
          f"[target < 30 s: {'met' if year_s < 30 else 'MISSED'}]")
    pv_mwp = sum(pv.p_mwp for pv in model.registry.pv)
    print(f"  PV yield {year.pv_p_mw.sum().sum() * year.step_h / pv_mwp:.0f} kWh/kWp, "
          f"load {year.load_p_mw.sum().sum() * year.step_h / 1000:.1f} GWh, "
          f"peak {year.load_p_mw.sum(axis=1).max():.1f} MW")


if __name__ == "__main__":
    main()
