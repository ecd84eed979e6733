"""Weather for PV and load: a seeded clear-sky-index model, air temperature, or measured data.

Clear-sky index ``kc`` = global horizontal irradiance / clear-sky GHI. Each day has a sky type:

- ``clear``: kc ≈ 0.97 with small AR(1) noise (sd 0.02);
- ``overcast``: kc ≈ 0.28, sd 0.08;
- ``partly_cloudy``: a two-state Markov chain (sun kc ≈ 1.0, cloud kc ≈ 0.35) switching into
  cloud at 1.2/h and out at 1.5/h, plus AR(1) noise (sd 0.06): mean kc ≈ 0.7, strong ramps;
- ``mixed``: each day draws one of the three from a monthly Shanghai climatology (assumption:
  the plum-rain June is mostly overcast, July–August mostly sunny).

Air temperature (°C) is a Shanghai monthly climatology (assumption, approximate 1991–2020
means), plus a day-to-day anomaly (sd 2 °C) and a diurnal cosine peaking at 14:30 whose
amplitude depends on the sky (clear days swing more). Every day draws from its own random stream,
so a day's weather does not depend on the horizon it is built in.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import numpy as np
import pandas as pd

from forecasts._random import ar1, stream
from forecasts.csv_io import (
    align_to_times,
    parse_numbers,
    parse_times,
    read_table,
    refuse_unordered_times,
)
from forecasts.errors import ForecastInputError
from network_models import TIMEZONE

TIME_COLUMN = "time"
GHI_COLUMN = "ghi_w_per_m2"
TEMPERATURE_COLUMN = "temp_air_c"

# Physical bounds of measured weather. Sunlight at the top of the atmosphere is the solar
# constant, 1,361 W/m² (Kopp & Lean 2011); on the ground the clear-sky GHI stays below it, and
# clouds that reflect sunlight onto a sensor lift a minute's reading by up to about 10 %.
MAX_GHI_W_PER_M2 = 1500.0
GHI_BOUND_WHY = ("the solar constant 1,361 W/m² plus cloud enhancement; check the unit and "
                 "that this is irradiance, not energy per interval")
# Just beyond the records of air temperature where people live: −67.8 °C (Verkhoyansk, 1892)
# and +56.7 °C (Death Valley, 1913).
MIN_AIR_TEMPERATURE_C = -70.0
MAX_AIR_TEMPERATURE_C = 60.0
TEMPERATURE_BOUND_WHY = "air temperature on Earth, in °C, not K or °F"


class WeatherScenario(StrEnum):
    CLEAR = "clear"
    PARTLY_CLOUDY = "partly_cloudy"
    OVERCAST = "overcast"
    MIXED = "mixed"


@dataclass(frozen=True, kw_only=True)
class SkyModel:
    """Clear-sky-index process and temperature swing of one sky type."""

    kc_sun: float
    kc_cloud: float
    noise_sd: float
    noise_phi_per_hour: float
    cloud_rate_per_h: float  # sun -> cloud
    clear_rate_per_h: float  # cloud -> sun
    p_start_cloudy: float
    temp_amplitude_c: float  # half the diurnal range
    temp_offset_c: float


SKY_MODELS: dict[WeatherScenario, SkyModel] = {
    WeatherScenario.CLEAR: SkyModel(
        kc_sun=0.97, kc_cloud=0.97, noise_sd=0.02, noise_phi_per_hour=0.8,
        cloud_rate_per_h=0.0, clear_rate_per_h=0.0, p_start_cloudy=0.0,
        temp_amplitude_c=4.0, temp_offset_c=0.8,
    ),
    WeatherScenario.PARTLY_CLOUDY: SkyModel(
        kc_sun=1.0, kc_cloud=0.35, noise_sd=0.06, noise_phi_per_hour=0.5,
        cloud_rate_per_h=1.2, clear_rate_per_h=1.5, p_start_cloudy=0.45,
        temp_amplitude_c=3.0, temp_offset_c=0.0,
    ),
    WeatherScenario.OVERCAST: SkyModel(
        kc_sun=0.28, kc_cloud=0.28, noise_sd=0.08, noise_phi_per_hour=0.7,
        cloud_rate_per_h=0.0, clear_rate_per_h=0.0, p_start_cloudy=1.0,
        temp_amplitude_c=1.5, temp_offset_c=-1.5,
    ),
}

# P(clear, partly_cloudy, overcast) by month, Jan..Dec (assumption).
MIXED_SKY_PROBABILITIES: tuple[tuple[float, float, float], ...] = (
    (0.30, 0.35, 0.35), (0.25, 0.35, 0.40), (0.25, 0.35, 0.40), (0.30, 0.40, 0.30),
    (0.30, 0.40, 0.30), (0.15, 0.35, 0.50), (0.40, 0.45, 0.15), (0.40, 0.45, 0.15),
    (0.35, 0.40, 0.25), (0.45, 0.35, 0.20), (0.40, 0.35, 0.25), (0.35, 0.35, 0.30),
)

# Shanghai monthly mean air temperature, °C, Jan..Dec (assumption: approximate climatology).
SHANGHAI_MONTHLY_MEAN_C: tuple[float, ...] = (
    4.8, 6.7, 10.4, 15.8, 21.0, 24.6, 28.8, 28.5, 24.9, 19.8, 14.1, 7.6,
)
DAILY_ANOMALY_SD_C = 2.0
_WARMEST_HOUR = 14.5
_SKY_ORDER = (WeatherScenario.CLEAR, WeatherScenario.PARTLY_CLOUDY, WeatherScenario.OVERCAST)


@dataclass(frozen=True)
class WeatherSeries:
    """Weather at a set of times: either a clear-sky index or measured GHI, and temperature."""

    times: pd.DatetimeIndex
    temperature_c: np.ndarray
    clear_sky_index: np.ndarray | None = None
    ghi_w_per_m2: np.ndarray | None = None


def parse_scenario(value: str | WeatherScenario) -> WeatherScenario:
    """A weather scenario from its name; an unknown name is refused listing the known ones."""
    try:
        return WeatherScenario(str(value).strip().lower().replace("-", "_"))
    except ValueError:
        names = ", ".join(s.value for s in WeatherScenario)
        raise ForecastInputError(
            f"unknown weather {value!r}: expected one of {names} or a CSV file of measured "
            f"irradiance", field="weather"
        ) from None


def sky_of_days(
    days: list[dt.date], scenario: WeatherScenario, seed: int
) -> list[WeatherScenario]:
    """The sky type of each day: the scenario itself, or a monthly draw for ``mixed``."""
    if scenario != WeatherScenario.MIXED:
        return [scenario] * len(days)
    out = []
    for d in days:
        u = stream(seed, "sky", d.toordinal()).random()
        cumulative = np.cumsum(MIXED_SKY_PROBABILITIES[d.month - 1])
        out.append(_SKY_ORDER[int(np.searchsorted(cumulative, u, side="right"))])
    return out


def simulate_weather(
    times: pd.DatetimeIndex, step: pd.Timedelta, scenario: WeatherScenario, seed: int
) -> WeatherSeries:
    """Simulated weather at ``times``: whole local days, evenly spaced by ``step``."""
    days = _days_of(times)
    skies = sky_of_days(days, scenario, seed)
    # steps of each local day: 24 h of them, an hour fewer or more where the clocks change
    per_day = [int(n) for n in pd.Series(times.date).value_counts().reindex(days)]
    step_h = step / pd.Timedelta(hours=1)
    hours = [n * step_h for n in per_day]
    if len(times) != sum(per_day) or any(abs(h - 24.0) > 1.0 + 1e-9 for h in hours):
        raise ValueError("simulate_weather expects whole days of evenly spaced times")
    kc = np.concatenate([
        _clear_sky_index_of_day(SKY_MODELS[sky], n, step_h, stream(seed, "kc", d.toordinal()))
        for d, sky, n in zip(days, skies, per_day, strict=True)
    ])
    temperature = air_temperature_c(times, scenario, seed)
    return WeatherSeries(times=times, temperature_c=temperature, clear_sky_index=kc)


def air_temperature_c(
    times: pd.DatetimeIndex, scenario: WeatherScenario, seed: int
) -> np.ndarray:
    """Air temperature, °C: climatology + daily anomaly + a sky-dependent diurnal swing."""
    days = _days_of(times)
    span = [days[0] - dt.timedelta(days=1), *days, days[-1] + dt.timedelta(days=1)]
    skies = sky_of_days(span, scenario, seed)
    noon_ns = np.array([_noon_ns(d, times.tz) for d in span], dtype=float)
    anomaly = np.array([
        DAILY_ANOMALY_SD_C * stream(seed, "temperature", d.toordinal()).standard_normal()
        + SKY_MODELS[s].temp_offset_c
        for d, s in zip(span, skies, strict=True)
    ])
    amplitude = np.array([SKY_MODELS[s].temp_amplitude_c for s in skies])
    t_ns = times.asi8.astype(float)
    hour = np.asarray(times.hour + times.minute / 60.0 + times.second / 3600.0)
    diurnal = np.cos(2.0 * np.pi * (hour - _WARMEST_HOUR) / 24.0)
    return (
        climatology_c(times)
        + np.interp(t_ns, noon_ns, anomaly)
        + np.interp(t_ns, noon_ns, amplitude) * diurnal
    )


def climatology_c(times: pd.DatetimeIndex) -> np.ndarray:
    """Monthly mean temperature interpolated by day of year (mid-month anchors, periodic)."""
    doy = np.asarray(times.dayofyear, dtype=float) + np.asarray(times.hour) / 24.0
    anchors = np.array([15.5 + 30.44 * m for m in range(12)])
    x = np.concatenate([anchors[-1:] - 365.25, anchors, anchors[:1] + 365.25])
    y = np.array([SHANGHAI_MONTHLY_MEAN_C[-1], *SHANGHAI_MONTHLY_MEAN_C,
                  SHANGHAI_MONTHLY_MEAN_C[0]])
    return np.interp(doy, x, y)


@dataclass(frozen=True)
class MeasuredWeather:
    """Measured GHI (W/m²) and optionally air temperature (°C) from a CSV file."""

    frame: pd.DataFrame
    source: str


def read_weather_csv(path: str | Path, *, tz: str = TIMEZONE) -> MeasuredWeather:
    """Measured weather: columns ``time``, ``ghi_w_per_m2`` and optional ``temp_air_c``.

    Values are instantaneous or interval means at each time; they are interpolated to the
    forecast's mid-steps. GHI must be within 0..:data:`MAX_GHI_W_PER_M2`, temperature within
    :data:`MIN_AIR_TEMPERATURE_C`..:data:`MAX_AIR_TEMPERATURE_C`; a cell outside is refused
    naming the file, row and column.
    """
    source = str(path)
    table = read_table(path, required=[TIME_COLUMN, GHI_COLUMN])
    times = parse_times(table, TIME_COLUMN, source=source, tz=tz)
    refuse_unordered_times(times, TIME_COLUMN, source=source)
    data = {GHI_COLUMN: parse_numbers(
        table, GHI_COLUMN, source=source, min_value=0.0, max_value=MAX_GHI_W_PER_M2,
        unit="W/m²", why=GHI_BOUND_WHY)}
    if TEMPERATURE_COLUMN in table.columns:
        data[TEMPERATURE_COLUMN] = parse_numbers(
            table, TEMPERATURE_COLUMN, source=source, min_value=MIN_AIR_TEMPERATURE_C,
            max_value=MAX_AIR_TEMPERATURE_C, unit="°C", why=TEMPERATURE_BOUND_WHY)
    frame = pd.DataFrame(data, index=times.rename(TIME_COLUMN))
    return MeasuredWeather(frame=frame, source=source)


def measured_weather_at(
    measured: MeasuredWeather, times: pd.DatetimeIndex, seed: int
) -> WeatherSeries:
    """Measured weather interpolated at ``times``; without a temperature column, a simulated one."""
    aligned = align_to_times(measured.frame, times, source=measured.source)
    if TEMPERATURE_COLUMN in aligned:
        temperature = aligned[TEMPERATURE_COLUMN].to_numpy()
    else:
        temperature = air_temperature_c(times, WeatherScenario.PARTLY_CLOUDY, seed)
    return WeatherSeries(
        times=times, temperature_c=temperature, ghi_w_per_m2=aligned[GHI_COLUMN].to_numpy()
    )


def _clear_sky_index_of_day(
    sky: SkyModel, n: int, step_h: float, rng: np.random.Generator
) -> np.ndarray:
    to_cloud = 1.0 - np.exp(-sky.cloud_rate_per_h * step_h)
    to_sun = 1.0 - np.exp(-sky.clear_rate_per_h * step_h)
    u = rng.random(n)
    cloudy = np.empty(n, dtype=bool)
    state = rng.random() < sky.p_start_cloudy
    for k in range(n):
        state = (u[k] >= to_sun) if state else (u[k] < to_cloud)
        cloudy[k] = state
    noise = sky.noise_sd * ar1(rng, n, sky.noise_phi_per_hour ** step_h)
    return np.clip(np.where(cloudy, sky.kc_cloud, sky.kc_sun) + noise, 0.03, 1.1)


def _days_of(times: pd.DatetimeIndex) -> list[dt.date]:
    return sorted(set(times.date))


def _noon_ns(day: dt.date, tz: object) -> int:
    return pd.Timestamp(dt.datetime.combine(day, dt.time(12))).tz_localize(tz).value
