"""Real 15-min load shapes from SimBench (shipped offline with the ``simbench`` package).

SimBench's profiles are a year (2016) of German standard and measured load profiles, each scaled
to a maximum of 1. Each customer class maps to one BDEW profile (assumption): office → G1
(business on weekdays 8–18 h), light industry → G0 (business, general), data centre → G3
(continuous), commerce → G4 (shops), residential → H0 (households). A target day takes the 2016
day nearest in day of year with the same weekday, so weekends stay weekends, and its time of
day on the German clock (SimBench labels its rows in German local time, summer time included).
These are German shapes: the winter peak is stronger than Shanghai's, there is no summer
air-conditioning peak.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from forecasts.errors import ForecastInputError
from network_models.registry import CustomerClass, Load

SIMBENCH_PROFILE_OF_CLASS: dict[CustomerClass, str] = {
    CustomerClass.OFFICE: "G1-A",
    CustomerClass.LIGHT_INDUSTRY: "G0-A",
    CustomerClass.DATA_CENTRE: "G3-A",
    CustomerClass.COMMERCE: "G4-A",
    CustomerClass.RESIDENTIAL: "H0-A",
}
_PROFILE_YEAR = 2016
_STEPS_PER_DAY = 96
_PROFILE_ZONE = "Europe/Berlin"  # the clock of SimBench's time labels


def simbench_profile_file() -> Path:
    """Where the installed simbench package keeps its load profiles."""
    import simbench

    return (Path(simbench.__file__).parent / "networks" / "1-complete_data-mixed-all-0-sw"
            / "LoadProfile.csv")


@lru_cache(maxsize=1)
def simbench_profiles() -> pd.DataFrame:
    """Active-power profiles of the mapped classes, one column per profile name, 35,136 rows.

    Loaded once per process (about 0.3 s).
    """
    path = simbench_profile_file()
    names = sorted(set(SIMBENCH_PROFILE_OF_CLASS.values()))
    if not path.is_file():
        raise ForecastInputError(
            "SimBench load profiles not found: expected the simbench package's data files",
            source=str(path),
        )
    frame = pd.read_csv(path, sep=";", usecols=["time", *[f"{n}_pload" for n in names]])
    frame.columns = ["time", *[c.removesuffix("_pload") for c in frame.columns[1:]]]
    return frame.drop(columns="time")


def simbench_load_mw(loads: Sequence[Load], index: pd.DatetimeIndex) -> pd.DataFrame:
    """Active power per load, MW: its class's SimBench shape × ``p_peak_mw``, at step starts."""
    profiles = simbench_profiles()
    rows = _profile_rows(index)
    shape = {c: profiles[name].to_numpy()[rows] for c, name in SIMBENCH_PROFILE_OF_CLASS.items()}
    out = {ld.id: ld.p_peak_mw * shape[ld.customer_class] for ld in loads}
    return pd.DataFrame(out, index=index, columns=[ld.id for ld in loads])


def _profile_rows(index: pd.DatetimeIndex) -> np.ndarray:
    # 2016-01-01 was a Friday (weekday 4). Pick, for each target day, the 2016 day within ±3 days
    # of the same day of year that has the same weekday.
    doy = np.asarray(index.dayofyear) - 1
    base_weekday = (4 + doy) % 7
    shift = (np.asarray(index.dayofweek) - base_weekday + 3) % 7 - 3
    day = doy + shift
    day = np.where(day < 0, day + 7, day)
    day = np.where(day > 365, day - 7, day)
    minute = np.asarray(index.hour) * 60 + np.asarray(index.minute)
    # SimBench's rows are 15-min steps of German standard time (UTC+1) from 1 January 00:00,
    # labelled with the German clock, summer time included: a planned day's time of day on its
    # own clock is that clock time of the German 2016 day (an hour earlier row in summer)
    wall = (pd.Timestamp(_PROFILE_YEAR, 1, 1) + pd.to_timedelta(day, unit="D")
            + pd.to_timedelta(minute - minute % 15, unit="min"))
    local = pd.DatetimeIndex(wall).tz_localize(_PROFILE_ZONE, ambiguous=np.ones(len(wall), bool),
                                               nonexistent="shift_forward")
    rows = (local - pd.Timestamp(_PROFILE_YEAR, 1, 1, tz="Etc/GMT-1")) // pd.Timedelta(minutes=15)
    return np.clip(np.asarray(rows, dtype=np.int64), 0, 366 * _STEPS_PER_DAY - 1)


def grid_profiles_at(
    year_frame: pd.DataFrame, index: pd.DatetimeIndex, *, year: int = _PROFILE_YEAR,
    step_minutes: int = 15, columns: Sequence[str] | None = None,
) -> pd.DataFrame:
    """A grid's own year of series (``GridModel.profiles``: rows = 15-min steps of 2016 from
    1 January 00:00, one column per device) at the steps of ``index``, mapped as the class shapes
    are (same weekday, nearest day of year, the local clock's time of day); only ``columns``
    (all by default).

    The rows are taken before the columns: a column selection of the year copies the year
    (1.6 GB for the 11,542 loads of a 10,000-bus SimBench grid), the day's rows are 4 MB."""
    if year != _PROFILE_YEAR or step_minutes != 15 or len(year_frame) != 366 * _STEPS_PER_DAY:
        raise ForecastInputError(
            f"grid profiles of {year} at {step_minutes} min with {len(year_frame)} rows: expected "
            f"{_PROFILE_YEAR} at 15 min ({366 * _STEPS_PER_DAY} rows)", field="profiles")
    day = year_frame.iloc[_profile_rows(index)]
    if columns is not None:
        day = day[list(columns)]
    return pd.DataFrame(day.to_numpy(dtype=float), index=index, columns=day.columns)
