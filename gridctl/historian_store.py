"""The historian's open file and what its writers and readers share: the connection, the lock,
the point catalog, the run written to, the time zone field times are shown in."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Self

import numpy as np
import pandas as pd

from gridctl.historian_catalog import PointCatalog
from gridctl.historian_frames import FrameDamaged, unpack_values
from gridctl.historian_open import open_db
from gridctl.historian_records import HistorianSettings
from gridctl.historian_schema import HistorianError
from network_models import TIMEZONE

__all__ = ["HistorianStore"]


class HistorianStore:
    """An open historian file (see :class:`gridctl.historian.Historian`, which adds the verbs).

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

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # every write is one transaction
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

    def meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else row[0]

    @staticmethod
    def _of_run(run: int | None, sql: str, args: list[Any], column: str = "run_id") -> str:
        if run is not None:
            args.append(int(run))
            return sql + (" AND " if " WHERE " in sql else " WHERE ") + f"{column}=?"
        return sql

    def _stamp(self, t_unix: float) -> pd.Timestamp:
        return pd.Timestamp(round(t_unix * 1e6), unit="us", tz="UTC").tz_convert(self._tz)

    def _stamps(self, t_unix: np.ndarray) -> pd.DatetimeIndex:
        us = np.round(np.asarray(t_unix, dtype=float) * 1e6).astype("int64")
        return pd.to_datetime(us, unit="us", utc=True).tz_convert(self._tz)

    def _unpack(self, frame_id: int, blob: bytes, n: int) -> np.ndarray:
        try:
            return unpack_values(blob, n)
        except FrameDamaged as exc:
            raise HistorianError(f"measurement frame {frame_id} {exc}; expected an intact "
                                 "historian", source=str(self.path)) from None

    def _run_ids(self) -> list[int]:
        return [r[0] for r in self._db.execute("SELECT id FROM runs ORDER BY id")]
