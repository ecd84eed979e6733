"""The Jiuke Oasis model follows the representative diamond-type grid of GRID.md."""

from __future__ import annotations

import math

import pandapower as pp

from network_models import GridModel
from network_models.registry import (
    Bess,
    EvChargingSite,
    EvSiteType,
    Load,
    PvSystem,
    SwitchDevice,
    SwitchRole,
)


def _switches(model: GridModel, role: SwitchRole) -> list[SwitchDevice]:
    return [s for s in model.registry.switches if s.role == role]


def test_two_substations_each_with_two_50_mva_transformers_and_an_open_bus_coupler(jiuke):
    assert len(jiuke.substations) == 2
    for sub in jiuke.substations:
        assert len(sub.transformers) == 2
        assert len(sub.sections) == 2
        for t in sub.transformers:
            assert jiuke.net.trafo.sn_mva.at[jiuke.trafo_index(t)] == 50
        assert not jiuke.net.switch.closed.at[jiuke.switch_index(sub.bus_coupler)]


def test_four_switching_stations_with_two_sections_and_a_normally_open_bus_tie(jiuke):
    assert len(jiuke.switching_stations) == 4
    for st in jiuke.switching_stations:
        tie = jiuke.registry[st.bus_tie]
        assert tie.role == SwitchRole.BUS_TIE and not tie.normally_closed
        sw = jiuke.net.switch.loc[jiuke.switch_index(st.bus_tie)]
        assert {int(sw.bus), int(sw.element)} == {jiuke.bus_index(b) for b in st.sections}


def test_every_station_section_is_fed_from_both_substations_by_closed_backbone_cables(jiuke):
    net = jiuke.net
    substation_of = {b: s.name for s in jiuke.substations for b in s.sections}
    for st in jiuke.switching_stations:
        for section in st.sections:
            b = jiuke.bus_index(section)
            feeding = set()
            for name in jiuke.backbone_lines:
                line = net.line.loc[jiuke.line_index(name)]
                ends = {net.bus.name.at[line.from_bus], net.bus.name.at[line.to_bus]}
                if section in ends:
                    (other,) = ends - {section}
                    feeding.add(substation_of[other])
                    assert net.line.protection.at[jiuke.line_index(name)] == "line_differential"
                    breakers = net.switch[
                        (net.switch.et == "l") & (net.switch.element == jiuke.line_index(name))
                    ]
                    assert len(breakers) == 2 and breakers.closed.all()
                    assert set(breakers.role) == {"backbone_breaker"}
            assert feeding == {"A", "B"}, f"{section} fed from {feeding}"
            assert b in net.bus.index


def test_each_open_loop_feeder_ring_has_exactly_one_normally_open_point(jiuke):
    net = jiuke.net
    loops = sorted({name.split("_")[1] for name in net.line.name if name.startswith("FD_")})
    assert len(loops) == 8
    for loop in loops:
        lines = net.line.index[net.line.name.str.startswith(f"FD_{loop}_")]
        sw = net.switch[(net.switch.et == "l") & net.switch.element.isin(lines)]
        assert (~sw.closed).sum() == 1, loop
        assert set(sw.role[~sw.closed]) == {"normally_open_point"}
        ends = {
            net.bus.name.at[net.line.from_bus.at[lines[0]]],
            net.bus.name.at[net.line.to_bus.at[lines[-1]]],
        }
        stations = {b.split("_")[0] for b in ends}
        assert len(stations) == 2, f"{loop} must join sections of different stations: {ends}"


def test_district_size_matches_the_representative_model(jiuke):
    reg = jiuke.registry
    peak_mw = sum(ld.p_peak_mw for ld in reg.of_type(Load))
    ev_mw = sum(ev.p_site_max_kw for ev in reg.of_type(EvChargingSite)) / 1000
    assert 40 <= peak_mw + ev_mw <= 50
    assert 10 <= sum(pv.p_mwp for pv in reg.of_type(PvSystem)) <= 15
    bess = reg.of_type(Bess)
    assert 3 <= len(bess) <= 4
    assert all(b.p_mw == 2.0 and b.e_mwh == 4.0 for b in bess)
    classes = {ld.customer_class.value for ld in reg.of_type(Load)}
    assert classes == {"office", "light_industry", "data_centre", "commerce", "residential"}


