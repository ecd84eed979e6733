"""The search for the least-loss radial configuration: enumeration, or a MILP then branch exchange.

See :mod:`controllers.reconfiguration` for the two methods and when each is used.
"""

from __future__ import annotations

import time

import numpy as np
import pandapower as pp

from controllers.reconfiguration.ac import (
    ConfigurationBatch,
    ConfigurationStudy,
    study_configurations,
)
from controllers.reconfiguration.graph import switching_graph
from controllers.reconfiguration.loss_bound import LossBound, loss_bound_of
from controllers.reconfiguration.milp import solve_minimum_loss_milp
from controllers.reconfiguration.outcome import (
    ac_figures,
    open_devices,
    switch_operations,
    with_configuration,
)
from controllers.reconfiguration.radiality import (
    TooManyConfigurations,
    enumerate_radial_configurations,
    is_radial_configuration,
    radial_configuration_count,
    tree_path,
)
from controllers.reconfiguration.records import (
    ReconfigurationMethod,
    ReconfigurationResult,
    SwitchingGraph,
)
from network_models.ac_checks import PEAK, AcLimits, OperatingPoint, apply_operating_point
from network_models.errors import InputError
from network_models.model import GridModel
from network_models.powerflow import TimeSeriesInjections, run_time_series

__all__ = ["DEFAULT_MAX_EXHAUSTIVE", "reconfigure"]

DEFAULT_MAX_EXHAUSTIVE = 100_000
# a configuration is left unsolved only when its loss bound exceeds the best by more than this
# share: far beyond the power flow's tolerance (1e-8 pu), so the answer is enumeration's
_BOUND_SLACK = 1e-6
_FIRST_BATCH = 64  # configurations solved by AC in the first batch; each next one doubles
_IMPROVEMENT_MW = 1e-7  # smaller gains are power-flow tolerance, not a better configuration


def reconfigure(
    model: GridModel,
    *,
    operating_point: OperatingPoint = PEAK,
    limits: AcLimits | None = None,
    method: ReconfigurationMethod | str = ReconfigurationMethod.AUTO,
    max_exhaustive: int = DEFAULT_MAX_EXHAUSTIVE,
    milp_time_limit_s: float = 60.0,
) -> ReconfigurationResult:
    """The least-loss radial configuration of the model's open-loop feeders within ``limits``.

    Loads and generation follow ``operating_point``; the present switch states are the start.
    ``max_exhaustive`` bounds the configurations enumerated (``exhaustive`` beyond it is
    refused with an ``InputError``; ``auto`` turns to the MILP).
    """
    start = time.perf_counter()
    limits = limits or AcLimits()
    method = _method(method)
    net = model.copy_net()
    apply_operating_point(model, net, operating_point)
    graph = switching_graph(model, net)
    count = radial_configuration_count(graph)
    present = graph.present
    notes = _graph_notes(graph)

    use_exhaustive = method is ReconfigurationMethod.EXHAUSTIVE or (
        method is ReconfigurationMethod.AUTO and count <= max_exhaustive
    )
    milp_fields: dict[str, object] = {}
    if use_exhaustive:
        chosen, evaluated, solved = _exhaustive(model, net, graph, limits, max_exhaustive, notes)
        method_name, proven = "exhaustive", True
    else:
        chosen, evaluated, milp_fields = _milp_then_exchange(
            net, graph, present, limits, milp_time_limit_s, notes
        )
        solved = evaluated
        method_name, proven = "milp+branch_exchange", False

    before = ac_figures(net, limits)
    final_net = with_configuration(net, graph, chosen)
    after = ac_figures(final_net, limits)
    if not after.within_limits:
        notes.append("no radial configuration found within limits: the least-violating is given")
    return ReconfigurationResult(
        model=model.name,
        operating_point=operating_point.name,
        method=method_name,
        proven_optimal=proven and after.within_limits,
        radial_configurations=count,
        configurations_evaluated=evaluated,
        configurations_solved_ac=solved,
        before=before,
        after=after,
        radial=is_radial_configuration(graph, chosen),
        open_switches=open_devices(model, final_net, graph),
        operations=switch_operations(model, net, graph, present, chosen),
        wall_time_s=time.perf_counter() - start,
        limits=limits,
        notes=tuple(notes),
        **milp_fields,  # type: ignore[arg-type]
    )


