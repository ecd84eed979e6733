"""The historian's measurements read back: raw frames, 15-minute statistics, a run's table."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd

from gridctl.historian_frames import FrameDamaged, unpack_stats
from gridctl.historian_schema import HistorianError
from gridctl.historian_store import HistorianStore

__all__ = ["MeasurementReading"]


class MeasurementReading(HistorianStore):
    """Measurements by point and run, in order of run, then field time."""

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
