"""Shanghai time-of-use electricity prices (沪发改价管〔2022〕50号, in force from 2023-01-01).

Periods (local time, hour h covers [h:00, h+1:00)):

- Jul–Sep: peak 08–15 and 18–21; flat 06–08, 15–18, 21–22; valley 22–06.
- other months: peak 08–11 and 18–21; flat 06–08, 11–18, 21–22; valley 22–06.

Multipliers on the flat price: Jan, Jul, Aug, Sep, Dec peak ×1.8 and valley ×0.4; other months
peak ×1.6 and valley ×0.5. Critical peak = peak ×1.25 in Jul–Aug 12–14 and in Jan/Dec 19–21.
The absolute flat price is an assumption (≈0.65 CNY/kWh) and a parameter. A step takes the price
of the period its start falls in, on the local clock of its index (the model's time zone: a grid
in Berlin pays the peak from 18:00 Berlin time).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import pandas as pd

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
class Tariff:
    """What grid energy costs and earns.

    ``flat_price_cny_per_kwh`` anchors the TOU multipliers; an export price and a demand charge
    (CNY per kW of monthly maximum import) are optional.
    """

    flat_price_cny_per_kwh: float = DEFAULT_FLAT_PRICE_CNY_PER_KWH
    export_price_cny_per_kwh: float | None = None
    demand_charge_cny_per_kw_month: float | None = None

    def __post_init__(self) -> None:
        for name in ("flat_price_cny_per_kwh", "export_price_cny_per_kwh",
                     "demand_charge_cny_per_kw_month"):
            value = getattr(self, name)
            if value is not None and not (np.isfinite(value) and value >= 0):
                raise ValueError(f"Tariff.{name}: expected a finite value ≥ 0, got {value!r}")

    def import_price(self, index: pd.DatetimeIndex) -> pd.Series:
        """Import price per step, CNY/kWh."""
        price = self.flat_price_cny_per_kwh * tou_multiplier(index)
        return pd.Series(price, index=index, name="price_cny_per_kwh")

    def export_price(self, index: pd.DatetimeIndex) -> pd.Series | None:
        """Export (feed-in) price per step, CNY/kWh, or None when export earns nothing."""
        if self.export_price_cny_per_kwh is None:
            return None
        return pd.Series(
            self.export_price_cny_per_kwh, index=index, name="export_price_cny_per_kwh",
            dtype=float,
        )
