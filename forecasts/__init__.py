"""What the next hours look like: PV, load, EV sessions, tariffs and carbon (ground floor).

``build(model, start, horizon, step)`` gives one :class:`ForecastBundle` of timezone-aware
series per device, on the local clock of the model's site (``model.site.timezone``);
:class:`TruthAndForecasts` pairs a realised truth with forecasts of it whose error grows with
lead time.
"""

from __future__ import annotations

from forecasts.bundle import ForecastBundle, LoadSource, build
from forecasts.bundle_io import read_bundle, write_bundle
from forecasts.carbon import DEFAULT_CARBON_KG_PER_KWH, carbon_intensity, read_carbon_csv
from forecasts.errors import ForecastInputError
from forecasts.ev import EvSession, uncontrolled_charging_kw
from forecasts.ev_csv import read_ev_sessions_csv, write_ev_sessions_csv
from forecasts.ev_generator import SESSION_KINDS, generate_sessions
from forecasts.pv import PvLosses
from forecasts.tariffs import Tariff, TouPeriod, tou_multiplier, tou_period
from forecasts.truth_and_forecasts import ErrorEnvelope, ForecastErrorModel, TruthAndForecasts
from forecasts.weather import WeatherScenario, read_weather_csv

__all__ = [
    "DEFAULT_CARBON_KG_PER_KWH",
    "SESSION_KINDS",
    "ErrorEnvelope",
    "EvSession",
    "ForecastBundle",
    "ForecastErrorModel",
    "ForecastInputError",
    "LoadSource",
    "PvLosses",
    "Tariff",
    "TouPeriod",
    "TruthAndForecasts",
    "WeatherScenario",
    "build",
    "carbon_intensity",
    "generate_sessions",
    "read_bundle",
    "read_carbon_csv",
    "read_ev_sessions_csv",
    "read_weather_csv",
    "tou_multiplier",
    "tou_period",
    "uncontrolled_charging_kw",
    "write_bundle",
    "write_ev_sessions_csv",
]
