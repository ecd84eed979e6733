"""The time-series power flow: power-grid-model batch agrees with pandapower's runpp."""

from __future__ import annotations

import copy
from functools import cache

import numpy as np
import pandapower as pp
import pandapower.networks as pn
import pytest

from network_models.errors import InputError
from network_models.powerflow import (
    PowerFlowEngine,
    TimeSeriesInjections,
    TimeSeriesResult,
    run_time_series,
)

V_TOL_PU = 1e-6
LOADING_TOL_PCT = 1e-3
PGM = PowerFlowEngine.POWER_GRID_MODEL
STATIC = TimeSeriesInjections()


def runpp_reference(net: pp.pandapowerNet) -> pp.pandapowerNet:
    """pandapower's own answer: runpp with its defaults on a copy."""
    solved = copy.deepcopy(net)
    pp.runpp(solved)
    return solved


def assert_matches_runpp(result: TimeSeriesResult, solved: pp.pandapowerNet, step: int = 0) -> None:
    vm_ref = solved.res_bus["vm_pu"].to_numpy()
    np.testing.assert_array_equal(np.isnan(result.vm_pu[step]), np.isnan(vm_ref))
    np.testing.assert_allclose(result.vm_pu[step], vm_ref, rtol=0, atol=V_TOL_PU)
    np.testing.assert_allclose(
        result.va_degree[step], solved.res_bus["va_degree"].to_numpy(), rtol=0, atol=1e-4
    )
    np.testing.assert_allclose(
        result.line_loading_pct[step],
        np.nan_to_num(solved.res_line["loading_percent"].to_numpy()),
        rtol=0, atol=LOADING_TOL_PCT,
    )
    if len(solved.trafo):
        np.testing.assert_allclose(
            result.trafo_loading_pct[step],
            np.nan_to_num(solved.res_trafo["loading_percent"].to_numpy()),
            rtol=0, atol=LOADING_TOL_PCT,
        )
    np.testing.assert_allclose(
        result.ext_grid_p_mw[step], solved.res_ext_grid["p_mw"].to_numpy(), rtol=0, atol=1e-6
    )
    np.testing.assert_allclose(
        result.ext_grid_q_mvar[step], solved.res_ext_grid["q_mvar"].to_numpy(), rtol=0, atol=1e-6
    )


@cache
def _pristine(name: str) -> pp.pandapowerNet:
    # building a pandapower net costs far more than copying one
    if name == "case33bw":
        return pn.case33bw()
    if name == "cigre_mv_der":
        net = pn.create_cigre_network_mv(with_der="all")
        net.storage["max_e_mwh"] = 4.0  # NaN in the benchmark; irrelevant to the power flow
        return net
    return _build_transformer_test_net()


def case33bw() -> pp.pandapowerNet:
    return copy.deepcopy(_pristine("case33bw"))


def case33bw_meshed() -> pp.pandapowerNet:
    net = case33bw()
    net.line["in_service"] = True  # the five tie lines of Baran & Wu are the out-of-service ones
    return net


def cigre_mv_der() -> pp.pandapowerNet:
    return copy.deepcopy(_pristine("cigre_mv_der"))


def transformer_test_net() -> pp.pandapowerNet:
    return copy.deepcopy(_pristine("transformer_test_net"))


