"""Day-ahead from files on the SimBench example, beside the synthetic Jiuke day-ahead (the anchor).

    python benchmarks/bench_dayahead_files.py [--date 2026-07-15] [--repeat 3]

From files = load the SimBench grid (model cache) + apply the devices file + read the sessions
CSV + build the bundle (the grid's own profiles) + plan + AC check + baseline, all in each run.
The anchor is ``run_dayahead(load_model('jiuke_oasis'), 2026-07-15)`` (synthetic forecasts and
sessions). The first SimBench load of a fresh cache reads simbench's CSVs: timed apart.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")

EXAMPLE = Path(__file__).parents[1] / "examples" / "simbench_mv"
MODEL = "simbench:1-MV-urban--0-sw"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--date", default="2026-07-15")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    day = dt.date.fromisoformat(args.date)
    t0 = time.perf_counter()
    import forecasts
    from controllers.dayahead import run_dayahead
    from forecasts.timegrid import local_days
    from network_models import load_model

    t_import = time.perf_counter() - t0
    t0 = time.perf_counter()
    load_model(MODEL)
    t_first = time.perf_counter() - t0

    def from_files() -> tuple[object, dict[str, float]]:
        parts: dict[str, float] = {}
        t = time.perf_counter()
        model = load_model(MODEL, devices=EXAMPLE / "simbench_mv.devices.yaml")
        parts["model + devices"] = time.perf_counter() - t
        t = time.perf_counter()
        start, horizon = local_days(day, 1, model.site.timezone)
        bundle = forecasts.build(model, start, horizon, ev_sessions=EXAMPLE / "sessions.csv")
        parts["sessions + bundle"] = time.perf_counter() - t
        t = time.perf_counter()
        result = run_dayahead(model, day, bundle=bundle)
        parts["plan + AC + baseline"] = time.perf_counter() - t
        return result, parts

    runs, results, parts = [], None, {}
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        results, parts = from_files()
        runs.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    jiuke = load_model("jiuke_oasis")
    t_jiuke_model = time.perf_counter() - t0
    anchor_runs, anchor = [], None
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        anchor = run_dayahead(jiuke, dt.date(2026, 7, 15))
        anchor_runs.append(time.perf_counter() - t0)

    print(f"imports {t_import:.1f} s; first SimBench load {t_first:.1f} s (simbench's CSVs, or "
          f"the model cache when it holds it); Jiuke model load {t_jiuke_model:.1f} s")
    print(f"SimBench {args.date} from files, end to end: median {statistics.median(runs):.2f} s "
          f"over {len(runs)} runs ({', '.join(f'{r:.2f}' for r in runs)}); last run: "
          + ", ".join(f"{k} {v:.2f} s" for k, v in parts.items()))
    print(f"Jiuke 2026-07-15 synthetic (anchor):  median {statistics.median(anchor_runs):.2f} s "
          f"over {len(anchor_runs)} runs ({', '.join(f'{r:.2f}' for r in anchor_runs)})")
    for name, res in (("SimBench example", results), ("Jiuke anchor", anchor)):
        k, b = res.kpis, res.baseline_kpis  # type: ignore[union-attr]
        print(f"{name}: plan cost {k['cost_cny']:.0f} CNY, peak {k['peak_import_mw']:.2f} MW | "
              f"baseline cost {b['cost_cny']:.0f} CNY, peak {b['peak_import_mw']:.2f} MW | "
              f"{k['ev_sessions']} EV sessions, shortfall {k['ev_energy_shortfall_mwh']} MWh | "
              f"v {k['v_min_pu']:.4f}-{k['v_max_pu']:.4f} pu, line {k['max_line_loading_pct']:.1f} "
              f"%, trafo {k['max_trafo_loading_pct']:.1f} %, AC validated {k['ac_validated']}")


if __name__ == "__main__":
    main()
