"""How the simulated field behaves: tick, device-side safety, ramp rates, scenario.

Ramp rates are assumptions (no device data behind them), typical of the device classes:

- BESS power conversion system: 20 % of rated power per second (full swing in 10 s);
- PV inverter: 10 % of rated apparent power per second after a curtailment is released or a
  new limit is set (soft ramp in the grid-code class of GB/T 19964);
- EV charger: 10 % of the connector rating per second (a charger follows a new current limit
  within seconds, IEC 61851 control pilot).

With the default one-minute tick every ramp completes within a tick; they matter for shorter
ticks. Loads and available PV follow the forecasts package's truth, interpolated linearly
between the midpoints of its 15-minute steps: the operator's files (``inputs``) where they
cover the day, gridctl's own models where they do not.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pandas as pd

from forecasts.operator_inputs import OperatorInputs
from hil_sim.errors import SimulatorInputError
from network_models.powerflow import PowerFlowEngine


@dataclass(frozen=True, kw_only=True)
class Ramps:
    """Largest change of a device's output per second, as a fraction of its rating."""

    bess_frac_per_s: float = 0.2
    pv_frac_per_s: float = 0.1
    ev_frac_per_s: float = 0.1


@dataclass(frozen=True, kw_only=True)
class SimConfig:
    """Simulator settings (times in simulated seconds).

    ``heartbeat_timeout_s``: a BESS, PV inverter or EV charging site that has accepted no write
    to any of its setpoints for longer than this falls back to its safe default (BESS 0 MW and
    0 Mvar, PV uncurtailed at 0 Mvar, chargers at ``fallback_kw_per_connector`` within their
    site rating). Devices start in fallback until a controller writes to them.

    ``indicator_reset_s``: a fault passage indicator resets itself once its cable has been
    energised again, with no fault on it, for this long (reset on restoration of supply, as
    field indicators do; an assumption within the seconds-to-minutes range they offer); 0
    turns the automatic reset off, leaving only ``reset_cmd``. An indicator on a cable that
    stays dead (an isolated fault) keeps its indication for the crew.
    """

    tick_s: float = 60.0
    heartbeat_timeout_s: float = 300.0
    indicator_reset_s: float = 60.0
    seed: int = 0
    # the day's truth: the operator's files (a measured day replayed) and gridctl's models
    inputs: OperatorInputs = field(default_factory=OperatorInputs)
    engine: PowerFlowEngine = PowerFlowEngine.POWER_GRID_MODEL
    ramps: Ramps = Ramps()

    def __post_init__(self) -> None:
        if not self.tick_s > 0:
            raise SimulatorInputError(f"tick of {self.tick_s} s: expected a positive duration",
                                      field="tick_s")
        if not self.heartbeat_timeout_s > 0:
            raise SimulatorInputError(
                f"heartbeat timeout of {self.heartbeat_timeout_s} s: expected a positive duration",
                field="heartbeat_timeout_s")
        if not self.indicator_reset_s >= 0:
            raise SimulatorInputError(
                f"indicator reset after {self.indicator_reset_s} s: expected 0 (off) or a "
                "positive duration", field="indicator_reset_s")


def start_time(start: object, tz: str) -> pd.Timestamp:
    """Simulation start: a date (its midnight), a time (naive = local), or today's midnight."""
    if start is None:
        return pd.Timestamp.now(tz=tz).normalize()
    if isinstance(start, dt.date) and not isinstance(start, dt.datetime):
        return pd.Timestamp(start).tz_localize(tz)
    try:
        t = pd.Timestamp(start)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise SimulatorInputError(f"start {start!r}: expected a date YYYY-MM-DD or an ISO time",
                                  field="start") from None
    return t.tz_localize(tz) if t.tzinfo is None else t.tz_convert(tz)