def _build_transformer_test_net() -> pp.pandapowerNet:
    """Every element kind the converter handles, with off-nominal ratings and taps on both sides.

    110/10.5 kV into 10 kV buses with an LV tap and Dyn5 shift, a 10/0.4 kV transformer with a
    tap that also turns the angle, a fused bus-bus switch, a bus-bus switch with impedance, an
    open line switch, parallel cables, a line with shunt conductance, ZIP and scaled loads,
    storage, two shunts and an out-of-service load.
    """
    net = pp.create_empty_network(f_hz=50.0)
    hv = pp.create_bus(net, 110.0)
    a, a2, b, c, d, e, f = (pp.create_bus(net, 10.0) for _ in range(7))
    lv = pp.create_bus(net, 0.4)
    pp.create_ext_grid(net, hv, vm_pu=1.02, va_degree=5.0)
    pp.create_transformer_from_parameters(
        net, hv, a, sn_mva=40, vn_hv_kv=110, vn_lv_kv=10.5, vk_percent=10.5, vkr_percent=0.4,
        pfe_kw=30, i0_percent=0.4, shift_degree=150, tap_side="lv", tap_neutral=0, tap_pos=-2,
        tap_step_percent=1.25, tap_changer_type="Ratio", tap_min=-8, tap_max=8,
    )
    pp.create_switch(net, a, a2, "b", closed=True)
    cable = "NA2XS2Y 1x240 RM/25 12/20 kV"
    pp.create_line(net, a2, b, 2.0, cable)
    pp.create_line(net, b, c, 1.5, cable, parallel=2)
    pp.create_line_from_parameters(
        net, c, d, 1.0, r_ohm_per_km=0.2, x_ohm_per_km=0.1, c_nf_per_km=300, max_i_ka=0.35,
        g_us_per_km=2.0, df=0.8,
    )
    pp.create_switch(net, c, e, "b", closed=True, z_ohm=0.5)
    pp.create_line(net, e, f, 1.0, cable)
    ring_tie = pp.create_line(net, f, b, 1.0, cable)
    pp.create_switch(net, b, ring_tie, "l", closed=False)
    pp.create_transformer_from_parameters(
        net, d, lv, sn_mva=0.63, vn_hv_kv=10, vn_lv_kv=0.4, vk_percent=6, vkr_percent=1.0,
        pfe_kw=1.2, i0_percent=0.3, shift_degree=150, tap_side="hv", tap_neutral=0, tap_pos=1,
        tap_step_percent=2.5, tap_step_degree=5, tap_changer_type="Ratio", tap_min=-2, tap_max=2,
    )
    pp.create_load(net, b, 2.0, 0.5, const_z_p_percent=30, const_i_p_percent=20,
                   const_i_q_percent=40)
    pp.create_load(net, c, 1.0, 0.3, scaling=0.8)
    pp.create_load(net, lv, 0.3, 0.1)
    pp.create_load(net, f, 0.3, 0.1)
    pp.create_load(net, e, 0.1, 0.0, in_service=False)
    pp.create_sgen(net, d, 1.5, -0.2)
    pp.create_sgen(net, lv, 0.2, 0.0, scaling=0.5)
    pp.create_storage(net, c, p_mw=0.5, max_e_mwh=2.0, q_mvar=0.1)
    pp.create_shunt(net, a, q_mvar=-0.8, p_mw=0.01, step=2, vn_kv=10.5)
    pp.create_shunt(net, c, q_mvar=0.3, p_mw=0.0)
    return net


def daily_injections(net: pp.pandapowerNet, steps: int) -> TimeSeriesInjections:
    hours = np.arange(steps) * 24.0 / steps
    load_shape = 0.7 + 0.3 * np.sin(2 * np.pi * (hours - 9.0) / 24.0)
    pv_shape = np.clip(np.sin(np.pi * (hours - 6.0) / 12.0), 0.0, None)
    return TimeSeriesInjections(
        load_p_mw=np.outer(load_shape, net.load["p_mw"]),
        load_q_mvar=np.outer(load_shape, net.load["q_mvar"]),
        sgen_p_mw=np.outer(pv_shape, net.sgen["p_mw"]),
        storage_p_mw=np.outer(np.cos(2 * np.pi * hours / 24.0), 0.5 * np.ones(len(net.storage))),
    )


# --- agreement with runpp ---------------------------------------------------------------------


def test_case33bw_radial_matches_runpp_and_out_of_service_ties_carry_nothing() -> None:
    net = case33bw()
    result = run_time_series(net, STATIC, engine=PGM)
    assert_matches_runpp(result, runpp_reference(net))
    ties = ~net.line["in_service"].to_numpy()
    assert ties.sum() == 5
    assert np.all(result.line_i_ka[0, ties] == 0.0)


