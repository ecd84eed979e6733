"""Carbon intensity of grid import: a constant by default, a measured or published series if given.

The default 0.42 kgCO2/kWh is an assumption (GRID.md), a parameter.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from forecasts.csv_io import read_timeseries_csv
from forecasts.errors import ForecastInputError
from network_models import TIMEZONE

DEFAULT_CARBON_KG_PER_KWH = 0.42
CARBON_COLUMN = "carbon_kg_per_kwh"


def carbon_intensity(
    index: pd.DatetimeIndex, kg_per_kwh: float | pd.Series = DEFAULT_CARBON_KG_PER_KWH
) -> pd.Series:
    """Carbon intensity per step, kgCO2/kWh; a series is held from each of its times onwards."""
    if isinstance(kg_per_kwh, pd.Series):
        series = kg_per_kwh.sort_index()
        if series.index.tz is None:
            raise ForecastInputError(
                "expected a timezone-aware index on the carbon intensity series", field="carbon"
            )
        if len(series) == 0 or series.index[0] > index[0]:
            raise ForecastInputError(
                f"carbon intensity series starts after the horizon ({index[0].isoformat()})",
                field="carbon",
            )
        pos = np.searchsorted(series.index.asi8, index.asi8, side="right") - 1
        values = series.to_numpy(dtype=float)[pos]
    else:
        if not (np.isfinite(kg_per_kwh) and kg_per_kwh >= 0):
            raise ForecastInputError(
                f"expected a carbon intensity ≥ 0 kg/kWh, got {kg_per_kwh!r}", field="carbon"
            )
        values = np.full(len(index), float(kg_per_kwh))
    return pd.Series(values, index=index, name=CARBON_COLUMN)


# The most carbon-intensive plants (lignite) emit about 1.2 kgCO2/kWh, so no grid's mix comes
# near 2; a larger figure is a unit mix-up (g/kWh given as kg/kWh).
MAX_CARBON_KG_PER_KWH = 2.0


def read_carbon_csv(path: str | Path, *, tz: str = TIMEZONE) -> pd.Series:
    """A carbon intensity series from a CSV with columns ``time`` and ``carbon_kg_per_kwh``
    (0 to :data:`MAX_CARBON_KG_PER_KWH`)."""
    frame = read_timeseries_csv(
        path, columns=[CARBON_COLUMN], min_value=0.0, max_value=MAX_CARBON_KG_PER_KWH,
        unit="kg/kWh", why="lignite plants emit about 1.2 kg/kWh; g/kWh given as kg/kWh?",
        tz=tz)
    return frame[CARBON_COLUMN]
