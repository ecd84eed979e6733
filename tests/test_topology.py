"""Topology queries on a small hand-built diamond-like grid and on the IEEE 33-bus feeder.

The hand-built grid (every expectation below is checked by hand against this sketch):

    SRC ──BB-1── STA-I ──LA1── A1 ──LA2── A2 ──LA3── A3 ──LT──┐(NOP LT@B3)
     │             ┆ TIE-STA (open)       │                      │
     └───BB-2─── STA-II ─LB1── B1 ──LB2── B2 ──LB3───────────── B3
                                          A2 ──T-A2── A2-LV ──LV-A2── A2-LV-END

Every cable has a switch at both ends, named <line>@<bus>, except LT, which has only the
normally-open point at B3. The feeder breakers are LA1@STA-I and LB1@STA-II.
"""

from __future__ import annotations

import copy
from dataclasses import replace

import networkx as nx
import pandapower as pp
import pandapower.networks as pn
import pytest

from network_models.errors import ModelError
from network_models.registry import (
    DeviceRegistry,
    ElementRef,
    ElementTable,
    SwitchDevice,
    SwitchKind,
    SwitchRole,
)
from network_models.topology import (
    Feeder,
    bus_graph,
    check_open_loop_feeders,
    distribution_feeders,
    energised_buses,
    feeder_of_bus,
    is_radial,
    isolating_switches,
    section_of_bus,
    section_of_line,
    sections,
    source_buses,
    supply_paths,
    switch_roles,
)

MV_CABLE = "NA2XS2Y 1x240 RM/25 12/20 kV"
BUSES_10KV = ("SRC", "STA-I", "STA-II", "A1", "A2", "A3", "B1", "B2", "B3")
FEEDER_A_BUSES = {"A1", "A2", "A3", "A2-LV", "A2-LV-END"}
# line name: (from bus, to bus, switched ends)
CABLES = {
    "BB-1": ("SRC", "STA-I", ("SRC", "STA-I")),
    "BB-2": ("SRC", "STA-II", ("SRC", "STA-II")),
    "LA1": ("STA-I", "A1", ("STA-I", "A1")),
    "LA2": ("A1", "A2", ("A1", "A2")),
    "LA3": ("A2", "A3", ("A2", "A3")),
    "LT": ("A3", "B3", ("B3",)),
    "LB3": ("B2", "B3", ("B3", "B2")),
    "LB2": ("B1", "B2", ("B2", "B1")),
    "LB1": ("STA-II", "B1", ("B1", "STA-II")),
}


def _role(line: str, bus: str) -> SwitchRole:
    if line.startswith("BB"):
        return SwitchRole.BACKBONE_BREAKER
    if bus.startswith("STA"):
        return SwitchRole.FEEDER_BREAKER
    if line == "LT":
        return SwitchRole.NORMALLY_OPEN_POINT
    return SwitchRole.RING_SWITCH


def build_grid() -> tuple[pp.pandapowerNet, dict[str, SwitchRole]]:
    """The sketched grid in its normal state, and its switch roles by name."""
    net = pp.create_empty_network()
    bus = {name: pp.create_bus(net, vn_kv=10.0, name=name) for name in BUSES_10KV}
    for name in ("A2-LV", "A2-LV-END"):
        bus[name] = pp.create_bus(net, vn_kv=0.4, name=name)
    pp.create_ext_grid(net, bus["SRC"], name="grid")
    roles: dict[str, SwitchRole] = {}
    for line_name, (a, b, switched) in CABLES.items():
        line = pp.create_line(net, bus[a], bus[b], 1.0, MV_CABLE, name=line_name)
        for end in switched:
            name = f"{line_name}@{end}"
            role = _role(line_name, end)
            closed = role != SwitchRole.NORMALLY_OPEN_POINT
            pp.create_switch(net, bus[end], line, et="l", closed=closed, name=name)
            roles[name] = role
    pp.create_switch(net, bus["STA-I"], bus["STA-II"], et="b", closed=False, name="TIE-STA")
    roles["TIE-STA"] = SwitchRole.BUS_TIE
    pp.create_transformer(net, bus["A2"], bus["A2-LV"], "0.4 MVA 10/0.4 kV", name="T-A2")
    pp.create_line(net, bus["A2-LV"], bus["A2-LV-END"], 0.2, "NAYY 4x150 SE", name="LV-A2")
    pp.create_load(net, bus["A2-LV-END"], p_mw=0.2, name="shop")
    return net, roles


def bus_of(net: pp.pandapowerNet, name: str) -> int:
    return int(net.bus.index[net.bus["name"] == name][0])


def set_switch(net: pp.pandapowerNet, name: str, *, closed: bool) -> None:
    net.switch.loc[net.switch["name"] == name, "closed"] = closed


