"""The engines and the per-step power flow result, with the buffers both engines fill."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from enum import StrEnum

import numpy as np
import pandapower as pp


class PowerFlowEngine(StrEnum):
    """Which solver runs the time series."""

    PANDAPOWER = "pandapower"
    POWER_GRID_MODEL = "power_grid_model"


@dataclass(frozen=True, kw_only=True, eq=False)
class TimeSeriesResult:
    """Power flow results per step; rows are steps, columns follow the net's table index order.

    ``*_index`` hold the pandapower indices of the columns. Voltages of de-energised or
    out-of-service buses are NaN; flows of branches that carry none are 0. Loadings are in percent
    of ``max_i_ka * df * parallel`` (lines) and of ``sn_mva * df * parallel`` by current at rated
    voltage (transformers), as pandapower reports them. ``losses_mw`` is the active loss of all
    lines and transformers. A step that did not converge is NaN throughout and ``converged`` False.
    """

    engine: PowerFlowEngine
    bus_index: np.ndarray
    line_index: np.ndarray
    trafo_index: np.ndarray
    ext_grid_index: np.ndarray
    vm_pu: np.ndarray
    va_degree: np.ndarray
    line_loading_pct: np.ndarray
    line_i_ka: np.ndarray
    line_p_from_mw: np.ndarray
    line_q_from_mvar: np.ndarray
    line_p_to_mw: np.ndarray
    line_q_to_mvar: np.ndarray
    trafo_loading_pct: np.ndarray
    trafo_p_hv_mw: np.ndarray
    trafo_q_hv_mvar: np.ndarray
    trafo_p_lv_mw: np.ndarray
    trafo_q_lv_mvar: np.ndarray
    ext_grid_p_mw: np.ndarray
    ext_grid_q_mvar: np.ndarray
    losses_mw: np.ndarray
    converged: np.ndarray

    @property
    def steps(self) -> int:
        return int(self.converged.shape[0])


@dataclass
class ResultArrays:
    """Mutable result buffers, NaN until a step is stored."""

    vm_pu: np.ndarray
    va_degree: np.ndarray
    line_loading_pct: np.ndarray
    line_i_ka: np.ndarray
    line_p_from_mw: np.ndarray
    line_q_from_mvar: np.ndarray
    line_p_to_mw: np.ndarray
    line_q_to_mvar: np.ndarray
    trafo_loading_pct: np.ndarray
    trafo_p_hv_mw: np.ndarray
    trafo_q_hv_mvar: np.ndarray
    trafo_p_lv_mw: np.ndarray
    trafo_q_lv_mvar: np.ndarray
    ext_grid_p_mw: np.ndarray
    ext_grid_q_mvar: np.ndarray
    losses_mw: np.ndarray
    converged: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))

    @classmethod
    def empty(cls, net: pp.pandapowerNet, steps: int) -> ResultArrays:
        widths = {"vm_pu": len(net.bus), "va_degree": len(net.bus), "losses_mw": None}
        for name in (f.name for f in fields(cls)):
            if name.startswith("line_"):
                widths[name] = len(net.line)
            elif name.startswith("trafo_"):
                widths[name] = len(net.trafo)
            elif name.startswith("ext_grid_"):
                widths[name] = len(net.ext_grid)
        arrays = {
            name: np.full((steps,) if width is None else (steps, width), np.nan)
            for name, width in widths.items()
        }
        return cls(**arrays, converged=np.zeros(steps, dtype=bool))

    def mark_all_dead(self) -> None:
        """Every step solved trivially: no bus energised, nothing flows."""
        for name, array in vars(self).items():
            if name not in ("vm_pu", "va_degree", "converged"):
                array[:] = 0.0
        self.converged[:] = True

    def freeze(self, engine: PowerFlowEngine, net: pp.pandapowerNet) -> TimeSeriesResult:
        for array in vars(self).values():
            array.flags.writeable = False
        return TimeSeriesResult(
            engine=engine,
            bus_index=net.bus.index.to_numpy(),
            line_index=net.line.index.to_numpy(),
            trafo_index=net.trafo.index.to_numpy(),
            ext_grid_index=net.ext_grid.index.to_numpy(),
            **vars(self),
        )
