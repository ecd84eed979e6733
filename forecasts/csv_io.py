"""Reading CSV files a person provides, refusing bad input with the file, row and column.

Row numbers are spreadsheet rows: the header is row 1, the first data row is row 2. Times without
an offset are read as local time of the given zone (default Asia/Shanghai; ``parse_times(tz=)``),
times with one are converted to it.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from forecasts.errors import ForecastCoverageError, ForecastInputError
from network_models import TIMEZONE

HEADER_ROW = 1
# longest time between two measurements that is bridged by a straight line: an hour, the
# resolution of hourly data, which is what weather services and meters give at the coarsest
MAX_GAP = pd.Timedelta(hours=1)


def sheet_row(position: int) -> int:
    """Spreadsheet row of the data row at 0-based ``position`` (header = row 1)."""
    return position + HEADER_ROW + 1


def read_table(path: str | Path, *, required: Sequence[str]) -> pd.DataFrame:
    """All cells of a CSV file as text, after checking that the ``required`` columns exist.

    The file must be UTF-8 text (a byte-order mark, as spreadsheets write, is allowed)."""
    p = Path(path)
    text = _read_text(p)
    try:
        table = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False,
                            skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ForecastInputError(f"not a readable CSV file ({' '.join(str(exc).split())})",
                                 source=str(p)) from None
    table.columns = [str(c).strip() for c in table.columns]
    for column in required:
        if column not in table.columns:
            raise ForecastInputError(
                f"missing column: expected columns {', '.join(required)}; found "
                f"{', '.join(table.columns) or 'none'}",
                source=str(p),
                row=HEADER_ROW,
                field=column,
            )
    if table.empty:
        raise ForecastInputError("no data rows: expected at least one", source=str(p))
    return table


def _read_text(path: Path) -> str:
    expected = "expected a CSV file (UTF-8 text)"
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ForecastInputError(f"no such file: {expected}", source=str(path)) from None
    except IsADirectoryError:
        raise ForecastInputError(f"is a folder: {expected}", source=str(path)) from None
    except OSError as exc:
        raise ForecastInputError(f"cannot read it ({exc.strerror}): {expected}",
                                 source=str(path)) from None
    if b"\0" in data:
        raise ForecastInputError(f"not a text file (it holds NUL bytes): {expected}",
                                 source=str(path))
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ForecastInputError(
            f"not UTF-8 text (byte {exc.start} cannot be decoded; save it as CSV UTF-8): "
            f"{expected}", source=str(path)) from None


def parse_times(
    table: pd.DataFrame, column: str, *, source: str, tz: str = TIMEZONE
) -> pd.DatetimeIndex:
    """The ``column`` as timestamps in ``tz`` (naive cells are local time there); an empty or
    unreadable cell is refused."""
    text = table[column].str.strip()
    _refuse_blank(text, column, source=source, expected="a date and time")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pandas warns about mixed offsets; handled below
            parsed = pd.to_datetime(text, format="ISO8601")
    except (ValueError, TypeError):
        parsed = None
    if parsed is not None and isinstance(parsed.dtype, pd.DatetimeTZDtype) \
            and not text.str.contains(_OFFSET_AT_END, case=False).all():
        parsed = None  # pandas reads naive cells next to "Z" ones as UTC: they are local time
    if parsed is not None and isinstance(parsed.dtype, np.dtype | pd.DatetimeTZDtype) \
            and parsed.dtype != object:
        times = pd.DatetimeIndex(parsed)
        times = _localize(times, tz, column, source) if times.tz is None else times
        return times.tz_convert(tz)
    # Mixed formats or offsets (e.g. RFC 1123 with GMT next to local times): cell by cell.
    cache: dict[str, int] = {}
    ns = np.empty(len(text), dtype=np.int64)
    for pos, cell in enumerate(text):
        if cell not in cache:
            cache[cell] = _cell_ns(cell, column, pos, source, tz)
        ns[pos] = cache[cell]
    return pd.DatetimeIndex(ns, tz="UTC").tz_convert(tz)


# a time of day followed by an offset or zone: 08:00Z, 08:00:00+02:00, 08:00 GMT, 08:00-0500
_OFFSET_AT_END = r"\d:\d\d(?::\d\d(?:\.\d+)?)?\s*(?:Z|[+-]\d\d(?::?\d\d)?|GMT|UTC)\s*$"


def _localize(times: pd.DatetimeIndex, tz: str, column: str, source: str) -> pd.DatetimeIndex:
    """Naive local times in ``tz``; a time the clock skipped or repeated (daylight saving) is
    refused naming its row: it needs an offset to say which it is."""
    try:
        return times.tz_localize(tz)
    except _LOCAL_TIME_ERRORS:
        pass
    for pos, t in enumerate(times):
        try:
            pd.Timestamp(t).tz_localize(tz)
        except _LOCAL_TIME_ERRORS:
            raise ForecastInputError(
                f"{t} is not a single local time in {tz} (skipped or repeated when the clocks "
                "change): expected a time with its offset, e.g. 2026-10-25T02:30:00+01:00",
                source=source, row=sheet_row(pos), field=column) from None
    raise AssertionError("unreachable")


# pandas says a skipped or repeated local time with pytz's NonExistentTimeError and
# AmbiguousTimeError (not ValueErrors); nothing else can fail in a localisation
_LOCAL_TIME_ERRORS = (Exception,)


def parse_numbers(
    table: pd.DataFrame,
    column: str,
    *,
    source: str,
    min_value: float | None = None,
    max_value: float | None = None,
    unit: str = "",
    why: str = "",
) -> np.ndarray:
    """The ``column`` as finite floats; blank, NaN, non-numeric, < ``min_value`` or
    > ``max_value`` is refused (``why`` says where a bound comes from)."""
    text = table[column].str.strip()
    _refuse_blank(text, column, source=source, expected="a number")
    try:  # exact (pandas' own parser can be a digit off: a bundle read back would differ)
        values = text.to_numpy(dtype=str).astype(float)
    except ValueError:  # something is not a number: find which
        values = pd.to_numeric(text, errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(values)
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        raise ForecastInputError(
            f"expected a finite number, got {text.iloc[pos]!r}",
            source=source,
            row=sheet_row(pos),
            field=column,
        )
    low = values < min_value if min_value is not None else np.zeros(len(values), bool)
    high = values > max_value if max_value is not None else np.zeros(len(values), bool)
    if low.any() or high.any():
        pos = int(np.flatnonzero(low | high)[0])
        if max_value is None:
            bound = f"≥ {min_value:g} {unit}".rstrip()
        elif min_value is None:
            bound = f"≤ {max_value:g} {unit}".rstrip()
        else:
            bound = f"from {min_value:g} to {max_value:g} {unit}".rstrip()
        raise ForecastInputError(
            f"expected a value {bound}{f' ({why})' if why else ''}, got {values[pos]:g}",
            source=source,
            row=sheet_row(pos),
            field=column,
        )
    return values


def refuse_unordered_times(times: pd.DatetimeIndex, column: str, *, source: str) -> None:
    """Refuse timestamps that repeat or go backwards, naming the first offending row."""
    ns = times.asi8
    if len(ns) < 2:
        return
    steps = np.diff(ns)
    if (steps > 0).all():
        return
    pos = int(np.flatnonzero(steps <= 0)[0]) + 1
    what = "duplicated" if steps[pos - 1] == 0 else "earlier than the row before"
    raise ForecastInputError(
        f"timestamp {times[pos].isoformat()} is {what}: expected strictly increasing times",
        source=source,
        row=sheet_row(pos),
        field=column,
    )


def read_timeseries_csv(
    path: str | Path,
    *,
    columns: Sequence[str] | None = None,
    time_column: str = "time",
    min_value: float | None = 0.0,
    max_value: float | None = None,
    unit: str = "",
    why: str = "",
    tz: str = TIMEZONE,
) -> pd.DataFrame:
    """A validated time series: a ``time`` column plus numeric ``columns`` (default: all others).

    Times must be strictly increasing; values finite and within ``min_value``..``max_value``
    (``why`` says where the bounds come from). Returns a frame indexed by time in ``tz``
    (naive cells are local time there).
    """
    source = str(path)
    table = read_table(path, required=[time_column, *(columns or ())])
    value_columns = list(columns) if columns else [c for c in table.columns if c != time_column]
    if not value_columns:
        raise ForecastInputError(
            f"expected at least one value column besides {time_column!r}", source=source
        )
    times = parse_times(table, time_column, source=source, tz=tz)
    refuse_unordered_times(times, time_column, source=source)
    data = {
        c: parse_numbers(table, c, source=source, min_value=min_value, max_value=max_value,
                         unit=unit, why=why)
        for c in value_columns
    }
    return pd.DataFrame(data, index=times.rename("time"))


def refuse_above(
    frame: pd.DataFrame, limits: Mapping[str, float], *, source: str, unit: str, why: str
) -> None:
    """Refuse the first cell of ``frame`` (as read by :func:`read_timeseries_csv`) above its
    column's limit, naming the file, row and column."""
    for column, limit in limits.items():
        values = frame[column].to_numpy(dtype=float)
        high = values > limit
        if high.any():
            pos = int(np.flatnonzero(high)[0])
            raise ForecastInputError(
                f"expected at most {limit:g} {unit} ({why}), got {values[pos]:g}",
                source=source, row=sheet_row(pos), field=column)


