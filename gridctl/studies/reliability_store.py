"""Finished tasks of a reliability study, in SQLite: an interrupted study resumes from them.

Two tables: ``plans`` (the effect of one failure at one load level in one design), keyed by a
hash of the models, the assumption table and the load levels, so a study with another seed
reuses them; ``years`` (the figures of one simulated year), keyed by that and the seed. Only
the process that runs the study writes; each result is committed as it arrives, so a kill
loses at most the tasks still running.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from pathlib import Path

from gridctl.studies.reliability_elements import OutageEffect

__all__ = ["TaskStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS plans (study TEXT, design TEXT, fault TEXT, level INTEGER,
    effect TEXT, PRIMARY KEY (study, design, fault, level));
CREATE TABLE IF NOT EXISTS years (study TEXT, year INTEGER, figures TEXT,
    PRIMARY KEY (study, year));
"""


class TaskStore:
    """The store at ``path`` (None: kept in memory, nothing survives the process)."""

    def __init__(self, path: str | Path | None, study: str, plans_of: str) -> None:
        self.path = None if path is None else Path(path)
        self.study = study
        self.plans_of = plans_of
        self._db = sqlite3.connect(":memory:" if path is None else str(path))
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def plans(self) -> dict[tuple[str, str, int], OutageEffect]:
        rows = self._db.execute("SELECT design, fault, level, effect FROM plans WHERE study=?",
                                (self.plans_of,))
        return {(d, f, int(lv)): OutageEffect.from_list(json.loads(e)) for d, f, lv, e in rows}

    def add_plans(self, plans: Iterable[tuple[str, str, int, OutageEffect]]) -> None:
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO plans VALUES (?, ?, ?, ?, ?)",
                [(self.plans_of, d, f, lv, json.dumps(e.to_list())) for d, f, lv, e in plans])

    def years(self, below: int) -> dict[int, dict]:
        rows = self._db.execute("SELECT year, figures FROM years WHERE study=? AND year<?",
                                (self.study, below))
        return {int(y): json.loads(f) for y, f in rows}

    def add_years(self, years: dict[int, dict]) -> None:
        with self._db:
            self._db.executemany("INSERT OR REPLACE INTO years VALUES (?, ?, ?)",
                                 [(self.study, y, json.dumps(f)) for y, f in years.items()])
