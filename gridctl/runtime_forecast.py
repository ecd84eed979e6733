"""Where the runtime's forecasts come from: a source injected into the runtime.

The control step asks for the forecast at a step's start over the MPC's horizon (and an hour
more); the day-ahead plan asks for a day's forecast. The default source
(:class:`ModelForecasts`) builds each day's truth from the operator's files and gridctl's own
models (:meth:`forecasts.operator_inputs.OperatorInputs.days`) and forecasts from it
(:class:`~forecasts.truth_and_forecasts.TruthAndForecasts`): the controller never sees the
simulator's truth. A day the operator's files do not cover is modelled, and said so once.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Protocol

import pandas as pd

from forecasts.bundle import ForecastBundle
from forecasts.truth_and_forecasts import TruthAndForecasts
from gridctl.historian import Historian
from gridctl.runtime_config import RuntimeConfig
from network_models.model import GridModel

log = logging.getLogger("gridctl.runtime")


class ForecastSource(Protocol):
    """What the runtime plans on (called off the event loop: building a day takes a while)."""

    def step_forecast(self, now: pd.Timestamp) -> ForecastBundle:
        """The forecast from ``now`` over the MPC's horizon, on the control step."""
        ...

    def day_forecast(self, day: dt.date) -> ForecastBundle:
        """The forecast of ``day``, 24 h on 15-minute steps, for its day-ahead plan."""
        ...


class ModelForecasts:
    """The default source: the operator's files and gridctl's models (see the module
    docstring)."""

    def __init__(self, model: GridModel, config: RuntimeConfig, historian: Historian) -> None:
        self.model = model
        self.config = config
        self.historian = historian
        self._days: dict[dt.date, TruthAndForecasts] = {}
        self._modelled_days: set[dt.date] = set()  # days the operator's files did not cover

    def step_forecast(self, now: pd.Timestamp) -> ForecastBundle:
        day = now.date()
        if day not in self._days:
            self._days = {
                # the MPC plans on the control step
                day: self.truth_and_forecasts(day, 2, f"{self.config.step_minutes}min")
            }
        hours = self.config.horizon_steps * self.config.step_minutes / 60.0 + 1.0
        return self._days[day].forecast_at(now, f"{hours}h")

    def day_forecast(self, day: dt.date) -> ForecastBundle:
        days = self.truth_and_forecasts(day, 1, "15min")
        return days.forecast_at(days.truth.start, "24h")

    def truth_and_forecasts(self, day: dt.date, n_days: int, step: str) -> TruthAndForecasts:
        """The days' truth from the operator's files and gridctl's models, forecast from it; a
        day the operator's files do not cover is modelled, and said so once."""
        c = self.config
        truth, modelled = c.inputs.days(self.model, day, n_days, step, seed=c.forecast_seed,
                                        tariff=c.tariff, carbon_kg_per_kwh=c.carbon_kg_per_kwh)
        if c.inputs.given():
            for d in modelled:
                if d not in self._modelled_days:
                    self._modelled_days.add(d)
                    log.warning("the operator's files hold no data for %s: forecasts of that "
                                "day come from gridctl's own models", d)
                    self.historian.record_event(truth.start, "forecast_modelled", day=str(d),
                                                inputs=c.inputs.given())
        return TruthAndForecasts(truth=truth, seed=c.forecast_seed)
