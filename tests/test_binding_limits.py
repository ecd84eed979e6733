"""Dispatch where the network binds: on small hand-made grids each limit is broken by uncontrolled
operation and held by the plan in AC, the binding element is named with its shadow price, and an
independent engine (pandapower's Newton-Raphson) agrees with power-grid-model on every plan.

Grids (built here, every figure chosen to make one limit bind):
- ``ring``: a closed 10 kV backbone loop S-A-B-S, a 3×95 mm² cable closing it at B, a DC hub at B;
- ``radial``: S - feeder F1 - R1 (MV load, DC hub) - F2 - R2 - 10/0.4 kV transformer T1 - LV1,
  with an LV cable to an office EV site (EVB) and one to a PV roof (PVB).
Loads are constant where nothing else matters; a load at the source bus sets the day's import
peak at noon, so the demand charge does not decide the evening and the limit does.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import numpy as np
import pandapower as pp
import pandas as pd
import pytest

from controllers.config import DispatchConfig
from controllers.dayahead import run_dayahead
from controllers.dispatch import Dispatcher
from forecasts.bundle import build
from forecasts.ev import EvSession
from network_models.model import GridModel, Site
from network_models.powerflow import PowerFlowEngine
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

DAY = dt.date(2026, 7, 15)  # July: peak price 08-15 and 18-21, flat 15-18 and 21-22
TZ = "Asia/Shanghai"
SITE = Site(name="Jiuting", latitude_deg=31.13, longitude_deg=121.32)
H = np.arange(96) / 4.0  # hour of each step's start
NOON = (H >= 9) & (H < 17)
LOAD, SGEN = ElementTable.LOAD, ElementTable.SGEN


def _at(table: ElementTable, index: int) -> ElementRef:
    return ElementRef(table=table, index=index)


def ring() -> GridModel:
    """A meshed 10 kV backbone: S-A and A-B of 3×240 mm², B-S of 3×95 mm² closing the loop."""
    net = pp.create_empty_network()
    s, a, b = (pp.create_bus(net, 10.0, name=n) for n in ("S", "A", "B"))
    pp.create_ext_grid(net, s, name="grid")
    big, small = "NA2XS2Y 1x240 RM/25 6/10 kV", "NA2XS2Y 1x95 RM/25 6/10 kV"
    pp.create_line(net, s, a, 2.0, big, name="BB_S_A")
    pp.create_line(net, a, b, 1.0, big, name="BB_A_B")
    pp.create_line(net, b, s, 2.0, small, name="BB_B_S")
    for bus, name in ((a, "load_A"), (b, "load_B"), (b, "ev_hub"), (s, "load_S")):
        pp.create_load(net, bus, 0.0, name=name)
    # the registry's peaks are the planner's nominal ones; the day's loads exceed load_B's
    devices = (
        Load(id="load_A", bus="A", element=_at(LOAD, 0), customer_class=CustomerClass.OFFICE,
             p_peak_mw=4.0),
        Load(id="load_B", bus="B", element=_at(LOAD, 1), customer_class=CustomerClass.COMMERCE,
             p_peak_mw=3.0),
        EvChargingSite(id="ev_hub", bus="B", element=_at(LOAD, 2),
                       site_type=EvSiteType.PUBLIC_DC, n_connectors=20, p_connector_kw=120.0,
                       p_site_max_kw=2400.0),
        Load(id="load_S", bus="S", element=_at(LOAD, 3),
             customer_class=CustomerClass.DATA_CENTRE, p_peak_mw=6.0),
    )
    return GridModel(name="ring", net=net, registry=DeviceRegistry(devices), site=SITE,
                     source="test", backbone_lines=("BB_S_A", "BB_A_B", "BB_B_S"))


def radial(
    *,
    feeder_max_i_ka: float = 0.249,
    trafo: str = "0.63 MVA 10/0.4 kV",
    ev_cable_km: float = 0.05,
    pv_cable_km: float = 0.05,
    lv_parallel: int = 3,
    pv_mwp: float = 0.25,
) -> GridModel:
    """An open-loop feeder down to one LV network with an EV site and a PV roof on LV cables."""
    net = pp.create_empty_network()
    s, r1, r2 = (pp.create_bus(net, 10.0, name=n) for n in ("S", "R1", "R2"))
    lv, evb, pvb = (pp.create_bus(net, 0.4, name=n) for n in ("LV1", "EVB", "PVB"))
    pp.create_ext_grid(net, s, name="grid")
    mv = "NA2XS2Y 1x95 RM/25 6/10 kV"
    f1 = pp.create_line(net, s, r1, 3.0, mv, name="F1")
    net.line.at[f1, "max_i_ka"] = feeder_max_i_ka
    pp.create_line(net, r1, r2, 1.0, mv, name="F2")
    pp.create_transformer(net, r2, lv, trafo, name="T1")
    pp.create_line(net, lv, evb, ev_cable_km, "NAYY 4x150 SE", name="LV_EV", parallel=lv_parallel)
    pp.create_line(net, lv, pvb, pv_cable_km, "NAYY 4x150 SE", name="LV_PV", parallel=lv_parallel)
    for bus, name in ((r1, "load_R1"), (r1, "ev_dc"), (lv, "load_LV1"), (evb, "ev_office"),
                      (pvb, "load_PVB"), (s, "load_S")):
        pp.create_load(net, bus, 0.0, name=name)
    pp.create_sgen(net, pvb, 0.0, name="pv_roof")
    devices = (
        Load(id="load_R1", bus="R1", element=_at(LOAD, 0),
             customer_class=CustomerClass.LIGHT_INDUSTRY, p_peak_mw=1.5),
        EvChargingSite(id="ev_dc", bus="R1", element=_at(LOAD, 1),
                       site_type=EvSiteType.PUBLIC_DC, n_connectors=10, p_connector_kw=120.0,
                       p_site_max_kw=1200.0),
        Load(id="load_LV1", bus="LV1", element=_at(LOAD, 2),
             customer_class=CustomerClass.RESIDENTIAL, p_peak_mw=0.3),
        EvChargingSite(id="ev_office", bus="EVB", element=_at(LOAD, 3),
                       site_type=EvSiteType.OFFICE_AC, n_connectors=30, p_connector_kw=7.0,
                       p_site_max_kw=210.0),
        Load(id="load_PVB", bus="PVB", element=_at(LOAD, 4),
             customer_class=CustomerClass.RESIDENTIAL, p_peak_mw=0.05),
        # without reactive control: a linear loss model prices reactive power at the loss
        # slope of its linearisation point (see the report), which is not what is tested here
        PvSystem(id="pv_roof", bus="PVB", element=_at(SGEN, 0), p_mwp=pv_mwp,
                 s_mva=1.1 * pv_mwp, q_capable=False),
        Load(id="load_S", bus="S", element=_at(LOAD, 5), customer_class=CustomerClass.OFFICE,
             p_peak_mw=3.0),
    )
    return GridModel(name="radial", net=net, registry=DeviceRegistry(devices), site=SITE,
                     source="test")


def sessions(site: str, n: int, arrive: str, depart: str, kwh: float, kw: float):
    """``n`` vehicles at ``site`` arriving and leaving together (HH:MM on DAY)."""
    t0, t1 = (pd.Timestamp(f"{DAY} {x}", tz=TZ) for x in (arrive, depart))
    return [EvSession(id=f"{site}_{k}", site=site, connector=f"c{k + 1}", arrival=t0,
                      departure=t1, energy_kwh=kwh, max_kw=kw) for k in range(n)]


def day_bundle(model: GridModel, loads_mw: dict[str, np.ndarray], evs, weather: str):
    """The day's prices and PV from ``forecasts.build``, these loads (pf 0.95) and sessions."""
    b = build(model, DAY, "24h", seed=0, weather=weather, ev_sessions=evs)
    p = pd.DataFrame({k: np.broadcast_to(v, len(b.index)) for k, v in loads_mw.items()},
                     index=b.index)
    return replace(b, load_p_mw=p, load_q_mvar=p * np.tan(np.arccos(0.95)))