def test_case33bw_published_base_case_losses_and_minimum_voltage() -> None:
    # Baran & Wu (1989): 202.68 kW losses, minimum 0.9131 pu at bus 18 (index 17)
    result = run_time_series(case33bw(), STATIC, engine=PGM)
    assert result.losses_mw[0] * 1e3 == pytest.approx(202.68, abs=0.01)
    assert int(np.argmin(result.vm_pu[0])) == 17
    assert result.vm_pu[0].min() == pytest.approx(0.9131, abs=5e-5)


def test_case33bw_with_tie_lines_closed_matches_runpp() -> None:
    net = case33bw_meshed()
    result = run_time_series(net, STATIC, engine=PGM)
    assert_matches_runpp(result, runpp_reference(net))
    assert result.vm_pu[0].min() > 0.93  # meshing lifts the 0.913 pu radial minimum


def test_cigre_mv_with_der_and_open_line_switches_matches_runpp() -> None:
    net = cigre_mv_der()
    assert (~net.switch["closed"]).sum() == 3  # S1..S3: lines energised from one end only
    assert_matches_runpp(run_time_series(net, STATIC, engine=PGM), runpp_reference(net))


def test_taps_off_nominal_ratings_zip_loads_shunts_and_switches_match_runpp() -> None:
    net = transformer_test_net()
    assert_matches_runpp(run_time_series(net, STATIC, engine=PGM), runpp_reference(net))


def test_every_step_of_a_series_matches_runpp_with_that_steps_values() -> None:
    net = cigre_mv_der()
    injections = daily_injections(net, steps=4)
    result = run_time_series(net, injections, engine=PGM)
    assert result.converged.all()
    for step in (1, 3):
        stepped = copy.deepcopy(net)
        stepped.load["p_mw"] = injections.load_p_mw[step]
        stepped.load["q_mvar"] = injections.load_q_mvar[step]
        stepped.sgen["p_mw"] = injections.sgen_p_mw[step]
        stepped.storage["p_mw"] = injections.storage_p_mw[step]
        assert_matches_runpp(result, runpp_reference(stepped), step=step)


def test_pandapower_engine_agrees_with_power_grid_model_engine_over_a_series() -> None:
    net = transformer_test_net()
    injections = daily_injections(net, steps=3)
    by_pp = run_time_series(net, injections, engine=PowerFlowEngine.PANDAPOWER)
    by_pgm = run_time_series(net, injections, engine=PGM)
    assert by_pp.engine is PowerFlowEngine.PANDAPOWER and by_pgm.engine is PGM
    np.testing.assert_allclose(by_pgm.vm_pu, by_pp.vm_pu, rtol=0, atol=V_TOL_PU)
    np.testing.assert_allclose(by_pgm.line_loading_pct, by_pp.line_loading_pct, atol=1e-3)
    np.testing.assert_allclose(by_pgm.trafo_loading_pct, by_pp.trafo_loading_pct, atol=1e-3)
    np.testing.assert_allclose(by_pgm.losses_mw, by_pp.losses_mw, rtol=0, atol=1e-6)


# --- topology ---------------------------------------------------------------------------------


def test_open_line_switch_islands_buses_which_are_nan_in_both_engines() -> None:
    net = case33bw()
    feeding = int(net.line.index[(net.line.from_bus == 14) & (net.line.to_bus == 15)][0])
    pp.create_switch(net, bus=15, element=feeding, et="l", closed=False)
    solved = runpp_reference(net)
    result = run_time_series(net, STATIC, engine=PGM)
    dead = np.isnan(result.vm_pu[0])
    assert sorted(net.bus.index[dead]) == [15, 16, 17]  # the end of the lateral past bus 14
    assert_matches_runpp(result, solved)
    inside = net.line.from_bus.isin([15, 16]).to_numpy()
    assert np.all(result.line_loading_pct[0, inside] == 0.0)


