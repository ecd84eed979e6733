"""Every command that writes checks where before it works, and writes its outputs whole or not
at all: an existing output folder is replaced as a set, and kept as it was when a run fails."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest
from test_forecasts_bundle import small_model

import network_models
from gridctl.cli import main

SMALL = small_model()

# (command line before --out, a name the output may take): each writes at --out
WRITERS = {
    "dayahead": (["dayahead", "--model", "case33bw", "--date", "2026-07-15"], "out"),
    "forecast": (["forecast", "--model", "case33bw", "--date", "2026-07-15"], "out"),
    "grid plot": (["grid", "plot", "--model", "case33bw"], "out.png"),
    "drill": (["drill", "feeder_section_fault"], "out"),
}


@pytest.fixture
def no_model_load(monkeypatch):
    """Loading a model is where the long work starts: the output must be refused before."""
    def refuse(name):
        raise AssertionError(f"model {name} loaded before the output location was checked")

    monkeypatch.setattr(network_models, "load_model", refuse)


@pytest.fixture
def small(monkeypatch):
    monkeypatch.setattr(network_models, "load_model", lambda name, **_: SMALL)


@pytest.fixture
def unwritable_folder(tmp_path):
    """A folder this process cannot make anything in: read-only to an ordinary user; for
    root (who may write anywhere a mode allows), the kernel's /sys."""
    folder = tmp_path / "read_only"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        (folder / "probe").mkdir()
    except PermissionError:
        yield folder
    else:
        (folder / "probe").rmdir()
        try:
            (Path("/sys") / "gridctl-probe").mkdir()
        except OSError:
            yield Path("/sys")
        else:
            (Path("/sys") / "gridctl-probe").rmdir()
            pytest.skip("no folder here refuses this user's writes")
    finally:
        folder.chmod(0o755)


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    return err


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("command", WRITERS)
def test_an_output_under_a_file_is_refused_before_any_work(command, tmp_path, capsys,
                                                           no_model_load):
    args, name = WRITERS[command]
    afile = tmp_path / "notes.txt"
    afile.write_text("an operator's notes\n")
    assert main([*args, "--out", str(afile / name)]) == 2
    err = _one_line_error(capsys)
    assert "--out" in err and str(afile) in err and "is a file, not a folder" in err
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]
    assert afile.read_text() == "an operator's notes\n"


@pytest.mark.parametrize("command", WRITERS)
def test_an_output_in_a_folder_one_cannot_write_in_is_refused_before_any_work(
        command, unwritable_folder, capsys, no_model_load):
    args, name = WRITERS[command]
    assert main([*args, "--out", str(unwritable_folder / "gridctl-test" / name)]) == 2
    err = _one_line_error(capsys)
    assert "--out" in err and f"cannot write in {unwritable_folder}" in err
    assert not (unwritable_folder / "gridctl-test").exists()


@pytest.mark.parametrize("command", ["dayahead", "forecast", "drill"])
def test_an_output_folder_that_is_a_file_is_refused(command, tmp_path, capsys, no_model_load):
    args, _ = WRITERS[command]
    afile = tmp_path / "out"
    afile.write_text("x")
    assert main([*args, "--out", str(afile)]) == 2
    assert "is a file: expected a folder" in _one_line_error(capsys)
    assert afile.read_text() == "x"


def test_a_png_that_is_a_folder_is_refused(tmp_path, capsys, no_model_load):
    (tmp_path / "diagram.png").mkdir()
    assert main(["grid", "plot", "--out", str(tmp_path / "diagram.png")]) == 2
    assert "is a folder: expected a file name" in _one_line_error(capsys)


@pytest.mark.parametrize("command", ["dayahead", "forecast", "drill"])
def test_a_folder_holding_other_files_is_refused_and_left_as_it_was(command, tmp_path, capsys,
                                                                     no_model_load):
    """Replacing the folder as a whole must never take what is not the command's with it."""
    args, _ = WRITERS[command]
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "historian.sqlite").write_bytes(b"SQLite format 3\0")
    assert main([*args, "--out", str(folder)]) == 2
    err = _one_line_error(capsys)
    assert "'historian.sqlite'" in err and "does not write" in err
    assert _tree(folder) == {"historian.sqlite": b"SQLite format 3\0"}


def test_the_current_folder_is_refused_as_an_output_folder(tmp_path, capsys, monkeypatch,
                                                           no_model_load):
    monkeypatch.chdir(tmp_path)
    assert main(["forecast", "--date", "2026-07-15", "--out", "."]) == 2
    assert "the folder you are in" in _one_line_error(capsys)


def _forecast(out: Path, *more: str) -> int:
    return main(["forecast", "--model", "small", "--date", "2026-07-15", "--out", str(out),
                 *more])


