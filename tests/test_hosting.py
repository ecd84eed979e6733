"""Hosting capacity: the value found is what the physics allows, orderly never hosts less than
uncontrolled, and bad arguments are refused naming the option."""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass

import numpy as np
import pytest
import yaml

from controllers.config import DispatchConfig
from controllers.dayahead import schedule_kpis, sessions_at_start
from controllers.snapshot import GridSnapshot
from forecasts.ev import uncontrolled_charging_kw
from gridctl.cli import main
from gridctl.studies.hosting import (
    Control,
    HostingSettings,
    HostingStudy,
    Scope,
    What,
    sainte_lague,
)
from gridctl.studies.hosting_search import largest_holding
from network_models import load_model

DAY = dt.date(2026, 7, 15)
SUNDAY = dt.date(2026, 5, 3)  # May Day holiday: light load under a high sun
CONNECTOR_KW = 120.0
TRAFO_MVA = 1.0

ONE_TRANSFORMER = {
    "schema_version": 1,
    "name": "one_transformer",
    "site": {"name": "test", "latitude_deg": 31.13, "longitude_deg": 121.32},
    "line_types": {"cable": {"r_ohm_per_km": 0.1, "x_ohm_per_km": 0.08, "c_nf_per_km": 300,
                             "max_i_ka": 0.4}},
    "transformer_types": {"T1000": {"sn_mva": TRAFO_MVA, "vn_hv_kv": 10, "vn_lv_kv": 0.4,
                                    "vk_percent": 4.0, "vkr_percent": 1.0, "pfe_kw": 0.0,
                                    "i0_percent": 0.0}},
    "grid_connections": [{"name": "GRID", "bus": "MV"}],
    "buses": [{"name": "MV", "vn_kv": 10, "x_km": 0, "y_km": 0},
              {"name": "LV", "vn_kv": 0.4, "x_km": 0, "y_km": 0.1, "kind": "lv"}],
    "transformers": [{"name": "TR", "type": "T1000", "hv_bus": "MV", "lv_bus": "LV",
                      "role": "distribution"}],
    "loads": [{"name": "LD", "bus": "LV", "customer_class": "office", "p_peak_mw": 0.4,
               "power_factor": 0.95}],
    # a DC hub whose limit is its connectors' rating: the transformer, not the site, binds
    "ev_sites": [{"name": "HUB", "bus": "LV", "site_type": "public_dc", "n_connectors": 1,
                  "p_connector_kw": CONNECTOR_KW, "p_site_max_kw": CONNECTOR_KW}],
}


