"""Day-ahead on SimBench MV+LV grids of growing size: the scaling curve and its anchors.

    python benchmarks/bench_dayahead_scale.py [--grids CODE ...] [--date 2026-07-15]
    python benchmarks/bench_dayahead_scale.py --one 1-MVLV-urban-all-0-sw   (one grid, JSON line)

Each grid runs in a process of its own (its peak RSS is that process's ``ru_maxrss``, read by
the child itself: everything it allocated, the model included), after a process that only loads
the grid, so the model cache holds it (a first load reads simbench's CSVs: minutes and GBs, not
part of a plan). In each: load the SimBench grid from the model cache, write a devices file made
from the grid by a fixed rule (:func:`devices_yaml`: batteries and EV sites spread over the MV
buses and the LV stations' busbars), build the day's bundle (the grid's own profiles; sessions
drawn by gridctl's seeded generator for the sites) and run ``run_dayahead`` (dispatcher build:
linearisation, screening, problem; plan: solves, EV split, AC checks; baseline). The time
printed against the anchor is that ``run_dayahead`` wall time.

Anchors (issue 15): 1-MVLV-urban-all-0-sw (10,458 buses) with >= 20 BESS, >= 50 EV sites and
>= 10,000 sessions: <= 60 s, <= 4 GB peak, AC validated; a ~2,000-bus grid <= 20 s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")

# (code, buses) from 144 to 10,458 buses; the curve's points
GRIDS = (
    "1-MV-urban--0-sw",
    "1-MVLV-urban-5.303-0-sw",
    "1-MVLV-comm-all-0-sw",
    "1-MVLV-rural-all-0-sw",
    "1-MVLV-urban-all-0-sw",
)
ANCHOR_10K = ("1-MVLV-urban-all-0-sw", 60.0, 4.0)  # code, s, GB
ANCHOR_2K_S = 20.0
SEED = 2016


def devices_yaml(model: object, *, n_bess: int, n_ev_sites: int) -> str:
    """A devices file for a SimBench grid by a fixed rule (deterministic, from the net alone).

    Batteries: half on MV buses (1 MW / 2 MWh), half on LV stations' busbars (0.2 MW /
    0.4 MWh). EV sites: a fifth public DC hubs on MV buses (24 × 150 kW, 2.4 MW connection),
    two fifths office car parks on MV buses (320 × 11 kW, 1.5 MW), two fifths residential
    quarters on LV busbars (60 × 7 kW, 150 kW). A grid without LV puts everything on MV buses.
    Buses are taken evenly along the sorted names, never the slack's."""
    net = model.net  # type: ignore[attr-defined]
    slack = set(net.ext_grid.bus)
    hv_side = set(net.trafo.hv_bus)
    mv = sorted(str(net.bus.name.at[b]) for b in net.bus.index
                if 1.0 < net.bus.vn_kv.at[b] < 60.0 and b not in slack and b not in hv_side
                and net.bus.in_service.at[b])
    lv_busbars = sorted({str(net.bus.name.at[b]) for b in net.trafo.lv_bus
                         if net.bus.vn_kv.at[b] < 1.0})
    lv = lv_busbars or mv

    def spread(names: list[str], k: int, offset: int) -> list[str]:
        if k <= 0:
            return []
        step = max(len(names) // k, 1)
        return [names[(offset + i * step) % len(names)] for i in range(k)]

    lines = ["schema_version: 1",
             "description: batteries and EV sites spread over a SimBench grid by a fixed rule "
             "(benchmarks/bench_dayahead_scale.py)",
             "site: {name: Kassel (assumed), latitude_deg: 51.31, longitude_deg: 9.49, "
             "altitude_m: 170, timezone: Europe/Berlin}",
             "bess:"]
    n_mv_b = (n_bess + 1) // 2
    for i, bus in enumerate(spread(mv, n_mv_b, 1)):
        lines.append(f'  - {{name: bess_mv_{i}, bus: "{bus}", p_mw: 1.0, e_mwh: 2.0, '
                     "s_mva: 1.1, soc_init_frac: 0.5}")
    for i, bus in enumerate(spread(lv, n_bess - n_mv_b, 2)):
        lines.append(f'  - {{name: bess_lv_{i}, bus: "{bus}", p_mw: 0.2, e_mwh: 0.4, '
                     "s_mva: 0.22, soc_init_frac: 0.5}")
    n_dc = max(n_ev_sites // 5, 1)
    n_office = (n_ev_sites - n_dc) // 2
    n_home = n_ev_sites - n_dc - n_office
    lines.append("ev_sites:")
    kinds = (
        ("ev_dc", mv, n_dc, 3, "public_dc", 24, 150, 2400, 30),
        ("ev_office", mv, n_office, 4, "office_ac", 320, 11, 1500, 3.7),
        ("ev_home", lv, n_home, 5, "residential_ac", 60, 7, 150, 3.5),
    )
    for prefix, names, k, offset, kind, n_conn, kw, site_kw, fallback in kinds:
        for i, bus in enumerate(spread(names, k, offset)):
            lines.append(
                f'  - {{name: {prefix}_{i}, bus: "{bus}", site_type: {kind}, '
                f"n_connectors: {n_conn}, p_connector_kw: {kw}, p_site_max_kw: {site_kw}, "
                f"fallback_kw_per_connector: {fallback}}}")
    return "\n".join(lines) + "\n"


def device_counts(buses: int) -> tuple[int, int]:
    """Batteries and EV sites for a grid of ``buses``: the anchor's 20 and 50 at 10,000 buses,
    fewer on smaller grids (at least 2 and 5)."""
    frac = min(buses / 10_000, 1.0)
    return max(round(20 * frac), 2), max(round(50 * frac), 5)


def run_one(code: str, day: dt.date) -> dict[str, object]:
    """One grid's day-ahead in this process; its figures as a dict."""
    t0 = time.perf_counter()
    import forecasts
    from controllers.dayahead import run_dayahead
    from forecasts.timegrid import local_days
    from network_models import load_model
    from network_models.devices_file import apply_devices

    t_import = time.perf_counter() - t0
    t0 = time.perf_counter()
    grid = load_model(f"simbench:{code}")
    t_load = time.perf_counter() - t0
    buses = len(grid.net.bus)
    n_bess, n_ev = device_counts(buses)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{code}.devices.yaml"
        path.write_text(devices_yaml(grid, n_bess=n_bess, n_ev_sites=n_ev))
        t0 = time.perf_counter()
        model = apply_devices(grid, path)  # as load_model(devices=) does, on the grid loaded
        t_devices = time.perf_counter() - t0
    t0 = time.perf_counter()
    start, horizon = local_days(day, 1, model.site.timezone)
    bundle = forecasts.build(model, start, horizon, seed=SEED)
    t_bundle = time.perf_counter() - t0
    rss_before_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    t0 = time.perf_counter()
    result = run_dayahead(model, day, bundle=bundle)
    t_plan = time.perf_counter() - t0
    rec, k = result.plan.record, result.kpis
    prob = getattr(result.plan, "problem_size", None)
    return {
        "code": code, "buses": buses, "bess": len(model.registry.bess),
        "ev_sites": len(model.registry.ev_sites), "pv": len(model.registry.pv),
        "sessions": len(bundle.ev_sessions), "import_s": round(t_import, 2),
        "load_s": round(t_load, 2), "devices_s": round(t_devices, 2),
        "bundle_s": round(t_bundle, 2), "dayahead_s": round(t_plan, 2),
        "solver_s": round(rec.solve_s, 2), "relinearisations": rec.relinearisations,
        "status": rec.status, "plan": k["plan"], "ac_validated": bool(k["ac_validated"]),
        "ac_violations": int(k["ac_violations"]), "cost_cny": k["cost_cny"],
        "peak_import_mw": k["peak_import_mw"],
        "ev_shortfall_mwh": k["ev_energy_shortfall_mwh"],
        "max_line_loading_pct": k.get("max_line_loading_pct"),
        "max_trafo_loading_pct": k.get("max_trafo_loading_pct"),
        "rss_before_plan_gb": round(rss_before_gb, 2),
        "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 2),
        "problem_size": prob,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--grids", nargs="*", default=list(GRIDS))
    ap.add_argument("--date", default="2026-07-15")
    ap.add_argument("--one", help="run one grid in this process and print its JSON line")
    ap.add_argument("--warm", help="only load one grid (fills the model cache) and exit")
    args = ap.parse_args()
    day = dt.date.fromisoformat(args.date)
    if args.warm:
        from network_models import load_model

        load_model(f"simbench:{args.warm}")
        return
    if args.one:
        print(json.dumps(run_one(args.one, day)), flush=True)
        return
    print(f"day-ahead {args.date} on SimBench grids, one process each (peak RSS = its ru_maxrss)")
    print(f"{'grid':28s} {'buses':>6s} {'BESS':>4s} {'EV':>3s} {'sessions':>8s} "
          f"{'day-ahead s':>11s} {'solver s':>8s} {'relin':>5s} {'peak GB':>7s}  result")
    for code in args.grids:
        # a grid not in the model cache is built from simbench's CSVs (minutes, GBs): in a
        # process of its own, so the measured one loads it from the cache as a user's would
        subprocess.run([sys.executable, __file__, "--warm", code], capture_output=True,
                       check=False)
        proc = subprocess.run([sys.executable, __file__, "--one", code, "--date", args.date],
                              capture_output=True, text=True, check=False)
        last = proc.stdout.strip().splitlines()[-1:] if proc.stdout.strip() else []
        if proc.returncode != 0 or not last:
            tail = (proc.stderr.strip().splitlines() or ["?"])[-1]
            print(f"{code:28s} FAILED (exit {proc.returncode}): {tail}")
            continue
        r = json.loads(last[0])
        checked = ("AC validated" if r["ac_validated"]
                   else f"{r['ac_violations']} AC violations")
        anchor = ""
        if code == ANCHOR_10K[0]:
            anchor = (f"  [anchor <= {ANCHOR_10K[1]:.0f} s, <= {ANCHOR_10K[2]:.0f} GB, "
                      ">= 20 BESS, >= 50 EV sites, >= 10,000 sessions, AC validated]")
        elif 1_500 <= int(r["buses"]) <= 2_500:
            anchor = f"  [anchor <= {ANCHOR_2K_S:.0f} s]"
        print(f"{code:28s} {r['buses']:>6d} {r['bess']:>4d} {r['ev_sites']:>3d} "
              f"{r['sessions']:>8d} {r['dayahead_s']:>11.1f} {r['solver_s']:>8.1f} "
              f"{r['relinearisations']:>5d} {r['peak_rss_gb']:>7.2f}  {r['plan']}, "
              f"{checked}{anchor}")
        print(f"{'':28s} model load {r['load_s']} s, devices {r['devices_s']} s, bundle "
              f"{r['bundle_s']} s; cost {r['cost_cny']} CNY, peak {r['peak_import_mw']} MW, EV "
              f"shortfall {r['ev_shortfall_mwh']} MWh, max line {r['max_line_loading_pct']} %, "
              f"trafo {r['max_trafo_loading_pct']} %", flush=True)


if __name__ == "__main__":
    main()
