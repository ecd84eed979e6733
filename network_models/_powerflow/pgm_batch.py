"""The power-grid-model engine: one batch calculation, one scenario per step.

``batch_update`` turns the injection series into update data (W, var) for the converted net's
sym_load and sym_gen rows; the output goes back into pandapower's units and row order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandapower as pp
from power_grid_model import (
    CalculationMethod,
    ComponentType,
    DatasetType,
    PowerGridModel,
    initialize_array,
)

from network_models._powerflow.injections import column_series
from network_models._powerflow.pgm_conversion import PgmNet
from network_models._powerflow.results import PowerFlowEngine, ResultArrays, TimeSeriesResult

_PGM_ERROR_TOLERANCE_PU = 1e-10
_PGM_MAX_ITERATIONS = 20


def run_power_grid_model(
    net: pp.pandapowerNet,
    pgm_net: PgmNet,
    model: PowerGridModel,
    series: dict[tuple[str, str], np.ndarray],
    steps: int,
) -> TimeSeriesResult:
    # without loads, sgens or storage nothing varies: one plain calculation stands for all steps
    update = batch_update(net, pgm_net, series, steps)
    return solve_batch(net, pgm_net, model, update, steps)


def solve_batch(
    net: pp.pandapowerNet,
    pgm_net: PgmNet,
    model: PowerGridModel,
    update: dict[ComponentType, np.ndarray],
    steps: int,
    ratings: BranchRatings | None = None,
) -> TimeSeriesResult:
    """One batch calculation of ``update`` (one scenario per step; empty: one for all steps).

    ``ratings`` saves reading them from the net again (they are read when absent).
    """
    output = model.calculate_power_flow(
        symmetric=True,
        calculation_method=CalculationMethod.newton_raphson,
        error_tolerance=_PGM_ERROR_TOLERANCE_PU,
        max_iterations=_PGM_MAX_ITERATIONS,
        update_data=update or None,
        continue_on_batch_error=True,
        output_component_types=[
            c for c in (ComponentType.node, ComponentType.line, ComponentType.generic_branch,
                        ComponentType.source) if c in pgm_net.input_data
        ],
    )
    output = {
        component: np.broadcast_to(data, (steps, *data.shape[-1:]))
        for component, data in output.items()
    }
    converged = np.ones(steps, dtype=bool)
    if model.batch_error is not None:
        converged[model.batch_error.failed_scenarios] = False
    return _results_from_pgm(net, pgm_net, output, converged, ratings)


def batch_update(
    net: pp.pandapowerNet,
    pgm_net: PgmNet,
    series: dict[tuple[str, str], np.ndarray],
    steps: int,
) -> dict[ComponentType, np.ndarray]:
    """One scenario per step with p and q of every sym_load and sym_gen (W, var)."""
    update: dict[ComponentType, np.ndarray] = {}
    for component, groups in (
        (ComponentType.sym_load, pgm_net.sym_load_rows),
        (ComponentType.sym_gen, pgm_net.sym_gen_rows),
    ):
        n = sum(len(rows.ids) for rows in groups)
        if n == 0:
            continue
        batch = initialize_array(DatasetType.update, component, (steps, n))
        start = 0
        for rows in groups:
            stop = start + len(rows.ids)
            scaling = net[rows.table]["scaling"].to_numpy(dtype=float)[rows.positions]
            for column, share, target in (("p_mw", rows.p_share, "p_specified"),
                                          ("q_mvar", rows.q_share, "q_specified")):
                values = column_series(net, series, rows.table, column, steps)
                batch[target][:, start:stop] = values[:, rows.positions] * scaling * share * 1e6
            batch["id"][:, start:stop] = rows.ids
            start = stop
        update[component] = batch
    return update


@dataclass(frozen=True)
class BranchRatings:
    """The net's columns that turn branch currents into loadings, read once (kA, kV, MVA)."""

    line_rating_ka: np.ndarray
    trafo_vn_hv_kv: np.ndarray
    trafo_vn_lv_kv: np.ndarray
    trafo_rating_mva: np.ndarray

    @classmethod
    def of(cls, net: pp.pandapowerNet) -> BranchRatings:
        line, tr = net.line, net.trafo
        return cls(
            line_rating_ka=(line["max_i_ka"] * line["df"] * line["parallel"]).to_numpy(float),
            trafo_vn_hv_kv=tr["vn_hv_kv"].to_numpy(dtype=float),
            trafo_vn_lv_kv=tr["vn_lv_kv"].to_numpy(dtype=float),
            trafo_rating_mva=(tr["sn_mva"] * tr["df"] * tr["parallel"]).to_numpy(dtype=float),
        )


