"""A devices file puts batteries, PV, EV sites and microgrids on any grid, checked on its net."""

from __future__ import annotations

import copy
from pathlib import Path

import pandapower as pp
import pandapower.networks as pn
import pytest
import yaml

from network_models import ModelError, load_model
from network_models.builder import DATA_DIR

DEVICES = {
    "schema_version": 1,
    "site": {"name": "Kassel", "latitude_deg": 51.31, "longitude_deg": 9.49,
             "timezone": "Europe/Berlin"},
    "bess": [
        {"name": "bess_a", "bus": "Bus 5", "p_mw": 1.5, "e_mwh": 3.0, "s_mva": 1.6},
        {"name": "bess_island", "bus": "Bus 14", "p_mw": 0.5, "e_mwh": 1.0, "s_mva": 0.6,
         "grid_forming": True},
    ],
    "pv": [{"name": "pv_roof", "bus": "Bus 7", "p_mwp": 0.8, "s_mva": 0.8}],
    "ev_sites": [
        {"name": "ev_dc", "bus": "Bus 10", "site_type": "public_dc", "n_connectors": 4,
         "p_connector_kw": 150, "p_site_max_kw": 450},
        {"name": "ev_work", "bus": "Bus 3", "site_type": "office_ac", "n_connectors": 20,
         "p_connector_kw": 11, "p_site_max_kw": 150},
        {"name": "ev_home", "bus": "Bus 12", "site_type": "residential_ac", "n_connectors": 30,
         "p_connector_kw": 7, "p_site_max_kw": 120},
    ],
    "loads": [
        {"bus": "Bus 1", "priority": 2},
        {"name": "Load CI9", "priority": 1, "critical": True},
    ],
    "microgrids": [{"name": "mg_east", "breaker": "S1", "buses": ["Bus 13", "Bus 14"],
                    "grid_forming_bess": "bess_island"}],
}


@pytest.fixture(scope="module")
def net_json(tmp_path_factory) -> Path:
    """The CIGRE MV net (no DER) as a pandapower JSON file: a grid with nothing to dispatch."""
    path = tmp_path_factory.mktemp("nets") / "cigre.json"
    pp.to_json(pn.create_cigre_network_mv(with_der=False), str(path))
    return path


