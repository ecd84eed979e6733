"""The historian's tables: schema 2 as written now, schema 1 as an older gridctl wrote it.

Schema 2 (this one): every time series carries the run it belongs to (``runs``), measurements
are packed in frames (``gridctl.historian_frames``) over point sets, writes are counted per
batch (``write_batches``) with their points in ``commands``; events carry field time (NULL when
none is known) and the wall time they were recorded. Opening a file (its checks, the upgrade of
a schema-1 file): ``gridctl.historian_open``; point ids: ``gridctl.historian_catalog``.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator

from network_models.errors import InputError

__all__ = [
    "EXPECTED",
    "MEAN_MINUTES",
    "SCHEMA",
    "SCHEMA_V1",
    "SCHEMA_VERSION",
    "HistorianError",
    "run_script",
    "transaction",
]

SCHEMA_VERSION = 2
SQLITE_MAGIC = b"SQLite format 3\x00"
MEAN_MINUTES = 15  # raw measurements are downsampled to means over this many minutes

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY, reason TEXT NOT NULL, detail_json TEXT NOT NULL,
    wall_unix REAL, wall_t TEXT
);
CREATE TABLE IF NOT EXISTS points (
    id INTEGER PRIMARY KEY, device TEXT NOT NULL, point TEXT NOT NULL, UNIQUE (device, point)
);
CREATE TABLE IF NOT EXISTS point_sets (
    id INTEGER PRIMARY KEY, digest TEXT NOT NULL UNIQUE, size INTEGER NOT NULL,
    point_ids BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS measurement_frames (
    id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL, t_unix REAL NOT NULL,
    point_set INTEGER NOT NULL, values_zlib BLOB NOT NULL, status_json TEXT
);
CREATE INDEX IF NOT EXISTS measurement_frames_t ON measurement_frames (run_id, t_unix);
CREATE TABLE IF NOT EXISTS measurement_means (
    run_id INTEGER NOT NULL, t_unix REAL NOT NULL, minutes INTEGER NOT NULL,
    point_set INTEGER NOT NULL, stats_zlib BLOB NOT NULL, PRIMARY KEY (run_id, t_unix)
);
CREATE TABLE IF NOT EXISTS write_batches (
    id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL, t_unix REAL NOT NULL, t TEXT NOT NULL,
    reason TEXT, points INTEGER NOT NULL, refused INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS write_batches_t ON write_batches (run_id, t_unix);
CREATE TABLE IF NOT EXISTS commands (
    batch_id INTEGER NOT NULL, seq INTEGER NOT NULL, point_id INTEGER NOT NULL, value REAL,
    result TEXT NOT NULL, PRIMARY KEY (batch_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL, t_unix REAL, t TEXT, wall_unix REAL,
    wall_t TEXT, kind TEXT NOT NULL, detail_json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_kind ON events (kind);
CREATE TABLE IF NOT EXISTS decisions (
    id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL, t_unix REAL NOT NULL, t TEXT NOT NULL,
    wall_unix REAL, wall_t TEXT, kind TEXT NOT NULL, status TEXT NOT NULL, fallback TEXT,
    record_json TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS schedules (
    id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL, t_unix REAL NOT NULL, t TEXT NOT NULL,
    wall_unix REAL, kind TEXT NOT NULL, table_zlib BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS ev_sessions (
    run_id INTEGER NOT NULL, session_id TEXT NOT NULL, charger TEXT NOT NULL,
    connector TEXT NOT NULL, arrival TEXT NOT NULL, departure TEXT NOT NULL,
    energy_requested_kwh REAL NOT NULL, max_kw REAL NOT NULL, energy_delivered_kwh REAL NOT NULL,
    updated_unix REAL NOT NULL, ended_unix REAL, PRIMARY KEY (run_id, session_id)
);
CREATE INDEX IF NOT EXISTS ev_sessions_id ON ev_sessions (session_id);
"""

# schema 1, as gridctl wrote it before runs (the upgrade creates what an old file lacks first)
SCHEMA_V1 = """
CREATE TABLE IF NOT EXISTS measurements (
    t_unix REAL NOT NULL, t TEXT NOT NULL, device TEXT NOT NULL, point TEXT NOT NULL,
    value REAL, status TEXT NOT NULL DEFAULT 'Good'
);
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
V1_TABLES = frozenset({"measurements", "schedules", "decisions", "commands", "events",
                       "ev_sessions", "meta"})
V2_TABLES = frozenset({"meta", "runs", "points", "point_sets", "measurement_frames",
                       "measurement_means", "write_batches", "commands", "events", "decisions",
                       "schedules", "ev_sessions"})
# schema 1 stamped these events with the wall clock (pd.Timestamp.now()), not field time
V1_WALL_STAMPED = ("connected", "reconnected", "resumed", "connection_lost")

EXPECTED = "expected an SQLite historian written by gridctl run"


class HistorianError(InputError):
    """A historian file that cannot be used; the message names the file and what was expected."""



def run_script(db: sqlite3.Connection, sql: str) -> None:
    """Each statement of ``sql`` inside the caller's transaction (executescript commits)."""
    for statement in sql.split(";"):
        if statement.strip():
            db.execute(statement)


@contextlib.contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[None]:
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
