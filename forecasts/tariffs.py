"""Shanghai time-of-use electricity prices (沪发改价管〔2022〕50号, in force from 2023-01-01).

Periods (local time, hour h covers [h:00, h+1:00)):

- Jul–Sep: peak 08–15 and 18–21; flat 06–08, 15–18, 21–22; valley 22–06.
- other months: peak 08–11 and 18–21; flat 06–08, 11–18, 21–22; valley 22–06.

Multipliers on the flat price: Jan, Jul, Aug, Sep, Dec peak ×1.8 and valley ×0.4; other months
peak ×1.6 and valley ×0.5. Critical peak = peak ×1.25 in Jul–Aug 12–14 and in Jan/Dec 19–21.
The absolute flat price is an assumption (≈0.65 CNY/kWh) and a parameter. A step takes the price
of the period its start falls in, on the local clock of its index (the model's time zone: a grid
in Berlin pays the peak from 18:00 Berlin time).

An operator's own tariff replaces the Shanghai periods with a table of bands (:class:`TouBand`,
each price from its start time of day to the next band's), or with a measured price series
(:func:`read_prices_csv`, e.g. a day-ahead market's prices).
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import numpy as np
import pandas as pd

from forecasts.csv_io import read_table, read_timeseries_csv

DEFAULT_FLAT_PRICE_CNY_PER_KWH = 0.65


class TouPeriod(StrEnum):
    VALLEY = "valley"
    FLAT = "flat"
    PEAK = "peak"
    CRITICAL_PEAK = "critical_peak"


_SUMMER_MONTHS = (7, 8, 9)
_HIGH_SPREAD_MONTHS = (1, 7, 8, 9, 12)
_CRITICAL_SUMMER = ((7, 8), (12, 13))  # months, hours
_CRITICAL_WINTER = ((1, 12), (19, 20))

# Period of each hour 0..23, by season.
_V, _F, _P = TouPeriod.VALLEY, TouPeriod.FLAT, TouPeriod.PEAK
_SUMMER_HOURS = [_V] * 6 + [_F] * 2 + [_P] * 7 + [_F] * 3 + [_P] * 3 + [_F] + [_V] * 2
_OTHER_HOURS = [_V] * 6 + [_F] * 2 + [_P] * 3 + [_F] * 7 + [_P] * 3 + [_F] + [_V] * 2


def tou_period(times: pd.DatetimeIndex) -> np.ndarray:
    """The TOU period (a :class:`TouPeriod` value) of each time, by local month and hour."""
    month = np.asarray(times.month)
    hour = np.asarray(times.hour)
    summer = np.isin(month, _SUMMER_MONTHS)
    period = np.where(
        summer, np.asarray(_SUMMER_HOURS, dtype=object)[hour],
        np.asarray(_OTHER_HOURS, dtype=object)[hour],
    )
    critical = np.zeros(len(times), dtype=bool)
    for months, hours in (_CRITICAL_SUMMER, _CRITICAL_WINTER):
        critical |= np.isin(month, months) & np.isin(hour, hours)
    period[critical] = TouPeriod.CRITICAL_PEAK
    return period


def tou_multiplier(times: pd.DatetimeIndex) -> np.ndarray:
    """The multiplier on the flat price at each time (1 in flat periods)."""
    period = tou_period(times)
    high = np.isin(np.asarray(times.month), _HIGH_SPREAD_MONTHS)
    peak = np.where(high, 1.8, 1.6)
    valley = np.where(high, 0.4, 0.5)
    out = np.ones(len(times))
    out = np.where(period == TouPeriod.PEAK, peak, out)
    out = np.where(period == TouPeriod.CRITICAL_PEAK, peak * 1.25, out)
    return np.where(period == TouPeriod.VALLEY, valley, out)


@dataclass(frozen=True, kw_only=True)
class TouBand:
    """One band of an operator's TOU table: ``price_cny_per_kwh`` from ``start`` (local time of
    day) until the next band starts."""

    start: dt.time
    price_cny_per_kwh: float


@dataclass(frozen=True, kw_only=True)
class Tariff:
    """What grid energy costs and earns.

    ``flat_price_cny_per_kwh`` anchors the Shanghai TOU multipliers, unless ``tou_bands`` (the
    first starting at 00:00, starts increasing) give the import price of every time of day
    instead; an export price and a demand charge (CNY per kW of monthly maximum import) are
    optional.
    """

    flat_price_cny_per_kwh: float = DEFAULT_FLAT_PRICE_CNY_PER_KWH
    export_price_cny_per_kwh: float | None = None
    demand_charge_cny_per_kw_month: float | None = None
    tou_bands: tuple[TouBand, ...] | None = None

    def __post_init__(self) -> None:
        for name in ("flat_price_cny_per_kwh", "export_price_cny_per_kwh",
                     "demand_charge_cny_per_kw_month"):
            value = getattr(self, name)
            if value is not None and not (np.isfinite(value) and value >= 0):
                raise ValueError(f"Tariff.{name}: expected a finite value ≥ 0, got {value!r}")
        if self.tou_bands is not None:
            starts = [b.start for b in self.tou_bands]
            if not starts or starts[0] != dt.time(0, 0):
                raise ValueError("Tariff.tou_bands: expected the first band to start at 00:00")
            if any(a >= b for a, b in itertools.pairwise(starts)):
                raise ValueError("Tariff.tou_bands: expected band starts in increasing order")
            if not all(np.isfinite(b.price_cny_per_kwh) and b.price_cny_per_kwh >= 0
                       for b in self.tou_bands):
                raise ValueError("Tariff.tou_bands: expected finite prices ≥ 0")

    def import_price(self, index: pd.DatetimeIndex) -> pd.Series:
        """Import price per step, CNY/kWh, by the local time of day of each step's start."""
        if self.tou_bands is None:
            price = self.flat_price_cny_per_kwh * tou_multiplier(index)
        else:
            minute = np.asarray(index.hour) * 60 + np.asarray(index.minute)
            starts = np.array([b.start.hour * 60 + b.start.minute for b in self.tou_bands])
            prices = np.array([b.price_cny_per_kwh for b in self.tou_bands], dtype=float)
            price = prices[np.searchsorted(starts, minute, side="right") - 1]
        return pd.Series(price, index=index, name="price_cny_per_kwh")

    def describe(self) -> str:
        """The tariff in one phrase, as provenance says it."""
        if self.tou_bands is None:
            text = f"Shanghai TOU, flat {self.flat_price_cny_per_kwh:g} CNY/kWh"
        else:
            text = "TOU table " + ", ".join(
                f"{b.start:%H:%M} {b.price_cny_per_kwh:g}" for b in self.tou_bands) + " CNY/kWh"
        if self.export_price_cny_per_kwh is not None:
            text += f", export {self.export_price_cny_per_kwh:g} CNY/kWh"
        if self.demand_charge_cny_per_kw_month is not None:
            text += f", demand charge {self.demand_charge_cny_per_kw_month:g} CNY/kW-month"
        return text

    def export_price(self, index: pd.DatetimeIndex) -> pd.Series | None:
        """Export (feed-in) price per step, CNY/kWh, or None when export earns nothing."""
        if self.export_price_cny_per_kwh is None:
            return None
        return pd.Series(
            self.export_price_cny_per_kwh, index=index, name="export_price_cny_per_kwh",
            dtype=float,
        )


PRICE_COLUMN = "price_cny_per_kwh"
EXPORT_PRICE_COLUMN = "export_price_cny_per_kwh"
# Retail and market prices in China run from about 0.1 to 2 CNY/kWh (critical peak included);
# a figure above 20 is a unit mix-up (CNY/MWh given as CNY/kWh).
MAX_PRICE_CNY_PER_KWH = 20.0


def read_prices_csv(path: str | Path, *, tz: str) -> pd.DataFrame:
    """Import prices (and optionally export prices) per time from a CSV: columns ``time``,
    ``price_cny_per_kwh`` and optionally ``export_price_cny_per_kwh``, CNY/kWh from 0 to
    :data:`MAX_PRICE_CNY_PER_KWH`; each price holds from its time until the next row's."""
    header = read_table(path, required=["time", PRICE_COLUMN]).columns
    columns = [c for c in (PRICE_COLUMN, EXPORT_PRICE_COLUMN) if c in header]
    return read_timeseries_csv(
        path, columns=columns, min_value=0.0, max_value=MAX_PRICE_CNY_PER_KWH,
        unit="CNY/kWh", why="prices run to about 2 CNY/kWh; CNY/MWh given as CNY/kWh?", tz=tz)