def _flat(x: float) -> np.ndarray:
    return np.full(96, x)


def case_backbone():
    m = ring()
    loads = {"load_A": np.where(NOON, 3.5, 2.5), "load_B": _flat(6.0),
             "load_S": np.where(NOON, 6.0, 1.0)}
    return m, day_bundle(m, loads, sessions("ev_hub", 20, "18:00", "22:00", 88, 120), "overcast")


def case_feeder():
    m = radial(feeder_max_i_ka=0.12)
    loads = {"load_R1": _flat(1.2), "load_LV1": _flat(0.05), "load_PVB": _flat(0.0),
             "load_S": np.where(NOON, 3.0, 1.0)}
    return m, day_bundle(m, loads, sessions("ev_dc", 10, "18:00", "22:00", 90, 120), "overcast")


def case_transformer():
    m = radial(trafo="0.25 MVA 10/0.4 kV")
    loads = {"load_R1": 0.5 + 1.0 * (H < 6), "load_LV1": _flat(0.12), "load_PVB": _flat(0.0),
             "load_S": _flat(0.0)}
    evs = sessions("ev_office", 30, "08:30", "17:30", 20, 7)
    return m, day_bundle(m, loads, evs, "overcast")


def case_undervoltage():
    m = radial(ev_cable_km=0.5, lv_parallel=2)
    loads = {"load_R1": 0.5 + 1.0 * (H < 6), "load_LV1": _flat(0.15), "load_PVB": _flat(0.0),
             "load_S": _flat(0.0)}
    evs = sessions("ev_office", 30, "08:30", "17:30", 20, 7)
    return m, day_bundle(m, loads, evs, "overcast")