def test_a_forecast_folder_is_replaced_as_a_set(tmp_path, small, capsys):
    out = tmp_path / "fc"
    assert _forecast(out) == 0
    assert (out / "forecast.png").exists()
    assert _forecast(out, "--no-plot", "--seed", "7") == 0
    # the old plot does not stay beside the new bundle it does not show
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["pv_p_mw.csv", "load_p_mw.csv", "load_q_mvar.csv", "series.csv", "ev_sessions.csv",
         "bundle.json"])
    assert json.loads((out / "bundle.json").read_text())["provenance"]["seed"] == "7"
    assert [p.name for p in tmp_path.iterdir()] == ["fc"]  # nothing left beside it


@pytest.mark.parametrize("failure", [OSError(errno.ENOSPC, "No space left on device"),
                                     KeyboardInterrupt()])
def test_a_forecast_that_fails_while_writing_leaves_the_earlier_folder_intact(
        failure, tmp_path, small, capsys, monkeypatch):
    out = tmp_path / "fc"
    assert _forecast(out) == 0
    before = _tree(out)

    def plot_fails(*args, **kwargs):
        raise failure

    import forecasts.plot

    monkeypatch.setattr(forecasts.plot, "plot_bundle", plot_fails)
    capsys.readouterr()
    if isinstance(failure, OSError):
        assert _forecast(out, "--seed", "9") == 2
        err = _one_line_error(capsys)
        assert "No space left on device" in err and str(out) in err
    else:  # Ctrl-C: typer says "Aborted" and exits 130, as a shell does after SIGINT
        assert _forecast(out, "--seed", "9") == 130
    assert _tree(out) == before
    assert [p.name for p in tmp_path.iterdir()] == ["fc"]


def test_a_dayahead_that_fails_while_writing_leaves_no_mixed_set(tmp_path, capsys, monkeypatch):
    """The day-ahead files are one plan: a schedule must never sit beside another run's
    report. On failure the folder is as it was."""
    out = tmp_path / "plan"

    def args(day: str) -> list[str]:
        return ["dayahead", "--model", "case33bw", "--date", day, "--out", str(out)]

    assert main(args("2026-07-15")) == 0
    before = _tree(out)
    assert set(before) == {"schedule.csv", "sessions.csv", "decision.json", "report.html"}

    import gridctl.report

    def report_fails(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(gridctl.report, "write_html_report", report_fails)
    capsys.readouterr()
    assert main(args("2026-07-16")) == 2
    assert "No space left on device" in _one_line_error(capsys)
    assert _tree(out) == before
    assert [p.name for p in tmp_path.iterdir()] == ["plan"]


def test_folders_made_for_an_output_are_removed_when_the_run_fails(tmp_path, small, capsys,
                                                                   monkeypatch):
    import forecasts.plot

    def plot_fails(*args, **kwargs):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(forecasts.plot, "plot_bundle", plot_fails)
    assert _forecast(tmp_path / "a" / "b" / "fc") == 2
    assert list(tmp_path.iterdir()) == []


def test_a_plot_replaces_the_old_png_only_when_the_new_one_is_complete(tmp_path, capsys,
                                                                       monkeypatch):
    png = tmp_path / "one_line.png"
    png.write_bytes(b"old diagram")
    import network_models.plot

    def draw_fails(model, out, **kwargs):
        Path(out).write_bytes(b"half a diagr")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(network_models.plot, "plot_one_line", draw_fails)
    assert main(["grid", "plot", "--model", "case33bw", "--out", str(png)]) == 2
    assert png.read_bytes() == b"old diagram"
    assert [p.name for p in tmp_path.iterdir()] == ["one_line.png"]
    monkeypatch.undo()
    assert main(["grid", "plot", "--model", "case33bw", "--out", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_drill_replaces_its_earlier_reports_and_prints_strict_json(tmp_path, capsys):
    out = tmp_path / "drill"
    out.mkdir()
    (out / "feeder_section_fault.json").write_text("{\"from\": \"an earlier run\"}")
    (out / "feeder_section_fault.html").write_text("<p>an earlier run</p>")
    assert main(["drill", "feeder_section_fault", "--out", str(out), "--json"]) == 0

    def refuse(constant: str):
        raise AssertionError(f"{constant} is not JSON")

    printed = json.loads(capsys.readouterr().out, parse_constant=refuse)
    written = json.loads((out / "feeder_section_fault.json").read_text(), parse_constant=refuse)
    assert written["scenario"] == printed["scenario"] == "feeder_section_fault"
    assert written["restoration_s"] == printed["restoration_s"] <= 10
    assert "earlier run" not in (out / "feeder_section_fault.html").read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["drill"]
