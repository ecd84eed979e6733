"""The historian's reads of runs, schedules, EV sessions, decisions, events and commands."""

from __future__ import annotations

import io
import json
import zlib
from typing import Any

import pandas as pd

from gridctl.historian_records import SESSION_COLUMNS, HistorianRun, StoredSession, stored_session
from gridctl.historian_store import HistorianStore
from network_models import TIMEZONE

__all__ = ["HistorianReading"]


class HistorianReading(HistorianStore):
    """Reading methods take ``run`` (default: every run, in order)."""

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
            f"SELECT {SESSION_COLUMNS}, ended_unix FROM ev_sessions {where} "
            "ORDER BY arrival, session_id", args
        ).fetchall()
        return tuple(stored_session(r[:-1], r[-1]) for r in rows)

    def decisions(self, kind: str | None = None, *, run: int | None = None) -> list[dict[str, Any]]:
        """Decision records in the order made: ``t`` (field time), ``kind``, ``run``,
        ``wall_t``, then the record's own keys."""
        return self._stamped("decisions", "record_json", kind, run)

    def events(self, kind: str | None = None, *, run: int | None = None) -> list[dict[str, Any]]:
        """Events in the order recorded (wall time): ``t`` (field time, None if none was
        known), ``kind``, ``run``, ``wall_t``, then the event's own detail."""
        return self._stamped("events", "detail_json", kind, run)

    def _stamped(self, table: str, json_column: str, kind: str | None,
                 run: int | None) -> list[dict[str, Any]]:
        """Rows of ``table`` (decisions or events) in the order written, with their JSON."""
        sql = f"SELECT t, kind, run_id, wall_t, {json_column} FROM {table}"
        args: list[Any] = []
        if kind is not None:
            sql += " WHERE kind=?"
            args.append(kind)
        sql = self._of_run(run, sql, args)
        return [
            {"t": t, "kind": k, "run": r, "wall_t": w, **json.loads(rec)}
            for t, k, r, w, rec in self._db.execute(sql + " ORDER BY id", args)
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
