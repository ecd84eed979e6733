"""The upgrade of a historian file an older gridctl wrote (schema 1) to schema 2: once, in one
transaction, when it is first opened; its rows become run 1, and it is vacuumed once so that it
shrinks from then on (incremental auto-vacuum)."""

from __future__ import annotations

import json
import logging
import sqlite3
import zlib
from pathlib import Path

from gridctl.historian_catalog import PointCatalog
from gridctl.historian_frames import pack_values
from gridctl.historian_schema import (
    SCHEMA,
    SCHEMA_V1,
    SCHEMA_VERSION,
    V1_WALL_STAMPED,
    run_script,
    transaction,
)

__all__ = ["upgrade_v1"]

log = logging.getLogger("gridctl.historian_schema")  # the name its warnings always had


def upgrade_v1(db: sqlite3.Connection, path: Path) -> None:
    """Schema 1 → 2 in one transaction (an interrupted upgrade leaves the old file as it was),
    then one VACUUM so the file shrinks to what it holds and vacuums incrementally from then on."""
    log.warning("%s: upgrading a historian written by an older gridctl (once)", path)
    old = ("measurements", "schedules", "decisions", "commands", "events", "ev_sessions")
    with transaction(db):
        run_script(db, SCHEMA_V1)  # a very old file may lack a table
        columns = {r[1] for r in db.execute("PRAGMA table_info(ev_sessions)")}
        if "ended_unix" not in columns:
            db.execute("ALTER TABLE ev_sessions ADD COLUMN ended_unix REAL")
        for name in old:
            db.execute(f"ALTER TABLE {name} RENAME TO {name}_v1")
        db.execute("DROP INDEX IF EXISTS measurements_t")
        run_script(db, SCHEMA)
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