def buses_named(net: pp.pandapowerNet, names: set[str]) -> set[int]:
    return {bus_of(net, n) for n in names}


def feeder(feeders: tuple[Feeder, ...], head: str) -> Feeder:
    return next(f for f in feeders if f.head_switch == head)


# --- bus graph ---------------------------------------------------------------------------------


def test_bus_graph_drops_a_line_whose_end_switch_is_open():
    net, _ = build_grid()
    graph = bus_graph(net)
    assert graph.has_edge(bus_of(net, "STA-I"), bus_of(net, "A1"), key=("line", 2))
    assert not graph.has_edge(bus_of(net, "A3"), bus_of(net, "B3"))
    assert not graph.has_edge(bus_of(net, "STA-I"), bus_of(net, "STA-II"))


def test_bus_graph_ignoring_switches_closes_every_switch():
    net, _ = build_grid()
    graph = bus_graph(net, respect_switches=False)
    assert graph.has_edge(bus_of(net, "A3"), bus_of(net, "B3"), key=("line", 5))
    assert graph.has_edge(bus_of(net, "STA-I"), bus_of(net, "STA-II"))


def test_bus_graph_leaves_out_out_of_service_elements_unless_asked():
    net, _ = build_grid()
    net.line.loc[net.line["name"] == "LA2", "in_service"] = False
    net.bus.loc[bus_of(net, "A2-LV-END"), "in_service"] = False
    a1, a2 = bus_of(net, "A1"), bus_of(net, "A2")
    assert not bus_graph(net).has_edge(a1, a2)
    assert bus_of(net, "A2-LV-END") not in bus_graph(net)
    full = bus_graph(net, include_out_of_service=True)
    assert full.has_edge(a1, a2) and bus_of(net, "A2-LV-END") in full


# --- energised buses, supply paths, radiality -------------------------------------------------


def test_every_bus_is_energised_in_the_normal_state():
    net, _ = build_grid()
    assert source_buses(net) == {bus_of(net, "SRC")}
    assert energised_buses(net) == set(net.bus.index)


def test_opening_a_feeder_breaker_de_energises_exactly_its_feeder():
    net, _ = build_grid()
    set_switch(net, "LA1@STA-I", closed=False)
    assert energised_buses(net) == set(net.bus.index) - buses_named(net, FEEDER_A_BUSES)


def test_a_caller_named_source_energises_an_island():
    net, _ = build_grid()
    set_switch(net, "LA1@STA-I", closed=False)
    island = energised_buses(net, sources={bus_of(net, "A2-LV")})
    assert island == buses_named(net, {"A2", "A2-LV", "A2-LV-END", "A1", "A3"})


def test_normal_state_is_radial_with_one_supply_path():
    net, _ = build_grid()
    names = ["SRC", "STA-I", "A1", "A2", "A3"]
    assert is_radial(net)
    assert supply_paths(net, bus_of(net, "A3")) == [[bus_of(net, n) for n in names]]


def test_closing_the_normally_open_point_meshes_the_grid_with_two_supply_paths():
    net, _ = build_grid()
    set_switch(net, "LT@B3", closed=True)
    via_a = [bus_of(net, n) for n in ("SRC", "STA-I", "A1", "A2", "A3")]
    via_b = [bus_of(net, n) for n in ("SRC", "STA-II", "B1", "B2", "B3", "A3")]
    assert not is_radial(net)
    assert supply_paths(net, bus_of(net, "A3")) == [via_a, via_b]
    assert supply_paths(net, bus_of(net, "A3"), max_paths=1) == [via_a]


def test_unsupplied_bus_has_no_supply_path_and_a_source_bus_supplies_itself():
    net, _ = build_grid()
    set_switch(net, "LA1@STA-I", closed=False)
    assert supply_paths(net, bus_of(net, "A2")) == []
    assert supply_paths(net, bus_of(net, "SRC")) == [[bus_of(net, "SRC")]]


def test_two_sources_in_one_radial_part_are_not_radial():
    net, _ = build_grid()
    pp.create_ext_grid(net, bus_of(net, "B3"), name="second grid")
    assert not is_radial(net)
    assert is_radial(net, sources={bus_of(net, "SRC")})


def test_a_supply_path_does_not_pass_through_a_second_source():
    net, _ = build_grid()
    pp.create_ext_grid(net, bus_of(net, "B3"), name="second grid")
    # B3 reaches A3 only through SRC, which supplies A3 along a shorter path of its own
    names = ["SRC", "STA-I", "A1", "A2", "A3"]
    assert supply_paths(net, bus_of(net, "A3")) == [[bus_of(net, n) for n in names]]


