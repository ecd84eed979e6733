"""Point ids of the historian: (device, point) ↔ id and point sets ↔ id, cached per file."""

from __future__ import annotations

import hashlib
import sqlite3
import zlib
from collections.abc import Sequence

import numpy as np

from gridctl.historian_frames import ids_bytes, unpack_ids

__all__ = ["PointCatalog"]


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
