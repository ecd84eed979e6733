"""Customer load per registry load, by customer class: synthetic shapes, SimBench or measurements.

Synthetic model (assumptions, each a table below):

    p = p_peak × clip(shape(class, day type, hour) × weather(class, T) × (1 + noise), 0, 1)

- ``shape``: hourly fractions, weekday vs weekend (Chinese public holidays are not modelled),
  interpolated linearly between hours;
- ``weather`` = (1 − c) + c·cool(T) + h·heat(T): the air-conditioning share ``c`` of peak ramps
  in from 22 °C to full at 36 °C (the design day, on which the shape's maximum is the peak), the
  heating share ``h`` from 12 °C to full at 0 °C; this gives the Shanghai summer peak and the
  smaller winter one;
- data centre: flat IT load times a PUE that rises with temperature (1.2 at ≤ 10 °C, 1.5 at
  36 °C), so its cooling follows the air temperature;
- noise: multiplicative AR(1) (hourly correlation 0.8), sd per class, seeded per day.

Reactive power follows each load's power factor (lagging, consumption positive).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from forecasts._random import ar1, stream
from forecasts.csv_io import align_to_times, read_timeseries_csv, refuse_above
from network_models import TIMEZONE
from network_models.registry import CustomerClass, Load

COOLING_START_C = 22.0
DESIGN_TEMPERATURE_C = 36.0
HEATING_START_C = 12.0
HEATING_FULL_C = 0.0


@dataclass(frozen=True, kw_only=True)
class ClassProfile:
    """Daily shapes (24 hourly fractions of peak at the design temperature) and sensitivities."""

    weekday: tuple[float, ...]
    weekend: tuple[float, ...]
    cooling_share: float
    heating_share: float
    noise_sd: float


CLASS_PROFILES: dict[CustomerClass, ClassProfile] = {
    CustomerClass.OFFICE: ClassProfile(
        weekday=(0.25, 0.24, 0.24, 0.24, 0.24, 0.25, 0.28, 0.38, 0.62, 0.86, 0.95, 0.97,
                 0.90, 0.95, 1.00, 0.98, 0.95, 0.86, 0.66, 0.50, 0.42, 0.36, 0.30, 0.27),
        weekend=(0.24, 0.23, 0.23, 0.23, 0.23, 0.23, 0.25, 0.27, 0.31, 0.36, 0.39, 0.40,
                 0.39, 0.39, 0.40, 0.39, 0.37, 0.34, 0.31, 0.29, 0.27, 0.26, 0.25, 0.24),
        cooling_share=0.40, heating_share=0.20, noise_sd=0.03,
    ),
    CustomerClass.LIGHT_INDUSTRY: ClassProfile(
        weekday=(0.36, 0.35, 0.35, 0.35, 0.35, 0.37, 0.45, 0.70, 0.92, 0.96, 0.98, 0.95,
                 0.82, 0.94, 1.00, 0.98, 0.96, 0.92, 0.85, 0.80, 0.76, 0.70, 0.50, 0.40),
        weekend=(0.34, 0.33, 0.33, 0.33, 0.33, 0.34, 0.38, 0.46, 0.55, 0.58, 0.59, 0.58,
                 0.52, 0.56, 0.58, 0.57, 0.55, 0.50, 0.45, 0.42, 0.40, 0.38, 0.36, 0.35),
        cooling_share=0.20, heating_share=0.10, noise_sd=0.04,
    ),
    CustomerClass.DATA_CENTRE: ClassProfile(
        weekday=(0.97, 0.96, 0.95, 0.95, 0.95, 0.95, 0.96, 0.97, 0.98, 0.99, 1.00, 1.00,
                 1.00, 1.00, 1.00, 1.00, 1.00, 0.99, 0.99, 0.99, 0.99, 0.98, 0.98, 0.97),
        weekend=(0.97, 0.96, 0.95, 0.95, 0.95, 0.95, 0.95, 0.96, 0.96, 0.97, 0.98, 0.98,
                 0.98, 0.98, 0.98, 0.98, 0.98, 0.98, 0.98, 0.98, 0.98, 0.98, 0.97, 0.97),
        cooling_share=0.0, heating_share=0.0, noise_sd=0.01,
    ),
    CustomerClass.COMMERCE: ClassProfile(
        weekday=(0.22, 0.20, 0.20, 0.20, 0.20, 0.21, 0.24, 0.30, 0.42, 0.62, 0.80, 0.85,
                 0.86, 0.86, 0.85, 0.85, 0.86, 0.88, 0.92, 0.93, 0.90, 0.78, 0.50, 0.30),
        weekend=(0.24, 0.21, 0.20, 0.20, 0.20, 0.21, 0.24, 0.30, 0.44, 0.66, 0.88, 0.94,
                 0.96, 0.96, 0.96, 0.97, 0.98, 0.99, 1.00, 1.00, 0.96, 0.83, 0.54, 0.32),
        cooling_share=0.40, heating_share=0.15, noise_sd=0.04,
    ),
    CustomerClass.RESIDENTIAL: ClassProfile(
        weekday=(0.42, 0.36, 0.33, 0.32, 0.32, 0.35, 0.45, 0.58, 0.52, 0.45, 0.43, 0.46,
                 0.50, 0.46, 0.44, 0.46, 0.52, 0.66, 0.84, 0.96, 1.00, 0.95, 0.80, 0.60),
        weekend=(0.46, 0.39, 0.35, 0.33, 0.33, 0.34, 0.40, 0.50, 0.58, 0.62, 0.64, 0.68,
                 0.70, 0.65, 0.62, 0.62, 0.66, 0.76, 0.90, 0.98, 1.00, 0.96, 0.83, 0.63),
        cooling_share=0.45, heating_share=0.25, noise_sd=0.05,
    ),
}

# Data centre: PUE by air temperature (assumption).
PUE_AT_COLD = 1.2
PUE_AT_DESIGN = 1.5
PUE_COLD_C = 10.0
NOISE_PHI_PER_HOUR = 0.8


def cooling_fraction(temperature_c: np.ndarray) -> np.ndarray:
    """0 below 22 °C, 1 at or above the 36 °C design temperature, linear in between."""
    return np.clip(
        (temperature_c - COOLING_START_C) / (DESIGN_TEMPERATURE_C - COOLING_START_C), 0.0, 1.0
    )


def heating_fraction(temperature_c: np.ndarray) -> np.ndarray:
    """0 above 12 °C, 1 at or below 0 °C, linear in between."""
    return np.clip(
        (HEATING_START_C - temperature_c) / (HEATING_START_C - HEATING_FULL_C), 0.0, 1.0
    )


def data_centre_pue(temperature_c: np.ndarray) -> np.ndarray:
    """Power usage effectiveness: cooling energy grows with the air temperature."""
    x = np.clip((temperature_c - PUE_COLD_C) / (DESIGN_TEMPERATURE_C - PUE_COLD_C), 0.0, 1.0)
    return PUE_AT_COLD + (PUE_AT_DESIGN - PUE_AT_COLD) * x


def class_fraction(
    customer_class: CustomerClass, times: pd.DatetimeIndex, temperature_c: np.ndarray
) -> np.ndarray:
    """Noise-free load as a fraction of peak for one class at ``times`` (local), given T in °C."""
    profile = CLASS_PROFILES[customer_class]
    hour = np.asarray(times.hour + times.minute / 60.0 + times.second / 3600.0)
    weekend = np.asarray(times.dayofweek) >= 5
    shape = np.where(
        weekend, _interp_hourly(profile.weekend, hour), _interp_hourly(profile.weekday, hour)
    )
    if customer_class == CustomerClass.DATA_CENTRE:
        return shape * data_centre_pue(temperature_c) / PUE_AT_DESIGN
    weather = (
        1.0
        - profile.cooling_share
        + profile.cooling_share * cooling_fraction(temperature_c)
        + profile.heating_share * heating_fraction(temperature_c)
    )
    return shape * weather


def synthetic_load_mw(
    loads: Sequence[Load],
    times: pd.DatetimeIndex,
    step: pd.Timedelta,
    temperature_c: np.ndarray,
    seed: int,
) -> pd.DataFrame:
    """Active power per load, MW (consumption positive), at ``times`` (whole local days)."""
    classes = {ld.customer_class for ld in loads}
    fractions = {c: class_fraction(c, times, temperature_c) for c in classes}
    noise = _daily_noise(times, step, len(loads), seed)
    out = np.empty((len(times), len(loads)))
    for j, ld in enumerate(loads):
        sd = CLASS_PROFILES[ld.customer_class].noise_sd
        out[:, j] = ld.p_peak_mw * np.clip(fractions[ld.customer_class] * (1.0 + sd * noise[:, j]),
                                           0.0, 1.0)
    return pd.DataFrame(out, index=times, columns=[ld.id for ld in loads])


def reactive_mvar(loads: Sequence[Load], p_mw: pd.DataFrame) -> pd.DataFrame:
    """Reactive power per load from its power factor, Mvar (lagging, consumption positive)."""
    tan_phi = np.array([np.tan(np.arccos(ld.power_factor)) for ld in loads])
    return pd.DataFrame(p_mw[[ld.id for ld in loads]].to_numpy() * tan_phi, index=p_mw.index,
                        columns=[ld.id for ld in loads])


# a measured load this many times its design peak is a unit mix-up, not a load: its service
# cable and protection are sized for a small multiple of the peak
MAX_LOAD_PER_PEAK = 10.0


def read_load_csv(
    path: str | Path, loads: Sequence[Load], *, tz: str = TIMEZONE
) -> pd.DataFrame:
    """Measured load, MW: column ``time`` and one column per load id, each from 0 to
    :data:`MAX_LOAD_PER_PEAK` times its ``p_peak_mw``."""
    ids = [ld.id for ld in loads]
    frame = read_timeseries_csv(path, columns=ids, min_value=0.0, unit="MW", tz=tz)[ids]
    refuse_above(frame, {ld.id: MAX_LOAD_PER_PEAK * ld.p_peak_mw for ld in loads},
                 source=str(path), unit="MW",
                 why=f"{MAX_LOAD_PER_PEAK:g} times the load's peak in the model; kW given as MW?")
    return frame


def measured_load_at(frame: pd.DataFrame, index: pd.DatetimeIndex, *, source: str) -> pd.DataFrame:
    """Measured load interpolated at the step starts of ``index``."""
    return align_to_times(frame, index, source=source)


def _interp_hourly(values: tuple[float, ...], hour: np.ndarray) -> np.ndarray:
    x = np.arange(25, dtype=float)
    y = np.array([*values, values[0]])
    return np.interp(hour, x, y)


def _daily_noise(
    times: pd.DatetimeIndex, step: pd.Timedelta, n_loads: int, seed: int
) -> np.ndarray:
    days: list[dt.date] = sorted(set(times.date))
    # steps of each local day: 24 h of them, an hour fewer or more where the clocks change
    per_day = pd.Series(times.date).value_counts().reindex(days)
    phi = NOISE_PHI_PER_HOUR ** (step / pd.Timedelta(hours=1))
    blocks = [ar1(stream(seed, "load-noise", d.toordinal()), int(n), phi, n_loads)
              for d, n in zip(days, per_day, strict=True)]
    return np.concatenate(blocks) if blocks else np.zeros((0, n_loads))