def test_radiality_of_a_bus_subset_sees_a_loop_inside_it():
    net, _ = build_grid()
    feeder_a = buses_named(net, FEEDER_A_BUSES)
    assert is_radial(net, feeder_a)
    pp.create_switch(net, bus_of(net, "A1"), bus_of(net, "A3"), et="b", name="BYPASS")
    assert not is_radial(net, feeder_a)


def test_supply_paths_rejects_an_unknown_bus():
    net, _ = build_grid()
    with pytest.raises(ModelError, match="bus"):
        supply_paths(net, 999)


# --- sections ------------------------------------------------------------------------------------


def test_sections_are_bounded_by_switches_not_by_lines():
    net, _ = build_grid()
    found = sections(net)
    # 9 bus sections (the LV side joins A2) and 8 cables switched at both ends (LT joins A3)
    assert len(found) == 17
    a2 = section_of_bus(found, "A2")
    assert a2.buses == ("A2", "A2-LV", "A2-LV-END")
    assert a2.lines == ("LV-A2",) and a2.trafos == ("T-A2",)
    assert a2.bounding_switches == ("LA2@A2", "LA3@A2")


def test_a_line_switched_at_one_end_belongs_to_its_other_bus():
    net, _ = build_grid()
    a3 = section_of_line(sections(net), "LT")
    assert a3.name == "A3" and a3.buses == ("A3",) and a3.lines == ("LT",)
    assert a3.bounding_switches == ("LA3@A3", "LT@B3")


def test_a_line_switched_at_both_ends_is_a_section_of_its_own():
    net, _ = build_grid()
    la2 = section_of_line(sections(net), "LA2")
    assert la2.name == "LA2" and la2.buses == () and la2.lines == ("LA2",)
    assert la2.bounding_switches == ("LA2@A1", "LA2@A2")


def test_sections_partition_the_in_service_buses_and_lines():
    net, _ = build_grid()
    found = sections(net)
    all_buses = [b for s in found for b in s.buses]
    all_lines = [line for s in found for line in s.lines]
    assert sorted(all_buses) == sorted(net.bus["name"])
    assert sorted(all_lines) == sorted(net.line["name"])


def test_isolating_switches_are_the_closed_bounding_switches():
    net, _ = build_grid()
    found = sections(net)
    assert isolating_switches(net, section_of_bus(found, "A2")) == ("LA2@A2", "LA3@A2")
    # LT@B3 is already open: only the ring switch is left to open
    assert isolating_switches(net, section_of_bus(found, "A3")) == ("LA3@A3",)


def test_opening_the_isolating_switches_cuts_each_section_off_from_the_rest():
    net, _ = build_grid()
    for section in sections(net):
        if not section.buses:
            continue
        study = copy.deepcopy(net)
        for name in isolating_switches(study, section):
            set_switch(study, name, closed=False)
        inside = buses_named(study, set(section.buses))
        assert nx.node_connected_component(bus_graph(study), min(inside)) == inside, section.name


def test_section_lookup_of_an_unknown_bus_names_it():
    net, _ = build_grid()
    with pytest.raises(ModelError, match="'NOWHERE'"):
        section_of_bus(sections(net), "NOWHERE")


def test_unnamed_bus_is_a_model_error_naming_the_row():
    net, _ = build_grid()
    net.bus.loc[bus_of(net, "B2"), "name"] = None
    with pytest.raises(ModelError, match=r"net\.bus: row 7: field 'name'"):
        sections(net)


def test_duplicate_switch_name_is_a_model_error():
    net, _ = build_grid()
    net.switch.loc[net.switch["name"] == "LA2@A2", "name"] = "LA2@A1"
    with pytest.raises(ModelError, match=r"'LA2@A1'.*unique"):
        sections(net)


# --- feeders -----------------------------------------------------------------------------------


def test_feeders_in_the_normal_state_meet_at_the_normally_open_point():
    net, roles = build_grid()
    feeders = distribution_feeders(net, roles)
    assert [f.name for f in feeders] == ["LA1@STA-I", "LB1@STA-II"]
    a, b = feeders
    assert a.head_bus == "STA-I"
    assert a.buses == ("A1", "A2", "A3", "A2-LV", "A2-LV-END")
    assert a.lines == ("LA1", "LA2", "LA3", "LT", "LV-A2")
    assert a.trafos == ("T-A2",)
    assert b.buses == ("B1", "B2", "B3") and b.lines == ("LB3", "LB2", "LB1")
    assert a.open_points == b.open_points == ("LT@B3",)
    assert check_open_loop_feeders(net, roles) == []


