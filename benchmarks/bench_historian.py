"""Historian bytes per simulated day: a day of the runtime's calls replayed, before and after.

    python benchmarks/bench_historian.py [--days 1] [--before-ref f026690~1]

The calls and their rates are the runtime's (``gridctl/runtime.py``) on the Jiuke Oasis grid:
a poll of the polled points every 60 s, a control step every 15 min (a full read of every
measurement, EV sessions, the MPC's write of every setpoint, its schedule and decision), a
heartbeat of every setpoint every 120 s, the day-ahead plans, and the EV events of a day
(plug-ins and departures answered by splitting a site's power again, each with an event and a
write; each session's end). Point counts come from the model's field contract; the numbers of
EV sessions, re-splits and events are those of a lockstep day (``bench_closed_loop.py``: 887
sessions, 732 re-splits, 1,190 events). Two field cases: every write accepted, and one PV
inverter out of communication (its two setpoints refused at every write, as in the soak that
found the historian growing ~90 MB a day: the old runtime then stored every heartbeat whole).

"before" is the historian of ``--before-ref`` (``git show REF:gridctl/historian.py``; by
default the last version before schema 2, one module importing nothing of the historian's
since) driven as the runtime of that version drives it (a heartbeat recorded only when a point
is refused, then every point); "after" is this one, driven as the runtime is to drive it (every
batch recorded with its reason, ``maintain`` once a simulated hour). Printed: bytes per
simulated day, the tables' shares, the 15-minute statistics a day becomes, the file an operator
keeps at the default retention, and the longest ``maintain`` call.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

START = pd.Timestamp("2026-07-15 00:00", tz="Asia/Shanghai")
SESSIONS_PER_DAY = 887
RESPLITS_PER_DAY = 732
RESPLIT_EVENTS_PER_DAY = 1190
ENDS_PER_DAY = 697


@dataclass(frozen=True)
class Load:
    polled: list[tuple[str, str]]
    full: list[tuple[str, str]]  # every numeric measurement (a control step's full read)
    setpoints: list[tuple[str, str]]
    schedule_columns: list[str]
    sites: dict[str, list[str]]  # EV site -> its connectors' p_set_kw points
    bools: set[tuple[str, str]]


def load_of_model() -> Load:
    from gridctl.field.contract import FieldContract
    from gridctl.runtime_snapshot import polled_points
    from network_models import load_model
    from network_models.registry import Bess, EvChargingSite, PvSystem

    model = load_model("jiuke_oasis")
    contract = FieldContract.from_model(model)
    full = [p.key for p in contract.measurements() if p.dtype in ("float", "bool")]
    bools = {p.key for p in contract.measurements() if p.dtype == "bool"}
    reg = model.registry
    columns = [f"{d.id}.p_limit_mw" for d in reg.of_type(PvSystem)]
    columns += [f"{d.id}.q_set_mvar" for d in reg.of_type(PvSystem)]
    columns += [f"{d.id}.p_set_mw" for d in reg.of_type(Bess)]
    columns += [f"{d.id}.q_set_mvar" for d in reg.of_type(Bess)]
    sites = {s.id: [f"{c}.p_set_kw" for c in s.connector_ids()]
             for s in reg.of_type(EvChargingSite)}
    columns += [f"{s}.p_site_limit_kw" for s in sites]
    setpoints = [tuple(c.split(".", 1)) for c in columns]
    setpoints += [(s, p) for s, points in sites.items() for p in points]
    return Load(polled=polled_points(contract, model), full=full, setpoints=setpoints,
                schedule_columns=columns, sites=sites, bools=bools)


def _values(keys, bools, rng: np.random.Generator, occupied: float = 0.3) -> dict:
    """Readings as a field gives them: switches and flags 0/1, empty connectors 0, the rest
    varying."""
    out = {}
    draws = rng.random(len(keys))
    noise = rng.normal(size=len(keys))
    for (device, point), u, x in zip(keys, draws, noise, strict=True):
        if (device, point) in bools:
            out[(device, point)] = float(u < 0.9)
        elif "." in point and u > occupied:  # a connector with no vehicle
            out[(device, point)] = 0.0
        elif point.endswith("departure_s"):
            out[(device, point)] = float(1.784e9 + int(u * 86400))
        else:
            out[(device, point)] = float(abs(x) * 3.0)
    return out


def _import(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _session_names(module, fields: dict) -> dict:
    """``fields`` under the names ``module``'s StoredSession takes: EvSession's (id, site,
    energy_kwh) since the field floor's EV codec, the stored columns' before."""
    if "site" in module.StoredSession.__dataclass_fields__:
        return fields
    old = {"id": "session_id", "site": "charger", "energy_kwh": "energy_requested_kwh"}
    return {old[k]: v for k, v in fields.items()}


def replay(module, db: Path, load: Load, days: int, *, refusing: bool, new_api: bool
           ) -> tuple[float, float]:
    """Drive ``module``'s Historian through ``days`` simulated days; (wall s, longest
    maintain s)."""
    rng = np.random.default_rng(0)
    h = module.Historian(db)
    if new_api:
        h.begin_run("start", endpoint="opc.tcp://127.0.0.1:4840")
        h.record_event(None, "connected", endpoint="opc.tcp://127.0.0.1:4840")
    else:
        h.record_event(pd.Timestamp.now(tz="Asia/Shanghai"), "connected",
                       endpoint="opc.tcp://127.0.0.1:4840")
    refused = set(load.setpoints[:1]) | {(load.setpoints[0][0], "q_set_mvar")} if refusing \
        else set()

    def write(t, keys, reason):
        results = [(d, p, 1.0, "BadNoCommunication" if (d, p) in refused else "Good")
                   for d, p in keys]
        bad = [r for r in results if r[3] != "Good"]
        if new_api:
            h.record_commands(t, results, reason=reason)
        elif reason != "heartbeat" or bad:  # as the old runtime did
            h.record_commands(t, results)
        if bad:
            h.record_event(t, "write_refused", reason=reason,
                           points=[f"{d}.{p}" for d, p, _, _ in bad][:20])

    session = 0
    sites = list(load.sites)
    longest_maintain = 0.0
    wall = time.perf_counter()
    for day in range(days):
        day0 = START + pd.Timedelta(days=day)
        for plan in range(2):  # today's plan at start-up, tomorrow's from 17:00
            t = day0 + pd.Timedelta(hours=17 * plan)
            table = pd.DataFrame(rng.normal(size=(96, len(load.schedule_columns))),
                                 index=pd.date_range(t.floor("D"), periods=96, freq="15min"),
                                 columns=load.schedule_columns)
            h.record_schedule(t, "dayahead", table)
            h.record_decision(t, "dayahead", {"status": "optimal", "fallback": None,
                                              "kpis": {"ac_validated": True, "peak_mw": 30.1},
                                              "day": str((t + pd.Timedelta(days=plan)).date())})
        resplit_at = set(rng.choice(1440, size=RESPLITS_PER_DAY, replace=False).tolist())
        ends_at = set(rng.choice(1440, size=ENDS_PER_DAY, replace=False).tolist())
        for minute in range(1440):
            t = day0 + pd.Timedelta(minutes=minute)
            if minute % 15 == 0:  # a control step
                full = _values(load.full, load.bools, rng)
                h.record_measurements(t, full, {})
                plugged = [module.StoredSession(**_session_names(module, {
                    "id": f"s{day}-{(session + i) % SESSIONS_PER_DAY}", "site": sites[i % 12],
                    "energy_kwh": 30.0}),
                    connector=f"c{i}", arrival=t, departure=t + pd.Timedelta(hours=2),
                    max_kw=7.0, energy_delivered_kwh=float(i))
                    for i in range(120)]
                session += 9
                h.upsert_sessions(t, plugged)
                write(t, load.setpoints, "mpc")
                table = pd.DataFrame(rng.normal(size=(16, len(load.schedule_columns))),
                                     index=pd.date_range(t, periods=16, freq="15min"),
                                     columns=load.schedule_columns)
                h.record_schedule(t, "mpc", table)
                h.record_decision(t, "mpc", {
                    "time": t.isoformat(), "status": "optimal", "fallback": None,
                    "objective_cny": 1234.5, "terms_cny": {"energy": 1000.0, "ev": 234.5},
                    "solve_s": 0.4, "total_s": 0.6, "relinearisations": 1,
                    "ac_check": {"passed": True, "v_min_pu": 0.97, "violations": []},
                    "ev_shortfall_kwh": {}, "notes": [], "planned_import_mw": 25.0})
            else:
                h.record_measurements(t, _values(load.polled, load.bools, rng), {})
            if minute % 2 == 0:
                write(t, load.setpoints, "heartbeat")
            if minute in resplit_at:  # a vehicle plugged in or left: its site split again
                site = sites[minute % len(sites)]
                h.upsert_sessions(t, plugged[:10])
                for _ in range(round(RESPLIT_EVENTS_PER_DAY / RESPLITS_PER_DAY)):
                    h.record_event(t, "ev_resplit", site=site, sessions=3, p_kw=60.0,
                                   planned_kw=75.6, above_plan_kw=0.0)
                write(t, [(site, p) for p in load.sites[site][:12]] + [(site, "p_site_limit_kw")],
                      "ev_resplit")
            if minute in ends_at:
                ended = plugged[minute % 120]
                h.record_session_end(t, getattr(ended, "id", None) or ended.session_id, 29.5)
            if new_api and minute % 60 == 59:  # once a simulated hour
                t0 = time.perf_counter()
                h.maintain(t)
                longest_maintain = max(longest_maintain, time.perf_counter() - t0)
    wall = time.perf_counter() - wall
    h.close()
    _checkpoint(db)
    return wall, longest_maintain


def _checkpoint(db: Path) -> None:
    with contextlib.closing(sqlite3.connect(db)) as c:
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def file_bytes(db: Path) -> int:
    return sum(os.path.getsize(p) for p in (db, Path(f"{db}-wal")) if p.exists())


def table_bytes(db: Path) -> dict[str, int]:
    """Bytes per table, its indexes counted with it."""
    with contextlib.closing(sqlite3.connect(db)) as c:
        owner = dict(c.execute("SELECT name, tbl_name FROM sqlite_master"))
        out: dict[str, int] = {}
        for name, size in c.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name"):
            table = owner.get(name, name)
            out[table] = out.get(table, 0) + size
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def downsampled(db: Path, days: int) -> tuple[int, float, int]:
    """In a copy of ``db``, everything due at once (8 days on: every raw frame, every command):
    the bytes of the 15-minute statistics made, the longest maintain pass (s), the passes."""
    from gridctl.historian import Historian, HistorianSettings

    copy = db.with_name("downsampled.sqlite")
    with contextlib.closing(sqlite3.connect(db)) as src, contextlib.closing(
            sqlite3.connect(copy)) as dst:
        src.backup(dst)
    now = START + pd.Timedelta(days=days + 8)
    longest, passes = 0.0, 0
    with Historian(copy, settings=HistorianSettings(commands_days=1)) as h:
        while True:
            t0 = time.perf_counter()
            done = h.maintain(now)
            longest = max(longest, time.perf_counter() - t0)
            passes += 1
            if not (done.frames_downsampled or done.batches_deleted):
                break
    return table_bytes(copy).get("measurement_means", 0), longest, passes


def main(args: argparse.Namespace) -> None:
    root = Path(__file__).resolve().parents[1]
    work = Path(tempfile.mkdtemp())
    old_source = subprocess.run(["git", "show", f"{args.before_ref}:gridctl/historian.py"],
                                cwd=root, capture_output=True, text=True, check=True).stdout
    (work / "historian_before.py").write_text(old_source, encoding="utf-8")
    before = _import(work / "historian_before.py", "historian_before")
    import gridctl.historian as after

    load = load_of_model()
    print(f"Jiuke Oasis: {len(load.polled)} polled points, {len(load.full)} numeric "
          f"measurements, {len(load.setpoints)} setpoints; {args.days} simulated day(s)")
    for refusing in (False, True):
        case = "one PV inverter refusing" if refusing else "every write accepted"
        figures = {}
        for label, module, new_api in (("before", before, False), ("after", after, True)):
            db = work / f"{label}-{int(refusing)}.sqlite"
            wall, longest = replay(module, db, load, args.days, refusing=refusing,
                                   new_api=new_api)
            figures[label] = (file_bytes(db) / args.days, wall, longest, db)
        b, a = figures["before"][0], figures["after"][0]
        print(f"\n{case}: before {b / 1e6:.1f} MB per simulated day, after {a / 1e6:.2f} MB "
              f"({b / a:.0f}x smaller); replay wall {figures['before'][1]:.1f} s before, "
              f"{figures['after'][1]:.1f} s after (longest hourly maintain "
              f"{figures['after'][2] * 1000:.0f} ms)")
        for label in ("before", "after"):
            parts = ", ".join(f"{k} {v / 1e6 / args.days:.2f}"
                              for k, v in table_bytes(figures[label][3]).items() if v > 20_000)
            print(f"  {label} MB/day by table: {parts}")
        db = figures["after"][3]
        shares = table_bytes(db)
        means, longest, passes = downsampled(db, args.days)
        means /= args.days
        raw = shares.get("measurement_frames", 0) / args.days
        commands = (shares.get("commands", 0) + shares.get("write_batches", 0)) / args.days
        kept = sum(v for k, v in shares.items() if k in (
            "events", "decisions", "schedules", "ev_sessions")) / args.days
        print(f"  a day's raw measurements {raw / 1e6:.2f} MB become {means / 1e6:.2f} MB of "
              "15-minute statistics (mean, min, max, samples); with all of it due at once, "
              f"{passes} maintain passes of at most {longest * 1000:.0f} ms each")
        print(f"  at the default retention (7 days raw, 400 days of statistics, 90 days of "
              f"commands): {(7 * raw + 400 * means + 90 * commands) / 1e6:.0f} MB, plus "
              f"{kept * 365 / 1e6:.0f} MB a year of events, decisions, schedules and sessions")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--days", type=int, default=1)
    ap.add_argument("--before-ref", default="f026690~1",
                    help="git ref of the historian before (default: the last before schema 2)")
    main(ap.parse_args())
