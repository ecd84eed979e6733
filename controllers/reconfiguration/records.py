"""The records of reconfiguration: the switching graph it works on and the decision it returns.

:class:`SwitchingGraph` and its :class:`SwitchableBranch` es are built by
:mod:`~controllers.reconfiguration.graph` and read by every other module;
:class:`ReconfigurationResult` (with its :class:`SwitchOperation` s and :class:`AcFigures`) is
the decision record. This module imports nothing of the package. Units: MW, pu, percent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Literal

import numpy as np

from network_models.ac_checks import AcLimits

__all__ = [
    "SUPPLY_AREA",
    "AcFigures",
    "ReconfigurationMethod",
    "ReconfigurationResult",
    "SwitchOperation",
    "SwitchableBranch",
    "SwitchingGraph",
]

SUPPLY_AREA = 0  # the area holding every source (see controllers.reconfiguration.graph)


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
    configurations_evaluated: int  # every one accounted for: solved by AC or bounded out
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
    configurations_solved_ac: int | None = None  # of those evaluated, solved by AC power flow

    @property
    def loss_reduction_mw(self) -> float:
        return self.before.losses_mw - self.after.losses_mw

    def to_dict(self) -> dict:
        """The JSON shape of ``gridctl grid reconfigure --json``."""
        data = asdict(self)
        data["loss_reduction_mw"] = self.loss_reduction_mw
        return data


@dataclass(frozen=True, kw_only=True)
class SwitchableBranch:
    """A line that a candidate switch can open, between areas ``area_a`` and ``area_b``.

    ``open_switch`` (a ``net.switch`` row) is the switch the study opens when the branch is to be
    open: one already open if there is one, else a normally-open point or tie, else the first.
    ``closed`` is the present state: all switches on the line closed.
    """

    line_index: int
    line: str
    switches: tuple[int, ...]
    open_switch: int
    open_at_from_bus: bool
    area_a: int
    area_b: int
    closed: bool


@dataclass(frozen=True, kw_only=True)
class SwitchingGraph:
    """Areas (area 0 is the supply) joined by switchable branches; see the module docstring."""

    n_areas: int
    branches: tuple[SwitchableBranch, ...]
    area_of_bus: Mapping[int, int]
    kept_lines: tuple[str, ...]  # candidate lines left as they are (inside one area, or unfed)

    @property
    def present(self) -> np.ndarray:
        """Present state of every branch, True = closed."""
        return np.array([b.closed for b in self.branches], dtype=bool)

    @property
    def loops(self) -> int:
        """Independent loops: branches that must be open in every radial configuration."""
        return len(self.branches) - (self.n_areas - 1)
