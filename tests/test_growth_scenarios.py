"""Growth scenarios as data: jiuke_2025 and jiuke_2030 add what their files say, a bad file is
refused naming file, entry and field, and under jiuke_2030 uncontrolled charging breaks limits
in AC while the day-ahead plan holds every one and says which bound."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gridctl.cli import main
from network_models import load_model
from network_models.errors import ModelError
from network_models.growth_scenario_file import device_totals, shipped_growth_scenarios
from network_models.registry import CustomerClass, EvSiteType

DAY = "2026-07-15"  # a July Wednesday


def _by_type(model) -> dict[EvSiteType, int]:
    out = dict.fromkeys(EvSiteType, 0)
    for s in model.registry.ev_sites:
        out[s.site_type] += s.n_connectors
    return out


def _roof(model, pv) -> set[CustomerClass]:
    return {ld.customer_class for ld in model.registry.loads if ld.bus == pv.bus}


def _net_agrees_with_registry(model) -> None:
    for s in model.registry.ev_sites:
        assert model.net.load.at[s.element.index, "p_mw"] == pytest.approx(s.p_site_max_kw / 1e3)
    for pv in model.registry.pv:
        assert model.net.sgen.at[pv.element.index, "p_mw"] == pytest.approx(pv.p_mwp)
        assert model.net.sgen.at[pv.element.index, "sn_mva"] == pytest.approx(pv.s_mva)
    for ld in model.registry.loads:
        assert model.net.load.at[ld.element.index, "p_mw"] == pytest.approx(ld.p_peak_mw)


def test_the_shipped_scenarios_of_jiuke_are_2025_and_2030() -> None:
    assert set(shipped_growth_scenarios("jiuke_oasis")) == {"jiuke_2025", "jiuke_2030"}
    assert shipped_growth_scenarios("case33bw") == {}


def test_jiuke_2025_adds_its_share_of_the_plans_chargers_and_pv_on_half_the_roofs(jiuke) -> None:
    grown = load_model("jiuke_oasis", growth_scenario="jiuke_2025")
    before, after = _by_type(jiuke), _by_type(grown)
    assert after == {EvSiteType.RESIDENTIAL_AC: 4 * 70, EvSiteType.OFFICE_AC: 4 * 48,
                     EvSiteType.PUBLIC_DC: 10 + 10 + 14, EvSiteType.BUS_DEPOT: 30}
    # the new public and dedicated chargers: 1.3 % of Songjiang's 3,500, within a few
    new = sum(after[t] - before[t] for t in (EvSiteType.OFFICE_AC, EvSiteType.PUBLIC_DC,
                                             EvSiteType.BUS_DEPOT))
    assert new == 48 and abs(new - 0.013 * 3500) < 5
    for pv in grown.registry.pv:
        old = jiuke.registry[pv.id].p_mwp
        roof = _roof(grown, pv)
        target = 0.5 if CustomerClass.LIGHT_INDUSTRY in roof else (
            0.25 if CustomerClass.OFFICE in roof else 0.0)
        assert pv.p_mwp == pytest.approx(max(old, target))
        # the inverter keeps its ratio to the array
        assert pv.s_mva / pv.p_mwp == pytest.approx(jiuke.registry[pv.id].s_mva / old)
    assert device_totals(grown)["pv_kwp"] == pytest.approx(
        device_totals(jiuke)["pv_kwp"] + 7 * 150 + 10 * 30)
    _net_agrees_with_registry(grown)
    assert len(grown.registry) == len(jiuke.registry)  # grown, nothing new


def test_jiuke_2030_puts_chargers_in_every_estate_car_parks_at_the_malls_and_pv_on_every_roof(
    jiuke,
) -> None:
    grown = load_model("jiuke_oasis", growth_scenario="jiuke_2030")
    estates = {ld.bus for ld in grown.registry.loads
               if ld.customer_class == CustomerClass.RESIDENTIAL}
    garages = {s.bus for s in grown.registry.ev_sites
               if s.site_type == EvSiteType.RESIDENTIAL_AC}
    assert garages == estates and len(estates) == 18
    assert _by_type(grown) == {EvSiteType.RESIDENTIAL_AC: 18 * 110,
                               EvSiteType.OFFICE_AC: 4 * 80,
                               EvSiteType.PUBLIC_DC: 12 + 12 + 16 + 9 * 15,
                               EvSiteType.BUS_DEPOT: 50}
    # private chargers on their own meters: the site limit is every charger at its rating
    for s in grown.registry.ev_sites:
        if s.site_type == EvSiteType.RESIDENTIAL_AC:
            assert s.p_site_max_kw == pytest.approx(s.n_connectors * s.p_connector_kw)
    malls = {ld.bus for ld in grown.registry.loads if ld.customer_class == CustomerClass.COMMERCE
             and ld.bus.startswith("LV_")}
    car_parks = {s.bus for s in grown.registry.ev_sites if s.id.startswith("EV_CP_")}
    assert car_parks == malls and len(malls) == 9
    roof_mwp = {CustomerClass.LIGHT_INDUSTRY: 1.0, CustomerClass.OFFICE: 0.5,
                CustomerClass.COMMERCE: 0.5, CustomerClass.RESIDENTIAL: 0.3}
    for pv in grown.registry.pv:
        target = max(roof_mwp[c] for c in _roof(grown, pv))
        assert pv.p_mwp == pytest.approx(max(jiuke.registry[pv.id].p_mwp, target))
    totals = device_totals(grown)
    assert totals["pv_kwp"] == pytest.approx(1000 * (7 * 1.0 + 10 * 0.5 + 9 * 0.5 + 18 * 0.3
                                                     + 1.2))
    assert (totals["bess_mw"], totals["bess_mwh"]) == (12.0, 24.0)
    res = [ld for ld in grown.registry.loads if ld.customer_class == CustomerClass.RESIDENTIAL]
    assert all(ld.p_peak_mw == pytest.approx(1.2 * jiuke.registry[ld.id].p_peak_mw) for ld in res)
    _net_agrees_with_registry(grown)
    # every figure says why, in the model's assumptions
    notes = {k: a for k, a in grown.assumptions.items() if k.startswith("scenario.")}
    assert len(notes) >= 15 and all(len(a.note) > 10 for a in notes.values())
    # the base model is untouched
    assert _by_type(jiuke)[EvSiteType.RESIDENTIAL_AC] == 200


GOOD = {
    "schema_version": 1, "name": "mine", "model": "jiuke_oasis",
    "ev_sites": [{"site_type": "office_ac", "n_connectors": 60, "p_site_max_kw": 300,
                  "note": "more commuters"}],
}


@pytest.mark.parametrize(("change", "element", "field", "words"), [
    ({"colour": "red"}, None, "colour", "unknown field"),
    ({"ev_sites": [{"site_type": "office_ac", "n_connectors": 60, "p_site_max_kw": 300}]},
     "ev_sites[0]", "note", "required"),
    ({"ev_sites": [{"site_type": "office_ac", "n_connectors": 10, "p_site_max_kw": 30,
                    "note": "fewer"}]}, "ev_sites[0] office_ac", "n_connectors", "shrink"),
    ({"ev_sites": [{"name": "EV_NOWHERE", "n_connectors": 60, "p_site_max_kw": 300,
                    "note": "a typo"}]}, "ev_sites[0] EV_NOWHERE", "name", "no EV site"),
    ({"ev_sites": [{"site_type": "office_ac", "n_connectors": 60, "p_site_max_kw": 900,
                    "note": "too much"}]}, "ev_sites[0] office_ac", "p_site_max_kw", "at most 420"),
    ({"pv": [{"roof": "data_centre", "p_mwp": 1.0, "note": "no roof with PV"}]},
     "pv[0] data_centre", "roof", "no PV system"),
    ({"loads": [{"customer_class": "residential", "factor": 0.5, "note": "fewer"}]},
     "loads[0]", "factor", "greater than or equal to 1"),
    ({"add": {"pv": [{"name": "PV_NEW", "bus": "LV_NOWHERE", "p_mwp": 0.5, "s_mva": 0.55}]}},
     "add.pv[0] PV_NEW", "bus", "no bus 'LV_NOWHERE'"),
    ({"add": {"pv": [{"name": "PV_NEW", "bus": "LV_L2_2", "p_mwp": -1, "s_mva": 0.55}]}},
     "add.pv[0] PV_NEW", "p_mwp", "greater than 0"),
    ({"model": "case33bw"}, None, "model", "written for model 'case33bw'"),
])
def test_a_bad_scenario_file_is_refused_naming_the_file_the_entry_and_the_field(
    jiuke, tmp_path: Path, change: dict, element: str | None, field: str, words: str,
) -> None:
    import yaml

    path = tmp_path / "mine.scenario.yaml"
    path.write_text(yaml.safe_dump({**GOOD, **change}), encoding="utf-8")
    with pytest.raises(ModelError) as err:
        load_model("jiuke_oasis", growth_scenario=path)
    assert err.value.source == str(path)
    assert err.value.field == field and err.value.element == element, str(err.value)
    assert words in str(err.value)


def test_the_good_file_itself_applies(tmp_path: Path) -> None:
    import yaml

    path = tmp_path / "mine.scenario.yaml"
    path.write_text(yaml.safe_dump(GOOD), encoding="utf-8")
    grown = load_model("jiuke_oasis", growth_scenario=str(path))
    assert _by_type(grown)[EvSiteType.OFFICE_AC] == 4 * 60


def test_an_unknown_scenario_name_is_one_line_naming_the_option(capsys) -> None:
    code = main(["grid", "check", "--model", "jiuke_oasis", "--scenario", "jiuke_2050"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "--scenario" in err and "jiuke_2025, jiuke_2030" in err


@pytest.fixture(scope="module")
def dayahead_2030(tmp_path_factory) -> tuple[dict, dict]:
    out = tmp_path_factory.mktemp("da2030") / "out"
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = main(["dayahead", "--model", "jiuke_oasis", "--scenario", "jiuke_2030",
                     "--date", DAY, "--out", str(out), "--json"])
    assert code == 0, buffer.getvalue()[-2000:]
    summary = json.loads(buffer.getvalue())
    decision = json.loads((out / "decision.json").read_text(encoding="utf-8"))
    return summary, decision


def test_under_jiuke_2030_uncontrolled_charging_overloads_transformers_at_the_evening_peak(
    dayahead_2030,
) -> None:
    summary, _ = dayahead_2030
    base = summary["baseline"]
    assert not base["ac_validated"] and base["ac_violations"] == summary["baseline_violations"] > 0
    assert base["max_trafo_loading_pct"] > 100.0
    evening = [v for v in summary["baseline_violated"] if v["kind"] == "trafo_loading"
               and 17 <= int(v["worst_time"][11:13]) <= 21]
    assert evening, summary["baseline_violated"]
    assert all(v["worst_value"] > v["limit"] for v in summary["baseline_violated"])


def test_under_jiuke_2030_the_plan_holds_every_limit_and_serves_every_servable_session(
    dayahead_2030,
) -> None:
    summary, _ = dayahead_2030
    assert summary["verdict"] == "optimal, AC validated" and summary["ac_violations"] == 0
    assert summary["max_trafo_loading_pct"] <= 100.0 and summary["max_line_loading_pct"] <= 100.0
    assert summary["v_min_pu"] >= 0.93 and summary["v_max_pu"] <= 1.07
    assert summary["ev_sessions"] > 5000
    # what drivers are short of is only what their stay could never give them
    assert summary["ev_energy_short_by_grid_or_plan_mwh"] == pytest.approx(0.0, abs=1e-3)
    assert summary["ev_energy_shortfall_mwh"] == pytest.approx(
        summary["ev_energy_unservable_mwh"], abs=1e-3)


def test_under_jiuke_2030_the_record_says_what_no_control_breaks_and_what_bound(
        dayahead_2030) -> None:
    summary, decision = dayahead_2030
    # what no control breaks, by element: a mall's transformer at the evening peak among them
    violated = summary["baseline_violated"]
    assert decision["baseline_violations"] == summary["baseline_violations"] == sum(
        v["steps"] for v in violated) > 0
    assert any(v["kind"] == "trafo_loading" and v["element"] in ("TR_L3_2", "TR_L5_4")
               and v["worst_value"] > v["limit"] for v in violated)
    # the optimiser's binding rows (with shadow prices) and the limits its AC flow reaches, as
    # the record has them; the orderly plan moves the evening's energy into the night, so it
    # may reach none of them
    binding = summary["binding_constraints"]
    assert decision["binding_constraints"] == binding == decision["record"]["binding_constraints"]
    assert all(b["max_shadow_price"] > 0 and b["times"] for b in binding)
    reached = summary["limits_reached"]
    assert decision["limits_reached"] == reached
    for b in reached:
        assert b["kind"] in ("line", "trafo", "bus_voltage_high", "bus_voltage_low")
        assert len(b["steps"]) == len(b["times"]) >= 1 and b["worst_time"] in b["times"]
        if b["kind"] in ("line", "trafo"):
            # at its planned limit (the AC limit less the margin), never beyond the AC limit
            assert 0.99 * b["planned_limit"] <= b["worst_value"] <= b["limit"]
