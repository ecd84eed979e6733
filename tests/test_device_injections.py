"""Per-device values (registry ids and signs) become the power flow's injections in one place."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

from network_models.errors import InputError
from network_models.model import GridModel
from network_models.powerflow import device_injections, run_time_series


def _row(model: GridModel, table: str, device_id: str) -> int:
    return int(model.net[table].index.get_loc(model.registry[device_id].element.index))


def test_a_discharging_battery_is_negative_storage_and_its_reactive_injection_too(
    jiuke: GridModel,
) -> None:
    injections = device_injections(
        jiuke.net, jiuke.registry, bess_p_mw={"BESS_1": 0.5}, bess_q_mvar={"BESS_1": 0.2}
    )
    k = _row(jiuke, "storage", "BESS_1")
    assert injections.storage_p_mw[0, k] == -0.5  # pandapower storage consumes
    assert injections.storage_q_mvar[0, k] == -0.2


def test_pv_generates_and_loads_and_ev_sites_consume_with_their_registry_sign(
    jiuke: GridModel,
) -> None:
    injections = device_injections(
        jiuke.net, jiuke.registry,
        pv_p_mw={"PV_L1_1": 0.3}, pv_q_mvar={"PV_L1_1": -0.1},
        load_p_mw={"LD_L1_1": 0.7}, load_q_mvar={"LD_L1_1": 0.2},
        ev_site_p_mw={"EV_L1_1": 0.4},
    )
    pv, load, ev = (_row(jiuke, "sgen", "PV_L1_1"), _row(jiuke, "load", "LD_L1_1"),
                    _row(jiuke, "load", "EV_L1_1"))
    assert (injections.sgen_p_mw[0, pv], injections.sgen_q_mvar[0, pv]) == (0.3, -0.1)
    assert (injections.load_p_mw[0, load], injections.load_q_mvar[0, load]) == (0.7, 0.2)
    assert injections.load_p_mw[0, ev] == 0.4


def test_what_is_not_given_keeps_static_loads_and_sgens_idle_storage_and_no_ev_reactive_power(
    jiuke: GridModel,
) -> None:
    net = copy.deepcopy(jiuke.net)
    net.storage["p_mw"] = 0.25  # a static value the series must not take: batteries are idle
    ev_rows = [_row(jiuke, "load", d.id) for d in jiuke.registry.ev_sites]
    net.load.iloc[ev_rows, net.load.columns.get_loc("q_mvar")] = 0.05
    injections = device_injections(net, jiuke.registry, steps=3)
    static_q = net.load["q_mvar"].to_numpy().copy()
    static_q[ev_rows] = 0.0
    np.testing.assert_array_equal(injections.load_p_mw, np.tile(net.load["p_mw"], (3, 1)))
    np.testing.assert_array_equal(injections.load_q_mvar, np.tile(static_q, (3, 1)))
    np.testing.assert_array_equal(injections.sgen_p_mw, np.tile(net.sgen["p_mw"], (3, 1)))
    np.testing.assert_array_equal(injections.storage_p_mw, np.zeros((3, len(net.storage))))


def test_frame_rows_are_steps_and_a_number_holds_for_every_step(jiuke: GridModel) -> None:
    index = pd.date_range("2026-07-15", periods=4, freq="15min", tz="Asia/Shanghai")
    pv = pd.DataFrame({"PV_L1_1": [0.0, 0.1, 0.2, 0.3]}, index=index)
    injections = device_injections(
        jiuke.net, jiuke.registry, pv_p_mw=pv, bess_p_mw={"BESS_1": -0.4}
    )
    assert injections.sgen_p_mw.shape == (4, len(jiuke.net.sgen))
    np.testing.assert_array_equal(
        injections.sgen_p_mw[:, _row(jiuke, "sgen", "PV_L1_1")], [0.0, 0.1, 0.2, 0.3]
    )
    np.testing.assert_array_equal(
        injections.storage_p_mw[:, _row(jiuke, "storage", "BESS_1")], [0.4] * 4
    )


def test_a_discharging_battery_lowers_the_grid_import_by_about_its_power(
    jiuke: GridModel,
) -> None:
    idle = run_time_series(jiuke.net, device_injections(jiuke.net, jiuke.registry))
    discharging = run_time_series(
        jiuke.net, device_injections(jiuke.net, jiuke.registry, bess_p_mw={"BESS_1": 0.5})
    )
    drop_mw = idle.ext_grid_p_mw.sum() - discharging.ext_grid_p_mw.sum()
    assert drop_mw == pytest.approx(0.5, abs=0.02)  # the rest is the change in losses


def test_an_id_of_another_kind_is_refused_naming_the_argument_and_the_id(
    jiuke: GridModel,
) -> None:
    with pytest.raises(InputError, match="not one of the registry's loads") as caught:
        device_injections(jiuke.net, jiuke.registry, load_p_mw={"PV_L1_1": 0.1})
    assert (caught.value.field, caught.value.element) == ("load_p_mw", "PV_L1_1")


def test_values_of_different_lengths_are_refused(jiuke: GridModel) -> None:
    with pytest.raises(InputError, match="expected 2 steps") as caught:
        device_injections(
            jiuke.net, jiuke.registry,
            pv_p_mw={"PV_L1_1": [0.1, 0.2]}, bess_p_mw={"BESS_1": [0.1, 0.2, 0.3]},
        )
    assert caught.value.field == "bess_p_mw"


def test_non_finite_values_are_refused(jiuke: GridModel) -> None:
    with pytest.raises(InputError, match="finite") as caught:
        device_injections(jiuke.net, jiuke.registry, ev_site_p_mw={"EV_L1_1": [0.1, np.nan]})
    assert (caught.value.field, caught.value.element) == ("ev_site_p_mw", "EV_L1_1")