def case_overvoltage():
    m = radial(pv_cable_km=0.8, lv_parallel=4, pv_mwp=0.5)
    loads = {"load_R1": _flat(0.5), "load_LV1": _flat(0.05), "load_PVB": _flat(0.02),
             "load_S": np.where(NOON, 3.0, 1.0)}
    return m, day_bundle(m, loads, [], "clear")


# case: (builder, the limit that must bind: element, kind)
CASES = {
    "backbone_cable_meshed": (case_backbone, "BB_B_S", "line_loading"),
    "feeder_cable_radial": (case_feeder, "F1", "line_loading"),
    "distribution_transformer": (case_transformer, "T1", "trafo_loading"),
    "lv_ev_site_undervoltage": (case_undervoltage, "EVB", "voltage_low"),
    "pv_midday_overvoltage": (case_overvoltage, "PVB", "voltage_high"),
}


@pytest.fixture(scope="module", params=list(CASES))
def case(request):
    build_case, element, kind = CASES[request.param]
    model, bundle = build_case()
    result = run_dayahead(model, DAY, bundle=bundle)
    return request.param, model, bundle, result, element, kind


def test_uncontrolled_breaks_the_limit_in_ac_and_the_plan_holds_every_limit(case):
    name, _, _, r, element, kind = case
    broken = {(v.element, v.kind) for v in r.baseline_ac.violations}
    assert (element, kind) in broken, (name, broken)
    assert not r.baseline_kpis["ac_validated"]
    assert r.kpis["plan"] == "optimal" and r.plan.record.status == "optimal"
    assert r.kpis["ac_validated"] and r.kpis["ac_violations"] == 0, r.plan.record.notes
    res = r.plan.ac.result
    assert res.converged.all()
    assert np.nanmin(res.vm_pu) >= 0.93 and np.nanmax(res.vm_pu) <= 1.07
    assert res.line_loading_pct.max() <= 100.0 and res.trafo_loading_pct.max(initial=0) <= 100.0


def test_the_binding_limit_is_named_with_its_times_and_a_positive_shadow_price(case):
    name, model, _, r, element, kind = case
    bound = {(b["element"], b["kind"]): b for b in r.plan.record.binding_constraints}
    assert (element, kind) in bound, (name, list(bound))
    b = bound[(element, kind)]
    assert b["times"] and len(b["times"]) == len(b["shadow_price"]) == len(b["limit"])
    assert all(p > 0 for p in b["shadow_price"])
    assert b["unit"] == ("CNY/pu" if kind.startswith("voltage") else "CNY/MVA")
    # in the decision record as written (JSON-ready)
    assert r.plan.record.to_dict()["binding_constraints"][0]["element"] == min(bound)[0]
    # where it binds, the AC solution sits at the limit the plan kept (within linearisation
    # error), not far inside it
    res, steps = r.plan.ac.result, r.bundle.index.get_indexer(pd.to_datetime(b["times"]))
    col = _column(model, res, element, kind)
    if kind.startswith("voltage"):
        gap = np.abs(res.vm_pu[steps, col] - np.asarray(b["limit"]))
        assert gap.max() < 2e-3
    else:
        table = res.line_loading_pct if kind == "line_loading" else res.trafo_loading_pct
        assert table[steps, col].min() > 95.0 and table[steps, col].max() <= 100.0