def _results_from_pgm(
    net: pp.pandapowerNet,
    pgm_net: PgmNet,
    output: dict[ComponentType, np.ndarray],
    converged: np.ndarray,
    ratings: BranchRatings | None = None,
) -> TimeSeriesResult:
    ratings = ratings or BranchRatings.of(net)
    steps = converged.shape[0]
    out = ResultArrays.empty(net, steps)
    out.converged[:] = converged
    node = output[ComponentType.node][:, pgm_net.node_of_bus]
    alive = (node["energized"] == 1) & pgm_net.bus_in_service
    out.vm_pu[:] = np.where(alive, node["u_pu"], np.nan)
    out.va_degree[:] = np.where(alive, np.rad2deg(node["u_angle"]), np.nan)

    losses = np.zeros(steps)
    if len(net.line):
        line = output[ComponentType.line][:, : len(net.line)]
        i_ka = np.maximum(line["i_from"], line["i_to"]) / 1e3
        out.line_i_ka[:] = i_ka
        out.line_loading_pct[:] = _percent(i_ka, ratings.line_rating_ka)
        _store_branch_flows(out, "line", line, ("p_from_mw", "q_from_mvar", "p_to_mw", "q_to_mvar"))
        losses += (line["p_from"] + line["p_to"]).sum(axis=1) / 1e6
    if len(net.trafo):
        trafo = output[ComponentType.generic_branch]
        s_hv = trafo["i_from"] / 1e3 * ratings.trafo_vn_hv_kv
        s_lv = trafo["i_to"] / 1e3 * ratings.trafo_vn_lv_kv
        out.trafo_loading_pct[:] = _percent(
            np.maximum(s_hv, s_lv) * math.sqrt(3), ratings.trafo_rating_mva
        )
        _store_branch_flows(out, "trafo", trafo, ("p_hv_mw", "q_hv_mvar", "p_lv_mw", "q_lv_mvar"))
        losses += (trafo["p_from"] + trafo["p_to"]).sum(axis=1) / 1e6
    out.losses_mw[:] = losses
    if len(net.ext_grid):
        live = pgm_net.source_ids >= 0
        out.ext_grid_p_mw[:] = 0.0
        out.ext_grid_q_mvar[:] = 0.0
        if live.any():
            source = output[ComponentType.source]
            out.ext_grid_p_mw[:, live] = source["p"] / 1e6
            out.ext_grid_q_mvar[:, live] = source["q"] / 1e6
    _blank_failed_steps(out, converged)
    return out.freeze(PowerFlowEngine.POWER_GRID_MODEL, net)


def _percent(value: np.ndarray, rating: np.ndarray) -> np.ndarray:
    return np.divide(value * 100.0, rating, out=np.full_like(value, np.inf), where=rating != 0)


def _store_branch_flows(
    out: ResultArrays, prefix: str, branch: np.ndarray, names: tuple[str, str, str, str]
) -> None:
    for name, attribute in zip(names, ("p_from", "q_from", "p_to", "q_to"), strict=True):
        getattr(out, f"{prefix}_{name}")[:] = np.nan_to_num(branch[attribute]) / 1e6


def _blank_failed_steps(out: ResultArrays, converged: np.ndarray) -> None:
    failed = ~converged
    if not failed.any():
        return
    for name, array in vars(out).items():
        if name != "converged":
            array[failed] = np.nan