def _method(method: ReconfigurationMethod | str) -> ReconfigurationMethod:
    try:
        return ReconfigurationMethod(method)
    except ValueError:
        expected = ", ".join(m.value for m in ReconfigurationMethod)
        raise InputError(
            f"unknown method {method!r}: expected one of {expected}",
            source="argument",
            field="method",
        ) from None


def _graph_notes(graph: SwitchingGraph) -> list[str]:
    notes: list[str] = []
    if not is_radial_configuration(graph, graph.present):
        notes.append("the present configuration is not radial")
    if graph.kept_lines:
        notes.append(
            f"{len(graph.kept_lines)} switchable lines keep their state (inside one area or "
            "unfed): " + ", ".join(graph.kept_lines[:10])
        )
    return notes


# ---------------------------------------------------------------------------------------------
# search


def _exhaustive(
    model: GridModel,
    net: pp.pandapowerNet,
    graph: SwitchingGraph,
    limits: AcLimits,
    max_exhaustive: int,
    notes: list[str],
) -> tuple[np.ndarray, int, int]:
    """The best of every radial configuration, how many there were, how many AC solved."""
    try:
        candidates = enumerate_radial_configurations(graph, limit=max_exhaustive)
    except TooManyConfigurations as exc:
        raise InputError(
            f"exhaustive reconfiguration of {model.name} is out of reach ({exc}): "
            "expected method 'milp' or 'auto'",
            source="argument",
            field="method",
        ) from exc
    batch = ConfigurationBatch(net, graph)
    bound = loss_bound_of(net, graph)
    if isinstance(bound, str):
        notes.append(f"no loss bound here ({bound}): every configuration solved by AC")
        return candidates[_best(batch.study(candidates), limits)], len(candidates), len(candidates)
    rows, study = _bounded_study(batch, bound, candidates, limits)
    notes.append(
        f"{len(rows):,} of {len(candidates):,} configurations solved by AC; every other one "
        "loses more than the optimum by a lower bound on its losses (loss_bound)"
    )
    return candidates[rows[_best(study, limits)]], len(candidates), len(rows)


def _bounded_study(
    batch: ConfigurationBatch, bound: LossBound, candidates: np.ndarray, limits: AcLimits
) -> tuple[np.ndarray, ConfigurationStudy]:
    """AC study of the candidates that may beat the best within limits, in index order.

    Candidates are solved in batches, least bound first; the search stops when every one left
    has a bound above the best loss within limits found so far. Until one is found within
    limits nothing is left out, so a grid where none is gets the same least-violating answer as
    a full enumeration.
    """
    coarse = bound.losses_mw(candidates, at_source_voltage=True)
    order = np.argsort(coarse, kind="stable")
    best = np.inf
    rows: list[np.ndarray] = []
    studies: list[ConfigurationStudy] = []
    start, size = 0, _FIRST_BATCH
    while start < len(order) and not coarse[order[start]] > best * (1 + _BOUND_SLACK):
        chunk = order[start : start + size]
        start, size = start + size, size * 2
        chunk = chunk[~(coarse[chunk] > best * (1 + _BOUND_SLACK))]
        chunk = chunk[~(bound.losses_mw(candidates[chunk]) > best * (1 + _BOUND_SLACK))]
        if not len(chunk):
            continue
        study = batch.study(candidates[chunk])
        within = study.within(limits)
        if within.any():
            best = min(best, float(np.nanmin(study.losses_mw[within])))
        rows.append(chunk)
        studies.append(study)
    picked = np.concatenate(rows)
    in_order = np.argsort(picked)
    return picked[in_order], ConfigurationStudy.concatenate(studies).take(in_order)