def test_every_session_is_served_or_its_shortfall_is_reported(case):
    _, _, bundle, r, _, _ = case
    assert r.kpis["ev_sessions"] == len(bundle.ev_sessions)
    # these grids can carry what the vehicles ask for once charging is shifted
    assert r.kpis["ev_energy_shortfall_mwh"] == 0
    assert r.plan.record.ev_shortfall_kwh == {}
    delivered = r.plan.schedule.ev_session_p_kw.sum(axis=0) * bundle.step_h
    for s in bundle.ev_sessions:
        assert delivered[s.id] == pytest.approx(s.energy_kwh, abs=1e-3)


def test_pandapower_newton_raphson_agrees_with_power_grid_model_on_the_plan(case):
    _, model, bundle, r, _, _ = case
    dispatcher = Dispatcher(model, steps=len(bundle.index), step_h=bundle.step_h)
    for schedule in (r.plan.schedule,):
        pgm = dispatcher.evaluate(bundle, schedule).result
        nr = dispatcher.evaluate(bundle, schedule, engine=PowerFlowEngine.PANDAPOWER).result
        assert str(pgm.engine) == "power_grid_model" and str(nr.engine) == "pandapower"
        assert nr.converged.all() and pgm.converged.all()
        assert np.abs(nr.vm_pu - pgm.vm_pu).max() < 1e-6
        assert np.abs(nr.line_loading_pct - pgm.line_loading_pct).max() < 1e-3
        assert np.abs(nr.trafo_loading_pct - pgm.trafo_loading_pct).max(initial=0) < 1e-3
    # and the plan's own check is the power-grid-model one these agree with
    assert np.array_equal(r.plan.ac.result.vm_pu, dispatcher.evaluate(bundle, r.plan.schedule)
                          .result.vm_pu, equal_nan=True)


def test_the_screen_re_adds_a_limit_it_left_out_and_re_linearisation_ends_within_its_limit():
    # the day's load at B is twice its registry peak, so the screen's extremes leave the closing
    # cable out; the AC check finds it overloaded, it is added back and the plan re-solved
    model, bundle = case_backbone()
    r = run_dayahead(model, DAY, bundle=bundle)
    rec = r.plan.record
    assert rec.limits_readded >= 1
    assert any("the screen had left out" in n for n in rec.notes)
    assert 1 <= rec.relinearisations <= DispatchConfig().max_relinearisations
    assert r.kpis["ac_validated"]


def test_re_linearisation_runs_when_the_first_plan_fails_in_ac_and_ends_within_its_limit():
    model, bundle = case_transformer()
    r = run_dayahead(model, DAY, bundle=bundle)
    rec = r.plan.record
    assert 1 <= rec.relinearisations <= DispatchConfig().max_relinearisations
    assert any("re-linearised around the AC solution" in n for n in rec.notes)
    assert r.kpis["ac_validated"]


def test_the_report_says_which_limit_bound_where_and_when(case):
    from gridctl.commands.dayahead import binding_notes

    _, _, _, r, element, kind = case
    lines = binding_notes(r.plan.record.binding_constraints)
    assert any(line.startswith(f"binding: {kind} at {element} in ") and "shadow price" in line
               for line in lines), lines
    assert binding_notes(()) == ["no network limit bound the plan"]


