"""Retention: raw measurements become 15-minute statistics, old rows go, the file stops growing."""

from __future__ import annotations

import math
import os
import sqlite3

import numpy as np
import pandas as pd
import pytest

from gridctl.historian import Historian, HistorianError, HistorianSettings, StoredSession

START = pd.Timestamp("2026-07-15 00:00", tz="Asia/Shanghai")
MINUTE = pd.Timedelta(minutes=1)


def _reading(k: int) -> tuple[dict, dict]:
    """Minute ``k``'s poll: a ramp, a switch flapping, a battery whose SoC is NaN every 15th
    minute and not read (bad status) the minute after."""
    values = {("M", "v_pu"): float(k), ("S", "closed"): float(k % 2),
              ("B", "soc_frac"): math.nan if k % 15 == 0 else 0.5}
    status = {("B", "soc_frac"): "BadNoCommunication"} if k % 15 == 1 else {}
    return values, status


def _record_days(h: Historian, days: int) -> None:
    for k in range(days * 1440):
        t = START + k * MINUTE
        h.record_measurements(t, *_reading(k))
        if k % 15 == 0:  # a control step's full read: more points, once a step
            h.record_measurements(t, {("X", "p_mw"): float(k // 15), ("M", "v_pu"): float(k)})


def test_raw_measurements_past_raw_days_become_15_minute_statistics(tmp_path):
    settings = HistorianSettings(raw_days=1, means_days=3, max_rows_per_pass=100_000)
    with Historian(tmp_path / "h.sqlite", settings=settings) as h:
        _record_days(h, 2)
        now = START + pd.Timedelta(days=2)
        done = h.maintain(now)
        assert done.frames_downsampled == 1440 + 96  # the first day: polls and steps
        assert h.maintain(now).frames_downsampled == 0  # nothing more is due
        means = h.measurement_means()
        raw = h.measurements()
        table = h.measurement_table(run=h.runs()[0].id)
    cutoff = START + pd.Timedelta(days=1)
    # 96 buckets of the first day per point, each at the start of its 15 minutes
    m = means[means.point == "v_pu"].reset_index(drop=True)
    assert list(m.t) == list(pd.date_range(START, cutoff, freq="15min", inclusive="left"))
    b = np.arange(96)
    # the ramp: polls 15b..15b+14 and the step's reading of 15b again
    expected_mean = (np.array([sum(range(15 * i, 15 * i + 15)) for i in b]) + 15 * b) / 16
    np.testing.assert_allclose(m["mean"], expected_mean, rtol=0, atol=1e-12)
    assert list(m["min"]) == list(15.0 * b) and list(m["max"]) == list(15.0 * b + 14)
    assert set(m["samples"]) == {16}
    s = means[means.point == "closed"]
    assert list(s["mean"]) == [(7 if i % 2 == 0 else 8) / 15 for i in b]  # odd starts: 8 ones
    soc = means[means.point == "soc_frac"]  # NaN and a bad status are not samples
    assert set(soc["samples"]) == {13} and set(soc["mean"]) == {0.5}
    x = means[means.point == "p_mw"]
    assert list(x["mean"]) == list(b.astype(float)) and set(x["samples"]) == {1}
    # nothing newer is touched: every reading of the second day is there as recorded
    assert raw.t.min() == cutoff and len(raw[raw.point == "v_pu"]) == 1440 + 96
    ramp = raw[(raw.point == "v_pu")]
    expected_ramp = sorted([float(k) for k in range(1440, 2880)]
                           + [float(k) for k in range(1440, 2880, 15)])
    assert sorted(ramp["value"]) == expected_ramp
    # the run's table: the means first, then the raw readings
    assert table.index[0] == START and table.index[95] == cutoff - pd.Timedelta(minutes=15)
    assert table.index[96] == cutoff and table["M.v_pu"].iloc[0] == expected_mean[0]


def test_a_pass_does_bounded_work_and_repeated_passes_end_where_one_large_pass_does(tmp_path):
    bounded = HistorianSettings(raw_days=1, max_rows_per_pass=100)
    unbounded = HistorianSettings(raw_days=1, max_rows_per_pass=1_000_000)
    now = START + pd.Timedelta(days=2)
    with Historian(tmp_path / "a.sqlite", settings=bounded) as a, \
            Historian(tmp_path / "b.sqlite", settings=unbounded) as b:
        _record_days(a, 2)
        _record_days(b, 2)
        passes = []
        while (n := a.maintain(now).frames_downsampled) > 0:
            passes.append(n)
        b.maintain(now)
        assert max(passes) <= 100 + 16  # whole buckets: one bucket over at most
        assert sum(passes) == 1440 + 96 and len(passes) >= 14
        pd.testing.assert_frame_equal(a.measurement_means(), b.measurement_means())
        pd.testing.assert_frame_equal(a.measurements(), b.measurements())


def test_commands_go_after_commands_days_and_events_decisions_schedules_sessions_stay(tmp_path):
    settings = HistorianSettings(raw_days=None, commands_days=2)
    table = pd.DataFrame({"BESS_1.p_set_mw": [0.5]}, index=[START])
    with Historian(tmp_path / "h.sqlite", settings=settings) as h:
        for hour in range(4 * 24):
            t = START + pd.Timedelta(hours=hour)
            h.record_commands(t, [("BESS_1", "p_set_mw", float(hour), "Good")] * 3, reason="mpc")
            h.record_commands(t, [("BESS_1", "p_set_mw", float(hour), "Bad")], reason="heartbeat")
            h.record_event(t, "tick", hour=hour)
            h.record_decision(t, "mpc", {"status": "optimal"})
            h.record_schedule(t, "mpc", table)
            h.upsert_sessions(t, [StoredSession(
                id=f"s{hour}", site="EV", connector="c1", arrival=t, departure=t,
                energy_kwh=1.0, max_kw=7.0, energy_delivered_kwh=0.5)])
        now = START + pd.Timedelta(days=4)
        done = h.maintain(now)
        assert done.batches_deleted == 2 * 48 and done.commands_deleted == 4 * 48
        batches = h.write_batches()
        commands = h.commands()
        assert pd.to_datetime(batches.t).min() == now - pd.Timedelta(days=2)
        assert len(batches) == 2 * 48 and len(commands) == 4 * 48
        assert sorted(set(commands.value)) == [float(x) for x in range(48, 96)]
        assert len(h.events("tick")) == 96 and len(h.decisions("mpc")) == 96
        assert len(h.sessions()) == 96 and h.runs()[0].rows["schedules"] == 96


def test_statistics_go_after_means_days(tmp_path):
    settings = HistorianSettings(raw_days=1, means_days=2, max_rows_per_pass=1_000_000)
    with Historian(tmp_path / "h.sqlite", settings=settings) as h:
        _record_days(h, 4)
        now = START + pd.Timedelta(days=4)
        h.maintain(now)
        means = h.measurement_means()
        raw = h.measurements()
    assert means.t.min() == now - pd.Timedelta(days=2)  # older statistics deleted
    assert means.t.max() == now - pd.Timedelta(days=1, minutes=15)
    assert raw.t.min() == now - pd.Timedelta(days=1)


def _file_bytes(path) -> int:
    return sum(os.path.getsize(p) for p in (path, f"{path}-wal") if os.path.exists(p))


def _a_day(h: Historian, day: int, rng: np.random.Generator, maintain: bool) -> None:
    """A day of a small runtime: a poll of 200 points a minute, a control step of 1,500 points
    and 300 setpoints every 15 min, a heartbeat of 300 setpoints every 2 min (one refused)."""
    polled = [(f"P{i}", "p_mw") for i in range(200)]
    full = [(f"F{i}", "v_pu") for i in range(1500)]
    setpoints = [(f"D{i}", "p_set_kw") for i in range(300)]
    for k in range(1440):
        t = START + pd.Timedelta(days=day) + k * MINUTE
        h.record_measurements(t, dict(zip(polled, rng.normal(size=200), strict=True)))
        if k % 15 == 0:
            h.record_measurements(t, dict(zip(full, rng.normal(size=1500), strict=True)))
            h.record_commands(t, [(*p, 1.0, "Good") for p in setpoints], reason="mpc")
            h.record_event(t, "step")
        if k % 2 == 0:
            h.record_commands(t, [(*p, 1.0, "Good" if i else "Bad")
                                  for i, p in enumerate(setpoints)], reason="heartbeat")
        if maintain and k % 60 == 59:  # once a simulated hour, as the runtime does
            h.maintain(t)


def test_the_file_stops_growing_once_every_retention_window_is_full(tmp_path):
    settings = HistorianSettings(raw_days=1, means_days=2, commands_days=1)
    kept, unkept = tmp_path / "kept.sqlite", tmp_path / "unkept.sqlite"
    rng = np.random.default_rng(0)
    sizes, sizes_unkept = [], []
    with Historian(kept, settings=settings) as h, Historian(unkept) as u:
        for day in range(7):
            _a_day(h, day, rng, maintain=True)
            _a_day(u, day, rng, maintain=False)
            sizes.append(_file_bytes(kept))
            sizes_unkept.append(_file_bytes(unkept))
        free = h._db.execute("PRAGMA freelist_count").fetchone()[0]
    # full after 3 days (1 raw + 2 of statistics): from then on flat, within a tenth
    assert sizes[6] <= 1.1 * sizes[3], sizes
    assert sizes_unkept[6] >= 1.5 * sizes_unkept[3]  # without maintenance it grows
    assert sizes[6] < 0.6 * sizes_unkept[6]
    assert free <= settings.max_vacuum_pages  # deleted pages went back to the disk
    with sqlite3.connect(kept) as c:
        assert c.execute("PRAGMA quick_check").fetchone()[0] == "ok"


@pytest.mark.parametrize(("field", "value"), [("raw_days", 0), ("means_days", -1.0),
                                              ("commands_days", math.inf),
                                              ("max_rows_per_pass", 0)])
def test_a_retention_setting_out_of_range_is_refused_naming_it(field, value):
    with pytest.raises(HistorianError, match=field):
        HistorianSettings(**{field: value})


def test_statistics_kept_shorter_than_raw_measurements_are_refused():
    with pytest.raises(HistorianError, match=r"means_days.*at least"):
        HistorianSettings(raw_days=30, means_days=7)


def test_the_runtime_keeps_its_historian_by_the_settings_it_is_given(jiuke, tmp_path):
    from gridctl.runtime import ControllerRuntime, RuntimeConfig

    settings = HistorianSettings(raw_days=2, means_days=30, commands_days=10)
    runtime = ControllerRuntime(
        jiuke, RuntimeConfig(endpoint="opc.tcp://127.0.0.1:4840", db_path=tmp_path / "h.sqlite"),
        historian_settings=settings)
    try:
        assert runtime.historian.settings == settings
    finally:
        runtime.planner.close(final=True)
        runtime.historian.close()
