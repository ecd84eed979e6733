"""Published feeders through the GridModel interface: published figures, ties, registry coverage."""

from __future__ import annotations

import math
import re
from collections import Counter

import networkx as nx
import pandapower as pp
import pandapower.topology as top
import pytest

from network_models import standard
from network_models.errors import ModelError
from network_models.model import GridModel
from network_models.registry import (
    Bess,
    CustomerClass,
    ElementTable,
    Meter,
    PvSystem,
    SubstationTransformer,
    SwitchDevice,
    SwitchKind,
    SwitchRole,
)

# Baran & Wu (1989): tie branches by 1-based bus pair
PUBLISHED_TIES = {(8, 21), (9, 15), (12, 22), (18, 33), (25, 29)}
CONTROLLABLE_TABLES = (ElementTable.SGEN, ElementTable.STORAGE, ElementTable.SWITCH,
                       ElementTable.LOAD)


def _solved(model: GridModel) -> pp.pandapowerNet:
    net = model.copy_net()
    pp.runpp(net)
    return net


def _loops(net: pp.pandapowerNet) -> int:
    return len(nx.cycle_basis(nx.Graph(top.create_nxgraph(net, respect_switches=True))))


@pytest.fixture(scope="module")
def case33() -> GridModel:
    return standard.case33bw()


@pytest.fixture(scope="module")
def case33_solved(case33: GridModel) -> pp.pandapowerNet:
    return _solved(case33)


@pytest.fixture(scope="module")
def cigre() -> GridModel:
    return standard.cigre_mv()


@pytest.fixture(scope="module")
def oberrhein() -> GridModel:
    return standard.mv_oberrhein()


@pytest.fixture(params=["case33", "cigre", "oberrhein"])
def any_model(request: pytest.FixtureRequest) -> GridModel:
    return request.getfixturevalue(request.param)


# --- IEEE 33-bus -------------------------------------------------------------------------------

def test_case33bw_base_case_losses_are_baran_wu_202_68_kw(case33_solved: pp.pandapowerNet) -> None:
    assert case33_solved.res_line.pl_mw.sum() * 1e3 == pytest.approx(202.68, abs=0.1)


def test_case33bw_minimum_voltage_is_0_9131_pu_at_bus_18(case33_solved: pp.pandapowerNet) -> None:
    vm = case33_solved.res_bus.vm_pu
    assert vm.min() == pytest.approx(0.9131, abs=0.0005)
    assert case33_solved.bus.at[vm.idxmin(), "name"] == "18"


def test_case33bw_buses_carry_published_numbers(case33: GridModel) -> None:
    assert sorted(case33.net.bus.name, key=int) == [str(n) for n in range(1, 34)]
    assert case33.net.bus.at[case33.net.ext_grid.bus.iloc[0], "name"] == "1"


def test_case33bw_ties_are_open_switches_on_the_published_bus_pairs(case33: GridModel) -> None:
    net = case33.net
    ties = [d for d in case33.registry.switches if d.role == SwitchRole.TIE]
    pairs = set()
    for dev in ties:
        sw = net.switch.loc[dev.element.index]
        line = net.line.loc[sw.element]
        ends = (line.from_bus, line.to_bus)
        a, b = sorted(int(net.bus.at[bus, "name"]) for bus in ends)
        assert (sw.et, bool(sw.closed), bool(line.in_service)) == ("l", False, True)
        assert dev.switch_kind == SwitchKind.LOAD_BREAK_SWITCH and not dev.normally_closed
        assert sw["name"] == f"tie_{a}_{b}"
        pairs.add((a, b))
    assert pairs == PUBLISHED_TIES and len(ties) == 5


def test_case33bw_every_branch_has_exactly_one_switch(case33: GridModel) -> None:
    net = case33.net
    assert len(net.line) == 37 and net.line.in_service.all()
    assert sorted(net.switch.element) == sorted(net.line.index)
    closed = net.switch[net.switch.closed]
    assert len(closed) == 32 and closed.name.str.startswith("sw_").all()
    roles = {d.role for d in case33.registry.switches if d.normally_closed}
    assert roles == {SwitchRole.SECTIONALISER}