def test_a_grid_too_weak_for_the_sessions_holds_its_limit_and_reports_the_shortfall():
    # load at B all day leaves the backbone a few percent for the hub: the split's top-up would
    # serve the vehicles through an overloaded cable; the plan keeps the cable and says so
    model = ring()
    loads = {"load_A": _flat(4.0), "load_B": _flat(6.0), "load_S": _flat(0.0)}
    bundle = day_bundle(model, loads, sessions("ev_hub", 20, "18:00", "22:00", 88, 120),
                        "overcast")
    r = run_dayahead(model, DAY, bundle=bundle)
    assert not r.baseline_kpis["ac_validated"]
    assert r.kpis["ac_validated"], r.plan.record.notes
    assert r.kpis["ev_energy_short_by_grid_or_plan_mwh"] > 0.1
    assert r.kpis["ev_sessions_unservable"] == 0  # each alone could be served: the grid cannot
    assert sum(r.plan.record.ev_shortfall_kwh.values()) / 1000 == pytest.approx(
        r.kpis["ev_energy_shortfall_mwh"], abs=1e-3)
    assert any("split again within the plan's site power" in n for n in r.plan.record.notes)
    # no futile envelope raising: the plan itself fell short of the envelope
    assert r.plan.record.ev_envelopes_raised == 0


def test_curtails_pv_only_as_much_as_the_voltage_limit_needs():
    model, bundle = case_overvoltage()
    r = run_dayahead(model, DAY, bundle=bundle)
    cfg = DispatchConfig()
    assert r.kpis["pv_curtailed_mwh"] > 0
    # curtailed steps sit at the planning limit in AC: no more than needed was curtailed
    res = r.plan.ac.result
    col = _column(model, res, "PVB", "voltage_high")
    avail = bundle.pv_p_mw["pv_roof"].to_numpy()
    curtailed = avail - r.plan.schedule.pv_p_mw["pv_roof"].to_numpy() > 1e-4
    assert curtailed.any()
    assert res.vm_pu[curtailed, col].min() > cfg.v_max_pu - cfg.voltage_margin_pu - 2e-3
    # an inverter without reactive control is given no reactive setpoint (its q_set point
    # accepts 0 within 1e-9)
    q = r.plan.schedule.pv_q_mvar["pv_roof"].to_numpy()
    assert np.abs(q).max() < 1e-9
    assert model.registry["pv_roof"].point("q_set_mvar").accepts(float(q.max()))


def _column(model: GridModel, res, element: str, kind: str) -> int:
    """Where ``element``'s values are in a time-series result."""
    if kind.startswith("voltage"):
        return list(res.bus_index).index(model.bus_index(element))
    if kind == "line_loading":
        return list(res.line_index).index(model.line_index(element))
    return list(res.trafo_index).index(model.trafo_index(element))


def _late_mpc_step(model, bundle, now: str):
    from controllers.dayahead import sessions_at_start
    from controllers.mpc import RecedingHorizonController
    from controllers.snapshot import GridSnapshot

    t = pd.Timestamp(f"2026-07-15 {now}", tz=TZ)
    window = bundle.window(t, bundle.end)
    controller = RecedingHorizonController(model, horizon_steps=8, deadline_s=0.0)  # all late
    return controller.step(GridSnapshot.initial(model, t, sessions_at_start(window)), window)


def test_a_late_plan_that_holds_the_limits_beats_a_fallback_that_breaks_them():
    # a feeder cable the fast chargers would overload at half their site's limit
    m = radial(feeder_max_i_ka=0.1)
    loads = {"load_R1": _flat(1.2), "load_LV1": _flat(0.05), "load_PVB": _flat(0.0),
             "load_S": np.where(NOON, 3.0, 1.0)}
    bundle = day_bundle(m, loads, sessions("ev_dc", 10, "18:00", "22:00", 90, 120), "overcast")
    decision = _late_mpc_step(m, bundle, "18:30")
    assert decision.record.fallback is None and decision.record.ac_check["passed"]
    assert any("the late plan, which passed its AC check, is sent" in n
               for n in decision.record.notes)


def test_a_late_plan_still_gives_way_to_a_fallback_that_holds_the_limits():
    m, bundle = case_transformer()
    decision = _late_mpc_step(m, bundle, "09:00")
    assert decision.record.fallback == "rule_based_safe_dispatch"
    assert decision.record.ac_check["passed"]
