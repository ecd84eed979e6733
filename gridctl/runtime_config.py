"""The runtime's settings and counters: what an operator configures and what a run reports.

Kept apart from the loop (:mod:`gridctl.runtime`) so that its parts (the connection, the
responders, the day-ahead planning) read the same settings without importing the loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from controllers.config import DEFAULT_HORIZON_STEPS, DEFAULT_STEP_MINUTES, DispatchConfig
from forecasts.operator_inputs import OperatorInputs
from forecasts.tariffs import Tariff
from gridctl.planner import PlannerProcess
from network_models.model import GridModel


@dataclass(frozen=True, kw_only=True)
class RuntimeConfig:
    """How the runtime runs: the field's endpoint, the historian, the control step, the due
    work's periods and the operator's data and study (see :mod:`gridctl.runtime`)."""

    endpoint: str
    db_path: Path
    horizon_steps: int = DEFAULT_HORIZON_STEPS
    step_minutes: int = DEFAULT_STEP_MINUTES
    tick_wall_s: float = 0.05
    heartbeat_s: float = 120.0  # simulated seconds against the simulator; below its timeout
    follow_simulator_clock: bool = True
    forecast_seed: int = 0
    max_backoff_s: float = 5.0
    timeout_s: float = 4.0
    dayahead_hour: int | None = 12  # plan the next day at this hour; None: no day-ahead job
    dayahead_retry_wall_s: float = 900.0  # a day-ahead that failed or fell back: tried again
    poll_s: float = 60.0  # record meters, transformers, batteries, PV and EV sites this often
    watch_period_ms: float = 50.0  # publishing interval of the event subscription (wall ms)
    integrity_wall_s: float = 60.0  # read the watched points behind the subscription this often
    late_after_s: float = 60.0  # a plan landing this much field time after its readings is late
    plan_timeout_s: float = 120.0  # wall time a step's plan may take before the planner is ended
    dayahead_timeout_s: float = 600.0  # wall time a day's plan may take before it is ended
    # the field's clock moving back at all (beyond a second), or ahead by more than this
    # between two ticks, is a jump: due work is rescheduled from the new time and recorded
    clock_jump_s: float = 900.0
    # the operator's data and study: forecasts from their files, plans with their settings
    inputs: OperatorInputs = field(default_factory=OperatorInputs)
    dispatch: DispatchConfig = field(default_factory=DispatchConfig)
    tariff: Tariff | None = None  # None: gridctl's (or a given bundle's prices)
    carbon_kg_per_kwh: float | None = None

    def __post_init__(self) -> None:
        # the MPC plans on the control step's grid, and forecasts come on grids that divide a day
        if not (isinstance(self.step_minutes, int) and 1 <= self.step_minutes <= 60
                and 1440 % self.step_minutes == 0):
            raise ValueError(f"step_minutes {self.step_minutes!r}: expected whole minutes from "
                             "1 to 60 that divide a day evenly (5, 15, 30, 60, ...)")
        if not (isinstance(self.horizon_steps, int) and self.horizon_steps >= 2):
            raise ValueError(f"horizon_steps {self.horizon_steps!r}: expected at least 2 steps")


def planner_for(model: GridModel, config: RuntimeConfig) -> PlannerProcess:
    """The runtime's planner: the MPC over the configured horizon, on the control step, within
    the configured time; a caller that wants it started early builds it here and hands it over."""
    return PlannerProcess(model, horizon_steps=config.horizon_steps,
                          step_h=config.step_minutes / 60.0, timeout_s=config.plan_timeout_s,
                          config=config.dispatch)


@dataclass
class RuntimeStats:
    """What a run did, counted (returned by :meth:`ControllerRuntime.run`)."""

    decisions: int = 0
    fallbacks: int = 0
    steps_failed: int = 0  # control steps with no decision (planner failed, field gone, ...)
    reconnects: int = 0
    write_errors: int = 0
    heartbeats: int = 0
    ev_resplits: int = 0  # sites whose power was split again between steps (plug-in, leave)
    ev_above_plan_kw_max: float = 0.0  # the most a re-split put a site above its plan
    missed_by_subscription: int = 0  # values the integrity read had to correct
    step_wall_s: list[float] = field(default_factory=list)
