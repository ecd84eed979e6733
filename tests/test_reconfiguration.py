"""Loss-minimising reconfiguration: IEEE 33-bus against its published optimum, Jiuke Oasis radial.

IEEE 33-bus (Baran & Wu 1989; pandapower's case33bw data): base losses 202.68 kW; the optimum
radial configuration opens the branches 7-8, 9-10, 14-15, 32-33 and 25-29 (1-based buses),
139.55 kW, minimum voltage 0.9378 pu (e.g. Jabr et al., IEEE Trans. Power Syst. 2012). The
feeder has 50,751 radial configurations.
"""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from controllers.reconfiguration import ReconfigurationResult, reconfigure
from controllers.reconfiguration.ac import study_configurations
from controllers.reconfiguration.graph import switching_graph
from controllers.reconfiguration.radiality import (
    enumerate_radial_configurations,
    is_radial_configuration,
    radial_configuration_count,
)
from controllers.reconfiguration.records import SwitchingGraph
from gridctl.cli import main
from network_models import GridModel, load_model
from network_models.ac_checks import PEAK, apply_operating_point
from network_models.errors import InputError
from network_models.powerflow import TimeSeriesInjections, run_time_series
from network_models.registry import SwitchRole
from network_models.topology import check_open_loop_feeders, switch_roles

OPTIMUM_OPEN_LINES = {"line_7_8", "line_9_10", "line_14_15", "line_32_33", "line_25_29"}


@pytest.fixture(scope="module")
def case33() -> GridModel:
    return load_model("case33bw")


@pytest.fixture(scope="module")
def case33_result(case33) -> ReconfigurationResult:
    return reconfigure(case33)


@pytest.fixture(scope="module")
def jiuke_result(jiuke) -> ReconfigurationResult:
    return reconfigure(jiuke)


def open_lines(model: GridModel, result: ReconfigurationResult) -> set[str]:
    net = model.net
    rows = {d.id: d.element.index for d in model.registry.switches}
    lines = {int(net.switch.at[rows[s], "element"]) for s in result.open_switches}
    return {str(net.line.at[i, "name"]) for i in lines}


def apply_operations(model: GridModel, result: ReconfigurationResult):
    net = model.copy_net()
    rows = {d.id: d.element.index for d in model.registry.switches}
    for op in result.operations:
        net.switch.at[rows[op.device], "closed"] = op.action == "close"
    return net


# --- the graph -------------------------------------------------------------------------------


def test_ieee33_has_50751_radial_configurations_each_enumerated_once(case33):
    graph = switching_graph(case33, case33.net)
    assert radial_configuration_count(graph) == 50_751
    configurations = enumerate_radial_configurations(graph, limit=60_000)
    assert len(configurations) == 50_751
    assert len({row.tobytes() for row in configurations}) == 50_751
    assert all(is_radial_configuration(graph, row) for row in configurations[::501])


def test_a_loop_or_an_unfed_area_is_not_radial(case33):
    graph: SwitchingGraph = switching_graph(case33, case33.net)
    present = graph.present
    assert is_radial_configuration(graph, present)
    tie = next(i for i, b in enumerate(graph.branches) if b.line == "line_8_21")
    looped = present.copy()
    looped[tie] = True
    assert not is_radial_configuration(graph, looped)
    swapped = looped.copy()
    swapped[next(i for i, b in enumerate(graph.branches) if b.line == "line_1_2")] = False
    assert not is_radial_configuration(graph, swapped)  # right count, but buses 2.. unfed


def test_the_jiuke_backbone_is_one_supply_area_and_each_ring_one_loop(jiuke):
    graph = switching_graph(jiuke, jiuke.net)
    backbone_rows = {
        d.element.index for d in jiuke.registry.switches
        if d.role in (SwitchRole.BACKBONE_BREAKER, SwitchRole.BUS_TIE, SwitchRole.BUS_COUPLER)
    }
    assert graph.loops == 8  # the meshed backbone adds none
    assert not backbone_rows & {row for b in graph.branches for row in b.switches}
    assert radial_configuration_count(graph) == 7**8


def test_batch_study_of_configurations_agrees_with_the_time_series_power_flow(case33):
    net = case33.copy_net()
    apply_operating_point(case33, net, PEAK)
    graph = switching_graph(case33, net)
    configurations = enumerate_radial_configurations(graph, limit=60_000)[::5000]
    study = study_configurations(net, graph, configurations)
    for k, closed in enumerate(configurations):
        switched = copy.deepcopy(net)
        for branch, on in zip(graph.branches, closed, strict=True):
            switched.switch.loc[list(branch.switches), "closed"] = True
            if not on:
                switched.switch.at[branch.open_switch, "closed"] = False
        reference = run_time_series(switched, TimeSeriesInjections())
        assert study.converged[k] == reference.converged[0]  # some chains collapse
        if not reference.converged[0]:
            continue
        assert study.losses_mw[k] == pytest.approx(reference.losses_mw[0], rel=1e-9)
        assert study.v_min_pu[k] == pytest.approx(np.nanmin(reference.vm_pu[0]), abs=1e-9)


