"""Available PV power of each system (before curtailment), with pvlib.

Chain: solar position and Ineichen clear-sky irradiance at the site (Linke turbidity from pvlib's
shipped climatology) → all-sky GHI = clear-sky index × clear-sky GHI (or measured GHI) → Erbs
decomposition into DNI/DHI → Hay–Davies transposition to each system's tilt and azimuth → Faiman
cell temperature → PVWatts DC with a temperature coefficient and lumped DC losses → PVWatts
inverter, clipping at the inverter's rating ``s_mva`` (AC output never exceeds it).
Values are step means, evaluated at each step's midpoint. Generation positive, MW.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pvlib

from forecasts.csv_io import align_to_times, read_timeseries_csv, refuse_above
from forecasts.errors import ForecastInputError
from network_models import TIMEZONE
from network_models.model import Site
from network_models.registry import PvSystem


@dataclass(frozen=True, kw_only=True)
class PvLosses:
    """System parameters shared by every PV system (assumptions, PVWatts-like defaults)."""

    dc_loss_frac: float = 0.14  # soiling, wiring, mismatch, ageing, availability
    gamma_pdc_per_c: float = -0.0037  # crystalline silicon
    eta_inverter_nominal: float = 0.96
    albedo: float = 0.2
    wind_speed_m_per_s: float = 1.5


@dataclass(frozen=True)
class SkyAtSite:
    """Sun position and clear-sky irradiance at a site, at given times."""

    times: pd.DatetimeIndex
    zenith_deg: np.ndarray  # apparent
    azimuth_deg: np.ndarray
    ghi_clear_w_per_m2: np.ndarray
    dni_extra_w_per_m2: np.ndarray


def sky_at_site(site: Site, times: pd.DatetimeIndex) -> SkyAtSite:
    """Solar position and Ineichen clear-sky GHI at ``times`` (cached per site and times)."""
    return _sky_at_site(site, _TimesKey(times))


def pv_available_mw(
    systems: Sequence[PvSystem],
    sky: SkyAtSite,
    ghi_w_per_m2: np.ndarray,
    temperature_c: np.ndarray,
    losses: PvLosses = PvLosses(),
) -> pd.DataFrame:
    """Available AC power per system, MW, one column per PV id, indexed by ``sky.times``."""
    times = sky.times
    decomposed = pvlib.irradiance.erbs(ghi_w_per_m2, sky.zenith_deg, times)
    dni = np.asarray(decomposed["dni"], dtype=float)
    dhi = np.asarray(decomposed["dhi"], dtype=float)
    columns: dict[str, np.ndarray] = {}
    per_orientation: dict[tuple[float, float], np.ndarray] = {}
    for pv in systems:
        key = (float(pv.tilt_deg), float(pv.azimuth_deg))
        if key not in per_orientation:
            per_orientation[key] = _dc_per_mwp(key, sky, ghi_w_per_m2, dni, dhi,
                                               temperature_c, losses)
        columns[pv.id] = _inverter_ac_mw(per_orientation[key] * pv.p_mwp, pv.s_mva, losses)
    return pd.DataFrame(columns, index=times, columns=[pv.id for pv in systems], dtype=float)


# a meter reads a little above the inverter's rating at most (its accuracy class, a few %)
METER_TOLERANCE_FRAC = 0.05


def read_pv_power_csv(
    path: str | Path, systems: Sequence[PvSystem], *, tz: str = TIMEZONE
) -> pd.DataFrame:
    """Measured PV power, MW: column ``time`` and one column per PV system id, each from 0 to
    its inverter's rating ``s_mva`` (plus :data:`METER_TOLERANCE_FRAC`): an inverter delivers
    no more."""
    ids = [pv.id for pv in systems]
    frame = read_timeseries_csv(path, columns=ids, min_value=0.0, unit="MW", tz=tz)[ids]
    refuse_above(frame, {pv.id: pv.s_mva * (1 + METER_TOLERANCE_FRAC) for pv in systems},
                 source=str(path), unit="MW",
                 why="the inverter's rating in the model, which its AC output cannot exceed")
    return frame


def measured_pv_at(frame: pd.DataFrame, index: pd.DatetimeIndex, *, source: str) -> pd.DataFrame:
    """Measured PV power interpolated at the step starts of ``index``."""
    return align_to_times(frame, index, source=source)


def _dc_per_mwp(
    orientation: tuple[float, float],
    sky: SkyAtSite,
    ghi: np.ndarray,
    dni: np.ndarray,
    dhi: np.ndarray,
    temperature_c: np.ndarray,
    losses: PvLosses,
) -> np.ndarray:
    tilt, azimuth = orientation
    poa = pvlib.irradiance.get_total_irradiance(
        tilt, azimuth, sky.zenith_deg, sky.azimuth_deg, dni, ghi, dhi,
        dni_extra=sky.dni_extra_w_per_m2, albedo=losses.albedo, model="haydavies",
    )
    poa_global = np.nan_to_num(np.asarray(poa["poa_global"], dtype=float), nan=0.0)
    poa_global = np.clip(poa_global, 0.0, None)
    t_cell = pvlib.temperature.faiman(poa_global, temperature_c, losses.wind_speed_m_per_s)
    dc = pvlib.pvsystem.pvwatts_dc(poa_global, t_cell, 1.0, losses.gamma_pdc_per_c)
    return np.clip(np.asarray(dc, dtype=float), 0.0, None) * (1.0 - losses.dc_loss_frac)


def _inverter_ac_mw(dc_mw: np.ndarray, s_mva: float, losses: PvLosses) -> np.ndarray:
    if s_mva <= 0:
        return np.zeros_like(dc_mw)
    pdc0 = s_mva / losses.eta_inverter_nominal
    ac = pvlib.inverter.pvwatts(dc_mw, pdc0, eta_inv_nom=losses.eta_inverter_nominal)
    return np.clip(np.nan_to_num(np.asarray(ac, dtype=float)), 0.0, s_mva)


class _TimesKey:
    """Hashable wrapper so solar geometry is computed once per site and time axis."""

    def __init__(self, times: pd.DatetimeIndex) -> None:
        self.times = times
        self._key = (len(times), int(times.asi8[0]) if len(times) else 0,
                     int(times.asi8[-1]) if len(times) else 0, str(times.tz))

    def __hash__(self) -> int:
        return hash(self._key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _TimesKey) and self._key == other._key


@lru_cache(maxsize=8)
def _sky_at_site(site: Site, key: _TimesKey) -> SkyAtSite:
    times = key.times
    location = pvlib.location.Location(
        site.latitude_deg, site.longitude_deg, tz=site.timezone, altitude=site.altitude_m
    )
    try:
        position = location.get_solarposition(times)
        clear = location.get_clearsky(times, model="ineichen", solar_position=position)
    except (OSError, ValueError) as exc:
        raise ForecastInputError(
            f"pvlib clear-sky model failed at latitude {site.latitude_deg}, longitude "
            f"{site.longitude_deg}: {exc}", field="site"
        ) from exc
    return SkyAtSite(
        times=times,
        zenith_deg=position["apparent_zenith"].to_numpy(),
        azimuth_deg=position["azimuth"].to_numpy(),
        ghi_clear_w_per_m2=clear["ghi"].to_numpy(),
        dni_extra_w_per_m2=np.asarray(pvlib.irradiance.get_extra_radiation(times), dtype=float),
    )
