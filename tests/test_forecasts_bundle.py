"""The forecast bundle of a model: shape, determinism, horizon independence, files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandapower as pp
import pandas as pd
import pytest

from forecasts import (
    ForecastInputError,
    Tariff,
    build,
    read_bundle,
    read_carbon_csv,
    write_bundle,
)
from network_models.model import GridModel, Site
from network_models.registry import (
    CustomerClass,
    DeviceRegistry,
    ElementRef,
    ElementTable,
    EvChargingSite,
    EvSiteType,
    Load,
    PvSystem,
)

TZ = "Asia/Shanghai"


def small_model() -> GridModel:
    """Two buses, a PV roof of each orientation, a load of each class, an EV site of each type."""
    net = pp.create_empty_network()
    b0 = pp.create_bus(net, vn_kv=10.0, name="B0")
    b1 = pp.create_bus(net, vn_kv=10.0, name="B1")
    pp.create_ext_grid(net, b0)
    pp.create_line(net, b0, b1, 0.5, "NA2XS2Y 1x240 RM/25 12/20 kV", name="L1")
    devices: list = [
        PvSystem(id="pv_south", bus="B1", element=ElementRef(table=ElementTable.SGEN, index=0),
                 p_mwp=1.0, s_mva=1.1),
        PvSystem(id="pv_east", bus="B1", element=ElementRef(table=ElementTable.SGEN, index=1),
                 p_mwp=0.5, s_mva=0.5, tilt_deg=10.0, azimuth_deg=90.0),
    ]
    devices += [
        Load(id=f"load_{c.value}", bus="B1",
             element=ElementRef(table=ElementTable.LOAD, index=k), customer_class=c,
             p_peak_mw=1.0 + k, power_factor=0.95)
        for k, c in enumerate(CustomerClass)
    ]
    sizes = {EvSiteType.OFFICE_AC: (10, 7.0), EvSiteType.RESIDENTIAL_AC: (10, 7.0),
             EvSiteType.PUBLIC_DC: (4, 120.0), EvSiteType.BUS_DEPOT: (4, 150.0)}
    devices += [
        EvChargingSite(id=f"ev_{t.value}", bus="B1",
                       element=ElementRef(table=ElementTable.LOAD, index=10 + k), site_type=t,
                       n_connectors=n, p_connector_kw=kw, p_site_max_kw=n * kw)
        for k, (t, (n, kw)) in enumerate(sizes.items())
    ]
    return GridModel(name="small", net=net, registry=DeviceRegistry(tuple(devices)),
                     site=Site(name="Jiuting", latitude_deg=31.13, longitude_deg=121.32),
                     source="test")


MODEL = small_model()


@pytest.fixture(scope="module")
def july_day():
    return build(MODEL, "2026-07-15", "24h", seed=4, weather="partly_cloudy")


def test_bundle_has_a_column_per_device_on_a_shanghai_15_minute_index(july_day) -> None:
    b = july_day
    assert str(b.index.tz) == TZ
    assert len(b.index) == 96 and b.step_h == 0.25
    assert b.index[0] == pd.Timestamp("2026-07-15", tz=TZ)
    assert (np.diff(b.index.asi8) == 15 * 60 * 10**9).all()
    assert list(b.pv_p_mw.columns) == ["pv_south", "pv_east"]
    assert list(b.load_p_mw.columns) == [f"load_{c.value}" for c in CustomerClass]
    assert list(b.load_q_mvar.columns) == list(b.load_p_mw.columns)
    for series in (b.price_cny_per_kwh, b.carbon_kg_per_kwh, b.temperature_c):
        assert series.index.equals(b.index) and series.notna().all()
    assert b.issued_at is None
    assert b.export_price_cny_per_kwh is None


def test_bundle_prices_carbon_and_sessions_cover_the_horizon(july_day) -> None:
    b = july_day
    assert b.price_cny_per_kwh.loc["2026-07-15 13:00"] == pytest.approx(0.65 * 1.8 * 1.25)
    assert (b.carbon_kg_per_kwh == 0.42).all()
    assert b.ev_sessions
    assert all(s.overlaps(b.start, b.end) for s in b.ev_sessions)
    assert {s.site for s in b.ev_sessions} == {s.id for s in MODEL.registry.ev_sites}


def test_a_shed_load_and_a_held_site_leave_the_bundle_and_nothing_else_does(july_day) -> None:
    cut = july_day.without(loads=["load_office"], sites=["ev_public_dc"])
    assert (cut.load_p_mw["load_office"] == 0).all() and (cut.load_q_mvar["load_office"] == 0).all()
    others = [c for c in july_day.load_p_mw.columns if c != "load_office"]
    assert cut.load_p_mw[others].equals(july_day.load_p_mw[others])
    assert {s.site for s in cut.ev_sessions} == (
        {s.site for s in july_day.ev_sessions} - {"ev_public_dc"})
    assert (july_day.load_p_mw["load_office"] > 0).any()  # the original is left as it was
    assert july_day.without() is july_day


def test_same_seed_gives_the_same_bundle(july_day) -> None:
    again = build(MODEL, "2026-07-15", "24h", seed=4, weather="partly_cloudy")
    pd.testing.assert_frame_equal(again.pv_p_mw, july_day.pv_p_mw)
    pd.testing.assert_frame_equal(again.load_p_mw, july_day.load_p_mw)
    pd.testing.assert_series_equal(again.temperature_c, july_day.temperature_c)
    assert again.ev_sessions == july_day.ev_sessions


def test_another_seed_gives_another_bundle(july_day) -> None:
    other = build(MODEL, "2026-07-15", "24h", seed=5, weather="partly_cloudy")
    assert not other.pv_p_mw.equals(july_day.pv_p_mw)
    assert not other.load_p_mw.equals(july_day.load_p_mw)
    assert other.ev_sessions != july_day.ev_sessions


def test_a_day_is_the_same_whatever_the_horizon_and_start(july_day) -> None:
    two_days = build(MODEL, "2026-07-14 06:00", "48h", seed=4, weather="partly_cloudy")
    part = two_days.window(july_day.start, july_day.end)
    pd.testing.assert_frame_equal(part.pv_p_mw, july_day.pv_p_mw, check_freq=False)
    pd.testing.assert_frame_equal(part.load_p_mw, july_day.load_p_mw, check_freq=False)
    pd.testing.assert_series_equal(part.temperature_c, july_day.temperature_c, check_freq=False)
    assert part.ev_sessions == july_day.ev_sessions


def test_hourly_steps_are_supported() -> None:
    b = build(MODEL, "2026-07-15", "2D", "1h", seed=0)
    assert len(b.index) == 48 and b.step_h == 1.0
    assert b.pv_p_mw["pv_south"].max() > 0.5


def test_tariff_options_reach_the_bundle() -> None:
    b = build(MODEL, "2026-07-15", "1h", tariff=Tariff(flat_price_cny_per_kwh=0.7,
                                                        export_price_cny_per_kwh=0.4,
                                                        demand_charge_cny_per_kw_month=40.0))
    assert b.price_cny_per_kwh.iloc[0] == pytest.approx(0.7 * 0.4)
    assert b.export_price_cny_per_kwh is not None and (b.export_price_cny_per_kwh == 0.4).all()
    assert b.demand_charge_cny_per_kw_month == 40.0


def test_simbench_load_source_gives_real_shapes() -> None:
    b = build(MODEL, "2026-07-15", "24h", load_source="simbench")
    assert (b.load_p_mw >= 0).all().all() and b.load_p_mw.std().min() > 0
    assert "SimBench" in b.provenance["load"]


def test_measured_load_csv_replaces_the_synthetic_load(tmp_path) -> None:
    idx = pd.date_range("2026-07-15", periods=97, freq="15min", tz=TZ)
    frame = pd.DataFrame({ld.id: 0.5 for ld in MODEL.registry.loads}, index=idx)
    frame.index = [t.isoformat() for t in idx]
    frame.to_csv(tmp_path / "load.csv", index_label="time")
    b = build(MODEL, "2026-07-15", "24h", load_csv=tmp_path / "load.csv")
    assert (b.load_p_mw == 0.5).all().all()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"start": "2026-07-15 00:07"}, "start"),
        ({"start": "the fifteenth"}, "start"),
        ({"step": "7min"}, "step"),
        ({"horizon": "-1h"}, "horizon"),
        ({"horizon": "20min"}, "horizon"),
        ({"weather": "foggy"}, "weather"),
        ({"load_source": "guess"}, "load_source"),
        ({"seed": -1}, "seed"),
    ],
)
def test_bad_arguments_are_refused_naming_the_argument(kwargs: dict, field: str) -> None:
    args = {"start": "2026-07-15", "horizon": "24h", "step": "15min", **kwargs}
    with pytest.raises(ForecastInputError) as err:
        build(MODEL, args.pop("start"), args.pop("horizon"), args.pop("step"), **args)
    assert err.value.field == field


def test_written_bundle_reads_back_equal(tmp_path, july_day) -> None:
    written = write_bundle(july_day, tmp_path / "out", plot=False)
    assert {p.name for p in written} == {"pv_p_mw.csv", "load_p_mw.csv", "load_q_mvar.csv",
                                         "series.csv", "ev_sessions.csv", "bundle.json"}
    back = read_bundle(tmp_path / "out", MODEL)
    pd.testing.assert_frame_equal(back.pv_p_mw, july_day.pv_p_mw, rtol=1e-5, check_freq=False)
    pd.testing.assert_frame_equal(back.load_q_mvar, july_day.load_q_mvar, rtol=1e-5,
                                  check_freq=False)
    pd.testing.assert_series_equal(back.price_cny_per_kwh, july_day.price_cny_per_kwh,
                                   check_freq=False)
    assert back.ev_sessions == july_day.ev_sessions
    assert back.step_h == 0.25 and back.issued_at is None


def test_a_failed_write_leaves_nothing_behind(tmp_path, july_day, monkeypatch) -> None:
    import forecasts.bundle_io as bundle_io

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(bundle_io, "sessions_frame", broken)
    with pytest.raises(RuntimeError):
        write_bundle(july_day, tmp_path / "new", plot=False)
    assert not (tmp_path / "new").exists()
    existing = tmp_path / "existing"
    existing.mkdir()
    with pytest.raises(RuntimeError):
        write_bundle(july_day, existing, plot=False)
    assert list(existing.iterdir()) == []


def test_a_bad_session_file_stops_the_build_before_anything(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text("sessionID,stationID,connectionTime,disconnectTime,kWhDelivered\n"
                    "a,ev_office_ac,2026-07-15 08:00,2026-07-15 07:00,5\n")
    with pytest.raises(ForecastInputError, match="not after arrival") as err:
        build(MODEL, "2026-07-15", ev_sessions=path)
    assert (err.value.source, err.value.row, err.value.field) == (str(path), 2, "disconnectTime")


def test_measured_pv_power_csv_replaces_the_pv_model(tmp_path) -> None:
    idx = pd.date_range("2026-07-15", periods=97, freq="15min", tz=TZ)
    rows = {"time": [t.isoformat() for t in idx], "pv_south": 0.3, "pv_east": 0.1}
    pd.DataFrame(rows).to_csv(tmp_path / "pv.csv", index=False)
    b = build(MODEL, "2026-07-15", "24h", pv_csv=tmp_path / "pv.csv")
    assert (b.pv_p_mw["pv_south"] == 0.3).all() and (b.pv_p_mw["pv_east"] == 0.1).all()


def test_a_carbon_series_from_csv_reaches_the_bundle(tmp_path) -> None:
    (tmp_path / "c.csv").write_text("time,carbon_kg_per_kwh\n2026-07-15 00:00,0.5\n"
                                    "2026-07-15 12:00,0.3\n")
    b = build(MODEL, "2026-07-15", "24h", carbon_kg_per_kwh=read_carbon_csv(tmp_path / "c.csv"))
    assert b.carbon_kg_per_kwh.loc["2026-07-15 11:45"] == 0.5
    assert b.carbon_kg_per_kwh.loc["2026-07-15 12:00"] == 0.3


def test_jiuke_oasis_day_has_every_device_and_over_500_ev_sessions(jiuke: GridModel) -> None:
    b = build(jiuke, "2026-07-18", "24h", seed=0, weather="mixed")  # a Saturday
    registry = jiuke.registry
    assert list(b.pv_p_mw.columns) == [pv.id for pv in registry.pv]
    assert list(b.load_p_mw.columns) == [ld.id for ld in registry.loads]
    assert (b.pv_p_mw.max() <= pd.Series({pv.id: pv.s_mva for pv in registry.pv})).all()
    arriving = [s for s in b.ev_sessions if s.arrival >= b.start]
    assert len(arriving) >= 500
    assert all(s.is_feasible() for s in b.ev_sessions)
