"""What a drill run leaves for its report: the sums over its ticks and the typed run record.

The runner (:mod:`gridctl.commands.drill_runner`) fills a :class:`TickTally` tick by tick and
hands one :class:`DrillRun` to the report (:mod:`gridctl.commands.drill_report`), which judges
it; neither reaches into the other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from gridctl.commands.drill_scenario import DrillScenario
from gridctl.self_healing import FaultResponder
from network_models.model import GridModel

__all__ = ["FAULT_KINDS", "REPAIR_KINDS", "DrillRun", "TickTally", "load_p_mw"]

FAULT_KINDS = ("cable_fault", "transformer_loss", "substation_loss", "device_trip")
REPAIR_KINDS = ("supply_restored", "clear")


@dataclass
class TickTally:
    """Running sums over the ticks (loads are named by device id; figures as the report's)."""

    base_unsupplied: frozenset[str] = frozenset()
    ever: set[str] = field(default_factory=set)
    customer_min: float = 0.0
    ens_kwh: float = 0.0
    samples: list[tuple[pd.Timestamp, frozenset[str]]] = field(default_factory=list)
    violations: list[tuple[pd.Timestamp, list[dict[str, Any]]]] = field(default_factory=list)
    violations_before_fault: list[dict[str, Any]] = field(default_factory=list)
    ticks: int = 0
    loop_wall_s: float = 0.0  # from the runtime's first plan to the drill's end


@dataclass(frozen=True, kw_only=True)
class DrillRun:
    """One finished drill, as the runner leaves it: what happened, before it is judged."""

    drill_scenario: DrillScenario
    model: GridModel
    sim: Any  # the simulator (hil_sim), stopped: its state at the end and its day's truth
    responder: FaultResponder  # FLISR as the runtime ran it: plans, reclosures, timeline
    microgrid_events: tuple[dict[str, Any], ...]  # the microgrid supervisors' timelines
    timeline: tuple[dict[str, Any], ...]  # the drill's own entries: injections, field events
    tally: TickTally
    start: pd.Timestamp
    end: pd.Timestamp
    write_errors: int
    mpc_decisions: int
    runtime_errors: tuple[str, ...]
    wall_s: float  # start-up of simulator and runtime included


def load_p_mw(sim: Any, t: pd.Timestamp) -> dict[str, float]:
    """Each load's draw at ``t`` as the simulator's truth has it (MW, drawn positive)."""
    sample = sim.truth.at(t)
    return {d.id: max(float(p), 0.0) for d, p in zip(sim.loads, sample.load_p_mw, strict=True)}
