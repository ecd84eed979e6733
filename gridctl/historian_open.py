"""Opening the historian's file: what it must be before it is opened, and the tables made or
upgraded.

A path is checked before anything is created or changed: a folder, a path under a file, a folder
that cannot be written, a file that is not SQLite, a damaged SQLite file (``PRAGMA
quick_check``), another program's database or one written by a newer gridctl are refused with a
:class:`~gridctl.historian_schema.HistorianError` that names the file and what was expected. A
file without ``user_version`` (schema 1, gridctl before runs) is upgraded once when it is first
opened (``gridctl.historian_upgrade``).
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from pathlib import Path

from gridctl.historian_schema import (
    EXPECTED,
    SCHEMA,
    SCHEMA_VERSION,
    SQLITE_MAGIC,
    V1_TABLES,
    V2_TABLES,
    HistorianError,
    run_script,
    transaction,
)
from gridctl.historian_upgrade import upgrade_v1

__all__ = ["check_path", "open_db"]


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
            upgrade_v1(db, path)
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
        run_script(db, SCHEMA)
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
