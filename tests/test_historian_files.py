"""Bad historian files and report paths are refused with one clear line, before anything changes."""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import sys

import pandas as pd
import pytest

from gridctl.cli import main
from gridctl.historian import Historian, HistorianError
from gridctl.report import write_atomically

T0 = pd.Timestamp("2026-07-15 08:00", tz="Asia/Shanghai")


def _historian(path) -> None:
    """A historian of a few pages of each kind (events, frames), checkpointed into the file."""
    with Historian(path) as h:
        for i in range(3000):
            h.record_event(T0 + pd.Timedelta(seconds=i), "tick", i=i, text="x" * 40)
        for i in range(50):
            h.record_measurements(T0 + pd.Timedelta(minutes=i),
                                  {(f"M{k}", "v_pu"): 1.0 + k / 1e3 for k in range(300)})
    with contextlib.closing(sqlite3.connect(path)) as c:
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def _leaf_page_of_events(path) -> int:
    with contextlib.closing(sqlite3.connect(path)) as c:
        return c.execute("SELECT pageno FROM dbstat WHERE name='events' AND pagetype='leaf' "
                         "ORDER BY pageno LIMIT 1 OFFSET 5").fetchone()[0]


def _truncated(tmp_path):
    path = tmp_path / "h.sqlite"
    _historian(path)
    os.truncate(path, path.stat().st_size // 2)
    return path


def _overwritten(tmp_path):
    path = tmp_path / "h.sqlite"
    _historian(path)
    page = _leaf_page_of_events(path)
    with path.open("r+b") as f:  # bytes overwritten in the middle of the file
        f.seek((page - 1) * 4096 + 64)
        f.write(b"\xff" * 256)
    return path


def _not_sqlite(tmp_path):
    path = tmp_path / "h.sqlite"
    path.write_bytes(b"PK\x03\x04" + os.urandom(4000))  # a zip, say
    return path


def _text(tmp_path):
    path = tmp_path / "h.sqlite"
    path.write_text("measurements,t\n", encoding="utf-8")
    return path


def _another_programs_database(tmp_path):
    path = tmp_path / "h.sqlite"
    with contextlib.closing(sqlite3.connect(path)) as c:
        c.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, amount REAL)")
        c.commit()
    return path


def _newer(tmp_path):
    path = tmp_path / "h.sqlite"
    _historian(path)
    with contextlib.closing(sqlite3.connect(path)) as c:
        c.execute("PRAGMA user_version=3")
    return path


BAD_FILES = {
    "truncated": (_truncated, "not a readable SQLite database|damaged"),
    "overwritten in the middle": (_overwritten, "damaged \\(SQLite quick_check"),
    "not SQLite": (_not_sqlite, "not an SQLite database"),
    "text": (_text, "not an SQLite database"),
    "another program's database": (_another_programs_database, "not a gridctl historian"),
    "written by a newer gridctl": (_newer, "newer gridctl"),
}


