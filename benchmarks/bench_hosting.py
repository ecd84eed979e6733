"""Hosting capacity of the whole Jiuke Oasis grid: how many more EV connectors and kWp of PV.

Runs the grid-wide question (every EV site grown together; every PV system scaled together) for
EV and PV, uncontrolled against orderly, on the two planned days, and prints the figures, the
wall time and the CPU seconds (the worker processes' included) of each beside the target: each
study ≤ 60 s on these machines (2 cores, shared), EV being the one issue 13 timed.

    .venv/bin/python benchmarks/bench_hosting.py [--what ev|pv|both] [--scope grid,feeders,...]
        [--workers N] [--trace]

Measured (2 workers, machine load about 1 from others), before -> after this study's rework:
EV 145 s -> 54 s (orderly 22 -> 14 day plans), PV 125 s -> 17 s; figures the same (EV
+744 / +1,241 connectors, PV +13,610 kWp both, where orderly had been 13,590).
"""

from __future__ import annotations

import argparse
import logging
import resource
import time

from gridctl.studies.hosting import HostingSettings, Scope, What, run_hosting
from network_models import load_model

TARGET_S = 60.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--what", default="both", choices=["ev", "pv", "both"])
    ap.add_argument("--scope", default="grid")
    ap.add_argument("--resolution", type=int, default=None)
    ap.add_argument("--workers", type=int, default=2, help="Processes (2: these machines).")
    ap.add_argument("--trace", action="store_true", help="Print every day check as it ends.")
    ap.add_argument("--probe-relinearisations", default="full",
                    help="Re-linearisations of an orderly plan while the search narrows "
                         "(HostingSettings.probe_relinearisations); 'full': every plan in full.")
    args = ap.parse_args()
    if args.trace:
        logging.basicConfig(format="%(relativeCreated)8.0f ms %(message)s")
        logging.getLogger("gridctl.studies.hosting").setLevel(logging.DEBUG)
    model = load_model("jiuke_oasis")
    scopes = [Scope(s) for s in args.scope.split(",")]
    whats = [What.EV, What.PV] if args.what == "both" else [What(args.what)]
    probe = None if args.probe_relinearisations == "full" else int(args.probe_relinearisations)
    t_all = time.perf_counter()
    for what in whats:
        res = args.resolution or (1 if what is What.EV else 10)
        t0, c0 = time.perf_counter(), _cpu_s()
        results, study = run_hosting(model, what, scopes=scopes,
                                     settings=HostingSettings(resolution=res,
                                                              workers=args.workers,
                                                              probe_relinearisations=probe))
        wall, cpu = time.perf_counter() - t0, _cpu_s() - c0 + study.worker_cpu_s
        print(f"== {what.value}: {len(results)} location(s), resolution {res}, "
              f"{args.workers} worker(s): {wall:.1f} s wall (target <= {TARGET_S:.0f} s: "
              f"{'met' if wall <= TARGET_S else 'NOT met'}), {cpu:.1f} s CPU (workers "
              "included)")
        for r in results:
            for c, f in r.found.items():
                b = f.binding or {}
                print(f"  {r.location.kind:11s} {r.location.name:14s} {c.value:12s} "
                      f"+{f.value:>7d} {f.unit:10s} binding {b.get('kind', 'cap')} "
                      f"{b.get('element', '')} {b.get('time', '')} on {f.worst_day}; "
                      f"{f.evaluations} day checks, {f.wall_s:.1f} s; at value "
                      f"v {f.at_value['v_min_pu']:.4f}-{f.at_value['v_max_pu']:.4f} pu, "
                      f"line {f.at_value['max_line_loading_pct']:.1f} %, "
                      f"trafo {f.at_value['max_trafo_loading_pct']:.1f} %, "
                      f"passed {f.at_value['passed_every_day']}")
    total = time.perf_counter() - t_all
    print(f"all of it {total:.1f} s wall")


def _cpu_s() -> float:
    """CPU seconds of this process and its ended children (the workers report their own: they
    are the fork server's children)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


if __name__ == "__main__":
    main()
