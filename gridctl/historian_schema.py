"""The historian's file: what it must be before it is opened, its tables, and the upgrade of a
file an older gridctl wrote.

A path is checked before anything is created or changed: a folder, a path under a file, a folder
that cannot be written, a file that is not SQLite, a damaged SQLite file (``PRAGMA
quick_check``), another program's database or one written by a newer gridctl are refused with a
:class:`HistorianError` that names the file and what was expected.

Schema 2 (this one): every time series carries the run it belongs to (``runs``), measurements
are packed in frames (``gridctl.historian_frames``) over point sets, writes are counted per
batch (``write_batches``) with their points in ``commands``; events carry field time (NULL when
none is known) and the wall time they were recorded. A file without ``user_version`` (schema 1,
gridctl before runs) is upgraded once, in one transaction, when it is first opened: its rows
become run 1, and it is vacuumed once so that it shrinks from then on (incremental auto-vacuum).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import sqlite3
import tempfile
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from gridctl.historian_frames import ids_bytes, pack_values, unpack_ids
from network_models.errors import InputError

log = logging.getLogger(__name__)

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


# -- the path and the file, before anything is created or changed -------------------------------
def check_path(path: Path, *, create: bool) -> None:
    """Refuse a path the historian cannot live at; nothing is created or changed."""
    source = str(path)
    if path.exists():
        if path.is_dir():
            raise HistorianError(f"is a folder; {EXPECTED} (a file, not a folder)", source=source)
        if not path.is_file():
            raise HistorianError(f"is not a regular file; {EXPECTED}", source=source)
        try:
            with path.open("rb") as f:
                header = f.read(len(SQLITE_MAGIC))
        except OSError as exc:
            raise HistorianError(f"cannot be read ({exc.strerror}); {EXPECTED}",
                                 source=source) from None
        if header and header != SQLITE_MAGIC:
            raise HistorianError(
                f"is not an SQLite database (it does not begin with 'SQLite format 3'); "
                f"{EXPECTED}", source=source)
        if not header and not create:
            raise HistorianError(f"is empty; {EXPECTED}", source=source)
        if not os.access(path, os.R_OK | os.W_OK):
            raise HistorianError(f"cannot be read and written; {EXPECTED}", source=source)
        _check_folder(path.parent, source)  # SQLite keeps its -wal and -shm files beside it
        return
    folder = next(p for p in path.parents if p.exists())
    if not folder.is_dir():
        raise HistorianError(
            f"{folder} is a file, not a folder; expected a path in a folder", source=source)
    if not create:
        raise HistorianError(f"no such file; {EXPECTED}", source=source)
    _check_folder(folder, source)


def _check_folder(folder: Path, source: str) -> None:
    """The folder takes new files (a probe file is made and removed: permissions alone do not
    say, e.g. for root or a read-only mount)."""
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".gridctl-probe-")
    except OSError as exc:
        raise HistorianError(
            f"its folder {folder} cannot be written ({exc.strerror or exc}); expected a folder "
            "the historian and its -wal file can be written in", source=source) from None
    os.close(fd)
    os.unlink(probe)


def open_db(path: Path, *, create: bool) -> sqlite3.Connection:
    """Check ``path``, open it, and create or upgrade its tables (WAL, incremental vacuum)."""
    check_path(path, create=create)
    new = not path.exists() or path.stat().st_size == 0
    if new:
        path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        version = 0 if new else _check_contents(db, path)
        if version == 0:
            _create(db)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")  # in WAL: a process killed loses no commit
        db.execute("PRAGMA journal_size_limit=16777216")  # the -wal shrinks back after a burst
        if version == 1:
            _upgrade_v1(db, path)
    except BaseException:
        db.close()
        raise
    return db


def _check_contents(db: sqlite3.Connection, path: Path) -> int:
    """The schema version of an intact historian (0: an SQLite file with no tables yet)."""
    source = str(path)
    advice = "expected an intact historian (restore it from a backup, or move it aside to start a "
    advice += "new one)"
    try:
        problems = [r[0] for r in db.execute("PRAGMA quick_check(5)")]
        version = db.execute("PRAGMA user_version").fetchone()[0]
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.DatabaseError as exc:
        raise HistorianError(f"is not a readable SQLite database ({exc}); {advice}",
                             source=source) from None
    if problems != ["ok"]:
        lines = [line for p in problems for line in str(p).splitlines()
                 if line.strip() and not line.startswith("***")]
        more = f" and {len(lines) - 1} more problems" if len(lines) > 1 else ""
        raise HistorianError(
            f"is damaged (SQLite quick_check: {lines[0] if lines else problems[0]}{more}); "
            f"{advice}", source=source)
    if version > SCHEMA_VERSION:
        raise HistorianError(
            f"was written by a newer gridctl (historian schema {version}); expected schema "
            f"{SCHEMA_VERSION} or older", source=source)
    if version == SCHEMA_VERSION:
        missing = sorted(V2_TABLES - tables)
        if missing:
            raise HistorianError(f"lacks the tables {', '.join(missing)}; {advice}",
                                 source=source)
        return SCHEMA_VERSION
    if not tables:
        return 0
    if not tables & V1_TABLES:
        raise HistorianError(
            f"is an SQLite database but not a gridctl historian (it holds "
            f"{', '.join(sorted(tables)[:5])}); {EXPECTED}", source=source)
    return 1


def _create(db: sqlite3.Connection) -> None:
    db.execute("PRAGMA auto_vacuum=INCREMENTAL")  # only takes before the first table
    with transaction(db):
        _script(db, SCHEMA)
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")


def _script(db: sqlite3.Connection, sql: str) -> None:
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


# -- points and point sets ----------------------------------------------------------------------
class PointCatalog:
    """(device, point) ↔ id, and point sets (a tuple of point ids) ↔ id, cached.

    New ids are written in the caller's transaction; :meth:`forget` after a rollback.
    """

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        self.forget()

    def forget(self) -> None:
        self._ids: dict[tuple[str, str], int] = {}
        self._keys: dict[int, tuple[str, str]] = {}
        self._sets: dict[tuple[tuple[str, str], ...], int] = {}
        self._set_ids: dict[int, np.ndarray] = {}
        self._digests: dict[str, int] = {}
        self._loaded = False

    def _load(self) -> None:
        if not self._loaded:
            for i, d, p in self._db.execute("SELECT id, device, point FROM points"):
                self._ids[(d, p)] = i
                self._keys[i] = (d, p)
            self._loaded = True

    def point_id(self, key: tuple[str, str]) -> int:
        self._load()
        found = self._ids.get(key)
        if found is None:
            found = self._db.execute(
                "INSERT INTO points (device, point) VALUES (?,?)", (str(key[0]), str(key[1]))
            ).lastrowid
            self._ids[key] = found
            self._keys[found] = key
        return found

    def key(self, point_id: int) -> tuple[str, str]:
        self._load()
        return self._keys[int(point_id)]

    def set_id(self, keys: tuple[tuple[str, str], ...]) -> int:
        found = self._sets.get(keys)
        if found is None:
            found = self.set_of_ids([self.point_id(k) for k in keys])
            self._sets[keys] = found
        return found

    def set_of_ids(self, ids: Sequence[int] | np.ndarray) -> int:
        raw = ids_bytes(ids)
        digest = hashlib.sha1(raw).hexdigest()
        found = self._digests.get(digest)
        if found is None:
            row = self._db.execute("SELECT id FROM point_sets WHERE digest=?",
                                   (digest,)).fetchone()
            found = row[0] if row is not None else self._db.execute(
                "INSERT INTO point_sets (digest, size, point_ids) VALUES (?,?,?)",
                (digest, len(ids), zlib.compress(raw)),
            ).lastrowid
            self._digests[digest] = found
        return found

    def ids_of_set(self, set_id: int) -> np.ndarray:
        found = self._set_ids.get(set_id)
        if found is None:
            row = self._db.execute(
                "SELECT point_ids FROM point_sets WHERE id=?", (set_id,)
            ).fetchone()
            if row is None:
                raise KeyError(set_id)
            found = self._set_ids[set_id] = unpack_ids(row[0])
        return found


# -- the upgrade of a schema-1 file --------------------------------------------------------------
def _upgrade_v1(db: sqlite3.Connection, path: Path) -> None:
    """Schema 1 → 2 in one transaction (an interrupted upgrade leaves the old file as it was),
    then one VACUUM so the file shrinks to what it holds and vacuums incrementally from then on."""
    log.warning("%s: upgrading a historian written by an older gridctl (once)", path)
    old = ("measurements", "schedules", "decisions", "commands", "events", "ev_sessions")
    with transaction(db):
        _script(db, SCHEMA_V1)  # a very old file may lack a table
        columns = {r[1] for r in db.execute("PRAGMA table_info(ev_sessions)")}
        if "ended_unix" not in columns:
            db.execute("ALTER TABLE ev_sessions ADD COLUMN ended_unix REAL")
        for name in old:
            db.execute(f"ALTER TABLE {name} RENAME TO {name}_v1")
        db.execute("DROP INDEX IF EXISTS measurements_t")
        _script(db, SCHEMA)
        db.execute("INSERT INTO runs (id, reason, detail_json) VALUES (1, 'before_runs', ?)",
                   (json.dumps({"upgraded_from_schema": 1}),))
        catalog = PointCatalog(db)
        _upgrade_measurements(db, catalog)
        _upgrade_commands(db, catalog)
        wall = ",".join(f"'{k}'" for k in V1_WALL_STAMPED)
        db.execute(
            "INSERT INTO events (id, run_id, t_unix, t, wall_unix, wall_t, kind, detail_json) "
            f"SELECT id, 1, CASE WHEN kind IN ({wall}) THEN NULL ELSE t_unix END, "
            f"CASE WHEN kind IN ({wall}) THEN NULL ELSE t END, "
            f"CASE WHEN kind IN ({wall}) THEN t_unix END, CASE WHEN kind IN ({wall}) THEN t END, "
            "kind, detail_json FROM events_v1")
        db.execute(
            "INSERT INTO decisions (id, run_id, t_unix, t, kind, status, fallback, record_json) "
            "SELECT id, 1, t_unix, t, kind, status, fallback, record_json FROM decisions_v1")
        db.executemany(
            "INSERT INTO schedules (id, run_id, t_unix, t, kind, table_zlib) VALUES (?,1,?,?,?,?)",
            ((i, tu, t, k, zlib.compress(j.encode("utf-8")))
             for i, tu, t, k, j in db.execute(
                 "SELECT id, t_unix, t, kind, table_json FROM schedules_v1").fetchall()))
        db.execute(
            "INSERT INTO ev_sessions SELECT 1, session_id, charger, connector, arrival, "
            "departure, energy_requested_kwh, max_kw, energy_delivered_kwh, updated_unix, "
            "ended_unix FROM ev_sessions_v1")
        for name in old:
            db.execute(f"DROP TABLE {name}_v1")
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
    try:
        db.execute("PRAGMA auto_vacuum=INCREMENTAL")
        db.execute("VACUUM")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    except sqlite3.OperationalError as exc:  # another connection reading: shrink next time
        log.warning("%s: upgraded, not vacuumed (%s)", path, exc)


def _upgrade_measurements(db: sqlite3.Connection, catalog: PointCatalog) -> None:
    """Rows of one reading (one transaction, one time) become one frame; a point seen twice at
    one time starts another frame, so no row is lost."""
    rows = db.execute(
        "SELECT t_unix, device, point, value, status FROM measurements_v1 ORDER BY rowid")
    frame_t: float | None = None
    keys: list[tuple[str, str]] = []
    values: list[float | None] = []
    status: dict[str, str] = {}

    def flush() -> None:
        if keys:
            db.execute(
                "INSERT INTO measurement_frames (run_id, t_unix, point_set, values_zlib, "
                "status_json) VALUES (1,?,?,?,?)",
                (frame_t, catalog.set_id(tuple(keys)), pack_values(values),
                 json.dumps(status) if status else None))

    seen: set[tuple[str, str]] = set()
    for t_unix, device, point, value, st in rows:  # streamed: an old file may be large
        key = (device, point)
        if t_unix != frame_t or key in seen:
            flush()
            frame_t, keys, values, status, seen = t_unix, [], [], {}, set()
        if st != "Good":
            status[str(len(keys))] = st
        keys.append(key)
        values.append(value)
        seen.add(key)
    flush()


def _upgrade_commands(db: sqlite3.Connection, catalog: PointCatalog) -> None:
    """Commands written at one time become one batch (schema 1 kept no reason)."""
    rows = db.execute(
        "SELECT t_unix, t, device, point, value, result FROM commands_v1 ORDER BY id")
    batch: list[tuple] = []

    def flush() -> None:
        if batch:
            refused = sum(not r[5].startswith("Good") for r in batch)
            batch_id = db.execute(
                "INSERT INTO write_batches (run_id, t_unix, t, reason, points, refused) "
                "VALUES (1,?,?,NULL,?,?)", (batch[0][0], batch[0][1], len(batch), refused)
            ).lastrowid
            db.executemany(
                "INSERT INTO commands (batch_id, seq, point_id, value, result) VALUES (?,?,?,?,?)",
                ((batch_id, i, catalog.point_id((r[2], r[3])), r[4], r[5])
                 for i, r in enumerate(batch)))

    for row in rows:
        if batch and row[0] != batch[0][0]:
            flush()
            batch = []
        batch.append(row)
    flush()
