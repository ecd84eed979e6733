"""The chosen configuration as switch states, switching operations and AC figures.

Operations are make-before-break: each branch to close is paired with a branch to open on the
loop it makes, so the feeders stay radial between pairs. Units: MW, pu, percent.
"""

from __future__ import annotations

import copy

import numpy as np
import pandapower as pp

from controllers.reconfiguration.radiality import is_radial_configuration, tree_path
from controllers.reconfiguration.records import AcFigures, SwitchingGraph, SwitchOperation
from network_models.ac_checks import AcLimits
from network_models.model import GridModel
from network_models.powerflow import TimeSeriesInjections, run_time_series

__all__ = ["ac_figures", "open_devices", "switch_operations", "with_configuration"]


def with_configuration(
    net: pp.pandapowerNet, graph: SwitchingGraph, closed: np.ndarray
) -> pp.pandapowerNet:
    """A copy of ``net`` with branches closed (all their switches) or opened at ``open_switch``.

    A branch that stays open keeps the switches it is open at now.
    """
    out = copy.deepcopy(net)
    present = graph.present
    for branch, on, was_on in zip(graph.branches, closed, present, strict=True):
        if on:
            out.switch.loc[list(branch.switches), "closed"] = True
        elif was_on:
            out.switch.at[branch.open_switch, "closed"] = False
    return out


def ac_figures(net: pp.pandapowerNet, limits: AcLimits) -> AcFigures:
    """AC power flow of ``net`` as it is, against ``limits``."""
    result = run_time_series(net, TimeSeriesInjections())
    converged = bool(result.converged[0])
    vm = result.vm_pu[0]
    live = vm[np.isfinite(vm)]
    line = float(np.nanmax(result.line_loading_pct[0])) if result.line_loading_pct.size else 0.0
    trafo = float(np.nanmax(result.trafo_loading_pct[0])) if result.trafo_loading_pct.size else 0.0
    v_min = float(live.min()) if live.size else float("nan")
    v_max = float(live.max()) if live.size else float("nan")
    within = (
        converged
        and limits.v_min_pu <= v_min
        and v_max <= limits.v_max_pu
        and line <= limits.max_line_loading_pct
        and trafo <= limits.max_trafo_loading_pct
    )
    return AcFigures(
        losses_mw=float(result.losses_mw[0]),
        v_min_pu=v_min,
        v_max_pu=v_max,
        max_line_loading_pct=line,
        max_trafo_loading_pct=trafo,
        converged=converged,
        within_limits=bool(within),
    )


def _device_of_row(model: GridModel) -> dict[int, str]:
    return {int(d.element.index): d.id for d in model.registry.switches}


def open_devices(
    model: GridModel, net: pp.pandapowerNet, graph: SwitchingGraph
) -> tuple[str, ...]:
    """The devices (registry ids, else switch names) of the open switchable switches of ``net``."""
    device = _device_of_row(model)
    rows = sorted(
        row for b in graph.branches for row in b.switches if not bool(net.switch.at[row, "closed"])
    )
    return tuple(device.get(row, str(net.switch.at[row, "name"])) for row in rows)


def switch_operations(
    model: GridModel,
    net: pp.pandapowerNet,
    graph: SwitchingGraph,
    present: np.ndarray,
    target: np.ndarray,
) -> tuple[SwitchOperation, ...]:
    """Close-then-open pairs, each keeping the feeders radial between pairs (make before break).

    Each branch to close is paired with a branch to open on the loop it makes; when the present
    state is not radial, all closings come first, then all openings.
    """
    device = _device_of_row(model)
    steps: list[tuple[str, int]] = []
    current = present.copy()
    to_close = [int(i) for i in np.flatnonzero(target & ~present)]
    to_open = [int(i) for i in np.flatnonzero(~target & present)]
    if is_radial_configuration(graph, present):
        for branch in to_close:
            partner = next(i for i in tree_path(graph, current, branch) if not target[i])
            steps += [
                *_close_steps(net, graph, branch),
                ("open", graph.branches[partner].open_switch),
            ]
            current[branch], current[partner] = True, False
    else:
        for branch in to_close:
            steps += _close_steps(net, graph, branch)
        steps += [("open", graph.branches[i].open_switch) for i in to_open]
    line_of_row = {row: b.line for b in graph.branches for row in b.switches}
    return tuple(
        SwitchOperation(
            step=k,
            action=action,  # type: ignore[arg-type]
            device=device.get(row, str(net.switch.at[row, "name"])),
            switch=str(net.switch.at[row, "name"]),
            line=line_of_row[row],
        )
        for k, (action, row) in enumerate(steps, start=1)
    )


def _close_steps(
    net: pp.pandapowerNet, graph: SwitchingGraph, branch: int
) -> list[tuple[str, int]]:
    return [
        ("close", row)
        for row in graph.branches[branch].switches
        if not bool(net.switch.at[row, "closed"])
    ]
