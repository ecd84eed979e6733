"""The historian: what the controller saw, decided and did, in SQLite (WAL).

One file, each write its own transaction, so a ``kill -9`` loses nothing that was committed and
leaves nothing half-written. A restarted runtime resumes from it: the last schedule, every EV
session and the energy delivered to it so far.

Time: ``t`` of every record is field time (the simulator's clock, or the field's); the historian
stamps the wall time itself on events and decisions (``wall_t``). An event may have no field
time (``t=None``: nothing known yet); events are kept in the order recorded, which is wall time.

Runs: :meth:`Historian.begin_run` starts a segment of the record (a start of the runtime, a field
clock that jumped back); every row written after carries its id, and reading methods take
``run`` (default: every run, in order). A report never merges two runs' series.

Retention (:class:`HistorianSettings`, applied by :meth:`Historian.maintain`): raw measurements
are downsampled to 15-minute statistics after a week, the statistics and commands are deleted
after their time; events, decisions, schedules and sessions are kept. Heartbeats are counted as
one row per write batch, with only their refused points stored one by one.

Times are stored as ISO 8601 with offset (Asia/Shanghai) and as Unix seconds for ordering.
File checks, the tables and the upgrade of older files: ``gridctl.historian_schema``.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import sqlite3
import threading
import time
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gridctl.historian_frames import (
    FrameDamaged,
    bucket_stats,
    merge_stats,
    pack_stats,
    pack_values,
    unpack_stats,
    unpack_values,
)
from gridctl.historian_schema import (
    MEAN_MINUTES,
    HistorianError,
    PointCatalog,
    open_db,
)
from network_models import TIMEZONE

__all__ = ["Historian", "HistorianError", "HistorianRun", "HistorianSettings", "Maintenance",
           "StoredSession"]

DAY_S = 86400.0
BUCKET_S = MEAN_MINUTES * 60.0


def _t(t: pd.Timestamp) -> tuple[float, str]:
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
_SESSION_COLUMNS = "session_id, charger, connector, arrival, departure, energy_requested_kwh, " \
    "max_kw, energy_delivered_kwh"


def _session_row(s: StoredSession) -> tuple[Any, ...]:
    """``s`` as the values of ``_SESSION_COLUMNS``."""
    return (s.id, s.site, s.connector, s.arrival.isoformat(), s.departure.isoformat(),
            s.energy_kwh, s.max_kw, s.energy_delivered_kwh)


def _stored_session(row: Sequence[Any], ended_unix: float | None) -> StoredSession:
    """A session from the values of ``_SESSION_COLUMNS`` and its end (Unix s, or None)."""
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


class Historian:
    """A SQLite historian; safe to open again after a crash.

    ``create=False`` opens only an existing historian (a report). A bad path or file raises
    :class:`HistorianError` before anything is created or changed.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        settings: HistorianSettings | None = None,
        create: bool = True,
    ) -> None:
        self.path = Path(path)
        self.settings = settings if settings is not None else HistorianSettings()
        self._db = open_db(self.path, create=create)
        self._lock = threading.RLock()
        self._catalog = PointCatalog(self._db)
        self._run: int | None = None
        self._tz = self.meta("timezone") or TIMEZONE  # what field times are shown in
        self._tz_stored = self.meta("timezone") is not None

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Historian:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing: every call is one transaction ------------------------------------------------
    @contextlib.contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            run_before = self._run
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                self._catalog.forget()  # ids it handed out in this transaction are gone
                self._run = run_before
                self._tz_stored = self.meta("timezone") is not None
                raise
            self._db.execute("COMMIT")

    def _current_run(self, t: pd.Timestamp | None = None) -> int:
        """The run rows go to: the one begun last, else the file's last, else a first one."""
        if self._run is None:
            row = self._db.execute("SELECT max(id) FROM runs").fetchone()
            self._run = row[0] if row[0] is not None else self._insert_run("implicit", {})
        if t is not None and not self._tz_stored:
            name = getattr(t.tz, "key", None) or getattr(t.tz, "zone", None)  # zoneinfo, pytz
            if name:
                self._tz = name
                self._db.execute("INSERT OR IGNORE INTO meta VALUES ('timezone', ?)", (name,))
                self._tz_stored = True
        return self._run

    def _insert_run(self, reason: str, detail: Mapping[str, Any]) -> int:
        wall = time.time()
        return self._db.execute(
            "INSERT INTO runs (reason, detail_json, wall_unix, wall_t) VALUES (?,?,?,?)",
            (reason, json.dumps(dict(detail), default=str), wall, self._wall_iso(wall)),
        ).lastrowid

    def _wall_iso(self, wall_unix: float) -> str:
        return pd.Timestamp(wall_unix, unit="s", tz="UTC").tz_convert(self._tz).isoformat()

    def begin_run(self, reason: str, **detail: Any) -> int:
        """Start a new run (a segment of the record); every row written after carries its id.

        ``reason``: why ("start", "clock_jumped_back", ...); ``detail`` is kept with it (JSON).
        """
        if not isinstance(reason, str) or not reason:
            raise ValueError(f"a run's reason must be a non-empty string, not {reason!r}")
        with self._writing():
            self._run = self._insert_run(reason, detail)
        return self._run

    @property
    def run(self) -> int | None:
        """The run written to now (None until a run is begun or a row written)."""
        return self._run

    def record_measurements(
        self,
        t: pd.Timestamp,
        values: Mapping[tuple[str, str], float | None],
        status: Mapping[tuple[str, str], str] | None = None,
    ) -> None:
        """One reading (a frame) of the points in ``values``; ``status`` of those not Good."""
        tu, _ = _t(t)
        keys = tuple(values)
        if not keys:
            return
        blob = pack_values(list(values.values()))  # before the transaction: a bad value raises
        bad = {str(i): s for i, k in enumerate(keys) if (s := (status or {}).get(k, "Good"))
               != "Good"}
        with self._writing() as db:
            run = self._current_run(t)
            db.execute(
                "INSERT INTO measurement_frames (run_id, t_unix, point_set, values_zlib, "
                "status_json) VALUES (?,?,?,?,?)",
                (run, tu, self._catalog.set_id(keys), blob, json.dumps(bad) if bad else None),
            )

    def record_schedule(self, t: pd.Timestamp, kind: str, table: pd.DataFrame) -> None:
        tu, ts = _t(t)
        blob = zlib.compress(table.to_json(orient="split", date_format="iso").encode("utf-8"))
        with self._writing() as db:
            db.execute(
                "INSERT INTO schedules (run_id, t_unix, t, wall_unix, kind, table_zlib) "
                "VALUES (?,?,?,?,?,?)",
                (self._current_run(t), tu, ts, time.time(), kind, blob),
            )

    def record_decision(self, t: pd.Timestamp, kind: str, record: Mapping[str, Any]) -> None:
        tu, ts = _t(t)
        record_json = json.dumps(record, default=str)
        wall = time.time()
        with self._writing() as db:
            db.execute(
                "INSERT INTO decisions (run_id, t_unix, t, wall_unix, wall_t, kind, status, "
                "fallback, record_json) VALUES (?,?,?,?,?,?,?,?,?)",
                (self._current_run(t), tu, ts, wall, self._wall_iso(wall), kind,
                 str(record.get("status", "")), record.get("fallback"), record_json),
            )

    def record_commands(
        self,
        t: pd.Timestamp,
        results: Iterable[tuple[str, str, float | bool | None, str]],
        *,
        reason: str | None = None,
    ) -> None:
        """One write batch: ``results`` are (device, point, value, status name).

        Every batch is counted in ``write_batches`` (points, refused); its points are stored one
        by one in ``commands``, except for ``reason="heartbeat"`` (the last setpoints sent again):
        only its refused points. A status is refused unless it begins with "Good".
        """
        tu, ts = _t(t)
        rows = [(str(d), str(p), None if v is None else float(v), str(r))
                for d, p, v, r in results]
        if not rows:
            return
        refused = [i for i, r in enumerate(rows) if not r[3].startswith("Good")]
        kept = refused if reason == "heartbeat" else range(len(rows))
        with self._writing() as db:
            batch = db.execute(
                "INSERT INTO write_batches (run_id, t_unix, t, reason, points, refused) "
                "VALUES (?,?,?,?,?,?)",
                (self._current_run(t), tu, ts, reason, len(rows), len(refused)),
            ).lastrowid
            db.executemany(
                "INSERT INTO commands (batch_id, seq, point_id, value, result) VALUES (?,?,?,?,?)",
                ((batch, i, self._catalog.point_id(rows[i][:2]), rows[i][2], rows[i][3])
                 for i in kept),
            )

    def record_event(self, t: pd.Timestamp | None, kind: str, **detail: Any) -> None:
        """An event at field time ``t`` (None: no field time known yet); the wall time is the
        historian's own."""
        tu, ts = (None, None) if t is None else _t(t)
        detail_json = json.dumps(detail, default=str)
        wall = time.time()
        with self._writing() as db:
            db.execute(
                "INSERT INTO events (run_id, t_unix, t, wall_unix, wall_t, kind, detail_json) "
                "VALUES (?,?,?,?,?,?,?)",
                (self._current_run(t), tu, ts, wall, self._wall_iso(wall), kind, detail_json),
            )

    def upsert_sessions(self, t: pd.Timestamp, sessions: Iterable[StoredSession]) -> None:
        """The sessions as read now, in the current run (a session ended stays as reported)."""
        tu, _ = _t(t)
        sessions = list(sessions)
        with self._writing() as db:
            run = self._current_run(t)
            db.executemany(
                f"INSERT INTO ev_sessions (run_id, {_SESSION_COLUMNS}, updated_unix) "
                "VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT(run_id, session_id) DO UPDATE "
                "SET energy_delivered_kwh=excluded.energy_delivered_kwh, "
                "departure=excluded.departure, energy_requested_kwh=excluded.energy_requested_kwh, "
                "updated_unix=excluded.updated_unix WHERE ended_unix IS NULL",
                ((run, *_session_row(s), tu) for s in sessions),
            )

    def record_session_end(self, t: pd.Timestamp, session_id: str, energy_kwh: float) -> bool:
        """A charger reported the end of a session with the energy it got in all; False if the
        historian never saw the session open (nothing is written then).

        A session last seen open in an earlier run (the vehicle stayed over a restart) ends in
        the current run; the earlier run's row is left as that run saw it.
        """
        tu, _ = _t(t)
        with self._writing() as db:
            run = self._current_run(t)
            cursor = db.execute(
                "UPDATE ev_sessions SET energy_delivered_kwh=?, ended_unix=?, updated_unix=? "
                "WHERE run_id=? AND session_id=? AND ended_unix IS NULL",
                (float(energy_kwh), tu, tu, run, session_id),
            )
            if cursor.rowcount == 1:
                return True
            if db.execute("SELECT 1 FROM ev_sessions WHERE run_id=? AND session_id=?",
                          (run, session_id)).fetchone():
                return False  # reported once already
            row = db.execute(
                "SELECT charger, connector, arrival, departure, energy_requested_kwh, max_kw "
                "FROM ev_sessions WHERE session_id=? AND run_id<? AND ended_unix IS NULL "
                "ORDER BY run_id DESC LIMIT 1", (session_id, run)).fetchone()
            if row is None:
                return False
            db.execute(
                "INSERT INTO ev_sessions (run_id, session_id, charger, connector, arrival, "
                "departure, energy_requested_kwh, max_kw, energy_delivered_kwh, updated_unix, "
                "ended_unix) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (run, session_id, *row, float(energy_kwh), tu, tu),
            )
        return True

    def set_meta(self, key: str, value: str) -> None:
        with self._writing() as db:
            db.execute(
                "INSERT INTO meta VALUES (?,?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                (key, value),
            )

    # -- retention ----------------------------------------------------------------------------
    def maintain(self, now: pd.Timestamp) -> Maintenance:
        """Apply the retention settings at field time ``now`` (bounded work, short transactions):
        downsample raw measurements that reached ``raw_days``, delete statistics and commands
        past their time, and give back up to ``max_vacuum_pages`` free pages to the disk."""
        tu, _ = _t(now)
        s = self.settings
        frames = means = batches = commands = 0
        if s.raw_days is not None:
            cutoff = math.floor((tu - s.raw_days * DAY_S) / BUCKET_S) * BUCKET_S
            frames = self._downsample_before(cutoff, s.max_rows_per_pass)
        if s.means_days is not None:
            means = self._delete_means_before(tu - s.means_days * DAY_S, s.max_rows_per_pass)
        if s.commands_days is not None:
            batches, commands = self._delete_batches_before(
                tu - s.commands_days * DAY_S, s.max_rows_per_pass)
        return Maintenance(frames_downsampled=frames, means_deleted=means,
                           batches_deleted=batches, commands_deleted=commands,
                           pages_freed=self._vacuum(s.max_vacuum_pages))

    def _run_ids(self) -> list[int]:
        return [r[0] for r in self._db.execute("SELECT id FROM runs ORDER BY id")]

    def _downsample_before(self, cutoff: float, budget: int) -> int:
        """Raw frames before ``cutoff`` (a bucket boundary) become statistics, whole buckets at
        a time, oldest first, about ``budget`` frames in all."""
        done = 0
        for run in self._run_ids():
            while done < budget:
                first = self._db.execute(
                    "SELECT min(t_unix) FROM measurement_frames WHERE run_id=?", (run,)
                ).fetchone()[0]
                if first is None or first >= cutoff:
                    break
                start = math.floor(first / BUCKET_S) * BUCKET_S
                row = self._db.execute(
                    "SELECT t_unix FROM measurement_frames WHERE run_id=? AND t_unix<? "
                    "ORDER BY t_unix LIMIT 1 OFFSET ?", (run, cutoff, budget - done)).fetchone()
                end = cutoff if row is None else min(
                    cutoff, max(math.floor(row[0] / BUCKET_S) * BUCKET_S, start + BUCKET_S))
                done += self._downsample(run, start, end)
        return done

    def _downsample(self, run: int, start: float, end: float) -> int:
        """The frames of ``run`` in [start, end) as statistics per bucket, in one transaction."""
        with self._writing() as db:
            rows = db.execute(
                "SELECT id, t_unix, point_set, values_zlib, status_json FROM measurement_frames "
                "WHERE run_id=? AND t_unix>=? AND t_unix<? ORDER BY t_unix", (run, start, end)
            ).fetchall()
            buckets: dict[float, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {}
            for frame_id, t_unix, set_id, blob, status_json in rows:
                ids = self._catalog.ids_of_set(set_id)
                values = self._unpack(frame_id, blob, len(ids))
                good = np.ones(len(ids), dtype=bool)
                if status_json:
                    good[[int(i) for i in json.loads(status_json)]] = False
                bucket = math.floor(t_unix / BUCKET_S) * BUCKET_S
                buckets.setdefault(bucket, []).append((ids, values, good))
            for bucket, parts in buckets.items():
                ids, stats = bucket_stats(*(np.concatenate(p) for p in zip(*parts, strict=True)))
                before = db.execute(
                    "SELECT point_set, stats_zlib FROM measurement_means WHERE run_id=? AND "
                    "t_unix=?", (run, bucket)).fetchone()
                if before is not None:  # frames recorded late into a bucket already made
                    old_ids = self._catalog.ids_of_set(before[0])
                    ids, stats = merge_stats(
                        old_ids, unpack_stats(before[1], len(old_ids)), ids, stats)
                db.execute(
                    "INSERT OR REPLACE INTO measurement_means (run_id, t_unix, minutes, "
                    "point_set, stats_zlib) VALUES (?,?,?,?,?)",
                    (run, bucket, MEAN_MINUTES, self._catalog.set_of_ids(ids), pack_stats(stats)),
                )
            db.execute("DELETE FROM measurement_frames WHERE run_id=? AND t_unix>=? AND t_unix<?",
                       (run, start, end))
        return len(rows)

    def _delete_means_before(self, cutoff: float, budget: int) -> int:
        done = 0
        for run in self._run_ids():
            if done >= budget:
                break
            with self._writing() as db:
                done += db.execute(
                    "DELETE FROM measurement_means WHERE rowid IN (SELECT rowid FROM "
                    "measurement_means WHERE run_id=? AND t_unix<? ORDER BY t_unix LIMIT ?)",
                    (run, cutoff, budget - done)).rowcount
        return done

    def _delete_batches_before(self, cutoff: float, budget: int) -> tuple[int, int]:
        batches = commands = 0
        for run in self._run_ids():
            if batches >= budget:
                break
            with self._writing() as db:
                ids = [r[0] for r in db.execute(
                    "SELECT id FROM write_batches WHERE run_id=? AND t_unix<? ORDER BY t_unix "
                    "LIMIT ?", (run, cutoff, budget - batches))]
                for batch in ids:
                    commands += db.execute("DELETE FROM commands WHERE batch_id=?",
                                           (batch,)).rowcount
                db.executemany("DELETE FROM write_batches WHERE id=?", ((i,) for i in ids))
                batches += len(ids)
        return batches, commands

    def _vacuum(self, max_pages: int) -> int:
        """Give free pages back to the disk (incremental auto-vacuum; an old file upgraded but
        not vacuumed keeps its free pages for new rows instead)."""
        with self._lock:
            if self._db.execute("PRAGMA auto_vacuum").fetchone()[0] != 2:
                return 0
            free = self._db.execute("PRAGMA freelist_count").fetchone()[0]
            if free == 0:
                return 0
            self._db.execute(f"PRAGMA incremental_vacuum({min(free, max_pages)})").fetchall()
            freed = free - self._db.execute("PRAGMA freelist_count").fetchone()[0]
            self._db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        return freed

    # -- reading -------------------------------------------------------------------------------
    def meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else row[0]

    @staticmethod
    def _of_run(run: int | None, sql: str, args: list[Any], column: str = "run_id") -> str:
        if run is not None:
            args.append(int(run))
            return sql + (" AND " if " WHERE " in sql else " WHERE ") + f"{column}=?"
        return sql

    def runs(self) -> list[HistorianRun]:
        """Every run, in order, with its field-time span and row counts."""
        counts: dict[str, dict[int, int]] = {}
        spans: dict[int, list[float]] = {}
        for table, t_column in (
            ("measurement_frames", "t_unix"), ("measurement_means", "t_unix"),
            ("write_batches", "t_unix"), ("events", "t_unix"), ("decisions", "t_unix"),
            ("schedules", "t_unix"), ("ev_sessions", None),
        ):
            span = f", min({t_column}), max({t_column})" if t_column else ""
            counts[table] = {}
            for run, n, *lo_hi in self._db.execute(
                    f"SELECT run_id, count(*){span} FROM {table} GROUP BY run_id"):
                counts[table][run] = n
                spans.setdefault(run, []).extend(x for x in lo_hi if x is not None)
        # the points a batch stored one by one: all, or a heartbeat's refused ones
        commands = dict(self._db.execute(
            "SELECT run_id, sum(CASE WHEN reason='heartbeat' THEN refused ELSE points END) "
            "FROM write_batches GROUP BY run_id"))
        out = []
        for run, reason, detail, wall in self._db.execute(
                "SELECT id, reason, detail_json, wall_unix FROM runs ORDER BY id").fetchall():
            ts = spans.get(run, [])
            rows = {table: by_run.get(run, 0) for table, by_run in counts.items()}
            rows["commands"] = commands.get(run, 0)
            out.append(HistorianRun(
                id=run, reason=reason, detail=json.loads(detail),
                wall_start=None if wall is None else self._stamp(wall),
                first_t=self._stamp(min(ts)) if ts else None,
                last_t=self._stamp(max(ts)) if ts else None,
                rows=rows,
            ))
        return out

    def _stamp(self, t_unix: float) -> pd.Timestamp:
        return pd.Timestamp(round(t_unix * 1e6), unit="us", tz="UTC").tz_convert(self._tz)

    def _stamps(self, t_unix: np.ndarray) -> pd.DatetimeIndex:
        us = np.round(np.asarray(t_unix, dtype=float) * 1e6).astype("int64")
        return pd.to_datetime(us, unit="us", utc=True).tz_convert(self._tz)

    def last_schedule(
        self, kind: str | None = None, *, run: int | None = None
    ) -> tuple[pd.Timestamp, pd.DataFrame] | None:
        args: list[Any] = []
        sql = "SELECT t, table_zlib FROM schedules"
        if kind is not None:
            sql += " WHERE kind=?"
            args.append(kind)
        sql = self._of_run(run, sql, args)
        row = self._db.execute(sql + " ORDER BY id DESC LIMIT 1", args).fetchone()
        if row is None:
            return None
        table = pd.read_json(io.StringIO(zlib.decompress(row[1]).decode("utf-8")), orient="split")
        if len(table.index) and table.index.tz is None:
            table.index = pd.to_datetime(table.index, utc=True).tz_convert(TIMEZONE)
        return pd.Timestamp(row[0]), table

    def sessions(self, *, run: int | None = None) -> tuple[StoredSession, ...]:
        """The EV sessions of ``run``; by default each session as its latest run saw it."""
        args: list[Any] = []
        if run is None:
            where = ("WHERE run_id = (SELECT max(run_id) FROM ev_sessions AS later "
                     "WHERE later.session_id = ev_sessions.session_id)")
        else:
            where = "WHERE run_id=?"
            args.append(int(run))
        rows = self._db.execute(
            f"SELECT {_SESSION_COLUMNS}, ended_unix FROM ev_sessions {where} "
            "ORDER BY arrival, session_id", args
        ).fetchall()
        return tuple(_stored_session(r[:-1], r[-1]) for r in rows)

    def decisions(self, kind: str | None = None, *, run: int | None = None) -> list[dict[str, Any]]:
        """Decision records in the order made: ``t`` (field time), ``kind``, ``run``,
        ``wall_t``, then the record's own keys."""
        sql = "SELECT t, kind, run_id, wall_t, record_json FROM decisions"
        args: list[Any] = []
        if kind is not None:
            sql += " WHERE kind=?"
            args.append(kind)
        sql = self._of_run(run, sql, args)
        return [
            {"t": t, "kind": k, "run": r, "wall_t": w, **json.loads(rec)}
            for t, k, r, w, rec in self._db.execute(sql + " ORDER BY id", args)
        ]

    def events(self, kind: str | None = None, *, run: int | None = None) -> list[dict[str, Any]]:
        """Events in the order recorded (wall time): ``t`` (field time, None if none was
        known), ``kind``, ``run``, ``wall_t``, then the event's own detail."""
        sql = "SELECT t, kind, run_id, wall_t, detail_json FROM events"
        args: list[Any] = []
        if kind is not None:
            sql += " WHERE kind=?"
            args.append(kind)
        sql = self._of_run(run, sql, args)
        return [
            {"t": t, "kind": k, "run": r, "wall_t": w, **json.loads(d)}
            for t, k, r, w, d in self._db.execute(sql + " ORDER BY id", args)
        ]

    def write_batches(self, *, run: int | None = None) -> pd.DataFrame:
        """Every write batch: t, reason, points, refused, run."""
        args: list[Any] = []
        sql = self._of_run(run, "SELECT t, reason, points, refused, run_id AS run "
                                "FROM write_batches", args)
        return pd.read_sql_query(sql + " ORDER BY id", self._db, params=args)

    def commands(self, *, run: int | None = None) -> pd.DataFrame:
        """Commands stored one by one (a heartbeat's refused points only): t, device, point,
        value, result, reason, run."""
        args: list[Any] = []
        sql = self._of_run(
            run,
            "SELECT b.t, p.device, p.point, c.value, c.result, b.reason, b.run_id AS run "
            "FROM commands c JOIN write_batches b ON b.id=c.batch_id "
            "JOIN points p ON p.id=c.point_id", args, column="b.run_id")
        return pd.read_sql_query(sql + " ORDER BY c.batch_id, c.seq", self._db, params=args)

    def last_field_time(self) -> pd.Timestamp | None:
        """The field time of the last write batch of the file's last run (None: none yet)."""
        row = self._db.execute(
            "SELECT max(t_unix) FROM write_batches WHERE run_id=(SELECT max(id) FROM runs)"
        ).fetchone()
        return None if row is None or row[0] is None else self._stamp(row[0])

    def last_written(self, *, max_batches: int = 2000) -> dict[tuple[str, str], float]:
        """The value last written, and accepted, to each point: what the field holds if it
        kept what it was sent (a restarted runtime sends these again). Read from the newest
        write batch back (heartbeats store only their refused points and are passed over),
        looking at ``max_batches`` batches at most."""
        found: dict[tuple[str, str], float] = {}
        batches = self._db.execute(
            "SELECT id FROM write_batches WHERE reason IS NOT 'heartbeat' "
            "ORDER BY id DESC LIMIT ?", (max_batches,)).fetchall()
        for (batch,) in batches:
            for point_id, value, result in self._db.execute(
                    "SELECT point_id, value, result FROM commands WHERE batch_id=?", (batch,)):
                key = self._catalog.key(point_id)
                # a refused write left the device with what it had: an older accepted value
                if key not in found and value is not None and result.startswith("Good"):
                    found[key] = float(value)
        return found

    def _unpack(self, frame_id: int, blob: bytes, n: int) -> np.ndarray:
        try:
            return unpack_values(blob, n)
        except FrameDamaged as exc:
            raise HistorianError(f"measurement frame {frame_id} {exc}; expected an intact "
                                 "historian", source=str(self.path)) from None

    def _frames(self, run: int | None) -> Iterator[tuple[int, float, np.ndarray, np.ndarray,
                                                          dict[int, str]]]:
        """(run, t_unix, point ids, values, statuses not Good) of every raw frame, in order."""
        args: list[Any] = []
        sql = self._of_run(run, "SELECT id, run_id, t_unix, point_set, values_zlib, status_json "
                                "FROM measurement_frames", args)
        for frame_id, r, tu, set_id, blob, st in self._db.execute(
                sql + " ORDER BY run_id, t_unix, id", args).fetchall():
            ids = self._catalog.ids_of_set(set_id)
            status = {int(i): s for i, s in json.loads(st).items()} if st else {}
            yield r, tu, ids, self._unpack(frame_id, blob, len(ids)), status

    def _wanted(self, device: str | None, point: str | None) -> set[int] | None:
        if device is None and point is None:
            return None
        sql, args = "SELECT id FROM points WHERE 1=1", []
        if device is not None:
            sql += " AND device=?"
            args.append(device)
        if point is not None:
            sql += " AND point=?"
            args.append(point)
        return {r[0] for r in self._db.execute(sql, args)}

    def _names(self, point_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Device and point names of each id (looked up once per distinct id)."""
        unique, where = np.unique(point_ids, return_inverse=True)
        keys = [self._catalog.key(i) for i in unique]
        devices = np.array([k[0] for k in keys], dtype=object)
        points = np.array([k[1] for k in keys], dtype=object)
        return devices[where], points[where]

    def measurements(
        self, device: str | None = None, point: str | None = None, *, run: int | None = None
    ) -> pd.DataFrame:
        """Raw measurements, one row per point and reading: t_unix, t (field time), device,
        point, value, status, run; in order of run, then time."""
        wanted = self._wanted(device, point)
        cols: dict[str, list[Any]] = {k: [] for k in ("run", "t_unix", "pid", "value")}
        statuses: list[str] = []
        for r, tu, ids, values, status in self._frames(run):
            at = np.arange(len(ids)) if wanted is None else np.flatnonzero(
                np.isin(ids, list(wanted)))
            if not len(at):
                continue
            cols["run"].append(np.full(len(at), r))
            cols["t_unix"].append(np.full(len(at), tu))
            cols["pid"].append(ids[at])
            cols["value"].append(values[at])
            if status:
                statuses.extend(status.get(int(i), "Good") for i in at)
            else:
                statuses.extend(["Good"] * len(at))
        if not cols["run"]:
            return pd.DataFrame(columns=["t_unix", "t", "device", "point", "value", "status",
                                         "run"])
        run_a, t_a, pid_a, value_a = (np.concatenate(cols[k]) for k in cols)
        devices, points = self._names(pid_a)
        return pd.DataFrame({
            "t_unix": t_a, "t": self._stamps(t_a), "device": devices, "point": points,
            "value": value_a, "status": statuses, "run": run_a,
        })

    def measurement_means(
        self, device: str | None = None, point: str | None = None, *, run: int | None = None
    ) -> pd.DataFrame:
        """15-minute statistics of downsampled measurements: t_unix, t (start of the 15 min),
        device, point, mean, min, max, samples (Good, finite values), run."""
        wanted = self._wanted(device, point)
        args: list[Any] = []
        sql = self._of_run(run, "SELECT run_id, t_unix, point_set, stats_zlib "
                                "FROM measurement_means", args)
        parts = []
        for r, tu, set_id, blob in self._db.execute(sql + " ORDER BY run_id, t_unix", args):
            ids = self._catalog.ids_of_set(set_id)
            try:
                stats = unpack_stats(blob, len(ids))
            except FrameDamaged as exc:
                raise HistorianError(f"15-minute statistics at {tu} {exc}; expected an intact "
                                     "historian", source=str(self.path)) from None
            at = np.arange(len(ids)) if wanted is None else np.flatnonzero(
                np.isin(ids, list(wanted)))
            if len(at):
                parts.append((np.full(len(at), r), np.full(len(at), tu), ids[at], stats[at]))
        columns = ["t_unix", "t", "device", "point", "mean", "min", "max", "samples", "run"]
        if not parts:
            return pd.DataFrame(columns=columns)
        run_a, t_a, pid_a, stats_a = (np.concatenate(p) for p in zip(*parts, strict=True))
        devices, points = self._names(pid_a)
        return pd.DataFrame({
            "t_unix": t_a, "t": self._stamps(t_a), "device": devices, "point": points,
            "mean": stats_a[:, 0], "min": stats_a[:, 1],
            "max": stats_a[:, 2], "samples": stats_a[:, 3].astype(int), "run": run_a,
        })[columns]

    def measurement_table(self, *, run: int, means: bool = True) -> pd.DataFrame:
        """One run's measurements as a table: index field time, one column per
        ``device.point``; the last value read at a time. With ``means``, the 15-minute means of
        the part already downsampled come first (at the start of their 15 minutes)."""
        frames = list(self._frames(run))
        columns: dict[int, int] = {}
        for _, _, ids, _, _ in frames:
            for i in ids:
                columns.setdefault(int(i), len(columns))
        raw = np.full((len(frames), len(columns)), np.nan)
        for row, (_, _, ids, values, _) in enumerate(frames):
            raw[row, [columns[int(i)] for i in ids]] = values
        names = [".".join(self._catalog.key(i)) for i in columns]
        table = pd.DataFrame(raw, index=self._stamps([f[1] for f in frames]), columns=names)
        if means:
            m = self.measurement_means(run=run)
            if not m.empty:
                m["key"] = m["device"] + "." + m["point"]
                wide = m.pivot_table(index="t", columns="key", values="mean", aggfunc="last",
                                     dropna=False)
                table = pd.concat([wide, table])
        table.index.name = "t"
        return table.groupby(level=0, sort=True).last()