def test_case33bw_is_radial_with_ties_open(case33: GridModel) -> None:
    graph = nx.Graph(top.create_nxgraph(case33.net, respect_switches=True))
    assert nx.is_tree(graph) and graph.number_of_nodes() == 33


def test_case33bw_closing_all_ties_makes_five_loops(case33: GridModel) -> None:
    net = case33.copy_net()
    net.switch["closed"] = True
    assert _loops(net) == 5


# --- CIGRE MV ----------------------------------------------------------------------------------

def test_cigre_storage_energy_is_finite_and_positive(cigre: GridModel) -> None:
    st = cigre.net.storage
    assert len(st) == 2
    assert all(math.isfinite(e) and e > 0 for e in st.max_e_mwh)
    assert (st.min_e_mwh < st.max_e_mwh).all() and st.soc_percent.notna().all()
    for bess in cigre.registry.bess:
        assert bess.e_mwh == pytest.approx(4.0 * bess.p_mw)
        assert bess.soc_min_frac <= bess.soc_init_frac <= bess.soc_max_frac
    assert cigre.assumptions["cigre_storage_hours"].value == 4.0


def test_cigre_net_converges_within_voltage_band(cigre: GridModel) -> None:
    net = _solved(cigre)
    assert net.converged
    assert net.res_bus.vm_pu.min() > 0.9 and net.res_bus.vm_pu.max() < 1.1


def test_cigre_only_pv_sgens_become_pv_systems(cigre: GridModel) -> None:
    sgen = cigre.net.sgen
    pv_rows = set(sgen.index[sgen.type == "PV"])
    assert {d.element.index for d in cigre.registry.pv} == pv_rows
    others = [d for d in cigre.registry.meters if d.element.table == ElementTable.SGEN]
    assert {d.element.index for d in others} == set(sgen.index) - pv_rows
    assert "dg_wka_7" in cigre.registry  # the 1.5 MW wind turbine


def test_cigre_open_ring_switches_s1_s3_are_ties(cigre: GridModel) -> None:
    ties = {d.description: d for d in cigre.registry.switches if d.role == SwitchRole.TIE}
    assert set(ties) == {"S1", "S2", "S3"}
    assert not any(d.normally_closed for d in ties.values())


def test_cigre_hv_mv_transformers_are_substation_transformers(cigre: GridModel) -> None:
    trafos = cigre.registry.of_type(SubstationTransformer)
    assert {(t.hv_bus, t.lv_bus, t.sn_mva) for t in trafos} == {
        ("Bus 0", "Bus 1", 25.0), ("Bus 0", "Bus 12", 25.0)}
    assert [s.sections for s in cigre.substations] == [("Bus 1", "Bus 12")]


def test_cigre_loads_are_classed_residential_and_commercial(cigre: GridModel) -> None:
    classes = {d.description: d.customer_class for d in cigre.registry.loads}
    assert classes["Load R1"] == CustomerClass.RESIDENTIAL
    assert classes["Load CI1"] == CustomerClass.COMMERCE


# --- MV Oberrhein ------------------------------------------------------------------------------

def test_mv_oberrhein_has_published_sizes(oberrhein: GridModel) -> None:
    assert len(oberrhein.net.bus) == 179
    assert len(oberrhein.registry.pv) == 153
    assert len(oberrhein.net.switch) == 322 == len(oberrhein.registry.switches)


def test_mv_oberrhein_converges(oberrhein: GridModel) -> None:
    net = _solved(oberrhein)
    assert net.converged and net.res_bus.vm_pu.min() > 0.9


def test_mv_oberrhein_is_meshed_but_operated_radially(oberrhein: GridModel) -> None:
    assert _loops(oberrhein.net) == 0
    net = oberrhein.copy_net()
    net.switch["closed"] = True
    assert _loops(net) > 0
    nops = [d for d in oberrhein.registry.switches if d.role == SwitchRole.NORMALLY_OPEN_POINT]
    assert len(nops) == (~oberrhein.net.switch.closed).sum() > 0


# --- every model -------------------------------------------------------------------------------

def test_registry_covers_every_controllable_element_once(any_model: GridModel) -> None:
    refs = Counter(d.element for d in any_model.registry)
    for table in CONTROLLABLE_TABLES:
        rows = sorted(ref.index for ref in refs if ref.table == table)
        assert rows == sorted(any_model.net[table.value].index), table
    assert max(refs.values()) == 1


