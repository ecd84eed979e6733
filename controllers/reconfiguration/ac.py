"""AC power flow of many switch configurations of one net in one power-grid-model batch.

Each configuration says which switchable branches of a :class:`SwitchingGraph` are closed; the
batch changes only the status of the line end where a branch's ``open_switch`` sits, so one
conversion of the net serves every configuration. Loads and generation are the net's static
values. The net is converted by ``network_models.powerflow``'s power-grid-model converter, which
agrees with pandapower's ``runpp`` to 1e-6 pu; loadings follow pandapower's definitions (line:
current against ``max_i_ka * df * parallel``; transformer: current at rated voltage against
``sn_mva * df * parallel``). Units: MW, pu, percent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np
import pandapower as pp
from power_grid_model import (
    CalculationMethod,
    ComponentType,
    DatasetType,
    PowerGridModel,
    initialize_array,
)

from controllers.reconfiguration.records import SwitchingGraph
from network_models.ac_checks import AcLimits

# the converter is not public yet; it is the one run_time_series uses (see the module docstring)
from network_models.powerflow import _batch_update, _convert_net

__all__ = ["ConfigurationBatch", "ConfigurationStudy", "study_configurations"]

_CHUNK = 10_000  # configurations per power-grid-model call: bounds the output memory
_BRANCH_OUTPUT = ["p_from", "p_to", "i_from", "i_to"]


@dataclass(frozen=True, kw_only=True, eq=False)
class ConfigurationStudy:
    """AC results, one entry per configuration; NaN where the power flow did not converge.

    ``dead_buses`` counts in-service buses left without supply.
    """

    losses_mw: np.ndarray
    v_min_pu: np.ndarray
    v_max_pu: np.ndarray
    max_line_loading_pct: np.ndarray
    max_trafo_loading_pct: np.ndarray
    converged: np.ndarray
    dead_buses: np.ndarray

    def within(self, limits: AcLimits) -> np.ndarray:
        """True where the configuration converged and respects every limit."""
        with np.errstate(invalid="ignore"):
            return (
                self.converged
                & (self.v_min_pu >= limits.v_min_pu)
                & (self.v_max_pu <= limits.v_max_pu)
                & (self.max_line_loading_pct <= limits.max_line_loading_pct)
                & (self.max_trafo_loading_pct <= limits.max_trafo_loading_pct)
            )

    @classmethod
    def concatenate(cls, parts: list[ConfigurationStudy]) -> ConfigurationStudy:
        """The studies one after another."""
        names = [f.name for f in fields(cls)]
        return cls(**{n: np.concatenate([getattr(p, n) for p in parts]) for n in names})

    def take(self, rows: np.ndarray) -> ConfigurationStudy:
        """The configurations at ``rows``, in that order."""
        return ConfigurationStudy(**{f.name: getattr(self, f.name)[rows] for f in fields(self)})

    def excess(self, limits: AcLimits) -> np.ndarray:
        """How far each configuration is outside its limits: pu of voltage plus loading / 100."""
        return (
            np.maximum(limits.v_min_pu - self.v_min_pu, 0.0)
            + np.maximum(self.v_max_pu - limits.v_max_pu, 0.0)
            + np.maximum(self.max_line_loading_pct - limits.max_line_loading_pct, 0.0) / 100
            + np.maximum(self.max_trafo_loading_pct - limits.max_trafo_loading_pct, 0.0) / 100
        )


def study_configurations(
    net: pp.pandapowerNet, graph: SwitchingGraph, closed: np.ndarray
) -> ConfigurationStudy:
    """AC power flow of ``net`` for each row of ``closed`` (configurations × branches, bool).

    ``net`` (loads and generation set as wanted) is not changed.
    """
    return ConfigurationBatch(net, graph).study(closed)


class ConfigurationBatch:
    """``net`` converted once, to study as many batches of its configurations as needed.

    The batch holds the net converted when it was made (loads and generation as they were
    then); ``net`` is left as it was.
    """

    def __init__(self, net: pp.pandapowerNet, graph: SwitchingGraph) -> None:
        self.graph = graph
        saved = net.switch["closed"].to_numpy(copy=True)
        try:
            for b in graph.branches:
                net.switch.loc[list(b.switches), "closed"] = True
            pgm_net = _convert_net(net)
            static = _static_input(net, pgm_net)
        finally:
            net.switch["closed"] = saved
        self._model = PowerGridModel(static, system_frequency=float(net.f_hz))
        positions = np.array(
            [net.line.index.get_loc(b.line_index) for b in graph.branches], dtype=int
        )
        # the converter puts net.line's rows first, in table order
        self._line_ids = pgm_net.input_data[ComponentType.line]["id"][positions]
        self._at_from = np.array([b.open_at_from_bus for b in graph.branches], dtype=bool)
        self._constants = _Constants.of(net, pgm_net)

    def study(self, closed: np.ndarray) -> ConfigurationStudy:
        """AC power flow for each row of ``closed`` (configurations × branches, bool)."""
        closed = np.atleast_2d(np.asarray(closed, dtype=bool))
        if closed.shape[1] != len(self.graph.branches):
            raise ValueError(
                f"closed has {closed.shape[1]} columns: expected one per branch "
                f"({len(self.graph.branches)})"
            )
        parts = [
            _solve(self._model, self._line_ids, self._at_from, closed[s : s + _CHUNK],
                   self._constants)
            for s in range(0, len(closed), _CHUNK)
        ]
        return ConfigurationStudy(
            **{name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
        )


def _static_input(net: pp.pandapowerNet, pgm_net: object) -> dict[ComponentType, np.ndarray]:
    """The converted input with the net's static load and generation filled in.

    The converter leaves appliance powers to a batch update; one step of it holds the static
    values, in the same row order as the input.
    """
    input_data = dict(pgm_net.input_data)  # type: ignore[attr-defined]
    for component, values in _batch_update(net, pgm_net, {}, 1).items():
        filled = input_data[component].copy()
        filled["p_specified"] = values["p_specified"][0]
        filled["q_specified"] = values["q_specified"][0]
        input_data[component] = filled
    return input_data


@dataclass(frozen=True)
class _Constants:
    """What turns power-grid-model output into pandapower's figures."""

    n_lines: int
    line_rating_ka: np.ndarray
    trafo_vn_hv_kv: np.ndarray
    trafo_vn_lv_kv: np.ndarray
    trafo_rating_mva: np.ndarray
    live_nodes: np.ndarray  # node position of every in-service bus

    @classmethod
    def of(cls, net: pp.pandapowerNet, pgm_net: object) -> _Constants:
        line, trafo = net.line, net.trafo
        return cls(
            n_lines=len(line),
            line_rating_ka=(line["max_i_ka"] * line["df"] * line["parallel"]).to_numpy(float),
            trafo_vn_hv_kv=trafo["vn_hv_kv"].to_numpy(float),
            trafo_vn_lv_kv=trafo["vn_lv_kv"].to_numpy(float),
            trafo_rating_mva=(trafo["sn_mva"] * trafo["df"] * trafo["parallel"]).to_numpy(float),
            live_nodes=pgm_net.node_of_bus[pgm_net.bus_in_service],  # type: ignore[attr-defined]
        )


