"""Day-ahead dispatch end to end, and the AC validation of 96 steps, on the Jiuke model.

    python benchmarks/bench_dayahead.py [--model jiuke_oasis] [--date 2026-07-15] [--repeat 3]

End to end = forecast + dispatcher build (linearisation, screening, problem) + plan (solves and
AC checks) + baseline, in one process after the imports and the model load (printed apart).
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time
import warnings

warnings.filterwarnings("ignore")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="jiuke_oasis")
    ap.add_argument("--date", default="2026-07-15")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    t0 = time.perf_counter()
    from controllers.dayahead import run_dayahead
    from network_models import load_model

    t_import = time.perf_counter() - t0
    t0 = time.perf_counter()
    model = load_model(args.model)
    t_model = time.perf_counter() - t0
    day = dt.date.fromisoformat(args.date)
    runs, ac_times, results = [], [], None
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        results = run_dayahead(model, day)
        runs.append(time.perf_counter() - t0)
    from controllers.dispatch import Dispatcher

    d = Dispatcher(model, steps=96)
    for _ in range(5):
        ac_times.append(d.evaluate(results.bundle, results.plan.schedule).wall_s)
    k = results.kpis
    print(f"imports {t_import:.1f} s, model load {t_model:.1f} s (once per process)")
    print(
        f"day-ahead end to end: median {statistics.median(runs):.2f} s over {len(runs)} runs "
        f"({', '.join(f'{r:.2f}' for r in runs)}); solver time in the last {k['solve_s']:.2f} s, "
        f"re-linearisations {results.plan.record.relinearisations}"
    )
    print(
        f"AC validation of 96 steps (power-grid-model batch): median "
        f"{statistics.median(ac_times) * 1000:.0f} ms"
    )
    print(
        f"plan: cost {k['cost_cny']:.0f} CNY, peak {k['peak_import_mw']:.2f} MW, "
        f"{k['ev_sessions']} EV sessions, shortfall {k['ev_energy_shortfall_mwh']} MWh, "
        f"AC validated {k['ac_validated']}"
    )
    b = results.baseline_kpis
    print(f"uncontrolled: cost {b['cost_cny']:.0f} CNY, peak {b['peak_import_mw']:.2f} MW")


if __name__ == "__main__":
    main()