def _state(folder) -> dict[str, str]:
    """Every file of ``folder`` by its content's hash (a folder by its listing)."""
    return {p.name: sorted(c.name for c in p.iterdir()) if p.is_dir()
            else hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_a_bad_historian_file_is_refused_naming_it_and_left_as_it_was(tmp_path, case):
    make, expected = BAD_FILES[case]
    path = make(tmp_path)
    before = _state(tmp_path)
    with pytest.raises(HistorianError, match=expected) as info:
        Historian(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    assert _state(tmp_path) == before  # not a byte changed, no -wal or -shm left


def test_a_folder_given_as_the_historian_is_refused(tmp_path):
    folder = tmp_path / "h.sqlite"
    folder.mkdir()
    with pytest.raises(HistorianError, match="is a folder"):
        Historian(folder)
    assert list(folder.iterdir()) == []


def test_a_historian_under_a_file_is_refused_and_nothing_is_made(tmp_path):
    (tmp_path / "out").write_text("a file, not a folder", encoding="utf-8")
    with pytest.raises(HistorianError, match="out is a file, not a folder"):
        Historian(tmp_path / "out" / "sub" / "h.sqlite")
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux's")
def test_a_historian_in_a_folder_no_file_can_be_made_in_is_refused():
    # /proc takes no new files, for root too (a chmod would not stop root)
    with pytest.raises(HistorianError, match="cannot be written"):
        Historian("/proc/gridctl-test/h.sqlite")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes in any folder")
def test_a_historian_in_a_read_only_folder_is_refused(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(HistorianError, match="cannot be written"):
            Historian(folder / "h.sqlite")
    finally:
        folder.chmod(0o700)


def test_a_report_of_a_missing_or_empty_historian_creates_nothing(tmp_path):
    with pytest.raises(HistorianError, match="no such file"):
        Historian(tmp_path / "missing.sqlite", create=False)
    (tmp_path / "empty.sqlite").touch()
    with pytest.raises(HistorianError, match="is empty"):
        Historian(tmp_path / "empty.sqlite", create=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.sqlite"]
    assert (tmp_path / "empty.sqlite").stat().st_size == 0


# -- the command line: one line, exit 2, no traceback -------------------------------------------
def _one_error_line(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gridctl: error: "), captured.err
    assert "Traceback" not in captured.err + captured.out
    return lines[0]


@pytest.mark.parametrize("case", ["overwritten in the middle", "not SQLite", "folder",
                                  "under a file"])
@pytest.mark.parametrize("command", ["run", "report"])
def test_gridctl_run_and_report_refuse_a_bad_db_with_exit_2(tmp_path, capsys, case, command):
    if case == "folder":
        db = tmp_path / "h.sqlite"
        db.mkdir()
    elif case == "under a file":
        (tmp_path / "f").write_text("x", encoding="utf-8")
        db = tmp_path / "f" / "h.sqlite"
    else:
        db = BAD_FILES[case][0](tmp_path)
    before = _state(tmp_path)
    argv = ["run", "--db", str(db), "--endpoint", "opc.tcp://127.0.0.1:1"] if command == "run" \
        else ["report", "--db", str(db), "--out", str(tmp_path / "r.html")]
    assert main(argv) == 2
    assert str(db) in _one_error_line(capsys)
    assert _state(tmp_path) == before


def test_gridctl_run_refuses_a_retention_setting_naming_its_flag(tmp_path, capsys):
    argv = ["run", "--db", str(tmp_path / "h.sqlite"), "--keep-raw-days", "30",
            "--keep-means-days", "7"]
    assert main(argv) == 2
    assert "--keep-means-days" in _one_error_line(capsys)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("case", ["folder", "under a file"])
def test_gridctl_report_refuses_a_bad_out_with_exit_2_and_writes_nothing(tmp_path, capsys, case):
    db = tmp_path / "h.sqlite"
    _historian(db)
    if case == "folder":
        out = tmp_path / "report.html"
        out.mkdir()
    else:
        (tmp_path / "f").write_text("x", encoding="utf-8")
        out = tmp_path / "f" / "report.html"
    before = _state(tmp_path)
    assert main(["report", "--db", str(db), "--out", str(out)]) == 2
    assert str(out) in _one_error_line(capsys)
    assert _state(tmp_path) == before  # refused before the historian was read
    if case == "folder":
        assert list(out.iterdir()) == []


def test_a_report_that_fails_while_written_leaves_the_old_one_whole(tmp_path):
    out = tmp_path / "run_report.html"
    out.write_text("<!doctype html>the last report", encoding="utf-8")
    with pytest.raises(UnicodeEncodeError):
        write_atomically(out, "<!doctype html>" + "x" * 100_000 + "\udc80")  # fails mid-way
    assert out.read_text(encoding="utf-8") == "<!doctype html>the last report"
    assert [p.name for p in tmp_path.iterdir()] == ["run_report.html"]  # no temporary left
    write_atomically(out, "<!doctype html>the new one")
    assert out.read_text(encoding="utf-8") == "<!doctype html>the new one"
    assert [p.name for p in tmp_path.iterdir()] == ["run_report.html"]