def test_ev_charging_covers_every_site_type_with_its_charger_class(jiuke):
    sites = jiuke.registry.ev_sites
    by_type = {t: [s for s in sites if s.site_type == t] for t in EvSiteType}
    assert all(by_type.values())
    assert all(s.p_connector_kw == 7 for s in by_type[EvSiteType.OFFICE_AC])
    assert all(s.p_connector_kw == 7 for s in by_type[EvSiteType.RESIDENTIAL_AC])
    assert all(60 <= s.p_connector_kw <= 120 for s in by_type[EvSiteType.PUBLIC_DC])
    assert all(s.p_connector_kw == 150 for s in by_type[EvSiteType.BUS_DEPOT])
    assert sum(s.n_connectors for s in sites) >= 400


def test_campus_microgrid_has_pv_and_a_grid_forming_bess_behind_one_breaker(jiuke):
    (mg,) = jiuke.microgrids
    breaker = jiuke.registry[mg.breaker]
    assert breaker.role == SwitchRole.MICROGRID_BREAKER and breaker.normally_closed
    inside = set(mg.buses)
    assert any(pv.bus in inside for pv in jiuke.registry.pv)
    bess = jiuke.registry[mg.grid_forming_bess]
    assert bess.bus in inside and bess.grid_forming and bess.island_reserve_frac > 0
    # opening the breaker separates exactly the microgrid buses from the grid
    net = jiuke.copy_net()
    net.switch.at[jiuke.switch_index(mg.breaker), "closed"] = False
    import pandapower.topology as top

    dead = {net.bus.name.at[b] for b in top.unsupplied_buses(net)}
    assert dead == inside


def test_every_bus_has_coordinates_and_every_assumption_is_named(jiuke):
    assert jiuke.net.bus.geo.notna().all()
    assert len(jiuke.assumptions) >= 10
    assert all(a.note for a in jiuke.assumptions.values())


def test_registry_covers_every_controllable_element_exactly_once(jiuke):
    net = jiuke.net
    seen: dict[tuple[str, int], str] = {}
    for d in jiuke.registry:
        if d.element.table in ("sgen", "storage", "load", "switch"):
            key = (d.element.table.value, d.element.index)
            assert key not in seen, f"{d.id} and {seen.get(key)} share {key}"
            seen[key] = d.id
    for table in ("sgen", "storage", "load", "switch"):
        rows = set(getattr(net, table).index)
        assert rows == {i for t, i in seen if t == table}, table
        for i in rows:
            assert getattr(net, table).name.at[i] == seen[(table, i)]


def test_every_write_point_has_limits_that_match_the_device_rating(jiuke):
    for d in jiuke.registry:
        for p in d.points:
            if p.access == "write" and p.dtype == "float":
                assert p.min_value is not None and p.max_value is not None, (d.id, p.name)
                assert p.min_value <= p.max_value
    bess = jiuke.registry.bess[0]
    sp = bess.point("p_set_mw")
    assert (sp.min_value, sp.max_value) == (-bess.p_mw, bess.p_mw)
    assert sp.accepts(bess.p_mw) and not sp.accepts(bess.p_mw * 1.01)
    assert not sp.accepts(math.nan) and not sp.accepts(True)


def test_base_case_converges_with_both_substations_sharing_the_load(jiuke):
    net = jiuke.copy_net()
    pp.runpp(net)
    p = net.res_ext_grid.p_mw.to_numpy()
    assert (p > 5).all(), p


def test_sixteen_open_loop_feeders_are_radial_each_ending_at_its_normally_open_point(jiuke):
    from network_models import topology

    roles = topology.switch_roles(jiuke.net, jiuke.registry)
    feeders = topology.distribution_feeders(jiuke.net, roles)
    assert len(feeders) == 16
    assert topology.check_open_loop_feeders(jiuke.net, roles) == []
    for f in feeders:
        assert len(f.open_points) == 1 and f.open_points[0].startswith("NO_")
    # the backbone is meshed on purpose, so the grid as a whole is not radial
    assert not topology.is_radial(jiuke.net)
