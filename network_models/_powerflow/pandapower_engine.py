"""The pandapower engine: ``runpp`` once per step on a copy of the net."""

from __future__ import annotations

import copy

import numpy as np
import pandapower as pp
from pandapower.powerflow import LoadflowNotConverged

from network_models._powerflow.results import PowerFlowEngine, ResultArrays, TimeSeriesResult


def run_pandapower(
    net: pp.pandapowerNet, series: dict[tuple[str, str], np.ndarray], steps: int
) -> TimeSeriesResult:
    work = copy.deepcopy(net)
    out = ResultArrays.empty(net, steps)
    if not _has_live_source(net):
        # runpp refuses a net without a slack; every bus is simply dead
        out.mark_all_dead()
        return out.freeze(PowerFlowEngine.PANDAPOWER, net)
    init = "auto"
    for step in range(steps):
        for (table, column), values in series.items():
            work[table][column] = values[step]
        try:
            pp.runpp(work, init=init)
        except LoadflowNotConverged:
            init = "auto"  # the failed run left no results to start from
            continue
        init = "results"
        out.converged[step] = True
        _store_pandapower_step(work, out, step)
    return out.freeze(PowerFlowEngine.PANDAPOWER, net)


def _has_live_source(net: pp.pandapowerNet) -> bool:
    eg = net.ext_grid
    live_bus = net.bus["in_service"].reindex(eg["bus"]).fillna(False).to_numpy(dtype=bool)
    return bool(np.any(eg["in_service"].to_numpy(dtype=bool) & live_bus))


def _store_pandapower_step(net: pp.pandapowerNet, out: ResultArrays, step: int) -> None:
    out.vm_pu[step] = net.res_bus["vm_pu"].to_numpy()
    out.va_degree[step] = net.res_bus["va_degree"].to_numpy()
    line, trafo, eg = net.res_line, net.res_trafo, net.res_ext_grid
    for name, res, column in (
        ("line_loading_pct", line, "loading_percent"), ("line_i_ka", line, "i_ka"),
        ("line_p_from_mw", line, "p_from_mw"), ("line_q_from_mvar", line, "q_from_mvar"),
        ("line_p_to_mw", line, "p_to_mw"), ("line_q_to_mvar", line, "q_to_mvar"),
        ("trafo_loading_pct", trafo, "loading_percent"), ("trafo_p_hv_mw", trafo, "p_hv_mw"),
        ("trafo_q_hv_mvar", trafo, "q_hv_mvar"), ("trafo_p_lv_mw", trafo, "p_lv_mw"),
        ("trafo_q_lv_mvar", trafo, "q_lv_mvar"), ("ext_grid_p_mw", eg, "p_mw"),
        ("ext_grid_q_mvar", eg, "q_mvar"),
    ):
        if len(res):
            # pandapower leaves NaN on branches between dead buses; they carry nothing
            getattr(out, name)[step] = np.nan_to_num(res[column].to_numpy(dtype=float))
    out.losses_mw[step] = float(np.nansum(line["pl_mw"]) + np.nansum(trafo["pl_mw"]))