def test_open_transformer_switch_de_energises_its_feeder() -> None:
    net = cigre_mv_der()
    feeder_2_trafo = int(net.trafo.index[net.trafo.lv_bus == 12][0])
    at_trafo = (net.switch.et == "t") & (net.switch.element == feeder_2_trafo)
    net.switch.loc[at_trafo, "closed"] = False
    result = run_time_series(net, STATIC, engine=PGM)
    assert sorted(net.bus.index[np.isnan(result.vm_pu[0])]) == [12, 13, 14]
    assert result.trafo_loading_pct[0, net.trafo.index.get_loc(feeder_2_trafo)] == 0.0
    assert_matches_runpp(result, runpp_reference(net))


def test_transformer_open_at_lv_switch_still_draws_magnetising_current_like_runpp() -> None:
    net = transformer_test_net()
    lv_bus = int(net.trafo.at[1, "lv_bus"])
    pp.create_switch(net, bus=lv_bus, element=1, et="t", closed=False)
    result = run_time_series(net, STATIC, engine=PGM)
    assert np.isnan(result.vm_pu[0, lv_bus])
    assert 0.0 < result.trafo_loading_pct[0, 1] < 1.0  # i0 = 0.3 %, the LV end floats
    assert_matches_runpp(result, runpp_reference(net))


def test_transformer_at_out_of_service_bus_is_dropped_whole_like_runpp() -> None:
    net = transformer_test_net()
    net.bus.loc[net.trafo.at[1, "lv_bus"], "in_service"] = False
    result = run_time_series(net, STATIC, engine=PGM)
    assert result.trafo_loading_pct[0, 1] == 0.0
    assert_matches_runpp(result, runpp_reference(net))


def test_out_of_service_ext_grid_leaves_its_part_dead_and_reports_zero_import() -> None:
    net = cigre_mv_der()
    # feed the second feeder from a grid of its own, then take that grid out
    own_hv_bus = pp.create_bus(net, 110.0)
    net.trafo.loc[net.trafo.lv_bus == 12, "hv_bus"] = own_hv_bus
    own_grid = pp.create_ext_grid(net, own_hv_bus, vm_pu=1.03)
    both_fed = run_time_series(net, STATIC, engine=PGM)
    assert both_fed.ext_grid_p_mw[0, 1] > 1.0
    net.ext_grid.loc[own_grid, "in_service"] = False
    result = run_time_series(net, STATIC, engine=PGM)
    assert result.ext_grid_p_mw[0, 1] == 0.0
    assert sorted(net.bus.index[np.isnan(result.vm_pu[0])]) == [12, 13, 14, own_hv_bus]
    assert_matches_runpp(result, runpp_reference(net))


def test_closed_bus_bus_switch_fuses_buses_to_one_voltage() -> None:
    net = transformer_test_net()
    sw = net.switch[(net.switch.et == "b") & (net.switch.z_ohm == 0)].iloc[0]
    result = run_time_series(net, STATIC, engine=PGM)
    assert result.vm_pu[0, sw["bus"]] == result.vm_pu[0, sw["element"]]


def test_net_without_any_source_is_dead_in_both_engines() -> None:
    net = case33bw()
    net.ext_grid["in_service"] = False
    for engine in PowerFlowEngine:
        result = run_time_series(net, STATIC, engine=engine)
        assert np.isnan(result.vm_pu).all()
        assert result.converged.all() and np.all(result.line_loading_pct == 0)


# --- physics and signs ------------------------------------------------------------------------


def test_import_equals_consumption_minus_generation_plus_losses() -> None:
    net = cigre_mv_der()  # constant-power loads and no shunts: the balance is exact
    injections = daily_injections(net, steps=6)
    result = run_time_series(net, injections, engine=PGM)
    consumed = (injections.load_p_mw * net.load["scaling"].to_numpy()).sum(axis=1)
    charged = (injections.storage_p_mw * net.storage["scaling"].to_numpy()).sum(axis=1)
    generated = (injections.sgen_p_mw * net.sgen["scaling"].to_numpy()).sum(axis=1)
    np.testing.assert_allclose(
        result.ext_grid_p_mw.sum(axis=1), consumed + charged - generated + result.losses_mw,
        rtol=0, atol=1e-6,
    )


