"""EV sessions from and to CSV files with ACN-Data-like columns.

Columns (ACN-Data name, or gridctl's own name in brackets):

- ``sessionID`` (``id``): unique;
- ``stationID`` (``charger``): an EvChargingSite id of the model;
- ``connectionTime`` (``arrival``), ``disconnectTime`` (``departure``): ISO 8601 or RFC 1123
  times; with an offset (``+02:00``, ``Z``, ``GMT``) they are converted to the model's time zone,
  without one they are read as local time there (``tz``, default Asia/Shanghai);
- ``kWhDelivered`` (``energy_kwh``): ≥ 0;
- optional ``connector`` ("c1".."cN"): if absent, each session takes the lowest-numbered free
  connector of its site at arrival;
- optional ``maxKW`` (``max_kw``): > 0 and ≤ the connector rating; default the rating.

Sessions on one connector must not overlap, and every cell must be a time, a number or a name
the model knows: the first bad row is refused naming the file, row and column. A session that
asks for more than its stay allows at its power (``kWhDelivered > maxKW × stay``: ACN-Data
rounds times, a vehicle may draw less than it reported) is kept as it is, planned for the most
it can get and reported as unservable (:attr:`forecasts.ev.EvSession.unservable_reason`); the
reader says how many there are with a :class:`ForecastInputWarning` naming the first rows.

For a plan (:func:`sessions_of_window`), a session counts if its vehicle is plugged in at some
time of the planned window: one that arrives the evening before and leaves in the morning is
planned for. A file none of whose sessions falls in the window is refused (it is another day's
file), naming the dates it holds and the window; sessions entirely outside the window next to
some inside are left out with a warning that counts them (a file of a week planned one day at
a time is used as it is).
"""

from __future__ import annotations

import csv
import os
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from forecasts.csv_io import parse_numbers, parse_times, read_table, sheet_row
from forecasts.errors import ForecastCoverageError, ForecastInputError, ForecastInputWarning
from forecasts.ev import EvSession, sessions_overlapping
from network_models import TIMEZONE
from network_models.registry import EvChargingSite

# canonical ACN-like name -> accepted alias
ALIASES: dict[str, str] = {
    "sessionID": "id",
    "stationID": "charger",
    "connectionTime": "arrival",
    "disconnectTime": "departure",
    "kWhDelivered": "energy_kwh",
    "maxKW": "max_kw",
    "connector": "connector",
}
REQUIRED = ("sessionID", "stationID", "connectionTime", "disconnectTime", "kWhDelivered")


def read_ev_sessions_csv(
    path: str | Path, sites: Sequence[EvChargingSite], *, tz: str = TIMEZONE
) -> tuple[EvSession, ...]:
    """Validated sessions from a CSV file, times in ``tz``, sorted by arrival; the first bad row
    is refused, unservable sessions are kept (with a warning that counts them)."""
    source = str(path)
    raw = read_table(path, required=())
    table = _canonical_columns(raw, source)
    by_id = {s.id: s for s in sites}
    ids = table["sessionID"].str.strip()
    _refuse_blank_or_duplicate(ids, source)
    site_of_row = _sites_of_rows(table["stationID"].str.strip(), by_id, source)
    arrival = parse_times(table, "connectionTime", source=source, tz=tz)
    departure = parse_times(table, "disconnectTime", source=source, tz=tz)
    _refuse_departure_not_after_arrival(arrival, departure, source)
    energy = parse_numbers(table, "kWhDelivered", source=source, min_value=0.0, unit="kWh")
    rating = np.array([s.p_connector_kw for s in site_of_row])
    max_kw = _max_kw(table, rating, source)
    connectors = _connectors(table, site_of_row, arrival.asi8, departure.asi8, source)
    sessions = [
        EvSession(
            id=ids.iloc[k], site=site_of_row[k].id, connector=connectors[k],
            arrival=arrival[k], departure=departure[k],
            energy_kwh=float(energy[k]), max_kw=float(max_kw[k]),
        )
        for k in range(len(table))
    ]
    _warn_unservable(sessions, source)
    sessions.sort(key=lambda s: (s.arrival.value, s.id))
    return tuple(sessions)