# --- IEEE 33-bus -----------------------------------------------------------------------------


def test_ieee33_exhaustive_search_finds_the_published_optimum(case33, case33_result):
    assert case33_result.method == "exhaustive" and case33_result.proven_optimal
    assert case33_result.configurations_evaluated == 50_751
    assert open_lines(case33, case33_result) == OPTIMUM_OPEN_LINES
    assert case33_result.before.losses_mw * 1e3 == pytest.approx(202.68, abs=0.01)
    assert case33_result.after.losses_mw * 1e3 == pytest.approx(139.55, abs=0.01)
    assert case33_result.after.v_min_pu == pytest.approx(0.9378, abs=1e-4)


def test_ieee33_optimum_is_radial_and_within_limits_where_the_base_case_is_not(case33_result):
    assert case33_result.radial
    assert not case33_result.before.within_limits  # 0.9131 pu at bus 18
    assert case33_result.after.within_limits


def test_ieee33_switching_closes_each_tie_before_opening_its_partner(case33, case33_result):
    ops = case33_result.operations
    assert [op.action for op in ops] == ["close", "open"] * 4  # tie 25-29 stays open
    graph = switching_graph(case33, case33.net)
    line_of = {b.line: i for i, b in enumerate(graph.branches)}
    closed = graph.present.copy()
    for close, open_ in zip(ops[::2], ops[1::2], strict=True):
        closed[line_of[close.line]], closed[line_of[open_.line]] = True, False
        assert is_radial_configuration(graph, closed)


def test_ieee33_milp_with_branch_exchange_also_reaches_the_optimum(case33):
    result = reconfigure(case33, method="milp")
    assert result.method == "milp+branch_exchange" and not result.proven_optimal
    assert open_lines(case33, result) == OPTIMUM_OPEN_LINES


def test_exhaustive_search_beyond_reach_is_refused_naming_the_method(jiuke):
    with pytest.raises(InputError, match="milp") as err:
        reconfigure(jiuke, method="exhaustive", max_exhaustive=1000)
    assert err.value.field == "method"


# --- Jiuke Oasis -----------------------------------------------------------------------------


def test_jiuke_reconfiguration_keeps_open_loop_feeders_within_limits(jiuke, jiuke_result):
    net = apply_operations(jiuke, jiuke_result)
    assert jiuke_result.radial and jiuke_result.after.within_limits
    assert check_open_loop_feeders(net, switch_roles(net, jiuke.registry)) == []
    assert jiuke_result.after.losses_mw <= jiuke_result.before.losses_mw


def test_jiuke_reconfiguration_switches_only_distribution_ring_switches(jiuke, jiuke_result):
    roles = {d.id: d.role for d in jiuke.registry.switches}
    assert {roles[op.device] for op in jiuke_result.operations} <= {
        SwitchRole.RING_SWITCH, SwitchRole.NORMALLY_OPEN_POINT,
    }
    assert len(jiuke_result.open_switches) == 8  # one open point per ring


def test_jiuke_reported_losses_are_those_of_the_switched_net(jiuke, jiuke_result):
    net = apply_operations(jiuke, jiuke_result)
    apply_operating_point(jiuke, net, PEAK)
    losses = run_time_series(net, TimeSeriesInjections()).losses_mw[0]
    assert losses == pytest.approx(jiuke_result.after.losses_mw, rel=1e-9)


# --- command line ----------------------------------------------------------------------------


def test_cli_reconfigure_json_gives_losses_and_switches(capsys):
    assert main(["grid", "reconfigure", "--model", "jiuke_oasis", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    for key in ("before", "after", "operations", "open_switches", "wall_time_s", "method"):
        assert key in data
    assert data["after"]["losses_mw"] <= data["before"]["losses_mw"]
    assert np.isfinite(data["loss_reduction_mw"])


def test_cli_reconfigure_prints_a_table_and_refuses_an_unknown_case(capsys):
    assert main(["grid", "reconfigure", "--model", "jiuke_oasis"]) == 0
    out = capsys.readouterr().out
    assert "before" in out and "after" in out and "losses kW" in out
    assert main(["grid", "reconfigure", "--case", "noon"]) == 2
    assert "--case" in capsys.readouterr().err
