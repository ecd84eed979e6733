"""Loss-minimising reconfiguration of the open-loop feeders: which switches to open, within limits.

Two methods, both ending with an AC power flow of the chosen configuration:

- **exhaustive** (small systems): every radial configuration of the candidate switches is
  enumerated (``reconfiguration_graph``) and solved by AC power flow in power-grid-model batches
  (``reconfiguration_ac``); the least-loss one within limits is the optimum of the AC model,
  proven by enumeration. IEEE 33-bus has 50,751 radial configurations.
- **milp** (larger systems): a MILP with linearised DistFlow and single-commodity radiality
  (``reconfiguration_milp``) gives a configuration, which branch exchange then improves on the AC
  model: every neighbour (close one open branch, open another branch of the loop it makes) is
  solved in one batch and the best improving one taken, until none improves. The answer is a
  local optimum of the AC model, not a proven global one.

``auto`` enumerates when there are at most ``max_exhaustive`` radial configurations. Radiality
is asked of the open-loop part only (see ``reconfiguration_graph``): a meshed backbone stays as
it is. Losses are line and transformer losses in MW; a configuration is *within limits* when
the AC power flow converges and respects ``AcLimits`` everywhere.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Literal

import numpy as np
import pandapower as pp

from controllers.reconfiguration.ac import ConfigurationStudy, study_configurations
from controllers.reconfiguration.graph import (
    SwitchingGraph,
    TooManyConfigurations,
    enumerate_radial_configurations,
    is_radial_configuration,
    radial_configuration_count,
    switching_graph,
    tree_path,
)
from controllers.reconfiguration.milp import solve_minimum_loss_milp
from network_models.ac_checks import PEAK, AcLimits, OperatingPoint, apply_operating_point
from network_models.errors import InputError
from network_models.model import GridModel
from network_models.powerflow import TimeSeriesInjections, run_time_series

__all__ = [
    "AcFigures",
    "ReconfigurationMethod",
    "ReconfigurationResult",
    "SwitchOperation",
    "reconfigure",
]

DEFAULT_MAX_EXHAUSTIVE = 100_000
_IMPROVEMENT_MW = 1e-7  # smaller gains are power-flow tolerance, not a better configuration


class ReconfigurationMethod(StrEnum):
    AUTO = "auto"
    EXHAUSTIVE = "exhaustive"
    MILP = "milp"


@dataclass(frozen=True, kw_only=True)
class SwitchOperation:
    """One switching step; ``device`` is the registry id, ``switch`` the net's switch name."""

    step: int
    action: Literal["open", "close"]
    device: str
    switch: str
    line: str


@dataclass(frozen=True, kw_only=True)
class AcFigures:
    """AC power flow of one configuration: losses (MW), voltage extremes (pu), loadings (%)."""

    losses_mw: float
    v_min_pu: float
    v_max_pu: float
    max_line_loading_pct: float
    max_trafo_loading_pct: float
    converged: bool
    within_limits: bool


@dataclass(frozen=True, kw_only=True)
class ReconfigurationResult:
    """The decision record of a reconfiguration: what to switch, why, and the AC check."""

    model: str
    operating_point: str
    method: str
    proven_optimal: bool
    radial_configurations: float
    configurations_evaluated: int
    before: AcFigures
    after: AcFigures
    radial: bool
    open_switches: tuple[str, ...]
    operations: tuple[SwitchOperation, ...]
    wall_time_s: float
    limits: AcLimits = field(default_factory=AcLimits)
    milp_status: str | None = None
    milp_objective_losses_mw: float | None = None
    milp_solve_time_s: float | None = None
    notes: tuple[str, ...] = ()

    @property
    def loss_reduction_mw(self) -> float:
        return self.before.losses_mw - self.after.losses_mw

    def to_dict(self) -> dict:
        """The JSON shape of ``gridctl grid reconfigure --json``."""
        data = asdict(self)
        data["loss_reduction_mw"] = self.loss_reduction_mw
        return data


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
    try:
        method = ReconfigurationMethod(method)
    except ValueError:
        expected = ", ".join(m.value for m in ReconfigurationMethod)
        raise InputError(
            f"unknown method {method!r}: expected one of {expected}",
            source="argument",
            field="method",
        ) from None
    net = model.copy_net()
    apply_operating_point(model, net, operating_point)
    graph = switching_graph(model, net)
    count = radial_configuration_count(graph)
    present = graph.present
    notes: list[str] = []
    if not is_radial_configuration(graph, present):
        notes.append("the present configuration is not radial")
    if graph.kept_lines:
        notes.append(
            f"{len(graph.kept_lines)} switchable lines keep their state (inside one area or "
            "unfed): " + ", ".join(graph.kept_lines[:10])
        )

    use_exhaustive = method is ReconfigurationMethod.EXHAUSTIVE or (
        method is ReconfigurationMethod.AUTO and count <= max_exhaustive
    )
    milp_fields: dict[str, object] = {}
    if use_exhaustive:
        try:
            candidates = enumerate_radial_configurations(graph, limit=max_exhaustive)
        except TooManyConfigurations as exc:
            raise InputError(
                f"exhaustive reconfiguration of {model.name} is out of reach ({exc}): "
                "expected method 'milp' or 'auto'",
                source="argument",
                field="method",
            ) from exc
        study = study_configurations(net, graph, candidates)
        best = _best(study, limits)
        chosen = candidates[best]
        evaluated = len(candidates)
        method_name, proven = "exhaustive", True
    else:
        chosen, evaluated, milp_fields = _milp_then_exchange(
            net, graph, present, limits, milp_time_limit_s, notes
        )
        method_name, proven = "milp+branch_exchange", False

    before = _figures(net, limits)
    final_net = _with_configuration(net, graph, chosen)
    after = _figures(final_net, limits)
    if not after.within_limits:
        notes.append("no radial configuration found within limits: the least-violating is given")
    return ReconfigurationResult(
        model=model.name,
        operating_point=operating_point.name,
        method=method_name,
        proven_optimal=proven and after.within_limits,
        radial_configurations=count,
        configurations_evaluated=evaluated,
        before=before,
        after=after,
        radial=is_radial_configuration(graph, chosen),
        open_switches=_open_devices(model, final_net, graph),
        operations=_operations(model, net, graph, present, chosen),
        wall_time_s=time.perf_counter() - start,
        limits=limits,
        notes=tuple(notes),
        **milp_fields,  # type: ignore[arg-type]
    )


# ---------------------------------------------------------------------------------------------
# search


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


# ---------------------------------------------------------------------------------------------
# the answer as switch states, operations and AC figures


def _with_configuration(
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


def _figures(net: pp.pandapowerNet, limits: AcLimits) -> AcFigures:
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


def _open_devices(
    model: GridModel, net: pp.pandapowerNet, graph: SwitchingGraph
) -> tuple[str, ...]:
    device = _device_of_row(model)
    rows = sorted(
        row for b in graph.branches for row in b.switches if not bool(net.switch.at[row, "closed"])
    )
    return tuple(device.get(row, str(net.switch.at[row, "name"])) for row in rows)


def _operations(
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