def _solve(
    model: PowerGridModel,
    line_ids: np.ndarray,
    at_from: np.ndarray,
    closed: np.ndarray,
    constants: _Constants,
) -> dict[str, np.ndarray]:
    scenarios = len(closed)
    update = initialize_array(DatasetType.update, ComponentType.line, (scenarios, len(line_ids)))
    update["id"] = line_ids
    # only the end with the opening switch changes; the other keeps its input status
    update["from_status"][:, at_from] = closed[:, at_from]
    update["to_status"][:, ~at_from] = closed[:, ~at_from]
    has_trafos = len(constants.trafo_rating_mva) > 0
    outputs: dict[ComponentType, list[str]] = {
        ComponentType.node: ["energized", "u_pu"],
        ComponentType.line: _BRANCH_OUTPUT,
    }
    if has_trafos:
        outputs[ComponentType.generic_branch] = _BRANCH_OUTPUT
    result = model.calculate_power_flow(
        symmetric=True,
        calculation_method=CalculationMethod.newton_raphson,
        error_tolerance=1e-8,
        max_iterations=30,
        update_data={ComponentType.line: update},
        output_component_types=outputs,
        continue_on_batch_error=True,
        threading=0,
    )
    converged = np.ones(scenarios, dtype=bool)
    if model.batch_error is not None:
        converged[model.batch_error.failed_scenarios] = False

    node = result[ComponentType.node]
    energized = node["energized"][:, constants.live_nodes] == 1
    u_pu = np.where(energized, node["u_pu"][:, constants.live_nodes], np.nan)
    line = result[ComponentType.line]
    n = constants.n_lines
    with np.errstate(all="ignore"):  # a failed scenario's outputs are undefined: NaN below
        losses = (line["p_from"][:, :n] + line["p_to"][:, :n]).sum(axis=1) / 1e6
    i_ka = np.maximum(line["i_from"][:, :n], line["i_to"][:, :n]) / 1e3
    line_loading = _max_percent(i_ka, constants.line_rating_ka)
    trafo_loading = np.zeros(scenarios)
    if has_trafos:
        gb = result[ComponentType.generic_branch]
        with np.errstate(all="ignore"):
            losses += (gb["p_from"] + gb["p_to"]).sum(axis=1) / 1e6
        s_mva = np.maximum(
            gb["i_from"] / 1e3 * constants.trafo_vn_hv_kv,
            gb["i_to"] / 1e3 * constants.trafo_vn_lv_kv,
        ) * math.sqrt(3)
        trafo_loading = _max_percent(s_mva, constants.trafo_rating_mva)
    with np.errstate(all="ignore"):
        out = {
            "losses_mw": losses,
            "v_min_pu": np.nanmin(np.where(energized, u_pu, np.inf), axis=1),
            "v_max_pu": np.nanmax(np.where(energized, u_pu, -np.inf), axis=1),
            "max_line_loading_pct": line_loading,
            "max_trafo_loading_pct": trafo_loading,
        }
    for name in out:
        out[name] = np.where(converged, out[name], np.nan)
    out["converged"] = converged
    out["dead_buses"] = (~energized).sum(axis=1)
    return out


def _max_percent(value: np.ndarray, rating: np.ndarray) -> np.ndarray:
    if value.shape[1] == 0:
        return np.zeros(value.shape[0])
    with np.errstate(all="ignore"):
        percent = np.where(rating > 0, np.nan_to_num(value) * 100.0 / rating, 0.0)
    return percent.max(axis=1)