def align_to_times(
    frame: pd.DataFrame, times: pd.DatetimeIndex, *, source: str
) -> pd.DataFrame:
    """``frame`` interpolated linearly in time at ``times``, which it must cover without a gap
    longer than :data:`MAX_GAP` (or than the step of ``times``, if longer)."""
    if len(frame) == 0 or times[0] < frame.index[0] or times[-1] > frame.index[-1]:
        have = (f"{frame.index[0].isoformat()} to {frame.index[-1].isoformat()}"
                if len(frame) else "none")
        raise ForecastCoverageError(
            f"does not cover the horizon: expected data from {times[0].isoformat()} to "
            f"{times[-1].isoformat()}, file has {have}",
            source=source,
        )
    _refuse_gaps(frame.index, times, source=source)
    x = frame.index.asi8.astype(float)
    xq = times.asi8.astype(float)
    out = {c: np.interp(xq, x, frame[c].to_numpy(dtype=float)) for c in frame.columns}
    return pd.DataFrame(out, index=times)


def _refuse_gaps(have: pd.DatetimeIndex, times: pd.DatetimeIndex, *, source: str) -> None:
    """Refuse two consecutive samples further apart than the gap allowed, where the gap
    touches the horizon (a logger that stopped for hours would be bridged by a straight line)."""
    step = pd.Timedelta(times[1] - times[0]) if len(times) > 1 else pd.Timedelta(0)
    allowed = max(MAX_GAP, step)
    ns = have.asi8
    gaps = np.diff(ns)
    touching = (ns[1:] > times.asi8[0]) & (ns[:-1] < times.asi8[-1])
    bad = touching & (gaps > allowed.value)
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        hours = gaps[pos] / 3.6e12
        raise ForecastInputError(
            f"no data from {have[pos].isoformat()} to {have[pos + 1].isoformat()} "
            f"({hours:.4g} h) within the horizon: expected samples at most "
            f"{allowed / pd.Timedelta(hours=1):g} h apart",
            source=source, row=sheet_row(pos + 1),
        )