@pytest.fixture(scope="module")
def one_transformer(tmp_path_factory):
    path = tmp_path_factory.mktemp("grid") / "one_transformer.yaml"
    path.write_text(yaml.safe_dump(ONE_TRANSFORMER, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def hub_study(one_transformer):
    model = load_model(one_transformer)
    study = HostingStudy(model, What.EV, scopes=[Scope.SITES], days=[DAY],
                         settings=HostingSettings(controls=(Control.UNCONTROLLED,),
                                                  first_step=2))
    return study, study.run()[0]


def test_uncontrolled_ev_capacity_is_the_transformer_headroom_per_step(hub_study):
    study, result = hub_study
    found = result.found[Control.UNCONTROLLED]
    assert found.binding["kind"] == "trafo_loading" and found.binding["element"] == "TR"
    day = study.day(DAY)
    b = day.bundle
    site = study.model.registry["HUB"]
    # analytic: the transformer's rating minus the base load (existing hub included), per
    # step, against the uncontrolled draw of the added connectors' sessions
    p_load = b.load_p_mw["LD"].to_numpy()
    q_load = b.load_q_mvar["LD"].to_numpy()
    existing = uncontrolled_charging_kw(b.ev_sessions, b.index, ["HUB"])["HUB"].to_numpy()
    headroom_kw = (np.sqrt(TRAFO_MVA**2 - q_load**2) - p_load) * 1000 - existing

    def fits(n: int) -> bool:
        added = [s for j in range(1, n + 1) for s in day.sessions_of_added(site, j)]
        draw = uncontrolled_charging_kw(added, b.index, ["HUB"])["HUB"].to_numpy()
        return bool(np.all(draw <= headroom_kw))

    analytic = 0
    while fits(analytic + 1):
        analytic += 1
    assert abs(found.value - analytic) <= 1, (found.value, analytic)
    # and never fewer than the worst step's headroom divided by the connector power (each
    # connector draws at most its rating)
    assert found.value >= math.floor(headroom_kw.min() / CONNECTOR_KW) - 1
    assert found.at_value["passed_every_day"]
    assert found.at_value["max_trafo_loading_pct"] <= 100.0


def test_added_sessions_leave_the_existing_ones_and_grow_one_connector_at_a_time(hub_study):
    study, _ = hub_study
    day = study.day(DAY)
    loc = study.locations[0]
    _, b3, _ = day.case(loc, 3)
    _, b4, _ = day.case(loc, 4)
    ids3, ids4 = {s.id for s in b3.ev_sessions}, {s.id for s in b4.ev_sessions}
    assert {s.id for s in day.bundle.ev_sessions} <= ids3 < ids4
    assert {s.connector for s in b4.ev_sessions} - {s.connector for s in b3.ev_sessions} == {
        "c5"}
    model4, _, _ = day.case(loc, 4)
    hub = model4.registry["HUB"]
    assert hub.n_connectors == 5 and hub.p_site_max_kw == pytest.approx(5 * CONNECTOR_KW)


def test_sainte_lague_never_takes_a_connector_away_when_the_total_grows():
    weights = [40, 50, 8, 20, 12]
    prev = sainte_lague(0, weights)
    for total in range(1, 300):
        now = sainte_lague(total, weights)
        assert sum(now) == total
        assert all(a >= b for a, b in zip(now, prev, strict=True))
        prev = now


def test_the_figures_of_a_check_are_those_of_the_day_ahead_kpis(hub_study):
    # the study computes each session's servable energy once per day; the figures must be
    # what controllers.dayahead.schedule_kpis reports for the same schedule
    study, _ = hub_study
    day = study.day(DAY)
    loc = study.locations[0]
    model, bundle, _ = day.case(loc, 6)
    d = day.dispatcher
    d.model, d.ev_sites = model, model.registry.ev_sites
    states = sessions_at_start(bundle)
    plan = d.plan(bundle, GridSnapshot.initial(model, bundle.start, states))
    figures, short, _ = day.figures(bundle, plan.schedule, plan.ac, states)
    kpis = schedule_kpis(bundle, plan.schedule, plan.ac, states)
    for key, value in figures.items():
        if key in kpis:
            assert value == pytest.approx(kpis[key], abs=1e-9), key
    assert sum(short.values()) / 1000 == pytest.approx(
        kpis["ev_energy_short_by_grid_or_plan_mwh"], abs=1e-6)


def test_a_hosting_study_on_two_worker_processes_finds_what_one_process_does(one_transformer):
    model = load_model(one_transformer)
    found = {}
    for workers in (1, 2):
        study = HostingStudy(model, What.EV, scopes=[Scope.SITES], days=[DAY],
                             settings=HostingSettings(first_step=2, workers=workers))
        result = study.run()[0]
        found[workers] = {c: (f.value, f.binding["kind"], f.binding["element"])
                          for c, f in result.found.items()}
    assert found[1] == found[2]
    assert found[2][Control.ORDERLY][0] >= found[2][Control.UNCONTROLLED][0]


# -- PV: orderly never hosts less than uncontrolled


@pytest.fixture(scope="module")
def pv_study(one_transformer):
    model = load_model(one_transformer)
    study = HostingStudy(model, What.PV, scopes=[Scope.TRANSFORMERS], days=[DAY, SUNDAY],
                         settings=HostingSettings(resolution=10))
    return study, study.run()[0]


def test_orderly_pv_hosting_is_at_least_uncontrolled_on_the_one_transformer_grid(pv_study):
    study, result = pv_study
    unc, orderly = result.found[Control.UNCONTROLLED], result.found[Control.ORDERLY]
    # reverse flow through the transformer at the Sunday noon binds uncontrolled PV
    assert unc.binding["kind"] == "trafo_loading" and unc.binding["element"] == "TR"
    assert unc.worst_day == SUNDAY.isoformat()
    assert unc.value > 0 and orderly.value >= unc.value
    for f in (unc, orderly):
        assert f.at_value["passed_every_day"]
        assert f.at_value["max_trafo_loading_pct"] <= 100.0
        assert all(day["ac_validated"] for day in f.at_value["days"].values())
    # and the failure reported just above each is a breach in AC, of a full plan for orderly
    failure = study.check(study.locations[0], orderly.value + 10, Control.ORDERLY, SUNDAY)
    assert not failure.passed and failure.complete


def test_where_the_plan_breaks_a_rule_orderly_keeps_the_uncontrolled_schedule(one_transformer):
    # a solver cut short at a millisecond gives no plan; the uncontrolled schedule the plan
    # started from keeps every rule of orderly dispatch where uncontrolled held, so it is what
    # orderly sends there, and orderly never hosts less than uncontrolled
    model = load_model(one_transformer)
    study = HostingStudy(model, What.PV, scopes=[Scope.TRANSFORMERS], days=[SUNDAY],
                         settings=HostingSettings(resolution=10),
                         config=DispatchConfig(solver_time_limit_s=0.001))
    loc = study.locations[0]
    result = study.locate(loc)
    unc, orderly = result.found[Control.UNCONTROLLED], result.found[Control.ORDERLY]
    assert orderly.value == unc.value > 0
    at = orderly.at_value["days"][SUNDAY.isoformat()]
    assert at["passed"] and at["schedule"] == "uncontrolled kept"
    assert at["why"] and all(w.startswith("the plan: no plan") for w in at["why"]), at["why"]
    assert at["ac_validated"] and at["pv_curtailed_mwh"] == 0.0
    # just above, neither the plan nor the uncontrolled schedule holds: the failure reported
    assert orderly.binding["kind"] == "trafo_loading" and orderly.binding["element"] == "TR"


# -- the search itself, on days whose limits are known


class _Days:
    """Fake day checks: a value holds on a day up to its limit; a plan cut short holds only up
    to ``short_limit`` (a full plan gets further)."""

    def __init__(self, limits, short_limits=None):
        self.limits = limits
        self.short_limits = short_limits or limits
        self.calls = []

    def __call__(self, items):
        out = []
        for value, day, complete in items:
            self.calls.append((value, day, complete))
            limit = self.limits[day] if complete else self.short_limits[day]
            out.append(_Check(value <= limit, complete or value <= limit, day))
        return out


@dataclass(frozen=True)
class _Check:
    passed: bool
    complete: bool
    date: str


@pytest.mark.parametrize("width", [1, 2])
def test_the_search_finds_the_most_constraining_day_s_limit(width):
    days = _Days({"a": 870, "b": 613})
    lo, hi, failure = largest_holding(days, ["a", "b"], resolution=1, first=32, cap=5000,
                                      width=width)
    assert (lo, hi, failure.date) == (613, 614, "b")
    assert failure.complete
    assert ("613", "a") in {(str(v), d) for v, d, c in days.calls if c}  # reported on both


@pytest.mark.parametrize("width", [1, 2])
def test_a_failure_of_a_plan_cut_short_is_planned_in_full_before_it_is_reported(width):
    # cut short, the plans fail above 500; in full they hold to 540
    days = _Days({"a": 540, "b": 900}, short_limits={"a": 500, "b": 900})
    lo, hi, failure = largest_holding(days, ["a", "b"], resolution=1, first=32, cap=5000,
                                      width=width)
    assert (lo, hi) == (540, 541) and failure.complete


def test_from_a_floor_the_search_tries_one_step_above_it_first():
    days = _Days({"a": 1000, "b": 1000})
    lo, hi, _ = largest_holding(days, ["a", "b"], resolution=10, first=200, cap=200_000,
                                floor=1000, floor_holds=True)
    assert (lo, hi) == (1000, 1010)
    assert {v for v, _, _ in days.calls} == {1000, 1010}  # one step, then the report


def test_the_search_reports_when_even_nothing_added_fails():
    days = _Days({"a": -1, "b": 50})
    assert largest_holding(days, ["a", "b"], resolution=1, first=4, cap=100)[:2] == (-1, 0)


@pytest.fixture(scope="module")
def jiuke():
    return load_model("jiuke_oasis")


@pytest.mark.slow  # a minute: 16 feeders, a day-ahead solve at each
def test_orderly_hosts_at_least_what_uncontrolled_does_on_every_jiuke_feeder(jiuke):
    # coarse, to stay within a minute: one day (the July weekday), a 16-connector search step;
    # the orderly search starts where uncontrolled stopped and must hold there
    study = HostingStudy(jiuke, What.EV, scopes=[Scope.FEEDERS], days=[DAY],
                         settings=HostingSettings(resolution=16, first_step=16))
    feeders = study.locations
    assert len(feeders) == 16
    for loc in feeders:
        unc = study._search(loc, Control.UNCONTROLLED, start=0)
        orderly = study.day(DAY).check(loc, unc.value, Control.ORDERLY)
        assert unc.at_value["passed_every_day"], loc.name
        assert orderly.passed, (loc.name, unc.value, orderly.why)
        assert orderly.figures["ac_validated"]


@pytest.mark.slow  # 40 s: 16 feeders, a day-ahead solve at each
def test_orderly_pv_hosts_at_least_what_uncontrolled_does_on_every_jiuke_feeder(jiuke):
    # coarse: the Sunday (light load, high sun: PV binds there), a 100 kWp step; orderly holds
    # where uncontrolled stopped (the plan, or the uncontrolled schedule where the plan breaks
    # a rule that one keeps)
    study = HostingStudy(jiuke, What.PV, scopes=[Scope.FEEDERS], days=[SUNDAY],
                         settings=HostingSettings(resolution=100, first_step=400))
    feeders = study.locations
    assert len(feeders) == 16
    for loc in feeders:
        unc = study._search(loc, Control.UNCONTROLLED, start=0)
        orderly = study.check(loc, unc.value, Control.ORDERLY, SUNDAY)
        assert unc.at_value["passed_every_day"], loc.name
        assert orderly.passed, (loc.name, unc.value, orderly.why)
        assert orderly.figures["ac_validated"]


@pytest.mark.parametrize(("args", "option"), [
    (["--what", "wind"], "--what"),
    (["--scope", "feeders,towns"], "--scope"),
    (["--control", "manual"], "--control"),
    (["--ev-type", "tram"], "--ev-type"),
    (["--resolution", "0"], "--resolution"),
    (["--workers", "0"], "--workers"),
    (["--date", "2026-13-01"], "--date"),
])
def test_bad_arguments_are_refused_naming_the_option(args, option, capsys):
    code = main(["study", "hosting", *args])
    err = capsys.readouterr().err
    assert code == 2
    assert option in err and err.count("\n") == 1


def test_the_command_prints_each_value_found_with_its_binding_element(one_transformer, capsys):
    code = main(["study", "hosting", "--model", str(one_transformer), "--what", "pv",
                 "--scope", "transformers", "--control", "uncontrolled", "--date",
                 SUNDAY.isoformat(), "--json"])
    assert code in (0, None)
    summary = json.loads(capsys.readouterr().out)
    (row,) = summary["results"]
    found = row["uncontrolled"]
    assert row["kind"] == "transformer" and row["name"] == "TR" and found["unit"] == "kWp"
    assert found["added"] > 0 and found["at_value"]["passed_every_day"]
    assert found["binding"]["kind"] == "trafo_loading" and found["binding"]["element"] == "TR"