def sessions_of_window(
    sessions: Sequence[EvSession], start: pd.Timestamp, end: pd.Timestamp, *, source: str
) -> tuple[EvSession, ...]:
    """The sessions of a file plugged in at some time in [start, end), the planned window.

    None of them in it (and the file not empty) is refused, naming the file, the dates its
    sessions arrive on and the window; some outside are left out with a
    :class:`ForecastInputWarning` that counts them.
    """
    kept = sessions_overlapping(sessions, start, end)
    outside = [s for s in sessions if not s.overlaps(start, end)]
    if not outside:
        return kept
    window = f"{start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} ({start.tz})"
    if not kept:
        raise ForecastCoverageError(
            f"no session is plugged in during the planned {window}: the file's "
            f"{len(sessions)} session{'s' if len(sessions) != 1 else ''} arrive on "
            f"{_dates(sessions)}; expected sessions of the planned day",
            source=source, field="connectionTime")
    warnings.warn(ForecastInputWarning(
        f"{source}: {len(outside)} of {len(sessions)} sessions are not plugged in during the "
        f"planned {window} (they arrive on {_dates(outside)}) and are left out"), stacklevel=2)
    return kept


def _dates(sessions: Sequence[EvSession]) -> str:
    days = sorted({s.arrival.date() for s in sessions})
    if len(days) <= 3:
        return ", ".join(d.isoformat() for d in days)
    return f"{len(days)} days from {days[0].isoformat()} to {days[-1].isoformat()}"


def sessions_frame(sessions: Sequence[EvSession]) -> pd.DataFrame:
    """Sessions as a table with the ACN-like column names (times in ISO 8601 with offset)."""
    return pd.DataFrame({
        "sessionID": [s.id for s in sessions],
        "stationID": [s.site for s in sessions],
        "connector": [s.connector for s in sessions],
        "connectionTime": [s.arrival.isoformat() for s in sessions],
        "disconnectTime": [s.departure.isoformat() for s in sessions],
        "kWhDelivered": [s.energy_kwh for s in sessions],
        "maxKW": [s.max_kw for s in sessions],
    }, columns=["sessionID", "stationID", "connector", "connectionTime", "disconnectTime",
                "kWhDelivered", "maxKW"])