def _write(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _refused(net_json: Path, tmp_path: Path, data: dict) -> ModelError:
    devices = _write(tmp_path / "bad.devices.yaml", data)
    with pytest.raises(ModelError) as info:
        load_model(net_json, devices=devices)
    assert str(devices) in str(info.value)
    return info.value


def test_devices_appear_in_registry_and_net_with_their_ratings(net_json, tmp_path):
    model = load_model(net_json, devices=_write(tmp_path / "d.yaml", DEVICES))
    reg, net = model.registry, model.net
    bess = reg["bess_a"]
    assert (bess.p_mw, bess.e_mwh, bess.s_mva, bess.bus) == (1.5, 3.0, 1.6, "Bus 5")
    row = net.storage.loc[bess.element.index]
    assert row["max_e_mwh"] == 3.0 and row["max_p_mw"] == 1.5
    assert net.bus.at[row["bus"], "name"] == "Bus 5"
    pv = reg["pv_roof"]
    assert net.sgen.at[pv.element.index, "p_mw"] == 0.8 and pv.p_mwp == 0.8
    sites = {s.id: s for s in reg.ev_sites}
    assert set(sites) == {"ev_dc", "ev_work", "ev_home"}
    assert sites["ev_dc"].n_connectors == 4 and sites["ev_dc"].p_connector_kw == 150
    assert net.load.at[sites["ev_dc"].element.index, "p_mw"] == pytest.approx(0.45)
    assert model.site.timezone == "Europe/Berlin"


def test_load_settings_reach_the_loads_named_and_those_at_a_bus(net_json, tmp_path):
    model = load_model(net_json, devices=_write(tmp_path / "d.yaml", DEVICES))
    by_name = {model.net.load.at[ld.element.index, "name"]: ld for ld in model.registry.loads}
    assert by_name["Load CI9"].priority == 1 and by_name["Load CI9"].critical
    at_bus_1 = [ld for ld in model.registry.loads if ld.bus == "Bus 1"]
    assert at_bus_1 and all(ld.priority == 2 and not ld.critical for ld in at_bus_1)
    assert by_name["Load R3"].priority == 3  # untouched


def test_microgrid_is_declared_with_the_breakers_registry_id(net_json, tmp_path):
    model = load_model(net_json, devices=_write(tmp_path / "d.yaml", DEVICES))
    (mg,) = model.microgrids
    assert mg.grid_forming_bess == "bess_island" and mg.buses == ("Bus 13", "Bus 14")
    assert model.registry[mg.breaker].description == "S1"


def test_the_simulator_islands_a_devices_file_microgrid_at_its_breaker(net_json, tmp_path):
    from hil_sim.grid import SimGrid
    from network_models.powerflow import PowerFlowEngine

    model = load_model(net_json, devices=_write(tmp_path / "d.yaml", DEVICES))
    grid = SimGrid(model, engine=PowerFlowEngine.PANDAPOWER)
    (island,) = grid.islands
    assert island.microgrid == model.microgrids[0]
    # the switch the registry id names, not one of that name (the net calls it "S1")
    assert grid.net.switch.at[island.pcc_row, "name"] == "S1"
    assert island.bess_id == "bess_island"


def test_the_grid_without_the_file_is_left_as_it_was(net_json, tmp_path):
    base = load_model(net_json)
    load_model(net_json, devices=_write(tmp_path / "d.yaml", DEVICES))
    assert base.net.storage.empty and not base.registry.ev_sites
    assert len(load_model(net_json).net.load) == len(base.net.load)


def test_a_devices_file_beside_the_json_net_is_used_and_an_explicit_one_wins(net_json, tmp_path):
    net = tmp_path / "feeder.json"
    net.write_bytes(net_json.read_bytes())
    _write(tmp_path / "feeder.devices.yaml", DEVICES)
    assert {s.id for s in load_model(net).registry.ev_sites} == {"ev_dc", "ev_work", "ev_home"}
    other = copy.deepcopy(DEVICES)
    other["ev_sites"] = other["ev_sites"][:1]
    other["microgrids"] = []
    chosen = load_model(net, devices=_write(tmp_path / "other.yaml", other))
    assert [s.id for s in chosen.registry.ev_sites] == ["ev_dc"]


def test_an_edited_devices_file_is_never_served_from_the_model_cache(tmp_path, monkeypatch):
    # a YAML model is cached; its devices file is read on every load
    monkeypatch.setenv("GRIDCTL_CACHE_DIR", str(tmp_path / "cache"))
    data = {"schema_version": 1, "bess": [
        {"name": "bess_extra", "bus": "LV_L1_1", "p_mw": 1.0, "e_mwh": 2.0, "s_mva": 1.1}]}
    devices = _write(tmp_path / "jiuke.devices.yaml", data)
    grid = DATA_DIR / "jiuke_oasis.yaml"
    assert load_model(grid, devices=devices).registry["bess_extra"].e_mwh == 2.0
    data["bess"][0]["e_mwh"] = 5.0
    _write(devices, data)
    assert load_model(grid, devices=devices).registry["bess_extra"].e_mwh == 5.0
    assert "bess_extra" not in load_model(grid).registry


def _with(path: list, value: object) -> dict:
    data = copy.deepcopy(DEVICES)
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return data


@pytest.mark.parametrize(("path", "value", "element", "field", "expected"), [
    (["ev_sites", 2, "bus"], "Bus 99", "ev_sites[2] ev_home", "bus",
     "no bus 'Bus 99': expected a bus of the net"),
    (["bess", 0, "bus"], "bus 5", "bess[0] bess_a", "bus", "did you mean 'Bus 5'"),
    (["loads", 1, "name"], "Load CI99", "loads[1] Load CI99", "name",
     "no load 'Load CI99': expected a load of the net"),
    (["loads", 0, "bus"], "Bus 0", "loads[0]", "bus", "no load at bus 'Bus 0'"),
    (["microgrids", 0, "breaker"], "S9", "microgrids[0] mg_east", "breaker",
     "no switch 'S9': expected a switch of the net"),
    (["microgrids", 0, "grid_forming_bess"], "bess_a", "microgrids[0] mg_east",
     "grid_forming_bess", "not grid-forming"),
    (["microgrids", 0, "grid_forming_bess"], "bess_x", "microgrids[0] mg_east",
     "grid_forming_bess", "no BESS 'bess_x'"),
    (["pv", 0, "name"], "ev_dc", "ev_sites[0] ev_dc", "name", "also given to pv[0]"),
    (["pv", 0, "name"], "load_r1", "pv[0] load_r1", "name", "already a device of the grid"),
])
def test_a_bad_reference_is_refused_naming_file_entry_and_expected(
    net_json, tmp_path, path, value, element, field, expected
):
    err = _refused(net_json, tmp_path, _with(path, value))
    assert err.element == element
    assert err.field == field
    assert expected in str(err)


def test_a_typo_in_a_key_is_refused_naming_the_entry_and_the_key(net_json, tmp_path):
    data = copy.deepcopy(DEVICES)
    data["bess"][0]["e_mhw"] = data["bess"][0].pop("e_mwh")
    err = _refused(net_json, tmp_path, data)
    assert err.element == "bess[0] bess_a"
    assert err.field in ("e_mhw", "e_mwh")
    assert "unknown field" in str(err) or "required" in str(err)


def test_an_unknown_section_is_refused(net_json, tmp_path):
    err = _refused(net_json, tmp_path, {**DEVICES, "batteries": []})
    assert err.field == "batteries" and "unknown field" in str(err)


def test_a_load_entry_needs_a_name_or_a_bus_and_a_setting(net_json, tmp_path):
    err = _refused(net_json, tmp_path, _with(["loads", 0], {"priority": 1}))
    assert err.element == "loads[0]" and "either name" in str(err)
    err = _refused(net_json, tmp_path, _with(["loads", 0], {"bus": "Bus 1"}))
    assert "at least one of" in str(err)
