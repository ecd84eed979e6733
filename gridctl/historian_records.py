"""The historian's records: an EV session as kept, the retention settings, a run, what one
retention pass did, and how field times are stored (Unix seconds and ISO 8601 with offset)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from gridctl.historian_schema import HistorianError

__all__ = ["SESSION_COLUMNS", "HistorianRun", "HistorianSettings", "Maintenance",
           "StoredSession", "field_time", "session_row", "stored_session"]


def field_time(t: pd.Timestamp) -> tuple[float, str]:
    """``t`` as stored: Unix seconds (for ordering) and ISO 8601 with its offset."""
    if t.tzinfo is None:
        raise ValueError("historian times must be timezone-aware")
    return t.value / 1e9, t.isoformat()


@dataclass(frozen=True, kw_only=True)
class StoredSession:
    """An EV session as the historian keeps it: the names of :class:`forecasts.ev.EvSession`
    (``energy_kwh`` is what the vehicle asked for), with the energy delivered and when the
    charger reported its end. Stay and energy are as read, so unlike an ``EvSession`` a stored
    one may have arrived and left in the same second."""

    id: str
    site: str  # EvChargingSite device id
    connector: str
    arrival: pd.Timestamp
    departure: pd.Timestamp
    energy_kwh: float  # asked for
    max_kw: float
    energy_delivered_kwh: float  # final once ``ended`` is set (the charger's own report)
    ended: pd.Timestamp | None = None


# the ev_sessions table keeps the column names its files were written with (session_id,
# charger, energy_requested_kwh): renaming them would need every stored file migrated. This is
# the one place that maps StoredSession's fields to them, in the table's column order.
SESSION_COLUMNS = "session_id, charger, connector, arrival, departure, energy_requested_kwh, " \
    "max_kw, energy_delivered_kwh"


def session_row(s: StoredSession) -> tuple[Any, ...]:
    """``s`` as the values of ``SESSION_COLUMNS``."""
    return (s.id, s.site, s.connector, s.arrival.isoformat(), s.departure.isoformat(),
            s.energy_kwh, s.max_kw, s.energy_delivered_kwh)


def stored_session(row: Sequence[Any], ended_unix: float | None) -> StoredSession:
    """A session from the values of ``SESSION_COLUMNS`` and its end (Unix s, or None)."""
    arrival = pd.Timestamp(row[3])
    return StoredSession(
        id=row[0], site=row[1], connector=row[2], arrival=arrival,
        departure=pd.Timestamp(row[4]), energy_kwh=row[5], max_kw=row[6],
        energy_delivered_kwh=row[7],
        ended=(None if ended_unix is None
               else pd.Timestamp(ended_unix, unit="s", tz="UTC").tz_convert(arrival.tz)),
    )


@dataclass(frozen=True, kw_only=True)
class HistorianSettings:
    """How long the historian keeps what, in days of field time (None: for ever).

    Raw measurements older than ``raw_days`` become 15-minute statistics per point (mean, min,
    max, samples), kept ``means_days``; commands and write batches are kept ``commands_days``.
    Events, decisions, schedules and EV sessions are kept. One :meth:`Historian.maintain` call
    handles at most ``max_rows_per_pass`` rows of each table and frees at most
    ``max_vacuum_pages`` pages (4 KiB each), so it stays short however much is due.
    """

    raw_days: float | None = 7.0
    means_days: float | None = 400.0
    commands_days: float | None = 90.0
    max_rows_per_pass: int = 500
    max_vacuum_pages: int = 4096

    def __post_init__(self) -> None:
        for name in ("raw_days", "means_days", "commands_days"):
            days = getattr(self, name)
            if days is not None and (
                isinstance(days, bool) or not isinstance(days, int | float)
                or not math.isfinite(days) or days <= 0
            ):
                raise HistorianError(f"{days!r}: expected a number of days above 0",
                                     field=name)
        if self.raw_days is not None and self.means_days is not None and (
                self.means_days < self.raw_days):
            raise HistorianError(
                f"{self.means_days} days: expected at least the days raw measurements are "
                f"kept ({self.raw_days}): their 15-minute means are made then",
                field="means_days")
        for name in ("max_rows_per_pass", "max_vacuum_pages"):
            n = getattr(self, name)
            if isinstance(n, bool) or not isinstance(n, int) or n < 1:
                raise HistorianError(f"{n!r}: expected a whole number of at least 1", field=name)


@dataclass(frozen=True, kw_only=True)
class HistorianRun:
    """One segment of the record: from a start of the runtime, or a field clock that jumped."""

    id: int
    reason: str
    detail: Mapping[str, Any]
    wall_start: pd.Timestamp | None  # None for the run an older historian's rows became
    first_t: pd.Timestamp | None  # field time of its first and last record (None: none yet)
    last_t: pd.Timestamp | None
    rows: Mapping[str, int]  # per table


@dataclass(frozen=True, kw_only=True)
class Maintenance:
    """What one :meth:`Historian.maintain` call did."""

    frames_downsampled: int = 0
    means_deleted: int = 0
    batches_deleted: int = 0
    commands_deleted: int = 0
    pages_freed: int = 0
