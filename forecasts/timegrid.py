"""Time axes of forecasts: timezone-aware (the model's zone, default Asia/Shanghai), fixed steps
that tile a day.

A step is a fixed length of time; a local day is from one local midnight to the next, so a day
on which the clocks change has a step fewer or more per hour changed (92 or 100 quarter-hours
in Europe/Berlin in March and October; Asia/Shanghai has kept 96 since 1991)."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from forecasts.errors import ForecastInputError
from network_models.model import TIMEZONE

DAY = pd.Timedelta(days=1)
# Times gridctl plans and simulates: pandas holds times only up to 2262 (nanoseconds in 64
# bits), the tariff and climate are present-day ones, and China last kept daylight saving time
# in 1991.
EARLIEST = dt.date(1992, 1, 1)
LATEST = dt.date(2199, 12, 31)
# the longest horizon: a year of steps (a leap year), what year-long studies need
MAX_HORIZON = pd.Timedelta(days=366)


def to_local(value: object, *, what: str = "start", tz: str = TIMEZONE) -> pd.Timestamp:
    """A timestamp in ``tz``; naive values are read as local time in ``tz``. Times before
    :data:`EARLIEST` or after :data:`LATEST` are refused."""
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        value = dt.datetime.combine(value, dt.time())
    if isinstance(value, dt.datetime) and not EARLIEST <= value.date() <= LATEST:
        raise _out_of_range(value, what)
    try:
        ts = pd.Timestamp(value)  # type: ignore[arg-type]
    except (ValueError, TypeError, OverflowError) as exc:  # OutOfBoundsDatetime is a ValueError
        raise ForecastInputError(
            f"expected a date or time such as 2026-07-15 or 2026-07-15T08:00+08:00, got {value!r}",
            field=what,
        ) from exc
    if ts is pd.NaT:
        raise ForecastInputError(f"expected a date or time, got {value!r}", field=what)
    if not EARLIEST <= ts.date() <= LATEST:
        raise _out_of_range(value, what)
    return ts.tz_localize(tz) if ts.tzinfo is None else ts.tz_convert(tz)


def _out_of_range(value: object, what: str) -> ForecastInputError:
    return ForecastInputError(
        f"{value}: expected a date from {EARLIEST.isoformat()} to {LATEST.isoformat()}",
        field=what,
    )


def to_duration(value: object, *, what: str) -> pd.Timedelta:
    """A positive duration from e.g. ``"15min"``, ``"24h"``, ``"365D"`` or a Timedelta."""
    try:
        td = pd.Timedelta(value)  # type: ignore[arg-type]
    except (ValueError, TypeError) as exc:
        raise ForecastInputError(
            f"expected a duration such as 15min, 24h or 7D, got {value!r}", field=what
        ) from exc
    if td is pd.NaT or td <= pd.Timedelta(0):
        raise ForecastInputError(f"expected a positive duration, got {value!r}", field=what)
    return td


def make_index(
    start: object, horizon: object, step: object, *, tz: str = TIMEZONE
) -> pd.DatetimeIndex:
    """Step starts from ``start`` (naive: local time in ``tz``) over ``horizon``, in ``tz``; the
    step must tile a day and start be on it."""
    t0 = to_local(start, what="start", tz=tz)
    td_step = to_duration(step, what="step")
    td_horizon = to_duration(horizon, what="horizon")
    if DAY % td_step != pd.Timedelta(0):
        raise ForecastInputError(
            f"expected a step that divides a day evenly (e.g. 5min, 15min, 1h), got {step!r}",
            field="step",
        )
    if (t0 - t0.normalize()) % td_step != pd.Timedelta(0):
        raise ForecastInputError(
            f"expected a start on a {td_step} boundary, got {t0.isoformat()}", field="start"
        )
    if td_horizon > MAX_HORIZON:
        raise ForecastInputError(
            f"expected a horizon of at most {MAX_HORIZON.days} days, got {horizon!r}",
            field="horizon",
        )
    if not (t0 + td_horizon).date() <= LATEST + dt.timedelta(days=1):
        raise _out_of_range(t0 + td_horizon, "horizon")
    if td_horizon % td_step != pd.Timedelta(0):
        raise ForecastInputError(
            f"expected a horizon that is a whole number of {td_step} steps, got {horizon!r}",
            field="horizon",
        )
    n = int(td_horizon / td_step)
    return pd.date_range(t0, periods=n, freq=td_step, name="time")


def step_of(index: pd.DatetimeIndex) -> pd.Timedelta:
    """The fixed step of an index built by :func:`make_index`."""
    if index.freq is not None:
        return pd.Timedelta(index.freq)
    if len(index) < 2:
        raise ValueError("cannot infer the step of an index with fewer than two entries")
    return pd.Timedelta(index[1] - index[0])


def whole_days(index: pd.DatetimeIndex, step: pd.Timedelta) -> pd.DatetimeIndex:
    """Every step of the calendar days that ``index`` touches (local time), for day-wise models."""
    first = index[0].normalize()
    last = local_midnight(index[-1].date() + dt.timedelta(days=1), str(index.tz))
    return pd.date_range(first, last, freq=step, inclusive="left", name="time")


def local_midnight(day: dt.date, tz: str) -> pd.Timestamp:
    """The start of ``day`` in ``tz``."""
    return pd.Timestamp(dt.datetime.combine(day, dt.time())).tz_localize(tz)


def local_days(day: dt.date, days: int, tz: str) -> tuple[pd.Timestamp, pd.Timedelta]:
    """Start and length of ``days`` local days from ``day``'s midnight in ``tz`` (24 h each but
    where the clocks change)."""
    start = local_midnight(day, tz)
    return start, local_midnight(day + dt.timedelta(days=days), tz) - start


def floor_to_step(ts: pd.Timestamp, step: pd.Timedelta) -> pd.Timestamp:
    """The start of the step containing ``ts`` (steps counted from local midnight)."""
    midnight = ts.normalize()
    return midnight + ((ts - midnight) // step) * step