def test_bus_line_trafo_switch_names_are_unique_strings(any_model: GridModel) -> None:
    for table in ("bus", "line", "trafo", "switch"):
        names = list(any_model.net[table].name)
        assert all(isinstance(n, str) and n for n in names), table
        assert len(set(names)) == len(names), table


def test_devices_name_their_bus_by_bus_name(any_model: GridModel) -> None:
    bus_names = set(any_model.net.bus.name)
    assert all(d.bus in bus_names for d in any_model.registry)


def test_switched_element_is_the_named_element_of_the_switch_row(any_model: GridModel) -> None:
    net = any_model.net
    tables = {"l": "line", "t": "trafo", "b": "bus"}
    for dev in any_model.registry.switches:
        sw = net.switch.loc[dev.element.index]
        assert dev.switched_element == net[tables[sw.et]].at[sw.element, "name"]
        assert dev.normally_closed == bool(sw.closed)


def test_each_external_grid_has_a_meter(any_model: GridModel) -> None:
    metered = {d.element.index for d in any_model.registry.meters
               if d.element.table == ElementTable.BUS}
    assert metered == set(any_model.net.ext_grid.bus)


# --- registry_from_net on a small net ----------------------------------------------------------

@pytest.fixture()
def small_net() -> pp.pandapowerNet:
    net = pp.create_empty_network()
    hv = pp.create_bus(net, 110.0, name="HV")
    a = pp.create_bus(net, 10.0, name="A")
    b = pp.create_bus(net, 10.0, name="dup")
    c = pp.create_bus(net, 10.0, name="dup")
    d = pp.create_bus(net, 10.0)
    pp.create_ext_grid(net, hv)
    trafo = pp.create_transformer(net, hv, a, std_type="25 MVA 110/10 kV")
    cable = "NA2XS2Y 1x240 RM/25 12/20 kV"
    l1 = pp.create_line(net, a, b, 1.0, cable)
    l2 = pp.create_line(net, b, c, 1.0, cable)
    l3 = pp.create_line(net, c, d, 1.0, cable)
    pp.create_switch(net, hv, trafo, et="t", type="CB")
    pp.create_switch(net, a, l1, et="l", type="CB")
    pp.create_switch(net, b, l2, et="l", type="LBS")
    pp.create_switch(net, c, l3, et="l", type="DS")
    pp.create_switch(net, a, d, et="b", closed=False, type="odd")
    pp.create_sgen(net, d, p_mw=0.5, name="roof")
    pp.create_sgen(net, d, p_mw=1.0, type="Wind", name="turbine")
    pp.create_storage(net, b, p_mw=0.0, max_e_mwh=2.0, min_e_mwh=0.2, sn_mva=1.2, max_p_mw=1.0)
    pp.create_load(net, c, p_mw=0.3, q_mvar=0.1, name="office block")
    return net


def test_name_elements_fills_missing_and_duplicate_names(small_net: pp.pandapowerNet) -> None:
    standard.name_elements(small_net)
    assert list(small_net.bus.name) == ["HV", "A", "dup_2", "dup_3", "bus_4"]
    assert list(small_net.switch.name) == [f"switch_{i}" for i in range(5)]
    before = list(small_net.bus.name)
    standard.name_elements(small_net)
    assert list(small_net.bus.name) == before


def test_registry_refuses_unnamed_net(small_net: pp.pandapowerNet) -> None:
    with pytest.raises(ModelError, match="name"):
        standard.registry_from_net(small_net, source="small.json")


def test_switch_kind_and_role_follow_pandapower_table(small_net: pp.pandapowerNet) -> None:
    standard.name_elements(small_net)
    reg = standard.registry_from_net(small_net, source="small")
    by_row = {d.element.index: d for d in reg.switches}
    assert [by_row[i].switch_kind for i in range(5)] == [
        SwitchKind.BREAKER, SwitchKind.BREAKER, SwitchKind.LOAD_BREAK_SWITCH,
        SwitchKind.DISCONNECTOR, SwitchKind.LOAD_BREAK_SWITCH]
    assert [by_row[i].role for i in range(5)] == [
        SwitchRole.TRANSFORMER_BREAKER, SwitchRole.FEEDER_BREAKER, SwitchRole.SECTIONALISER,
        SwitchRole.SECTIONALISER, SwitchRole.NORMALLY_OPEN_POINT]
    assert by_row[4].switched_element == "bus_4" and not by_row[3].remote_controlled