def test_charging_storage_raises_import_and_discharging_lowers_it() -> None:
    net = cigre_mv_der()
    storage_p_mw = np.array([[0.0, 0.0], [0.6, 0.2], [-0.6, -0.2]])
    result = run_time_series(net, TimeSeriesInjections(storage_p_mw=storage_p_mw), engine=PGM)
    idle, charging, discharging = result.ext_grid_p_mw[:, 0]
    assert charging - idle > 0.8 * 0.99
    assert idle - discharging > 0.8 * 0.95


def test_missing_series_keep_static_values() -> None:
    net = cigre_mv_der()
    static = run_time_series(net, STATIC, engine=PGM)
    repeated = TimeSeriesInjections(sgen_p_mw=np.tile(net.sgen["p_mw"].to_numpy(), (2, 1)))
    result = run_time_series(net, repeated, engine=PGM)
    assert result.steps == 2
    np.testing.assert_allclose(result.vm_pu, np.repeat(static.vm_pu, 2, axis=0), atol=1e-12)


# --- failures ---------------------------------------------------------------------------------


@pytest.mark.parametrize("engine", list(PowerFlowEngine))
def test_step_that_does_not_converge_is_nan_and_flagged_not_raised(engine: PowerFlowEngine) -> None:
    net = case33bw()
    base = net.load["p_mw"].to_numpy()
    injections = TimeSeriesInjections(load_p_mw=np.vstack([base, base * 50, base]))
    result = run_time_series(net, injections, engine=engine)
    assert result.converged.tolist() == [True, False, True]
    assert np.isnan(result.vm_pu[1]).all() and np.isnan(result.losses_mw[1])
    np.testing.assert_allclose(result.vm_pu[2], result.vm_pu[0], atol=1e-9)


def test_pandapower_engine_leaves_the_net_unchanged() -> None:
    net = case33bw()
    p_before = net.load["p_mw"].copy()
    run_time_series(
        net, TimeSeriesInjections(load_p_mw=np.tile(p_before.to_numpy() * 0.5, (2, 1))),
        engine=PowerFlowEngine.PANDAPOWER,
    )
    assert net.load["p_mw"].equals(p_before)
    assert net.res_bus.empty


def test_in_service_generator_is_refused_by_the_converter_with_its_table_named() -> None:
    net = case33bw()
    pp.create_gen(net, bus=17, p_mw=0.5, vm_pu=1.0)
    with pytest.raises(NotImplementedError, match=r"net\.gen"):
        run_time_series(net, STATIC, engine=PGM)
    net.gen["in_service"] = False
    assert run_time_series(net, STATIC, engine=PGM).converged.all()


def test_series_of_wrong_width_names_the_field_and_expected_shape() -> None:
    net = case33bw()
    with pytest.raises(InputError, match=r"load_p_mw.*\(steps, 32\)"):
        run_time_series(net, TimeSeriesInjections(load_p_mw=np.ones((4, 31))))


def test_series_with_nan_names_the_step_and_element() -> None:
    net = cigre_mv_der()
    sgen_p_mw = np.ones((3, len(net.sgen)))
    sgen_p_mw[2, 4] = np.nan
    with pytest.raises(InputError, match=r"sgen_p_mw.*step 2.*index 4") as caught:
        run_time_series(net, TimeSeriesInjections(sgen_p_mw=sgen_p_mw))
    assert caught.value.field == "sgen_p_mw"


def test_series_of_different_lengths_are_refused() -> None:
    net = cigre_mv_der()
    with pytest.raises(InputError, match="sgen_p_mw"):
        run_time_series(net, TimeSeriesInjections(
            load_p_mw=np.ones((3, len(net.load))), sgen_p_mw=np.ones((2, len(net.sgen)))))