def _rank(study: ConfigurationStudy, limits: AcLimits) -> np.ndarray:
    """Sort keys: configurations within limits first, then by excess, then by losses."""
    within = study.within(limits)
    excess = np.where(within, 0.0, np.nan_to_num(study.excess(limits), nan=np.inf))
    losses = np.nan_to_num(study.losses_mw, nan=np.inf)
    return np.lexsort((losses, excess, ~within))


def _best(study: ConfigurationStudy, limits: AcLimits) -> int:
    return int(_rank(study, limits)[0])


def _milp_then_exchange(
    net: pp.pandapowerNet,
    graph: SwitchingGraph,
    present: np.ndarray,
    limits: AcLimits,
    time_limit_s: float,
    notes: list[str],
) -> tuple[np.ndarray, int, dict[str, object]]:
    base = run_time_series(net, TimeSeriesInjections())
    vm_pu = {
        int(b): float(v) if np.isfinite(v) else 1.0
        for b, v in zip(base.bus_index, base.vm_pu[0], strict=True)
    }
    outcome = solve_minimum_loss_milp(net, graph, vm_pu, limits=limits, time_limit_s=time_limit_s)
    fields = {
        "milp_status": outcome.status,
        "milp_objective_losses_mw": outcome.objective_losses_mw,
        "milp_solve_time_s": outcome.solve_time_s,
    }
    starts = []
    if outcome.closed is not None and is_radial_configuration(graph, outcome.closed):
        starts.append(outcome.closed)
    else:
        notes.append(f"the MILP gave no radial configuration ({outcome.status})")
    if is_radial_configuration(graph, present):
        # a second start costs little and guards against the MILP's loss model misleading
        starts.append(present)
    if not starts:
        raise InputError(
            "neither the MILP nor the present state gives a radial configuration to start from",
            source="argument",
            field="model",
        )
    finals, evaluated = [], 0
    for start in starts:
        final, count = _branch_exchange(net, graph, start, limits)
        finals.append(final)
        evaluated += count
    study = study_configurations(net, graph, np.array(finals))
    best = _best(study, limits)
    if len(finals) > 1:
        gap_kw = abs(study.losses_mw[0] - study.losses_mw[1]) * 1e3
        notes.append(
            "branch exchange from the MILP's answer and from the present state end "
            f"{gap_kw:.3f} kW apart"
        )
    return finals[best], evaluated + 1, fields


def _branch_exchange(
    net: pp.pandapowerNet, graph: SwitchingGraph, start: np.ndarray, limits: AcLimits
) -> tuple[np.ndarray, int]:
    """Best-improvement branch exchange on the AC model, from a radial configuration."""
    current = start.copy()
    evaluated = 0
    while True:
        neighbours = _neighbours(graph, current)
        if not len(neighbours):
            return current, evaluated
        study = study_configurations(net, graph, np.vstack([current[None], neighbours]))
        evaluated += len(neighbours)
        best = _best(study, limits)
        if best == 0 or not _improves(study, best, limits):
            return current, evaluated
        current = neighbours[best - 1]


def _improves(study: ConfigurationStudy, best: int, limits: AcLimits) -> bool:
    """True if configuration ``best`` beats configuration 0 (the current one) by a real margin."""
    within = study.within(limits)
    if within[best] != within[0]:
        return bool(within[best])
    if not within[0]:
        return bool(study.excess(limits)[best] < study.excess(limits)[0] - 1e-9)
    return bool(study.losses_mw[best] < study.losses_mw[0] - _IMPROVEMENT_MW)


def _neighbours(graph: SwitchingGraph, closed: np.ndarray) -> np.ndarray:
    rows = []
    for branch in np.flatnonzero(~closed):
        for other in tree_path(graph, closed, int(branch)):
            swapped = closed.copy()
            swapped[branch], swapped[other] = True, False
            rows.append(swapped)
    return np.array(rows, dtype=bool).reshape(-1, len(graph.branches))