def _refuse_blank(text: pd.Series, column: str, *, source: str, expected: str) -> None:
    blank = text.eq("") | text.str.lower().isin(["nan", "na", "n/a", "null", "none"])
    if blank.any():
        pos = int(np.flatnonzero(blank.to_numpy())[0])
        raise ForecastInputError(
            f"empty or NaN cell: expected {expected}",
            source=source,
            row=sheet_row(pos),
            field=column,
        )


def _cell_ns(cell: str, column: str, pos: int, source: str, tz: str = TIMEZONE) -> int:
    try:
        ts = pd.Timestamp(cell)
    except (ValueError, TypeError):
        ts = pd.NaT
    if ts is pd.NaT:
        raise ForecastInputError(
            f"expected a date and time such as 2026-07-15 08:00 or "
            f"2026-07-15T08:00:00+08:00, got {cell!r}",
            source=source,
            row=sheet_row(pos),
            field=column,
        )
    if ts.tzinfo is None:
        try:
            ts = ts.tz_localize(tz)
        except _LOCAL_TIME_ERRORS:
            raise ForecastInputError(
                f"{cell} is not a single local time in {tz} (skipped or repeated when the clocks "
                "change): expected a time with its offset", source=source, row=sheet_row(pos),
                field=column) from None
    return ts.value