def test_moving_the_open_point_moves_the_bus_to_the_other_feeder():
    net, roles = build_grid()
    set_switch(net, "LT@B3", closed=True)
    set_switch(net, "LA3@A3", closed=False)
    feeders = distribution_feeders(net, roles)
    a = feeder(feeders, "LA1@STA-I")
    b = feeder(feeders, "LB1@STA-II")
    assert set(a.buses) == {"A1", "A2", "A2-LV", "A2-LV-END"}
    assert b.buses == ("B1", "B2", "B3", "A3")
    assert "LA3" in a.lines and "LT" in b.lines  # LA3 stays charged from A2 up to the open switch
    assert a.open_points == b.open_points == ("LA3@A3",)
    assert feeder_of_bus(feeders, "A3") == b
    assert check_open_loop_feeders(net, roles) == []


def test_open_feeder_breaker_supplies_nothing():
    net, roles = build_grid()
    set_switch(net, "LA1@STA-I", closed=False)
    a = feeder(distribution_feeders(net, roles), "LA1@STA-I")
    assert a.buses == () and a.lines == () and a.open_points == ()
    assert feeder_of_bus(distribution_feeders(net, roles), "A2") is None


def test_backbone_bus_belongs_to_no_feeder():
    net, roles = build_grid()
    assert feeder_of_bus(distribution_feeders(net, roles), "STA-I") is None


def test_closed_normally_open_point_joins_two_feeders_and_is_reported():
    net, roles = build_grid()
    set_switch(net, "LT@B3", closed=True)
    problems = check_open_loop_feeders(net, roles)
    assert len(problems) == 1
    assert "LA1@STA-I" in problems[0] and "LB1@STA-II" in problems[0]
    assert "joined" in problems[0]
    with pytest.raises(ModelError, match="2 feeders"):
        feeder_of_bus(distribution_feeders(net, roles), "A3")


def test_loop_inside_a_feeder_is_reported_with_its_elements():
    net, roles = build_grid()
    pp.create_switch(net, bus_of(net, "A1"), bus_of(net, "A3"), et="b", name="BYPASS")
    problems = check_open_loop_feeders(net, roles)
    assert len(problems) == 1 and "LA1@STA-I is meshed" in problems[0]
    for element in ("LA2", "LA3", "BYPASS"):
        assert element in problems[0]


def test_feeder_reaching_another_station_section_is_reported():
    net, roles = build_grid()
    pp.create_switch(net, bus_of(net, "A3"), bus_of(net, "STA-II"), et="b", name="SPUR")
    problems = check_open_loop_feeders(net, roles)
    assert len(problems) == 1
    assert "LA1@STA-I reaches station section 'STA-II'" in problems[0]


def test_feeder_without_an_open_point_towards_another_feeder_is_reported():
    net, roles = build_grid()
    set_switch(net, "LA3@A2", closed=False)  # A3 and LT now dead: neither feeder meets the other
    problems = check_open_loop_feeders(net, roles)
    assert len(problems) == 2
    assert all("no open point towards another feeder" in p for p in problems)


def test_unknown_switch_in_roles_is_a_model_error():
    net, roles = build_grid()
    with pytest.raises(ModelError, match="'NO-SUCH'"):
        distribution_feeders(net, {**roles, "NO-SUCH": SwitchRole.RING_SWITCH})


def test_switch_roles_follow_the_registry_switch_rows():
    net, _ = build_grid()
    row = int(net.switch.index[net.switch["name"] == "LT@B3"][0])
    device = SwitchDevice(
        id="nop-1",
        bus="B3",
        element=ElementRef(table=ElementTable.SWITCH, index=row),
        switch_kind=SwitchKind.LOAD_BREAK_SWITCH,
        role=SwitchRole.NORMALLY_OPEN_POINT,
        switched_element="LT",
        normally_closed=False,
    )
    assert switch_roles(net, DeviceRegistry((device,))) == {"LT@B3": SwitchRole.NORMALLY_OPEN_POINT}
    stray = replace(device, id="stray", element=ElementRef(table=ElementTable.SWITCH, index=999))
    with pytest.raises(ModelError, match=r"'stray'.*element\.index"):
        switch_roles(net, DeviceRegistry((stray,)))


# --- IEEE 33-bus -------------------------------------------------------------------------------


def test_ieee33_is_radial_until_a_tie_line_is_put_in_service():
    net = pn.case33bw()
    assert energised_buses(net) == set(net.bus.index)
    assert is_radial(net)
    tie = net.line.index[(net.line["from_bus"] == 20) & (net.line["to_bus"] == 7)]
    assert len(tie) == 1 and not net.line.at[tie[0], "in_service"]
    net.line.loc[tie, "in_service"] = True
    assert not is_radial(net)
    assert len(supply_paths(net, 20)) == 2
