"""The historian's writes: runs, measurement frames, schedules, decisions, write batches,
events and EV sessions; every call is one transaction."""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from gridctl.historian_frames import pack_values
from gridctl.historian_records import SESSION_COLUMNS, StoredSession, field_time, session_row
from gridctl.historian_store import HistorianStore

__all__ = ["HistorianWriting"]


class HistorianWriting(HistorianStore):
    """What the runtime writes (field time ``t`` on every record; wall time stamped here)."""

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
        tu, _ = field_time(t)
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
        tu, ts = field_time(t)
        blob = zlib.compress(table.to_json(orient="split", date_format="iso").encode("utf-8"))
        with self._writing() as db:
            db.execute(
                "INSERT INTO schedules (run_id, t_unix, t, wall_unix, kind, table_zlib) "
                "VALUES (?,?,?,?,?,?)",
                (self._current_run(t), tu, ts, time.time(), kind, blob),
            )

    def record_decision(self, t: pd.Timestamp, kind: str, record: Mapping[str, Any]) -> None:
        tu, ts = field_time(t)
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
        tu, ts = field_time(t)
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
        tu, ts = (None, None) if t is None else field_time(t)
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
        tu, _ = field_time(t)
        sessions = list(sessions)
        with self._writing() as db:
            run = self._current_run(t)
            db.executemany(
                f"INSERT INTO ev_sessions (run_id, {SESSION_COLUMNS}, updated_unix) "
                "VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT(run_id, session_id) DO UPDATE "
                "SET energy_delivered_kwh=excluded.energy_delivered_kwh, "
                "departure=excluded.departure, energy_requested_kwh=excluded.energy_requested_kwh, "
                "updated_unix=excluded.updated_unix WHERE ended_unix IS NULL",
                ((run, *session_row(s), tu) for s in sessions),
            )

    def record_session_end(self, t: pd.Timestamp, session_id: str, energy_kwh: float) -> bool:
        """A charger reported the end of a session with the energy it got in all; False if the
        historian never saw the session open (nothing is written then).

        A session last seen open in an earlier run (the vehicle stayed over a restart) ends in
        the current run; the earlier run's row is left as that run saw it.
        """
        tu, _ = field_time(t)
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