def test_pv_without_sn_mva_gets_inverter_rated_1_1_times_peak(
    small_net: pp.pandapowerNet,
) -> None:
    standard.name_elements(small_net)
    reg = standard.registry_from_net(small_net, source="small")
    (pv,) = reg.of_type(PvSystem)
    assert (pv.id, pv.p_mwp, pv.s_mva) == ("pv_roof", 0.5, pytest.approx(0.55))
    assert isinstance(reg["dg_turbine"], Meter)


def test_storage_ratings_and_soc_bounds_come_from_the_storage_table(
    small_net: pp.pandapowerNet,
) -> None:
    standard.name_elements(small_net)
    (bess,) = standard.registry_from_net(small_net, source="small").of_type(Bess)
    assert (bess.p_mw, bess.e_mwh, bess.s_mva) == (1.0, 2.0, 1.2)
    assert (bess.soc_min_frac, bess.soc_max_frac) == (pytest.approx(0.1), 1.0)


def test_storage_without_energy_is_refused_naming_the_field(
    small_net: pp.pandapowerNet,
) -> None:
    standard.name_elements(small_net)
    small_net.storage["max_e_mwh"] = math.nan
    with pytest.raises(ModelError, match="max_e_mwh") as err:
        standard.registry_from_net(small_net, source="small.json")
    assert err.value.source == "small.json" and err.value.row == 0


def test_load_class_is_read_from_its_name(small_net: pp.pandapowerNet) -> None:
    standard.name_elements(small_net)
    (load,) = standard.registry_from_net(small_net, source="small").loads
    assert load.customer_class == CustomerClass.OFFICE
    assert load.power_factor == pytest.approx(0.3 / math.hypot(0.3, 0.1))


# --- pandapower JSON ---------------------------------------------------------------------------

def test_pandapower_json_round_trip_keeps_names_and_devices(cigre: GridModel, tmp_path) -> None:
    path = tmp_path / "cigre.json"
    pp.to_json(cigre.net, str(path))
    model = standard.from_pandapower_json(path)
    assert model.name == "cigre" and model.source == str(path)
    for table in ("bus", "line", "trafo", "switch"):
        assert list(model.net[table].name) == list(cigre.net[table].name)
    assert [(d.id, d.kind, d.element) for d in model.registry] == [
        (d.id, d.kind, d.element) for d in cigre.registry]
    assert model.registry["bess_battery_1"] == cigre.registry["bess_battery_1"]


def test_missing_json_file_is_named_in_the_error(tmp_path) -> None:
    path = tmp_path / "absent.json"
    with pytest.raises(ModelError, match=re.escape(str(path))):
        standard.from_pandapower_json(path)


def test_garbage_json_is_named_in_the_error(tmp_path) -> None:
    path = tmp_path / "garbage.json"
    path.write_text("{ this is not json")
    with pytest.raises(ModelError, match=re.escape(str(path))):
        standard.from_pandapower_json(path)


def test_json_net_without_buses_is_refused(tmp_path) -> None:
    path = tmp_path / "empty.json"
    pp.to_json(pp.create_empty_network(), str(path))
    with pytest.raises(ModelError, match=r"empty\.json.*no buses"):
        standard.from_pandapower_json(path)



def test_case33bw_tie_device_ids_name_the_bus_pair(case33: GridModel) -> None:
    ids = {d.id for d in case33.registry.switches if d.role == SwitchRole.TIE}
    assert ids == {f"sw_tie_{a}_{b}" for a, b in PUBLISHED_TIES}
    assert all(isinstance(case33.registry[i], SwitchDevice) for i in ids)


def test_n1_screen_takes_out_every_substation_transformer_of_a_standard_feeder():
    from network_models.ac_checks import n1_outages

    model = standard.cigre_mv()
    trafos = [name for kind, name in n1_outages(model) if kind == "trafo"]
    assert len(trafos) == len(model.registry.substation_transformers) > 0
    for name in trafos:
        model.trafo_index(name)  # a transformer of the net, found by its name
