"""The historian's retention: raw measurements downsampled to 15-minute statistics, statistics
and commands deleted past their time, free pages given back; bounded work per call."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd

from gridctl.historian_frames import bucket_stats, merge_stats, pack_stats, unpack_stats
from gridctl.historian_records import Maintenance, field_time
from gridctl.historian_schema import MEAN_MINUTES
from gridctl.historian_store import HistorianStore

__all__ = ["BUCKET_S", "DAY_S", "HistorianRetention"]

DAY_S = 86400.0
BUCKET_S = MEAN_MINUTES * 60.0


class HistorianRetention(HistorianStore):
    """Retention of :class:`~gridctl.historian_records.HistorianSettings`, applied by
    :meth:`maintain`."""

    def maintain(self, now: pd.Timestamp) -> Maintenance:
        """Apply the retention settings at field time ``now`` (bounded work, short transactions):
        downsample raw measurements that reached ``raw_days``, delete statistics and commands
        past their time, and give back up to ``max_vacuum_pages`` free pages to the disk."""
        tu, _ = field_time(now)
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
