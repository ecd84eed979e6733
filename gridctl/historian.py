"""The historian: what the controller saw, decided and did, in SQLite (WAL).

One file, append-only tables, each write its own transaction, so a ``kill -9`` loses nothing that
was committed and leaves nothing half-written. A restarted runtime resumes from it: the last
schedule, every EV session and the energy delivered to it so far.

Times are stored as ISO 8601 with offset (Asia/Shanghai) and as Unix seconds for ordering.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

SCHEMA = """
CREATE TABLE IF NOT EXISTS measurements (
    t_unix REAL NOT NULL, t TEXT NOT NULL, device TEXT NOT NULL, point TEXT NOT NULL,
    value REAL, status TEXT NOT NULL DEFAULT 'Good'
);
CREATE INDEX IF NOT EXISTS measurements_t ON measurements (t_unix);
CREATE TABLE IF NOT EXISTS schedules (
    id INTEGER PRIMARY KEY, t_unix REAL NOT NULL, t TEXT NOT NULL, kind TEXT NOT NULL,
    table_json TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS decisions (
    id INTEGER PRIMARY KEY, t_unix REAL NOT NULL, t TEXT NOT NULL, kind TEXT NOT NULL,
    status TEXT NOT NULL, fallback TEXT, record_json TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS commands (
    id INTEGER PRIMARY KEY, t_unix REAL NOT NULL, t TEXT NOT NULL, device TEXT NOT NULL,
    point TEXT NOT NULL, value REAL, result TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY, t_unix REAL NOT NULL, t TEXT NOT NULL, kind TEXT NOT NULL,
    detail_json TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS ev_sessions (
    session_id TEXT PRIMARY KEY, charger TEXT NOT NULL, connector TEXT NOT NULL,
    arrival TEXT NOT NULL, departure TEXT NOT NULL, energy_requested_kwh REAL NOT NULL,
    max_kw REAL NOT NULL, energy_delivered_kwh REAL NOT NULL, updated_unix REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def _t(t: pd.Timestamp) -> tuple[float, str]:
    if t.tzinfo is None:
        raise ValueError("historian times must be timezone-aware")
    return t.value / 1e9, t.isoformat()


@dataclass(frozen=True, kw_only=True)
class StoredSession:
    session_id: str
    charger: str
    connector: str
    arrival: pd.Timestamp
    departure: pd.Timestamp
    energy_requested_kwh: float
    max_kw: float
    energy_delivered_kwh: float  # final once ``ended`` is set (the charger's own report)
    ended: pd.Timestamp | None = None


class Historian:
    """A SQLite historian; safe to open again after a crash."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        self._migrate()

    def _migrate(self) -> None:
        """Columns added after a historian was first written (older files stay readable)."""
        columns = {r[1] for r in self._db.execute("PRAGMA table_info(ev_sessions)")}
        if "ended_unix" not in columns:  # the charger's end-of-session report
            self._db.execute("ALTER TABLE ev_sessions ADD COLUMN ended_unix REAL")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Historian:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing: every call is one transaction ------------------------------------------------
    def _tx(self, sql: str, rows: Iterable[tuple[Any, ...]]) -> None:
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany(sql, list(rows))

    def record_measurements(
        self,
        t: pd.Timestamp,
        values: Mapping[tuple[str, str], float | None],
        status: Mapping[tuple[str, str], str] | None = None,
    ) -> None:
        tu, ts = _t(t)
        status = status or {}
        self._tx(
            "INSERT INTO measurements VALUES (?,?,?,?,?,?)",
            (
                (tu, ts, d, p, None if v is None else float(v), status.get((d, p), "Good"))
                for (d, p), v in values.items()
            ),
        )

    def record_schedule(self, t: pd.Timestamp, kind: str, table: pd.DataFrame) -> None:
        tu, ts = _t(t)
        self._tx(
            "INSERT INTO schedules (t_unix, t, kind, table_json) VALUES (?,?,?,?)",
            [(tu, ts, kind, table.to_json(orient="split", date_format="iso"))],
        )

    def record_decision(self, t: pd.Timestamp, kind: str, record: Mapping[str, Any]) -> None:
        tu, ts = _t(t)
        self._tx(
            "INSERT INTO decisions (t_unix, t, kind, status, fallback, record_json) "
            "VALUES (?,?,?,?,?,?)",
            [
                (
                    tu,
                    ts,
                    kind,
                    str(record.get("status", "")),
                    record.get("fallback"),
                    json.dumps(record, default=str),
                )
            ],
        )

    def record_commands(
        self, t: pd.Timestamp, results: Iterable[tuple[str, str, float | bool, str]]
    ) -> None:
        tu, ts = _t(t)
        self._tx(
            "INSERT INTO commands (t_unix, t, device, point, value, result) VALUES (?,?,?,?,?,?)",
            ((tu, ts, d, p, float(v), r) for d, p, v, r in results),
        )

    def record_event(self, t: pd.Timestamp, kind: str, **detail: Any) -> None:
        tu, ts = _t(t)
        self._tx(
            "INSERT INTO events (t_unix, t, kind, detail_json) VALUES (?,?,?,?)",
            [(tu, ts, kind, json.dumps(detail, default=str))],
        )

    def upsert_sessions(self, t: pd.Timestamp, sessions: Iterable[StoredSession]) -> None:
        tu, _ = _t(t)
        self._tx(
            "INSERT INTO ev_sessions (session_id, charger, connector, arrival, departure, "
            "energy_requested_kwh, max_kw, energy_delivered_kwh, updated_unix) "
            "VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT(session_id) DO UPDATE "
            "SET energy_delivered_kwh=excluded.energy_delivered_kwh, "
            "departure=excluded.departure, energy_requested_kwh=excluded.energy_requested_kwh, "
            "updated_unix=excluded.updated_unix WHERE ended_unix IS NULL",
            (
                (
                    s.session_id,
                    s.charger,
                    s.connector,
                    s.arrival.isoformat(),
                    s.departure.isoformat(),
                    s.energy_requested_kwh,
                    s.max_kw,
                    s.energy_delivered_kwh,
                    tu,
                )
                for s in sessions
            ),
        )

    def record_session_end(self, t: pd.Timestamp, session_id: str, energy_kwh: float) -> bool:
        """A charger reported the end of a session with the energy it got in all; False if the
        historian never saw the session (nothing is written then)."""
        tu, _ = _t(t)
        with self._db:
            self._db.execute("BEGIN")
            cursor = self._db.execute(
                "UPDATE ev_sessions SET energy_delivered_kwh=?, ended_unix=?, updated_unix=? "
                "WHERE session_id=? AND ended_unix IS NULL",
                (float(energy_kwh), tu, tu, session_id),
            )
        return cursor.rowcount == 1

    def set_meta(self, key: str, value: str) -> None:
        self._tx(
            "INSERT INTO meta VALUES (?,?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
            [(key, value)],
        )

    # -- reading -------------------------------------------------------------------------------
    def meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else row[0]

    def last_schedule(self, kind: str | None = None) -> tuple[pd.Timestamp, pd.DataFrame] | None:
        sql = "SELECT t, table_json FROM schedules"
        args: tuple[Any, ...] = ()
        if kind is not None:
            sql += " WHERE kind=?"
            args = (kind,)
        row = self._db.execute(sql + " ORDER BY id DESC LIMIT 1", args).fetchone()
        if row is None:
            return None
        import io

        table = pd.read_json(io.StringIO(row[1]), orient="split")
        if len(table.index) and table.index.tz is None:
            table.index = pd.to_datetime(table.index, utc=True).tz_convert("Asia/Shanghai")
        return pd.Timestamp(row[0]), table

    def sessions(self) -> tuple[StoredSession, ...]:
        rows = self._db.execute(
            "SELECT session_id, charger, connector, arrival, departure, energy_requested_kwh, "
            "max_kw, energy_delivered_kwh, ended_unix FROM ev_sessions "
            "ORDER BY arrival, session_id"
        ).fetchall()
        return tuple(
            StoredSession(
                session_id=r[0],
                charger=r[1],
                connector=r[2],
                arrival=pd.Timestamp(r[3]),
                departure=pd.Timestamp(r[4]),
                energy_requested_kwh=r[5],
                max_kw=r[6],
                energy_delivered_kwh=r[7],
                ended=(
                    None
                    if r[8] is None
                    else pd.Timestamp(r[8], unit="s", tz="UTC").tz_convert(pd.Timestamp(r[3]).tz)
                ),
            )
            for r in rows
        )

    def decisions(self, kind: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT t, kind, record_json FROM decisions"
        args: tuple[Any, ...] = ()
        if kind is not None:
            sql += " WHERE kind=?"
            args = (kind,)
        return [
            {"t": t, "kind": k, **json.loads(r)}
            for t, k, r in self._db.execute(sql + " ORDER BY id", args)
        ]

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT t, kind, detail_json FROM events"
        args: tuple[Any, ...] = ()
        if kind is not None:
            sql += " WHERE kind=?"
            args = (kind,)
        return [
            {"t": t, "kind": k, **json.loads(d)}
            for t, k, d in self._db.execute(sql + " ORDER BY id", args)
        ]

    def commands(self) -> pd.DataFrame:
        return pd.read_sql_query(
            "SELECT t, device, point, value, result FROM commands ORDER BY id", self._db
        )

    def measurements(self, device: str | None = None, point: str | None = None) -> pd.DataFrame:
        sql, args = "SELECT t_unix, t, device, point, value, status FROM measurements", []
        where = []
        if device is not None:
            where.append("device=?")
            args.append(device)
        if point is not None:
            where.append("point=?")
            args.append(point)
        if where:
            sql += " WHERE " + " AND ".join(where)
        return pd.read_sql_query(sql + " ORDER BY t_unix", self._db, params=args)