def write_ev_sessions_csv(sessions: Sequence[EvSession], path: str | Path) -> Path:
    """Write sessions in the format :func:`read_ev_sessions_csv` reads; atomic replace."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=".sessions-", suffix=".csv", dir=target.parent)
    try:
        with os.fdopen(fd, "w", newline="") as f:
            sessions_frame(sessions).to_csv(f, index=False, quoting=csv.QUOTE_MINIMAL)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def _canonical_columns(raw: pd.DataFrame, source: str) -> pd.DataFrame:
    rename = {}
    for canonical, alias in ALIASES.items():
        if canonical not in raw.columns and alias in raw.columns:
            rename[alias] = canonical
    table = raw.rename(columns=rename)
    for column in REQUIRED:
        if column not in table.columns:
            raise ForecastInputError(
                f"missing column: expected {column} (or {ALIASES[column]}); required columns are "
                f"{', '.join(REQUIRED)}",
                source=source, row=1, field=column,
            )
    return table


def _refuse_blank_or_duplicate(ids: pd.Series, source: str) -> None:
    blank = ids.eq("").to_numpy()
    if blank.any():
        pos = int(np.flatnonzero(blank)[0])
        raise ForecastInputError("empty session id: expected a unique id", source=source,
                                 row=sheet_row(pos), field="sessionID")
    dup = ids.duplicated().to_numpy()
    if dup.any():
        pos = int(np.flatnonzero(dup)[0])
        raise ForecastInputError(f"duplicated session id {ids.iloc[pos]!r}: expected unique ids",
                                 source=source, row=sheet_row(pos), field="sessionID")


def _sites_of_rows(
    stations: pd.Series, by_id: dict[str, EvChargingSite], source: str
) -> list[EvChargingSite]:
    out = []
    for pos, station in enumerate(stations):
        site = by_id.get(station)
        if site is None:
            known = ", ".join(sorted(by_id)[:6]) + (", ..." if len(by_id) > 6 else "")
            raise ForecastInputError(
                f"unknown charger {station!r}: expected an EV charging site of the model "
                f"({known or 'the model has none'})",
                source=source, row=sheet_row(pos), field="stationID",
            )
        out.append(site)
    return out


def _refuse_departure_not_after_arrival(
    arrival: pd.DatetimeIndex, departure: pd.DatetimeIndex, source: str
) -> None:
    bad = departure.asi8 <= arrival.asi8
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        raise ForecastInputError(
            f"departure {departure[pos].isoformat()} is not after arrival "
            f"{arrival[pos].isoformat()}: expected a departure after the arrival",
            source=source, row=sheet_row(pos), field="disconnectTime",
        )


def _max_kw(table: pd.DataFrame, rating: np.ndarray, source: str) -> np.ndarray:
    if "maxKW" not in table.columns:
        return rating.astype(float)
    max_kw = parse_numbers(table, "maxKW", source=source, unit="kW")
    bad = (max_kw <= 0) | (max_kw > rating + 1e-9)
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        raise ForecastInputError(
            f"max power {max_kw[pos]:g} kW: expected > 0 and ≤ the connector rating "
            f"{rating[pos]:g} kW",
            source=source, row=sheet_row(pos), field="maxKW",
        )
    return max_kw


def _warn_unservable(sessions: Sequence[EvSession], source: str) -> None:
    rows = [(sheet_row(pos), s) for pos, s in enumerate(sessions) if not s.is_feasible()]
    if not rows:
        return
    first = "; ".join(f"row {row} ({s.id}): {s.unservable_reason()}" for row, s in rows[:3])
    warnings.warn(ForecastInputWarning(
        f"{source}: {len(rows)} of {len(sessions)} sessions cannot be fully served even alone, "
        f"{sum(s.unservable_kwh for _, s in rows):.1f} kWh in all; each is planned at the most "
        f"it can get and reported as unservable (first: {first})"), stacklevel=3)


def _connectors(
    table: pd.DataFrame,
    sites: list[EvChargingSite],
    arrival_ns: np.ndarray,
    departure_ns: np.ndarray,
    source: str,
) -> list[str]:
    given = "connector" in table.columns
    out = [""] * len(table)
    busy_until: dict[tuple[str, str], tuple[int, int]] = {}  # -> (departure ns, position)
    for pos in np.lexsort((departure_ns, arrival_ns)):
        site = sites[pos]
        if given:
            connector = table["connector"].iloc[pos].strip()
            if connector not in site.connector_ids():
                raise ForecastInputError(
                    f"unknown connector {connector!r} at {site.id!r}: expected c1..c"
                    f"{site.n_connectors}",
                    source=source, row=sheet_row(pos), field="connector",
                )
            previous = busy_until.get((site.id, connector))
            if previous is not None and previous[0] > arrival_ns[pos]:
                raise ForecastInputError(
                    f"overlaps the session in row {sheet_row(previous[1])} at {site.id!r} "
                    f"{connector}: expected one vehicle per connector at a time",
                    source=source, row=sheet_row(pos), field="connectionTime",
                )
        else:
            connector = next(
                (c for c in site.connector_ids()
                 if busy_until.get((site.id, c), (-1, -1))[0] <= arrival_ns[pos]),
                "",
            )
            if not connector:
                raise ForecastInputError(
                    f"no free connector at {site.id!r} ({site.n_connectors} connectors): "
                    "expected at most one vehicle per connector at a time",
                    source=source, row=sheet_row(pos), field="connectionTime",
                )
        busy_until[(site.id, connector)] = (int(departure_ns[pos]), int(pos))
        out[pos] = connector
    return out
